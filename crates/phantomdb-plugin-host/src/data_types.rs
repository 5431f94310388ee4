//! Host side of `phantomdb.types/1`: a plugin's custom data types, seen through the SDK's
//! safe [`CustomType`] trait, so the core treats every type the same way.
//!
//! Declarations are checked when the plugin loads (names, a storage format the host can
//! decode, a known ordering). Every call checks the plugin is initialized (holding its state
//! lock for the call), exports the input batch, and validates what comes back (full Arrow
//! validation, the expected type and one row per input row).

use std::ffi::c_char;
use std::sync::Arc;

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::{Array, ArrayRef, BinaryArray, StringArray};
use arrow_schema::DataType;
use phantomdb_plugin_abi::{
    cast_context, cast_direction, type_ordering, CastDescriptor, TypeDescriptor, TypesInterface,
    TYPES_INTERFACE_SIZE_1_5, TYPES_INTERFACE_V1, TYPES_INTERFACE_V1_C, TYPE_DESCRIPTOR_SIZE_1_5,
};
use phantomdb_plugin_sdk::data_type::{
    Cast, CastContext, CastDirection, CustomType, ParseError, TypeError, TypeOrdering,
};

use crate::ffi::{c_str, import_result};
use crate::{CallError, LoadedPlugin};

const MAX_TYPES: usize = 1_000;
const MAX_ALIASES: usize = 100;
const MAX_CASTS: usize = 100;

