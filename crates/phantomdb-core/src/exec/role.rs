//! `CREATE ROLE`, `ALTER ROLE`, `DROP ROLE`: roles stored in the database file, managed by
//! superusers. Passwords are stored as SCRAM-SHA-256 verifiers ([`crate::auth`]).

use datafusion::sql::sqlparser::ast::{
    AlterRoleOperation, CreateRole, Expr as SqlExpr, Ident, ObjectName, Password, RoleOption,
    Value as SqlValue,
};

use super::WriteScope;
use crate::auth::verifier_for;
use crate::catalog::{Catalog, RoleDef};
use crate::error::{Error, Result, SqlState};
use crate::planner::Planner;
use crate::privileges::PUBLIC;
use crate::result::ResultSet;
use crate::sql::normalize_ident;

/// `CREATE ROLE name [, ...] [WITH] [LOGIN | NOLOGIN] [SUPERUSER | NOSUPERUSER]
/// [PASSWORD 'text' | PASSWORD NULL]`.
pub(crate) fn create_role(
    planner: &Planner,
    scope: &WriteScope,
    create: CreateRole,
) -> Result<ResultSet> {
    let catalog = scope.w.lock().catalog();
    planner.actor(&catalog).check_superuser("CREATE ROLE")?;
    refuse_unsupported(&create)?;
    let password = match &create.password {
        Some(p) => password_option(p)?,
        None => None,
    };
    for name in &create.names {
        let name = role_name(name)?;
        if catalog.role(&name).is_some() {
            if create.if_not_exists {
                continue;
            }
            return Err(Error::Catalog(
                SqlState::DuplicateObject,
                format!("role \"{name}\" already exists"),
            ));
        }
        scope.w.lock().put_role(RoleDef {
            name,
            login: create.login.unwrap_or(false),
            superuser: create.superuser.unwrap_or(false),
            password: password.clone(),
            member_of: Default::default(),
        })?;
    }
    Ok(ResultSet::empty())
}

/// `ALTER ROLE name [WITH] option ...` (LOGIN, SUPERUSER, PASSWORD and their negations).
/// A role that is not a superuser may change its own password and nothing else.
pub(crate) fn alter_role(
    planner: &Planner,
    scope: &WriteScope,
    name: Ident,
    operation: AlterRoleOperation,
) -> Result<ResultSet> {
    let name = normalize_ident(&name);
    let catalog = scope.w.lock().catalog();
    let actor = planner.actor(&catalog);
    let AlterRoleOperation::WithOptions { options } = operation else {
        return Err(Error::Unsupported(format!(
            "ALTER ROLE ... {operation} (only LOGIN, SUPERUSER and PASSWORD)"
        )));
    };
    let own_password =
        actor.name == name && options.iter().all(|o| matches!(o, RoleOption::Password(_)));
    if !own_password {
        actor.check_superuser("ALTER ROLE")?;
    }
    let mut role = (**existing_role(&catalog, &name)?).clone();
    for option in options {
        match option {
            RoleOption::Login(on) => role.login = on,
            RoleOption::SuperUser(on) => role.superuser = on,
            RoleOption::Password(p) => role.password = password_option(&p)?,
            RoleOption::Inherit(_) => {}
            other => return Err(Error::Unsupported(format!("role option {other}"))),
        }
    }
    scope.w.lock().put_role(role)?;
    Ok(ResultSet::empty())
}

