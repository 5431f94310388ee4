//! Functions of the `uuid` plugin: `gen_random_uuid()` (a version 4 UUID) and
//! `uuid_version(u)` (the version field of an RFC 9562 UUID, NULL for other variants).
//!
//! `phantomdb.functions/1` signatures cannot name a custom type yet, so `gen_random_uuid()`
//! returns the canonical text (parsed when assigned to or compared with a `uuid`) and
//! `uuid_version` takes the storage bytes (or a text's bytes, which it parses).

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

/// A uuid argument: its 16 bytes, or the bytes of its text (a text value given where a uuid
/// is expected arrives as its bytes, e.g. `uuid_version(gen_random_uuid())`).
fn uuid_bytes(arg: &[u8]) -> Result<[u8; text::LEN], String> {
    if let Ok(bytes) = <[u8; text::LEN]>::try_from(arg) {
        return Ok(bytes);
    }
    let shown = String::from_utf8_lossy(arg);
    text::parse(&shown).ok_or_else(|| format!("invalid input syntax for type uuid: \"{shown}\""))
}

/// Every function of the plugin.
pub(crate) fn all() -> Vec<Box<dyn ScalarFunction>> {
    vec![
        scalar_fn(
            "gen_random_uuid",
            Signature::exact(vec![], TypeCode::Utf8).with_volatility(Volatility::Volatile),
            |_args, rows| {
                let mut out = StringBuilder::with_capacity(rows, rows * 36);
                for _ in 0..rows {
                    let bytes = random_v4()?;
                    out.append_value(text::format(&bytes).unwrap_or_default());
                }
                Ok(Arc::new(out.finish()) as ArrayRef)
            },
        ),
        scalar_fn(
            "uuid_version",
            Signature::exact(vec![TypeCode::Binary], TypeCode::Int16),
            |args, _rows| {
                let values = args[0]
                    .as_binary_opt::<i32>()
                    .ok_or_else(|| format!("expected a uuid, got {}", args[0].data_type()))?;
                let out: Int16Array = values
                    .iter()
                    .map(|v| {
                        v.map(uuid_bytes)
                            .transpose()
                            .map(|b| b.and_then(|b| version(&b)))
                    })
                    .collect::<Result<_, String>>()?;
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
        let from_text = uuid_bytes(b"017f22e2-79b0-7cc3-98c4-dc0c0c07398f").unwrap();
        assert_eq!(version(&from_text), Some(7));
        assert!(uuid_bytes(b"017f22e2").is_err());
    }
}