/// A type as declared by a plugin.
#[derive(Debug, Clone)]
pub(crate) struct TypeDecl {
    name: String,
    description: String,
    aliases: Vec<String>,
    storage: DataType,
    ordering: TypeOrdering,
    casts: Vec<Cast>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// The storage type a format string names (types without children only).
fn storage_type(format: &str) -> Result<DataType, String> {
    // Nested formats (`+l`, `+s`, ...) are refused before Arrow reads them: Arrow panics on a
    // nested format without its children.
    if format.starts_with('+') {
        return Err(format!(
            "storage type `{format}` is not supported (no nested types)"
        ));
    }
    let schema = FFI_ArrowSchema::try_new(format, vec![], None).map_err(|e| e.to_string())?;
    let t = DataType::try_from(&schema).map_err(|e| e.to_string())?;
    if t.is_nested() || matches!(t, DataType::Null | DataType::Dictionary(..)) {
        return Err(format!(
            "storage type {t} is not supported (no nested types)"
        ));
    }
    Ok(t)
}

/// Reads the plugin's types interface, if it has one.
pub(crate) fn read_interface(
    vtable: &'static phantomdb_plugin_abi::PluginVTable,
) -> Result<(Option<&'static TypesInterface>, Vec<TypeDecl>), String> {
    // SAFETY: valid NUL-terminated name; the plugin returns null or a pointer to a static table.
    let ptr = unsafe { (vtable.get_interface)(TYPES_INTERFACE_V1_C.as_ptr()) };
    if ptr.is_null() {
        return Ok((None, Vec::new()));
    }
    // SAFETY: a `TypesInterface` by ABI contract; struct_size is checked before other fields.
    let iface: &'static TypesInterface = unsafe { &*(ptr as *const TypesInterface) };
    Ok((Some(iface), read_types(iface)?))
}

/// The types a plugin's table declares, checked (a table of ABI 1.5 has no casts).
fn read_types(iface: &TypesInterface) -> Result<Vec<TypeDecl>, String> {
    if iface.struct_size < TYPES_INTERFACE_SIZE_1_5 {
        return Err(format!(
            "`{TYPES_INTERFACE_V1}` table is {} bytes, expected at least {TYPES_INTERFACE_SIZE_1_5}",
            iface.struct_size,
        ));
    }
    // ABI 1.6 added `cast`: a 1.5 table ends before it.
    let has_cast =
        iface.struct_size >= std::mem::size_of::<TypesInterface>() && iface.cast.is_some();
    if iface.num_types > MAX_TYPES || (iface.num_types > 0 && iface.types.is_null()) {
        return Err(format!(
            "`{TYPES_INTERFACE_V1}` declares {} types at an invalid address",
            iface.num_types
        ));
    }
    let mut types = Vec::with_capacity(iface.num_types);
    let mut stride = std::mem::size_of::<TypeDescriptor>();
    for i in 0..iface.num_types {
        // SAFETY: `num_types` descriptors with a common stride (their struct_size).
        let d = unsafe { &*((iface.types as *const u8).add(i * stride) as *const TypeDescriptor) };
        if i == 0 {
            if d.struct_size < TYPE_DESCRIPTOR_SIZE_1_5 {
                return Err("type descriptor is too small".to_string());
            }
            stride = d.struct_size;
        }
        // SAFETY: NUL-terminated strings that live forever.
        let name = unsafe { c_str(d.name, "type name") }?.to_ascii_lowercase();
        // SAFETY: as above.
        let description = unsafe { c_str(d.description, "type description") }?;
        if !valid_name(&name) {
            return Err(format!(
                "type name `{name}` must be ASCII letters, digits or _, not starting with a digit"
            ));
        }
        if d.num_aliases > MAX_ALIASES || (d.num_aliases > 0 && d.aliases.is_null()) {
            return Err(format!(
                "type {name} declares aliases at an invalid address"
            ));
        }
        let mut aliases = Vec::with_capacity(d.num_aliases);
        for a in 0..d.num_aliases {
            // SAFETY: `num_aliases` pointers to NUL-terminated strings that live forever.
            let alias = unsafe { c_str(*d.aliases.add(a), "type alias") }?.to_ascii_lowercase();
            if !valid_name(&alias) {
                return Err(format!("type {name}: alias `{alias}` is not a valid name"));
            }
            aliases.push(alias);
        }
        // SAFETY: as above.
        let format = unsafe { c_str(d.storage_format, "storage format") }?;
        let storage =
            storage_type(&format).map_err(|e| format!("type {name}: storage `{format}`: {e}"))?;
        let ordering = match d.ordering {
            type_ordering::STORAGE => TypeOrdering::Storage,
            type_ordering::SORT_KEY => TypeOrdering::SortKey,
            other => return Err(format!("type {name} declares unknown ordering {other}")),
        };
        // ABI 1.6 added the casts: a 1.5 descriptor ends before them.
        let casts = if d.struct_size >= std::mem::size_of::<TypeDescriptor>() {
            // SAFETY: the descriptor covers the fields (checked just above).
            unsafe { read_casts(d, &name) }?
        } else {
            Vec::new()
        };
        if !casts.is_empty() && !has_cast {
            return Err(format!(
                "type {name} declares casts but the plugin has no cast function"
            ));
        }
        types.push(TypeDecl {
            name,
            description,
            aliases,
            storage,
            ordering,
            casts,
        });
    }
    Ok(types)
}

/// The casts of descriptor `d` (of type `name`).
///
/// # Safety
/// `d` is a 1.6 descriptor: `casts` points to `num_casts` descriptors (or is null).
unsafe fn read_casts(d: &TypeDescriptor, name: &str) -> Result<Vec<Cast>, String> {
    if d.num_casts > MAX_CASTS || (d.num_casts > 0 && d.casts.is_null()) {
        return Err(format!("type {name} declares casts at an invalid address"));
    }
    let mut casts: Vec<Cast> = Vec::with_capacity(d.num_casts);
    let mut stride = std::mem::size_of::<CastDescriptor>();
    for i in 0..d.num_casts {
        // SAFETY: `num_casts` descriptors with a common stride (their struct_size).
        let c = unsafe { &*((d.casts as *const u8).add(i * stride) as *const CastDescriptor) };
        if i == 0 {
            if c.struct_size < std::mem::size_of::<CastDescriptor>() {
                return Err(format!("type {name}: cast descriptor is too small"));
            }
            stride = c.struct_size;
        }
        // SAFETY: a NUL-terminated string that lives forever.
        let format = unsafe { c_str(c.other_format, "cast type") }?;
        let other = storage_type(&format)
            .map_err(|e| format!("type {name}: cast #{i} type `{format}`: {e}"))?;
        let direction = match c.direction {
            cast_direction::INTO_TYPE => CastDirection::IntoType,
            cast_direction::FROM_TYPE => CastDirection::FromType,
            other => {
                return Err(format!(
                    "type {name}: cast #{i} has unknown direction {other}"
                ))
            }
        };
        let context = match c.context {
            cast_context::EXPLICIT => CastContext::Explicit,
            cast_context::ASSIGNMENT => CastContext::Assignment,
            other => {
                return Err(format!(
                    "type {name}: cast #{i} has unknown context {other}"
                ))
            }
        };
        if other == DataType::Utf8 {
            return Err(format!(
                "type {name}: cast #{i} is a text cast (text casts are parse and format)"
            ));
        }
        if casts
            .iter()
            .any(|c| c.direction == direction && c.other == other)
        {
            return Err(format!(
                "type {name}: cast #{i} repeats a cast with {other}"
            ));
        }
        casts.push(Cast {
            direction,
            other,
            context,
        });
    }
    Ok(casts)
}

/// A custom data type living in a native plugin.
#[derive(Clone)]
pub struct NativeDataType {
    plugin: LoadedPlugin,
    index: usize,
}

impl std::fmt::Debug for NativeDataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeDataType")
            .field("plugin", &self.plugin.name())
            .field("type", &self.decl().name)
            .finish()
    }
}

