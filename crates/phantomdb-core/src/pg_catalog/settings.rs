//! PostgreSQL's run-time settings as PhantomDB reports them to clients: `SHOW name`,
//! `current_setting('name')` and `pg_settings` answer these for the names PhantomDB has no
//! setting of its own for (PhantomDB's own settings, `application_name` or
//! `statement_timeout`, keep their values).

/// The PostgreSQL version PhantomDB reports (`server_version`): psql and drivers choose their
/// catalog queries by it, and `pg_catalog` answers PostgreSQL 15's.
pub const SERVER_VERSION: &str = "15.0";

/// `server_version_num` for [`SERVER_VERSION`].
pub const SERVER_VERSION_NUM: &str = "150000";

/// One fixed setting: name, value, description.
pub(crate) struct PgSetting {
    pub(crate) name: &'static str,
    pub(crate) value: &'static str,
    pub(crate) description: &'static str,
}

const fn s(name: &'static str, value: &'static str, description: &'static str) -> PgSetting {
    PgSetting {
        name,
        value,
        description,
    }
}

/// The PostgreSQL settings PhantomDB answers with a fixed value.
pub(crate) const PG_SETTINGS: &[PgSetting] = &[
    s(
        "server_version",
        SERVER_VERSION,
        "The PostgreSQL version PhantomDB speaks for.",
    ),
    s(
        "server_version_num",
        SERVER_VERSION_NUM,
        "server_version as a number.",
    ),
    s(
        "server_encoding",
        "UTF8",
        "Server character set: always UTF-8.",
    ),
    s(
        "client_encoding",
        "UTF8",
        "Client character set: always UTF-8.",
    ),
    s("datestyle", "ISO, MDY", "How dates and times are shown."),
    s("intervalstyle", "postgres", "How intervals are shown."),
    s("integer_datetimes", "on", "Datetimes are 64-bit integers."),
    s(
        "standard_conforming_strings",
        "on",
        "Backslashes in '...' strings are literal.",
    ),
    s(
        "is_superuser",
        "on",
        "Whether the session user is a superuser.",
    ),
    s(
        "max_identifier_length",
        "63",
        "Longest identifier PostgreSQL clients expect.",
    ),
    s(
        "search_path",
        "\"$user\", public",
        "Schemas searched for unqualified names.",
    ),
    s(
        "transaction_isolation",
        "serializable",
        "Isolation level of the current transaction.",
    ),
    s(
        "default_transaction_isolation",
        "serializable",
        "Isolation level of new transactions.",
    ),
    s(
        "transaction_read_only",
        "off",
        "Whether the transaction is read-only.",
    ),
    s(
        "default_transaction_read_only",
        "off",
        "Whether new transactions are read-only.",
    ),
    s("lc_collate", "C", "Collation order (byte order)."),
    s("lc_ctype", "C", "Character classification."),
    s("lc_messages", "C", "Language of messages."),
    s("bytea_output", "hex", "Output format of bytea values."),
    s(
        "client_min_messages",
        "notice",
        "Lowest message level sent to the client.",
    ),
    s(
        "extra_float_digits",
        "1",
        "Extra digits shown for floating-point values.",
    ),
    s(
        "default_text_search_config",
        "pg_catalog.english",
        "Text search configuration.",
    ),
    s(
        "max_connections",
        "100",
        "Maximum concurrent connections (not enforced).",
    ),
    s("in_hot_standby", "off", "Whether this is a hot standby."),
    s(
        "default_table_access_method",
        "redb",
        "Default storage engine of new tables.",
    ),
];

/// The fixed value of a PostgreSQL setting (case-insensitive name).
pub(crate) fn pg_setting(name: &str) -> Option<&'static PgSetting> {
    let name = name.trim().to_ascii_lowercase();
    PG_SETTINGS.iter().find(|s| s.name == name)
}
