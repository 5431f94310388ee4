//! Ending a statement early: a [`CancelHandle`] another thread (the shell's Ctrl-C, the
//! server's cancel request) uses, and the session's `statement_timeout`. Both end the statement
//! with SQLSTATE 57014; its transaction work is rolled back as for any failed statement.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::{Error, Result, SqlState};

/// Cancels the statement running on a connection, from any thread. Cloning is cheap.
///
/// A cancel request ends the statement that is running when it arrives (or, for a result
/// stream, the statement whose stream is still being read); a request made while nothing runs
/// is ignored, as in PostgreSQL.
#[derive(Clone, Debug, Default)]
pub struct CancelHandle(Arc<Requests>);

#[derive(Debug, Default)]
struct Requests {
    count: AtomicU64,
    notify: Notify,
}

impl CancelHandle {
    /// Asks the running statement to stop; it fails with SQLSTATE 57014.
    pub fn cancel(&self) {
        self.0.count.fetch_add(1, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// What may interrupt a statement starting now, with its timeout.
    pub(crate) fn interrupt(&self, timeout: Option<Duration>) -> Interrupt {
        Interrupt {
            requests: self.0.clone(),
            since: self.0.count.load(Ordering::SeqCst),
            deadline: timeout.map(|t| Instant::now() + t),
        }
    }
}

/// What ends one statement early: a cancel request made after it started, or its deadline.
#[derive(Debug, Clone)]
pub(crate) struct Interrupt {
    requests: Arc<Requests>,
    since: u64,
    deadline: Option<Instant>,
}

impl Interrupt {
    /// Resolves when the statement must stop, with the error it stops with.
    pub(crate) async fn fired(self) -> Error {
        let cancelled = async {
            loop {
                let notified = self.requests.notify.notified();
                tokio::pin!(notified);
                // Registered before checking, so a request in between is not missed.
                notified.as_mut().enable();
                if self.requests.count.load(Ordering::SeqCst) > self.since {
                    return canceled("canceling statement due to user request");
                }
                notified.await;
            }
        };
        match self.deadline {
            None => cancelled.await,
            Some(deadline) => tokio::select! {
                e = cancelled => e,
                () = tokio::time::sleep_until(deadline) => {
                    canceled("canceling statement due to statement timeout")
                }
            },
        }
    }

    /// Runs `work`, or stops it (dropping it) with 57014 when interrupted first.
    pub(crate) async fn run<T>(self, work: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::select! {
            biased;
            r = work => r,
            e = self.fired() => Err(e),
        }
    }
}

fn canceled(message: &str) -> Error {
    Error::Transaction(SqlState::QueryCanceled, message.to_string())
}
