//! Every connection task the server started, so shutdown can wait for them
//! and, when the grace period is over, stop the ones still running: a
//! connection must not outlive [`crate::run`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};

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
    pub(crate) fn spawn<F>(self: &std::sync::Arc<Self>, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let tasks = std::sync::Arc::clone(self);
        // The lock is held across the spawn so the task cannot remove its
        // entry before it was inserted.
        let mut aborts = self.aborts.lock().unwrap_or_else(PoisonError::into_inner);
        let handle = self.tracker.spawn(async move {
            task.await;
            tasks
                .aborts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&tokio::task::id());
        });
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
