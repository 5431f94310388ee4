//! [`shutdown_signal`]: SIGTERM or SIGINT, for a graceful shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static SIGNALED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALED.store(true, Ordering::SeqCst);
}

/// Resolves when the process receives SIGTERM or SIGINT (installs the handlers).
pub async fn shutdown_signal() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
    while !SIGNALED.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::info!("shutdown signal received");
}

/// SIGHUPs received so far (each one asks the servers of the process to reload their rules).
static HANGUPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

extern "C" fn on_hangup(_: libc::c_int) {
    HANGUPS.fetch_add(1, Ordering::SeqCst);
}

/// Installs the SIGHUP handler (once per process) and returns the number of SIGHUPs so far;
/// [`hangups`] then tells when another arrives.
pub(crate) fn watch_hangups() -> u64 {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let handler = on_hangup as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: the handler only adds to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(libc::SIGHUP, handler);
        }
    });
    hangups()
}

/// The number of SIGHUPs received since [`watch_hangups`] installed the handler.
pub(crate) fn hangups() -> u64 {
    HANGUPS.load(Ordering::SeqCst)
}
