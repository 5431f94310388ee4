//! The catalog as tables, as the current statement's snapshot sees it:
//! * `phantomdb_tables()`: every table with its storage engine, options and whether the engine
//!   is available;
//! * `phantomdb_columns()`: every column with its SQL type, NOT NULL, DEFAULT and place in the
//!   primary key;
//! * `phantomdb_views()`: every view with its query;
//! * `phantomdb_roles()`: the roles (all of them for superusers, else the user's own).
//!
//! They read only the catalog, so they work for tables whose engine is not loaded.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;

use arrow::datatypes::DataType;

use crate::catalog::Catalog;
use crate::planner::schema::{PhantomSchema, StatementContext};

/// The `phantomdb_tables()` table function.
#[derive(Debug)]
pub(crate) struct TablesTable(pub(crate) PhantomSchema);

impl datafusion::catalog::TableFunctionImpl for TablesTable {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return datafusion::common::plan_err!("phantomdb_tables() takes no arguments");
        }
        let ctx = statement(&self.0, "phantomdb_tables")?;
        let catalog = ctx.txns.view.catalog();
        let rows = catalog
            .tables()
            .map(|t| {
                let options = t
                    .options
                    .iter()
                    .filter(|(k, _)| !is_secret(k))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                vec![
                    t.name.clone(),
                    t.engine.clone(),
                    options,
                    table_status(t, &ctx.registry),
                ]
            })
            .collect();
        crate::plugins::tables::table(&["name", "engine", "options", "status"], rows)
    }
}

/// The `phantomdb_check()` table function: one row per problem found in the latest commit
/// of the database (no rows: sound). Reads everything, on a read transaction of its own.
#[derive(Debug)]
pub(crate) struct CheckTable(pub(crate) PhantomSchema);

impl datafusion::catalog::TableFunctionImpl for CheckTable {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return datafusion::common::plan_err!("phantomdb_check() takes no arguments");
        }
        let ctx = statement(&self.0, "phantomdb_check")?;
        let rows = ctx
            .txns
            .view
            .check()
            .problems
            .into_iter()
            .map(|p| vec![p.object, p.detail])
            .collect();
        crate::plugins::tables::table(&["object", "problem"], rows)
    }
}

/// Options never shown back (credentials).
pub(crate) fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("secret") || k.contains("password") || k.contains("token")
}

/// The statement a system table function is called in.
fn statement(schema: &PhantomSchema, name: &str) -> DfResult<Arc<StatementContext>> {
    schema.context().ok_or_else(|| {
        datafusion::error::DataFusionError::Plan(format!("{name}() needs a statement"))
    })
}

/// A system table function over the statement's catalog.
fn catalog_table(
    schema: &PhantomSchema,
    name: &str,
    args: &[Expr],
    columns: &[&str],
    rows: impl Fn(&Catalog) -> Vec<Vec<String>>,
) -> DfResult<Arc<dyn TableProvider>> {
    if !args.is_empty() {
        return datafusion::common::plan_err!("{name}() takes no arguments");
    }
    let ctx = statement(schema, name)?;
    crate::plugins::tables::table(columns, rows(&ctx.txns.view.catalog()))
}

/// The `phantomdb_columns()` table function.
#[derive(Debug)]
pub(crate) struct ColumnsTable(pub(crate) PhantomSchema);

impl datafusion::catalog::TableFunctionImpl for ColumnsTable {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        let columns = [
            "table_name",
            "position",
            "name",
            "type",
            "not_null",
            "default",
            "key_position",
        ];
        catalog_table(&self.0, "phantomdb_columns", args, &columns, |catalog| {
            let mut rows = Vec::new();
            for t in catalog.tables() {
                for (i, f) in t.schema.fields().iter().enumerate() {
                    let key = t.primary_key.iter().position(|&k| k == i);
                    rows.push(vec![
                        t.name.clone(),
                        (i + 1).to_string(),
                        f.name().clone(),
                        column_type_name(f),
                        (!f.is_nullable()).to_string(),
                        t.defaults.get(f.name()).cloned().unwrap_or_default(),
                        key.map(|k| (k + 1).to_string()).unwrap_or_default(),
                    ]);
                }
            }
            rows
        })
    }
}

