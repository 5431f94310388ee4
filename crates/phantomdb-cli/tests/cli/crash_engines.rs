//! The kill -9 suite on the engines other than `redb` (issue #21): a shell writing through
//! `s3_storage` (on a local directory and on the S3 test server) or changing the catalog of
//! `memory` tables is SIGKILLed at random points; after each kill every acknowledged commit
//! is there, nothing unacknowledged is half there, and `phantomdb check` is clean.
//!
//! `PHANTOMDB_KILL_ITERATIONS` sets the number of kills per engine (default 50).

use std::path::Path;
use std::time::Duration;

use super::integrity::{check, write_and_kill_with, Lcg};
use super::{plugin_dir, run, stderr, stdout};

/// Kills per engine: `PHANTOMDB_KILL_ITERATIONS`, 50 when unset.
fn iterations() -> usize {
    std::env::var("PHANTOMDB_KILL_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

/// The shell's arguments: the database, then (for `s3_storage`) the plugins and their
/// configuration.
struct Shell {
    args: Vec<String>,
}

impl Shell {
    fn args(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }

    /// The rows of `sql`'s answer as CSV lines (header left out).
    fn csv(&self, sql: &str) -> Vec<String> {
        let mut args = self.args();
        args.extend(["--format", "csv", "-c", sql]);
        let out = run(&args);
        assert!(out.status.success(), "{sql}: {}", stderr(&out));
        stdout(&out).lines().skip(1).map(str::to_string).collect()
    }
}

/// After a kill: the file checks clean.
fn assert_checks_clean(db: &Path, iteration: usize) {
    let checked = check(db);
    assert!(
        checked.status.success(),
        "iteration {iteration}: check after SIGKILL:\n{}",
        stdout(&checked)
    );
}

/// Rows per transaction of the batch workload.
const ROWS: i64 = 1000;

/// 50 SIGKILLs of a shell whose transactions each insert a batch of rows into an
/// `s3_storage` table and delete a third of the previous batch (one commit: new data files,
/// then one manifest). After each kill the table holds exactly batches 1..n, each whole:
/// every acknowledged transaction and any the shell committed before the kill came (it keeps
/// writing during the random delay).
fn kill_suite_on_s3_storage(config: &str, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let shell = Shell {
        args: vec![
            db.to_str().unwrap().to_string(),
            "--plugin-dir".into(),
            plugin_dir().to_str().unwrap().to_string(),
            "--plugin-config".into(),
            format!("s3_storage={config}"),
        ],
    };
    shell
        .csv("CREATE TABLE t (id BIGINT NOT NULL, batch BIGINT NOT NULL, v TEXT) USING s3_storage");
    let transaction = |b: i64| {
        format!(
            "BEGIN;\n\
             INSERT INTO t SELECT value, {b}, 'v' || value FROM generate_series({lo}, {hi});\n\
             DELETE FROM t WHERE batch = {prev} AND id % 3 = 0;\n\
             COMMIT;\n\
             SELECT 'committed {b}' AS m;\n",
            lo = b * ROWS,
            hi = b * ROWS + ROWS - 1,
            prev = b - 1,
        )
    };
    let iterations = iterations();
    let mut rng = Lcg(21 + label.len() as u64);
    let mut committed: i64 = 0;
    let mut kills_mid_write = 0;
    for iteration in 0..iterations {
        let first = committed + 1;
        let script: String = (first..first + 400).map(transaction).collect();
        let acks = 1 + rng.below(4) as usize;
        let delay = Duration::from_millis(rng.below(60));
        let acknowledged = write_and_kill_with(&shell.args(), script, acks, delay);
        assert_eq!(
            acknowledged,
            (first..first + acks as i64).collect::<Vec<_>>(),
            "{label} iteration {iteration}: the writer stopped early"
        );
        assert_checks_clean(&db, iteration);
        let rows = shell.csv(
            "SELECT batch, count(*), sum(CASE WHEN id % 3 = 0 THEN 1 ELSE 0 END) \
             FROM t GROUP BY batch ORDER BY batch",
        );
        let n = rows
            .last()
            .map(|l| l.split(',').next().unwrap().parse::<i64>().unwrap())
            .unwrap_or(0);
        let last_ack = *acknowledged.last().unwrap();
        assert!(
            n >= last_ack,
            "{label} iteration {iteration}: acknowledged commit {last_ack} lost (newest batch {n})"
        );
        if n > last_ack {
            kills_mid_write += 1;
        }
        // Batches 1..n-1 lost their thirds to their successor; batch n is whole.
        let expected: Vec<String> = (1..=n)
            .map(|b| {
                let thirds = (b * ROWS..b * ROWS + ROWS).filter(|i| i % 3 == 0).count() as i64;
                if b < n {
                    format!("{b},{},0", ROWS - thirds)
                } else {
                    format!("{b},{ROWS},{thirds}")
                }
            })
            .collect();
        assert_eq!(
            rows, expected,
            "{label} iteration {iteration}: newest batch {n}"
        );
        committed = n;
    }
    println!(
        "kill -9 suite ({label}): {iterations} kills, {committed} transactions committed and \
         verified, {kills_mid_write} kills after an unacknowledged commit was published"
    );
}

#[test]
fn sigkill_at_random_points_leaves_a_prefix_of_the_commits_on_s3_storage_in_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json_path(&dir.path().join("tables"));
    kill_suite_on_s3_storage(&config, "s3_storage, local directory");
}

#[test]
fn sigkill_at_random_points_leaves_a_prefix_of_the_commits_on_s3_storage_over_s3() {
    let root = tempfile::tempdir().unwrap();
    let server = phantomdb_testkit::S3TestServer::start(root.path()).expect("start the S3 server");
    kill_suite_on_s3_storage(&server.config_json("crash"), "s3_storage, S3 server");
}

/// `{"path": "<dir>"}`.
fn serde_json_path(dir: &Path) -> String {
    format!(
        "{{\"path\": \"{}\"}}",
        dir.display().to_string().replace('\\', "\\\\")
    )
}

/// The names of the `memory` tables the catalog holds after transactions 1..=n: each
/// transaction `b` creates `m_b` and drops `m_{b-1}` when `b-1` is a multiple of 3.
fn memory_tables_after(n: i64) -> Vec<String> {
    let mut names: Vec<String> = (1..=n)
        .filter(|&i| i == n || i % 3 != 0)
        .map(|i| format!("m_{i}"))
        .collect();
    names.sort();
    names
}

/// 50 SIGKILLs of a shell whose transactions each create a `memory` table (a column named
/// after the transaction), drop an earlier one and advance a progress row in a `redb` table.
/// After each kill the catalog holds exactly the tables of transactions 1..n (the progress
/// row), each usable and empty (a `memory` table's rows do not outlive the process).
#[test]
fn sigkill_at_random_points_leaves_a_prefix_of_the_catalog_changes_of_memory_tables() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let shell = Shell {
        args: vec![db.to_str().unwrap().to_string()],
    };
    shell.csv("CREATE TABLE progress (n BIGINT); INSERT INTO progress VALUES (0)");
    let transaction = |b: i64| {
        let drop = if b > 1 && (b - 1) % 3 == 0 {
            format!("DROP TABLE m_{};\n", b - 1)
        } else {
            String::new()
        };
        format!(
            "BEGIN;\n\
             CREATE TABLE m_{b} (id INT PRIMARY KEY, v TEXT, c{b} BIGINT) USING memory;\n\
             INSERT INTO m_{b} VALUES (1, 'one', {b});\n\
             {drop}\
             UPDATE progress SET n = {b};\n\
             COMMIT;\n\
             SELECT 'committed {b}' AS m;\n"
        )
    };
    let iterations = iterations();
    let mut rng = Lcg(7);
    let mut committed: i64 = 0;
    let mut kills_mid_write = 0;
    for iteration in 0..iterations {
        let first = committed + 1;
        let script: String = (first..first + 400).map(transaction).collect();
        let acks = 1 + rng.below(6) as usize;
        let delay = Duration::from_millis(rng.below(30));
        let acknowledged = write_and_kill_with(&shell.args(), script, acks, delay);
        assert_eq!(
            acknowledged,
            (first..first + acks as i64).collect::<Vec<_>>(),
            "memory iteration {iteration}: the writer stopped early"
        );
        assert_checks_clean(&db, iteration);
        let n: i64 = shell.csv("SELECT n FROM progress")[0].parse().unwrap();
        let last_ack = *acknowledged.last().unwrap();
        assert!(
            n >= last_ack,
            "memory iteration {iteration}: acknowledged commit {last_ack} lost (progress {n})"
        );
        if n > last_ack {
            kills_mid_write += 1;
        }
        let names =
            shell.csv("SELECT name FROM phantomdb_tables() WHERE engine = 'memory' ORDER BY name");
        let mut names = names;
        names.sort();
        assert_eq!(
            names,
            memory_tables_after(n),
            "memory iteration {iteration}: progress {n}"
        );
        // The newest table's entry is whole: its own column, its key, no rows.
        assert_eq!(
            shell.csv(&format!("SELECT count(c{n}), count(*) FROM m_{n}")),
            ["0,0"],
            "memory iteration {iteration}"
        );
        committed = n;
    }
    println!(
        "kill -9 suite (memory catalog): {iterations} kills, {committed} transactions \
         committed and verified, {kills_mid_write} kills after an unacknowledged commit \
         reached the file"
    );
}
