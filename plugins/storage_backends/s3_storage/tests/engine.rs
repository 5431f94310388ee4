//! Engine tests through the SDK traits, against a local directory and an S3 server (s3s-fs on
//! loopback).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use phantomdb_plugin_sdk::prelude::*;
use phantomdb_testkit::S3TestServer;
use s3_storage::S3StorageEngine;

#[path = "engine/server_stop.rs"]
mod server_stop;

/// A backend: an engine configured with a `path`, plus what keeps the storage alive.
struct Env {
    engine: S3StorageEngine,
    config: String,
    /// Where the objects land on disk (local dir, or the bucket directory of the S3 server).
    disk: PathBuf,
    _server: Option<S3TestServer>,
    _dir: tempfile::TempDir,
}

impl Env {
    fn local() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tables");
        let config = serde_json::json!({ "path": path.to_str().expect("utf8") }).to_string();
        Env {
            engine: S3StorageEngine::from_json(&config).expect("engine"),
            config,
            disk: path,
            _server: None,
            _dir: dir,
        }
    }

    fn s3() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = S3TestServer::start(dir.path()).expect("s3 server");
        let config = server.config_json("tables");
        Env {
            engine: S3StorageEngine::from_json(&config).expect("engine"),
            config,
            disk: dir.path().join(S3TestServer::BUCKET).join("tables"),
            _server: Some(server),
            _dir: dir,
        }
    }

    /// A second engine instance on the same storage (like another process).
    fn fresh_engine(&self) -> S3StorageEngine {
        S3StorageEngine::from_json(&self.config).expect("engine")
    }

    fn create(&self, name: &str, options: &[(&str, &str)]) -> TableInfo {
        let mut t = TableInfo {
            id: 1,
            name: name.to_string(),
            schema: schema(),
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        t.options = self.engine.create_table(&t).expect("create table");
        t
    }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("tag", DataType::Utf8View, true),
        Field::new("score", DataType::Float64, true),
    ]))
}

fn rows(ids: std::ops::Range<i64>) -> RecordBatch {
    let n = ids.clone();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(ids.clone())),
            Arc::new(StringArray::from_iter(
                n.clone()
                    .map(|i| (i % 10 != 0).then(|| format!("name{i:06}"))),
            )),
            Arc::new(StringViewArray::from_iter_values(
                n.clone().map(|i| format!("tag{}", i % 3)),
            )),
            Arc::new(Float64Array::from_iter_values(n.map(|i| i as f64 / 2.0))),
        ],
    )
    .expect("batch")
}

fn col(name: &str) -> Box<Filter> {
    Box::new(Filter::Column(name.into()))
}

fn cmp(name: &str, op: CompareOp, v: Value) -> Filter {
    Filter::Compare {
        op,
        left: col(name),
        right: Box::new(Filter::Literal(v)),
    }
}

fn scan(txn: &mut dyn StorageTransaction, t: &TableInfo, req: &ScanRequest) -> Vec<RecordBatch> {
    let stream = txn.scan(t, req).expect("scan");
    let out_schema = stream.schema();
    let batches: Vec<RecordBatch> = stream.map(|b| b.expect("batch")).collect();
    for b in &batches {
        assert_eq!(
            b.schema(),
            out_schema,
            "batches must match the stream schema"
        );
    }
    batches
}

fn count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

/// Sorted values of the `id` column (by name) of the batches.
fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    let mut out: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("id")
                .expect("id column")
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    out.sort_unstable();
    out
}

fn all_ids(engine: &S3StorageEngine, t: &TableInfo) -> Vec<i64> {
    let mut txn = engine.begin().expect("begin");
    let out = ids(&scan(txn.as_mut(), t, &ScanRequest::default()));
    txn.commit().expect("read-only commit");
    out
}

