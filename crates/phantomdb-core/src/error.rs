//! The error type of the PhantomDB library: every error has a kind (its variant) and a
//! PostgreSQL SQLSTATE ([`Error::sqlstate`]), kept typed from where it happens up to the API.

mod readable;

use arrow::error::ArrowError;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::TokenWithSpan;

pub use crate::sqlstate::SqlState;

/// Result alias used throughout PhantomDB.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while opening a database or running a statement.
///
/// The `Display` form is a single line meant for end users (`Error: ...` in the shell);
/// [`Error::sqlstate`] is the code programs act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SQL text could not be parsed (`42601`).
    #[error("{0}")]
    Sql(String),
    /// The parser stopped at a token it did not expect (`42601`): `syntax error at or near
    /// "SELEC"`, with where it stopped.
    #[error("{message}")]
    Syntax {
        /// The message, as PostgreSQL words it.
        message: String,
        /// What the parser expected instead, when it said so (`an SQL statement`).
        expected: Option<String>,
        /// Where in the SQL text the parser stopped.
        position: Option<Position>,
    },
    /// A constraint (primary key, NOT NULL) would be violated; nothing was changed.
    #[error("constraint violation: {1}")]
    Constraint(SqlState, String),
    /// A table, view, column, setting or prepared statement that does not exist, or one that
    /// already exists.
    #[error("{1}")]
    Catalog(SqlState, String),
    /// Transaction misuse or a conflict with another transaction (`40001`, `55P03`, `25xxx`).
    #[error("transaction error: {1}")]
    Transaction(SqlState, String),
    /// A feature PhantomDB does not (yet) support (`0A000`).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// Loading, unloading or calling a plugin failed, or a plugin a table needs is missing.
    #[error("plugin error: {1}")]
    Plugin(SqlState, String),
    /// The role running the statement lacks a privilege it needs (`42501`); nothing was
    /// changed.
    #[error("{0}")]
    PermissionDenied(String),
    /// A value was invalid for where it was used (a setting, an option, a cast).
    #[error("{1}")]
    Data(SqlState, String),
    /// The storage layer (redb) failed (`XX000`).
    #[error("storage error: {0}")]
    Storage(String),
    /// Stored data failed its checksum or could not be decoded (`XX001`); names what was
    /// read (table and segment, catalog entry).
    #[error("data corrupted: {0}")]
    Corrupt(String),
    /// A statement exceeded a limit: too long (`54000`) or nested too deeply (`54001`).
    #[error("{1}")]
    Limit(SqlState, String),
    /// Reading or writing a file failed (`58030`).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// An error raised by the query engine while planning or executing.
    #[error("{}", explain_datafusion_error(.0))]
    DataFusion(DataFusionError),
}

/// A place in SQL text: 1-based line and column, counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: u64,
    /// Column (in characters), from 1.
    pub column: u64,
}

impl Position {
    /// The 0-based character offset of this position in `sql` (PostgreSQL's error position
    /// counts characters from 1: add one), or `None` when `sql` is shorter.
    pub fn char_offset(&self, sql: &str) -> Option<usize> {
        let line_start: usize = sql
            .split_inclusive('\n')
            .take(usize::try_from(self.line).ok()?.checked_sub(1)?)
            .map(|l| l.chars().count())
            .sum();
        let offset = line_start + usize::try_from(self.column).ok()?.checked_sub(1)?;
        (offset <= sql.chars().count()).then_some(offset)
    }

    /// The position just after the last character of `sql`.
    pub fn end_of(sql: &str) -> Position {
        let line = sql.split('\n').count().max(1);
        let last = sql.rsplit('\n').next().unwrap_or("");
        Position {
            line: line as u64,
            column: last.chars().count() as u64 + 1,
        }
    }
}

impl Error {
    pub(crate) fn storage(e: impl std::fmt::Display) -> Self {
        Error::Storage(e.to_string())
    }

