//! What type an expression has, for the planner rewrites of typed values ([`super::rewrite`],
//! [`super::calls`]): the loaded types by name ([`Types`]), the custom type of an expression
//! ([`type_of`]) and its data type.

use std::collections::BTreeMap;

use arrow::datatypes::{DataType, Field};
use datafusion::common::DFSchema;
use datafusion::logical_expr::{Expr, ExprSchemable};

use super::{logical_type, missing_type, TypeInfo};
use crate::error::Result;
use crate::plugins::Registry;

/// The registered types by name.
pub(super) struct Types<'a>(BTreeMap<&'a str, &'a TypeInfo>);

impl<'a> Types<'a> {
    /// The loaded type named `name`.
    pub(super) fn named(&self, name: &str) -> Option<&'a TypeInfo> {
        self.0.get(name).copied()
    }

    /// The types loaded in `registry`.
    pub(super) fn of(registry: &'a Registry) -> Self {
        Self(
            registry
                .data_types()
                .map(|t| (t.name.as_str(), t))
                .collect(),
        )
    }

    /// The loaded type a field has, `Ok(None)` for a plain field, an error when its plugin is
    /// not loaded.
    pub(super) fn of_field(&self, field: &Field, column: &str) -> Result<Option<&'a TypeInfo>> {
        let Some((name, plugin)) = logical_type(field) else {
            return Ok(None);
        };
        match self.0.get(name) {
            Some(t) if t.plugin == plugin || plugin.is_empty() => Ok(Some(*t)),
            _ => Err(missing_type(column, name, plugin)),
        }
    }
}

/// Whether `t` is a text type.
pub(super) fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// `t`'s name in SQL (PostgreSQL's), for messages.
pub(super) fn sql_name(t: &DataType) -> String {
    crate::pg_types::pg_type_of(t).name.to_string()
}

/// The custom type of `e`'s result, if it has one (errors: its plugin is not loaded).
pub(super) fn type_of<'a>(
    e: &Expr,
    schema: &DFSchema,
    types: &Types<'a>,
) -> Result<Option<&'a TypeInfo>> {
    let Ok((_, field)) = e.to_field(schema) else {
        return Ok(None);
    };
    types.of_field(&field, field.name())
}

/// `e`'s data type, when it has one.
pub(super) fn data_type(e: &Expr, schema: &DFSchema) -> Option<DataType> {
    e.get_type(schema).ok()
}
