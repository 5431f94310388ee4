//! Test helpers for PhantomDB.
//!
//! [`S3TestServer`] runs a real S3-protocol server ([`s3s_fs`] 0.14, objects stored as files under
//! a directory) on `127.0.0.1` with a random port. It runs on its own OS thread with its own tokio
//! runtime, so it works from plain `#[test]`s and from `#[tokio::test]`s alike (it keeps serving
//! while the caller blocks), and it stops when dropped.
//!
//! ```no_run
//! let dir = std::env::temp_dir().join("phantomdb-s3-example");
//! let server = phantomdb_testkit::S3TestServer::start(&dir).unwrap();
//! // s3_storage plugin configuration with tables under s3://test-bucket/tables
//! let config = server.config_json("tables");
//! # let _ = config;
//! ```
//!
//! Known limitation of s3s-fs 0.14: conditional PUTs (`If-None-Match: *`) are checked and then
//! written non-atomically, so two *simultaneous* create-if-absent PUTs of one key can both
//! succeed. Sequential conditional PUTs behave like S3.

use std::net::{SocketAddr, TcpListener as StdTcpListener};

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
/// The PostgreSQL client the server's tests drive it with.
pub use tokio_postgres;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::sync::oneshot;

/// An S3 server on loopback, serving one bucket stored under a local directory.
pub struct S3TestServer {
    /// Base URL, e.g. `http://127.0.0.1:41234` (path-style requests).
    pub endpoint: String,
    /// Socket address the server listens on.
    pub addr: SocketAddr,
    /// The bucket created at start.
    pub bucket: String,
    /// Access key id accepted by the server.
    pub access_key: String,
    /// Secret access key accepted by the server.
    pub secret_key: String,
    /// Region to sign requests for.
    pub region: String,
    /// Directory holding the buckets (`root/<bucket>/<key>`).
    pub root: PathBuf,
    shutdown: ShutdownGuard,
}

struct ShutdownGuard {
    tx: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for ShutdownGuard {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl S3TestServer {
    /// Bucket created by [`S3TestServer::start`].
    pub const BUCKET: &'static str = "test-bucket";
    /// Access key id accepted by the server.
    pub const ACCESS_KEY: &'static str = "AKIDPHANTOMTEST";
    /// Secret access key accepted by the server.
    pub const SECRET_KEY: &'static str = "phantomdb-test-secret-0123456789";
    /// Region used in [`S3TestServer::config_json`].
    pub const REGION: &'static str = "us-east-1";

    /// Starts a server storing objects under `root` (created if missing) on `127.0.0.1:0`, with
    /// the bucket [`S3TestServer::BUCKET`]. The port is accepting when this returns.
    pub fn start(root: &Path) -> std::io::Result<Self> {
        Self::start_on(root, "127.0.0.1:0")
    }

    /// Like [`S3TestServer::start`] on a given address (e.g. `127.0.0.1:9000`).
    pub fn start_on(root: &Path, addr: &str) -> std::io::Result<Self> {
        // A bucket in s3s-fs is a directory under the root.
        std::fs::create_dir_all(root.join(Self::BUCKET))?;

        // Bind synchronously so the port is known (and accepting) before we return.
        let std_listener = StdTcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;

        let fs = s3s_fs::FileSystem::new(root)
            .map_err(|e| std::io::Error::other(format!("s3s-fs: {e:?}")))?;
        let service = {
            let mut b = S3ServiceBuilder::new(fs);
            b.set_auth(SimpleAuth::from_single(Self::ACCESS_KEY, Self::SECRET_KEY));
            b.build() // no set_host: path-style requests only
        };

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("s3-test-server-worker")
            .enable_all()
            .build()?;
        let (tx, mut rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("s3-test-server-{}", addr.port()))
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("s3 test server: {e}");
                            return;
                        }
                    };
                    let http = ConnBuilder::new(TokioExecutor::new());
                    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
                    loop {
                        tokio::select! {
                            res = listener.accept() => {
                                let Ok((socket, _)) = res else { continue };
                                let conn = http.serve_connection(TokioIo::new(socket), service.clone());
                                let conn = graceful.watch(conn.into_owned());
                                tokio::spawn(async move {
                                    let _ = conn.await;
                                });
                            }
                            _ = &mut rx => break,
                        }
                    }
                    drop(listener);
                    // Give in-flight requests a moment, then drop everything.
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_secs(2),
                        graceful.shutdown(),
                    )
                    .await;
                });
                // Dropping the runtime aborts leftover connection tasks (idle keep-alives).
                rt.shutdown_background();
            })?;

        Ok(Self {
            endpoint: format!("http://{addr}"),
            addr,
            bucket: Self::BUCKET.to_string(),
            access_key: Self::ACCESS_KEY.to_string(),
            secret_key: Self::SECRET_KEY.to_string(),
            region: Self::REGION.to_string(),
            root: root.to_path_buf(),
            shutdown: ShutdownGuard {
                tx: Some(tx),
                thread: Some(thread),
            },
        })
    }

    /// `s3://<bucket>/<prefix>` (just `s3://<bucket>` for an empty prefix).
    pub fn url(&self, prefix: &str) -> String {
        let prefix = prefix.trim_matches('/');
        if prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{prefix}", self.bucket)
        }
    }

    /// The `s3_storage` plugin configuration (JSON) for tables under `s3://<bucket>/<prefix>`:
    /// `path`, `endpoint`, `region`, `access_key_id`, `secret_access_key`, `allow_http`.
    pub fn config_json(&self, prefix: &str) -> String {
        serde_json::json!({
            "path": self.url(prefix),
            "endpoint": self.endpoint,
            "region": self.region,
            "access_key_id": self.access_key,
            "secret_access_key": self.secret_key,
            "allow_http": "true",
        })
        .to_string()
    }

    /// Stops the server (same as dropping it) and waits for its thread.
    pub fn stop(self) {
        drop(self.shutdown);
    }
}

