//! The `semver` plugin: a column type for semantic versions (<https://semver.org>), ordered by
//! precedence (`1.0.0-rc.1 < 1.0.0 < 1.9.0 < 1.10.0`), and functions over it.
//!
//! Values are stored as Binary in an order-preserving encoding ([`encoding`]), so the storage
//! order is the type's order: comparisons, `ORDER BY`, `min`/`max`, `GROUP BY`, joins and
//! indexes work on the stored bytes. Build metadata is kept and ordered after the precedence
//! (`1.0.0 < 1.0.0+b1`), so two versions differing only in build metadata are not equal.

pub mod encoding;
mod functions;

use phantomdb_plugin_sdk::prelude::*;

use encoding::Version;

/// The `semver` type.
struct SemverType;

impl CustomType for SemverType {
    fn name(&self) -> &str {
        "semver"
    }

    fn description(&self) -> &str {
        "semantic version, ordered by precedence"
    }

    fn storage_type(&self) -> DataType {
        DataType::Binary
    }

    fn parse(&self, input: &StringArray) -> Result<ArrayRef, TypeError> {
        let mut out = BinaryBuilder::with_capacity(input.len(), input.len() * 32);
        for (row, text) in input.iter().enumerate() {
            match text {
                None => out.append_null(),
                Some(text) => {
                    let v = Version::parse(text)
                        .map_err(|reason| TypeError::InvalidInput(ParseError { row, reason }))?;
                    out.append_value(v.encode());
                }
            }
        }
        Ok(Arc::new(out.finish()))
    }

    fn format(&self, values: &ArrayRef) -> Result<StringArray, String> {
        let values = values
            .as_binary_opt::<i32>()
            .ok_or_else(|| format!("expected Binary storage, got {}", values.data_type()))?;
        values
            .iter()
            .map(|v| {
                v.map(|b| Version::decode(b).map(|v| v.to_string()))
                    .transpose()
            })
            .collect()
    }
}

#[derive(Default)]
struct SemverPlugin;

impl Plugin for SemverPlugin {
    fn register(&self, registrar: &mut Registrar) {
        registrar.data_types(vec![Arc::new(SemverType)]);
        registrar.scalar_functions(functions::all());
    }
}

phantomdb_plugin! {
    name: "semver",
    version: env!("CARGO_PKG_VERSION"),
    description: "The semver column type: semantic versions ordered by precedence",
    host_version: ">=0.1, <0.2",
    plugin_type: DataType,
    plugin: SemverPlugin,
}
