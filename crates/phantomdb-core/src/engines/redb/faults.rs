//! Injected I/O failures: a redb storage backend over the database file that fails writes or
//! syncs from a chosen point on, as a full disk or a failing device would.
//!
//! Used to test that a statement hit by an I/O error fails with a clear error (`58030`) and
//! that what was committed before stays intact ([`crate::Database::open_with_io_faults`]).

use std::fs::File;
use std::io;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// No fault armed.
const NEVER: u64 = u64::MAX;

/// Where injected failures start. Counters count calls made through the backend since the
/// database was opened; a fault armed at call `n` fails that call and every later one of its
/// kind (a full disk stays full) until [`IoFaults::clear`].
#[derive(Debug)]
pub struct IoFaults {
    writes: AtomicU64,
    syncs: AtomicU64,
    fail_write_at: AtomicU64,
    fail_sync_at: AtomicU64,
    injected: AtomicU64,
}

impl Default for IoFaults {
    fn default() -> Self {
        IoFaults {
            writes: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            fail_write_at: AtomicU64::new(NEVER),
            fail_sync_at: AtomicU64::new(NEVER),
            injected: AtomicU64::new(0),
        }
    }
}

impl IoFaults {
    /// No faults armed yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Writes (and file growth) fail once `n` more have succeeded.
    pub fn fail_writes_after(&self, n: u64) {
        let at = self.writes.load(Ordering::SeqCst).saturating_add(n);
        self.fail_write_at.store(at, Ordering::SeqCst);
    }

    /// Syncs fail once `n` more have succeeded.
    pub fn fail_syncs_after(&self, n: u64) {
        let at = self.syncs.load(Ordering::SeqCst).saturating_add(n);
        self.fail_sync_at.store(at, Ordering::SeqCst);
    }

    /// Disarms every fault: I/O succeeds again.
    pub fn clear(&self) {
        self.fail_write_at.store(NEVER, Ordering::SeqCst);
        self.fail_sync_at.store(NEVER, Ordering::SeqCst);
    }

    /// Writes (including file growth) attempted so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Syncs attempted so far.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    /// Calls failed on purpose so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    /// Counts a call; an error if its fault is armed at or before it.
    fn pass(&self, counter: &AtomicU64, armed: &AtomicU64, what: &str) -> io::Result<()> {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        if n >= armed.load(Ordering::SeqCst) {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!("{what} failed: no space left on device (injected fault)"),
            ));
        }
        Ok(())
    }
}

/// The file backend with [`IoFaults`] in front of its writes and syncs.
#[derive(Debug)]
pub(super) struct FaultyBackend {
    inner: FileBackend,
    faults: Arc<IoFaults>,
}

impl FaultyBackend {
    pub(super) fn new(file: File, faults: Arc<IoFaults>) -> Result<Self, redb::DatabaseError> {
        Ok(FaultyBackend {
            inner: FileBackend::new(file)?,
            faults,
        })
    }

    fn write_fault(&self, what: &str) -> io::Result<()> {
        let f = &self.faults;
        f.pass(&f.writes, &f.fail_write_at, what)
    }
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.write_fault("growing the file")?;
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        let f = &self.faults;
        f.pass(&f.syncs, &f.fail_sync_at, "fsync")?;
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.write_fault("write")?;
        self.inner.write(offset, data)
    }

    fn close(&self) -> io::Result<()> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

impl super::store::Store {
    /// Opens (creating if needed) the database file at `path` through a [`FaultyBackend`].
    pub(crate) fn open_with_io_faults(
        path: &std::path::Path,
        faults: Arc<IoFaults>,
    ) -> crate::error::Result<Arc<Self>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let backend = FaultyBackend::new(file, faults)?;
        let db = redb::Builder::new().create_with_backend(backend)?;
        Self::init(db)
    }
}
