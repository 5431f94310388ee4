//! Arrow types as PostgreSQL types: the OID a column is described with, and its values in
//! PostgreSQL's text and binary formats; parameters from the wire back to Arrow values.
//!
//! Types PostgreSQL has no equivalent for (structs, maps, custom data types) travel as text.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::api::Type;
use pgwire::messages::data::DataRow;
use phantomdb::arrow::array::{Array, ArrayRef, RecordBatch};
use phantomdb::arrow::datatypes::{DataType, Field, Schema};
use phantomdb::arrow::util::display::{ArrayFormatter, FormatOptions};
use phantomdb::datafusion::common::ScalarValue;
use phantomdb::pg_types::{data_type_of_pg, pg_type_of};

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from the Unix epoch to PostgreSQL's.
const PG_EPOCH_DAYS: i32 = 10_957;

/// The PostgreSQL type an Arrow type is sent as (the core's mapping, which `pg_attribute`
/// reports too).
pub(crate) fn pg_type(data_type: &DataType) -> Type {
    Type::from_oid(pg_type_of(data_type).oid).unwrap_or(Type::TEXT)
}

/// The Arrow type a parameter of PostgreSQL type `ty` is read as.
pub(crate) fn arrow_type(ty: &Type) -> DataType {
    data_type_of_pg(ty.oid()).unwrap_or(DataType::Utf8)
}

/// Row descriptions for a schema, each column in the format the client asked for.
pub(crate) fn field_infos(
    schema: &Schema,
    format: impl Fn(usize) -> FieldFormat,
) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| field_info(f, format(i)))
        .collect()
}

fn field_info(field: &Field, format: FieldFormat) -> FieldInfo {
    let pg = pg_type_of(field.data_type());
    let ty = Type::from_oid(pg.oid).unwrap_or(Type::TEXT);
    FieldInfo::new(field.name().clone(), None, None, ty, format)
        .with_type_size(pg.len)
        .with_type_modifier(pg.typmod)
}

/// Encodes a batch as `DataRow` messages.
pub(crate) fn encode_batch(
    batch: &RecordBatch,
    formats: &[FieldFormat],
) -> Result<Vec<DataRow>, String> {
    let columns: Vec<ColumnEncoder> = batch
        .columns()
        .iter()
        .enumerate()
        .map(|(i, c)| ColumnEncoder::new(c, formats.get(i).copied().unwrap_or(FieldFormat::Text)))
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::with_capacity(batch.num_rows());
    let mut buf = BytesMut::new();
    for row in 0..batch.num_rows() {
        for column in &columns {
            column.encode(row, &mut buf)?;
        }
        rows.push(DataRow::new(buf.split(), columns.len() as i16));
    }
    Ok(rows)
}

/// One column's values in one wire format.
struct ColumnEncoder<'a> {
    array: &'a ArrayRef,
    /// Which values are NULL (`logical_nulls`: a `Null`-typed column has no null buffer).
    nulls: Option<phantomdb::arrow::buffer::NullBuffer>,
    binary: bool,
    /// Arrow's formatter for the text of types PostgreSQL writes the same way.
    text: Option<ArrayFormatter<'a>>,
}

/// How Arrow writes dates and times as text, in PostgreSQL's forms.
fn text_options() -> FormatOptions<'static> {
    FormatOptions::default()
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"))
        .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.f%:z"))
        .with_date_format(Some("%Y-%m-%d"))
        .with_time_format(Some("%H:%M:%S%.f"))
}

impl<'a> ColumnEncoder<'a> {
    fn new(array: &'a ArrayRef, format: FieldFormat) -> Result<Self, String> {
        let binary = format == FieldFormat::Binary;
        let own_text = matches!(
            array.data_type(),
            DataType::Boolean
                | DataType::Float16
                | DataType::Float32
                | DataType::Float64
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
                | DataType::FixedSizeBinary(_)
                | DataType::Interval(_)
                | DataType::List(_)
                | DataType::LargeList(_)
                | DataType::FixedSizeList(..)
        );
        let text = if binary || own_text {
            None
        } else {
            Some(
                ArrayFormatter::try_new(array.as_ref(), &text_options())
                    .map_err(|e| e.to_string())?,
            )
        };
        Ok(Self {
            nulls: array.logical_nulls(),
            array,
            binary,
            text,
        })
    }

