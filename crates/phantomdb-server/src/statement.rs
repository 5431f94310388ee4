//! What kind of statement a piece of SQL is, as far as the protocol cares: transaction
//! control (for the aborted-transaction rule) and the command tag it completes with.

use pgwire::api::results::Tag;
use phantomdb::datafusion::sql::parser::Statement as DfStatement;
use phantomdb::datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use phantomdb::Statement;

/// A statement's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `BEGIN` / `START TRANSACTION`.
    Begin,
    /// `COMMIT` / `END`.
    Commit,
    /// `ROLLBACK` / `ABORT`.
    Rollback,
    /// `SAVEPOINT name`.
    Savepoint(String),
    /// `RELEASE [SAVEPOINT] name`.
    Release(String),
    /// `ROLLBACK TO [SAVEPOINT] name`.
    RollbackTo(String),
    /// A query that returns rows (its tag counts them).
    Query,
    /// `INSERT` (tag `INSERT 0 n`).
    Insert,
    /// `UPDATE` / `DELETE` / `COPY ... FROM` (tag `<WORD> n`).
    Changes(&'static str),
    /// Anything else, completing with this tag.
    Other(String),
}

impl Kind {
    /// Whether the statement ends a transaction block (and so is allowed when it is aborted).
    pub(crate) fn ends_transaction(&self) -> bool {
        matches!(self, Kind::Commit | Kind::Rollback)
    }

    /// Whether the statement may run in an aborted transaction block.
    pub(crate) fn allowed_when_aborted(&self) -> bool {
        self.ends_transaction() || matches!(self, Kind::RollbackTo(_))
    }

    /// Whether it changes data or the catalog (for savepoints: a rollback to a savepoint
    /// needs to know whether anything was written since).
    pub(crate) fn writes(&self) -> bool {
        match self {
            Kind::Insert | Kind::Changes(_) => true,
            Kind::Other(word) => !matches!(
                word.as_str(),
                "SHOW" | "EXPLAIN" | "SET" | "RESET" | "PREPARE" | "DEALLOCATE" | "LOAD" | "UNLOAD"
            ),
            _ => false,
        }
    }

    /// Whether it returns rows without being a query (`SHOW`, `EXPLAIN`): running it has no
    /// side effects.
    pub(crate) fn is_utility_query(&self) -> bool {
        matches!(self, Kind::Other(word) if word == "SHOW" || word == "EXPLAIN")
    }

    /// Whether a prepared form can run it with parameters.
    pub(crate) fn preparable(&self) -> bool {
        matches!(
            self,
            Kind::Query | Kind::Insert | Kind::Changes("UPDATE" | "DELETE")
        )
    }

    /// The tag of a statement that changed `rows` rows or returned `rows` rows.
    pub(crate) fn tag(&self, rows: Option<usize>) -> Tag {
        match (self, rows) {
            (Kind::Insert, Some(n)) => Tag::new("INSERT").with_oid(0).with_rows(n),
            (Kind::Changes(word), Some(n)) => Tag::new(word).with_rows(n),
            (Kind::Query, Some(n)) => Tag::new("SELECT").with_rows(n),
            (Kind::Begin, _) => Tag::new("BEGIN"),
            (Kind::Commit, _) => Tag::new("COMMIT"),
            (Kind::Rollback | Kind::RollbackTo(_), _) => Tag::new("ROLLBACK"),
            (Kind::Savepoint(_), _) => Tag::new("SAVEPOINT"),
            (Kind::Release(_), _) => Tag::new("RELEASE"),
            (Kind::Other(word), _) => Tag::new(word),
            (Kind::Query, None) => Tag::new("SELECT"),
            (Kind::Insert, None) => Tag::new("INSERT").with_oid(0).with_rows(0),
            (Kind::Changes(word), None) => Tag::new(word).with_rows(0),
        }
    }
}

