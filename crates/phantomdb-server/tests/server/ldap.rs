//! The `ldap_auth` plugin against a real slapd: LDAP users log in with psql and psycopg over
//! TLS (simple bind with StartTLS, search then bind over ldaps://), the rest keep SCRAM; a
//! wrong password, an empty one, an injection attempt in the user name and a user outside the
//! group are refused; with slapd stopped, LDAP logins fail with a clear logged error while
//! SCRAM users still log in.

use std::process::Command;

use crate::logs;
use crate::python::python;
use crate::slapd::{Slapd, ADMIN_DN, ADMIN_PW, SUFFIX};
use crate::support::{
    client_file, code, config_file, psql, tls_files, TestServer, ADMIN, ADMIN_PASSWORD,
};

const INJECTION: &str = "*)(uid=*";

/// A login with psycopg: `Ok(current_user)` or `Err(message)`.
fn psycopg_login(
    server: &TestServer,
    user: &str,
    password: &str,
    db: &str,
) -> Result<String, String> {
    let python = python();
    let out = Command::new(&python)
        .arg(client_file("login.py"))
        .arg(server.addr.ip().to_string())
        .arg(server.addr.port().to_string())
        .args([user, password, db, "require"])
        .output()
        .unwrap_or_else(|e| panic!("{} with psycopg is needed: {e}", python.display()));
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success(),
        "login.py: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match text.strip_prefix("OK ") {
        Some(rest) => {
            let (who, ssl) = rest.split_once(' ').unwrap_or((rest, ""));
            assert_eq!(ssl, "True", "psycopg's connection must use TLS");
            Ok(who.to_string())
        }
        None => Err(text),
    }
}

