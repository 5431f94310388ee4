//! Custom data types (issue #14): column types a plugin adds through `phantomdb.types/1`.
//!
//! A type is a registry component ([`TypeInfo`]) holding the plugin's implementation behind
//! the SDK's [`CustomType`] trait. Values are stored as the type's storage Arrow type; which
//! columns have a custom type is recorded as field metadata ([`TYPE_NAME_KEY`],
//! [`TYPE_PLUGIN_KEY`]), kept in the catalog with the table's schema and carried by DataFusion
//! from the scans through column references.
//!
//! * `planner`: the DataFusion [`TypePlanner`](datafusion::logical_expr::planner::TypePlanner)
//!   mapping a type's SQL names to its storage field with that metadata;
//! * `udf`: the parse and format functions casts and results are rewritten into;
//! * `rewrite`: the plan rewrite giving typed values their semantics (text casts, comparisons
//!   with text, INSERT's assignment casts, the missing-plugin check) and formatting results;
//! * `assign`: what INSERT and UPDATE assign to typed columns, written as casts to their type;
//! * `calls`: plugin functions whose signatures name custom types (arguments parsed and
//!   checked, results typed);
//! * `typing`: what type an expression has (shared by `rewrite` and `calls`).
//!
//! * `literals`: text literals beside typed values (`coalesce(v, '1.0.0')`), typed;
//! * `order`: sort-key ordered types (comparisons, `ORDER BY`, `min`/`max` by the key).

pub(crate) mod assign;
mod calls;
pub(crate) mod literals;
pub(crate) mod order;
pub(crate) mod planner;
pub(crate) mod rewrite;
mod typing;
pub(crate) mod udf;

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, RwLock, Weak};

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::{DataType, Field};
pub use phantomdb_plugin_sdk::data_type::{
    Cast, CastContext, CastDirection, CustomType, TypeOrdering,
};

use crate::error::{Error, Result, SqlState};

/// Field metadata key naming a column's custom type.
pub const TYPE_NAME_KEY: &str = "phantomdb.type";
/// Field metadata key naming the plugin that provides a column's custom type.
pub const TYPE_PLUGIN_KEY: &str = "phantomdb.type_plugin";

/// One registered custom type.
#[derive(Clone)]
pub struct TypeInfo {
    /// SQL name.
    pub name: String,
    /// Further SQL names.
    pub aliases: Vec<String>,
    /// Name of the plugin that provides it.
    pub plugin: String,
    /// The Arrow type values are stored as.
    pub storage: DataType,
    /// How values are ordered.
    pub ordering: TypeOrdering,
    /// The casts it provides besides text.
    pub casts: Vec<Cast>,
    /// The implementation.
    pub implementation: Arc<dyn CustomType>,
}

impl std::fmt::Debug for TypeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypeInfo")
            .field("name", &self.name)
            .field("plugin", &self.plugin)
            .field("storage", &self.storage)
            .finish()
    }
}

impl TypeInfo {
    /// A type a plugin implements.
    pub fn from_type(plugin: &str, implementation: Arc<dyn CustomType>) -> Result<Self> {
        let info = Self {
            name: implementation.name().to_ascii_lowercase(),
            aliases: implementation.aliases(),
            plugin: plugin.to_string(),
            storage: implementation.storage_type(),
            ordering: implementation.ordering(),
            casts: implementation.casts(),
            implementation,
        };
        info.remember();
        Ok(info)
    }

    /// Remembers the implementation for [`display_value`] (weakly: unloading the plugin
    /// drops it).
    fn remember(&self) {
        if let Ok(mut loaded) = LOADED.write() {
            loaded.insert(
                (self.plugin.clone(), self.name.clone()),
                Arc::downgrade(&self.implementation),
            );
        }
    }

    /// The cast from `from` into this type (an exact match, else the only one whose source
    /// `from` widens to without loss, e.g. INT to BIGINT), with its index; `assignment` asks
    /// for one allowed in assignments.
    pub(crate) fn cast_into(&self, from: &DataType, assignment: bool) -> Option<(usize, &Cast)> {
        self.find_cast(CastDirection::IntoType, from, assignment, |other| {
            widens(from, other)
        })
    }

    /// The cast from this type into `to` (an exact match, else, for a number, the only one
    /// giving a number, converted after it as `CAST` converts numbers), with its index.
    pub(crate) fn cast_from(&self, to: &DataType) -> Option<(usize, &Cast)> {
        self.find_cast(CastDirection::FromType, to, false, |other| {
            other.is_numeric() && to.is_numeric()
        })
    }

