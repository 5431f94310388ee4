//! Who may do what: the role a statement runs as ([`Actor`], resolved from the statement's
//! own catalog snapshot) and the privileges stored on tables and views.
//!
//! PostgreSQL's rules, reduced to what PhantomDB has: superusers pass every check; the owner
//! of a table or view (the role that created it) has every privilege on it and alone may
//! drop, alter, truncate it or grant on it; other roles need a grant (to them or to
//! `PUBLIC`). Queries are checked on their logical plan ([`check_plan`]) before they run.

pub(crate) mod grants;
mod plan;

use std::collections::BTreeSet;

pub(crate) use grants::{owner_name, COPY_FILE_DENIED, DEFAULT_USER, PUBLIC};
pub(crate) use grants::{Grants, Privilege};
pub(crate) use plan::check_plan;

use crate::catalog::{Catalog, TableDef};
use crate::error::{Error, Result};

/// The role a statement (or a view's query) runs as.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub(crate) name: String,
    pub(crate) superuser: bool,
    /// The actor and every role it is a member of (`GRANT group TO role`), whose
    /// privileges and ownership it has, as in PostgreSQL (roles `INHERIT` by default).
    pub(crate) roles: BTreeSet<String>,
}

impl Actor {
    /// `user` as the catalog describes it: the database owner ([`DEFAULT_USER`]) is always a
    /// superuser; a stored role has its own flag; any other name has only `PUBLIC` grants.
    pub(crate) fn resolve(user: &str, catalog: &Catalog) -> Self {
        let superuser =
            user == DEFAULT_USER || catalog.role(user).is_some_and(|role| role.superuser);
        Self {
            name: user.to_string(),
            superuser,
            roles: catalog.roles_of(user),
        }
    }

    /// Whether the actor owns an object with owner field `owner` (superusers own everything;
    /// members of the owning role act as its owner).
    pub(crate) fn owns(&self, owner: &str) -> bool {
        self.superuser || self.roles.contains(owner_name(owner))
    }

    /// Whether the actor holds `privilege` on an object with this owner and these grants
    /// (to it, to a role it is a member of, or to `PUBLIC`).
    pub(crate) fn holds(&self, owner: &str, grants: &Grants, privilege: Privilege) -> bool {
        let granted = |grantee: &str| grants.get(grantee).is_some_and(|g| g.contains(&privilege));
        self.owns(owner) || granted(PUBLIC) || self.roles.iter().any(|r| granted(r))
    }

    /// Fails with `42501` unless the actor holds `privilege` on `kind` (`table`/`view`) `name`.
    pub(crate) fn check(
        &self,
        kind: &str,
        name: &str,
        owner: &str,
        grants: &Grants,
        privilege: Privilege,
    ) -> Result<()> {
        if self.holds(owner, grants, privilege) {
            return Ok(());
        }
        Err(Error::PermissionDenied(format!(
            "permission denied for {kind} {name}"
        )))
    }

    /// Fails with `42501` unless the actor holds `privilege` on table `def`.
    pub(crate) fn check_table(&self, def: &TableDef, privilege: Privilege) -> Result<()> {
        self.check("table", &def.name, &def.owner, &def.grants, privilege)
    }

    /// Fails with `42501` unless the actor owns `kind` `name`.
    pub(crate) fn check_owner(&self, kind: &str, name: &str, owner: &str) -> Result<()> {
        if self.owns(owner) {
            return Ok(());
        }
        Err(Error::PermissionDenied(format!(
            "must be owner of {kind} {name}"
        )))
    }

    /// Fails with `42501` ([`COPY_FILE_DENIED`]) unless the actor may read and write files of
    /// the server: `COPY table FROM 'file'`, `COPY ... TO 'file'` (PostgreSQL's rule:
    /// superusers only; a client's own data goes through `FROM STDIN` / `TO STDOUT`).
    pub(crate) fn check_server_files(&self) -> Result<()> {
        if self.superuser {
            return Ok(());
        }
        Err(Error::PermissionDenied(COPY_FILE_DENIED.into()))
    }

    /// Fails with `42501` unless the actor is a superuser; `what` names the action.
    pub(crate) fn check_superuser(&self, what: &str) -> Result<()> {
        if self.superuser {
            return Ok(());
        }
        Err(Error::PermissionDenied(format!(
            "permission denied: only a superuser may {what}"
        )))
    }
}
