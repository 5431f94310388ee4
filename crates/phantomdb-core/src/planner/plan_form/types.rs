//! Arrow data types as format strings and DataFusion scalars as typed literals, both ways.

use arrow::datatypes::DataType;
use arrow::ffi::FFI_ArrowSchema;
use datafusion::scalar::ScalarValue;
use phantomdb_plugin_sdk::plan::Literal;
use serde_json::Value;

/// The Arrow format string of a type without children; `None` for nested types (lists,
/// structs, maps, unions, dictionaries), which the form does not spell.
pub(super) fn format_of(t: &DataType) -> Option<String> {
    if t.is_nested() || matches!(t, DataType::Dictionary(..) | DataType::RunEndEncoded(..)) {
        return None;
    }
    let ffi = FFI_ArrowSchema::try_from(t).ok()?;
    Some(ffi.format().to_string())
}

/// The type a format string names.
pub(super) fn type_of(format: &str) -> Result<DataType, String> {
    let ffi = FFI_ArrowSchema::try_new(format, vec![], None)
        .map_err(|e| format!("type \"{format}\": {e}"))?;
    DataType::try_from(&ffi).map_err(|_| format!("unknown type \"{format}\""))
}

/// A scalar as a typed literal; `None` when the form cannot carry it exactly.
pub(super) fn literal_of(v: &ScalarValue) -> Option<Literal> {
    let data_type = format_of(&v.data_type())?;
    let value = if v.is_null() {
        Value::Null
    } else {
        match v {
            ScalarValue::Boolean(Some(b)) => Value::Bool(*b),
            ScalarValue::Int8(Some(i)) => (*i).into(),
            ScalarValue::Int16(Some(i)) => (*i).into(),
            ScalarValue::Int32(Some(i)) => (*i).into(),
            ScalarValue::Int64(Some(i)) => (*i).into(),
            ScalarValue::UInt8(Some(i)) => (*i).into(),
            ScalarValue::UInt16(Some(i)) => (*i).into(),
            ScalarValue::UInt32(Some(i)) => (*i).into(),
            ScalarValue::UInt64(Some(i)) => (*i).into(),
            ScalarValue::Float32(Some(f)) => float(*f as f64),
            ScalarValue::Float64(Some(f)) => float(*f),
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)) => Value::String(s.clone()),
            other => {
                // Decimals, dates, times, timestamps, intervals: their text, if it reads back.
                let text = other.to_string();
                let back = ScalarValue::try_from_string(text.clone(), &other.data_type()).ok()?;
                if &back != other {
                    return None;
                }
                Value::String(text)
            }
        }
    };
    Some(Literal { data_type, value })
}

fn float(f: f64) -> Value {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

/// The scalar a typed literal stands for.
pub(super) fn scalar_of(l: &Literal) -> Result<ScalarValue, String> {
    let t = type_of(&l.data_type)?;
    let bad = || {
        format!(
            "literal {} is not a value of type \"{}\"",
            l.value, l.data_type
        )
    };
    match &l.value {
        Value::Null => ScalarValue::try_from(&t).map_err(|e| e.to_string()),
        Value::Bool(b) => ScalarValue::Boolean(Some(b.to_owned()))
            .cast_to(&t)
            .map_err(|_| bad()),
        Value::Number(n) => {
            let s = if let Some(i) = n.as_i64() {
                ScalarValue::Int64(Some(i))
            } else if let Some(u) = n.as_u64() {
                ScalarValue::UInt64(Some(u))
            } else {
                ScalarValue::Float64(n.as_f64())
            };
            s.cast_to(&t).map_err(|_| bad())
        }
        Value::String(s) => match (&t, s.as_str()) {
            (DataType::Float32 | DataType::Float64, "NaN") => ScalarValue::Float64(Some(f64::NAN))
                .cast_to(&t)
                .map_err(|_| bad()),
            (DataType::Float32 | DataType::Float64, "inf") => {
                ScalarValue::Float64(Some(f64::INFINITY))
                    .cast_to(&t)
                    .map_err(|_| bad())
            }
            (DataType::Float32 | DataType::Float64, "-inf") => {
                ScalarValue::Float64(Some(f64::NEG_INFINITY))
                    .cast_to(&t)
                    .map_err(|_| bad())
            }
            _ => ScalarValue::try_from_string(s.clone(), &t).map_err(|_| bad()),
        },
        _ => Err(bad()),
    }
}
