//! Browser clocks and timers: a monotonic clock for RTTs and deadlines, the
//! wall clock for the log, randomness for jitter, and a [`sleep`] future on
//! `setTimeout` that clears its timer when dropped.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

#[wasm_bindgen]
extern "C" {
    // The global functions, so timers work in windows and workers alike.
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, timeout_ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// Milliseconds on a monotonic clock (`performance.now()`), falling back to
/// the wall clock where there is no `performance`.
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .map_or_else(js_sys::Date::now, |performance| performance.now())
}

/// Milliseconds since the Unix epoch, shifted to the browser's local time
/// zone (for clock times in the log).
pub fn local_wall_ms() -> f64 {
    let now = js_sys::Date::new_0();
    now.get_time() - now.get_timezone_offset() * 60_000.0
}

/// A random number in `[0, 1)` (`Math.random()`): jitter, nonces.
pub fn random() -> f64 {
    js_sys::Math::random()
}

/// Completes after `duration`. Dropping it early clears the timer.
pub fn sleep(duration: Duration) -> Sleep {
    let state = Rc::new(RefCell::new(SleepState::default()));
    let callback = {
        let state = Rc::clone(&state);
        Closure::<dyn FnMut()>::new(move || {
            let waker = {
                let mut state = state.borrow_mut();
                state.fired = true;
                state.waker.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        })
    };
    let ms = i32::try_from(duration.as_millis()).unwrap_or(i32::MAX);
    let id = set_timeout(callback.as_ref().unchecked_ref(), ms);
    Sleep {
        id,
        state,
        _callback: callback,
    }
}

#[derive(Debug, Default)]
struct SleepState {
    fired: bool,
    waker: Option<Waker>,
}

/// The future [`sleep`] returns.
#[derive(Debug)]
pub struct Sleep {
    /// The timer, cleared on drop.
    id: JsValue,
    state: Rc<RefCell<SleepState>>,
    /// Called by the timer; owned here so it lives exactly as long as the
    /// timer can fire.
    _callback: Closure<dyn FnMut()>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.borrow_mut();
        if state.fired {
            return Poll::Ready(());
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if !self.state.borrow().fired {
            clear_timeout(&self.id);
        }
    }
}

/// Runs `future` for at most `limit`; `None` when time ran out.
pub async fn timeout<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    let future = std::pin::pin!(future);
    match futures_util::future::select(future, sleep(limit)).await {
        futures_util::future::Either::Left((output, _)) => Some(output),
        futures_util::future::Either::Right(((), _)) => None,
    }
}
