//! A connection's transaction state: autocommit, or an explicit `BEGIN ... COMMIT` with its
//! snapshot, its write transaction (opened at the first write) and its engine transactions.
//!
//! Commit protocol across engines: engines prepare, redb commits, engines publish (see
//! [`commit_all`]). A statement outside `BEGIN` gets its own transaction, committed when it
//! succeeds and rolled back when it fails.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::engines::redb::{DataView, ReadView, Store, WriteTxn};
use crate::engines::{EngineTxns, SharedEngineTxns, StatementTxns};
use crate::error::{Error, Result, SqlState};
use crate::exec::WriteScope;
use crate::result::ResultSet;

/// A connection's transaction state.
enum TxnState {
    /// Every statement is its own transaction.
    Autocommit,
    /// Inside `BEGIN ... COMMIT`: reads see `snapshot` until the first write, which opens
    /// the write transaction (failing if someone committed since `snapshot`).
    Explicit {
        snapshot: Arc<ReadView>,
        write: Option<Arc<Mutex<WriteTxn>>>,
        engines: SharedEngineTxns,
    },
}

/// What a reading statement reads through.
pub(crate) struct ReadScope {
    pub(crate) view: Arc<dyn DataView>,
    pub(crate) engines: SharedEngineTxns,
    /// Whether the engine transactions belong to this statement alone (autocommit).
    own: bool,
}

impl ReadScope {
    /// The statement's transactions, as engines see them (reading only).
    pub(crate) fn txns(&self) -> StatementTxns {
        StatementTxns {
            view: self.view.clone(),
            write: None,
            engines: self.engines.clone(),
        }
    }
}

/// The engine transactions a streaming read closes when its stream ends.
pub(crate) struct StatementEnd {
    engines: SharedEngineTxns,
}

impl StatementEnd {
    /// Closes the statement's engine transactions (reads only: nothing can be lost).
    pub(crate) fn finish(self) -> Result<()> {
        end_engines(self.engines, true)
    }
}

/// The write scope of one statement, and whether the statement owns its transaction.
pub(crate) struct StatementWrite {
    pub(crate) scope: WriteScope,
    own: bool,
}

/// The transaction state of one connection.
pub(crate) struct Transactions {
    store: Arc<Store>,
    state: tokio::sync::Mutex<TxnState>,
    /// How long a write waits for the writer lock, in milliseconds.
    busy_timeout_ms: AtomicU64,
}

