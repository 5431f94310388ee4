//! Memory: one limit per process (`memory_limit`), split between the default engine's cache
//! of decoded segments and columns ([`cache_budget`]) and one pool that every query operator
//! reserves from, with a cap per session within it (`SET memory_limit`). Sorts and grouped aggregates that cannot grow spill to
//! temporary files (DataFusion's disk manager, in the OS temporary directory, removed when
//! done); an operator that cannot spill (a hash join's build side) fails with `53200`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use datafusion::common::DataFusionError;
use datafusion::execution::disk_manager::DiskManager;
use datafusion::execution::memory_pool::{
    FairSpillPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};

use crate::error::{Error, Result, SqlState};

/// The process limit when none is set: this share of physical memory.
const DEFAULT_SHARE: f64 = 0.8;
/// The process limit when physical memory is unknown.
const FALLBACK_LIMIT: usize = 4 << 30;

/// The decoded-data cache takes this fraction of `memory_limit` (1/4: with the default limit
/// of 80% of physical memory, 20% of it); the query operators' pool gets the rest.
const CACHE_SHARE_DIVISOR: usize = 4;

static LIMIT: OnceLock<usize> = OnceLock::new();

/// Sets the memory limit of this process's query pool, in bytes. Call it before the first
/// database is opened; afterwards the pool exists and the call fails.
pub fn set_memory_limit(bytes: usize) -> Result<()> {
    let wanted = bytes.max(1 << 20);
    let actual = *LIMIT.get_or_init(|| wanted);
    if actual == wanted {
        Ok(())
    } else {
        Err(Error::Unsupported(format!(
            "the memory limit is already {actual} bytes (set it before opening a database)"
        )))
    }
}

/// The process's memory limit in bytes.
pub fn memory_limit() -> usize {
    *LIMIT.get_or_init(default_limit)
}

/// `(decoded-data cache, operator pool)` bytes of a process limit.
fn split(limit: usize) -> (usize, usize) {
    let cache = limit / CACHE_SHARE_DIVISOR;
    (cache, limit - cache)
}

/// The byte budget of the default engine's cache of decoded segments and columns, shared by
/// every database the process opens: a share of [`memory_limit`].
pub(crate) fn cache_budget() -> usize {
    split(memory_limit()).0
}

/// 80% of physical memory, from `/proc/meminfo` (where there is one).
fn default_limit() -> usize {
    let total_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
    match total_kb {
        Some(kb) => ((kb as f64) * 1024.0 * DEFAULT_SHARE) as usize,
        None => FALLBACK_LIMIT,
    }
}

/// The process-wide pool and temporary-file manager.
fn process() -> Result<&'static (Arc<dyn MemoryPool>, Arc<RuntimeEnv>)> {
    static PROCESS: OnceLock<(Arc<dyn MemoryPool>, Arc<RuntimeEnv>)> = OnceLock::new();
    if let Some(p) = PROCESS.get() {
        return Ok(p);
    }
    let pool: Arc<dyn MemoryPool> = Arc::new(FairSpillPool::new(split(memory_limit()).1));
    let env = RuntimeEnvBuilder::new()
        .with_memory_pool(pool.clone())
        .build_arc()?;
    Ok(PROCESS.get_or_init(|| (pool, env)))
}

/// A session's cap in bytes (0: none but the process limit), shared with its pool.
pub(crate) type SessionCap = Arc<AtomicUsize>;

/// The runtime of one session: the process pool seen through the session's cap, and the
/// process's temporary files and object stores.
pub(crate) fn session_runtime(cap: SessionCap) -> Result<Arc<RuntimeEnv>> {
    let (pool, env) = process()?;
    let session_pool = Arc::new(SessionPool {
        process: pool.clone(),
        cap,
        usage: Mutex::new(SessionUsage::default()),
    });
    let mut builder = RuntimeEnvBuilder::new().with_memory_pool(session_pool);
    builder.disk_manager = Some(env.disk_manager.clone() as Arc<DiskManager>);
    builder.object_store_registry = env.object_store_registry.clone();
    Ok(builder.build_arc()?)
}

/// The process pool with a session's cap on top. Within the cap, operators that can spill
/// share fairly what the others leave (DataFusion's `FairSpillPool` rule), so one partition's
/// sort cannot starve its neighbours into failing.
#[derive(Debug)]
struct SessionPool {
    process: Arc<dyn MemoryPool>,
    cap: SessionCap,
    usage: Mutex<SessionUsage>,
}

/// Operators that can spill leave `cap / SPILLABLE_HEADROOM_DIVISOR` to those that cannot.
const SPILLABLE_HEADROOM_DIVISOR: usize = 4;
/// An operator that can spill may hold `cap / SPILLABLE_FLOOR_DIVISOR` whatever its share.
const SPILLABLE_FLOOR_DIVISOR: usize = 16;

