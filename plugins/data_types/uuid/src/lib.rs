//! The `uuid` plugin: a column type for universally unique identifiers (RFC 9562), read and
//! written in PostgreSQL's text forms ([`text`]), and functions over it.
//!
//! Values are stored as their 16 bytes (`FixedSizeBinary(16)`), and, as in PostgreSQL, the
//! type's order is the byte order: comparisons, `ORDER BY`, `min`/`max`, `GROUP BY`, joins,
//! primary keys and indexes work on the stored bytes.

mod functions;
pub mod text;

use phantomdb_plugin_sdk::prelude::*;

/// The `uuid` type.
struct UuidType;

impl CustomType for UuidType {
    fn name(&self) -> &str {
        "uuid"
    }

    fn description(&self) -> &str {
        "universally unique identifier (16 bytes)"
    }

    fn storage_type(&self) -> DataType {
        DataType::FixedSizeBinary(text::LEN as i32)
    }

    fn parse(&self, input: &StringArray) -> Result<ArrayRef, TypeError> {
        let mut out = FixedSizeBinaryBuilder::with_capacity(input.len(), text::LEN as i32);
        for (row, value) in input.iter().enumerate() {
            match value {
                None => out.append_null(),
                Some(value) => {
                    let bytes = text::parse(value).ok_or_else(|| {
                        TypeError::InvalidInput(ParseError {
                            row,
                            reason: String::new(),
                        })
                    })?;
                    out.append_value(bytes)
                        .map_err(|e| TypeError::Failed(e.to_string()))?;
                }
            }
        }
        Ok(Arc::new(out.finish()))
    }

    fn format(&self, values: &ArrayRef) -> Result<StringArray, String> {
        let values = values
            .as_fixed_size_binary_opt()
            .filter(|v| v.value_length() == text::LEN as i32)
            .ok_or_else(|| {
                format!(
                    "expected FixedSizeBinary(16) storage, got {}",
                    values.data_type()
                )
            })?;
        values
            .iter()
            .map(|v| {
                v.map(|b| text::format(b).ok_or_else(|| "a uuid has 16 bytes".to_string()))
                    .transpose()
            })
            .collect()
    }
}

#[derive(Default)]
struct UuidPlugin;

impl Plugin for UuidPlugin {
    fn register(&self, registrar: &mut Registrar) {
        registrar.data_types(vec![Arc::new(UuidType)]);
        registrar.scalar_functions(functions::all());
    }
}

phantomdb_plugin! {
    name: "uuid",
    version: env!("CARGO_PKG_VERSION"),
    description: "The uuid column type: 16-byte universally unique identifiers",
    host_version: ">=0.1, <0.2",
    plugin_type: DataType,
    plugin: UuidPlugin,
}
