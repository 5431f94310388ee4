//! Types a plugin declares as Arrow C schemas (`phantomdb.functions/2` signatures), read
//! safely: the schema tree is checked before Arrow reads it (Arrow panics on a nested format
//! without its children, and follows child pointers without checking them), and Arrow's import
//! runs under `catch_unwind` besides.

use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use arrow_array::ffi::FFI_ArrowSchema;
use arrow_schema::{DataType, Field};

/// Deepest nesting accepted (a list of structs of lists... ten levels down is plenty).
const MAX_DEPTH: usize = 16;
/// Most children of one nested type.
const MAX_CHILDREN: i64 = 1_000;

/// The field a declared schema describes.
///
/// # Safety
/// `schema` is null or points to an Arrow C schema that lives as long as the plugin.
pub(crate) unsafe fn declared_field(schema: *const FFI_ArrowSchema) -> Result<Field, String> {
    // SAFETY: forwarded contract.
    unsafe { check_tree(schema, 0) }?;
    // SAFETY: checked above: non-null, formats present, children as the formats need.
    let schema = unsafe { &*schema };
    let field = catch_unwind(AssertUnwindSafe(|| Field::try_from(schema)))
        .map_err(|_| "Arrow could not read the schema".to_string())?
        .map_err(|e| e.to_string())?;
    if matches!(field.data_type(), DataType::Dictionary(..)) {
        return Err(format!(
            "dictionary-encoded type {} is not supported",
            field.data_type()
        ));
    }
    Ok(field)
}

/// Checks the schema tree's shape: every schema present with a format, children present and as
/// many as the format needs, no dictionary, bounded depth.
///
/// # Safety
/// As [`declared_field`].
unsafe fn check_tree(schema: *const FFI_ArrowSchema, depth: usize) -> Result<(), String> {
    if schema.is_null() {
        return Err("a schema is null".to_string());
    }
    if depth > MAX_DEPTH {
        return Err(format!("types nest deeper than {MAX_DEPTH} levels"));
    }
    // SAFETY: non-null pointer to the plugin's schema.
    let s = unsafe { &*schema };
    if s.format.is_null() {
        return Err("a schema has no format".to_string());
    }
    // SAFETY: the format is a NUL-terminated string (ABI).
    let format = unsafe { CStr::from_ptr(s.format) }
        .to_str()
        .map_err(|_| "a format is not UTF-8".to_string())?;
    if !s.dictionary.is_null() {
        return Err(format!(
            "dictionary-encoded type `{format}` is not supported"
        ));
    }
    let n = s.n_children;
    if !(0..=MAX_CHILDREN).contains(&n) {
        return Err(format!("format `{format}` has {n} children"));
    }
    let wanted = children_of(format);
    if let Some(wanted) = wanted {
        if n != wanted {
            return Err(format!(
                "format `{format}` needs {wanted} child type(s), the schema has {n}"
            ));
        }
    }
    if n > 0 && s.children.is_null() {
        return Err(format!("format `{format}`: children are null"));
    }
    for i in 0..n as usize {
        // SAFETY: `n` child pointers at `children` (checked non-null).
        let child = unsafe { *s.children.add(i) };
        // SAFETY: forwarded contract.
        unsafe { check_tree(child, depth + 1) }?;
    }
    if format == "+m" {
        // SAFETY: one child, checked above.
        let entries = unsafe { &**s.children };
        if entries.n_children != 2 {
            return Err("a map's entries need a key and a value".to_string());
        }
    }
    Ok(())
}

/// How many children a format needs: `None` for any number (structs, unions).
fn children_of(format: &str) -> Option<i64> {
    match format {
        "+l" | "+L" | "+vl" | "+vL" | "+m" => Some(1),
        "+r" => Some(2),
        f if f.starts_with("+w:") => Some(1),
        "+s" => None,
        f if f.starts_with("+u") => None,
        f if f.starts_with('+') => Some(-1),
        _ => Some(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::Fields;

    fn read(field: &Field) -> Result<Field, String> {
        let schema = FFI_ArrowSchema::try_from(field).expect("exportable");
        // SAFETY: a valid schema that outlives the call.
        unsafe { declared_field(&schema) }
    }

    #[test]
    fn every_arrow_type_travels_with_its_metadata() {
        let types = [
            DataType::Decimal128(20, 4),
            DataType::FixedSizeBinary(16),
            DataType::List(Field::new_list_field(DataType::Int64, true).into()),
            DataType::Struct(Fields::from(vec![
                Field::new("a", DataType::Utf8, true),
                Field::new("b", DataType::Float64, true),
            ])),
            DataType::Map(
                Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", DataType::Utf8, false),
                        Field::new("value", DataType::Int32, true),
                    ])),
                    false,
                )
                .into(),
                false,
            ),
        ];
        for t in types {
            let field = Field::new("", t.clone(), true)
                .with_metadata([("ARROW:extension:name".to_string(), "x.y".to_string())].into());
            let back = read(&field).expect("declared type reads back");
            assert_eq!(back.data_type(), &t);
            assert_eq!(back.metadata(), field.metadata());
        }
    }

    #[test]
    fn malformed_trees_are_refused_before_arrow_reads_them() {
        // A list without its child (Arrow panics on it).
        let list = FFI_ArrowSchema::try_new("+l", vec![], None).expect("schema");
        // SAFETY: a valid (if malformed) schema.
        let e = unsafe { declared_field(&list) }.unwrap_err();
        assert!(e.contains("needs 1 child"), "{e}");
        // SAFETY: null is allowed and refused.
        assert!(unsafe { declared_field(std::ptr::null()) }.is_err());
        // A primitive with a child.
        let child = FFI_ArrowSchema::try_new("i", vec![], None).expect("schema");
        let odd = FFI_ArrowSchema::try_new("i", vec![child], None).expect("schema");
        // SAFETY: as above.
        let e = unsafe { declared_field(&odd) }.unwrap_err();
        assert!(e.contains("needs 0 child"), "{e}");
        // Dictionary-encoded types.
        let dict = Field::new(
            "",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        );
        assert!(read(&dict).unwrap_err().contains("dictionary"));
    }
}
