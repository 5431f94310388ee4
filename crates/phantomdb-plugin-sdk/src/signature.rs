//! Function signatures: [`ValueType`] (the type of an argument, a result or an aggregate's
//! state: any Arrow type with its field metadata, or a custom type by name) and [`Signature`].
//!
//! The SDK declares them through `phantomdb.functions/2` as Arrow C schemas, and also through
//! `phantomdb.functions/1` (type codes) for hosts before ABI 1.7 when every type has a code.

use std::collections::HashMap;

use arrow_schema::{DataType, Field};
use phantomdb_plugin_abi::{TypeCode, Volatility, CUSTOM_TYPE_METADATA_KEY};

/// The type of a function's argument, result or aggregate state: an Arrow data type and the
/// field metadata that travels with it (an Arrow extension type's `ARROW:extension:name`, or
/// a PhantomDB custom type's name, see [`ValueType::custom`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueType {
    /// The Arrow data type values arrive and leave as.
    pub data_type: DataType,
    /// Field metadata (empty for a plain Arrow type).
    pub metadata: HashMap<String, String>,
}

impl ValueType {
    /// A plain Arrow type (any: decimals, lists, structs, fixed-size binary...).
    pub fn arrow(data_type: DataType) -> Self {
        Self {
            data_type,
            metadata: HashMap::new(),
        }
    }

    /// The custom type `name` (from this or another plugin), whose values are stored as
    /// `storage`: arguments arrive as storage values (a text argument is parsed by the type
    /// first), and a result of this type is shown and compared as the type.
    pub fn custom(name: &str, storage: DataType) -> Self {
        Self::arrow(storage).with_metadata(CUSTOM_TYPE_METADATA_KEY, &name.to_ascii_lowercase())
    }

    /// Adds one field metadata entry (e.g. `ARROW:extension:name`).
    pub fn with_metadata(mut self, key: &str, value: &str) -> Self {
        self.metadata.insert(key.to_string(), value.to_string());
        self
    }

    /// The custom type's name, when this is one.
    pub fn custom_name(&self) -> Option<&str> {
        self.metadata
            .get(CUSTOM_TYPE_METADATA_KEY)
            .map(String::as_str)
    }

    /// The `phantomdb.functions/1` code, for a plain type that has one.
    pub fn code(&self) -> Option<TypeCode> {
        if self.metadata.is_empty() {
            TypeCode::from_data_type(&self.data_type)
        } else {
            None
        }
    }

    /// The type as a field (named `name`, nullable), as it is declared through the ABI.
    pub fn field(&self, name: &str) -> Field {
        Field::new(name, self.data_type.clone(), true).with_metadata(self.metadata.clone())
    }

    /// The type a declared field describes (the inverse of [`ValueType::field`]).
    pub fn of_field(field: &Field) -> Self {
        Self {
            data_type: field.data_type().clone(),
            metadata: field.metadata().clone(),
        }
    }
}

impl From<TypeCode> for ValueType {
    fn from(code: TypeCode) -> Self {
        Self::arrow(code.to_data_type())
    }
}

impl From<DataType> for ValueType {
    fn from(data_type: DataType) -> Self {
        Self::arrow(data_type)
    }
}

impl std::fmt::Display for ValueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.custom_name() {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "{}", self.data_type),
        }
    }
}

/// Argument and return types of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Declared argument types.
    pub args: Vec<ValueType>,
    /// When true the last argument type may repeat.
    pub variadic: bool,
    /// Return type (ignored for table functions).
    pub return_type: ValueType,
    /// Volatility (default [`Volatility::Immutable`]).
    pub volatility: Volatility,
}

impl Signature {
    /// Fixed argument types, immutable. Types are [`TypeCode`]s, Arrow [`DataType`]s or
    /// [`ValueType`]s (e.g. a custom type).
    pub fn exact<T: Into<ValueType>>(args: Vec<T>, return_type: impl Into<ValueType>) -> Self {
        Self {
            args: args.into_iter().map(Into::into).collect(),
            variadic: false,
            return_type: return_type.into(),
            volatility: Volatility::Immutable,
        }
    }

    /// No arguments, immutable.
    pub fn nullary(return_type: impl Into<ValueType>) -> Self {
        Self::exact(Vec::<ValueType>::new(), return_type)
    }

    /// Like [`Signature::exact`], but the last argument type may repeat.
    pub fn variadic<T: Into<ValueType>>(args: Vec<T>, return_type: impl Into<ValueType>) -> Self {
        Self {
            variadic: true,
            ..Self::exact(args, return_type)
        }
    }

    /// Argument types of a table function (whose output schema is dynamic).
    pub fn table<T: Into<ValueType>>(args: Vec<T>) -> Self {
        Self::exact(args, TypeCode::Null)
    }

    /// Sets the volatility.
    pub fn with_volatility(mut self, volatility: Volatility) -> Self {
        self.volatility = volatility;
        self
    }

    /// Whether `n` arguments match the arity.
    pub fn accepts_arity(&self, n: usize) -> bool {
        if self.variadic {
            n >= self.args.len()
        } else {
            n == self.args.len()
        }
    }

    /// Declared type of argument `i` (repeating the last one for variadic signatures).
    pub fn arg_type(&self, i: usize) -> Option<&ValueType> {
        match self.args.get(i) {
            Some(t) => Some(t),
            None if self.variadic => self.args.last(),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_arity() {
        let s = Signature::variadic(vec![TypeCode::Int64, TypeCode::Utf8], TypeCode::Utf8);
        assert!(!s.accepts_arity(1));
        assert!(s.accepts_arity(4));
        assert_eq!(s.arg_type(3), Some(&ValueType::from(TypeCode::Utf8)));
        let e = Signature::exact(vec![TypeCode::Int64], TypeCode::Int64);
        assert!(!e.accepts_arity(2));
        assert_eq!(e.arg_type(1), None);
        assert!(Signature::nullary(TypeCode::Int64).accepts_arity(0));
    }

    #[test]
    fn value_types_have_codes_only_when_plain() {
        assert_eq!(
            ValueType::from(TypeCode::Int64).code(),
            Some(TypeCode::Int64)
        );
        assert_eq!(ValueType::arrow(DataType::Decimal128(10, 2)).code(), None);
        let uuid = ValueType::custom("UUID", DataType::FixedSizeBinary(16));
        assert_eq!(uuid.custom_name(), Some("uuid"));
        assert_eq!(uuid.code(), None);
        assert_eq!(ValueType::of_field(&uuid.field("a")), uuid);
        assert_eq!(uuid.to_string(), "uuid");
        let binary_extension =
            ValueType::arrow(DataType::Binary).with_metadata("ARROW:extension:name", "x.y");
        assert_eq!(binary_extension.code(), None);
    }
}
