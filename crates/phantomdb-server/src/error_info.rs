//! Errors as the client sees them: PostgreSQL `ErrorResponse` fields with a SQLSTATE.

use pgwire::error::{ErrorInfo, PgWireError};

/// An error to report to the client.
#[derive(Debug)]
pub(crate) struct ClientError(pub(crate) Box<ErrorInfo>);

impl ClientError {
    /// An `ERROR` with `code` and `message`.
    pub(crate) fn new(code: &str, message: impl Into<String>) -> Self {
        Self(Box::new(ErrorInfo::new(
            "ERROR".into(),
            code.into(),
            message.into(),
        )))
    }

    /// A protocol violation (08P01).
    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Self::new("08P01", message)
    }

    /// A `FATAL` error: the server closes the connection after sending it.
    pub(crate) fn fatal(code: &str, message: impl Into<String>) -> Self {
        Self(Box::new(ErrorInfo::new(
            "FATAL".into(),
            code.into(),
            message.into(),
        )))
    }
}

impl From<phantomdb::Error> for ClientError {
    fn from(e: phantomdb::Error) -> Self {
        let mut error = Self::new(e.sqlstate().code(), e.to_string());
        error.0.hint = e.hint().map(str::to_string);
        error
    }
}

impl From<ClientError> for PgWireError {
    fn from(e: ClientError) -> Self {
        PgWireError::UserError(e.0)
    }
}

/// A statement inside a failed transaction block (25P02).
pub(crate) fn aborted_error() -> ClientError {
    ClientError::new(
        "25P02",
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}
