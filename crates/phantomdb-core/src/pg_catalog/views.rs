//! The `pg_catalog` relations defined as queries, planned per statement like stored views:
//! `pg_database` (the session's database), `pg_roles` (PhantomDB's roles from
//! `phantomdb_roles()`, plus the connection's user when it is not one of them) and `pg_user`.

use datafusion::execution::context::SessionState;

use super::tables::Relation;

/// `pg_database.oid` of the one database, as SQL.
const DATABASE_OID: &str = "5";

/// The query of a relation defined as a view: `SELECT CAST(expr AS type) AS column, ...`,
/// one expression per column of `relation`.
pub(crate) fn view_sql(relation: &Relation, state: &SessionState) -> String {
    let roles_table = state.table_functions().contains_key("phantomdb_roles");
    let (exprs, from): (Vec<&str>, &str) = match relation.name {
        "pg_database" => (
            vec![
                DATABASE_OID,
                "current_database()",
                "10",
                "6",
                "'c'",
                "false",
                "true",
                "-1",
                "0",
                "1",
                "1663",
                "'C'",
                "'C'",
                "NULL",
                "NULL",
                "NULL",
            ],
            "",
        ),
        "pg_roles" => (
            vec![
                "current_user",
                "true",
                "true",
                "true",
                "true",
                "true",
                "false",
                "-1",
                "'********'",
                "NULL",
                "true",
                "NULL",
                "phantomdb_role_oid(current_user)",
            ],
            if roles_table {
                "WHERE current_user NOT IN (SELECT name FROM phantomdb_roles())"
            } else {
                ""
            },
        ),
        "pg_user" => (
            vec![
                "rolname",
                "oid",
                "rolcreatedb",
                "rolsuper",
                "rolreplication",
                "rolbypassrls",
                "'********'",
                "rolvaliduntil",
                "rolconfig",
            ],
            "FROM pg_catalog.pg_roles WHERE rolcanlogin",
        ),
        _ => (Vec::new(), ""),
    };
    let select = |exprs: &[&str], from: &str| {
        let columns: Vec<String> = relation
            .columns
            .iter()
            .zip(exprs)
            .map(|((name, ty), expr)| format!("CAST({expr} AS {}) AS {name}", ty.sql()))
            .collect();
        format!("SELECT {} {from}", columns.join(", "))
    };
    let sql = select(&exprs, from);
    if relation.name == "pg_roles" && roles_table {
        // The stored roles, and the connection's user when it is none of them (the
        // database owner before any role exists).
        let stored = [
            "name",
            "superuser",
            "true",
            "superuser",
            "superuser",
            "login",
            "false",
            "-1",
            "'********'",
            "NULL",
            "superuser",
            "NULL",
            "phantomdb_role_oid(name)",
        ];
        return format!(
            "{} UNION ALL {sql}",
            select(&stored, "FROM phantomdb_roles()")
        );
    }
    sql
}
