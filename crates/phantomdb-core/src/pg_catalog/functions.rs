//! PostgreSQL's catalog and information functions, as psql and drivers call them:
//! `format_type`, `pg_get_expr`, `pg_table_is_visible`, `pg_get_userbyid`,
//! `pg_get_indexdef`, `pg_get_constraintdef`, `current_schema()`, `version()`, ...
//!
//! Each is a row-at-a-time function over [`ScalarValue`]s (catalog queries read few rows).
//! The ones that read the catalog (`to_regclass`, `pg_get_indexdef`, ...) take the snapshot
//! of the statement being optimized: their `simplify` replaces the call with one bound to
//! that snapshot, so a streamed result still sees it after planning ended.

use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::Array;
use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use super::oids;
use super::rows::{constraint_definition, index_definition, index_name};
use super::settings::{pg_setting, SERVER_VERSION};
use super::tables::RELATIONS;
use super::types::{format_type, type_oid_by_name};
use crate::catalog::{Catalog, CatalogEntry};
use crate::planner::schema::PhantomSchema;

/// A function's result type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Ret {
    Text,
    Bool,
    Oid,
    I32,
    I64,
    TextList,
    Timestamptz,
}

impl Ret {
    fn data_type(self) -> DataType {
        match self {
            Ret::Text => DataType::Utf8,
            Ret::Bool => DataType::Boolean,
            Ret::Oid => DataType::UInt32,
            Ret::I32 => DataType::Int32,
            Ret::I64 => DataType::Int64,
            Ret::TextList => DataType::new_list(DataType::Utf8, true),
            Ret::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        }
    }
}

/// The body of a function: one row's arguments to its value; the catalog is the statement's
/// snapshot (for the functions that read it).
type Body = fn(Option<&Catalog>, &[ScalarValue]) -> DfResult<ScalarValue>;

/// One function: name, argument counts, result type, body, and whether it reads the catalog.
#[derive(Debug)]
struct Def {
    name: &'static str,
    args: (usize, usize),
    ret: Ret,
    body: Body,
    catalog: bool,
}

const fn f(name: &'static str, args: (usize, usize), ret: Ret, body: Body) -> Def {
    Def {
        name,
        args,
        ret,
        body,
        catalog: false,
    }
}

const fn c(name: &'static str, args: (usize, usize), ret: Ret, body: Body) -> Def {
    Def {
        name,
        args,
        ret,
        body,
        catalog: true,
    }
}

