//! The DataFusion type planner for custom types: a column or cast declared with a type's SQL
//! name (or alias) becomes the type's storage field, with the metadata naming the type.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::FieldRef;
use datafusion::common::Result;
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::sql::sqlparser::ast::{DataType as SqlType, ObjectNamePart};

use super::TypeInfo;

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
        let key = match sql_type {
            // The SQL parser knows `uuid` as a type of its own; DataFusion has none.
            SqlType::Uuid => "uuid".to_string(),
            SqlType::Custom(name, modifiers) if modifiers.is_empty() => {
                let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() else {
                    return Ok(None);
                };
                if ident.quote_style.is_some() {
                    ident.value.clone()
                } else {
                    ident.value.to_ascii_lowercase()
                }
            }
            _ => return Ok(None),
        };
        Ok(self.by_name.get(&key).map(|t| Arc::new(t.field("", true))))
    }
}
