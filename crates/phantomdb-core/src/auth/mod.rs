//! Authentication data: roles as a server sees them ([`RoleInfo`]) and their SCRAM-SHA-256
//! password verifiers ([`ScramVerifier`]).
//!
//! Roles are created with SQL (`CREATE ROLE name LOGIN PASSWORD '...'`) and read with
//! [`Database::role`](crate::Database::role). Passwords are only ever stored as verifiers.

mod scram;

pub use scram::{ScramVerifier, DEFAULT_ITERATIONS, SALT_LEN, SCRAM_SHA_256};

use crate::error::{Error, Result, SqlState};

/// A role as stored in the database, for authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    /// The role name.
    pub name: String,
    /// Whether the role may log in (`LOGIN`).
    pub login: bool,
    /// Whether the role is a superuser (`SUPERUSER`).
    pub superuser: bool,
    /// The password verifier; `None` when the role has no password.
    pub verifier: Option<ScramVerifier>,
}

/// The verifier to store for `PASSWORD '<text>'`: a pre-hashed SCRAM verifier (what psql's
/// `\password` sends) is kept as given once its form is checked; anything else is a password
/// and is hashed with a fresh salt.
pub(crate) fn verifier_for(text: &str) -> Result<ScramVerifier> {
    if text.starts_with(SCRAM_SHA_256) && text[SCRAM_SHA_256.len()..].starts_with('$') {
        return ScramVerifier::parse(text).ok_or_else(|| {
            Error::Data(
                SqlState::InvalidParameterValue,
                "malformed SCRAM-SHA-256 password verifier".into(),
            )
        });
    }
    if is_md5_hash(text) {
        return Err(Error::Unsupported(
            "MD5 password hashes; send the password or a SCRAM-SHA-256 verifier".into(),
        ));
    }
    if text.is_empty() {
        return Err(Error::Data(
            SqlState::InvalidParameterValue,
            "empty password; use PASSWORD NULL for a role without one".into(),
        ));
    }
    ScramVerifier::generate(text)
}

/// `md5` followed by 32 hex digits: PostgreSQL's MD5 password hash.
fn is_md5_hash(text: &str) -> bool {
    text.len() == 35 && text.starts_with("md5") && text[3..].bytes().all(|b| b.is_ascii_hexdigit())
}
