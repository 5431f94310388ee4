//! The functions typed values go through: `__phantomdb_parse_<type>` (text → storage, the
//! assignment and explicit casts from text) and `__phantomdb_format_<type>` (storage → text,
//! casts to text and every query's results), and `__phantomdb_as_<type>` (the value unchanged,
//! typed again where DataFusion's expressions dropped the type) and `__phantomdb_sort_key_<type>`
//! (storage → Binary whose byte order is the type's order, for sort-key ordered types), and
//! `__phantomdb_cast<i>_<type>` (the type's declared cast `i`, to or from another type). Each
//! batch is one call into the plugin.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use phantomdb_plugin_sdk::data_type::{CastDirection, TypeError};

use super::{invalid_input, TypeInfo};
use crate::error::{Error, SqlState};

/// Which way a function converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Direction {
    Parse,
    Format,
    /// The storage value unchanged, typed again (where DataFusion dropped the metadata).
    Retag,
    /// The order-preserving sort key (Binary) of a sort-key ordered type's value.
    SortKey,
    /// One of the type's declared casts (its index).
    Cast(usize),
}

/// A parse or format function of one type.
#[derive(Debug)]
struct TypeFunction {
    name: String,
    info: TypeInfo,
    direction: Direction,
    signature: Signature,
}

impl PartialEq for TypeFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.info.plugin == other.info.plugin
    }
}
impl Eq for TypeFunction {}
impl Hash for TypeFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.info.plugin.hash(state);
    }
}

fn function(info: &TypeInfo, direction: Direction) -> Arc<ScalarUDF> {
    let verb = match direction {
        Direction::Parse => "parse".to_string(),
        Direction::Format => "format".to_string(),
        Direction::Retag => "as".to_string(),
        Direction::SortKey => "sort_key".to_string(),
        Direction::Cast(i) => format!("cast{i}"),
    };
    Arc::new(ScalarUDF::new_from_impl(TypeFunction {
        name: format!("__phantomdb_{verb}_{}", info.name),
        info: info.clone(),
        direction,
        signature: Signature::any(1, Volatility::Immutable),
    }))
}

/// `expr` (text) parsed into `info`'s storage.
pub(crate) fn parse(info: &TypeInfo, expr: Expr) -> Expr {
    function(info, Direction::Parse).call(vec![expr])
}

/// `expr` (storage of `info`, whose type DataFusion lost) typed as `info` again.
pub(crate) fn retag(info: &TypeInfo, expr: Expr) -> Expr {
    function(info, Direction::Retag).call(vec![expr])
}

/// The sort key of `expr` (of the sort-key ordered type `info`): Binary, ordered as the type.
pub(crate) fn sort_key(info: &TypeInfo, expr: Expr) -> Expr {
    function(info, Direction::SortKey).call(vec![expr])
}

/// `expr` through `info`'s cast `index` (`expr` has the cast's source type).
pub(crate) fn cast_with(info: &TypeInfo, index: usize, expr: Expr) -> Expr {
    function(info, Direction::Cast(index)).call(vec![expr])
}

/// `expr` (of type `info`) formatted as text.
pub(crate) fn format(info: &TypeInfo, expr: Expr) -> Expr {
    function(info, Direction::Format).call(vec![expr])
}

fn failed(info: &TypeInfo, message: String) -> datafusion::error::DataFusionError {
    Error::Plugin(
        SqlState::ExternalRoutineException,
        format!("type {}: {message}", info.name),
    )
    .into()
}

/// Text values parsed into `info`'s storage (a bad value is 22P02 naming it).
pub(crate) fn parse_values(info: &TypeInfo, input: &ArrayRef) -> crate::error::Result<ArrayRef> {
    let text = cast(input, &DataType::Utf8)?;
    let text = text.as_any().downcast_ref::<StringArray>().ok_or_else(|| {
        Error::Plugin(
            SqlState::ExternalRoutineException,
            format!("type {}: text input expected", info.name),
        )
    })?;
    info.implementation.parse(text).map_err(|e| match e {
        TypeError::InvalidInput(bad) => {
            let value = text.is_valid(bad.row).then(|| text.value(bad.row));
            invalid_input(&info.name, value.unwrap_or(""), &bad.reason)
        }
        TypeError::Failed(m) => Error::Plugin(
            SqlState::ExternalRoutineException,
            format!("type {}: {m}", info.name),
        ),
    })
}

impl TypeFunction {
    fn parse_array(&self, input: ArrayRef) -> Result<ArrayRef> {
        Ok(parse_values(&self.info, &input)?)
    }

