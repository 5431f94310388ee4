//! The built `cdylib` loaded by the real plugin host, driven through the C ABI
//! (`phantomdb.storage/1`) against the S3 test server.
//!
//! The library is built by the test itself (`phantomdb_testkit::workspace_build`, into the
//! same target directory); set `PHANTOMDB_PLUGIN_DIR` to a directory holding a prebuilt one
//! to skip that.

use std::path::PathBuf;
use std::sync::Arc;

use phantomdb_plugin_sdk::prelude::*;
use phantomdb_testkit::S3TestServer;

fn library() -> PathBuf {
    phantomdb_testkit::plugin_library("s3_storage")
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

fn rows(ids: std::ops::Range<i64>) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(ids.clone())),
            Arc::new(StringArray::from_iter_values(ids.map(|i| format!("n{i}")))),
        ],
    )
    .expect("batch")
}

fn ids(stream: BatchStream) -> Vec<i64> {
    let mut out: Vec<i64> = stream
        .flat_map(|b| {
            let b = b.expect("batch");
            b.column(0).as_primitive::<Int64Type>().values().to_vec()
        })
        .collect();
    out.sort_unstable();
    out
}

#[test]
fn loads_as_a_plugin_and_works_through_the_c_abi() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = S3TestServer::start(dir.path()).expect("s3 server");
    let plugin = phantomdb_plugin_host::load(library(), "0.1.0").expect("load the plugin");
    assert_eq!(plugin.name(), "s3_storage");
    plugin
        .initialize(&server.config_json("so"))
        .expect("initialize");
    let engines = plugin.storage_engines();
    assert_eq!(engines.len(), 1);
    let engine = &engines[0];
    assert_eq!(engine.name(), "s3_storage");
    assert!(engine.capabilities().transactions && engine.capabilities().update_delete);

    let mut t = TableInfo {
        id: 7,
        name: "so_table".into(),
        schema: schema(),
        options: [("row_group_size".to_string(), "100".to_string())].into(),
    };
    t.options = engine.create_table(&t).expect("create");
    assert!(t.options["location"].starts_with("s3://test-bucket/so/so_table-"));
    assert!(!t.options.contains_key("secret_access_key"));

    let mut txn = engine.begin().expect("begin");
    txn.insert(&t, rows(0..1000)).expect("insert");
    txn.commit().expect("commit");

    let filter = Filter::Compare {
        op: CompareOp::GtEq,
        left: Box::new(Filter::Column("id".into())),
        right: Box::new(Filter::Literal(Value::Int(990))),
    };
    assert_eq!(
        engine.supports_filters(&t, std::slice::from_ref(&filter)),
        vec![FilterSupport::Exact]
    );
    let mut txn = engine.begin().expect("begin");
    let req = ScanRequest {
        filters: vec![filter],
        with_row_ids: true,
        ..Default::default()
    };
    let batches: Vec<RecordBatch> = txn
        .scan(&t, &req)
        .expect("scan")
        .map(|b| b.expect("batch"))
        .collect();
    let row_ids: Vec<u64> = batches
        .iter()
        .flat_map(|b| b.column(2).as_primitive::<UInt64Type>().values().to_vec())
        .collect();
    assert_eq!(row_ids.len(), 10);
    assert_eq!(
        txn.delete(&t, &UInt64Array::from(row_ids)).expect("delete"),
        10
    );
    let stats = txn.statistics(&t).expect("stats").expect("some");
    assert_eq!(stats.row_count, Some(990));
    txn.commit().expect("commit");

    let mut txn = engine.begin().expect("begin");
    let got = ids(txn.scan(&t, &ScanRequest::default()).expect("scan"));
    assert_eq!(got, (0..990).collect::<Vec<_>>());
    txn.commit().expect("commit");

    // A lost race crosses the C ABI typed (status CONFLICT), not as text to search.
    let mut a = engine.begin().expect("begin");
    let mut b = engine.begin().expect("begin");
    assert_eq!(
        ids(a.scan(&t, &ScanRequest::default()).expect("scan")).len(),
        990
    );
    assert_eq!(
        ids(b.scan(&t, &ScanRequest::default()).expect("scan")).len(),
        990
    );
    a.insert(&t, rows(2000..2010)).expect("insert");
    b.insert(&t, rows(3000..3010)).expect("insert");
    a.commit().expect("the first commit wins");
    let lost = b.commit().expect_err("the second commit loses");
    assert!(matches!(lost, CommitError::Conflict(_)), "{lost:?}");

    let listed = engine.list_tables(&Options::new()).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, "so_table");
    engine.drop_table(&t).expect("drop");
    assert!(engine
        .list_tables(&Options::new())
        .expect("list")
        .is_empty());
    drop(engines);
    plugin.shutdown().expect("shutdown");
}
