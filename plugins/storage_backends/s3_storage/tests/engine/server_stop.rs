//! The S3 server stopped in the middle of a commit and started again (issue #21): no partial
//! commit is ever visible, every acknowledged commit is there, and the table keeps working.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use super::*;

/// Starts the server again on `addr` over `root`, so it serves the objects it held before.
fn restart(root: &Path, addr: SocketAddr) -> S3TestServer {
    let mut tries = 0;
    loop {
        match S3TestServer::start_on(root, &addr.to_string()) {
            Ok(s) => return s,
            Err(e) if tries < 50 => {
                tries += 1;
                eprintln!("restarting the S3 server on {addr}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("cannot restart the S3 server on {addr}: {e}"),
        }
    }
}

fn engine(config: &str) -> S3StorageEngine {
    S3StorageEngine::from_json(config).expect("engine")
}

fn table(engine: &S3StorageEngine) -> TableInfo {
    let mut t = TableInfo {
        id: 1,
        name: "t".to_string(),
        schema: schema(),
        options: Default::default(),
    };
    t.options = engine.create_table(&t).expect("create table");
    t
}

/// Stopped after the new data files were written and before the manifest that publishes
/// them, and stopped before the commit wrote anything: the commit fails, and after the
/// restart the table is exactly as before it; the next commit takes the same version.
#[test]
fn server_stopped_between_data_files_and_manifest_publishes_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut server = S3TestServer::start(root.path()).expect("s3 server");
    let addr = server.addr;
    let config = server.config_json("tables");
    let first = engine(&config);
    let t = table(&first);
    let mut txn = first.begin().expect("begin");
    txn.insert(&t, rows(0..1000)).expect("insert");
    txn.commit().expect("commit");
    let before: Vec<i64> = (0..1000).collect();

    for prepared in [true, false] {
        let writer = engine(&config);
        let mut txn = writer.begin().expect("begin");
        txn.insert(&t, rows(5000..5500)).expect("insert");
        let (rids, _) = row_ids_where(
            txn.as_mut(),
            &t,
            vec![cmp("id", CompareOp::Lt, Value::Int(100))],
        );
        assert_eq!(txn.delete(&t, &rids).expect("delete"), 100);
        if prepared {
            txn.prepare().expect("prepare writes the data files");
        }
        server.stop();
        let err = txn
            .commit()
            .expect_err("the commit cannot publish without the server");
        let text = format!("{err:?}");
        assert!(text.contains("s3_storage"), "{text}");
        writer.shutdown();

        server = restart(root.path(), addr);
        assert_eq!(
            all_ids(&engine(&config), &t),
            before,
            "prepared: {prepared}"
        );
    }

    // The table is usable: the next commit publishes the version the failed ones wanted.
    let writer = engine(&config);
    let mut txn = writer.begin().expect("begin");
    txn.insert(&t, rows(7000..7010)).expect("insert");
    txn.commit().expect("commit after the restart");
    let mut expected = before;
    expected.extend(7000..7010);
    assert_eq!(all_ids(&engine(&config), &t), expected);
    let manifests = files_under(&table_dir_of(root.path(), &t).join("_manifest")).len();
    assert_eq!(manifests, 3, "versions 0, 1 and 2");
}

fn table_dir_of(root: &Path, t: &TableInfo) -> PathBuf {
    let loc = &t.options["location"];
    let name = loc.rsplit('/').next().expect("dir name");
    root.join(S3TestServer::BUCKET).join("tables").join(name)
}

/// Rows per batch of the commit stream.
const BATCH: i64 = 200;

/// One commit of the stream: batch `b`'s rows in, a third of batch `b - 1` out.
fn commit_batch(engine: &S3StorageEngine, t: &TableInfo, b: i64) -> Result<(), String> {
    let mut txn = engine.begin()?;
    txn.insert(t, rows(b * BATCH..(b + 1) * BATCH))?;
    let req = ScanRequest {
        projection: Some(vec![0]),
        filters: vec![
            cmp("id", CompareOp::GtEq, Value::Int((b - 1) * BATCH)),
            cmp("id", CompareOp::Lt, Value::Int(b * BATCH)),
        ],
        with_row_ids: true,
        ..Default::default()
    };
    let mut doomed = Vec::new();
    for batch in txn.scan(t, &req)? {
        let batch = batch.map_err(|e| format!("{e:?}"))?;
        let ids = batch.column(0).as_primitive::<Int64Type>();
        let rids = batch.column(1).as_primitive::<UInt64Type>();
        for i in 0..batch.num_rows() {
            if ids.value(i) % 3 == 0 {
                doomed.push(rids.value(i));
            }
        }
    }
    txn.delete(t, &UInt64Array::from(doomed))?;
    txn.commit().map_err(|e| format!("{e:?}"))
}

/// The batches the table holds, checked to be 1..=n with 1..n-1 missing their thirds and n
/// whole; returns n.
fn verify_prefix(ids: &[i64], round: usize) -> i64 {
    let n = ids.iter().map(|id| id / BATCH).max().unwrap_or(0);
    let mut expected = Vec::new();
    for b in 1..=n {
        expected.extend((b * BATCH..(b + 1) * BATCH).filter(|i| b == n || i % 3 != 0));
    }
    assert_eq!(ids, expected.as_slice(), "round {round}: newest batch {n}");
    n
}

/// A writer commits batches while the server is stopped at random moments and started
/// again, 15 times: after each restart the table holds whole commits only, a prefix of the
/// stream, including every commit the writer saw succeed.
#[test]
fn server_stopped_at_random_points_of_a_commit_stream_leaves_a_prefix() {
    const ROUNDS: usize = 15;
    let root = tempfile::tempdir().expect("tempdir");
    let started = S3TestServer::start(root.path()).expect("s3 server");
    let addr = started.addr;
    let config = started.config_json("tables");
    let mut server = Some(started);
    let t = table(&engine(&config));
    let mut seed: u64 = 0x5eed_2101;
    let mut next_delay = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        Duration::from_millis(20 + (seed >> 33) % 150)
    };
    let mut committed = 0i64;
    let (mut acknowledged_total, mut unacknowledged_published) = (0, 0);
    for round in 0..ROUNDS {
        let acks = Mutex::new(Vec::new());
        let failure = Mutex::new(None);
        std::thread::scope(|s| {
            s.spawn(|| {
                let writer = engine(&config);
                let mut b = committed + 1;
                loop {
                    match commit_batch(&writer, &t, b) {
                        Ok(()) => acks.lock().unwrap().push(b),
                        Err(e) => {
                            *failure.lock().unwrap() = Some(e);
                            break;
                        }
                    }
                    b += 1;
                }
                writer.shutdown();
            });
            std::thread::sleep(next_delay());
            server.take().expect("running").stop();
        });
        let acks = acks.into_inner().unwrap();
        let failure = failure.into_inner().unwrap();
        assert!(failure.is_some(), "round {round}: the writer never failed");
        server = Some(restart(root.path(), addr));
        let n = verify_prefix(&all_ids(&engine(&config), &t), round);
        let last_ack = acks.last().copied().unwrap_or(committed);
        assert!(
            n >= last_ack,
            "round {round}: acknowledged commit {last_ack} lost (newest {n}); {failure:?}"
        );
        assert!(
            n <= last_ack + 1,
            "round {round}: batch {n} was never committed"
        );
        acknowledged_total += acks.len();
        if n > last_ack {
            unacknowledged_published += 1;
        }
        committed = n;
    }
    drop(server);
    println!(
        "S3 server stops: {ROUNDS} stops mid-stream, {acknowledged_total} acknowledged commits \
         verified, {unacknowledged_published} commits published whose acknowledgement was lost"
    );
}