/// The `phantomdb_views()` table function.
#[derive(Debug)]
pub(crate) struct ViewsTable(pub(crate) PhantomSchema);

impl datafusion::catalog::TableFunctionImpl for ViewsTable {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        catalog_table(
            &self.0,
            "phantomdb_views",
            args,
            &["name", "query"],
            |catalog| {
                catalog
                    .views()
                    .map(|v| vec![v.name.clone(), v.query.clone()])
                    .collect()
            },
        )
    }
}

/// The `phantomdb_roles()` table function: name, login, superuser, has_password (never the
/// verifier). Superusers see every role, other users only their own.
#[derive(Debug)]
pub(crate) struct RolesTable(pub(crate) PhantomSchema, pub(crate) String);

impl datafusion::catalog::TableFunctionImpl for RolesTable {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        use arrow::array::{BooleanArray, RecordBatch, StringArray};
        use arrow::datatypes::{Field, Schema};
        if !args.is_empty() {
            return datafusion::common::plan_err!("phantomdb_roles() takes no arguments");
        }
        let ctx = statement(&self.0, "phantomdb_roles")?;
        let catalog = ctx.txns.view.catalog();
        let actor = crate::privileges::Actor::resolve(&self.1, &catalog);
        let roles: Vec<_> = catalog
            .roles()
            .filter(|r| actor.superuser || r.name == actor.name)
            .collect();
        let flag = |f: fn(&crate::catalog::RoleDef) -> bool| {
            Arc::new(BooleanArray::from(
                roles.iter().map(|r| f(r)).collect::<Vec<_>>(),
            ))
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("login", DataType::Boolean, false),
            Field::new("superuser", DataType::Boolean, false),
            Field::new("has_password", DataType::Boolean, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    roles.iter().map(|r| r.name.as_str()),
                )),
                flag(|r| r.login),
                flag(|r| r.superuser),
                flag(|r| r.password.is_some()),
            ],
        )?;
        Ok(Arc::new(datafusion::datasource::MemTable::try_new(
            schema,
            vec![vec![batch]],
        )?))
    }
}

/// Whether a table can be used: `available`, `engine not loaded`, or the first column type
/// whose plugin is not loaded (`type uuid from plugin uuid not loaded`).
fn table_status(t: &crate::catalog::TableDef, registry: &crate::plugins::Registry) -> String {
    if registry.engine(&t.engine).is_none() {
        return "engine not loaded".into();
    }
    let missing = t.schema.fields().iter().find_map(|f| {
        let (name, plugin) = crate::types::logical_type(f)?;
        let loaded = registry
            .data_types()
            .any(|d| d.name == name && (plugin.is_empty() || d.plugin == plugin));
        (!loaded).then(|| format!("type {name} from plugin {plugin} not loaded"))
    });
    missing.unwrap_or_else(|| "available".into())
}

/// A column's type as SQL spells it: a custom type's name, else [`sql_type_name`].
pub(crate) fn column_type_name(f: &arrow::datatypes::Field) -> String {
    match crate::types::logical_type(f) {
        Some((name, _)) => name.to_string(),
        None => sql_type_name(f.data_type()),
    }
}

/// A column type as SQL spells it (`BIGINT`, `TEXT`, ...), Arrow's name when SQL has none.
pub(crate) fn sql_type_name(ty: &DataType) -> String {
    use DataType as T;
    match ty {
        T::Boolean => "BOOLEAN".into(),
        T::Int8 => "TINYINT".into(),
        T::Int16 => "SMALLINT".into(),
        T::Int32 => "INT".into(),
        T::Int64 => "BIGINT".into(),
        T::UInt8 | T::UInt16 | T::UInt32 | T::UInt64 => format!("{ty} /* unsigned */"),
        T::Float32 => "REAL".into(),
        T::Float64 => "DOUBLE".into(),
        T::Utf8 | T::Utf8View | T::LargeUtf8 => "TEXT".into(),
        T::Binary | T::BinaryView | T::LargeBinary => "BYTEA".into(),
        T::Date32 | T::Date64 => "DATE".into(),
        T::Timestamp(_, None) => "TIMESTAMP".into(),
        T::Timestamp(_, Some(_)) => "TIMESTAMPTZ".into(),
        T::Decimal128(p, s) | T::Decimal256(p, s) => format!("DECIMAL({p}, {s})"),
        other => other.to_string(),
    }
}

