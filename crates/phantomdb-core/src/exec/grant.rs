//! `GRANT privileges ON [TABLE] t [, ...] TO grantee [, ...]` and `REVOKE ... FROM ...`:
//! SELECT, INSERT, UPDATE, DELETE (or ALL) on tables and views, to roles or `PUBLIC`, stored
//! with each table or view. Only the owner (or a superuser) grants on an object.
//!
//! `GRANT role [, ...] TO role [, ...]` / `REVOKE role [, ...] FROM role [, ...]` make roles
//! members of other roles (superusers only); a member holds its groups' privileges.

use std::collections::BTreeSet;

use datafusion::sql::sqlparser::ast::{
    Action, Grant, GrantObjects, Grantee, GranteeName, GranteesType, Privileges, Revoke,
};

use super::role::{existing_role, single_name};
use super::WriteScope;
use crate::catalog::{Catalog, RoleDef};
use crate::error::{Error, Result, SqlState};
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
    if let Some(groups) = role_list(&grant.privileges, grant.objects.as_ref())? {
        return membership(planner, scope, &groups, &grant.grantees, true);
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
    if let Some(groups) = role_list(&revoke.privileges, revoke.objects.as_ref())? {
        return membership(planner, scope, &groups, &revoke.grantees, false);
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

/// The roles of `GRANT role, ... TO` / `REVOKE role, ... FROM` (no `ON`; the parser reads them
/// as `ROLE name` actions); `None` for privileges on objects.
fn role_list(
    privileges: &Privileges,
    objects: Option<&GrantObjects>,
) -> Result<Option<Vec<String>>> {
    let Privileges::Actions(actions) = privileges else {
        return Ok(None);
    };
    let roles = actions.iter().map(|a| match a {
        Action::Role { role } => Some(role),
        _ => None,
    });
    match (objects, roles.collect::<Option<Vec<_>>>()) {
        (None, Some(roles)) => roles
            .into_iter()
            .map(single_name)
            .collect::<Result<Vec<_>>>()
            .map(Some),
        _ => Ok(None),
    }
}

/// Makes each grantee a member of each group (`add`), or no longer one; superusers only.
/// A membership that would make a role a member of itself is refused (`0LP01`).
fn membership(
    planner: &Planner,
    scope: &WriteScope,
    groups: &[String],
    grantees: &[Grantee],
    add: bool,
) -> Result<ResultSet> {
    let catalog = scope.w.lock().catalog();
    let what = if add { "GRANT a role" } else { "REVOKE a role" };
    planner.actor(&catalog).check_superuser(what)?;
    for group in groups {
        existing_role(&catalog, group)?;
    }
    let members = grantees
        .iter()
        .map(|g| match grantee_name(&catalog, g)? {
            name if name == PUBLIC => Err(Error::Unsupported(
                "granting a role to PUBLIC; grant it to roles".into(),
            )),
            name => Ok(name),
        })
        .collect::<Result<Vec<_>>>()?;
    for member in &members {
        for group in groups {
            let catalog = scope.w.lock().catalog();
            let mut role = RoleDef::clone(existing_role(&catalog, member)?);
            if add && catalog.roles_of(group).contains(member) {
                return Err(Error::Catalog(
                    SqlState::InvalidGrantOperation,
                    format!("role \"{member}\" is a member of role \"{group}\""),
                ));
            }
            let changed = if add {
                role.member_of.insert(group.clone())
            } else {
                role.member_of.remove(group)
            };
            if changed {
                scope.w.lock().put_role(role)?;
            }
        }
    }
    Ok(ResultSet::empty())
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