#[test]
fn ldap_users_log_in_over_tls_and_the_rest_keep_scram() {
    logs::capture();
    let mut slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = tls_files(dir.path());
    let ca = slapd.ca_file.display().to_string();
    let people = format!("ou=people,{SUFFIX}");
    let group = format!("cn=dbusers,ou=groups,{SUFFIX}");
    let text = format!(
        r#"
[server]
tls_cert = {cert:?}
tls_key = {key:?}

[auth]
provider_timeout = "10s"

# Search then bind, over ldaps://, for database "search".
[[auth.rules]]
type = "hostssl"
database = "search"
user = "+ldap_users"
address = "127.0.0.1/32"
provider = "ldap"
options = {{ url = "{ldaps}", ca_file = {ca:?}, search_base = "{people}", bind_dn = "{ADMIN_DN}", bind_password = "{ADMIN_PW}", group_dn = "{group}", timeout = "3s" }}

# Without TLS to the server, allowed for database "plain" (a warning at start).
[[auth.rules]]
type = "host"
database = "plain"
user = "+ldap_users"
address = "127.0.0.1/32"
provider = "ldap"
allow_cleartext_without_tls = true
options = {{ url = "{ldap}", starttls = true, ca_file = {ca:?}, user_dn = "uid=%u,{people}", group_dn = "{group}" }}

# The rule of the README: simple bind with StartTLS.
[[auth.rules]]
type = "hostssl"
user = "+ldap_users"
address = "127.0.0.1/32"
provider = "ldap"
options = {{ url = "{ldap}", starttls = true, ca_file = {ca:?}, user_dn = "uid=%u,{people}", group_dn = "{group}", timeout = "3s" }}

[[auth.rules]]
type = "host"
provider = "scram"
"#,
        cert = cert.display().to_string(),
        key = key.display().to_string(),
        ldap = slapd.url,
        ldaps = slapd.ldaps_url,
    );
    let (_, config) = config_file(dir.path(), &text);
    let plugin = phantomdb_testkit::plugin_library("ldap_auth");
    let setup = format!(
        "LOAD PLUGIN '{}'; CREATE ROLE ldap_users; \
         CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE \"{INJECTION}\" LOGIN; \
         GRANT ldap_users TO alice, bob, \"{INJECTION}\"; \
         CREATE ROLE carol LOGIN PASSWORD 'carol-pw'",
        plugin.display()
    );
    let server = TestServer::start_with(&setup, config);
    logs::wait_for(&["allow_cleartext_without_tls", "rule=2"]);

    // psql, as the README shows it: alice's LDAP password, over TLS.
    let alice = psql(
        &server,
        "alice",
        "alice-ldap-pw",
        "sslmode=require dbname=shop",
        "SELECT current_user",
    );
    assert!(alice.ok, "alice with psql: {}\n{}", alice.err, slapd.log());
    assert_eq!(alice.out.trim(), "alice");
    // psycopg, simple bind and search then bind.
    assert_eq!(
        psycopg_login(&server, "alice", "alice-ldap-pw", "shop"),
        Ok("alice".into())
    );
    assert_eq!(
        psycopg_login(&server, "alice", "alice-ldap-pw", "search"),
        Ok("alice".into())
    );

    // Refused, with the reason in the log only.
    for db in ["shop", "search"] {
        let wrong =
            psycopg_login(&server, "alice", "not-her-password", db).expect_err("wrong password");
        assert!(
            wrong.contains("password authentication failed for user \"alice\""),
            "{wrong}"
        );
        let outside =
            psycopg_login(&server, "bob", "bob-ldap-pw", db).expect_err("bob is not in dbusers");
        assert!(
            outside.contains("password authentication failed for user \"bob\""),
            "{outside}"
        );
        let injected =
            psycopg_login(&server, INJECTION, "alice-ldap-pw", db).expect_err("injection");
        assert!(
            injected.contains("password authentication failed"),
            "{injected}"
        );
    }
    logs::wait_for(&[
        "login rejected by the authentication provider",
        "invalid credentials for uid=alice",
    ]);
    logs::wait_for(&[
        "login rejected by the authentication provider",
        "uid=bob,ou=people,dc=example,dc=org is not a member of cn=dbusers",
    ]);
    logs::wait_for(&[
        "login rejected by the authentication provider",
        r"invalid credentials for uid=*)(uid\3d*,ou=people",
    ]);
    logs::wait_for(&[
        "login rejected by the authentication provider",
        r"no entry for *)(uid=* ((uid=\2a\29\28uid=\2a)",
    ]);

    // An empty password never reaches the directory (libpq will not send one: tokio-postgres
    // does, on the rule that allows a connection without TLS).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let login = |password: &'static str| {
            let conninfo = format!(
                "host=127.0.0.1 port={} user=alice dbname=plain password='{password}'",
                server.addr.port()
            );
            async move {
                let (client, conn) = phantomdb_testkit::tokio_postgres::connect(
                    &conninfo,
                    phantomdb_testkit::tokio_postgres::NoTls,
                )
                .await?;
                tokio::spawn(conn);
                let row = client.query_one("SELECT current_user", &[]).await?;
                Ok::<String, phantomdb_testkit::tokio_postgres::Error>(row.get(0))
            }
        };
        let empty = login("").await.expect_err("empty password");
        assert_eq!(code(&empty), "28P01");
        assert_eq!(
            login("alice-ldap-pw").await.expect("allowed without TLS"),
            "alice"
        );
    });
    logs::wait_for(&["empty password for alice (never sent to the directory)"]);

    // SCRAM users are untouched; the providers and their rules are listed.
    let carol = psql(
        &server,
        "carol",
        "carol-pw",
        "sslmode=require",
        "SELECT current_user",
    );
    assert!(carol.ok, "carol: {}", carol.err);
    let listed = psql(
        &server,
        ADMIN,
        ADMIN_PASSWORD,
        "sslmode=disable",
        "SELECT plugin || '|' || rules FROM phantomdb_auth_providers() WHERE name = 'ldap'",
    );
    assert!(listed.ok, "{}", listed.err);
    assert_eq!(
        listed.out.trim(),
        "ldap_auth|#1 hostssl search +ldap_users 127.0.0.1/32 ldap; \
         #2 host plain +ldap_users 127.0.0.1/32 ldap; #3 hostssl all +ldap_users 127.0.0.1/32 ldap"
    );

    // The directory goes away: LDAP logins fail with a logged reason, SCRAM goes on.
    slapd.stop();
    let down = psycopg_login(&server, "alice", "alice-ldap-pw", "shop").expect_err("slapd is down");
    assert!(
        down.contains("password authentication failed for user \"alice\""),
        "{down}"
    );
    let line = logs::wait_for(&[
        "authentication provider failed",
        "cannot connect to ldap://127.0.0.1",
    ]);
    assert!(line.contains("user=alice"), "{line}");
    assert_eq!(
        psycopg_login(&server, "carol", "carol-pw", "shop"),
        Ok("carol".into())
    );
}