/// The `phantomdb_indexes()` table function: every index (including those behind UNIQUE
/// constraints) with its table, columns, whether it is unique, whether a constraint made
/// it, whether the engine stores it, and the SQL that recreates it.
#[derive(Debug)]
pub(crate) struct IndexesTable(pub(crate) PhantomSchema);

impl datafusion::catalog::TableFunctionImpl for IndexesTable {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        let columns = [
            "name",
            "table_name",
            "columns",
            "unique",
            "constraint",
            "stored",
            "definition",
        ];
        catalog_table(&self.0, "phantomdb_indexes", args, &columns, |catalog| {
            let mut rows = Vec::new();
            for t in catalog.tables() {
                for i in &t.indexes {
                    let cols: Vec<&str> = i
                        .columns
                        .iter()
                        .map(|&c| t.schema.field(c).name().as_str())
                        .collect();
                    let definition = if i.constraint {
                        format!(
                            "ALTER TABLE {} ADD CONSTRAINT {} UNIQUE ({})",
                            t.name,
                            i.name,
                            cols.join(", ")
                        )
                    } else {
                        format!(
                            "CREATE {}INDEX {} ON {} ({})",
                            if i.unique { "UNIQUE " } else { "" },
                            i.name,
                            t.name,
                            cols.join(", ")
                        )
                    };
                    rows.push(vec![
                        i.name.clone(),
                        t.name.clone(),
                        cols.join(", "),
                        i.unique.to_string(),
                        i.constraint.to_string(),
                        i.stored.to_string(),
                        definition,
                    ]);
                }
            }
            rows
        })
    }
}

/// The `phantomdb_constraints()` table function: the UNIQUE and CHECK constraints and
/// identity columns of every table, each with the clause that declares it in `CREATE TABLE`.
#[derive(Debug)]
pub(crate) struct ConstraintsTable(pub(crate) PhantomSchema);

impl datafusion::catalog::TableFunctionImpl for ConstraintsTable {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        let columns = ["table_name", "name", "kind", "column_name", "definition"];
        catalog_table(
            &self.0,
            "phantomdb_constraints",
            args,
            &columns,
            |catalog| {
                let mut rows = Vec::new();
                for t in catalog.tables() {
                    let name = |c: usize| t.schema.field(c).name().clone();
                    for (&c, identity) in &t.identity {
                        let how = if identity.always {
                            "ALWAYS"
                        } else {
                            "BY DEFAULT"
                        };
                        rows.push(vec![
                            t.name.clone(),
                            identity.sequence.clone(),
                            "identity".into(),
                            name(c),
                            format!("GENERATED {how} AS IDENTITY"),
                        ]);
                    }
                    for i in t.indexes.iter().filter(|i| i.constraint) {
                        let cols: Vec<String> = i.columns.iter().map(|&c| name(c)).collect();
                        rows.push(vec![
                            t.name.clone(),
                            i.name.clone(),
                            "unique".into(),
                            String::new(),
                            format!("CONSTRAINT {} UNIQUE ({})", i.name, cols.join(", ")),
                        ]);
                    }
                    for c in &t.checks {
                        rows.push(vec![
                            t.name.clone(),
                            c.name.clone(),
                            "check".into(),
                            String::new(),
                            format!("CONSTRAINT {} CHECK ({})", c.name, c.expr),
                        ]);
                    }
                }
                rows
            },
        )
    }
}
