//! Group commit: commits that arrive while another commit is being flushed share one fsync.
//!
//! redb syncs the file inside `WriteTransaction::commit`, while the transaction (and so our
//! single-writer gate) is held, so writers cannot overlap with an fsync. What they can do is
//! commit *non-durably* (`Durability::None`: the new state is kept in memory, nothing is
//! written) and have one durable commit make all of them durable at once: in redb a durable
//! commit persists every non-durable commit before it.
//!
//! The protocol, per commit (see [`super::WriteTxn::commit`]):
//! * no other writer is waiting for the gate and no flush is running: commit durably
//!   (`Durability::Immediate`) as a lone writer would; acknowledged when `commit` returns;
//! * otherwise commit non-durably, release the gate, and wait (in [`Store::wait_durable`])
//!   until a durable commit covers this one. The first waiter with no flush running becomes
//!   the leader: it takes the gate (queueing behind the writers already waiting, which so join
//!   its group), commits an empty transaction durably and wakes everyone it covered.
//!
//! A commit is acknowledged (its `COMMIT` or autocommit statement returns) only once it is
//! durable, so no acknowledged commit can be lost to a crash. Readers never see a commit
//! before it is durable either: autocommit reads and `BEGIN` use the snapshot published after
//! the latest durable commit ([`Store::read_view`]), not redb's newest state.

use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::store::Store;
use crate::error::{Error, Result, SqlState};

/// Commit sequence numbers and the flush in progress, if any.
#[derive(Default)]
struct GroupState {
    /// The sequence number of the latest commit (durable or not).
    committed: u64,
    /// Every commit up to this sequence number is durable.
    durable: u64,
    /// A leader is flushing.
    flushing: bool,
    /// A flush failed: commits up to this number were not made durable, with this error.
    failed: Option<(u64, String)>,
}

/// The group-commit state of one database.
#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<GroupState>,
    /// Signalled when `durable` moves or a flush ends.
    changed: Notify,
    /// Writers waiting for the writer gate in `begin_write`.
    pub(super) waiting: AtomicUsize,
}

/// How a commit is to be made.
pub(crate) enum CommitMode {
    /// Durable when `commit` returns.
    Immediate,
    /// Made durable later by a group flush; wait for it with [`Store::wait_durable`].
    Deferred,
}

impl GroupCommit {
    /// Whether the commit about to be made (by the gate holder) should join a group: other
    /// writers are queued for the gate, or a flush is already running.
    pub(super) fn mode(&self, may_defer: bool) -> CommitMode {
        if may_defer && (self.waiting.load(Ordering::SeqCst) > 0 || self.state.lock().flushing) {
            CommitMode::Deferred
        } else {
            CommitMode::Immediate
        }
    }

    /// Records a commit made by the gate holder; returns its sequence number.
    pub(super) fn committed(&self, mode: &CommitMode) -> u64 {
        let mut s = self.state.lock();
        s.committed += 1;
        let seq = s.committed;
        if let CommitMode::Immediate = mode {
            // A durable commit also makes every non-durable one before it durable.
            s.durable = seq;
            drop(s);
            self.changed.notify_waiters();
        }
        seq
    }
}

impl Store {
    /// Waits until commit `seq` is durable, leading a group flush when none is running.
    pub(crate) async fn wait_durable(&self, seq: u64) -> Result<()> {
        loop {
            let mut notified = pin!(self.group.changed.notified());
            notified.as_mut().enable();
            let lead = {
                let mut s = self.group.state.lock();
                if s.durable >= seq {
                    return Ok(());
                }
                if let Some((upto, e)) = &s.failed {
                    if *upto >= seq {
                        return Err(Error::Transaction(
                            SqlState::InternalError,
                            format!("the commit could not be made durable: {e}"),
                        ));
                    }
                }
                !std::mem::replace(&mut s.flushing, true)
            };
            if lead {
                // Should this future be dropped while leading, the next waiter takes over.
                let mut guard = LeaderGuard {
                    group: &self.group,
                    armed: true,
                };
                self.flush_group().await;
                guard.armed = false;
            } else {
                notified.await;
            }
        }
    }

    /// The leader's flush: one empty durable commit covering every commit made so far.
    async fn flush_group(&self) {
        // No timeout: writers waiting on this flush have committed already.
        let gate = self.write_gate.clone().lock_owned().await;
        let (target, done) = {
            let s = self.group.state.lock();
            (s.committed, s.durable >= s.committed)
        };
        // A writer that took the gate first may have settled the group already.
        let result = if done {
            Ok(())
        } else {
            self.durable_empty_commit()
        };
        {
            let mut s = self.group.state.lock();
            s.flushing = false;
            match result {
                Ok(()) => s.durable = s.durable.max(target),
                Err(e) => s.failed = Some((target, e.to_string())),
            }
        }
        drop(gate);
        self.group.changed.notify_waiters();
    }

    /// Makes every commit so far durable before a writer that may hold the gate for long (an
    /// explicit transaction) starts, so that the commits waiting for a flush are not held up
    /// by it. Called with the gate held.
    pub(super) fn settle_group(&self) -> Result<()> {
        let target = {
            let s = self.group.state.lock();
            if s.durable >= s.committed {
                return Ok(());
            }
            s.committed
        };
        let result = self.durable_empty_commit();
        {
            let mut s = self.group.state.lock();
            match &result {
                Ok(()) => s.durable = s.durable.max(target),
                Err(e) => s.failed = Some((target, e.to_string())),
            }
        }
        self.group.changed.notify_waiters();
        result
    }

    /// Commits an empty write transaction durably (so every commit before it is durable too)
    /// and publishes the snapshot new readers use.
    fn durable_empty_commit(&self) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(redb::Durability::Immediate)
            .map_err(Error::storage)?;
        txn.commit()?;
        self.publish()
    }
}

/// Ends a leader's flush that did not finish (its future was dropped).
struct LeaderGuard<'a> {
    group: &'a GroupCommit,
    armed: bool,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.group.state.lock().flushing = false;
            self.group.changed.notify_waiters();
        }
    }
}