/// Row ids and ids of the rows passing `filters`.
fn row_ids_where(
    txn: &mut dyn StorageTransaction,
    t: &TableInfo,
    filters: Vec<Filter>,
) -> (UInt64Array, Vec<i64>) {
    let req = ScanRequest {
        projection: Some(vec![0]),
        filters,
        with_row_ids: true,
        ..Default::default()
    };
    let batches = scan(txn, t, &req);
    let mut rids: Vec<u64> = Vec::new();
    let mut vals: Vec<i64> = Vec::new();
    for b in &batches {
        assert_eq!(b.schema().field(1).name(), ROW_ID_COLUMN);
        rids.extend(b.column(1).as_primitive::<UInt64Type>().values().iter());
        vals.extend(b.column(0).as_primitive::<Int64Type>().values().iter());
    }
    (UInt64Array::from(rids), vals)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The table directory on disk.
fn table_dir(env: &Env, t: &TableInfo) -> PathBuf {
    let loc = &t.options["location"];
    let name = loc.rsplit('/').next().expect("dir name");
    env.disk.join(name)
}

fn parquet_files(env: &Env, t: &TableInfo) -> usize {
    files_under(&table_dir(env, t).join("data"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .count()
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(#[test] fn $name() { super::$name(super::Env::local()); })*
        }
        mod s3 {
            $(#[test] fn $name() { super::$name(super::Env::s3()); })*
        }
    };
}

both_backends!(
    create_insert_scan,
    projection_filters_limit,
    delete_and_update,
    commit_visibility,
    rollback_discards,
    persistence_across_engines,
    concurrent_commit_conflict,
    concurrent_committers_threads,
    row_group_pruning,
    statistics,
    drop_and_list_tables,
    attach_existing_location,
    empty_projection_counts,
);

fn create_insert_scan(env: Env) {
    let t = env.create("Orders", &[]);
    let loc = t.options["location"].clone();
    assert!(loc.contains("/tables/Orders-"), "{loc}");
    // Only location is added: secrets of the plugin config stay out of the catalog.
    assert_eq!(t.options.len(), 1, "{:?}", t.options);
    assert_eq!(
        env.engine.capabilities().names(),
        vec!["transactions", "update_delete", "statistics"]
    );

    let mut txn = env.engine.begin().expect("begin");
    txn.insert(&t, rows(0..600)).expect("insert");
    txn.insert(&t, rows(600..1000)).expect("insert");
    // The transaction sees its own writes.
    assert_eq!(
        count(&scan(txn.as_mut(), &t, &ScanRequest::default())),
        1000
    );
    txn.commit().expect("commit");

    let mut txn = env.engine.begin().expect("begin");
    let batches = scan(txn.as_mut(), &t, &ScanRequest::default());
    assert_eq!(ids(&batches), (0..1000).collect::<Vec<_>>());
    // Exactly the table's schema (Utf8 stays Utf8, Utf8View stays Utf8View).
    assert_eq!(batches[0].schema(), schema());
    let b = arrow_select::concat::concat_batches(&schema(), &batches).expect("concat");
    let names = b.column(1).as_string::<i32>();
    assert!(names.is_null(0));
    assert_eq!(names.value(1), "name000001");
    assert_eq!(b.column(2).as_string_view().value(4), "tag1");
    txn.commit().expect("commit");
    assert_eq!(parquet_files(&env, &t), 1);
}

fn projection_filters_limit(env: Env) {
    let t = env.create("t", &[]);
    let mut txn = env.engine.begin().expect("begin");
    txn.insert(&t, rows(0..1000)).expect("insert");
    txn.commit().expect("commit");

    let mut txn = env.engine.begin().expect("begin");
    // Projection: only `tag`, then `score`.
    let req = ScanRequest {
        projection: Some(vec![2, 3]),
        ..Default::default()
    };
    let b = scan(txn.as_mut(), &t, &req);
    assert_eq!(b[0].num_columns(), 2);
    assert_eq!(b[0].schema().field(0).name(), "tag");
    assert_eq!(b[0].schema().field(1).data_type(), &DataType::Float64);
    assert_eq!(count(&b), 1000);

    // Filters on columns outside the projection.
    let filters = vec![
        cmp("id", CompareOp::GtEq, Value::Int(900)),
        Filter::IsNotNull(col("name")),
        Filter::InList {
            expr: col("tag"),
            list: vec![Filter::Literal(Value::Str("tag0".into()))],
            negated: false,
        },
    ];
    let support = env.engine.supports_filters(&t, &filters);
    assert!(
        support.iter().all(|s| *s == FilterSupport::Exact),
        "{support:?}"
    );
    let unknown = vec![cmp("nope", CompareOp::Eq, Value::Int(1))];
    assert_eq!(
        env.engine.supports_filters(&t, &unknown),
        vec![FilterSupport::Unsupported]
    );
    let req = ScanRequest {
        projection: Some(vec![3]),
        filters: filters.clone(),
        ..Default::default()
    };
    let b = scan(txn.as_mut(), &t, &req);
    let expected: Vec<i64> = (900..1000).filter(|i| i % 10 != 0 && i % 3 == 0).collect();
    assert_eq!(count(&b), expected.len());
    let mut scores: Vec<f64> = b
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Float64Type>().values().to_vec())
        .collect();
    scores.sort_by(f64::total_cmp);
    assert_eq!(
        scores,
        expected.iter().map(|i| *i as f64 / 2.0).collect::<Vec<_>>()
    );

    // Float filter (never pruned, still exact).
    let req = ScanRequest {
        filters: vec![cmp("score", CompareOp::Lt, Value::Float(5.0))],
        ..Default::default()
    };
    assert_eq!(
        ids(&scan(txn.as_mut(), &t, &req)),
        (0..10).collect::<Vec<_>>()
    );

    // Limit stops early, with and without filters.
    let req = ScanRequest {
        limit: Some(7),
        ..Default::default()
    };
    assert_eq!(count(&scan(txn.as_mut(), &t, &req)), 7);
    let req = ScanRequest {
        limit: Some(3),
        filters: vec![cmp("id", CompareOp::Gt, Value::Int(500))],
        with_row_ids: true,
        ..Default::default()
    };
    let b = scan(txn.as_mut(), &t, &req);
    assert_eq!(count(&b), 3);
    assert_eq!(b[0].schema().field(4).name(), ROW_ID_COLUMN);
    assert!(ids(&b).iter().all(|i| *i > 500));

    // Row ids are unique.
    let (rids, _) = row_ids_where(txn.as_mut(), &t, vec![]);
    let mut v = rids.values().to_vec();
    v.sort_unstable();
    v.dedup();
    assert_eq!(v.len(), 1000);
    txn.commit().expect("commit");
}

fn delete_and_update(env: Env) {
    let t = env.create("t", &[]);
    let mut txn = env.engine.begin().expect("begin");
    txn.insert(&t, rows(0..100)).expect("insert");
    txn.commit().expect("commit");

    let mut txn = env.engine.begin().expect("begin");
    // DELETE WHERE id < 10
    let (rids, vals) = row_ids_where(
        txn.as_mut(),
        &t,
        vec![cmp("id", CompareOp::Lt, Value::Int(10))],
    );
    assert_eq!(vals.len(), 10);
    assert_eq!(txn.delete(&t, &rids).expect("delete"), 10);
    // Deleting again counts nothing.
    assert_eq!(txn.delete(&t, &rids).expect("delete again"), 0);
    // Unknown row ids are refused.
    assert!(txn
        .delete(&t, &UInt64Array::from(vec![999u64 << 32]))
        .is_err());

    // UPDATE SET name = 'upd' WHERE id BETWEEN 10 AND 19
    let (rids, vals) = row_ids_where(
        txn.as_mut(),
        &t,
        vec![
            cmp("id", CompareOp::GtEq, Value::Int(10)),
            cmp("id", CompareOp::LtEq, Value::Int(19)),
        ],
    );
    let mut new_rows = rows(0..vals.len() as i64);
    let id_col: ArrayRef = Arc::new(Int64Array::from(vals.clone()));
    let name_col: ArrayRef = Arc::new(StringArray::from(vec!["upd"; vals.len()]));
    let mut cols = new_rows.columns().to_vec();
    cols[0] = id_col;
    cols[1] = name_col;
    new_rows = RecordBatch::try_new(schema(), cols).expect("rows");
    assert_eq!(txn.update(&t, &rids, new_rows).expect("update"), 10);

    // Rows inserted in this transaction can be scanned with row ids, deleted and updated.
    txn.insert(&t, rows(1000..1005)).expect("insert");
    let (rids, vals) = row_ids_where(
        txn.as_mut(),
        &t,
        vec![cmp("id", CompareOp::GtEq, Value::Int(1000))],
    );
    assert_eq!(vals.len(), 5);
    let pos = |v: i64| vals.iter().position(|x| *x == v).expect("row");
    assert_eq!(
        txn.delete(&t, &UInt64Array::from(vec![rids.value(pos(1000))]))
            .expect("delete pending"),
        1
    );
    let mut upd = rows(1001..1002);
    let mut cols = upd.columns().to_vec();
    cols[1] = Arc::new(StringArray::from(vec!["pending-upd"]));
    upd = RecordBatch::try_new(schema(), cols).expect("rows");
    assert_eq!(
        txn.update(&t, &UInt64Array::from(vec![rids.value(pos(1001))]), upd)
            .expect("update pending"),
        1
    );

    let check = |batches: &[RecordBatch]| {
        let mut expected: Vec<i64> = (10..100).chain(1001..1005).collect();
        expected.sort_unstable();
        assert_eq!(ids(batches), expected);
        let mut upd = 0;
        for b in batches {
            let names = b.column(1).as_string::<i32>();
            let idc = b.column(0).as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                let id = idc.value(i);
                if (10..20).contains(&id) {
                    assert_eq!(names.value(i), "upd");
                    upd += 1;
                }
                if id == 1001 {
                    assert_eq!(names.value(i), "pending-upd");
                }
            }
        }
        assert_eq!(upd, 10);
    };
    check(&scan(txn.as_mut(), &t, &ScanRequest::default()));
    txn.commit().expect("commit");

    check(&{
        let mut txn = env.engine.begin().expect("begin");
        scan(txn.as_mut(), &t, &ScanRequest::default())
    });
    // And from a fresh engine (nothing cached).
    let other = env.fresh_engine();
    let mut txn = other.begin().expect("begin");
    check(&scan(txn.as_mut(), &t, &ScanRequest::default()));

    // Delete everything: the table is empty afterwards.
    let (rids, _) = row_ids_where(txn.as_mut(), &t, vec![]);
    assert_eq!(txn.delete(&t, &rids).expect("delete all"), 94);
    txn.commit().expect("commit");
    assert!(all_ids(&env.engine, &t).is_empty());
}

fn commit_visibility(env: Env) {
    let t = env.create("t", &[]);
    let mut writer = env.engine.begin().expect("begin");
    writer.insert(&t, rows(0..10)).expect("insert");

    // Started before the commit (and read before it): does not see it, even afterwards.
    let mut before = env.engine.begin().expect("begin");
    assert_eq!(
        count(&scan(before.as_mut(), &t, &ScanRequest::default())),
        0
    );
    writer.commit().expect("commit");
    assert_eq!(
        count(&scan(before.as_mut(), &t, &ScanRequest::default())),
        0
    );
    before.commit().expect("read-only commit");

    // Started after: sees it, also through another engine instance.
    assert_eq!(all_ids(&env.engine, &t).len(), 10);
    assert_eq!(all_ids(&env.fresh_engine(), &t).len(), 10);
}

fn rollback_discards(env: Env) {
    let t = env.create("t", &[]);
    let mut txn = env.engine.begin().expect("begin");
    txn.insert(&t, rows(0..10)).expect("insert");
    txn.rollback().expect("rollback");
    assert!(all_ids(&env.engine, &t).is_empty());

    // Rolled back after prepare: the written data files are deleted again.
    let mut txn = env.engine.begin().expect("begin");
    txn.insert(&t, rows(0..10)).expect("insert");
    txn.prepare().expect("prepare");
    assert_eq!(parquet_files(&env, &t), 1);
    txn.rollback().expect("rollback");
    assert_eq!(parquet_files(&env, &t), 0);
    assert!(all_ids(&env.engine, &t).is_empty());

    // prepare + commit works too.
    let mut txn = env.engine.begin().expect("begin");
    txn.insert(&t, rows(0..10)).expect("insert");
    txn.prepare().expect("prepare");
    txn.commit().expect("commit");
    assert_eq!(all_ids(&env.engine, &t).len(), 10);
}

fn persistence_across_engines(env: Env) {
    let t = env.create("t", &[]);
    let mut txn = env.engine.begin().expect("begin");
    txn.insert(&t, rows(0..500)).expect("insert");
    txn.commit().expect("commit");
    drop(env.engine.clone());
    env.engine.shutdown();
    // The shut-down engine refuses work with an error (no panic).
    assert!(env
        .engine
        .begin()
        .expect("begin")
        .scan(&t, &ScanRequest::default())
        .is_err());

    let reopened = env.fresh_engine();
    assert_eq!(all_ids(&reopened, &t), (0..500).collect::<Vec<_>>());
    let mut txn = reopened.begin().expect("begin");
    txn.insert(&t, rows(500..600)).expect("insert");
    txn.commit().expect("commit");
    assert_eq!(
        all_ids(&env.fresh_engine(), &t),
        (0..600).collect::<Vec<_>>()
    );
}

fn concurrent_commit_conflict(env: Env) {
    let t = env.create("t", &[]);
    let mut a = env.engine.begin().expect("begin");
    let other = env.fresh_engine();
    let mut b = other.begin().expect("begin");
    // Both read the same version.
    assert_eq!(count(&scan(a.as_mut(), &t, &ScanRequest::default())), 0);
    assert_eq!(count(&scan(b.as_mut(), &t, &ScanRequest::default())), 0);
    a.insert(&t, rows(0..10)).expect("insert");
    b.insert(&t, rows(100..110)).expect("insert");
    a.commit().expect("first commit wins");
    let err = b.commit().expect_err("second commit must fail");
    assert!(
        matches!(&err, CommitError::Conflict(m) if m.contains("could not serialize access")),
        "{err:?}"
    );
    assert_eq!(all_ids(&env.engine, &t), (0..10).collect::<Vec<_>>());
    // The loser's files were removed.
    assert_eq!(parquet_files(&env, &t), 1);
    assert_eq!(other.metrics().conflicts, 1);

    // Also caught at prepare, and for deletes.
    let mut c = env.engine.begin().expect("begin");
    let (rids, _) = row_ids_where(c.as_mut(), &t, vec![]);
    let mut d = env.engine.begin().expect("begin");
    d.insert(&t, rows(20..21)).expect("insert");
    d.commit().expect("commit");
    c.delete(&t, &rids).expect("delete");
    let err = c.prepare().expect_err("prepare must fail");
    assert!(
        matches!(&err, CommitError::Conflict(m) if m.contains("could not serialize access")),
        "{err:?}"
    );
    c.rollback().expect("rollback");
    assert_eq!(all_ids(&env.engine, &t).len(), 11);
}

fn concurrent_committers_threads(env: Env) {
    let t = env.create("t", &[]);
    let engines = [env.engine.clone(), env.fresh_engine(), env.fresh_engine()];
    let handles: Vec<_> = engines
        .iter()
        .enumerate()
        .map(|(w, engine)| {
            let engine = engine.clone();
            let t = t.clone();
            std::thread::spawn(move || {
                let (mut ok, mut conflicts) = (0i64, 0);
                for i in 0..8i64 {
                    let mut txn = engine.begin().expect("begin");
                    let base = (w as i64 * 1000) + i * 10;
                    let _ = scan(txn.as_mut(), &t, &ScanRequest::default());
                    txn.insert(&t, rows(base..base + 10)).expect("insert");
                    match txn.commit() {
                        Ok(()) => ok += 1,
                        Err(e) => {
                            assert!(
                                matches!(&e, CommitError::Conflict(m) if m.contains("could not serialize access")),
                                "{e:?}"
                            );
                            conflicts += 1;
                        }
                    }
                }
                (ok, conflicts)
            })
        })
        .collect();
    let mut total_ok = 0;
    for h in handles {
        let (ok, _conflicts) = h.join().expect("thread");
        total_ok += ok;
    }
    // Every successful commit is there exactly once; nothing else.
    let got = all_ids(&env.engine, &t);
    assert_eq!(got.len() as i64, total_ok * 10);
    let mut dedup = got.clone();
    dedup.dedup();
    assert_eq!(dedup, got);
    assert!(total_ok >= 1);
}

fn row_group_pruning(env: Env) {
    let t = env.create("t", &[("row_group_size", "1000")]);
    assert_eq!(t.options["row_group_size"], "1000");
    let mut txn = env.engine.begin().expect("begin");
    txn.insert(&t, rows(0..10_000)).expect("insert");
    txn.commit().expect("commit");

    let engine = env.fresh_engine();
    let run = |filters: Vec<Filter>| {
        engine.reset_metrics();
        let mut txn = engine.begin().expect("begin");
        let out = ids(&scan(
            txn.as_mut(),
            &t,
            &ScanRequest {
                filters,
                ..Default::default()
            },
        ));
        (out, engine.metrics())
    };
    let (got, m) = run(vec![cmp("id", CompareOp::GtEq, Value::Int(9_500))]);
    assert_eq!(got, (9_500..10_000).collect::<Vec<_>>());
    assert_eq!((m.row_groups_read, m.row_groups_pruned), (1, 9), "{m:?}");

    // Strings, IN lists, OR, literal on the left.
    let (got, m) = run(vec![cmp(
        "name",
        CompareOp::Lt,
        Value::Str("name001500".into()),
    )]);
    assert_eq!(got.len(), 1350);
    assert_eq!((m.row_groups_read, m.row_groups_pruned), (2, 8), "{m:?}");
    let (got, m) = run(vec![Filter::Or(vec![
        Filter::InList {
            expr: col("id"),
            list: vec![
                Filter::Literal(Value::Int(5)),
                Filter::Literal(Value::Int(2_005)),
            ],
            negated: false,
        },
        Filter::Compare {
            op: CompareOp::Lt,
            left: Box::new(Filter::Literal(Value::Int(9_998))),
            right: col("id"),
        },
    ])]);
    assert_eq!(got, vec![5, 2_005, 9_999]);
    assert_eq!((m.row_groups_read, m.row_groups_pruned), (3, 7), "{m:?}");
    // Nothing matches: nothing read.
    let (got, m) = run(vec![cmp("id", CompareOp::Eq, Value::Int(-1))]);
    assert!(got.is_empty());
    assert_eq!(m.row_groups_read, 0, "{m:?}");
    // Floats are not pruned, but filtered exactly.
    let (got, m) = run(vec![cmp("score", CompareOp::GtEq, Value::Float(4_999.0))]);
    assert_eq!(got, vec![9_998, 9_999]);
    assert_eq!(m.row_groups_pruned, 0, "{m:?}");

    // A second file: whole files are skipped with the manifest's bounds.
    let mut txn = env.engine.begin().expect("begin");
    txn.insert(&t, rows(20_000..21_000)).expect("insert");
    txn.commit().expect("commit");
    let (got, m) = run(vec![cmp("id", CompareOp::GtEq, Value::Int(20_500))]);
    assert_eq!(got.len(), 500);
    assert_eq!((m.files_pruned, m.files_scanned), (1, 1), "{m:?}");

    // Repeated scans are served from the cache.
    engine.reset_metrics();
    let _ = run(vec![]);
    let m = engine.metrics();
    assert_eq!(m.cache_misses, 0, "{m:?}");
    assert!(m.cache_hits >= 2, "{m:?}");
    assert_eq!(m.bytes_fetched, 0);
}

fn statistics(env: Env) {
    let t = env.create("t", &[]);
    let mut txn = env.engine.begin().expect("begin");
    let s = txn.statistics(&t).expect("stats").expect("some");
    assert_eq!(s.row_count, Some(0));
    txn.insert(&t, rows(5..100)).expect("insert");
    txn.commit().expect("commit");

    let mut txn = env.engine.begin().expect("begin");
    let s = txn.statistics(&t).expect("stats").expect("some");
    assert_eq!(s.row_count, Some(95));
    let mm = s.min_max.expect("min max");
    assert_eq!(mm.num_rows(), 2);
    let id = mm.column(0).as_primitive::<Int64Type>();
    assert_eq!((id.value(0), id.value(1)), (5, 99));
    let name = mm.column(1).as_string::<i32>();
    assert_eq!((name.value(0), name.value(1)), ("name000005", "name000099"));
    let tag = mm.column(2).as_string_view();
    assert_eq!((tag.value(0), tag.value(1)), ("tag0", "tag2"));
    // Pending writes count too.
    txn.insert(&t, rows(200..201)).expect("insert");
    let (rids, _) = row_ids_where(
        txn.as_mut(),
        &t,
        vec![cmp("id", CompareOp::Lt, Value::Int(10))],
    );
    txn.delete(&t, &rids).expect("delete");
    let s = txn.statistics(&t).expect("stats").expect("some");
    assert_eq!(s.row_count, Some(91));
    let id = s
        .min_max
        .expect("mm")
        .column(0)
        .as_primitive::<Int64Type>()
        .clone();
    assert_eq!(id.value(1), 200);
    txn.rollback().expect("rollback");
}

fn drop_and_list_tables(env: Env) {
    let a = env.create("alpha", &[]);
    let b = env.create("beta", &[]);
    let mut txn = env.engine.begin().expect("begin");
    txn.insert(&a, rows(0..10)).expect("insert");
    txn.insert(&b, rows(0..10)).expect("insert");
    txn.commit().expect("commit");
    assert!(!files_under(&table_dir(&env, &a)).is_empty());

    let listed = env.engine.list_tables(&Options::new()).expect("list");
    let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["alpha", "beta"]);
    assert_eq!(listed[0].1["location"], a.options["location"]);
    // The listed options work as table options.
    let mut again = a.clone();
    again.options = listed[0].1.clone();
    assert_eq!(all_ids(&env.engine, &again).len(), 10);

    env.engine.drop_table(&a).expect("drop");
    assert!(files_under(&table_dir(&env, &a)).is_empty());
    assert!(!files_under(&table_dir(&env, &b)).is_empty());
    let listed = env.engine.list_tables(&Options::new()).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, "beta");
    // Scanning a dropped table fails cleanly; dropping again is fine.
    let mut txn = env.engine.begin().expect("begin");
    let err = txn.scan(&a, &ScanRequest::default()).err().expect("error");
    assert!(err.contains("no _manifest"), "{err}");
    env.engine.drop_table(&a).expect("drop again");
}

