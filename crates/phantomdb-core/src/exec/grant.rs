//! `GRANT privileges ON [TABLE] t [, ...] TO grantee [, ...]` and `REVOKE ... FROM ...`:
//! SELECT, INSERT, UPDATE, DELETE (or ALL) on tables and views, to roles or `PUBLIC`, stored
//! with each table or view. Only the owner (or a superuser) grants on an object.

use std::collections::BTreeSet;

use datafusion::sql::sqlparser::ast::{
    Action, Grant, GrantObjects, Grantee, GranteeName, GranteesType, Privileges, Revoke,
};

use super::role::{existing_role, single_name};
use super::WriteScope;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::planner::{object_name, Planner, SCHEMA_NAME};
use crate::privileges::{Privilege, PUBLIC};
use crate::result::ResultSet;

/// `GRANT`.
pub(crate) fn grant(planner: &Planner, scope: &WriteScope, grant: Grant) -> Result<ResultSet> {
    if grant.with_grant_option {
        return Err(Error::Unsupported("WITH GRANT OPTION".into()));
    }
    if grant.as_grantor.is_some() || grant.granted_by.is_some() {
        return Err(Error::Unsupported("GRANTED BY".into()));
    }
    change(
        planner,
        scope,
        &grant.privileges,
        grant.objects.as_ref(),
        &grant.grantees,
        |held, privileges| held.extend(privileges.iter().copied()),
    )
}

/// `REVOKE` (`CASCADE`/`RESTRICT` change nothing: there are no grant options).
pub(crate) fn revoke(planner: &Planner, scope: &WriteScope, revoke: Revoke) -> Result<ResultSet> {
    if revoke.granted_by.is_some() {
        return Err(Error::Unsupported("GRANTED BY".into()));
    }
    change(
        planner,
        scope,
        &revoke.privileges,
        revoke.objects.as_ref(),
        &revoke.grantees,
        |held, privileges| held.retain(|p| !privileges.contains(p)),
    )
}

/// Applies `update` to the privileges each grantee holds on each object.
fn change(
    planner: &Planner,
    scope: &WriteScope,
    privileges: &Privileges,
    objects: Option<&GrantObjects>,
    grantees: &[Grantee],
    update: impl Fn(&mut BTreeSet<Privilege>, &[Privilege]),
) -> Result<ResultSet> {
    let catalog = scope.w.lock().catalog();
    let privileges = privilege_list(privileges)?;
    let objects = object_names(&catalog, objects)?;
    let grantees = grantees
        .iter()
        .map(|g| grantee_name(&catalog, g))
        .collect::<Result<Vec<_>>>()?;
    let actor = planner.actor(&catalog);
    let mut w = scope.w.lock();
    for name in objects {
        let entry = w
            .catalog()
            .get(&name)
            .cloned()
            .ok_or_else(|| Error::undefined_table(&name))?;
        actor.check_owner(entry.kind(), &name, entry.owner())?;
        let changed = entry.with_grants(|grants| {
            for grantee in &grantees {
                let held = grants.entry(grantee.clone()).or_default();
                update(held, &privileges);
                if held.is_empty() {
                    grants.remove(grantee);
                }
            }
        });
        w.put_entry(&name, changed)?;
    }
    Ok(ResultSet::empty())
}

/// The privileges named; `ALL [PRIVILEGES]` is all four.
fn privilege_list(privileges: &Privileges) -> Result<Vec<Privilege>> {
    let actions = match privileges {
        Privileges::All { .. } => return Ok(Privilege::ALL.to_vec()),
        Privileges::Actions(actions) => actions,
    };
    actions
        .iter()
        .map(|a| match a {
            Action::Select { columns: None } => Ok(Privilege::Select),
            Action::Insert { columns: None } => Ok(Privilege::Insert),
            Action::Update { columns: None } => Ok(Privilege::Update),
            Action::Delete => Ok(Privilege::Delete),
            Action::Select { .. } | Action::Insert { .. } | Action::Update { .. } => Err(
                Error::Unsupported("column privileges (grant on the whole table)".into()),
            ),
            other => Err(Error::Unsupported(format!(
                "privilege {other} (only SELECT, INSERT, UPDATE, DELETE, ALL)"
            ))),
        })
        .collect()
}

/// The tables and views named (`ON [TABLE] t, ...`, or `ON ALL TABLES IN SCHEMA public`:
/// every table and view); each must exist.
fn object_names(catalog: &Catalog, objects: Option<&GrantObjects>) -> Result<Vec<String>> {
    let names = match objects {
        Some(GrantObjects::Tables(names) | GrantObjects::Views(names)) => names,
        Some(GrantObjects::AllTablesInSchema { schemas }) => {
            for s in schemas {
                if single_name(s)? != SCHEMA_NAME {
                    return Err(Error::Unsupported(format!(
                        "schema {s} (only {SCHEMA_NAME})"
                    )));
                }
            }
            return Ok(catalog.names().cloned().collect());
        }
        Some(other) => {
            return Err(Error::Unsupported(format!(
                "privileges on {other} (only tables and views)"
            )))
        }
        None => {
            return Err(Error::Unsupported(
                "granting roles to roles (only privileges on tables and views)".into(),
            ))
        }
    };
    names
        .iter()
        .map(|n| {
            let name = object_name(n)?;
            match catalog.get(&name) {
                Some(_) => Ok(name),
                None => Err(Error::undefined_table(&name)),
            }
        })
        .collect()
}

/// A grantee: `PUBLIC`, or an existing role (`42704` otherwise).
fn grantee_name(catalog: &Catalog, grantee: &Grantee) -> Result<String> {
    match (&grantee.grantee_type, &grantee.name) {
        (GranteesType::Public, _) => Ok(PUBLIC.to_string()),
        (
            GranteesType::None | GranteesType::Role | GranteesType::User | GranteesType::Group,
            Some(GranteeName::ObjectName(name)),
        ) => {
            let name = single_name(name)?;
            if name == PUBLIC {
                return Ok(PUBLIC.to_string());
            }
            existing_role(catalog, &name)?;
            Ok(name)
        }
        _ => Err(Error::Unsupported(format!("grantee {grantee}"))),
    }
}