/// The call a batch goes through.
#[derive(Clone, Copy)]
enum Call {
    Parse,
    Format,
    SortKey,
    Cast(usize),
}

impl Call {
    fn name(self) -> String {
        match self {
            Self::Parse => "parse".into(),
            Self::Format => "format".into(),
            Self::SortKey => "sort_key".into(),
            Self::Cast(i) => format!("cast #{i}"),
        }
    }
}

impl NativeDataType {
    pub(crate) fn new(plugin: LoadedPlugin, index: usize) -> Self {
        Self { plugin, index }
    }

    fn decl(&self) -> &TypeDecl {
        &self.plugin.inner.data_types[self.index]
    }

    fn iface(&self) -> Result<&'static TypesInterface, String> {
        self.plugin.inner.types_iface.ok_or_else(|| {
            CallError::NoSuchFunction {
                plugin: self.plugin.name().to_string(),
                reason: "plugin has no types interface".to_string(),
            }
            .to_string()
        })
    }

    /// One batch through `call`, checked to return `expected` with one row per input row.
    fn run(
        &self,
        call: Call,
        input: &ArrayRef,
        expected: &DataType,
    ) -> Result<ArrayRef, TypeError> {
        let iface = self.iface()?;
        let function = format!("{}.{}", self.decl().name, call.name());
        let schema = FFI_ArrowSchema::try_from(input.data_type())
            .map_err(|e| TypeError::Failed(format!("{function}: cannot export: {e}")))?;
        let mut array = FFI_ArrowArray::new(&input.to_data());
        let mut out_array = FFI_ArrowArray::empty();
        let mut out_schema = FFI_ArrowSchema::empty();
        let mut bad_row: i64 = -1;
        let mut err: *mut c_char = std::ptr::null_mut();
        let _guard = self
            .plugin
            .enter()
            .map_err(|e| TypeError::Failed(e.to_string()))?;
        // SAFETY: the input structs are valid for the call (the plugin moves the array; what it
        // leaves is released by their drop); the out slots are empty, host-owned structs.
        let status = unsafe {
            match call {
                Call::Parse => (iface.parse)(
                    self.index,
                    &mut array,
                    &schema,
                    &mut out_array,
                    &mut out_schema,
                    &mut bad_row,
                    &mut err,
                ),
                Call::Format => (iface.format)(
                    self.index,
                    &mut array,
                    &schema,
                    &mut out_array,
                    &mut out_schema,
                    &mut err,
                ),
                Call::SortKey => (iface.sort_key)(
                    self.index,
                    &mut array,
                    &schema,
                    &mut out_array,
                    &mut out_schema,
                    &mut err,
                ),
                // Checked at load: a type with casts comes with the function.
                Call::Cast(cast_index) => match iface.cast {
                    Some(cast) => cast(
                        self.index,
                        cast_index,
                        &mut array,
                        &schema,
                        &mut out_array,
                        &mut out_schema,
                        &mut bad_row,
                        &mut err,
                    ),
                    None => return Err(TypeError::Failed(format!("{function}: no cast function"))),
                },
            }
        };
        if let Err(e) = self.plugin.check_status(status, err, &function) {
            let row = usize::try_from(bad_row).ok().filter(|r| *r < input.len());
            return Err(match (call, row, e) {
                (Call::Parse | Call::Cast(_), Some(row), CallError::Plugin { message, .. }) => {
                    TypeError::InvalidInput(ParseError {
                        row,
                        reason: message,
                    })
                }
                (_, _, e) => TypeError::Failed(e.to_string()),
            });
        }
        import_result(out_array, &out_schema, Some(expected), Some(input.len())).map_err(|reason| {
            TypeError::Failed(
                CallError::InvalidResult {
                    plugin: self.plugin.name().to_string(),
                    function,
                    reason,
                }
                .to_string(),
            )
        })
    }
}