/// The kind of a parsed statement.
pub(crate) fn kind(stmt: &Statement) -> Kind {
    match stmt {
        Statement::DataFusion(df) => match df.as_ref() {
            DfStatement::Statement(s) => sql_kind(s),
            // EXPLAIN ANALYZE runs its statement, so it is not a side-effect-free utility.
            DfStatement::Explain(e) if e.options.analyze => Kind::Other("EXPLAIN ANALYZE".into()),
            DfStatement::Explain(_) => Kind::Other("EXPLAIN".into()),
            DfStatement::CopyTo(_) => Kind::Changes("COPY"),
            other => Kind::Other(leading_words(&other.to_string())),
        },
        Statement::CopyFrom(_) => Kind::Changes("COPY"),
        Statement::CreateTableUsing(_) => Kind::Other("CREATE TABLE".into()),
        Statement::SetDefaultEngine(_) => Kind::Other("SET".into()),
        Statement::LoadPlugin(_) => Kind::Other("LOAD".into()),
        Statement::UnloadPlugin(_) => Kind::Other("UNLOAD".into()),
        Statement::ShowPlugins => Kind::Other("SHOW".into()),
        Statement::Reindex(_) => Kind::Other("REINDEX".into()),
    }
}

fn sql_kind(s: &SqlStatement) -> Kind {
    match s {
        SqlStatement::StartTransaction { .. } => Kind::Begin,
        SqlStatement::Commit { .. } => Kind::Commit,
        SqlStatement::Rollback {
            savepoint: Some(name),
            ..
        } => Kind::RollbackTo(name.value.clone()),
        SqlStatement::Rollback { .. } => Kind::Rollback,
        SqlStatement::Savepoint { name } => Kind::Savepoint(name.value.clone()),
        SqlStatement::ReleaseSavepoint { name } => Kind::Release(name.value.clone()),
        SqlStatement::Query(_) => Kind::Query,
        SqlStatement::Insert(_) => Kind::Insert,
        SqlStatement::Update { .. } => Kind::Changes("UPDATE"),
        SqlStatement::Delete(_) => Kind::Changes("DELETE"),
        SqlStatement::ShowVariable { .. } => Kind::Other("SHOW".into()),
        SqlStatement::Truncate { .. } => Kind::Other("TRUNCATE TABLE".into()),
        other => Kind::Other(leading_words(&other.to_string())),
    }
}

/// PostgreSQL-style tag from a statement's text: `CREATE TABLE`, `DROP VIEW`, `SET`, ...
fn leading_words(text: &str) -> String {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| w.to_ascii_uppercase())
        .filter(|w| {
            !matches!(
                w.as_str(),
                "OR" | "REPLACE" | "TEMPORARY" | "TEMP" | "UNIQUE"
            )
        })
        .take(2)
        .collect();
    match words.first().map(String::as_str) {
        Some("CREATE" | "DROP" | "ALTER") => words.join(" "),
        Some(first) => first.to_string(),
        None => "OK".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(sql: &str) -> Kind {
        kind(&phantomdb::parse(sql).unwrap().remove(0))
    }

    #[test]
    fn tags_read_like_postgres() {
        let tag = |sql: &str, rows| {
            pgwire::messages::response::CommandComplete::from(kind_of(sql).tag(rows)).tag
        };
        assert_eq!(tag("INSERT INTO t VALUES (1)", Some(3)), "INSERT 0 3");
        assert_eq!(tag("UPDATE t SET a = 1", Some(2)), "UPDATE 2");
        assert_eq!(tag("DELETE FROM t", Some(0)), "DELETE 0");
        assert_eq!(tag("SELECT 1", Some(1)), "SELECT 1");
        assert_eq!(tag("CREATE TABLE t(a INT)", None), "CREATE TABLE");
        assert_eq!(
            tag("CREATE OR REPLACE VIEW v AS SELECT 1", None),
            "CREATE VIEW"
        );
        assert_eq!(tag("DROP TABLE t", None), "DROP TABLE");
        assert!(kind_of("BEGIN").eq(&Kind::Begin));
        assert!(kind_of("ROLLBACK").ends_transaction());
        assert!(kind_of("SELECT 1").preparable());
        assert!(!kind_of("CREATE TABLE t(a INT)").preparable());
    }
}