/// Every function this module registers.
const FUNCTIONS: &[Def] = &[
    f("pg_table_is_visible", (1, 1), Ret::Bool, |_, a| {
        Ok(yes_unless_null(a))
    }),
    f("pg_type_is_visible", (1, 1), Ret::Bool, |_, a| {
        Ok(yes_unless_null(a))
    }),
    f("pg_function_is_visible", (1, 1), Ret::Bool, |_, a| {
        Ok(yes_unless_null(a))
    }),
    f("pg_collation_is_visible", (1, 1), Ret::Bool, |_, a| {
        Ok(yes_unless_null(a))
    }),
    f("has_table_privilege", (2, 3), Ret::Bool, |_, _| {
        Ok(boolean(true))
    }),
    f("has_schema_privilege", (2, 3), Ret::Bool, |_, _| {
        Ok(boolean(true))
    }),
    f("has_database_privilege", (2, 3), Ret::Bool, |_, _| {
        Ok(boolean(true))
    }),
    f("has_column_privilege", (3, 4), Ret::Bool, |_, _| {
        Ok(boolean(true))
    }),
    f("pg_has_role", (2, 3), Ret::Bool, |_, _| Ok(boolean(true))),
    f("pg_is_in_recovery", (0, 0), Ret::Bool, |_, _| {
        Ok(boolean(false))
    }),
    f("pg_relation_is_publishable", (1, 1), Ret::Bool, |_, _| {
        Ok(boolean(false))
    }),
    f("format_type", (2, 2), Ret::Text, |_, a| {
        Ok(text(oid(&a[0]).map(|o| {
            format_type(o, int(&a[1]).and_then(|t| i32::try_from(t).ok()))
        })))
    }),
    f("pg_get_expr", (2, 3), Ret::Text, |_, a| {
        Ok(text(string(&a[0])))
    }),
    f("pg_encoding_to_char", (1, 1), Ret::Text, |_, a| {
        Ok(text(int(&a[0]).map(|e| match e {
            0 => "SQL_ASCII".to_string(),
            6 => "UTF8".to_string(),
            _ => String::new(),
        })))
    }),
    f("obj_description", (1, 2), Ret::Text, |_, _| Ok(text(None))),
    f("col_description", (2, 2), Ret::Text, |_, _| Ok(text(None))),
    f("shobj_description", (2, 2), Ret::Text, |_, _| {
        Ok(text(None))
    }),
    f("pg_get_serial_sequence", (2, 2), Ret::Text, |_, _| {
        Ok(text(None))
    }),
    f(
        "pg_get_statisticsobjdef_columns",
        (1, 1),
        Ret::Text,
        |_, _| Ok(text(None)),
    ),
    f("pg_get_function_result", (1, 1), Ret::Text, |_, _| {
        Ok(text(None))
    }),
    f("pg_get_function_arguments", (1, 1), Ret::Text, |_, _| {
        Ok(text(None))
    }),
    f(
        "pg_get_function_identity_arguments",
        (1, 1),
        Ret::Text,
        |_, _| Ok(text(None)),
    ),
    f("pg_table_size", (1, 1), Ret::I64, |_, _| {
        Ok(ScalarValue::Int64(None))
    }),
    f("pg_relation_size", (1, 2), Ret::I64, |_, _| {
        Ok(ScalarValue::Int64(None))
    }),
    f("pg_total_relation_size", (1, 1), Ret::I64, |_, _| {
        Ok(ScalarValue::Int64(None))
    }),
    f("pg_indexes_size", (1, 1), Ret::I64, |_, _| {
        Ok(ScalarValue::Int64(None))
    }),
    f("pg_size_pretty", (1, 1), Ret::Text, |_, a| {
        Ok(text(int(&a[0]).map(size_pretty)))
    }),
    f("current_schema", (0, 0), Ret::Text, |_, _| {
        Ok(text(Some("public".into())))
    }),
    f("current_schemas", (1, 1), Ret::TextList, |_, a| {
        let mut names = vec!["public"];
        if bool_arg(&a[0]) == Some(true) {
            names.insert(0, "pg_catalog");
        }
        let values: Vec<ScalarValue> = names.into_iter().map(ScalarValue::from).collect();
        Ok(ScalarValue::List(ScalarValue::new_list_nullable(
            &values,
            &DataType::Utf8,
        )))
    }),
    f("version", (0, 0), Ret::Text, |_, _| {
        Ok(text(Some(version())))
    }),
    f("pg_backend_pid", (0, 0), Ret::I32, |_, _| {
        Ok(ScalarValue::Int32(i32::try_from(std::process::id()).ok()))
    }),
    f(
        "pg_postmaster_start_time",
        (0, 0),
        Ret::Timestamptz,
        |_, _| {
            let micros = started()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            Ok(ScalarValue::TimestampMicrosecond(
                Some(micros),
                Some("+00:00".into()),
            ))
        },
    ),
    f("to_regtype", (1, 1), Ret::Oid, |_, a| {
        Ok(ScalarValue::UInt32(
            string(&a[0]).and_then(|n| type_oid_by_name(&n)),
        ))
    }),
    f("array_upper", (2, 2), Ret::I32, |_, a| {
        Ok(ScalarValue::Int32(array_upper(a)))
    }),
    f("array_lower", (2, 2), Ret::I32, |_, a| {
        Ok(ScalarValue::Int32(array_upper(a).map(|_| 1)))
    }),
    f("json_build_object", (0, 100), Ret::Text, |_, a| {
        Ok(text(Some(json_object(a))))
    }),
    c("pg_get_userbyid", (1, 1), Ret::Text, |cat, a| {
        Ok(text(oid(&a[0]).map(|o| {
            role_name(cat, o).unwrap_or_else(|| format!("unknown (OID={o})"))
        })))
    }),
    f("phantomdb_role_oid", (1, 1), Ret::Oid, |_, a| {
        Ok(ScalarValue::UInt32(string(&a[0]).map(|n| oids::role(&n))))
    }),
    f("phantomdb_nspname", (1, 1), Ret::Text, |_, a| {
        Ok(text(oid(&a[0]).map(|o| match o {
            oids::PG_CATALOG_NAMESPACE => "pg_catalog".to_string(),
            oids::PUBLIC_NAMESPACE => "public".to_string(),
            oids::INFORMATION_SCHEMA_NAMESPACE => "information_schema".to_string(),
            oids::PG_TOAST_NAMESPACE => "pg_toast".to_string(),
            other => other.to_string(),
        })))
    }),
    f("phantomdb_pg_setting", (1, 1), Ret::Text, |_, a| {
        let Some(name) = string(&a[0]) else {
            return Ok(text(None));
        };
        match pg_setting(&name) {
            Some(s) => Ok(text(Some(s.value.to_string()))),
            None => Err(crate::error::Error::Catalog(
                crate::error::SqlState::UndefinedObject,
                format!("unrecognized configuration parameter \"{name}\""),
            )
            .into()),
        }
    }),
    c("to_regclass", (1, 1), Ret::Oid, |cat, a| {
        Ok(ScalarValue::UInt32(
            string(&a[0]).and_then(|n| relation_oid(cat, &n)),
        ))
    }),
    c("phantomdb_regclass_name", (1, 1), Ret::Text, |cat, a| {
        Ok(text(oid(&a[0]).map(|o| {
            relation_name(cat, o).unwrap_or_else(|| o.to_string())
        })))
    }),
    c("pg_get_indexdef", (1, 3), Ret::Text, |cat, a| {
        let column = a.get(1).and_then(int).unwrap_or(0);
        Ok(text(oid(&a[0]).and_then(|o| index_def(cat?, o, column))))
    }),
    c("pg_get_constraintdef", (1, 2), Ret::Text, |cat, a| {
        Ok(text(oid(&a[0]).and_then(|o| {
            let def = cat?
                .tables()
                .find(|t| oids::primary_key_constraint(t) == o)?;
            Some(constraint_definition(def))
        })))
    }),
    c("pg_get_viewdef", (1, 2), Ret::Text, |cat, a| {
        let cat =
            cat.ok_or_else(|| DataFusionError::Plan("pg_get_viewdef() needs a statement".into()))?;
        let view = match oid(&a[0]) {
            Some(o) => cat.views().find(|v| oids::view(&v.name) == o).cloned(),
            None => string(&a[0]).and_then(|n| cat.views().find(|v| v.name == n).cloned()),
        };
        Ok(text(view.map(|v| v.query.clone())))
    }),
];

