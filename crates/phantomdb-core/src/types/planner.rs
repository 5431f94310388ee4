//! The DataFusion type planner for custom types: a column or cast declared with a type's SQL
//! name (or alias) becomes the type's storage field, with the metadata naming the type. The
//! casts INSERT and UPDATE assignments are written as ([`super::assign`]) name the type in
//! the schema [`ASSIGNMENT_SCHEMA`]; their field is also marked [`ASSIGNMENT_KEY`], so only
//! the type's assignment casts apply to them.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::FieldRef;
use datafusion::common::Result;
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::sql::sqlparser::ast::{DataType as SqlType, Ident, ObjectNamePart};

use super::TypeInfo;

/// The schema an assignment cast's type name is written in: `phantomdb_assignment.<type>`.
pub(crate) const ASSIGNMENT_SCHEMA: &str = "phantomdb_assignment";
/// Field metadata key marking the target of an assignment cast.
pub(crate) const ASSIGNMENT_KEY: &str = "phantomdb.assignment";

/// Maps SQL names to the registered types of one registry snapshot.
#[derive(Debug)]
pub(crate) struct CustomTypePlanner {
    by_name: BTreeMap<String, TypeInfo>,
}

impl CustomTypePlanner {
    /// A planner for `types` (by name and by alias).
    pub(crate) fn new<'a>(types: impl Iterator<Item = &'a TypeInfo>) -> Self {
        let mut by_name = BTreeMap::new();
        for t in types {
            for name in std::iter::once(&t.name).chain(&t.aliases) {
                by_name.entry(name.clone()).or_insert_with(|| t.clone());
            }
        }
        Self { by_name }
    }
}

impl TypePlanner for CustomTypePlanner {
    fn plan_type_field(&self, sql_type: &SqlType) -> Result<Option<FieldRef>> {
        let (key, assignment) = match sql_type {
            // The SQL parser knows `uuid` as a type of its own; DataFusion has none.
            SqlType::Uuid => ("uuid".to_string(), false),
            SqlType::Custom(name, modifiers) if modifiers.is_empty() => match name.0.as_slice() {
                [ObjectNamePart::Identifier(ident)] => (identifier(ident), false),
                [ObjectNamePart::Identifier(schema), ObjectNamePart::Identifier(ident)]
                    if schema.value == ASSIGNMENT_SCHEMA =>
                {
                    (ident.value.clone(), true)
                }
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        Ok(self.by_name.get(&key).map(|t| {
            let field = t.field("", true);
            Arc::new(if assignment {
                let mut metadata = field.metadata().clone();
                metadata.insert(ASSIGNMENT_KEY.to_string(), "true".to_string());
                field.with_metadata(metadata)
            } else {
                field
            })
        }))
    }
}

/// An identifier as the catalog names it (unquoted names are folded to lower case).
pub(super) fn identifier(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_ascii_lowercase()
    }
}