    fn encode(&self, row: usize, out: &mut BytesMut) -> Result<(), String> {
        if self.nulls.as_ref().is_some_and(|n| n.is_null(row)) {
            out.put_i32(-1);
            return Ok(());
        }
        let at = out.len();
        out.put_i32(0);
        if let Some(f) = &self.text {
            use std::fmt::Write;
            let mut w = BytesWriter(out);
            write!(w, "{}", f.value(row)).map_err(|e| e.to_string())?;
        } else {
            let value = ScalarValue::try_from_array(self.array, row).map_err(|e| e.to_string())?;
            if self.binary {
                encode_binary(&value, out)?;
            } else {
                out.put_slice(text(&value).as_bytes());
            }
        }
        let len = (out.len() - at - 4) as i32;
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }
}

struct BytesWriter<'a>(&'a mut BytesMut);

impl std::fmt::Write for BytesWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

/// A value in PostgreSQL's text format.
pub(crate) fn text(value: &ScalarValue) -> String {
    match value {
        ScalarValue::Boolean(Some(b)) => if *b { "t" } else { "f" }.into(),
        ScalarValue::Float16(Some(v)) => float_text(v.to_f64()),
        ScalarValue::Float32(Some(v)) => float_text(*v as f64),
        ScalarValue::Float64(Some(v)) => float_text(*v),
        ScalarValue::Binary(Some(b))
        | ScalarValue::LargeBinary(Some(b))
        | ScalarValue::BinaryView(Some(b))
        | ScalarValue::FixedSizeBinary(_, Some(b)) => {
            let mut s = String::with_capacity(2 + b.len() * 2);
            s.push_str("\\x");
            for byte in b {
                s.push_str(&format!("{byte:02x}"));
            }
            s
        }
        ScalarValue::IntervalMonthDayNano(Some(v)) => {
            interval_text(v.months, v.days, v.nanoseconds / 1_000)
        }
        ScalarValue::IntervalDayTime(Some(v)) => {
            interval_text(0, v.days, v.milliseconds as i64 * 1_000)
        }
        ScalarValue::IntervalYearMonth(Some(m)) => interval_text(*m, 0, 0),
        ScalarValue::List(a) => list_text(a.value(0).as_ref()),
        ScalarValue::LargeList(a) => list_text(a.value(0).as_ref()),
        ScalarValue::FixedSizeList(a) => list_text(a.value(0).as_ref()),
        ScalarValue::Date32(Some(_))
        | ScalarValue::TimestampSecond(..)
        | ScalarValue::TimestampMillisecond(..)
        | ScalarValue::TimestampMicrosecond(..)
        | ScalarValue::TimestampNanosecond(..) => match value.to_array() {
            Ok(a) => ArrayFormatter::try_new(a.as_ref(), &text_options())
                .map(|f| f.value(0).to_string())
                .unwrap_or_else(|_| value.to_string()),
            Err(_) => value.to_string(),
        },
        other => other.to_string(),
    }
}

fn float_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{v}")
    }
}

/// PostgreSQL's `postgres` interval style: `1 year 2 mons 3 days 04:05:06.5`.
fn interval_text(months: i32, days: i32, micros: i64) -> String {
    let mut parts = Vec::new();
    let (years, mons) = (months / 12, months % 12);
    let unit = |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    if years != 0 {
        parts.push(unit(years as i64, "year", "years"));
    }
    if mons != 0 {
        parts.push(unit(mons as i64, "mon", "mons"));
    }
    if days != 0 {
        parts.push(unit(days as i64, "day", "days"));
    }
    if micros != 0 || parts.is_empty() {
        let sign = if micros < 0 { "-" } else { "" };
        let m = micros.unsigned_abs();
        let (h, rest) = (m / 3_600_000_000, m % 3_600_000_000);
        let (min, rest) = (rest / 60_000_000, rest % 60_000_000);
        let (s, us) = (rest / 1_000_000, rest % 1_000_000);
        let mut t = format!("{sign}{h:02}:{min:02}:{s:02}");
        if us != 0 {
            t.push_str(format!(".{us:06}").trim_end_matches('0'));
        }
        parts.push(t);
    }
    parts.join(" ")
}

/// A one-dimensional array literal: `{1,2,NULL}`, strings quoted where needed.
fn list_text(values: &dyn Array) -> String {
    let mut out = String::from("{");
    let nulls = values.logical_nulls();
    for i in 0..values.len() {
        if i > 0 {
            out.push(',');
        }
        if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
            out.push_str("NULL");
            continue;
        }
        let element = ScalarValue::try_from_array(values, i)
            .map(|v| text(&v))
            .unwrap_or_default();
        let plain = !element.is_empty()
            && !element.eq_ignore_ascii_case("null")
            && !element
                .chars()
                .any(|c| matches!(c, ',' | '{' | '}' | '"' | '\\') || c.is_whitespace());
        if plain {
            out.push_str(&element);
        } else {
            out.push('"');
            for c in element.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
    }
    out.push('}');
    out
}

