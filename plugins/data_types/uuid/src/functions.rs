//! Functions of the `uuid` plugin: `gen_random_uuid()` (a version 4 UUID) and
//! `uuid_version(u)` (the version field of an RFC 9562 UUID, NULL for other variants).
//!
//! Their signatures name the `uuid` type (`phantomdb.functions/2`): `gen_random_uuid()` returns
//! a `uuid`, and `uuid_version` takes one (its 16 storage bytes; text given there is parsed
//! into a `uuid` by the host first).

use phantomdb_plugin_sdk::prelude::*;

use crate::text;

/// 16 random bytes with the version 4 and RFC 9562 variant bits set.
fn random_v4() -> Result<[u8; text::LEN], String> {
    let mut bytes = [0u8; text::LEN];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random source: {e}"))?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Ok(bytes)
}

/// The version of an RFC 9562 UUID (variant bits `10`), `None` for other variants.
fn version(bytes: &[u8]) -> Option<i16> {
    (bytes.len() == text::LEN && bytes[8] & 0xc0 == 0x80).then(|| i16::from(bytes[6] >> 4))
}

/// The `uuid` type in a signature.
fn uuid() -> ValueType {
    ValueType::custom("uuid", DataType::FixedSizeBinary(text::LEN as i32))
}

/// Every function of the plugin.
pub(crate) fn all() -> Vec<Box<dyn ScalarFunction>> {
    vec![
        scalar_fn(
            "gen_random_uuid",
            Signature::nullary(uuid()).with_volatility(Volatility::Volatile),
            |_args, rows| {
                let mut out = FixedSizeBinaryBuilder::with_capacity(rows, text::LEN as i32);
                for _ in 0..rows {
                    out.append_value(random_v4()?)
                        .map_err(|e| format!("cannot build a uuid: {e}"))?;
                }
                Ok(Arc::new(out.finish()) as ArrayRef)
            },
        ),
        scalar_fn(
            "uuid_version",
            Signature::exact(vec![uuid()], TypeCode::Int16),
            |args, _rows| {
                let values = args[0]
                    .as_fixed_size_binary_opt()
                    .ok_or_else(|| format!("expected a uuid, got {}", args[0].data_type()))?;
                let out: Int16Array = values.iter().map(|v| v.and_then(version)).collect();
                Ok(Arc::new(out) as ArrayRef)
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_uuids_are_version_4_and_differ() {
        let (a, b) = (random_v4().unwrap(), random_v4().unwrap());
        assert_ne!(a, b);
        assert_eq!(version(&a), Some(4));
        let text = text::format(&a).unwrap();
        assert_eq!(text::parse(&text), Some(a));
    }

    #[test]
    fn version_reads_the_field_of_rfc_variants_only() {
        // RFC 9562 appendix examples: v1, v7; and the nil UUID (variant 0: no version).
        let v1 = text::parse("c232ab00-9414-11ec-b3c8-9f6bdeced846").unwrap();
        let v7 = text::parse("017f22e2-79b0-7cc3-98c4-dc0c0c07398f").unwrap();
        let nil = [0u8; text::LEN];
        assert_eq!(version(&v1), Some(1));
        assert_eq!(version(&v7), Some(7));
        assert_eq!(version(&nil), None);
        assert_eq!(version(b"017f22e2"), None);
    }
}
