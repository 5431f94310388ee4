//! Authentication rules: the first matching rule names the provider (`scram`, `reject`);
//! `hostssl` rules match only TLS connections (psql with `sslmode=require`); `+role` matches
//! members; SIGHUP reloads the rules and a broken file keeps the old ones.

use crate::logs;
use crate::support::{
    code, config_file, message, psql, sighup, start_error, tls_files, TestServer,
};

const USERS: &str = "CREATE ROLE alice LOGIN PASSWORD 'alice-pw'; \
     CREATE ROLE bob LOGIN PASSWORD 'bob-pw'; \
     CREATE ROLE staff; \
     CREATE ROLE carol LOGIN PASSWORD 'carol-pw'; \
     GRANT staff TO carol";

/// A configuration with TLS (certificate made in `dir`) and `rules` appended.
fn tls_config(dir: &std::path::Path, rules: &str) -> String {
    let (cert, key) = tls_files(dir);
    format!(
        "[server]\ntls_cert = {:?}\ntls_key = {:?}\n\n{rules}",
        cert.display().to_string(),
        key.display().to_string()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_matching_rule_decides_per_database_and_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, config) = config_file(
        dir.path(),
        r#"
[[auth.rules]]
type = "host"
database = "secret"
provider = "reject"

[[auth.rules]]
type = "host"
user = "+staff"
address = "127.0.0.1/32"
provider = "scram"

[[auth.rules]]
type = "host"
user = ["alice", "admin"]
address = "127.0.0.0/8"
provider = "scram"
"#,
    );
    let server = TestServer::start_with(USERS, config);
    let connect = |user: &'static str, password: &'static str, db: &'static str| {
        let conninfo = format!(
            "host=127.0.0.1 port={} user={user} password={password} dbname={db}",
            server.addr.port()
        );
        async move {
            let (client, connection) = phantomdb_testkit::tokio_postgres::connect(
                &conninfo,
                phantomdb_testkit::tokio_postgres::NoTls,
            )
            .await?;
            tokio::spawn(connection);
            Ok::<_, phantomdb_testkit::tokio_postgres::Error>(client)
        }
    };
    // alice: accepted by scram for any database but `secret`, which a reject rule refuses.
    let alice = connect("alice", "alice-pw", "shop")
        .await
        .expect("alice, shop");
    let user: String = alice
        .query_one("SELECT current_user", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(user, "alice");
    let refused = connect("alice", "alice-pw", "secret")
        .await
        .expect_err("secret is rejected");
    assert_eq!(code(&refused), "28000");
    assert!(
        message(&refused).contains("authentication rules reject connection"),
        "{}",
        message(&refused)
    );
    // carol matches +staff; bob matches no rule.
    connect("carol", "carol-pw", "shop")
        .await
        .expect("carol is staff");
    let bob = connect("bob", "bob-pw", "shop")
        .await
        .expect_err("no rule for bob");
    assert_eq!(code(&bob), "28000");
    assert!(message(&bob).contains("no authentication rule for host \"127.0.0.1\", user \"bob\""));
    // SCRAM still checks the password.
    let wrong = connect("alice", "nope", "shop")
        .await
        .expect_err("wrong password");
    assert_eq!(code(&wrong), "28P01");
}

