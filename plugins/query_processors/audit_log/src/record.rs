//! One audit record: the JSON line written for a statement, with passwords masked.

use std::sync::OnceLock;

use phantomdb_plugin_sdk::query::QueryEnd;
use regex::Regex;
use serde_json::{json, Value};

/// `sql` with the string after every `PASSWORD` replaced by `'***'`.
pub fn mask_passwords(sql: &str) -> String {
    static PASSWORD: OnceLock<Option<Regex>> = OnceLock::new();
    // A quoted string ('' escapes a quote; E'...' strings may escape with a backslash).
    let pattern =
        PASSWORD.get_or_init(|| Regex::new(r"(?i)(\bPASSWORD\s+)[eE]?'(?:[^'\\]|''|\\.)*'?").ok());
    match pattern {
        Some(p) => p.replace_all(sql, "${1}'***'").into_owned(),
        // The pattern is a constant; were it refused, mask everything rather than leak.
        None => "***".into(),
    }
}

/// The JSON line for a statement that ended.
pub fn line(end: &QueryEnd) -> String {
    let error = end.error.as_ref().map_or(
        Value::Null,
        |e| json!({"sqlstate": e.sqlstate, "message": mask_passwords(&e.message)}),
    );
    let record = json!({
        "time": rfc3339(end.started_at_us),
        "user": end.session.user,
        "database": end.session.database,
        "sql": mask_passwords(&end.sql),
        "rows": end.rows,
        "duration_us": end.duration_us,
        "error": error,
    });
    record.to_string()
}

/// Microseconds since the Unix epoch as `2026-12-01T03:11:16.123456Z`.
pub fn rfc3339(us: u64) -> String {
    let secs = us / 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        us % 1_000_000
    )
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_passwords(
                "CREATE ROLE a LOGIN PASSWORD 'it''s secret'; ALTER ROLE b password 'x'"
            ),
            "CREATE ROLE a LOGIN PASSWORD '***'; ALTER ROLE b password '***'"
        );
        assert_eq!(mask_passwords("SELECT 'PASSWORD'"), "SELECT 'PASSWORD'");
        // An unterminated string is masked to the end.
        assert_eq!(
            mask_passwords("ALTER ROLE a PASSWORD 'abc"),
            "ALTER ROLE a PASSWORD '***'"
        );
    }

    #[test]
    fn formats_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        // 2024-02-29T12:34:56.5Z (a leap day).
        assert_eq!(
            rfc3339(1_709_210_096_500_000),
            "2024-02-29T12:34:56.500000Z"
        );
    }
}
