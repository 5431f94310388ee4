//! How the shell reports an error on standard error: `Error: message`, then for a syntax
//! error the line of SQL with a caret under the position (as psql does); with
//! `.errors verbose` the SQLSTATE and the detail too; in JSON mode one JSON object.

use std::fmt::Write as _;

use crate::output::Format;

/// How much the shell says about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// The message (with the position and a hint, when there are ones).
    Default,
    /// Also the SQLSTATE and the detail.
    Verbose,
}

/// The text to print for `error`, raised while running `sql` (whose text positions refer
/// to), ending in a newline.
pub fn describe(error: &anyhow::Error, sql: Option<&str>, format: Format, v: Verbosity) -> String {
    let ours = error
        .chain()
        .find_map(|c| c.downcast_ref::<phantomdb::Error>());
    let Some(e) = ours else {
        return match format {
            Format::Json => format!("{}\n", serde_json::json!({ "error": format!("{error:#}") })),
            _ => format!("Error: {error:#}\n"),
        };
    };
    let position = e.position();
    if format == Format::Json {
        let mut object = serde_json::json!({
            "error": e.to_string(),
            "sqlstate": e.sqlstate().code(),
        });
        if let Some(p) = position {
            object["position"] = serde_json::json!({ "line": p.line, "column": p.column });
        }
        if let Some(d) = e.detail() {
            object["detail"] = d.into();
        }
        if let Some(h) = e.hint() {
            object["hint"] = h.into();
        }
        return format!("{object}\n");
    }
    let mut text = match v {
        Verbosity::Default => format!("Error: {e}\n"),
        Verbosity::Verbose => format!("Error: {}: {e}\n", e.sqlstate().code()),
    };
    if let (Some(p), Some(sql)) = (position, sql) {
        text.push_str(&caret(sql, p.line, p.column));
    }
    if v == Verbosity::Verbose {
        if let Some(d) = e.detail() {
            let _ = writeln!(text, "DETAIL: {d}");
        }
    }
    if let Some(h) = e.hint() {
        let _ = writeln!(text, "HINT: {h}");
    }
    text
}

/// `LINE n: <that line>` and a caret under `column` (both 1-based, in characters).
fn caret(sql: &str, line: u64, column: u64) -> String {
    let Some(text) = usize::try_from(line)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .and_then(|l| sql.split('\n').nth(l))
    else {
        return String::new();
    };
    let text = text.trim_end_matches('\r').replace('\t', " ");
    let prefix = format!("LINE {line}: ");
    let column = usize::try_from(column).unwrap_or(1).max(1);
    format!(
        "{prefix}{text}\n{}^\n",
        " ".repeat(prefix.chars().count() + column - 1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_under_the_column() {
        assert_eq!(
            caret("SELECT 1;\nSELEC x;", 2, 1),
            "LINE 2: SELEC x;\n        ^\n"
        );
        assert_eq!(
            caret("SELECT 1 +", 1, 11),
            "LINE 1: SELECT 1 +\n                  ^\n"
        );
        assert_eq!(caret("x", 3, 1), "");
    }
}