/// `DROP ROLE [IF EXISTS] name [, ...]`. A role that owns tables or views cannot be dropped
/// (`2BP01`); its grants go with it.
pub(crate) fn drop_roles(
    planner: &Planner,
    scope: &WriteScope,
    names: Vec<ObjectName>,
    if_exists: bool,
) -> Result<ResultSet> {
    let catalog = scope.w.lock().catalog();
    let actor = planner.actor(&catalog);
    actor.check_superuser("DROP ROLE")?;
    for name in &names {
        let name = single_name(name)?;
        let catalog = scope.w.lock().catalog();
        if catalog.role(&name).is_none() {
            if if_exists {
                continue;
            }
            return Err(undefined_role(&name));
        }
        if name == actor.name {
            return Err(Error::Catalog(
                SqlState::ObjectInUse,
                "current user cannot be dropped".into(),
            ));
        }
        let owned: Vec<String> = catalog
            .entries()
            .filter(|(_, e)| e.owner() == name)
            .map(|(n, e)| format!("{} {n}", e.kind()))
            .collect();
        if !owned.is_empty() {
            return Err(Error::Catalog(
                SqlState::DependentObjectsStillExist,
                format!(
                    "role \"{name}\" cannot be dropped because it owns {}",
                    owned.join(", ")
                ),
            ));
        }
        let mut w = scope.w.lock();
        for member in catalog.roles().filter(|r| r.member_of.contains(&name)) {
            let mut changed = RoleDef::clone(member);
            changed.member_of.remove(&name);
            w.put_role(changed)?;
        }
        for (entry_name, entry) in catalog.entries() {
            if entry.grants().contains_key(&name) {
                let changed = entry.with_grants(|g| {
                    g.remove(&name);
                });
                w.put_entry(entry_name, changed)?;
            }
        }
        w.remove_role(&name)?;
    }
    Ok(ResultSet::empty())
}

/// The role `name`, or `42704`.
pub(super) fn existing_role<'a>(
    catalog: &'a Catalog,
    name: &str,
) -> Result<&'a std::sync::Arc<RoleDef>> {
    catalog.role(name).ok_or_else(|| undefined_role(name))
}

/// `role "name" does not exist` (`42704`).
pub(super) fn undefined_role(name: &str) -> Error {
    Error::Catalog(
        SqlState::UndefinedObject,
        format!("role \"{name}\" does not exist"),
    )
}

/// A role name: one identifier, normalized.
pub(super) fn single_name(name: &ObjectName) -> Result<String> {
    match name.0.as_slice() {
        [part] => part.as_ident().map(normalize_ident),
        _ => None,
    }
    .ok_or_else(|| Error::Sql(format!("bad role name {name}")))
}

/// A new role's name: one identifier, not a reserved one (`public`, `none`, `pg_...`).
fn role_name(name: &ObjectName) -> Result<String> {
    let name = single_name(name)?;
    if name == PUBLIC || name == "none" || name.starts_with("pg_") {
        return Err(Error::Catalog(
            SqlState::ReservedName,
            format!("role name \"{name}\" is reserved"),
        ));
    }
    Ok(name)
}

/// The stored form of `PASSWORD 'text'` (a verifier) or `PASSWORD NULL` (none).
fn password_option(password: &Password) -> Result<Option<String>> {
    match password {
        Password::NullPassword => Ok(None),
        Password::Password(SqlExpr::Value(v)) => match &v.value {
            SqlValue::SingleQuotedString(text) => Ok(Some(verifier_for(text)?.to_string())),
            SqlValue::Null => Ok(None),
            other => Err(Error::Sql(format!(
                "PASSWORD expects a quoted string, found {other}"
            ))),
        },
        Password::Password(other) => Err(Error::Sql(format!(
            "PASSWORD expects a quoted string, found {other}"
        ))),
    }
}

/// Refuses the CREATE ROLE options PhantomDB does not model (membership, CREATEDB, ...); the
/// ones that only deny something are accepted.
fn refuse_unsupported(c: &CreateRole) -> Result<()> {
    let granted = [
        ("CREATEDB", c.create_db),
        ("CREATEROLE", c.create_role),
        ("REPLICATION", c.replication),
        ("BYPASSRLS", c.bypassrls),
    ];
    if let Some((option, _)) = granted.iter().find(|(_, v)| *v == Some(true)) {
        return Err(Error::Unsupported(format!("role option {option}")));
    }
    let lists = [
        ("IN ROLE", c.in_role.is_empty()),
        ("IN GROUP", c.in_group.is_empty()),
        ("ROLE", c.role.is_empty()),
        ("ADMIN", c.admin.is_empty()),
        ("USER", c.user.is_empty()),
        ("CONNECTION LIMIT", c.connection_limit.is_none()),
        ("VALID UNTIL", c.valid_until.is_none()),
        ("AUTHORIZATION", c.authorization_owner.is_none()),
    ];
    match lists.iter().find(|(_, empty)| !empty) {
        Some((option, _)) => Err(Error::Unsupported(format!("role option {option}"))),
        None => Ok(()),
    }
}
