//! A server on loopback for one test, with its database in a temporary directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use phantomdb::Database;
use phantomdb_server::{Config, Server};
use phantomdb_testkit::tokio_postgres::{self, Client, NoTls};

/// The superuser every test database starts with.
pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-secret";

/// A running server; stops (gracefully) when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server on a fresh database where `setup` (SQL, as the owner) has run.
    pub fn start(setup: &str) -> Self {
        Self::start_with(setup, Config::default())
    }

    /// Like [`TestServer::start`] with a configuration (its address is replaced by a free
    /// loopback port).
    pub fn start_with(setup: &str, mut config: Config) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("server.db");
        let setup = setup.to_string();
        config.server.listen = "127.0.0.1:0".parse().expect("address");
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // The server gets a thread and runtime of its own, so it serves while a test blocks
        // (and the blocking setup below runs outside any test runtime).
        let thread = std::thread::spawn(move || {
            let db = Database::open(&db_path).expect("open database");
            db.execute(&format!(
                "CREATE ROLE {ADMIN} LOGIN SUPERUSER PASSWORD '{ADMIN_PASSWORD}'"
            ))
            .expect("create admin");
            if !setup.trim().is_empty() {
                db.execute(&setup).expect("setup SQL");
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let server = Server::new(db, config, "server.db")
                    .expect("server")
                    .bind()
                    .await
                    .expect("bind");
                addr_tx
                    .send(server.local_addr().expect("addr"))
                    .expect("send addr");
                server
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        let addr = addr_rx.recv().expect("server address");
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// A connection string for tokio-postgres / libpq.
    pub fn conninfo(&self, user: &str, password: &str) -> String {
        format!(
            "host={} port={} user={user} password={password} dbname=anything",
            self.addr.ip(),
            self.addr.port()
        )
    }

    /// Connects with tokio-postgres.
    pub async fn connect(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) =
            tokio_postgres::connect(&self.conninfo(user, password), NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Connects as the superuser.
    pub async fn admin(&self) -> Client {
        self.connect(ADMIN, ADMIN_PASSWORD)
            .await
            .expect("admin login")
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The SQLSTATE of a tokio-postgres error.
pub fn code(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

/// The message of a tokio-postgres error from the server.
pub fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

/// `path` under this crate's `tests/clients`.
pub fn client_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// A self-signed certificate for `127.0.0.1` and `localhost` and its key (PEM), made with the
/// openssl command line in `dir`: `(cert, key)`.
pub fn tls_files(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    let output = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command (Debian package openssl)");
    assert!(
        output.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (cert, key)
}

/// What a psql run printed.
pub struct PsqlRun {
    pub ok: bool,
    pub out: String,
    pub err: String,
}

/// Runs `psql "<conninfo>" -c <sql>` (tuples only, unaligned) against `server` with
/// `extra` conninfo settings (`sslmode=require dbname=shop ...`), password from PGPASSWORD.
pub fn psql(server: &TestServer, user: &str, password: &str, extra: &str, sql: &str) -> PsqlRun {
    let conninfo = format!(
        "host={} port={} user={user} {extra}",
        server.addr.ip(),
        server.addr.port()
    );
    let output = std::process::Command::new("psql")
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1"])
        .arg(&conninfo)
        .args(["-c", sql])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "20")
        .env_remove("PGSSLMODE")
        .output()
        .expect("psql must be installed (Debian package postgresql-client)");
    PsqlRun {
        ok: output.status.success(),
        out: String::from_utf8_lossy(&output.stdout).into_owned(),
        err: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Writes `text` as a configuration file in `dir` and loads it (so SIGHUP can reload it).
pub fn config_file(dir: &Path, text: &str) -> (PathBuf, Config) {
    let path = dir.join("phantomdb.toml");
    std::fs::write(&path, text).expect("write phantomdb.toml");
    let config = Config::load(&path).expect("configuration");
    (path, config)
}

/// Sends this process SIGHUP (the servers it runs reload their rules).
pub fn sighup() {
    // SAFETY: kill with our own pid; every server of the test binary installed a handler
    // before this is called (their configuration came from a file).
    let rc = unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
    assert_eq!(rc, 0, "kill(SIGHUP)");
}

/// Why a server with the configuration `text` would not start on `db`.
pub fn start_error(db: &Database, text: &str) -> String {
    Config::parse(text)
        .and_then(|c| Server::new(db.clone(), c, "x.db").map(|_| ()))
        .expect_err(text)
        .to_string()
}
