//! tokio-postgres: prepared statements with text and binary values, transactions and the
//! aborted-transaction rule, streaming portals, cancel requests.

use phantomdb_testkit::tokio_postgres::{NoTls, SimpleQueryMessage};

use crate::support::{code, TestServer};

const ITEMS: &str = "CREATE TABLE items(id BIGINT PRIMARY KEY, name TEXT NOT NULL, price DOUBLE, \
                     qty INT, active BOOLEAN, data BYTEA)";

#[tokio::test(flavor = "multi_thread")]
async fn prepared_statements_carry_binary_values_both_ways() {
    let server = TestServer::start(ITEMS);
    let c = server.admin().await;
    let insert = c
        .prepare("INSERT INTO items VALUES ($1, $2, $3, $4, $5, $6)")
        .await
        .expect("prepare insert");
    for i in 0..10i64 {
        let n = c
            .execute(
                &insert,
                &[
                    &i,
                    &format!("item {i}"),
                    &(i as f64 * 1.5),
                    &(i as i32),
                    &(i % 2 == 0),
                    &vec![i as u8, 0xff],
                ],
            )
            .await
            .expect("insert");
        assert_eq!(n, 1);
    }
    let rows = c
        .query(
            "SELECT id, name, price, qty, active, data FROM items WHERE id >= $1 ORDER BY id",
            &[&5i64],
        )
        .await
        .expect("select");
    assert_eq!(rows.len(), 5);
    let first = &rows[0];
    assert_eq!(first.get::<_, i64>(0), 5);
    assert_eq!(first.get::<_, String>(1), "item 5");
    assert_eq!(first.get::<_, f64>(2), 7.5);
    assert_eq!(first.get::<_, i32>(3), 5);
    assert!(!first.get::<_, bool>(4));
    assert_eq!(first.get::<_, Vec<u8>>(5), vec![5u8, 0xff]);

    // NULLs travel both ways.
    c.execute(
        "INSERT INTO items (id, name, price) VALUES ($1, $2, $3)",
        &[&100i64, &"no price", &None::<f64>],
    )
    .await
    .expect("insert null");
    let row = c
        .query_one("SELECT price, qty FROM items WHERE id = $1", &[&100i64])
        .await
        .expect("null row");
    assert_eq!(row.get::<_, Option<f64>>(0), None);
    assert_eq!(row.get::<_, Option<i32>>(1), None);
    let untyped = c
        .query_one("SELECT NULL AS n", &[])
        .await
        .expect("NULL literal");
    assert_eq!(untyped.get::<_, Option<String>>(0), None);

    // The simple protocol returns text.
    let messages = c
        .simple_query("SELECT count(*) AS n, sum(qty) AS q FROM items")
        .await
        .expect("simple query");
    let row = messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .expect("a row");
    assert_eq!(row.get("n"), Some("11"));
    assert_eq!(row.get("q"), Some("45"));

    // UPDATE and DELETE report their row counts.
    let updated = c
        .execute("UPDATE items SET qty = qty + 1 WHERE active = $1", &[&true])
        .await
        .expect("update");
    assert_eq!(updated, 5);
    let deleted = c
        .execute("DELETE FROM items WHERE id < $1", &[&3i64])
        .await
        .expect("delete");
    assert_eq!(deleted, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_aborts_the_transaction_block_until_rollback() {
    let server = TestServer::start("CREATE TABLE t(id INT PRIMARY KEY, v TEXT)");
    let c = server.admin().await;
    c.batch_execute("BEGIN").await.expect("begin");
    c.execute("INSERT INTO t VALUES (1, 'a')", &[])
        .await
        .expect("insert");
    let e = c
        .query("SELECT * FROM missing_table", &[])
        .await
        .expect_err("missing table");
    assert_eq!(code(&e), "42P01");
    let e = c.query("SELECT 1", &[]).await.expect_err("aborted");
    assert_eq!(code(&e), "25P02");
    let e = c.simple_query("SELECT 1").await.expect_err("aborted");
    assert_eq!(code(&e), "25P02");
    // COMMIT in an aborted block rolls back.
    c.batch_execute("COMMIT")
        .await
        .expect("commit ends the block");
    let n: i64 = c
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 0, "the aborted transaction's insert was rolled back");

    // A transaction through tokio-postgres' API commits.
    let mut c = c;
    let tx = c.transaction().await.expect("transaction");
    tx.execute("INSERT INTO t VALUES ($1, $2)", &[&2i32, &"b"])
        .await
        .expect("insert in tx");
    tx.commit().await.expect("commit");
    let v: String = c
        .query_one("SELECT v FROM t WHERE id = $1", &[&2i32])
        .await
        .expect("committed row")
        .get(0);
    assert_eq!(v, "b");
}

#[tokio::test(flavor = "multi_thread")]
async fn portals_stream_rows_in_pieces() {
    let server = TestServer::start("");
    let mut c = server.admin().await;
    let tx = c.transaction().await.expect("transaction");
    let stmt = tx
        .prepare("SELECT value FROM generate_series(1, 10000) AS s(value) ORDER BY value")
        .await
        .expect("prepare");
    let portal = tx.bind(&stmt, &[]).await.expect("bind");
    let mut seen = 0i64;
    loop {
        let rows = tx.query_portal(&portal, 3000).await.expect("fetch");
        if rows.is_empty() {
            break;
        }
        assert!(rows.len() <= 3000, "a fetch returns at most the row limit");
        for r in rows {
            seen += 1;
            assert_eq!(r.get::<_, i64>(0), seen);
        }
    }
    assert_eq!(seen, 10_000);
    tx.commit().await.expect("commit");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_request_stops_the_running_statement() {
    let server = TestServer::start("");
    let c = server.admin().await;
    let token = c.cancel_token();
    let canceler = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        token.cancel_query(NoTls).await
    });
    let e = c
        .query(
            "SELECT count(*) FROM generate_series(1, 100000000000) AS a(x) WHERE x % 7 = 3",
            &[],
        )
        .await
        .expect_err("canceled");
    assert_eq!(code(&e), "57014");
    canceler.await.expect("join").expect("cancel sent");
    // The connection still works.
    let one: i64 = c
        .query_one("SELECT 1::BIGINT", &[])
        .await
        .expect("after cancel")
        .get(0);
    assert_eq!(one, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn savepoints_recover_a_block_that_wrote_nothing_since() {
    let server = TestServer::start("CREATE TABLE t(id INT PRIMARY KEY)");
    let c = server.admin().await;
    let e = c
        .batch_execute("SAVEPOINT outside")
        .await
        .expect_err("no block");
    assert_eq!(code(&e), "25P01");
    c.batch_execute("BEGIN; INSERT INTO t VALUES (1); SAVEPOINT a")
        .await
        .expect("savepoint");
    let e = c
        .query("SELECT * FROM missing", &[])
        .await
        .expect_err("error");
    assert_eq!(code(&e), "42P01");
    c.batch_execute("ROLLBACK TO SAVEPOINT a")
        .await
        .expect("recovered");
    c.batch_execute("INSERT INTO t VALUES (2); SAVEPOINT b; INSERT INTO t VALUES (3)")
        .await
        .expect("more writes");
    let e = c
        .batch_execute("ROLLBACK TO b")
        .await
        .expect_err("writes since b");
    assert_eq!(code(&e), "0A000");
    let e = c
        .batch_execute("RELEASE nope")
        .await
        .expect_err("aborted block");
    assert_eq!(code(&e), "25P02");
    c.batch_execute("ROLLBACK").await.expect("rollback");
    c.batch_execute("BEGIN; INSERT INTO t VALUES (4); SAVEPOINT c; RELEASE c; COMMIT")
        .await
        .expect("release");
    let ids: Vec<i32> = c
        .query("SELECT id FROM t ORDER BY id", &[])
        .await
        .expect("rows")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, vec![4]);
}
