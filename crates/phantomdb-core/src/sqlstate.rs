//! [`SqlState`]: the PostgreSQL SQLSTATE code of every error PhantomDB reports, so clients
//! (and the network server) can act on the kind of failure without reading its message.

/// A PostgreSQL SQLSTATE: the class and condition of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SqlState {
    /// `23000` integrity_constraint_violation.
    IntegrityConstraintViolation,
    /// `23502` not_null_violation.
    NotNullViolation,
    /// `23505` unique_violation (primary keys).
    UniqueViolation,
    /// `23514` check_violation (a CHECK constraint is false for a row).
    CheckViolation,
    /// `42P10` invalid_column_reference (an ON CONFLICT target no constraint matches).
    InvalidColumnReference,
    /// `428C9` generated_always (a value given for a `GENERATED ALWAYS` identity column).
    GeneratedAlways,
    /// `55000` object_not_in_prerequisite_state (`currval` before `nextval`).
    ObjectNotInPrerequisiteState,
    /// `40001` serialization_failure: another transaction committed first; retry.
    SerializationFailure,
    /// `55P03` lock_not_available: the writer lock was not free within the busy timeout.
    LockNotAvailable,
    /// `55006` object_in_use: e.g. a plugin that is already being unloaded.
    ObjectInUse,
    /// `25001` active_sql_transaction: `BEGIN` inside a transaction.
    ActiveSqlTransaction,
    /// `25P01` no_active_sql_transaction: `COMMIT`/`ROLLBACK` outside one.
    NoActiveSqlTransaction,
    /// `42P01` undefined_table.
    UndefinedTable,
    /// `42P07` duplicate_table (also views and other relations).
    DuplicateTable,
    /// `42703` undefined_column.
    UndefinedColumn,
    /// `42701` duplicate_column.
    DuplicateColumn,
    /// `42702` ambiguous_column: a name that more than one column answers to.
    AmbiguousColumn,
    /// `21000` cardinality_violation: a scalar subquery returned more than one row.
    CardinalityViolation,
    /// `42883` undefined_function.
    UndefinedFunction,
    /// `42704` undefined_object (a setting, a storage engine, a plugin).
    UndefinedObject,
    /// `42710` duplicate_object (a plugin or function name already taken).
    DuplicateObject,
    /// `42809` wrong_object_type (`DROP VIEW` on a table).
    WrongObjectType,
    /// `42939` reserved_name (a role named `public`).
    ReservedName,
    /// `2BP01` dependent_objects_still_exist (dropping a role that owns tables or views).
    DependentObjectsStillExist,
    /// `0LP01` invalid_grant_operation (a role membership that would form a cycle).
    InvalidGrantOperation,
    /// `42601` syntax_error.
    SyntaxError,
    /// `42804` datatype_mismatch.
    DatatypeMismatch,
    /// `42846` cannot_coerce (a cast between types that have none).
    CannotCoerce,
    /// `42000` syntax_error_or_access_rule_violation (other planning errors).
    SyntaxErrorOrAccessRuleViolation,
    /// `42501` insufficient_privilege.
    InsufficientPrivilege,
    /// `26000` invalid_sql_statement_name (an unknown prepared statement).
    InvalidSqlStatementName,
    /// `22000` data_exception.
    DataException,
    /// `22P02` invalid_text_representation (a cast from text failed).
    InvalidTextRepresentation,
    /// `22003` numeric_value_out_of_range.
    NumericValueOutOfRange,
    /// `22012` division_by_zero.
    DivisionByZero,
    /// `22023` invalid_parameter_value (a setting's value, a function argument).
    InvalidParameterValue,
    /// `0A000` feature_not_supported.
    FeatureNotSupported,
    /// `57014` query_canceled.
    QueryCanceled,
    /// `53200` out_of_memory.
    OutOfMemory,
    /// `54000` program_limit_exceeded (a statement longer than the limit).
    ProgramLimitExceeded,
    /// `54001` statement_too_complex (an expression or query nested too deeply).
    StatementTooComplex,
    /// `58000` system_error: a plugin library could not be loaded or started.
    PluginLoadFailed,
    /// `38000` external_routine_exception: plugin code failed while called.
    ExternalRoutineException,
    /// `58030` io_error.
    IoError,
    /// `XX001` data_corrupted.
    DataCorrupted,
    /// `XX000` internal_error.
    InternalError,
}

impl SqlState {
    /// The five-character code, as PostgreSQL sends it.
    pub const fn code(self) -> &'static str {
        match self {
            Self::IntegrityConstraintViolation => "23000",
            Self::NotNullViolation => "23502",
            Self::UniqueViolation => "23505",
            Self::CheckViolation => "23514",
            Self::InvalidColumnReference => "42P10",
            Self::GeneratedAlways => "428C9",
            Self::ObjectNotInPrerequisiteState => "55000",
            Self::SerializationFailure => "40001",
            Self::LockNotAvailable => "55P03",
            Self::ObjectInUse => "55006",
            Self::ActiveSqlTransaction => "25001",
            Self::NoActiveSqlTransaction => "25P01",
            Self::UndefinedTable => "42P01",
            Self::DuplicateTable => "42P07",
            Self::UndefinedColumn => "42703",
            Self::DuplicateColumn => "42701",
            Self::AmbiguousColumn => "42702",
            Self::CardinalityViolation => "21000",
            Self::UndefinedFunction => "42883",
            Self::UndefinedObject => "42704",
            Self::DuplicateObject => "42710",
            Self::WrongObjectType => "42809",
            Self::ReservedName => "42939",
            Self::DependentObjectsStillExist => "2BP01",
            Self::InvalidGrantOperation => "0LP01",
            Self::SyntaxError => "42601",
            Self::DatatypeMismatch => "42804",
            Self::CannotCoerce => "42846",
            Self::SyntaxErrorOrAccessRuleViolation => "42000",
            Self::InsufficientPrivilege => "42501",
            Self::InvalidSqlStatementName => "26000",
            Self::DataException => "22000",
            Self::InvalidTextRepresentation => "22P02",
            Self::NumericValueOutOfRange => "22003",
            Self::DivisionByZero => "22012",
            Self::InvalidParameterValue => "22023",
            Self::FeatureNotSupported => "0A000",
            Self::QueryCanceled => "57014",
            Self::OutOfMemory => "53200",
            Self::ProgramLimitExceeded => "54000",
            Self::StatementTooComplex => "54001",
            Self::PluginLoadFailed => "58000",
            Self::ExternalRoutineException => "38000",
            Self::IoError => "58030",
            Self::DataCorrupted => "XX001",
            Self::InternalError => "XX000",
        }
    }
}

impl std::fmt::Display for SqlState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}