/// When the server started (first use of the catalog functions in this process).
fn started() -> SystemTime {
    static STARTED: OnceLock<SystemTime> = OnceLock::new();
    *STARTED.get_or_init(SystemTime::now)
}

/// `version()`: PostgreSQL's form, so drivers that parse it find a 15.x server.
fn version() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (PhantomDB {}) on {}-{}, compiled by rustc",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

fn text(v: Option<String>) -> ScalarValue {
    ScalarValue::Utf8(v)
}

fn boolean(v: bool) -> ScalarValue {
    ScalarValue::Boolean(Some(v))
}

fn yes_unless_null(a: &[ScalarValue]) -> ScalarValue {
    ScalarValue::Boolean((!a[0].is_null()).then_some(true))
}

/// A text argument (numbers as their digits).
fn string(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => s.clone(),
        v if v.is_null() => None,
        v => Some(v.to_string()),
    }
}

/// An integer argument (text holding digits counts).
fn int(v: &ScalarValue) -> Option<i64> {
    if v.is_null() {
        return None;
    }
    match v.cast_to(&DataType::Int64) {
        Ok(ScalarValue::Int64(n)) => n,
        _ => string(v).and_then(|s| s.trim().parse().ok()),
    }
}

/// An OID argument.
fn oid(v: &ScalarValue) -> Option<u32> {
    int(v).and_then(|n| u32::try_from(n).ok())
}

fn bool_arg(v: &ScalarValue) -> Option<bool> {
    match v {
        ScalarValue::Boolean(b) => *b,
        v => string(v).map(|s| matches!(s.as_str(), "t" | "true" | "on" | "1")),
    }
}