/// Builds the whole workspace (libraries, binaries and plugin `cdylib`s) with the profile and
/// target directory of the running test binary, once per process, and returns the profile's
/// output directory (`<target>/<profile>`), where the plugin libraries are.
///
/// It builds `--workspace`, as `scripts/phantomdb` and the README's test command do, so the
/// feature set is the same and nothing is compiled twice. Set `PHANTOMDB_PLUGIN_DIR` to a
/// directory of prebuilt plugin libraries to skip the build.
pub fn workspace_build() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("PHANTOMDB_PLUGIN_DIR") {
            return PathBuf::from(dir);
        }
        // <target>/<profile>/deps/<test binary>
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the profile directory")
            .to_path_buf();
        let target_dir = profile_dir.parent().expect("the target directory");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let workspace = workspace_root();
        let mut cmd =
            std::process::Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()));
        cmd.current_dir(&workspace)
            .args(["build", "--workspace", "--profile", profile, "--target-dir"])
            .arg(target_dir);
        // Cargo gives a test the variables of its package (CARGO_PKG_NAME, CARGO_MANIFEST_DIR,
        // OUT_DIR, ...). Build scripts that watch them (ring's does) would run again and
        // everything above them would be compiled again: build with the environment the
        // test's own build had.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            let set_for_tests = [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_BIN_",
                "CARGO_CRATE_",
                "CARGO_CFG_",
                "CARGO_FEATURE_",
            ]
            .iter()
            .any(|p| key.starts_with(p))
                || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&&*key);
            if set_for_tests {
                cmd.env_remove(&*key);
            }
        }
        let status = cmd.status().expect("running cargo build");
        assert!(status.success(), "cargo build --workspace failed");
        profile_dir
    })
}

/// The workspace's directory: above the running test's package (cargo sets
/// `CARGO_MANIFEST_DIR` for it), else above this crate's as compiled. The run-time path comes
/// first: an artifact shared through one target directory by two checkouts keeps the path of
/// the checkout that compiled it, which may be gone.
fn workspace_root() -> PathBuf {
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .and_then(|dir| {
            dir.ancestors()
                .find(|d| d.join("Cargo.lock").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or(compiled)
}

/// The path of plugin library `name` (a package of the workspace) built by
/// [`workspace_build`].
pub fn plugin_library(name: &str) -> PathBuf {
    workspace_build().join(format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}
