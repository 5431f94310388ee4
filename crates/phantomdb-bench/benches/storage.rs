//! The cost of the storage plugin boundary (`cargo bench -p phantomdb-bench --bench storage`).
//!
//! The same table (1M rows of `BIGINT, DOUBLE, TEXT` in Parquet files on a local directory) is
//! scanned through the `s3_storage` engine twice: loaded as a plugin library (calls cross the C
//! ABI, batches cross the Arrow C Stream Interface and are validated), and linked into this
//! binary (the SDK traits called directly, no C boundary). Both databases run the same SQL.
//! The plugin library is built by the bench itself, with the bench's profile.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use phantomdb::engines::EngineInfo;
use phantomdb::plugins::StaticPlugin;
use phantomdb::{Connection, Database};

const ROWS: i64 = 1_000_000;

fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("bench executable lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// Builds the `s3_storage` plugin library with this bench's profile and target dir.
fn plugin_library() -> PathBuf {
    let profile = profile_dir();
    let profile_name = match profile.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(other) => other.to_string(),
    };
    let target = profile.parent().expect("target dir");
    let status = Command::new(env!("CARGO"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .args(["build", "--profile", &profile_name, "--target-dir"])
        .arg(target)
        .args(["-p", "s3_storage"])
        .status()
        .expect("running cargo build for s3_storage");
    assert!(status.success(), "building s3_storage failed");
    profile.join(format!(
        "{}s3_storage{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

/// A database whose `s3_storage` engine is the plugin library.
fn plugin_database() -> Database {
    let db = Database::open_in_memory().expect("database");
    db.plugins()
        .load_plugin(plugin_library(), "{}")
        .expect("load s3_storage");
    db
}

/// A database whose `s3_storage` engine is the same code, linked in.
fn linked_database() -> Database {
    let db = Database::open_in_memory().expect("database");
    let engine = s3_storage::S3StorageEngine::default();
    engine.configure("{}").expect("configure");
    db.plugins()
        .register_plugin(StaticPlugin {
            name: "s3_storage_linked".into(),
            version: "0.1.0".into(),
            description: "s3_storage linked into the binary".into(),
            plugin_type: "storage_backend".into(),
            interfaces: vec!["phantomdb.storage/1".into()],
            functions: Vec::new(),
            engines: vec![EngineInfo::from_engine(
                "s3_storage_linked",
                Arc::new(engine),
            )],
        })
        .expect("register");
    db
}

fn load(conn: &Connection, dir: &Path) {
    conn.execute(&format!(
        "CREATE TABLE t (id BIGINT, v DOUBLE, s TEXT) USING s3_storage WITH (path = '{}')",
        dir.display()
    ))
    .expect("create");
    conn.execute(&format!(
        "INSERT INTO t SELECT value, value * 0.5, concat('row ', value) \
         FROM generate_series(1, {ROWS})"
    ))
    .expect("load");
}

fn bench_scan(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin_db = plugin_database();
    let linked_db = linked_database();
    let plugin = plugin_db.connect().expect("connect");
    let linked = linked_db.connect().expect("connect");
    load(&plugin, &dir.path().join("plugin"));
    load(&linked, &dir.path().join("linked"));
    let queries = [
        ("full_scan", "SELECT sum(v), count(s) FROM t"),
        ("pushdown", "SELECT count(*) FROM t WHERE id > 900000"),
    ];
    for (name, sql) in queries {
        let mut group = c.benchmark_group(format!("s3_storage_{name}"));
        group.sample_size(20);
        group.bench_function("plugin", |b| b.iter(|| plugin.execute(sql).expect("query")));
        group.bench_function("linked", |b| b.iter(|| linked.execute(sql).expect("query")));
        group.finish();
    }
}

criterion_group!(benches, bench_scan);
criterion_main!(benches);