    /// The SQLSTATE of this error.
    pub fn sqlstate(&self) -> SqlState {
        match self {
            Error::Sql(_) | Error::Syntax { .. } => SqlState::SyntaxError,
            Error::Constraint(s, _)
            | Error::Catalog(s, _)
            | Error::Transaction(s, _)
            | Error::Plugin(s, _)
            | Error::Data(s, _)
            | Error::Limit(s, _) => *s,
            Error::Unsupported(_) => SqlState::FeatureNotSupported,
            Error::PermissionDenied(_) => SqlState::InsufficientPrivilege,
            Error::Storage(_) => SqlState::InternalError,
            Error::Corrupt(_) => SqlState::DataCorrupted,
            Error::Io(_) => SqlState::IoError,
            Error::DataFusion(e) => datafusion_state(e),
        }
    }

    /// PostgreSQL's `HINT` for this error, when it has one (a client shows it under the
    /// message, as psql does): e.g. where to go instead of `COPY ... FROM 'file'`.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::PermissionDenied(m) if m == crate::privileges::grants::COPY_FILE_DENIED => {
                Some(crate::privileges::grants::COPY_FILE_HINT)
            }
            _ => None,
        }
    }

    /// Where in the SQL text the error was found, when known (syntax errors).
    pub fn position(&self) -> Option<Position> {
        match self {
            Error::Syntax { position, .. } => *position,
            _ => None,
        }
    }

    /// More about the error, when there is more (PostgreSQL's `DETAIL`): for a syntax error,
    /// what the parser expected.
    pub fn detail(&self) -> Option<String> {
        match self {
            Error::Syntax {
                expected: Some(e), ..
            } => Some(format!("expected {e}")),
            _ => None,
        }
    }

    /// A parser error as a syntax error with its position.
    pub(crate) fn from_parser(e: ParserError) -> Self {
        readable::syntax_error(&e)
    }

    /// A syntax error at `found` (a token where the statement should have ended, ...).
    pub(crate) fn unexpected_token(found: &TokenWithSpan) -> Self {
        readable::unexpected_token(found)
    }

    /// A syntax error at the end of the input gets the input's end as its position, so
    /// that it can be shown.
    pub(crate) fn at_end_of(self, sql: &str) -> Self {
        match self {
            Error::Syntax {
                message,
                expected,
                position: None,
            } if message == readable::AT_END_OF_INPUT => Error::Syntax {
                message,
                expected,
                position: Some(Position::end_of(sql.trim_end())),
            },
            other => other,
        }
    }

    /// A table that does not exist (`42P01`).
    pub(crate) fn undefined_table(name: &str) -> Self {
        Error::Catalog(
            SqlState::UndefinedTable,
            format!("table \"{name}\" does not exist"),
        )
    }
}

/// What PostgreSQL says when a scalar subquery returns a second row (`21000`).
pub(crate) const SUBQUERY_TOO_MANY_ROWS: &str =
    "more than one row returned by a subquery used as an expression";

/// DataFusion's execution error for an uncorrelated scalar subquery with a second row.
const DATAFUSION_SUBQUERY_TOO_MANY_ROWS: &str = "Scalar subquery returned more than one row";