/// `array_upper(array, 1)`: the length of a non-empty array (PostgreSQL arrays start at 1).
fn array_upper(a: &[ScalarValue]) -> Option<i32> {
    if int(&a[1]) != Some(1) {
        return None;
    }
    let len = match &a[0] {
        ScalarValue::List(l) if l.is_valid(0) => l.value_length(0),
        ScalarValue::LargeList(l) if l.is_valid(0) => i32::try_from(l.value_length(0)).ok()?,
        _ => return None,
    };
    (len > 0).then_some(len)
}

/// `pg_size_pretty(bytes)`.
fn size_pretty(bytes: i64) -> String {
    let units = ["bytes", "kB", "MB", "GB", "TB"];
    let mut value = bytes;
    let mut unit = 0;
    while value.abs() >= 10 * 1024 && unit + 1 < units.len() {
        value = (value + 512) / 1024;
        unit += 1;
    }
    format!("{value} {}", units[unit])
}

/// `json_build_object(k1, v1, ...)` as JSON text.
fn json_object(a: &[ScalarValue]) -> String {
    let mut map = serde_json::Map::new();
    for pair in a.chunks(2) {
        let key = string(&pair[0]).unwrap_or_default();
        let value = match pair.get(1) {
            None => serde_json::Value::Null,
            Some(v) if v.is_null() => serde_json::Value::Null,
            Some(ScalarValue::Boolean(Some(b))) => serde_json::Value::Bool(*b),
            Some(v) => match int(v) {
                Some(n) if v.data_type().is_integer() => serde_json::Value::from(n),
                _ => serde_json::Value::from(string(v).unwrap_or_default()),
            },
        };
        map.insert(key, value);
    }
    serde_json::Value::Object(map).to_string()
}

/// The role with this OID: the database owner, a stored role, or an owner of a table or
/// view (OIDs of roles are hashes of their names, so the names are the candidates).
fn role_name(catalog: Option<&Catalog>, oid: u32) -> Option<String> {
    let owner = crate::privileges::grants::DEFAULT_USER;
    if oids::role(owner) == oid {
        return Some(owner.to_string());
    }
    let catalog = catalog?;
    let roles = catalog.roles().map(|r| r.name.as_str());
    let owners = catalog
        .tables()
        .map(|t| t.owner.as_str())
        .chain(catalog.views().map(|v| v.owner.as_str()));
    roles
        .chain(owners)
        .find(|name| !name.is_empty() && oids::role(name) == oid)
        .map(str::to_string)
}

/// A relation name (`t`, `public.t`, `pg_catalog.pg_class`, `"T"`) to its OID.
fn relation_oid(catalog: Option<&Catalog>, name: &str) -> Option<u32> {
    if let Ok(n) = name.trim().parse::<u32>() {
        return Some(n);
    }
    let (schema, rel) = match name.rsplit_once('.') {
        Some((s, r)) => (Some(unquote(s)), unquote(r)),
        None => (None, unquote(name)),
    };
    if schema.as_deref() != Some("public") {
        if let Some(r) = RELATIONS.iter().find(|r| r.name == rel) {
            return Some(r.oid);
        }
    }
    if schema.as_deref().is_some_and(|s| s != "public") {
        return None;
    }
    let catalog = catalog?;
    match catalog.get(&rel) {
        Some(CatalogEntry::Table(t)) => Some(oids::table(t)),
        Some(CatalogEntry::View(v)) => Some(oids::view(&v.name)),
        None => catalog
            .tables()
            .find(|t| !t.primary_key.is_empty() && index_name(t) == rel)
            .map(|t| oids::primary_key_index(t)),
    }
}

/// An identifier as written: `"Name"` keeps its case, `Name` is lower-cased.
fn unquote(ident: &str) -> String {
    let ident = ident.trim();
    match ident.strip_prefix('"').and_then(|i| i.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => ident.to_ascii_lowercase(),
    }
}

/// A relation OID to its name (as `oid::regclass` prints it).
fn relation_name(catalog: Option<&Catalog>, oid: u32) -> Option<String> {
    if let Some(r) = RELATIONS.iter().find(|r| r.oid == oid) {
        return Some(r.name.to_string());
    }
    let catalog = catalog?;
    for t in catalog.tables() {
        if oids::table(t) == oid {
            return Some(super::rows::quote_ident(&t.name));
        }
        if !t.primary_key.is_empty() && oids::primary_key_index(t) == oid {
            return Some(super::rows::quote_ident(&index_name(t)));
        }
    }
    catalog
        .views()
        .find(|v| oids::view(&v.name) == oid)
        .map(|v| super::rows::quote_ident(&v.name))
}

