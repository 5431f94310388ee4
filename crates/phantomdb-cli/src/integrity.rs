//! `phantomdb check DB` and `phantomdb recover DB OUT`.
//!
//! Exit status of `check`: 0 when the database is sound, 1 when any problem was found
//! (a file that cannot be opened is one). Of `recover`: 0 when everything was copied, 3
//! when the new database was written but something could not be read (each listed), 1 when
//! nothing could be recovered (no new file is left behind).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use phantomdb::{Database, Problem};

/// Exit status of `recover` when the new database lacks something it could not read.
const RECOVERED_WITH_LOSSES: u8 = 3;

/// Checks the database file at `db`, printing what was read and every problem.
pub fn check(db: &Path) -> ExitCode {
    let report = Database::check_file(db);
    println!(
        "checked {}: {} {}, {} {}, {} {}",
        db.display(),
        report.tables,
        plural(report.tables as u64, "table", "tables"),
        report.segments,
        plural(report.segments as u64, "segment", "segments"),
        report.rows,
        plural(report.rows, "row", "rows"),
    );
    print_problems(&report.problems);
    if report.problems.is_empty() {
        println!("no problems found");
        ExitCode::SUCCESS
    } else {
        println!(
            "{} {} found",
            report.problems.len(),
            plural(report.problems.len() as u64, "problem", "problems")
        );
        ExitCode::FAILURE
    }
}

/// Copies what is readable of `db` into the new database `out`, printing what was copied
/// and what was lost, then checks the new database.
pub async fn recover(db: &Path, out: &Path) -> Result<ExitCode> {
    let report = Database::recover(db, out).await?;
    println!(
        "recovered into {}: {} {}, {} {}, {} {}, {} {}",
        out.display(),
        report.tables,
        plural(report.tables as u64, "table", "tables"),
        report.rows,
        plural(report.rows, "row", "rows"),
        report.views,
        plural(report.views as u64, "view", "views"),
        report.roles,
        plural(report.roles as u64, "role", "roles"),
    );
    let after = Database::check_file(out);
    if !after.problems.is_empty() {
        print_problems(&after.problems);
        anyhow::bail!(
            "the recovered database {} does not check clean (see above)",
            out.display()
        );
    }
    if report.lost.is_empty() {
        println!("nothing lost");
        return Ok(ExitCode::SUCCESS);
    }
    for p in &report.lost {
        println!("not recovered: {p}");
    }
    println!(
        "{} {} not recovered",
        report.lost.len(),
        plural(report.lost.len() as u64, "object", "objects")
    );
    Ok(ExitCode::from(RECOVERED_WITH_LOSSES))
}

fn print_problems(problems: &[Problem]) {
    for p in problems {
        println!("problem: {p}");
    }
}

fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}