/// A value in PostgreSQL's binary format for [`pg_type`] of its Arrow type.
fn encode_binary(value: &ScalarValue, out: &mut BytesMut) -> Result<(), String> {
    match value {
        ScalarValue::Boolean(Some(b)) => out.put_u8(*b as u8),
        ScalarValue::Int8(Some(v)) => out.put_i16(*v as i16),
        ScalarValue::Int16(Some(v)) => out.put_i16(*v),
        ScalarValue::UInt8(Some(v)) => out.put_i16(*v as i16),
        ScalarValue::Int32(Some(v)) => out.put_i32(*v),
        ScalarValue::UInt16(Some(v)) => out.put_i32(*v as i32),
        ScalarValue::Int64(Some(v)) => out.put_i64(*v),
        ScalarValue::UInt32(Some(v)) => out.put_u32(*v),
        ScalarValue::UInt64(Some(v)) => numeric_binary(&v.to_string(), out)?,
        ScalarValue::Decimal32(Some(_), ..)
        | ScalarValue::Decimal64(Some(_), ..)
        | ScalarValue::Decimal128(Some(_), ..)
        | ScalarValue::Decimal256(Some(_), ..) => numeric_binary(&value.to_string(), out)?,
        ScalarValue::DurationSecond(Some(v)) => interval_binary(v * 1_000_000, out),
        ScalarValue::DurationMillisecond(Some(v)) => interval_binary(v * 1_000, out),
        ScalarValue::DurationMicrosecond(Some(v)) => interval_binary(*v, out),
        ScalarValue::DurationNanosecond(Some(v)) => interval_binary(v / 1_000, out),
        ScalarValue::Dictionary(_, inner) => encode_binary(inner, out)?,
        ScalarValue::Float16(Some(v)) => out.put_f32(v.to_f32()),
        ScalarValue::Float32(Some(v)) => out.put_f32(*v),
        ScalarValue::Float64(Some(v)) => out.put_f64(*v),
        ScalarValue::Binary(Some(b))
        | ScalarValue::LargeBinary(Some(b))
        | ScalarValue::BinaryView(Some(b))
        | ScalarValue::FixedSizeBinary(_, Some(b)) => out.put_slice(b),
        ScalarValue::Date32(Some(d)) => out.put_i32(d - PG_EPOCH_DAYS),
        ScalarValue::Date64(Some(ms)) => out.put_i32((ms / 86_400_000) as i32 - PG_EPOCH_DAYS),
        ScalarValue::TimestampSecond(Some(v), _) => out.put_i64(v * 1_000_000 - PG_EPOCH_MICROS),
        ScalarValue::TimestampMillisecond(Some(v), _) => out.put_i64(v * 1_000 - PG_EPOCH_MICROS),
        ScalarValue::TimestampMicrosecond(Some(v), _) => out.put_i64(v - PG_EPOCH_MICROS),
        ScalarValue::TimestampNanosecond(Some(v), _) => {
            out.put_i64(v.div_euclid(1_000) - PG_EPOCH_MICROS)
        }
        ScalarValue::Time64Microsecond(Some(v)) => out.put_i64(*v),
        ScalarValue::Time64Nanosecond(Some(v)) => out.put_i64(v / 1_000),
        ScalarValue::Time32Millisecond(Some(v)) => out.put_i64(*v as i64 * 1_000),
        ScalarValue::Time32Second(Some(v)) => out.put_i64(*v as i64 * 1_000_000),
        ScalarValue::IntervalMonthDayNano(Some(v)) => {
            out.put_i64(v.nanoseconds / 1_000);
            out.put_i32(v.days);
            out.put_i32(v.months);
        }
        ScalarValue::IntervalDayTime(Some(v)) => {
            out.put_i64(v.milliseconds as i64 * 1_000);
            out.put_i32(v.days);
            out.put_i32(0);
        }
        ScalarValue::IntervalYearMonth(Some(m)) => {
            out.put_i64(0);
            out.put_i32(0);
            out.put_i32(*m);
        }
        ScalarValue::List(a) => array_binary(a.value(0).as_ref(), out)?,
        ScalarValue::LargeList(a) => array_binary(a.value(0).as_ref(), out)?,
        ScalarValue::FixedSizeList(a) => array_binary(a.value(0).as_ref(), out)?,
        other => out.put_slice(text(other).as_bytes()),
    }
    Ok(())
}