    fn find_cast(
        &self,
        direction: CastDirection,
        other: &DataType,
        assignment: bool,
        convertible: impl Fn(&DataType) -> bool,
    ) -> Option<(usize, &Cast)> {
        let candidates: Vec<(usize, &Cast)> = self
            .casts
            .iter()
            .enumerate()
            .filter(|(_, c)| c.direction == direction)
            .filter(|(_, c)| !assignment || c.context == CastContext::Assignment)
            .collect();
        if let Some(exact) = candidates.iter().find(|(_, c)| &c.other == other) {
            return Some(*exact);
        }
        let mut convertible = candidates
            .into_iter()
            .filter(|(_, c)| convertible(&c.other));
        match (convertible.next(), convertible.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }

    /// The storage field of a column of this type: the storage type with the metadata that
    /// names the type and its plugin.
    pub fn field(&self, name: &str, nullable: bool) -> Field {
        Field::new(name, self.storage.clone(), nullable).with_metadata(
            [
                (TYPE_NAME_KEY.to_string(), self.name.clone()),
                (TYPE_PLUGIN_KEY.to_string(), self.plugin.clone()),
            ]
            .into(),
        )
    }
}

/// Whether every value of `from` is a value of `to` (integers and floats to wider ones).
fn widens(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let rank = |t: &DataType| match t {
        Int8 => Some((0, 1)),
        Int16 => Some((0, 2)),
        Int32 => Some((0, 3)),
        Int64 => Some((0, 4)),
        UInt8 => Some((1, 1)),
        UInt16 => Some((1, 2)),
        UInt32 => Some((1, 3)),
        UInt64 => Some((1, 4)),
        Float32 => Some((2, 1)),
        Float64 => Some((2, 2)),
        _ => None,
    };
    match (rank(from), rank(to)) {
        // Same kind, wider; or unsigned into a wider signed integer.
        (Some((a, x)), Some((b, y))) => (a == b && x <= y) || (a == 1 && b == 0 && x < y),
        _ => false,
    }
}

/// The type of `types` (a registry's loaded types) a SQL type name denotes, if it names one.
pub(crate) fn declared<'a>(
    types: impl Iterator<Item = &'a TypeInfo>,
    sql_type: &datafusion::sql::sqlparser::ast::DataType,
) -> Result<Option<TypeInfo>> {
    use datafusion::logical_expr::planner::TypePlanner;
    let types: Vec<&TypeInfo> = types.collect();
    let planner = planner::CustomTypePlanner::new(types.iter().copied());
    let Some(field) = planner.plan_type_field(sql_type)? else {
        return Ok(None);
    };
    let Some((name, _)) = logical_type(&field) else {
        return Ok(None);
    };
    Ok(types.into_iter().find(|t| t.name == name).cloned())
}

/// The implementations of the types loaded in this process, by plugin and type name, for
/// messages built where no registry is at hand (a duplicate key found by a storage engine).
static LOADED: LazyLock<RwLock<LoadedTypes>> = LazyLock::new(Default::default);

/// Loaded type implementations by (plugin, type name).
type LoadedTypes = BTreeMap<(String, String), Weak<dyn CustomType>>;

/// Row `row` of `values` (a column described by `field`) as an error message shows it: a
/// custom-typed value in its type's text form (while its plugin is loaded), any other value
/// as Arrow displays it.
pub(crate) fn display_value(field: &Field, values: &ArrayRef, row: usize) -> String {
    let formatted = logical_type(field).and_then(|(name, plugin)| {
        let implementation = LOADED
            .read()
            .ok()?
            .get(&(plugin.to_string(), name.to_string()))?
            .upgrade()?;
        let text = implementation.format(&values.slice(row, 1)).ok()?;
        (text.len() == 1 && text.is_valid(0)).then(|| text.value(0).to_string())
    });
    formatted.unwrap_or_else(|| {
        arrow::util::display::array_value_to_string(values, row).unwrap_or_default()
    })
}

/// The custom type of a column, as its field's metadata names it: `(type, plugin)`.
pub fn logical_type(field: &Field) -> Option<(&str, &str)> {
    let m = field.metadata();
    let name = m.get(TYPE_NAME_KEY)?;
    let plugin = m.get(TYPE_PLUGIN_KEY).map_or("", String::as_str);
    Some((name.as_str(), plugin))
}

/// The error for a column whose type's plugin is not loaded.
pub(crate) fn missing_type(column: &str, type_name: &str, plugin: &str) -> Error {
    Error::Plugin(
        SqlState::UndefinedObject,
        format!("column {column} has type {type_name} from plugin {plugin} (not loaded)"),
    )
}

/// The error for a text value a type does not accept (SQLSTATE 22P02).
pub(crate) fn invalid_input(type_name: &str, value: &str, reason: &str) -> Error {
    let shown: String = value.chars().take(200).collect();
    let mut message = format!("invalid input syntax for type {type_name}: \"{shown}\"");
    if !reason.is_empty() {
        message.push_str(&format!(" ({reason})"));
    }
    Error::Data(SqlState::InvalidTextRepresentation, message)
}
