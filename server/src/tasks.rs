//! Every connection task the server started, so shutdown can wait for them
//! and, when the grace period is over, stop the ones still running: a
//! connection must not outlive [`crate::run`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::FutureExt;

use tokio::task::{AbortHandle, Id};
use tokio_util::task::TaskTracker;

/// The connection tasks (HTTP phase and WebSocket sessions).
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    /// Counts running tasks and lets shutdown wait for them to end.
    tracker: TaskTracker,
    /// How to stop each running task; a task removes itself when it ends.
    aborts: Mutex<HashMap<Id, AbortHandle>>,
}

impl Tasks {
    /// Spawns a connection task on the current runtime.
    pub(crate) fn spawn<F>(self: &Arc<Self>, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // The lock is held across the spawn so the task cannot remove its
        // entry before it was inserted.
        let mut aborts = self.aborts.lock().unwrap_or_else(PoisonError::into_inner);
        // `map`, not an `async` block around `task.await`: the block would
        // hold the future twice (captured and awaited), doubling the memory
        // of every connection. The guard also runs when the task is aborted.
        let guard = Deregister(Arc::clone(self));
        let handle = self.tracker.spawn(task.map(move |()| drop(guard)));
        aborts.insert(handle.id(), handle.abort_handle());
    }

    /// Tasks still running.
    pub(crate) fn len(&self) -> usize {
        self.tracker.len()
    }

    /// Waits until every task has ended. Call [`Tasks::close`] first.
    pub(crate) async fn wait(&self) {
        self.tracker.wait().await;
    }

    /// No more tasks are expected: [`Tasks::wait`] can complete.
    pub(crate) fn close(&self) {
        self.tracker.close();
    }

    /// Stops every task still running; their sockets are closed as their
    /// futures are dropped.
    pub(crate) fn abort_all(&self) {
        let aborts =
            std::mem::take(&mut *self.aborts.lock().unwrap_or_else(PoisonError::into_inner));
        for handle in aborts.into_values() {
            handle.abort();
        }
    }
}

/// Removes the running task's abort handle when the task ends, whether it
/// completed or was aborted.
struct Deregister(Arc<Tasks>);

impl Drop for Deregister {
    fn drop(&mut self) {
        // `try_id`: outside a task (never here) there is nothing to remove.
        if let Some(id) = tokio::task::try_id() {
            self.0
                .aborts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
        }
    }
}