/// An interval of `micros` microseconds (no days or months).
fn interval_binary(micros: i64, out: &mut BytesMut) {
    out.put_i64(micros);
    out.put_i32(0);
    out.put_i32(0);
}

/// A one-dimensional array in PostgreSQL's binary array format.
fn array_binary(values: &dyn Array, out: &mut BytesMut) -> Result<(), String> {
    let element = pg_type(values.data_type());
    out.put_i32(1); // dimensions
    let nulls = values.logical_nulls();
    out.put_i32(nulls.as_ref().is_some_and(|n| n.null_count() > 0) as i32); // has nulls
    out.put_u32(element.oid());
    out.put_i32(values.len() as i32);
    out.put_i32(1); // lower bound
    for i in 0..values.len() {
        if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
            out.put_i32(-1);
            continue;
        }
        let v = ScalarValue::try_from_array(values, i).map_err(|e| e.to_string())?;
        let at = out.len();
        out.put_i32(0);
        encode_binary(&v, out)?;
        let len = (out.len() - at - 4) as i32;
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

/// PostgreSQL's binary `numeric` from decimal text (`-12.3400`): base-10000 digits.
fn numeric_binary(decimal: &str, out: &mut BytesMut) -> Result<(), String> {
    let (negative, digits) = match decimal.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, decimal),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if !int_part
        .chars()
        .chain(frac_part.chars())
        .all(|c| c.is_ascii_digit())
    {
        return Err(format!("invalid numeric {decimal:?}"));
    }
    let dscale = frac_part.len() as i16;
    // Pad the integer part on the left and the fraction on the right to whole groups of 4.
    let int_pad = (4 - int_part.len() % 4) % 4;
    let frac_pad = (4 - frac_part.len() % 4) % 4;
    let int_digits = format!("{}{int_part}", "0".repeat(int_pad));
    let frac_digits = format!("{frac_part}{}", "0".repeat(frac_pad));
    let group = |s: &str| -> Vec<i16> {
        s.as_bytes()
            .chunks(4)
            .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + (d - b'0') as i16))
            .collect()
    };
    let mut groups = group(&int_digits);
    let mut weight = groups.len() as i16 - 1;
    groups.extend(group(&frac_digits));
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    out.put_i16(groups.len() as i16);
    out.put_i16(weight);
    out.put_u16(if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    });
    out.put_i16(dscale);
    for g in groups {
        out.put_i16(g);
    }
    Ok(())
}

/// Decimal text from PostgreSQL's binary `numeric`.
fn numeric_from_binary(b: &[u8]) -> Result<String, String> {
    let bad = || "invalid binary numeric".to_string();
    let word = |i: usize| -> Result<i16, String> {
        b.get(i..i + 2)
            .map(|w| i16::from_be_bytes([w[0], w[1]]))
            .ok_or_else(bad)
    };
    let ndigits = word(0)?.max(0) as usize;
    let weight = word(2)? as i32;
    let sign = word(4)? as u16;
    let dscale = word(6)?.max(0) as usize;
    if sign == 0xC000 {
        return Ok("NaN".into());
    }
    let digits = (0..ndigits)
        .map(|i| word(8 + 2 * i))
        .collect::<Result<Vec<_>, _>>()?;
    let mut int = String::new();
    for pos in 0..=weight.max(-1) {
        let d = digits.get(pos as usize).copied().unwrap_or(0);
        if int.is_empty() {
            int = d.to_string();
        } else {
            int.push_str(&format!("{d:04}"));
        }
    }
    if int.is_empty() {
        int.push('0');
    }
    let mut frac = String::new();
    let mut pos = weight + 1;
    while frac.len() < dscale {
        let d = if pos < 0 {
            0
        } else {
            digits.get(pos as usize).copied().unwrap_or(0)
        };
        frac.push_str(&format!("{d:04}"));
        pos += 1;
    }
    frac.truncate(dscale);
    let sign = if sign == 0x4000 { "-" } else { "" };
    Ok(if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    })
}