impl Transactions {
    pub(crate) fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            state: tokio::sync::Mutex::new(TxnState::Autocommit),
            busy_timeout_ms: AtomicU64::new(5000),
        }
    }

    /// How long a write waits for another connection's transaction to finish.
    pub(crate) fn set_busy_timeout(&self, timeout: Duration) {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.busy_timeout_ms.store(ms, Ordering::Relaxed);
    }

    fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.busy_timeout_ms.load(Ordering::Relaxed))
    }

    /// Whether an explicit transaction is open.
    pub(crate) async fn in_transaction(&self) -> bool {
        matches!(*self.state.lock().await, TxnState::Explicit { .. })
    }

    /// The view a reading statement uses and the engine transactions it reads through.
    pub(crate) async fn read(&self) -> Result<ReadScope> {
        let state = self.state.lock().await;
        Ok(match &*state {
            TxnState::Autocommit => ReadScope {
                view: self.store.read_view()?,
                engines: EngineTxns::new(false),
                own: true,
            },
            TxnState::Explicit {
                write: Some(w),
                engines,
                ..
            } => ReadScope {
                view: w.clone(),
                engines: engines.clone(),
                own: false,
            },
            TxnState::Explicit {
                snapshot, engines, ..
            } => ReadScope {
                view: snapshot.clone(),
                engines: engines.clone(),
                own: false,
            },
        })
    }

    /// What a statement starting now reads through, without waiting: `None` while another
    /// call holds the transaction state. Reads of the built-in engine only (no engine
    /// transactions are opened).
    pub(crate) fn try_read_view(&self) -> Option<Result<Arc<dyn DataView>>> {
        let state = self.state.try_lock().ok()?;
        Some(match &*state {
            TxnState::Autocommit => self.store.read_view().map(|v| v as Arc<dyn DataView>),
            TxnState::Explicit { write: Some(w), .. } => Ok(w.clone() as Arc<dyn DataView>),
            TxnState::Explicit { snapshot, .. } => Ok(snapshot.clone() as Arc<dyn DataView>),
        })
    }

    /// The write scope of the open explicit transaction once it has written, without
    /// waiting: `None` in autocommit, before the transaction's first write, or while another
    /// call holds the transaction state (those go through [`Transactions::write`]).
    pub(crate) fn try_open_write(&self) -> Option<WriteScope> {
        let state = self.state.try_lock().ok()?;
        match &*state {
            TxnState::Explicit {
                write: Some(w),
                engines,
                ..
            } => Some(WriteScope {
                w: w.clone(),
                engines: engines.clone(),
            }),
            _ => None,
        }
    }

    /// Hands a reading statement's end to a stream that outlives this call: `None` when the
    /// statement does not own its engine transactions.
    pub(crate) fn defer_read(&self, read: ReadScope) -> Option<StatementEnd> {
        read.own.then_some(StatementEnd {
            engines: read.engines,
        })
    }

    /// Ends a reading statement: its own engine transactions close (reads only, so closing
    /// them cannot lose anything).
    pub(crate) fn end_read(&self, read: ReadScope, ok: bool) -> Result<()> {
        if read.own {
            end_engines(read.engines, ok)?;
        }
        Ok(())
    }

    /// The write transaction a writing statement uses: the open explicit one (opened now at
    /// its first write), or a new one of its own.
    pub(crate) async fn write(&self) -> Result<StatementWrite> {
        let mut state = self.state.lock().await;
        match &mut *state {
            TxnState::Autocommit => {
                drop(state);
                let w = self.store.begin_write(self.busy_timeout(), None).await?;
                Ok(StatementWrite {
                    scope: WriteScope {
                        w: Arc::new(Mutex::new(w)),
                        engines: EngineTxns::new(false),
                    },
                    own: true,
                })
            }
            TxnState::Explicit {
                snapshot,
                write,
                engines,
            } => {
                let w = match write {
                    Some(w) => w.clone(),
                    None => {
                        let version = snapshot.data_version();
                        let w = self
                            .store
                            .begin_write(self.busy_timeout(), Some(version))
                            .await?;
                        let w = Arc::new(Mutex::new(w));
                        *write = Some(w.clone());
                        w
                    }
                };
                Ok(StatementWrite {
                    scope: WriteScope {
                        w,
                        engines: engines.clone(),
                    },
                    own: false,
                })
            }
        }
    }

    /// Ends a writing statement: a transaction of its own commits when the statement
    /// succeeded and rolls back when it failed.
    pub(crate) async fn end_write(
        &self,
        write: StatementWrite,
        result: Result<ResultSet>,
    ) -> Result<ResultSet> {
        if !write.own {
            return result;
        }
        let WriteScope { w, engines } = write.scope;
        let w = unwrap_released(w, "write transaction still in use")?.into_inner();
        let engines = unwrap_engines(engines)?;
        match result {
            Ok(r) => {
                commit_all(&self.store, w, engines).await?;
                Ok(r)
            }
            Err(e) => {
                engines.rollback();
                w.rollback()?;
                Err(e)
            }
        }
    }

    /// `BEGIN`.
    pub(crate) async fn begin(&self) -> Result<ResultSet> {
        let mut state = self.state.lock().await;
        if let TxnState::Explicit { .. } = *state {
            return Err(Error::Transaction(
                SqlState::ActiveSqlTransaction,
                "a transaction is already in progress".into(),
            ));
        }
        *state = TxnState::Explicit {
            snapshot: self.store.read_view()?,
            write: None,
            engines: EngineTxns::new(true),
        };
        Ok(ResultSet::empty())
    }

    /// `COMMIT`.
    pub(crate) async fn commit(&self) -> Result<ResultSet> {
        let mut state = self.state.lock().await;
        match take_txn(&mut state, "COMMIT")? {
            (Some(w), engines) => commit_all(&self.store, w, engines).await?,
            (None, mut engines) => {
                // Nothing was written to redb; the engines may still have been.
                if let Err(e) = engines.prepare() {
                    engines.rollback();
                    return Err(e);
                }
                engines.commit()?;
            }
        }
        Ok(ResultSet::empty())
    }

    /// `ROLLBACK`.
    pub(crate) async fn rollback(&self) -> Result<ResultSet> {
        let mut state = self.state.lock().await;
        let (w, engines) = take_txn(&mut state, "ROLLBACK")?;
        engines.rollback();
        if let Some(w) = w {
            w.rollback()?;
        }
        Ok(ResultSet::empty())
    }
}