impl CustomType for NativeDataType {
    fn name(&self) -> &str {
        &self.decl().name
    }

    fn aliases(&self) -> Vec<String> {
        self.decl().aliases.clone()
    }

    fn description(&self) -> &str {
        &self.decl().description
    }

    fn storage_type(&self) -> DataType {
        self.decl().storage.clone()
    }

    fn ordering(&self) -> TypeOrdering {
        self.decl().ordering
    }

    fn parse(&self, input: &StringArray) -> Result<ArrayRef, TypeError> {
        let input: ArrayRef = Arc::new(input.clone());
        self.run(Call::Parse, &input, &self.decl().storage)
    }

    fn format(&self, values: &ArrayRef) -> Result<StringArray, String> {
        let out = self
            .run(Call::Format, values, &DataType::Utf8)
            .map_err(|e| e.to_string())?;
        out.as_any()
            .downcast_ref::<StringArray>()
            .cloned()
            .ok_or_else(|| "format returned no Utf8 array".to_string())
    }

    fn casts(&self) -> Vec<Cast> {
        self.decl().casts.clone()
    }

    fn cast(&self, index: usize, values: &ArrayRef) -> Result<ArrayRef, TypeError> {
        let decl = self.decl();
        let cast = decl
            .casts
            .get(index)
            .ok_or_else(|| TypeError::Failed(format!("type {} has no cast #{index}", decl.name)))?;
        let (from, to) = match cast.direction {
            CastDirection::IntoType => (&cast.other, &decl.storage),
            CastDirection::FromType => (&decl.storage, &cast.other),
        };
        if values.data_type() != from {
            return Err(TypeError::Failed(format!(
                "{}: cast #{index} reads {from}, not {}",
                decl.name,
                values.data_type()
            )));
        }
        self.run(Call::Cast(index), values, to)
    }

