//! A private tokio runtime for object_store's async calls, usable from any thread.
//!
//! The host may call the engine from threads of its own tokio runtime. When the plugin is linked
//! in (not loaded as a `.so`) it shares the host's tokio, so `Runtime::block_on` would panic
//! there ("Cannot start a runtime from within a runtime"). Instead every future is spawned on the
//! engine's own runtime and the caller waits on a std channel, which works on any thread.

use std::future::Future;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};

/// The result of a spawned future, waited for with [`Pending::wait`].
pub(crate) struct Pending<T>(Receiver<Result<T, String>>);

impl<T> Pending<T> {
    /// Blocks the calling thread until the future finished.
    pub(crate) fn wait(self) -> Result<T, String> {
        self.0.recv().map_err(|_| {
            "s3_storage: an I/O task was cancelled (it panicked or the engine shut down)"
                .to_string()
        })?
    }
}

enum State {
    NotStarted,
    Running(Runtime),
    ShutDown,
}

/// Owns the runtime (created on first use, two worker threads).
pub(crate) struct AsyncBridge {
    state: Mutex<State>,
}

impl AsyncBridge {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State::NotStarted),
        }
    }

    fn handle(&self) -> Result<Handle, String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let State::NotStarted = *state {
            let rt = Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("s3_storage-io")
                .enable_all()
                .build()
                .map_err(|e| format!("s3_storage: cannot start its I/O runtime: {e}"))?;
            *state = State::Running(rt);
        }
        match &*state {
            State::Running(rt) => Ok(rt.handle().clone()),
            _ => Err("s3_storage has been shut down".to_string()),
        }
    }

    /// Spawns `fut` on the private runtime; the result is collected with [`Pending::wait`].
    pub(crate) fn spawn<F, T>(&self, fut: F) -> Result<Pending<T>, String>
    where
        F: Future<Output = Result<T, String>> + Send + 'static,
        T: Send + 'static,
    {
        let handle = self.handle()?;
        let (tx, rx) = sync_channel(1);
        handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        Ok(Pending(rx))
    }

    /// Runs `fut` on the private runtime and waits for it on the calling thread.
    pub(crate) fn run<F, T>(&self, fut: F) -> Result<T, String>
    where
        F: Future<Output = Result<T, String>> + Send + 'static,
        T: Send + 'static,
    {
        self.spawn(fut)?.wait()
    }

    /// Stops the runtime; later calls fail. Waits (briefly) for its threads unless called from
    /// inside a tokio runtime, where waiting is not allowed.
    pub(crate) fn shutdown(&self) {
        let old = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *state, State::ShutDown)
        };
        if let State::Running(rt) = old {
            if Handle::try_current().is_ok() {
                rt.shutdown_background();
            } else {
                rt.shutdown_timeout(Duration::from_secs(5));
            }
        }
    }
}

impl Drop for AsyncBridge {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if let State::Running(rt) = std::mem::replace(state, State::ShutDown) {
            // Never blocks, so dropping the engine inside an async context is fine.
            rt.shutdown_background();
        }
    }
}
