//! Functions over `semver` values: `semver_major(v)`, `semver_minor(v)`, `semver_patch(v)`
//! and `semver_satisfies(v, 'range')`. Their signatures name the `semver` type
//! (`phantomdb.functions/2`), so they take semver values (text given there is parsed by the
//! type first) and refuse other types; the values arrive as their Binary storage.

use phantomdb_plugin_sdk::prelude::*;

use crate::encoding::Version;

/// The `semver` type in a signature.
fn semver() -> ValueType {
    ValueType::custom("semver", DataType::Binary)
}

fn versions(arg: &ArrayRef) -> Result<Vec<Option<Version>>, String> {
    let values = arg
        .as_binary_opt::<i32>()
        .ok_or_else(|| format!("expected a semver value, got {}", arg.data_type()))?;
    values
        .iter()
        .map(|v| v.map(Version::decode).transpose())
        .collect()
}

fn part(name: &'static str, pick: fn(&Version) -> u64) -> Box<dyn ScalarFunction> {
    scalar_fn(
        name,
        Signature::exact(vec![semver()], TypeCode::Int64),
        move |args, _rows| {
            let out: Int64Array = versions(&args[0])?
                .iter()
                .map(|v| v.as_ref().map(|v| pick(v) as i64))
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        },
    )
}

/// One comparator of a range: `>=1.2.0`, `<2`, `=1.0.0`, `1.0.0`.
fn satisfies(v: &Version, range: &str) -> Result<bool, String> {
    for comparator in range.split(',').map(str::trim) {
        let (op, rest) = ["<=", ">=", "<", ">", "="]
            .iter()
            .find_map(|op| comparator.strip_prefix(op).map(|r| (*op, r.trim())))
            .unwrap_or(("=", comparator));
        // Partial versions (`2`, `1.2`) fill the missing parts with zeros.
        let dots = rest.matches('.').count();
        let full = match dots {
            0 if !rest.contains(['-', '+']) => format!("{rest}.0.0"),
            1 if !rest.contains(['-', '+']) => format!("{rest}.0"),
            _ => rest.to_string(),
        };
        let bound =
            Version::parse(&full).map_err(|e| format!("invalid version range \"{range}\": {e}"))?;
        let (a, b) = (v.encode(), bound.encode());
        let ok = match op {
            "<=" => a <= b,
            ">=" => a >= b,
            "<" => a < b,
            ">" => a > b,
            _ => a == b,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Every function of the plugin.
pub(crate) fn all() -> Vec<Box<dyn ScalarFunction>> {
    vec![
        part("semver_major", |v| v.major),
        part("semver_minor", |v| v.minor),
        part("semver_patch", |v| v.patch),
        scalar_fn(
            "semver_satisfies",
            Signature::exact(
                vec![semver(), ValueType::from(TypeCode::Utf8)],
                TypeCode::Boolean,
            ),
            |args, _rows| {
                let ranges = args[1].as_string::<i32>();
                let out = versions(&args[0])?
                    .iter()
                    .zip(ranges.iter())
                    .map(|(v, r)| match (v, r) {
                        (Some(v), Some(r)) => satisfies(v, r).map(Some),
                        _ => Ok(None),
                    })
                    .collect::<Result<BooleanArray, String>>()?;
                Ok(Arc::new(out) as ArrayRef)
            },
        ),
    ]
}
