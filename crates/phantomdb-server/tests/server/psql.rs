//! psql (Debian's postgresql-client) runs a script against the server.

use std::process::Command;

use crate::support::{client_file, TestServer, ADMIN, ADMIN_PASSWORD};

#[test]
fn psql_runs_a_script() {
    let server = TestServer::start("");
    let dir = tempfile::tempdir().expect("temp dir");
    let csv_in = dir.path().join("in.csv");
    let csv_out = dir.path().join("out.csv");
    std::fs::write(&csv_in, "3,cat,30\n4,\"dan, jr\",40\n").expect("csv");
    let script = std::fs::read_to_string(client_file("workload.sql"))
        .expect("script")
        .replace("@CSV_IN@", &csv_in.display().to_string())
        .replace("@CSV_OUT@", &csv_out.display().to_string());
    let script_path = dir.path().join("workload.sql");
    std::fs::write(&script_path, script).expect("script copy");
    let output = Command::new("psql")
        .args(["-X", "-h"])
        .arg(server.addr.ip().to_string())
        .arg("-p")
        .arg(server.addr.port().to_string())
        .args(["-U", ADMIN, "-d", "anydb", "-v", "ON_ERROR_STOP=0"])
        .arg("-f")
        .arg(&script_path)
        .env("PGPASSWORD", ADMIN_PASSWORD)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql must be installed (Debian package postgresql-client)");
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    let all = format!("{out}\n{err}");
    let has = |needle: &str| assert!(all.contains(needle), "psql output lacks {needle:?}:\n{all}");

    // Transactions commit; the committed transfer shows.
    has(" 1 | ann   |      90");
    has(" 2 | bob   |      60");
    // The error carries its SQLSTATE, and the block is aborted until ROLLBACK.
    has("ERROR:  42P01");
    has("ERROR:  25P02: current transaction is aborted");
    has("ROLLBACK");
    has("kept \n------\n    2");
    // \copy in both directions and formats.
    has("COPY 2");
    has("total | n \n-------+---\n   220 | 6");
    let exported = std::fs::read_to_string(&csv_out).expect("\\copy TO wrote the file");
    assert!(
        exported.starts_with("id,owner,balance\n1,ann,90\n"),
        "{exported}"
    );
    assert!(exported.contains("4,\"dan, jr\",40\n"), "{exported}");
    assert!(
        exported.contains("5,eve\ttab,0\n") || exported.contains("5,eve\ttab,\n"),
        "{exported}"
    );
    // psql's catalog commands.
    has("public | accounts | table | admin");
    has("Table \"public.accounts\"");
    assert!(
        all.lines().any(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            cells.len() >= 4 && cells[0] == "owner" && cells[1] == "text" && cells[3] == "not null"
        }),
        "\\d shows owner as text not null:\n{all}"
    );
    has("\"accounts_pkey\" PRIMARY KEY, btree (id)");
}