    fn format_array(&self, input: ArrayRef) -> Result<ArrayRef> {
        if input.data_type() != &self.info.storage {
            return Err(failed(
                &self.info,
                format!("cannot format a value of type {}", input.data_type()),
            ));
        }
        let out = self
            .info
            .implementation
            .format(&input)
            .map_err(|m| failed(&self.info, m))?;
        Ok(Arc::new(out))
    }

    fn sort_key_array(&self, input: ArrayRef) -> Result<ArrayRef> {
        Ok(Arc::new(sort_keys(&self.info, &input)?))
    }

    /// Runs cast `index`; a value it refuses is 22P02 (into the type) or 22000 (out of it),
    /// naming the value.
    fn cast_array(&self, index: usize, input: ArrayRef) -> Result<ArrayRef> {
        let info = &self.info;
        let Some(cast) = info.casts.get(index) else {
            return Err(failed(info, format!("no cast #{index}")));
        };
        let from = match cast.direction {
            CastDirection::IntoType => &cast.other,
            CastDirection::FromType => &info.storage,
        };
        let input = if input.data_type() == from {
            input
        } else {
            arrow::compute::cast(&input, from)?
        };
        info.implementation
            .cast(index, &input)
            .map_err(|e| match e {
                TypeError::InvalidInput(bad) if bad.row < input.len() => {
                    let value = arrow::util::display::array_value_to_string(&input, bad.row)
                        .unwrap_or_default();
                    match cast.direction {
                        CastDirection::IntoType => {
                            invalid_input(&info.name, &value, &bad.reason).into()
                        }
                        CastDirection::FromType => Error::Data(
                            SqlState::DataException,
                            format!(
                                "cannot cast {} value \"{}\" to {}: {}",
                                info.name,
                                super::display_value(&info.field("", true), &input, bad.row),
                                cast.other,
                                bad.reason
                            ),
                        )
                        .into(),
                    }
                }
                TypeError::InvalidInput(bad) => failed(info, bad.reason),
                TypeError::Failed(m) => failed(info, m),
            })
    }

    /// The type cast `index` returns.
    fn cast_target(&self, index: usize) -> Result<&DataType> {
        match self.info.casts.get(index) {
            Some(c) if c.direction == CastDirection::IntoType => Ok(&self.info.storage),
            Some(c) => Ok(&c.other),
            None => Err(failed(&self.info, format!("no cast #{index}"))),
        }
    }
}

/// The sort keys of `values` (storage of the sort-key ordered type `info`).
pub(crate) fn sort_keys(
    info: &TypeInfo,
    values: &ArrayRef,
) -> crate::error::Result<arrow::array::BinaryArray> {
    if values.data_type() != &info.storage {
        return Err(Error::Plugin(
            SqlState::ExternalRoutineException,
            format!(
                "type {}: no sort key for a value of type {}",
                info.name,
                values.data_type()
            ),
        ));
    }
    info.implementation.sort_key(values).map_err(|m| {
        Error::Plugin(
            SqlState::ExternalRoutineException,
            format!("type {}: {m}", info.name),
        )
    })
}

impl ScalarUDFImpl for TypeFunction {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.direction {
            Direction::Parse | Direction::Retag => self.info.storage.clone(),
            Direction::Format => DataType::Utf8,
            Direction::SortKey => DataType::Binary,
            Direction::Cast(i) => self.cast_target(i)?.clone(),
        })
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
        Ok(Arc::new(match self.direction {
            Direction::Parse | Direction::Retag => self.info.field(self.name(), nullable),
            Direction::Format => Field::new(self.name(), DataType::Utf8, nullable),
            Direction::SortKey => Field::new(self.name(), DataType::Binary, nullable),
            Direction::Cast(i) => match self.info.casts.get(i) {
                Some(c) if c.direction == CastDirection::IntoType => {
                    self.info.field(self.name(), nullable)
                }
                _ => Field::new(self.name(), self.cast_target(i)?.clone(), nullable),
            },
        }))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let Some(input) = args.args.into_iter().next() else {
            return Err(failed(&self.info, "one argument expected".into()));
        };
        let input = input.into_array(if scalar { 1 } else { rows })?;
        let out = match self.direction {
            Direction::Parse => self.parse_array(input)?,
            Direction::Format => self.format_array(input)?,
            Direction::SortKey => self.sort_key_array(input)?,
            Direction::Cast(i) => self.cast_array(i, input)?,
            Direction::Retag if input.data_type() == &self.info.storage => input,
            Direction::Retag => {
                return Err(failed(
                    &self.info,
                    format!("a value of type {} is not its storage", input.data_type()),
                ))
            }
        };
        Ok(if scalar {
            ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}