    fn sort_key(&self, values: &ArrayRef) -> Result<BinaryArray, String> {
        let out = self
            .run(Call::SortKey, values, &DataType::Binary)
            .map_err(|e| e.to_string())?;
        out.as_any()
            .downcast_ref::<BinaryArray>()
            .cloned()
            .ok_or_else(|| "sort_key returned no Binary array".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phantomdb_plugin_abi::{FFI_ArrowArray as AbiArray, FFI_ArrowSchema as AbiSchema};

    /// A type descriptor as ABI 1.5 laid it out (before `casts`).
    #[repr(C)]
    struct Descriptor15 {
        struct_size: usize,
        name: *const c_char,
        description: *const c_char,
        aliases: *const *const c_char,
        num_aliases: usize,
        storage_format: *const c_char,
        ordering: u32,
    }

    unsafe extern "C" fn unused(
        _: usize,
        _: *mut AbiArray,
        _: *const AbiSchema,
        _: *mut AbiArray,
        _: *mut AbiSchema,
        _: phantomdb_plugin_abi::OutError,
    ) -> phantomdb_plugin_abi::Status {
        phantomdb_plugin_abi::Status::ERROR
    }

    unsafe extern "C" fn unused_parse(
        _: usize,
        _: *mut AbiArray,
        _: *const AbiSchema,
        _: *mut AbiArray,
        _: *mut AbiSchema,
        _: *mut i64,
        _: phantomdb_plugin_abi::OutError,
    ) -> phantomdb_plugin_abi::Status {
        phantomdb_plugin_abi::Status::ERROR
    }

    fn table(descriptors: *const TypeDescriptor, struct_size: usize) -> TypesInterface {
        TypesInterface {
            struct_size,
            num_types: 1,
            types: descriptors,
            parse: unused_parse,
            format: unused,
            sort_key: unused,
            cast: None,
        }
    }

    #[test]
    fn a_table_of_abi_1_5_reads_without_casts() {
        assert_eq!(
            TYPE_DESCRIPTOR_SIZE_1_5,
            std::mem::size_of::<Descriptor15>()
        );
        let descriptors = [Descriptor15 {
            struct_size: std::mem::size_of::<Descriptor15>(),
            name: c"old".as_ptr(),
            description: c"a type of ABI 1.5".as_ptr(),
            aliases: std::ptr::null(),
            num_aliases: 0,
            storage_format: c"i".as_ptr(),
            ordering: type_ordering::STORAGE,
        }];
        let iface = table(
            descriptors.as_ptr() as *const TypeDescriptor,
            TYPES_INTERFACE_SIZE_1_5,
        );
        let types = read_types(&iface).expect("a 1.5 table loads");
        assert_eq!(types.len(), 1);
        assert_eq!(types[0].name, "old");
        assert_eq!(types[0].storage, DataType::Int32);
        assert!(types[0].casts.is_empty());
    }

    #[test]
    fn casts_are_read_and_checked() {
        let cast = |format: &'static std::ffi::CStr, direction| CastDescriptor {
            struct_size: std::mem::size_of::<CastDescriptor>(),
            direction,
            context: cast_context::ASSIGNMENT,
            other_format: format.as_ptr(),
        };
        let descriptor = |casts: &[CastDescriptor]| TypeDescriptor {
            struct_size: std::mem::size_of::<TypeDescriptor>(),
            name: c"new".as_ptr(),
            description: c"".as_ptr(),
            aliases: std::ptr::null(),
            num_aliases: 0,
            storage_format: c"i".as_ptr(),
            ordering: type_ordering::STORAGE,
            casts: casts.as_ptr(),
            num_casts: casts.len(),
        };
        let read = |casts: &[CastDescriptor], with_function: bool| {
            let descriptors = [descriptor(casts)];
            let mut iface = table(descriptors.as_ptr(), std::mem::size_of::<TypesInterface>());
            if with_function {
                iface.cast = Some(unused_cast);
            }
            read_types(&iface)
        };
        let good = [
            cast(c"l", cast_direction::INTO_TYPE),
            cast(c"l", cast_direction::FROM_TYPE),
        ];
        let types = read(&good, true).expect("two casts load");
        assert_eq!(types[0].casts.len(), 2);
        assert_eq!(types[0].casts[0].direction, CastDirection::IntoType);
        assert_eq!(types[0].casts[1].other, DataType::Int64);
        for (casts, with_function, expected) in [
            (&good[..], false, "no cast function"),
            (&[cast(c"l", 9)][..], true, "unknown direction 9"),
            (
                &[cast(c"u", cast_direction::INTO_TYPE)][..],
                true,
                "text cast",
            ),
            (
                &[cast(c"+l", cast_direction::INTO_TYPE)][..],
                true,
                "cast #0 type",
            ),
            (
                &[
                    cast(c"l", cast_direction::INTO_TYPE),
                    cast(c"l", cast_direction::INTO_TYPE),
                ][..],
                true,
                "repeats",
            ),
        ] {
            let err = read(casts, with_function).expect_err(expected);
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[allow(clippy::too_many_arguments)]
    unsafe extern "C" fn unused_cast(
        _: usize,
        _: usize,
        _: *mut AbiArray,
        _: *const AbiSchema,
        _: *mut AbiArray,
        _: *mut AbiSchema,
        _: *mut i64,
        _: phantomdb_plugin_abi::OutError,
    ) -> phantomdb_plugin_abi::Status {
        phantomdb_plugin_abi::Status::ERROR
    }
}