impl Transactions {
    /// `ROLLBACK` from synchronous code (a `Drop`): waits for the transaction state outside
    /// an async runtime; inside one, where waiting could deadlock the runtime, fails if
    /// another call holds the state at this moment.
    pub(crate) fn rollback_now(&self) -> Result<()> {
        let mut state = if tokio::runtime::Handle::try_current().is_err() {
            self.state.blocking_lock()
        } else {
            self.state.try_lock().map_err(|_| {
                Error::Transaction(
                    SqlState::ObjectInUse,
                    "the transaction is in use; it was not rolled back".into(),
                )
            })?
        };
        let (w, engines) = take_txn(&mut state, "ROLLBACK")?;
        engines.rollback();
        if let Some(w) = w {
            w.rollback()?;
        }
        Ok(())
    }
}

/// Ends the explicit transaction, handing back its write and engine transactions.
fn take_txn(state: &mut TxnState, verb: &str) -> Result<(Option<WriteTxn>, EngineTxns)> {
    match std::mem::replace(state, TxnState::Autocommit) {
        TxnState::Autocommit => Err(Error::Transaction(
            SqlState::NoActiveSqlTransaction,
            format!("cannot {verb}: no transaction is in progress"),
        )),
        TxnState::Explicit {
            write: None,
            engines,
            ..
        } => Ok((None, unwrap_engines(engines)?)),
        TxnState::Explicit {
            write: Some(w),
            engines,
            ..
        } => {
            let w = unwrap_released(w, "write transaction still in use")?.into_inner();
            Ok((Some(w), unwrap_engines(engines)?))
        }
    }
}

/// Takes the engine transactions back from their shared handle.
///
/// A scan's blocking reader thread may still hold the handle for a moment after its
/// statement ended (it cannot be cancelled); wait for it.
fn unwrap_engines(engines: SharedEngineTxns) -> Result<EngineTxns> {
    Ok(unwrap_released(engines, "engine transactions still in use by a scan")?.into_inner())
}

/// The value of `shared` once every other holder let it go. The operators of a finished or
/// dropped statement release their references as their tasks wind down, which on a busy
/// machine can be a little after the statement ended: this waits for them (up to 30 s).
fn unwrap_released<T>(mut shared: Arc<T>, in_use: &str) -> Result<T> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Arc::try_unwrap(shared) {
            Ok(value) => return Ok(value),
            Err(still) if Instant::now() < deadline => {
                shared = still;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => {
                return Err(Error::Transaction(
                    SqlState::InternalError,
                    in_use.to_string(),
                ))
            }
        }
    }
}

/// Ends the engine transactions of a reading statement.
fn end_engines(engines: SharedEngineTxns, ok: bool) -> Result<()> {
    let engines = unwrap_engines(engines)?;
    if ok {
        engines.commit()
    } else {
        engines.rollback();
        Ok(())
    }
}

/// Commits a database transaction: engines prepare, redb commits, engines publish. Returns
/// once the commit is durable: a transaction that changed only redb may share its fsync with
/// concurrent commits (group commit, `engines/redb/group.rs`) and then waits for it here.
async fn commit_all(store: &Store, w: WriteTxn, mut engines: EngineTxns) -> Result<()> {
    if let Err(e) = engines.prepare() {
        engines.rollback();
        w.rollback()?;
        return Err(e);
    }
    // Engine changes publish right after the redb commit, so it must be durable by then.
    let may_defer = engines.writes_nothing();
    let (writer, deferred) = match w.commit(may_defer) {
        Ok(committed) => committed,
        Err(e) => {
            engines.rollback();
            return Err(e);
        }
    };
    // Engines publish before the next writer may start: it must see their changes.
    let published = engines.commit();
    drop(writer);
    published?;
    if let Some(seq) = deferred {
        // Not acknowledged before it is durable. (If this future is dropped here, the commit
        // becomes durable and visible with the next durable commit of any writer.)
        store.wait_durable(seq).await?;
    }
    Ok(())
}