fn attach_existing_location(env: Env) {
    let t = env.create("t", &[]);
    let mut txn = env.engine.begin().expect("begin");
    txn.insert(&t, rows(0..42)).expect("insert");
    txn.commit().expect("commit");
    // CREATE TABLE ... WITH (location = <existing>) attaches, keeping the data.
    let other = env.fresh_engine();
    let mut t2 = TableInfo {
        id: 2,
        name: "copy".into(),
        schema: schema(),
        options: [("location".to_string(), t.options["location"].clone())].into(),
    };
    t2.options = other.create_table(&t2).expect("attach");
    assert_eq!(t2.options.len(), 1);
    assert_eq!(all_ids(&other, &t2).len(), 42);
    // A new explicit location is created.
    let mut t3 = t2.clone();
    let new_loc = format!("{}-explicit", t.options["location"]);
    t3.options = [("location".to_string(), new_loc.clone())].into();
    t3.options = other.create_table(&t3).expect("create at location");
    assert_eq!(t3.options["location"], new_loc);
    assert!(all_ids(&other, &t3).is_empty());
}

fn empty_projection_counts(env: Env) {
    let t = env.create("t", &[("row_group_size", "100")]);
    let mut txn = env.engine.begin().expect("begin");
    txn.insert(&t, rows(0..250)).expect("insert");
    txn.commit().expect("commit");
    let mut txn = env.engine.begin().expect("begin");
    txn.insert(&t, rows(250..260)).expect("insert");
    let (rids, _) = row_ids_where(
        txn.as_mut(),
        &t,
        vec![cmp("id", CompareOp::Lt, Value::Int(5))],
    );
    txn.delete(&t, &rids).expect("delete");
    // COUNT(*): no columns.
    let req = ScanRequest {
        projection: Some(vec![]),
        ..Default::default()
    };
    let b = scan(txn.as_mut(), &t, &req);
    assert_eq!(count(&b), 255);
    assert_eq!(b[0].num_columns(), 0);
    // With row ids only.
    let req = ScanRequest {
        projection: Some(vec![]),
        with_row_ids: true,
        limit: Some(120),
        ..Default::default()
    };
    let b = scan(txn.as_mut(), &t, &req);
    assert_eq!(count(&b), 120);
    assert_eq!(b[0].num_columns(), 1);
}

