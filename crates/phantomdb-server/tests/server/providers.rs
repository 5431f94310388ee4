//! Plugin authentication providers (`phantomdb.auth/1`), with the `auth_fixtures` plugin: a
//! password provider that accepts (as the user or as another role), and providers that
//! panic, hang and fail. The server asks for the password only over TLS (unless a rule allows
//! otherwise), refuses every login a provider does not accept, logs why, and keeps serving.

use crate::logs;
use crate::support::{
    config_file, psql, start_error, tls_files, TestServer, ADMIN, ADMIN_PASSWORD,
};

/// The fixture plugin, loaded by the setup SQL (before the server checks its rules).
fn load_fixtures() -> String {
    let path = phantomdb_testkit::plugin_library("auth_fixtures");
    format!("LOAD PLUGIN '{}'", path.display())
}

const ROLES: &str = "CREATE ROLE alice LOGIN; CREATE ROLE carol LOGIN; \
     CREATE ROLE staff_login LOGIN; CREATE ROLE nologin; \
     CREATE ROLE paul LOGIN; CREATE ROLE hank LOGIN; CREATE ROLE fred LOGIN; \
     CREATE ROLE bob LOGIN PASSWORD 'bob-pw'";

#[test]
fn plugin_providers_decide_logins_and_misbehaving_ones_refuse_them() {
    logs::capture();
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = tls_files(dir.path());
    let text = format!(
        r#"
[server]
tls_cert = {cert:?}
tls_key = {key:?}

[auth]
provider_timeout = "2s"

[[auth.rules]]
type = "hostssl"
user = ["alice", "nologin"]
provider = "test_password"
options = {{ password = "open-sesame" }}

[[auth.rules]]
type = "hostssl"
user = "carol"
provider = "test_password"
options = {{ password = "carol-secret", role = "staff_login" }}

[[auth.rules]]
type = "hostssl"
user = "paul"
provider = "panicking"

[[auth.rules]]
type = "hostssl"
user = "hank"
provider = "hanging"

[[auth.rules]]
type = "hostssl"
user = "fred"
provider = "failing"

[[auth.rules]]
type = "host"
user = "alice"
provider = "test_password"
options = {{ password = "open-sesame" }}

[[auth.rules]]
type = "host"
user = ["bob", "{ADMIN}"]
provider = "scram"
"#,
        cert = cert.display().to_string(),
        key = key.display().to_string(),
    );
    let (_, config) = config_file(dir.path(), &text);
    let server = TestServer::start_with(&format!("{}; {ROLES}", load_fixtures()), config);
    let tls = "sslmode=require dbname=shop";
    let whoami = "SELECT current_user";

    // Accepted: as the user, or as the role the provider names.
    let alice = psql(&server, "alice", "open-sesame", tls, whoami);
    assert!(alice.ok, "alice: {}", alice.err);
    assert_eq!(alice.out.trim(), "alice");
    let carol = psql(&server, "carol", "carol-secret", tls, whoami);
    assert!(carol.ok, "carol: {}", carol.err);
    assert_eq!(carol.out.trim(), "staff_login");

    // Rejected: the client hears what a wrong password sounds like; the log has the reason.
    let wrong = psql(&server, "alice", "guess", tls, whoami);
    assert!(!wrong.ok);
    assert!(
        wrong
            .err
            .contains("password authentication failed for user \"alice\""),
        "{}",
        wrong.err
    );
    logs::wait_for(&[
        "login rejected by the authentication provider",
        "wrong password for alice",
    ]);
    // Accepted by the provider, but the role may not log in.
    let nologin = psql(&server, "nologin", "open-sesame", tls, whoami);
    assert!(!nologin.ok);
    assert!(
        nologin.err.contains("not permitted to log in"),
        "{}",
        nologin.err
    );

    // No password in clear text without TLS.
    let plain = psql(&server, "alice", "open-sesame", "sslmode=disable", whoami);
    assert!(!plain.ok);
    assert!(
        plain.err.contains("needs an SSL connection"),
        "{}",
        plain.err
    );

    // Panicking, hanging and failing providers refuse the login; the server goes on.
    for (user, needle) in [
        ("paul", "panicked"),
        ("hank", "no answer within"),
        ("fred", "directory server unreachable"),
    ] {
        let run = psql(&server, user, "any-password", tls, whoami);
        assert!(!run.ok, "{user} must be refused");
        assert!(
            run.err.contains(&format!(
                "password authentication failed for user \"{user}\""
            )),
            "{user}: {}",
            run.err
        );
        let line = logs::wait_for(&["authentication provider failed", &format!("user={user}")]);
        assert!(line.contains(needle), "{user}: {line}");
    }
    let again = psql(&server, "alice", "open-sesame", tls, whoami);
    assert!(
        again.ok,
        "alice after the misbehaving providers: {}",
        again.err
    );
    let bob = psql(&server, "bob", "bob-pw", "sslmode=disable", whoami);
    assert!(bob.ok, "bob with SCRAM: {}", bob.err);

    // The providers and the rules that use them, from SQL.
    let listed = psql(
        &server,
        ADMIN,
        ADMIN_PASSWORD,
        "sslmode=disable",
        "SELECT name || '|' || plugin || '|' || rules FROM phantomdb_auth_providers() \
         WHERE name IN ('test_password', 'scram', 'reject') ORDER BY name",
    );
    assert!(listed.ok, "{}", listed.err);
    let lines: Vec<&str> = listed.out.lines().collect();
    assert_eq!(
        lines,
        [
            "reject|builtin|",
            "scram|builtin|#7 host all bob,admin all scram",
            "test_password|auth_fixtures|#1 hostssl all alice,nologin all test_password; \
             #2 hostssl all carol all test_password; #6 host all alice all test_password",
        ],
        "{}",
        listed.out
    );
}

#[test]
fn a_provider_option_mistake_stops_the_server_from_starting() {
    let db = phantomdb::Database::open_in_memory().expect("db");
    db.execute(&format!(
        "{}; CREATE ROLE admin LOGIN PASSWORD 'pw'",
        load_fixtures()
    ))
    .expect("setup");
    let start = |text: &str| start_error(&db, text);
    let e = start("[[auth.rules]]\ntype = \"host\"\nprovider = \"test_password\"\n");
    assert!(e.contains("auth.rules[0]"), "{e}");
    assert!(e.contains("option password (a string) is required"), "{e}");
    let e = start(
        "[[auth.rules]]\ntype = \"host\"\nprovider = \"scram\"\noptions = { password = \"x\" }\n",
    );
    assert!(e.contains("takes no options"), "{e}");
}
