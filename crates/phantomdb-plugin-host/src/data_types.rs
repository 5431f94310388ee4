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
    type_ordering, TypeDescriptor, TypesInterface, TYPES_INTERFACE_V1, TYPES_INTERFACE_V1_C,
};
use phantomdb_plugin_sdk::data_type::{CustomType, ParseError, TypeError, TypeOrdering};

use crate::ffi::{c_str, import_result};
use crate::{CallError, LoadedPlugin};

const MAX_TYPES: usize = 1_000;
const MAX_ALIASES: usize = 100;

/// A type as declared by a plugin.
#[derive(Debug, Clone)]
pub(crate) struct TypeDecl {
    name: String,
    description: String,
    aliases: Vec<String>,
    storage: DataType,
    ordering: TypeOrdering,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// The storage type a format string names (types without children only).
fn storage_type(format: &str) -> Result<DataType, String> {
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
    if iface.struct_size < std::mem::size_of::<TypesInterface>() {
        return Err(format!(
            "`{TYPES_INTERFACE_V1}` table is {} bytes, expected at least {}",
            iface.struct_size,
            std::mem::size_of::<TypesInterface>()
        ));
    }
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
            if d.struct_size < std::mem::size_of::<TypeDescriptor>() {
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
        types.push(TypeDecl {
            name,
            description,
            aliases,
            storage,
            ordering,
        });
    }
    Ok((Some(iface), types))
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
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Self::Parse => "parse",
            Self::Format => "format",
            Self::SortKey => "sort_key",
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
            }
        };
        if let Err(e) = self.plugin.check_status(status, err, &function) {
            let row = usize::try_from(bad_row).ok().filter(|r| *r < input.len());
            return Err(match (call, row, e) {
                (Call::Parse, Some(row), CallError::Plugin { message, .. }) => {
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
