//! psycopg 3 (and SQLAlchemy) run a workload against the server.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{client_file, TestServer, ADMIN, ADMIN_PASSWORD};

/// The Python with psycopg: $PHANTOMDB_PYTHON, else the benchmark harness' venv (made by
/// `.ci/run` from bench/requirements.txt).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PHANTOMDB_PYTHON") {
        return p.into();
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/.venv/bin/python")
}

#[test]
fn psycopg_runs_a_workload() {
    let server = TestServer::start("CREATE ROLE reader LOGIN PASSWORD 'reader-pw'");
    let python = python();
    let output = Command::new(&python)
        .arg(client_file("psycopg_workload.py"))
        .args([
            &server.addr.ip().to_string(),
            &server.addr.port().to_string(),
            ADMIN,
            ADMIN_PASSWORD,
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} with psycopg is needed (python3 -m venv bench/.venv && bench/.venv/bin/pip install -r bench/requirements.txt): {e}",
                python.display()
            )
        });
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "psycopg workload failed:\n{out}\n{err}"
    );
    assert!(out.contains("psycopg workload ok"), "{out}\n{err}");
}
