//! The error type of the PhantomDB library.

use datafusion::error::DataFusionError;

/// Result alias used throughout PhantomDB.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while opening a database or running a statement.
///
/// The `Display` form is a single line meant for end users (`Error: ...` in the shell).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SQL text could not be parsed or planned.
    #[error("{0}")]
    Sql(String),
    /// A constraint (primary key, NOT NULL) would be violated; nothing was changed.
    #[error("constraint violation: {0}")]
    Constraint(String),
    /// A table, view or column that does not exist, or one that already exists.
    #[error("{0}")]
    Catalog(String),
    /// Transaction misuse (COMMIT without BEGIN, a lock that could not be taken, ...).
    #[error("transaction error: {0}")]
    Transaction(String),
    /// A feature PhantomDB does not (yet) support.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// Loading, unloading or calling a plugin failed.
    #[error("plugin error: {0}")]
    Plugin(String),
    /// The storage layer (redb) failed.
    #[error("storage error: {0}")]
    Storage(String),
    /// Reading or writing a file failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// An error raised while executing a query.
    #[error("{}", explain_datafusion_error(.0))]
    DataFusion(#[from] DataFusionError),
}

impl Error {
    pub(crate) fn storage(e: impl std::fmt::Display) -> Self {
        Error::Storage(e.to_string())
    }
}

/// The one-line message of a DataFusion error, with PhantomDB's wording for common cases.
fn explain_datafusion_error(e: &DataFusionError) -> String {
    let msg = clean_datafusion_message(e);
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

/// DataFusion errors nest context ("Error during planning: ..."), and errors raised by
/// PhantomDB inside DataFusion callbacks come back wrapped in `External`. Show the innermost
/// PhantomDB message when there is one, otherwise DataFusion's own text on one line.
fn clean_datafusion_message(e: &DataFusionError) -> String {
    let mut current: &DataFusionError = e;
    loop {
        match current {
            DataFusionError::External(inner) => {
                if let Some(ours) = inner.downcast_ref::<Error>() {
                    return ours.to_string();
                }
                if let Some(df) = inner.downcast_ref::<DataFusionError>() {
                    current = df;
                    continue;
                }
                return inner.to_string().replace('\n', " ");
            }
            DataFusionError::Context(_, inner) => current = inner,
            DataFusionError::Diagnostic(_, inner) => current = inner,
            other => return other.to_string().replace('\n', " "),
        }
    }
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::storage(e)
            }
        }
    )*};
}
storage_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::DataFusion(DataFusionError::ArrowError(Box::new(e), None))
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