/// The SQLSTATE of a query-engine error, from its type. DataFusion reports an unknown
/// function as a plain planning error, and an uncorrelated scalar subquery with two rows as
/// a plain execution error; those are the cases recognized by their text.
fn datafusion_state(e: &DataFusionError) -> SqlState {
    match e {
        DataFusionError::External(inner) => {
            if let Some(ours) = inner.downcast_ref::<Error>() {
                return ours.sqlstate();
            }
            if let Some(df) = inner.downcast_ref::<DataFusionError>() {
                return datafusion_state(df);
            }
            if let Some(arrow) = inner.downcast_ref::<ArrowError>() {
                return arrow_state(arrow);
            }
            SqlState::InternalError
        }
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            datafusion_state(inner)
        }
        DataFusionError::Shared(inner) => datafusion_state(inner),
        DataFusionError::ArrowError(a, _) => arrow_state(a),
        DataFusionError::SQL(_, _) => SqlState::SyntaxError,
        DataFusionError::NotImplemented(_) => SqlState::FeatureNotSupported,
        DataFusionError::SchemaError(s, _) => match s.as_ref() {
            SchemaError::FieldNotFound { .. } => SqlState::UndefinedColumn,
            SchemaError::DuplicateQualifiedField { .. }
            | SchemaError::DuplicateUnqualifiedField { .. } => SqlState::DuplicateColumn,
            _ => SqlState::SyntaxErrorOrAccessRuleViolation,
        },
        DataFusionError::Plan(m) if m.starts_with("Invalid function") => {
            SqlState::UndefinedFunction
        }
        DataFusionError::Plan(_) => SqlState::SyntaxErrorOrAccessRuleViolation,
        DataFusionError::Execution(m) if m.contains(DATAFUSION_SUBQUERY_TOO_MANY_ROWS) => {
            SqlState::CardinalityViolation
        }
        DataFusionError::ResourcesExhausted(_) => SqlState::OutOfMemory,
        DataFusionError::IoError(_) => SqlState::IoError,
        DataFusionError::Configuration(_) => SqlState::InvalidParameterValue,
        _ => SqlState::InternalError,
    }
}

fn arrow_state(e: &ArrowError) -> SqlState {
    match e {
        ArrowError::DivideByZero => SqlState::DivisionByZero,
        ArrowError::CastError(_) | ArrowError::ParseError(_) => SqlState::InvalidTextRepresentation,
        ArrowError::ArithmeticOverflow(_) => SqlState::NumericValueOutOfRange,
        ArrowError::ExternalError(inner) => match inner.downcast_ref::<Error>() {
            Some(ours) => ours.sqlstate(),
            None => SqlState::DataException,
        },
        ArrowError::IoError(_, _) => SqlState::IoError,
        _ => SqlState::DataException,
    }
}

/// The one-line message of a DataFusion error, with PhantomDB's wording for common cases.
fn explain_datafusion_error(e: &DataFusionError) -> String {
    let msg = readable::datafusion_message(e);
    if msg.contains(DATAFUSION_SUBQUERY_TOO_MANY_ROWS) {
        return SUBQUERY_TOO_MANY_ROWS.to_string();
    }
    if let Some(rest) = msg.split("Invalid function '").nth(1) {
        if let Some(name) = rest.split('\'').next() {
            return format!(
                "function not found: {name} (SHOW PLUGINS lists the loaded plugins; \
                 SELECT * FROM phantomdb_functions() lists the functions)"
            );
        }
    }
    msg
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                from_redb(e.into())
            }
        }
    )*};
}

/// A redb error: a failed read, write or sync of the file is an I/O error (`58030`; after
/// one, redb refuses every write until the database is opened again), damage it detects
/// is `XX001`, the rest a storage error.
fn from_redb(e: redb::Error) -> Error {
    match e {
        redb::Error::Io(io) => Error::Io(io),
        redb::Error::PreviousIo => Error::Io(std::io::Error::other(
            "an earlier write to the database file failed; no change can be committed until \
             the database is opened again",
        )),
        redb::Error::Corrupted(msg) => Error::Corrupt(msg),
        other => Error::storage(other),
    }
}
storage_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<ArrowError> for Error {
    fn from(e: ArrowError) -> Self {
        Error::DataFusion(DataFusionError::ArrowError(Box::new(e), None))
    }
}

impl From<DataFusionError> for Error {
    /// A parser error (from DataFusion's statement parser) becomes a syntax error with its
    /// position; everything else keeps DataFusion's typed error.
    fn from(e: DataFusionError) -> Self {
        match e {
            DataFusionError::SQL(p, _) => Error::from_parser(*p),
            other => Error::DataFusion(other),
        }
    }
}

impl From<Error> for DataFusionError {
    fn from(e: Error) -> Self {
        match e {
            Error::DataFusion(df) => df,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}