/// A bound parameter as the Arrow value the statement expects (`target`), from its wire
/// bytes in text or binary format and the PostgreSQL type it was sent as.
pub(crate) fn decode_param(
    raw: Option<&[u8]>,
    binary: bool,
    sent_as: &Type,
    target: &DataType,
) -> Result<ScalarValue, String> {
    let Some(raw) = raw else {
        return ScalarValue::try_from(target).map_err(|e| e.to_string());
    };
    let value = if binary {
        binary_value(raw, sent_as)?
    } else {
        let s = std::str::from_utf8(raw).map_err(|_| "parameter is not valid UTF-8".to_string())?;
        if matches!(
            target,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView
        ) {
            ScalarValue::Binary(Some(bytea_from_text(s)?))
        } else {
            ScalarValue::Utf8(Some(s.to_string()))
        }
    };
    if &value.data_type() == target || matches!(target, DataType::Null) {
        return Ok(value);
    }
    value
        .cast_to(target)
        .map_err(|_| format!("invalid input syntax for type {target}: {value}"))
}

fn bytea_from_text(s: &str) -> Result<Vec<u8>, String> {
    let Some(hex) = s.strip_prefix("\\x") else {
        return Ok(s.as_bytes().to_vec());
    };
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("invalid hexadecimal bytea {s:?}"))
}

fn binary_value(raw: &[u8], ty: &Type) -> Result<ScalarValue, String> {
    let fixed = |n: usize| -> Result<&[u8], String> {
        if raw.len() == n {
            Ok(raw)
        } else {
            Err(format!(
                "binary value of type {ty} should be {n} bytes, not {}",
                raw.len()
            ))
        }
    };
    let i64_at = |b: &[u8]| i64::from_be_bytes(b[..8].try_into().unwrap_or([0; 8]));
    let i32_at = |b: &[u8]| i32::from_be_bytes(b[..4].try_into().unwrap_or([0; 4]));
    Ok(match *ty {
        Type::BOOL => ScalarValue::Boolean(Some(fixed(1)?[0] != 0)),
        Type::INT2 => {
            let b = fixed(2)?;
            ScalarValue::Int16(Some(i16::from_be_bytes([b[0], b[1]])))
        }
        Type::INT4 => ScalarValue::Int32(Some(i32_at(fixed(4)?))),
        Type::INT8 => ScalarValue::Int64(Some(i64_at(fixed(8)?))),
        Type::OID => ScalarValue::UInt32(Some(u32::from_be_bytes(
            fixed(4)?.try_into().unwrap_or([0; 4]),
        ))),
        Type::FLOAT4 => ScalarValue::Float32(Some(f32::from_be_bytes(
            fixed(4)?.try_into().unwrap_or([0; 4]),
        ))),
        Type::FLOAT8 => ScalarValue::Float64(Some(f64::from_be_bytes(
            fixed(8)?.try_into().unwrap_or([0; 8]),
        ))),
        Type::BYTEA => ScalarValue::Binary(Some(raw.to_vec())),
        Type::DATE => ScalarValue::Date32(Some(i32_at(fixed(4)?) + PG_EPOCH_DAYS)),
        Type::TIMESTAMP => {
            ScalarValue::TimestampMicrosecond(Some(i64_at(fixed(8)?) + PG_EPOCH_MICROS), None)
        }
        Type::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
            Some(i64_at(fixed(8)?) + PG_EPOCH_MICROS),
            Some(Arc::from("+00:00")),
        ),
        Type::NUMERIC => ScalarValue::Utf8(Some(numeric_from_binary(raw)?)),
        Type::INTERVAL => {
            let b = fixed(16)?;
            ScalarValue::IntervalMonthDayNano(Some(
                phantomdb::arrow::datatypes::IntervalMonthDayNano::new(
                    i32_at(&b[12..]),
                    i32_at(&b[8..]),
                    i64_at(b) * 1_000,
                ),
            ))
        }
        _ => ScalarValue::Utf8(Some(
            String::from_utf8(raw.to_vec()).map_err(|_| "parameter is not valid UTF-8")?,
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_round_trip(text: &str) -> String {
        let mut b = BytesMut::new();
        numeric_binary(text, &mut b).unwrap();
        numeric_from_binary(&b).unwrap()
    }

    #[test]
    fn numeric_binary_round_trips() {
        for t in [
            "0",
            "1",
            "-1",
            "12345.678",
            "0.0001",
            "-0.5000",
            "10000",
            "99999999.99",
        ] {
            assert_eq!(numeric_round_trip(t), t, "{t}");
        }
    }

    #[test]
    fn intervals_read_like_postgres() {
        assert_eq!(
            interval_text(14, 3, 4 * 3_600_000_000 + 5_500_000),
            "1 year 2 mons 3 days 04:00:05.5"
        );
        assert_eq!(interval_text(0, 0, 0), "00:00:00");
        assert_eq!(interval_text(0, 1, 0), "1 day");
    }
}