/// `pg_get_indexdef(oid, column)`: the whole definition (column 0) or one key column.
fn index_def(catalog: &Catalog, oid: u32, column: i64) -> Option<String> {
    let def = catalog
        .tables()
        .find(|t| !t.primary_key.is_empty() && oids::primary_key_index(t) == oid)?;
    if column <= 0 {
        return Some(index_definition(def));
    }
    let names = def.primary_key_names();
    let name = names.get(usize::try_from(column - 1).ok()?)?;
    Some(super::rows::quote_ident(name))
}

/// A registered function: its definition, and for catalog readers the connection's schema
/// provider and, once bound, the statement's snapshot.
#[derive(Debug)]
struct PgFunction {
    def: &'static Def,
    signature: Signature,
    schema: PhantomSchema,
    snapshot: Option<Arc<Catalog>>,
}

impl PartialEq for PgFunction {
    fn eq(&self, other: &Self) -> bool {
        self.def.name == other.def.name
            && match (&self.snapshot, &other.snapshot) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
    }
}
impl Eq for PgFunction {}
impl std::hash::Hash for PgFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.def.name.hash(state);
    }
}

impl PgFunction {
    fn new(def: &'static Def, schema: PhantomSchema) -> Self {
        let (min, max) = def.args;
        let forms = (min..=max)
            .map(|n| {
                if n == 0 {
                    TypeSignature::Nullary
                } else {
                    TypeSignature::Any(n)
                }
            })
            .collect();
        Self {
            def,
            signature: Signature::one_of(forms, Volatility::Stable),
            schema,
            snapshot: None,
        }
    }
}

impl ScalarUDFImpl for PgFunction {
    fn name(&self) -> &str {
        self.def.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(self.def.ret.data_type())
    }

    fn simplify(&self, args: Vec<Expr>, _: &SimplifyContext) -> DfResult<ExprSimplifyResult> {
        if !self.def.catalog || self.snapshot.is_some() {
            return Ok(ExprSimplifyResult::Original(args));
        }
        let Some(ctx) = self.schema.context() else {
            return Ok(ExprSimplifyResult::Original(args));
        };
        let bound = PgFunction {
            def: self.def,
            signature: self.signature.clone(),
            schema: self.schema.clone(),
            snapshot: Some(ctx.txns.view.catalog()),
        };
        let udf = Arc::new(ScalarUDF::new_from_impl(bound));
        Ok(ExprSimplifyResult::Simplified(Expr::ScalarFunction(
            ScalarFunction::new_udf(udf, args),
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let catalog = if self.def.catalog {
            self.snapshot
                .clone()
                .or_else(|| self.schema.context().map(|c| c.txns.view.catalog()))
        } else {
            None
        };
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if scalar { 1 } else { args.number_rows };
        let mut out = Vec::with_capacity(rows);
        for i in 0..rows {
            let row = args
                .args
                .iter()
                .map(|a| match a {
                    ColumnarValue::Scalar(s) => Ok(s.clone()),
                    ColumnarValue::Array(array) => ScalarValue::try_from_array(array, i),
                })
                .collect::<DfResult<Vec<_>>>()?;
            out.push((self.def.body)(catalog.as_deref(), &row)?);
        }
        if scalar {
            if let Some(v) = out.pop() {
                return Ok(ColumnarValue::Scalar(v));
            }
        }
        if out.is_empty() {
            return Ok(ColumnarValue::Array(arrow::array::new_empty_array(
                &self.def.ret.data_type(),
            )));
        }
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(out)?))
    }
}

/// Registers every function on a connection's context (replacing DataFusion's `version()`).
pub(crate) fn register(ctx: &SessionContext, schema: &PhantomSchema) {
    started();
    for def in FUNCTIONS {
        ctx.register_udf(ScalarUDF::new_from_impl(PgFunction::new(
            def,
            schema.clone(),
        )));
    }
}
