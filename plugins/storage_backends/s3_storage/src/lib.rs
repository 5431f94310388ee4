//! PhantomDB storage engine `s3_storage`: tables as Parquet files on an S3-compatible object store
//! or a local directory, with atomic, optimistic commits.
//!
//! ```sql
//! CREATE TABLE events (id BIGINT, kind TEXT) USING s3_storage WITH (path = 's3://bucket/warehouse');
//! CREATE TABLE local_t (x INT) USING s3_storage WITH (path = '/var/lib/phantomdb/tables');
//! CREATE TABLE attached (x INT) USING s3_storage WITH (location = 's3://bucket/warehouse/t-0123456789abcdef');
//! ```
//!
//! # Options
//! `WITH (...)` options; every one except `location` may also be set in the plugin
//! configuration (JSON, e.g. `{"path": "s3://bucket/prefix", "endpoint": "http://127.0.0.1:9000",
//! "access_key_id": "...", "secret_access_key": "...", "region": "us-east-1", "allow_http":
//! "true"}`), which supplies defaults. Table options win.
//!
//! | option | meaning |
//! |---|---|
//! | `path` | where new tables go: `s3://bucket/prefix`, an absolute directory or `file:///dir` |
//! | `location` | the table's own directory; set by `CREATE TABLE` (`<path>/<name>-<16 hex>`), or given to attach existing data |
//! | `endpoint` | S3 endpoint URL (path-style requests, so local S3 servers work) |
//! | `region` | S3 region (default `us-east-1`) |
//! | `access_key_id`, `secret_access_key`, `session_token` | S3 credentials (else the usual `AWS_*` environment variables) |
//! | `allow_http` | allow plain-HTTP endpoints (`true`/`false`) |
//! | `row_group_size` | rows per Parquet row group (default 65536) |
//!
//! The plugin configuration also takes `cache_size_mb` (data file cache, default 256).
//! `CREATE TABLE` returns the user's options plus `location`; settings taken from the plugin
//! configuration (credentials in particular) are not copied into the catalog.
//!
//! # Layout
//! ```text
//! <location>/_manifest/00000000000000000000.json   version 0: the empty table
//! <location>/_manifest/00000000000000000001.json   one manifest per commit
//! <location>/data/<32 hex>.parquet                  immutable data files
//! ```
//! A manifest lists the live data files (id, path, rows, size, per-column min/max/null count),
//! the schema (informational) and `next_file_id`.
//!
//! # Commits
//! A transaction reads each table's newest manifest at its first access (its snapshot) and
//! buffers inserts and deletes (row id = `file id << 32 | row index`; rows inserted in the same
//! transaction get ids from a reserved file-id range, so they can be scanned, deleted and updated
//! too). `prepare` writes the new data files: inserted rows and, for every file with deleted
//! rows, a copy without them. `commit` then writes manifest version N+1 in one create-if-absent
//! PUT (`If-None-Match: *` on S3, an atomic link on a file system). If another commit published
//! N+1 first, the commit fails with "could not serialize access due to concurrent update" and
//! its files are deleted. Readers only ever see whole commits. Each table commits atomically; a
//! transaction writing several tables validates all of them before publishing any, but is not
//! atomic across tables.
//!
//! Within one process, commits to a table are also serialised by a lock, which makes the
//! protocol safe on stores whose conditional PUT is not atomic (the s3s-fs test server).
//!
//! # Scans
//! Scans stream one batch per row group, apply projections, limits and all filters the SDK can
//! evaluate (declared exact), skip whole files using the manifest's bounds and whole row groups
//! using the Parquet min/max statistics (not for floating-point columns, whose statistics leave
//! out NaN). Data files are immutable, so they are cached in memory (LRU, `cache_size_mb`).
//!
//! # Not provided
//! No garbage collection: old manifests and data files replaced by later commits stay in the
//! store (they keep old snapshots readable; delete them offline if needed). No HDFS support
//! (no HDFS can run in this project's environment, so it could not be tested).

mod cache;
mod config;
mod engine;
mod files;
mod manifest;
mod prune;
mod runtime;
mod scan;
mod state;
mod txn;

use std::sync::Arc;

use phantomdb_plugin_sdk::prelude::*;

pub use engine::S3StorageEngine;
pub use state::EngineMetrics;

/// The plugin: one engine, configured by [`Plugin::initialize`].
#[derive(Default)]
pub struct S3StoragePlugin {
    engine: S3StorageEngine,
}

impl S3StoragePlugin {
    /// The plugin's engine.
    pub fn engine(&self) -> &S3StorageEngine {
        &self.engine
    }
}

impl Plugin for S3StoragePlugin {
    fn initialize(&mut self, config: &str) -> Result<(), String> {
        self.engine.configure(config)
    }

    fn shutdown(&mut self) {
        self.engine.shutdown();
    }

    fn register(&self, registrar: &mut Registrar) {
        registrar.storage_engines(vec![Arc::new(self.engine.clone())]);
    }
}

phantomdb_plugin! {
    name: "s3_storage",
    version: env!("CARGO_PKG_VERSION"),
    description: "Storage engine: tables as Parquet files on S3 or a local directory",
    host_version: ">=0.1, <0.2",
    plugin_type: Storage,
    plugin: S3StoragePlugin::default(),
}
