//! Micro-benchmarks of the plugin machinery (`cargo bench -p phantomdb-bench`).
//!
//! * `scalar/*`: one call of a scalar function on one 8192-row batch: the `math_functions`
//!   plugin's `is_prime` (through the C ABI: Arrow FFI export, plugin call, import) against
//!   the same algorithm as an in-process DataFusion UDF (`is_prime_builtin`).
//! * `load/one_plugin`: `PluginManager::load_plugin` of `math_functions` (manifest
//!   verification + dlopen + initialize + registration). Libraries are never unloaded from
//!   the process, so every iteration loads a fresh, never-loaded copy of the file into a
//!   fresh database (the copy is made outside the timed part).
//! * `load/directory_50`: `load_plugins_from_directory` on 50 distinct plugins: copies of
//!   the `bench_plugin` fixture, each with its own name patched into the manifest (copies of
//!   a bundled plugin would all declare the same functions and clash).
//! * `lookup/*`: finding a function, idle and while two other threads keep loading and
//!   unloading plugins: in the registry snapshot, and as a whole `SELECT is_prime(7)`.
//!
//! The plugin libraries are built by the bench itself (`cargo build -p math_functions -p
//! bench_plugin` in the bench's own profile and target directory).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int64Array};
use arrow::datatypes::{DataType, Field};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};
use phantomdb::plugins::FunctionImpl;
use phantomdb::Database;

const BATCH_ROWS: i64 = 8192;

/// `<target>/<profile>` of this bench executable (`<target>/<profile>/deps/plugins-<hash>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("bench executable lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// Builds the plugin libraries once (same profile and target dir as this bench).
fn plugin_lib(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let profile = profile_dir();
    BUILT.get_or_init(|| {
        let profile_name = match profile.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_string(),
            Some(other) => other.to_string(),
        };
        let target = profile.parent().expect("target dir");
        let status = Command::new(env!("CARGO"))
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
            .args(["build", "--profile", &profile_name, "--target-dir"])
            .arg(target)
            .args(["-p", "math_functions", "-p", "bench_plugin"])
            .status()
            .expect("running cargo build for the plugins");
        assert!(status.success(), "building the plugin libraries failed");
    });
    profile.join(format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir"))
        .path()
}

/// Writes a copy of `lib` to `dest`, with the manifest's plugin name replaced by `name` when
/// given (the manifest is found by its magic, as the loader tests do).
fn copy_plugin(lib: &Path, dest: &Path, name: Option<&str>) {
    let mut data = std::fs::read(lib).expect("read plugin library");
    if let Some(name) = name {
        let magic = phantomdb_plugin_abi::PHANTOMDB_PLUGIN_MAGIC;
        let at = data
            .windows(magic.len())
            .position(|w| w == magic)
            .expect("manifest magic in plugin library");
        let off = at + phantomdb_plugin_abi::manifest_offsets::NAME;
        let field = &mut data[off..off + phantomdb_plugin_abi::MANIFEST_NAME_LEN];
        assert!(name.len() < field.len());
        field.fill(0);
        field[..name.len()].copy_from_slice(name.as_bytes());
    }
    std::fs::write(dest, data).expect("write plugin copy");
}

/// A file name never used before in this process (the loader maps each file once).
fn fresh_name(stem: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    scratch_dir().join(format!(
        "{stem}_{}.{}",
        N.fetch_add(1, Ordering::Relaxed),
        std::env::consts::DLL_EXTENSION
    ))
}

fn scalar_udf(db: &Database, name: &str) -> Arc<ScalarUDF> {
    let registry = db.plugins().snapshot();
    let f = registry
        .functions()
        .find(|f| f.name == name)
        .expect("function registered");
    match &f.implementation {
        FunctionImpl::Scalar(u) => u.clone(),
        other => panic!("{name} is not a scalar UDF: {other:?}"),
    }
}

