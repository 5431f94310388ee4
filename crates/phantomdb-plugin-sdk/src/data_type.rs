//! Custom data types (`phantomdb.types/1`): a plugin adds a column type with its own text
//! input and output and its own order, by implementing [`CustomType`] and registering it with
//! [`Registrar::data_types`](crate::Registrar::data_types).
//!
//! Values are stored as an Arrow type of the plugin's choice ([`CustomType::storage_type`]);
//! equality and hashing are those of the storage. If the storage order (bytes compared
//! lexicographically, numbers numerically) is the type's order, say
//! [`TypeOrdering::Storage`]: every comparison, `ORDER BY`, `min`/`max` and index then use it
//! directly. Otherwise say [`TypeOrdering::SortKey`] and implement [`CustomType::sort_key`].
//!
//! Every call works on a whole batch and may be called from many threads at once.

use arrow_array::{ArrayRef, BinaryArray, StringArray};
use arrow_schema::DataType;

/// How values of a custom type are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeOrdering {
    /// The storage type's own order is the type's order.
    Storage,
    /// The byte order of [`CustomType::sort_key`]'s keys is the type's order.
    SortKey,
}

impl TypeOrdering {
    /// The name `phantomdb_types()` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Storage => "storage",
            Self::SortKey => "sort_key",
        }
    }
}

/// Which way a [`Cast`] converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CastDirection {
    /// From [`Cast::other`] into the custom type (the result has the storage type).
    IntoType,
    /// From the custom type (its storage type) into [`Cast::other`].
    FromType,
}

/// Where a [`Cast`] applies (PostgreSQL's cast contexts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CastContext {
    /// Only where the SQL asks for it: `CAST(x AS t)`, `x::t`.
    Explicit,
    /// Also when a value is stored into a column of the target type (`INSERT`, `UPDATE`).
    Assignment,
}

/// A cast a custom type provides besides text (text in and out are
/// [`CustomType::parse`] and [`CustomType::format`]). The host calls
/// [`CustomType::cast`] with the cast's index in [`CustomType::casts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cast {
    /// Which way it converts.
    pub direction: CastDirection,
    /// The other type (a type without children, e.g. `Int64`).
    pub other: DataType,
    /// Where it applies.
    pub context: CastContext,
}

/// A value that is not valid input for the type: which row and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Row of the input array.
    pub row: usize,
    /// Why (the host words the message the user sees around it).
    pub reason: String,
}

/// Why a [`CustomType`] call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeError {
    /// A value was not valid input (SQLSTATE 22P02).
    InvalidInput(ParseError),
    /// Anything else.
    Failed(String),
}

impl std::fmt::Display for TypeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidInput(e) => write!(f, "row {}: {}", e.row, e.reason),
            Self::Failed(m) => f.write_str(m),
        }
    }
}

impl From<String> for TypeError {
    fn from(message: String) -> Self {
        Self::Failed(message)
    }
}

/// A column type added by a plugin.
pub trait CustomType: Send + Sync + 'static {
    /// SQL name (lower case), e.g. `semver`.
    fn name(&self) -> &str;
    /// Further SQL names (lower case).
    fn aliases(&self) -> Vec<String> {
        Vec::new()
    }
    /// One-line description.
    fn description(&self) -> &str {
        ""
    }
    /// The Arrow type values are stored as (a type without children: binary, fixed-size
    /// binary, text, integers...).
    fn storage_type(&self) -> DataType;
    /// How values are ordered.
    fn ordering(&self) -> TypeOrdering {
        TypeOrdering::Storage
    }
    /// Text to storage: an array of the storage type with one row per input row (nulls stay
    /// null). A bad value is [`TypeError::InvalidInput`] naming its row.
    fn parse(&self, input: &StringArray) -> Result<ArrayRef, TypeError>;
    /// Storage to text: one row per input row (nulls stay null).
    fn format(&self, values: &ArrayRef) -> Result<StringArray, String>;
    /// Order-preserving keys, for [`TypeOrdering::SortKey`] types.
    fn sort_key(&self, _values: &ArrayRef) -> Result<BinaryArray, String> {
        Err(format!("type {} has no sort key function", self.name()))
    }

    /// The casts the type provides besides text; asked once, when the plugin loads.
    fn casts(&self) -> Vec<Cast> {
        Vec::new()
    }

    /// Runs cast `index` of [`CustomType::casts`] over `values` (of its source type: the
    /// other type, or the storage type), giving one row of its target type per input row
    /// (nulls stay null). A value it cannot convert is [`TypeError::InvalidInput`].
    fn cast(&self, index: usize, _values: &ArrayRef) -> Result<ArrayRef, TypeError> {
        Err(TypeError::Failed(format!(
            "type {} has no cast #{index}",
            self.name()
        )))
    }
}
