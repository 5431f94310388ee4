//! Moving data across the C boundary: reading the strings of a plugin's tables ([`c_str`]),
//! exporting argument arrays to a call ([`ExportedArgs`]) and importing, with full validation,
//! the arrays a plugin returns ([`import_result`]). Shared by the function, accumulator, stream
//! and storage code, so every array from a plugin goes through the same checks.

use std::ffi::{c_char, CStr};

use arrow_array::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::{make_array, Array, ArrayRef};
use arrow_data::ArrayData;
use arrow_schema::{ArrowError, DataType};

use crate::validate;

pub(crate) unsafe fn c_str(p: *const c_char, what: &str) -> Result<String, String> {
    if p.is_null() {
        return Err(format!("{what} is null"));
    }
    // SAFETY: caller guarantees a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map(str::to_string)
        .map_err(|_| format!("{what} is not UTF-8"))
}

/// Exported arguments for one call; releases whatever the plugin did not take on drop.
pub(crate) struct ExportedArgs {
    pub(crate) arrays: Vec<FFI_ArrowArray>,
    pub(crate) schemas: Vec<FFI_ArrowSchema>,
}

impl ExportedArgs {
    /// Exports `args`; an untyped `Null` array is replaced by an all-null array of the type in
    /// `types` (the declared argument or state type at that position).
    pub(crate) fn new(
        args: &[ArrayRef],
        types: &dyn Fn(usize) -> Option<DataType>,
    ) -> Result<Self, ArrowError> {
        let mut arrays = Vec::with_capacity(args.len());
        let mut schemas = Vec::with_capacity(args.len());
        for (i, a) in args.iter().enumerate() {
            let data = match types(i) {
                Some(t) if a.data_type() == &DataType::Null && t != DataType::Null => {
                    arrow_array::new_null_array(&t, a.len()).to_data()
                }
                _ => a.to_data(),
            };
            schemas.push(FFI_ArrowSchema::try_from(data.data_type())?);
            arrays.push(FFI_ArrowArray::new(&data));
        }
        Ok(Self { arrays, schemas })
    }
}

/// Validates and imports an array the plugin wrote into `array`/`schema`.
pub(crate) fn import_result(
    array: FFI_ArrowArray,
    schema: &FFI_ArrowSchema,
    expected_type: Option<&DataType>,
    expected_len: Option<usize>,
) -> Result<ArrayRef, String> {
    if array.is_released() {
        return Err("no array was returned".to_string());
    }
    // SAFETY: the plugin wrote an Arrow C Data Interface array and schema (trusted code);
    // the result is fully validated below before use.
    let data: ArrayData =
        unsafe { from_ffi(array, schema) }.map_err(|e| format!("cannot import array: {e}"))?;
    if let Some(t) = expected_type {
        if data.data_type() != t {
            return Err(format!(
                "returned an array of type {}, but the function declares {t}",
                data.data_type()
            ));
        }
    }
    if let Some(n) = expected_len {
        if data.len() != n {
            return Err(format!(
                "returned {} rows, expected {n} (one per input row)",
                data.len()
            ));
        }
    }
    validate::validate_full(&data).map_err(|e| format!("returned invalid Arrow data: {e}"))?;
    Ok(make_array(data))
}
