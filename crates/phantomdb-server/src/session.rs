//! [`Session`]: one client's PhantomDB connection and the protocol state around it.
//!
//! PostgreSQL's rule for errors inside a transaction block is kept here: after a failed
//! statement the block is *aborted*, every statement but `ROLLBACK` (or `COMMIT`, which then
//! rolls back) fails with SQLSTATE 25P02, and the client sees status `E`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use pgwire::messages::response::TransactionStatus;
use phantomdb::{CancelHandle, Connection};

use pgwire::api::results::Tag;

use crate::copy::CopyIn;
use crate::error_info::{aborted_error, ClientError};
use crate::statement::Kind;

/// One client's session.
pub(crate) struct Session {
    /// The PhantomDB connection, running as the logged-in role.
    pub(crate) conn: Connection,
    /// The explicit transaction failed; only ROLLBACK/COMMIT are accepted.
    aborted: AtomicBool,
    /// An explicit transaction is open (kept in step after every statement).
    in_txn: AtomicBool,
    /// A statement is running (idle timeouts and shutdown leave the session alone).
    busy: AtomicBool,
    last_active: Mutex<Instant>,
    /// The `COPY ... FROM STDIN` in progress.
    pub(crate) copy_in: Mutex<Option<CopyIn>>,
    /// Savepoints of the open transaction block, with the write count when each was set.
    savepoints: Mutex<Vec<(String, u64)>>,
    /// Statements that wrote in the open transaction block.
    writes: AtomicU64,
    next_statement: AtomicU64,
}

impl Session {
    pub(crate) fn new(conn: Connection) -> Self {
        Self {
            conn,
            aborted: AtomicBool::new(false),
            in_txn: AtomicBool::new(false),
            busy: AtomicBool::new(false),
            last_active: Mutex::new(Instant::now()),
            copy_in: Mutex::new(None),
            savepoints: Mutex::new(Vec::new()),
            writes: AtomicU64::new(0),
            next_statement: AtomicU64::new(1),
        }
    }

    /// Cancels the running statement (a protocol cancel request).
    pub(crate) fn cancel_handle(&self) -> CancelHandle {
        self.conn.cancel_handle()
    }

    /// A fresh name for a protocol-level prepared statement.
    pub(crate) fn statement_name(&self) -> String {
        let n = self.next_statement.fetch_add(1, Ordering::Relaxed);
        format!("$pgwire_{n}")
    }

    /// The status `ReadyForQuery` reports.
    pub(crate) fn status(&self) -> TransactionStatus {
        if self.aborted.load(Ordering::SeqCst) {
            TransactionStatus::Error
        } else if self.in_txn.load(Ordering::SeqCst) {
            TransactionStatus::Transaction
        } else {
            TransactionStatus::Idle
        }
    }

    /// Marks a statement as started; `Err` (25P02) when the transaction is aborted and the
    /// statement may not run in an aborted block.
    pub(crate) fn begin_statement(&self, kind: &Kind) -> Result<(), ClientError> {
        self.touch();
        self.busy.store(true, Ordering::SeqCst);
        if self.aborted.load(Ordering::SeqCst) && !kind.allowed_when_aborted() {
            self.busy.store(false, Ordering::SeqCst);
            return Err(aborted_error());
        }
        Ok(())
    }

    /// Whether the transaction is aborted (so ROLLBACK/COMMIT only roll it back).
    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }

    /// Records how a writing statement (COPY) ended; see [`Session::end_statement_of`].
    pub(crate) async fn end_statement(&self, ok: bool) {
        self.end_statement_of(&Kind::Changes("COPY"), ok).await
    }

    /// Records how a statement of `kind` ended: a failure inside a transaction block aborts
    /// it.
    pub(crate) async fn end_statement_of(&self, kind: &Kind, ok: bool) {
        let in_txn = self.conn.in_transaction().await;
        self.in_txn.store(in_txn, Ordering::SeqCst);
        if !in_txn {
            self.aborted.store(false, Ordering::SeqCst);
            self.savepoints.lock().clear();
            self.writes.store(0, Ordering::SeqCst);
        } else if !ok {
            self.aborted.store(true, Ordering::SeqCst);
        } else if kind.writes() {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        self.busy.store(false, Ordering::SeqCst);
        self.touch();
    }

    /// A failure outside `begin_statement`/`end_statement` (while parsing, or while
    /// streaming rows): inside a transaction block it aborts the block.
    pub(crate) fn mark_failed(&self) {
        if self.in_txn.load(Ordering::SeqCst) {
            self.aborted.store(true, Ordering::SeqCst);
        }
    }

    /// Rolls an aborted transaction back (ROLLBACK or COMMIT in an aborted block).
    pub(crate) async fn roll_back_aborted(&self) -> Result<(), phantomdb::Error> {
        if self.conn.in_transaction().await {
            self.conn.execute_async("ROLLBACK").await?;
        }
        self.aborted.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// `SAVEPOINT`, `RELEASE` and `ROLLBACK TO`. PhantomDB has no nested transactions, so a
    /// savepoint only marks a point in the block: `ROLLBACK TO` it succeeds (and recovers an
    /// aborted block) when nothing was written since, and fails with 0A000 otherwise.
    pub(crate) fn savepoint_command(&self, kind: &Kind) -> Result<Tag, ClientError> {
        if !self.in_txn.load(Ordering::SeqCst) {
            let word = match kind {
                Kind::Savepoint(_) => "SAVEPOINT",
                Kind::Release(_) => "RELEASE SAVEPOINT",
                _ => "ROLLBACK TO SAVEPOINT",
            };
            return Err(ClientError::new(
                "25P01",
                format!("{word} can only be used in transaction blocks"),
            ));
        }
        let mut points = self.savepoints.lock();
        let find = |name: &str| points.iter().rposition(|(n, _)| n == name);
        match kind {
            Kind::Savepoint(name) => {
                points.push((name.clone(), self.writes.load(Ordering::SeqCst)));
            }
            Kind::Release(name) => {
                let at = find(name).ok_or_else(|| no_savepoint(name))?;
                points.truncate(at);
            }
            Kind::RollbackTo(name) => {
                let at = find(name).ok_or_else(|| no_savepoint(name))?;
                if points[at].1 != self.writes.load(Ordering::SeqCst) {
                    return Err(ClientError::new(
                        "0A000",
                        "ROLLBACK TO SAVEPOINT after writes since the savepoint is not supported; \
                         roll back the whole transaction",
                    ));
                }
                points.truncate(at + 1);
                self.aborted.store(false, Ordering::SeqCst);
            }
            _ => {}
        }
        Ok(kind.tag(None))
    }

    fn touch(&self) {
        *self.last_active.lock() = Instant::now();
    }

    /// Whether the session has been idle (no statement running) for at least `limit`.
    pub(crate) fn idle_for(&self, limit: std::time::Duration) -> bool {
        !self.busy.load(Ordering::SeqCst) && self.last_active.lock().elapsed() >= limit
    }
}

fn no_savepoint(name: &str) -> ClientError {
    ClientError::new("3B001", format!("savepoint \"{name}\" does not exist"))
}

/// The session of a logged-in client, from its extensions.
pub(crate) fn session_of<C: pgwire::api::ClientInfo + ?Sized>(
    client: &C,
) -> Result<Arc<Session>, ClientError> {
    client
        .session_extensions()
        .get::<Session>()
        .ok_or_else(|| ClientError::protocol("no session: the client has not logged in"))
}