#[test]
fn hostssl_rules_match_only_tls_connections() {
    logs::capture();
    let dir = tempfile::tempdir().expect("temp dir");
    let text = tls_config(
        dir.path(),
        r#"
[[auth.rules]]
type = "hostssl"
user = "alice"
provider = "scram"

[[auth.rules]]
type = "hostnossl"
user = "bob"
provider = "scram"
"#,
    );
    let (_, config) = config_file(dir.path(), &text);
    let server = TestServer::start_with(USERS, config);

    let tls = psql(
        &server,
        "alice",
        "alice-pw",
        "sslmode=require dbname=shop",
        "SELECT current_user",
    );
    assert!(tls.ok, "alice over TLS: {}", tls.err);
    assert_eq!(tls.out.trim(), "alice");
    let plain = psql(
        &server,
        "alice",
        "alice-pw",
        "sslmode=disable dbname=shop",
        "SELECT 1",
    );
    assert!(!plain.ok, "alice without TLS must be refused");
    assert!(
        plain.err.contains("no authentication rule"),
        "{}",
        plain.err
    );
    assert!(plain.err.contains("no encryption"), "{}", plain.err);

    let bob_plain = psql(
        &server,
        "bob",
        "bob-pw",
        "sslmode=disable",
        "SELECT current_user",
    );
    assert!(bob_plain.ok, "bob without TLS: {}", bob_plain.err);
    let bob_tls = psql(&server, "bob", "bob-pw", "sslmode=require", "SELECT 1");
    assert!(!bob_tls.ok, "bob over TLS must be refused");
    assert!(bob_tls.err.contains("SSL encryption"), "{}", bob_tls.err);
    logs::wait_for(&["login refused: no authentication rule matches", "user=bob"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_rules_and_a_broken_file_keeps_them() {
    logs::capture();
    let dir = tempfile::tempdir().expect("temp dir");
    let only_alice = r#"
[[auth.rules]]
type = "host"
user = "alice"
provider = "scram"
"#;
    let (path, config) = config_file(dir.path(), only_alice);
    let server = TestServer::start_with(USERS, config);
    let alice = server.connect("alice", "alice-pw").await.expect("alice");
    let e = server
        .connect("bob", "bob-pw")
        .await
        .expect_err("bob: no rule");
    assert_eq!(code(&e), "28000");

    // Bob is let in by the new file; alice's open session is untouched.
    std::fs::write(
        &path,
        format!(
            "{only_alice}\n[[auth.rules]]\ntype = \"host\"\nuser = \"bob\"\nprovider = \"scram\"\n"
        ),
    )
    .expect("rewrite");
    sighup();
    let path_text = path.display().to_string();
    logs::wait_for(&["authentication rules reloaded", &path_text, "rules=2"]);
    server
        .connect("bob", "bob-pw")
        .await
        .expect("bob after the reload");
    alice
        .simple_query("SELECT 1")
        .await
        .expect("alice's session goes on");

    // A broken file (unknown provider) is refused and the rules in force stay.
    std::fs::write(
        &path,
        "[[auth.rules]]\ntype = \"host\"\nuser = \"bob\"\nprovider = \"nosuch\"\n",
    )
    .expect("rewrite");
    sighup();
    let line = logs::wait_for(&["cannot reload the authentication rules", &path_text]);
    assert!(line.contains("nosuch"), "{line}");
    server
        .connect("bob", "bob-pw")
        .await
        .expect("bob, old rules");
    server
        .connect("alice", "alice-pw")
        .await
        .expect("alice, old rules");
}

#[test]
fn a_configuration_with_bad_rules_or_tls_files_does_not_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = phantomdb::Database::open_in_memory().expect("db");
    db.execute("CREATE ROLE admin LOGIN PASSWORD 'pw'")
        .expect("role");
    let start = |text: &str| start_error(&db, text);
    let e = start("[[auth.rules]]\ntype = \"host\"\nprovider = \"ldapp\"\n");
    assert!(e.contains("no authentication provider \"ldapp\""), "{e}");
    let e = start("[[auth.rules]]\ntype = \"hostssl\"\nprovider = \"scram\"\n");
    assert!(e.contains("tls_cert"), "{e}");
    let missing = dir.path().join("missing.crt").display().to_string();
    let e = start(&format!(
        "[server]\ntls_cert = {missing:?}\ntls_key = {missing:?}\n"
    ));
    assert!(e.contains("missing.crt"), "{e}");
    let e = start("[server]\ntls_cert = \"x.crt\"\n");
    assert!(e.contains("go together"), "{e}");
}
