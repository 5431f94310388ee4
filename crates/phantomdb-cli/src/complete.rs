//! Tab completion at the interactive prompt: SQL keywords, meta-commands, and the names the
//! database knows (tables, views, columns, functions, plugins, storage engines), read from
//! the system tables after every statement ([`Names::refresh`]).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use phantomdb::Connection;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

/// Keywords offered for completion (upper case; offered in the case the word was begun in).
const KEYWORDS: &[&str] = &[
    "ALL",
    "ALTER",
    "AND",
    "AS",
    "ASC",
    "BEGIN",
    "BETWEEN",
    "BIGINT",
    "BOOLEAN",
    "BY",
    "CASE",
    "CAST",
    "COLUMN",
    "COMMIT",
    "COPY",
    "COUNT",
    "CREATE",
    "CROSS",
    "DATE",
    "DEFAULT",
    "DEALLOCATE",
    "DELETE",
    "DESC",
    "DISTINCT",
    "DOUBLE",
    "DROP",
    "ELSE",
    "END",
    "EXCEPT",
    "EXECUTE",
    "EXISTS",
    "EXPLAIN",
    "FALSE",
    "FROM",
    "FULL",
    "GRANT",
    "GROUP",
    "HAVING",
    "IF",
    "IN",
    "INNER",
    "INSERT",
    "INT",
    "INTEGER",
    "INTERSECT",
    "INTO",
    "IS",
    "JOIN",
    "KEY",
    "LEFT",
    "LIKE",
    "LIMIT",
    "LOAD",
    "NOT",
    "NULL",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "OUTER",
    "PLUGIN",
    "PLUGINS",
    "PREPARE",
    "PRIMARY",
    "RENAME",
    "REPLACE",
    "RESET",
    "REVOKE",
    "RIGHT",
    "ROLE",
    "ROLLBACK",
    "SELECT",
    "SET",
    "SHOW",
    "TABLE",
    "TEXT",
    "THEN",
    "TIMESTAMP",
    "TO",
    "TRUE",
    "TRUNCATE",
    "UNION",
    "UNLOAD",
    "UPDATE",
    "USING",
    "VALUES",
    "VARCHAR",
    "VIEW",
    "WHEN",
    "WHERE",
    "WITH",
];

/// Meta-commands offered at the start of a line.
pub const META_COMMANDS: &[&str] = &[
    ".dump", ".engines", ".errors", ".exit", ".help", ".import", ".mode", ".open", ".output",
    ".plugins", ".quit", ".read", ".schema", ".tables", ".timer",
];

/// The database's names, shared between the shell (which refreshes them) and the line
/// editor (which completes from them).
#[derive(Clone, Default)]
pub struct Names(Arc<Mutex<BTreeSet<String>>>);

impl Names {
    /// Reads the names from the system tables. A query that fails (a plugin's table
    /// function unloaded, ...) contributes nothing.
    pub async fn refresh(&self, conn: &Connection) {
        let queries = [
            "SELECT name FROM phantomdb_tables()",
            "SELECT name FROM phantomdb_views()",
            "SELECT DISTINCT name FROM phantomdb_columns()",
            "SELECT DISTINCT name FROM phantomdb_functions()",
            "SELECT DISTINCT routine_name FROM information_schema.routines",
            "SELECT name FROM phantomdb_plugins()",
            "SELECT name FROM phantomdb_storage_engines()",
        ];
        let mut names = BTreeSet::new();
        for sql in queries {
            if let Ok(rows) = crate::catalog::text_rows(conn, sql).await {
                names.extend(rows.into_iter().filter_map(|r| r.into_iter().next()));
            }
        }
        if let Ok(mut current) = self.0.lock() {
            *current = names;
        }
    }

    /// The completions of `word` (a prefix), sorted: meta-commands when `word` begins with
    /// `.` at the start of the line, otherwise names and keywords (in the case it is typed in).
    pub fn complete(&self, word: &str, line_start: bool) -> Vec<String> {
        if word.starts_with('.') && line_start {
            return META_COMMANDS
                .iter()
                .filter(|c| c.starts_with(word))
                .map(|c| c.to_string())
                .collect();
        }
        if word.is_empty() {
            return Vec::new();
        }
        let lower = word.to_lowercase();
        let mut out: BTreeSet<String> = BTreeSet::new();
        if let Ok(names) = self.0.lock() {
            out.extend(
                names
                    .iter()
                    .filter(|n| n.to_lowercase().starts_with(&lower))
                    .cloned(),
            );
        }
        let upper_case = word.chars().next().is_some_and(|c| c.is_uppercase());
        for k in KEYWORDS
            .iter()
            .filter(|k| k.to_lowercase().starts_with(&lower))
        {
            out.insert(if upper_case {
                k.to_string()
            } else {
                k.to_lowercase()
            });
        }
        out.into_iter().collect()
    }
}

/// The line editor's helper: completion only.
pub struct ShellHelper {
    /// Names to complete from.
    pub names: Names,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '.'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let mut word = &before[start..];
        let mut start = start;
        // After `t.`, complete the column name (the part after the last dot).
        if !(word.starts_with('.') && start == 0) {
            if let Some(dot) = word.rfind('.') {
                start += dot + 1;
                word = &word[dot + 1..];
            }
        }
        let line_start = before[..start].trim().is_empty();
        let candidates = self
            .names
            .complete(word, line_start)
            .into_iter()
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        Ok((start, candidates))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keywords_and_meta_commands() {
        let names = Names::default();
        names
            .0
            .lock()
            .unwrap()
            .extend(["orders".to_string(), "order_lines".to_string()]);
        assert_eq!(
            names.complete("ord", false),
            vec!["order", "order_lines", "orders"]
        );
        assert_eq!(names.complete("SEL", false), vec!["SELECT"]);
        assert_eq!(names.complete(".ta", true), vec![".tables"]);
        assert!(names.complete("", false).is_empty());
    }
}
