//! Statements that write and return rows over the wire: `INSERT/UPDATE/DELETE ... RETURNING`
//! and upserts with RETURNING through the simple protocol (tokio-postgres, psql), and
//! `nextval` through a prepared statement.

use phantomdb_testkit::tokio_postgres::{Client, SimpleQueryMessage};

use crate::support::{code, psql, TestServer, ADMIN, ADMIN_PASSWORD};

const USERS: &str = "CREATE TABLE users (id BIGSERIAL PRIMARY KEY, email TEXT UNIQUE NOT NULL, \
                     visits INT NOT NULL DEFAULT 0)";

/// The rows (as text) and the command tag's row count of one simple-protocol statement.
async fn simple(c: &Client, sql: &str) -> (Vec<Vec<String>>, Option<u64>) {
    let messages = c.simple_query(sql).await.expect(sql);
    let mut rows = Vec::new();
    let mut tag = None;
    for m in messages {
        match m {
            SimpleQueryMessage::Row(r) => rows.push(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            SimpleQueryMessage::CommandComplete(n) => tag = Some(n),
            _ => {}
        }
    }
    (rows, tag)
}

fn strings(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn returning_rows_come_back_through_the_simple_protocol() {
    let server = TestServer::start(USERS);
    let c = server.admin().await;
    let (rows, tag) = simple(
        &c,
        "INSERT INTO users (email) VALUES ('a@x'), ('b@x') RETURNING id, email",
    )
    .await;
    assert_eq!(rows, strings(&[&["1", "a@x"], &["2", "b@x"]]));
    assert_eq!(tag, Some(2));

    // An upsert's second run updates and returns the stored row.
    let upsert = "INSERT INTO users (email) VALUES ('c@x') ON CONFLICT (email) \
                  DO UPDATE SET visits = users.visits + 1 RETURNING id, visits";
    assert_eq!(simple(&c, upsert).await.0, strings(&[&["3", "0"]]));
    assert_eq!(simple(&c, upsert).await.0, strings(&[&["3", "1"]]));

    let (mut rows, tag) = simple(
        &c,
        "UPDATE users SET visits = visits + 10 WHERE id <= 2 RETURNING id, visits",
    )
    .await;
    rows.sort();
    assert_eq!(rows, strings(&[&["1", "10"], &["2", "10"]]));
    assert_eq!(tag, Some(2));

    let (rows, _) = simple(&c, "DELETE FROM users WHERE email = 'a@x' RETURNING *").await;
    assert_eq!(rows, strings(&[&["1", "a@x", "10"]]));

    // A violation in the middle of a multi-row INSERT returns nothing and writes nothing.
    let err = c
        .simple_query("INSERT INTO users (email) VALUES ('d@x'), ('b@x') RETURNING id")
        .await
        .expect_err("duplicate email");
    assert_eq!(code(&err), "23505");
    let (rows, _) = simple(&c, "SELECT count(*) FROM users WHERE email = 'd@x'").await;
    assert_eq!(rows, strings(&[&["0"]]));

    // psql prints the returned rows. Id 4 went to the upsert that updated instead (as in
    // PostgreSQL); the failed INSERT's values were rolled back with it and are reused.
    let run = psql(
        &server,
        ADMIN,
        ADMIN_PASSWORD,
        "dbname=app",
        "INSERT INTO users (email) VALUES ('e@x') RETURNING id, email",
    );
    assert!(run.ok, "{}", run.err);
    assert_eq!(run.out.lines().next(), Some("5|e@x"), "{}", run.out);
}

#[tokio::test(flavor = "multi_thread")]
async fn nextval_works_through_prepared_statements() {
    let server = TestServer::start(USERS);
    let c = server.admin().await;
    c.simple_query("INSERT INTO users (email) VALUES ('a@x'), ('b@x')")
        .await
        .expect("insert");
    let next = c
        .prepare("SELECT nextval('users_id_seq') + $1")
        .await
        .expect("prepare nextval");
    let first: i64 = c.query_one(&next, &[&0i64]).await.expect("nextval").get(0);
    let second: i64 = c.query_one(&next, &[&0i64]).await.expect("nextval").get(0);
    assert_eq!((first, second), (3, 4));
    let current: i64 = c
        .query_one("SELECT currval('users_id_seq')", &[])
        .await
        .expect("currval")
        .get(0);
    assert_eq!(current, 4);
    // The next generated id comes after the values nextval took.
    let (rows, _) = simple(&c, "INSERT INTO users (email) VALUES ('c@x') RETURNING id").await;
    assert_eq!(rows, strings(&[&["5"]]));
}