fn bench_scalar(c: &mut Criterion) {
    let db = Database::open_in_memory().expect("db");
    db.plugins()
        .load_plugin(plugin_lib("math_functions"), "{}")
        .expect("load math_functions");
    let plugin = scalar_udf(&db, "is_prime");
    let builtin = Arc::new(phantomdb_bench::is_prime_builtin_udf());
    let input: ArrayRef = Arc::new(Int64Array::from_iter_values(1..=BATCH_ROWS));
    let config = Arc::new(ConfigOptions::default());
    let arg_field = Arc::new(Field::new("x", DataType::Int64, false));
    let return_field = Arc::new(Field::new("is_prime", DataType::Boolean, true));
    let args = || ScalarFunctionArgs {
        args: vec![ColumnarValue::Array(input.clone())],
        arg_fields: vec![arg_field.clone()],
        number_rows: BATCH_ROWS as usize,
        return_field: return_field.clone(),
        config_options: config.clone(),
    };
    let mut group = c.benchmark_group("scalar");
    group.bench_function("builtin_is_prime_8192", |b| {
        b.iter(|| builtin.invoke_with_args(args()).expect("builtin call"))
    });
    group.bench_function("plugin_is_prime_8192", |b| {
        b.iter(|| plugin.invoke_with_args(args()).expect("plugin call"))
    });
    group.finish();
}

fn bench_load(c: &mut Criterion) {
    let math = plugin_lib("math_functions");
    let fixture = plugin_lib("bench_plugin");
    let mut group = c.benchmark_group("load");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.bench_function("one_plugin", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let db = Database::open_in_memory().expect("db");
                let path = fresh_name("math_functions");
                copy_plugin(&math, &path, None);
                let start = Instant::now();
                db.plugins().load_plugin(&path, "{}").expect("load");
                total += start.elapsed();
                std::fs::remove_file(&path).ok();
            }
            total
        })
    });
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("directory_50", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let db = Database::open_in_memory().expect("db");
                let dir = tempfile::tempdir_in(scratch_dir()).expect("tempdir");
                for i in 0..50 {
                    let name = format!("bench_plugin_{i:02}");
                    let file = fresh_name(&name);
                    let dest = dir.path().join(file.file_name().expect("file name"));
                    copy_plugin(&fixture, &dest, Some(&name));
                }
                let start = Instant::now();
                let load = db
                    .plugins()
                    .load_plugins_from_directory(dir.path())
                    .expect("load dir");
                total += start.elapsed();
                assert_eq!(load.loaded.len(), 50, "failed: {:?}", load.failed);
            }
            total
        })
    });
    group.finish();
}

/// Two threads that keep loading and unloading their own plugin until `stop`.
fn churn(db: &Arc<Database>, stop: &Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<u64>> {
    let fixture = plugin_lib("bench_plugin");
    (0..2)
        .map(|t| {
            let db = db.clone();
            let stop = stop.clone();
            let fixture = fixture.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let name = format!("churn_{t}");
                let mut cycles = 0;
                while !stop.load(Ordering::Relaxed) {
                    let path = fresh_name(&name);
                    copy_plugin(&fixture, &path, Some(&name));
                    db.plugins().load_plugin(&path, "{}").expect("churn load");
                    std::fs::remove_file(&path).ok();
                    rt.block_on(db.plugins().unload_plugin(&name))
                        .expect("churn unload");
                    cycles += 1;
                }
                cycles
            })
        })
        .collect()
}

fn bench_lookup(c: &mut Criterion) {
    let db = Arc::new(Database::open_in_memory().expect("db"));
    db.plugins()
        .load_plugin(plugin_lib("math_functions"), "{}")
        .expect("load math_functions");
    let conn = db.connect().expect("connect");
    let lookup = || db.plugins().function("is_prime").is_some();
    let mut group = c.benchmark_group("lookup");
    group.bench_function("registry_idle", |b| b.iter(|| assert!(lookup())));
    group.bench_function("sql_idle", |b| {
        b.iter(|| conn.execute("SELECT is_prime(7)").expect("query"))
    });
    let stop = Arc::new(AtomicBool::new(false));
    let threads = churn(&db, &stop);
    group.bench_function("registry_during_load_unload", |b| {
        b.iter(|| assert!(lookup()))
    });
    group.bench_function("sql_during_load_unload", |b| {
        b.iter(|| conn.execute("SELECT is_prime(7)").expect("query"))
    });
    stop.store(true, Ordering::Relaxed);
    let cycles: u64 = threads
        .into_iter()
        .map(|t| t.join().expect("churn thread"))
        .sum();
    eprintln!("lookup: {cycles} load/unload cycles ran in the background");
    group.finish();
}

criterion_group!(benches, bench_scalar, bench_load, bench_lookup);
criterion_main!(benches);
