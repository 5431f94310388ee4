//! 64 clients doing transfers and snapshot reads at once for a bounded time; then every
//! total is checked. A client killed in the middle of a transaction leaves nothing behind.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{code, TestServer};

const CLIENTS: usize = 64;
const ACCOUNTS: i64 = 50;
const START_BALANCE: i64 = 1_000;
const RUN_FOR: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_clients_keep_every_total_exact() {
    let server = TestServer::start(&format!(
        "CREATE TABLE accounts(id BIGINT PRIMARY KEY, balance BIGINT NOT NULL); \
         CREATE TABLE transfers(id BIGINT, from_id BIGINT, to_id BIGINT, amount BIGINT); \
         INSERT INTO accounts SELECT value, {START_BALANCE} FROM generate_series(1, {ACCOUNTS}) AS s(value)"
    ));
    let server = Arc::new(server);
    let committed = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + RUN_FOR;
    let mut tasks = Vec::new();
    for client_no in 0..CLIENTS as i64 {
        let server = server.clone();
        let committed = committed.clone();
        let reads = reads.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = server.admin().await;
            c.batch_execute("SET busy_timeout = 10000")
                .await
                .expect("busy timeout");
            let mut n = 0i64;
            while Instant::now() < deadline {
                n += 1;
                if (client_no + n) % 3 == 0 {
                    // A snapshot read: the total never changes.
                    let total: i64 = c
                        .query_one("SELECT sum(balance)::BIGINT FROM accounts", &[])
                        .await
                        .expect("sum")
                        .get(0);
                    assert_eq!(
                        total,
                        ACCOUNTS * START_BALANCE,
                        "a read saw a torn transfer"
                    );
                    reads.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let from = (client_no * 7 + n) % ACCOUNTS + 1;
                let to = (client_no * 13 + n * 3) % ACCOUNTS + 1;
                let amount = n % 9 + 1;
                let transfer_id = client_no * 1_000_000 + n;
                let tx = c.transaction().await.expect("begin");
                let result = async {
                    tx.execute(
                        "UPDATE accounts SET balance = balance - $1 WHERE id = $2",
                        &[&amount, &from],
                    )
                    .await?;
                    tx.execute(
                        "UPDATE accounts SET balance = balance + $1 WHERE id = $2",
                        &[&amount, &to],
                    )
                    .await?;
                    tx.execute(
                        "INSERT INTO transfers VALUES ($1, $2, $3, $4)",
                        &[&transfer_id, &from, &to, &amount],
                    )
                    .await?;
                    Ok::<_, phantomdb_testkit::tokio_postgres::Error>(())
                }
                .await;
                match result {
                    Ok(()) => {
                        tx.commit().await.expect("commit");
                        committed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        assert!(
                            matches!(code(&e).as_str(), "40001" | "55P03"),
                            "unexpected failure: {e}"
                        );
                        tx.rollback().await.expect("rollback");
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }

    let admin = server.admin().await;
    let total: i64 = admin
        .query_one("SELECT sum(balance)::BIGINT FROM accounts", &[])
        .await
        .expect("total")
        .get(0);
    assert_eq!(total, ACCOUNTS * START_BALANCE);
    let logged: i64 = admin
        .query_one("SELECT count(*) FROM transfers", &[])
        .await
        .expect("transfers")
        .get(0);
    assert_eq!(
        logged as u64,
        committed.load(Ordering::Relaxed),
        "no lost or duplicated writes"
    );
    assert!(committed.load(Ordering::Relaxed) > 0 && reads.load(Ordering::Relaxed) > 0);
    // Every account's balance is its start plus what the log says it received and sent.
    let mismatched: i64 = admin
        .query_one(
            "SELECT count(*) FROM accounts a WHERE a.balance <> \
               1000 + COALESCE((SELECT sum(amount) FROM transfers WHERE to_id = a.id), 0) \
                    - COALESCE((SELECT sum(amount) FROM transfers WHERE from_id = a.id), 0)",
            &[],
        )
        .await
        .expect("per-account check")
        .get(0);
    assert_eq!(mismatched, 0);

    // A client killed mid-transaction: its writes are gone, and the writer is free again.
    let doomed = server.admin().await;
    doomed
        .batch_execute("BEGIN; UPDATE accounts SET balance = 0 WHERE id = 1")
        .await
        .expect("doomed transaction");
    drop(doomed);
    let mut tries = 0;
    loop {
        tries += 1;
        match admin
            .execute(
                "UPDATE accounts SET balance = balance + 0 WHERE id = 2",
                &[],
            )
            .await
        {
            Ok(_) => break,
            Err(e) if tries < 50 && code(&e) == "55P03" => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("the killed client's transaction was not rolled back: {e}"),
        }
    }
    let total: i64 = admin
        .query_one("SELECT sum(balance)::BIGINT FROM accounts", &[])
        .await
        .expect("total")
        .get(0);
    assert_eq!(total, ACCOUNTS * START_BALANCE);
}