/// What a session's operators hold.
#[derive(Debug, Default)]
struct SessionUsage {
    spillable_consumers: usize,
    spillable: usize,
    unspillable: usize,
}

impl SessionUsage {
    fn add(&mut self, spills: bool, bytes: usize) {
        if spills {
            self.spillable += bytes;
        } else {
            self.unspillable += bytes;
        }
    }

    fn sub(&mut self, spills: bool, bytes: usize) {
        if spills {
            self.spillable = self.spillable.saturating_sub(bytes);
        } else {
            self.unspillable = self.unspillable.saturating_sub(bytes);
        }
    }

    /// Whether `reservation` may grow by `additional` under `cap`. Operators that can spill
    /// share three quarters of the cap (less what the others hold): the last quarter stays
    /// free for operators that cannot spill and start late, such as the merge above sorts
    /// that have already filled their shares. A spilling operator may always hold a small
    /// floor while the session as a whole is under its cap, so a partition that starts late
    /// (its neighbours merging their spill files) can still take a batch.
    fn fits(&self, cap: usize, reservation: &MemoryReservation, additional: usize) -> bool {
        let total_fits = self.spillable + self.unspillable + additional <= cap;
        if reservation.consumer().can_spill() {
            let budget = cap - cap / SPILLABLE_HEADROOM_DIVISOR;
            let share = budget.saturating_sub(self.unspillable) / self.spillable_consumers.max(1);
            let wanted = reservation.size() + additional;
            wanted <= share || (wanted <= cap / SPILLABLE_FLOOR_DIVISOR && total_fits)
        } else {
            total_fits
        }
    }
}

impl std::fmt::Display for SessionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "session pool ({} bytes used, cap {})",
            self.reserved(),
            self.cap.load(Ordering::SeqCst)
        )
    }
}

impl MemoryPool for SessionPool {
    fn name(&self) -> &str {
        "phantomdb_session"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        if consumer.can_spill() {
            self.usage.lock().spillable_consumers += 1;
        }
        self.process.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        if consumer.can_spill() {
            let mut usage = self.usage.lock();
            usage.spillable_consumers = usage.spillable_consumers.saturating_sub(1);
        }
        self.process.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.process.grow(reservation, additional);
        let spills = reservation.consumer().can_spill();
        self.usage.lock().add(spills, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.process.shrink(reservation, shrink);
        let spills = reservation.consumer().can_spill();
        self.usage.lock().sub(spills, shrink);
    }

    fn try_grow(
        &self,
        reservation: &MemoryReservation,
        additional: usize,
    ) -> datafusion::error::Result<()> {
        let cap = self.cap.load(Ordering::SeqCst);
        let mut usage = self.usage.lock();
        if cap > 0 && !usage.fits(cap, reservation, additional) {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{} cannot take {additional} more bytes: the session holds {} of its \
                 memory_limit of {cap} bytes",
                reservation.consumer().name(),
                usage.spillable + usage.unspillable
            )));
        }
        self.process.try_grow(reservation, additional)?;
        usage.add(reservation.consumer().can_spill(), additional);
        Ok(())
    }

    fn reserved(&self) -> usize {
        let usage = self.usage.lock();
        usage.spillable + usage.unspillable
    }

    fn memory_limit(&self) -> MemoryLimit {
        match self.cap.load(Ordering::SeqCst) {
            0 => self.process.memory_limit(),
            cap => MemoryLimit::Finite(cap),
        }
    }
}

/// A size as PostgreSQL and DuckDB write it: bytes, or a number with `kB`, `MB`, `GB`, `TB`
/// (powers of 1024; `KiB`/`MiB`/`GiB`/`TiB` too), e.g. `'2GB'`, `'512MB'`.
pub(crate) fn parse_size(value: &str) -> std::result::Result<usize, String> {
    let v = value.trim();
    let split = v
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| "expects a size such as '2GB' or '512MB'".to_string())?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "kib" => 1024.0,
        "mb" | "mib" => 1024.0 * 1024.0,
        "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown unit \"{other}\" (kB, MB, GB, TB)")),
    };
    let bytes = number * scale;
    if !bytes.is_finite() || bytes < 0.0 || bytes > usize::MAX as f64 {
        return Err("out of range".into());
    }
    Ok(bytes as usize)
}

/// Parses a memory size such as `2GB` or `512MB` (see `SET memory_limit`), in bytes.
pub fn parse_memory_size(value: &str) -> Result<usize> {
    parse_size(value).map_err(|why| {
        Error::Data(
            SqlState::InvalidParameterValue,
            format!("invalid memory size \"{value}\": {why}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_split_between_the_cache_and_the_operators() {
        assert_eq!(split(8 << 30), (2 << 30, 6 << 30));
        let (cache, pool) = split((1 << 20) + 3);
        assert_eq!(cache + pool, (1 << 20) + 3);
    }
}