#[test]
fn missing_path_is_a_clear_error() {
    let engine = S3StorageEngine::default();
    let t = TableInfo {
        id: 1,
        name: "t".into(),
        schema: schema(),
        options: Options::new(),
    };
    let err = engine.create_table(&t).expect_err("no path");
    assert_eq!(
        err,
        "s3_storage needs a path: CREATE TABLE ... USING s3_storage WITH (path = '...') or set path in the plugin configuration"
    );
    let mut bad = t.clone();
    bad.options.insert("pth".into(), "/tmp".into());
    assert!(engine
        .create_table(&bad)
        .expect_err("typo")
        .contains("unknown option 'pth'"));
    assert!(S3StorageEngine::from_json(r#"{"path": 5, "nope": 1}"#).is_err());
    let mut hdfs = t.clone();
    hdfs.options.insert("path".into(), "hdfs://nn/x".into());
    assert!(engine
        .create_table(&hdfs)
        .expect_err("hdfs")
        .contains("HDFS"));
}

#[test]
fn table_options_override_config() {
    // Config points to a server; the table asks for a local directory instead.
    let dir = tempfile::tempdir().expect("tempdir");
    let server = S3TestServer::start(dir.path()).expect("server");
    let engine = S3StorageEngine::from_json(&server.config_json("cfg")).expect("engine");
    let local = dir.path().join("local");
    let url = format!("file://{}", local.display());
    let mut t = TableInfo {
        id: 1,
        name: "t".into(),
        schema: schema(),
        options: [("path".to_string(), url.clone())].into(),
    };
    t.options = engine.create_table(&t).expect("create");
    assert!(t.options["location"].starts_with(&url));
    let mut txn = engine.begin().expect("begin");
    txn.insert(&t, rows(0..3)).expect("insert");
    txn.commit().expect("commit");
    assert!(files_under(&local)
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "parquet")));
    assert!(files_under(&dir.path().join(S3TestServer::BUCKET)).is_empty());
}

