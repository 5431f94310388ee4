//! SCRAM logins, roles without LOGIN, and privileges changed between the statements of
//! another open session.

use crate::support::{code, message, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn scram_logins_and_uniform_failures() {
    let server = TestServer::start(
        "CREATE ROLE alice LOGIN PASSWORD 'alice-pw'; CREATE ROLE bob PASSWORD 'bob-pw'",
    );
    let alice = server
        .connect("alice", "alice-pw")
        .await
        .expect("alice logs in");
    let user: String = alice
        .query_one("SELECT current_user", &[])
        .await
        .expect("current_user")
        .get(0);
    assert_eq!(user, "alice");

    let wrong = server
        .connect("alice", "nope")
        .await
        .expect_err("wrong password");
    let unknown = server
        .connect("mallory", "nope")
        .await
        .expect_err("unknown user");
    assert_eq!(code(&wrong), "28P01");
    assert_eq!(code(&unknown), "28P01");
    assert_eq!(
        message(&wrong).replace("alice", "USER"),
        message(&unknown).replace("mallory", "USER"),
        "an unknown user and a wrong password look the same"
    );

    let no_login = server
        .connect("bob", "bob-pw")
        .await
        .expect_err("bob has no LOGIN");
    assert_eq!(code(&no_login), "28000");
    assert!(message(&no_login).contains("not permitted to log in"));
    let bob_wrong = server
        .connect("bob", "nope")
        .await
        .expect_err("bob, wrong password");
    assert_eq!(code(&bob_wrong), "28P01");

    // The server keeps serving.
    server
        .connect("alice", "alice-pw")
        .await
        .expect("alice again");
}

#[tokio::test(flavor = "multi_thread")]
async fn privileges_change_between_statements_of_an_open_session() {
    let server = TestServer::start(
        "CREATE ROLE alice LOGIN PASSWORD 'pw'; \
         CREATE TABLE secrets(id INT PRIMARY KEY, v TEXT); \
         INSERT INTO secrets VALUES (1, 'x')",
    );
    let admin = server.admin().await;
    let alice = server.connect("alice", "pw").await.expect("alice");

    let e = alice
        .query("SELECT v FROM secrets", &[])
        .await
        .expect_err("no grant yet");
    assert_eq!(code(&e), "42501");

    admin
        .batch_execute("GRANT SELECT ON secrets TO alice")
        .await
        .expect("grant");
    let v: String = alice
        .query_one("SELECT v FROM secrets WHERE id = $1", &[&1i32])
        .await
        .expect("granted")
        .get(0);
    assert_eq!(v, "x");
    let e = alice
        .execute("INSERT INTO secrets VALUES (2, 'y')", &[])
        .await
        .expect_err("no INSERT");
    assert_eq!(code(&e), "42501");

    admin
        .batch_execute("REVOKE SELECT ON secrets FROM alice")
        .await
        .expect("revoke");
    let e = alice
        .query("SELECT v FROM secrets", &[])
        .await
        .expect_err("revoked");
    assert_eq!(code(&e), "42501");

    // Only superusers manage plugins and roles.
    let e = alice
        .batch_execute("LOAD PLUGIN '/nonexistent/libx.so'")
        .await
        .expect_err("not a superuser");
    assert_eq!(code(&e), "42501");
    let e = alice
        .batch_execute("CREATE ROLE eve LOGIN")
        .await
        .expect_err("not a superuser");
    assert_eq!(code(&e), "42501");
    let n: i64 = admin
        .query_one("SELECT count(*) FROM secrets", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 1, "denied statements changed nothing");
}
