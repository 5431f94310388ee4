//! Ctrl-C while a statement runs in the interactive shell. The terminal is in cooked mode
//! then (the line editor only reads between statements), so Ctrl-C arrives as SIGINT: the
//! handler sets a flag (all a signal handler may safely do), and a [`Watcher`] turns the flag
//! into a cancel request on the connection's handle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use phantomdb::CancelHandle;

/// Set by SIGINT, cleared when a statement ends.
static PENDING: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_signal: libc::c_int) {
    PENDING.store(true, Ordering::SeqCst);
}

/// Routes SIGINT to the flag instead of ending the process.
pub fn install() -> std::io::Result<()> {
    // SAFETY: a zeroed `sigaction` is a valid empty one; the handler only stores an atomic,
    // which is async-signal-safe.
    let rc = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Cancels the running statement when Ctrl-C is pressed, until dropped. It polls from a
/// thread of its own: the runtime's workers may all be busy running the statement.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    fired: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    /// Watches for Ctrl-C on behalf of the statement `handle` cancels.
    pub fn start(handle: CancelHandle) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let fired = Arc::new(AtomicBool::new(false));
        let (stopped, seen) = (stop.clone(), fired.clone());
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
                // Once pressed, keep asking: a request that arrives just before the statement
                // starts is ignored by the engine.
                if PENDING.load(Ordering::SeqCst) || seen.load(Ordering::SeqCst) {
                    seen.store(true, Ordering::SeqCst);
                    handle.cancel();
                }
            }
        });
        Self {
            stop,
            fired,
            thread: Some(thread),
        }
    }

    /// Whether Ctrl-C was pressed while watching.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst) || PENDING.load(Ordering::SeqCst)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        PENDING.store(false, Ordering::SeqCst);
    }
}