#[test]
fn wrong_credentials_fail_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = S3TestServer::start(dir.path()).expect("server");
    let mut cfg: serde_json::Value = serde_json::from_str(&server.config_json("t")).expect("json");
    cfg["secret_access_key"] = "wrong".into();
    let engine = S3StorageEngine::from_json(&cfg.to_string()).expect("engine");
    let t = TableInfo {
        id: 1,
        name: "t".into(),
        schema: schema(),
        options: Options::new(),
    };
    let err = engine.create_table(&t).expect_err("bad secret");
    assert!(err.contains("s3_storage"), "{err}");
}

/// The host may call from inside its tokio runtime (the linked-in case shares tokio).
#[tokio::test(flavor = "current_thread")]
async fn usable_inside_a_tokio_runtime() {
    let env = Env::s3();
    let t = env.create("t", &[]);
    let mut txn = env.engine.begin().expect("begin");
    txn.insert(&t, rows(0..10)).expect("insert");
    txn.commit().expect("commit");
    assert_eq!(all_ids(&env.engine, &t).len(), 10);
    // Dropping the last engine handle inside the runtime must not panic either.
    drop(env);
}

#[test]
fn plugin_exports_the_engine() {
    let mut plugin = s3_storage::S3StoragePlugin::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = serde_json::json!({ "path": dir.path().to_str().expect("utf8"), "cache_size_mb": 1 })
        .to_string();
    plugin.initialize(&cfg).expect("init");
    let mut registrar = Registrar::default();
    plugin.register(&mut registrar);
    let engines = registrar.registered_engines();
    assert_eq!(engines.len(), 1);
    assert_eq!(engines[0].name(), "s3_storage");
    let mut t = TableInfo {
        id: 1,
        name: "t".into(),
        schema: schema(),
        options: Options::new(),
    };
    t.options = engines[0].create_table(&t).expect("create");
    let mut txn = engines[0].begin().expect("begin");
    txn.insert(&t, rows(0..5)).expect("insert");
    txn.commit().expect("commit");
    assert!(plugin.initialize(r#"{"bogus": 1}"#).is_err());
    plugin.shutdown();
}

#[test]
fn drop_only_deletes_tables() {
    let env = Env::local();
    // A location that is not a table (no _manifest) is left alone.
    let other = env._dir.path().join("precious");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::write(other.join("keep.txt"), b"x").expect("write");
    let t = TableInfo {
        id: 1,
        name: "t".into(),
        schema: schema(),
        options: [(
            "location".to_string(),
            other.to_str().expect("utf8").to_string(),
        )]
        .into(),
    };
    env.engine
        .drop_table(&t)
        .expect("drop of a non-table is a no-op");
    assert!(other.join("keep.txt").exists());
    // The root is refused outright.
    let mut root = t.clone();
    root.options.insert("location".into(), "/".into());
    assert!(env.engine.drop_table(&root).is_err());

    let s3 = Env::s3();
    let mut bucket = t.clone();
    bucket
        .options
        .insert("location".into(), "s3://test-bucket".into());
    assert!(s3.engine.drop_table(&bucket).is_err());
    // An S3 prefix without manifests is left alone too.
    let table = s3.create("t", &[]);
    let mut txn = s3.engine.begin().expect("begin");
    txn.insert(&table, rows(0..5)).expect("insert");
    txn.commit().expect("commit");
    let mut data_only = table.clone();
    data_only.options.insert(
        "location".into(),
        format!("{}/data", table.options["location"]),
    );
    s3.engine.drop_table(&data_only).expect("no-op");
    assert_eq!(parquet_files(&s3, &table), 1);
}

/// Rough timings (run with `--ignored --nocapture`; build with `--release` for real numbers).
#[test]
#[ignore]
fn perf_smoke() {
    for env in [Env::local(), Env::s3()] {
        let kind = if env._server.is_some() { "s3" } else { "local" };
        let t = env.create("perf", &[]);
        let n = 1_000_000i64;
        let start = std::time::Instant::now();
        let mut txn = env.engine.begin().expect("begin");
        for chunk in 0..10 {
            txn.insert(&t, rows(chunk * n / 10..(chunk + 1) * n / 10))
                .expect("insert");
        }
        txn.commit().expect("commit");
        let insert = start.elapsed();
        let engine = env.fresh_engine();
        let timed = |req: &ScanRequest| {
            let start = std::time::Instant::now();
            let mut txn = engine.begin().expect("begin");
            let rows = count(&scan(txn.as_mut(), &t, req));
            (rows, start.elapsed())
        };
        let full = ScanRequest::default();
        let (rows_cold, cold) = timed(&full);
        let (rows_warm, warm) = timed(&full);
        let point = ScanRequest {
            filters: vec![cmp("id", CompareOp::Eq, Value::Int(765_432))],
            ..Default::default()
        };
        engine.reset_metrics();
        let (rows_point, point_t) = timed(&point);
        let m = engine.metrics();
        println!(
            "{kind}: insert+commit {n} rows {insert:?}; full scan cold {rows_cold} rows {cold:?}, warm {rows_warm} rows {warm:?}; point filter {rows_point} row {point_t:?} (row groups read {}, pruned {})",
            m.row_groups_read, m.row_groups_pruned
        );
    }
}
