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
