//! The vocabulary of privileges, shared by the catalog that stores them and the checks that
//! read them: privilege kinds, grant maps, the reserved role names and the texts of the
//! file-access refusal. A leaf: it imports nothing else of the crate.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The user an embedded connection runs as (the network server names its own); the owner of
/// the database and always a superuser.
pub const DEFAULT_USER: &str = "phantomdb";

/// A privilege on a table or view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Privilege {
    /// Read rows (`SELECT`, and reading columns in `UPDATE`/`DELETE`).
    Select,
    /// Add rows (`INSERT`, `COPY FROM`).
    Insert,
    /// Change rows.
    Update,
    /// Remove rows.
    Delete,
}

impl Privilege {
    /// Every privilege (`ALL PRIVILEGES`).
    pub(crate) const ALL: [Privilege; 4] = [
        Privilege::Select,
        Privilege::Insert,
        Privilege::Update,
        Privilege::Delete,
    ];
}

/// Privileges granted on one table or view, by grantee (a role name, or [`PUBLIC`]).
pub type Grants = BTreeMap<String, BTreeSet<Privilege>>;

/// The message of a `COPY` to or from a server file by a role that is not a superuser
/// (PostgreSQL's, SQLSTATE `42501`).
pub(crate) const COPY_FILE_DENIED: &str = "permission denied to COPY to or from a file";

/// The hint that goes with [`COPY_FILE_DENIED`] ([`Error::hint`]).
pub(crate) const COPY_FILE_HINT: &str = "Only roles with privileges of the superuser may COPY \
     to or from a file. Anyone can COPY to stdout or from stdin. psql's \\copy command also \
     works for anyone.";

/// The grantee every role belongs to. Reserved: no role may take the name.
pub(crate) const PUBLIC: &str = "public";

/// The role name an owner field stands for (empty: the database owner).
pub(crate) fn owner_name(owner: &str) -> &str {
    if owner.is_empty() {
        DEFAULT_USER
    } else {
        owner
    }
}
