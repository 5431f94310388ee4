//! Rows of catalog relations as typed cells, and their conversion to an Arrow batch.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float32Builder, Int16Builder, Int32Builder, Int64Builder,
    ListBuilder, RecordBatch, StringBuilder, TimestampNanosecondBuilder, UInt32Builder,
};
use datafusion::error::{DataFusionError, Result as DfResult};

use super::tables::{Relation, Ty};

/// One value of a catalog row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Oid(u32),
    Text(String),
    Bool(bool),
    I16(i16),
    I32(i32),
    F32(f32),
    OidList(Vec<u32>),
    I16List(Vec<i16>),
    TextList(Vec<String>),
}

impl From<u32> for Cell {
    fn from(v: u32) -> Self {
        Cell::Oid(v)
    }
}
impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Text(v.to_string())
    }
}
impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(v)
    }
}
impl From<char> for Cell {
    fn from(v: char) -> Self {
        Cell::Text(v.to_string())
    }
}
impl From<bool> for Cell {
    fn from(v: bool) -> Self {
        Cell::Bool(v)
    }
}
impl From<i16> for Cell {
    fn from(v: i16) -> Self {
        Cell::I16(v)
    }
}
impl From<i32> for Cell {
    fn from(v: i32) -> Self {
        Cell::I32(v)
    }
}
impl From<f32> for Cell {
    fn from(v: f32) -> Self {
        Cell::F32(v)
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map_or(Cell::Null, Into::into)
    }
}

/// A row of cells: `row![a, b, ...]`, each converted with `Cell::from`.
macro_rules! row {
    ($($cell:expr),* $(,)?) => {
        vec![$($crate::pg_catalog::cells::Cell::from($cell)),*]
    };
}
pub(crate) use row;

/// The rows of `relation` as one Arrow batch. A row of the wrong width or a cell of the
/// wrong type is an internal error (a bug in a row builder), never a panic.
pub(crate) fn batch(relation: &Relation, rows: &[Vec<Cell>]) -> DfResult<RecordBatch> {
    let mismatch =
        |what: &str| DataFusionError::Internal(format!("pg_catalog.{}: {what}", relation.name));
    if let Some(r) = rows.iter().find(|r| r.len() != relation.columns.len()) {
        return Err(mismatch(&format!("row of {} cells", r.len())));
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(relation.columns.len());
    for (i, (name, ty)) in relation.columns.iter().enumerate() {
        let cells = rows.iter().map(|r| &r[i]);
        let bad = || mismatch(&format!("column {name} holds a value of another type"));
        let array: ArrayRef = match ty {
            Ty::Oid => {
                let mut b = UInt32Builder::new();
                for c in cells {
                    match c {
                        Cell::Oid(v) => b.append_value(*v),
                        Cell::Null => b.append_null(),
                        _ => return Err(bad()),
                    }
                }
                Arc::new(b.finish())
            }
            Ty::Text => {
                let mut b = StringBuilder::new();
                for c in cells {
                    match c {
                        Cell::Text(v) => b.append_value(v),
                        Cell::Null => b.append_null(),
                        _ => return Err(bad()),
                    }
                }
                Arc::new(b.finish())
            }
            Ty::Bool => {
                let mut b = BooleanBuilder::new();
                for c in cells {
                    match c {
                        Cell::Bool(v) => b.append_value(*v),
                        Cell::Null => b.append_null(),
                        _ => return Err(bad()),
                    }
                }
                Arc::new(b.finish())
            }
            Ty::I16 => {
                let mut b = Int16Builder::new();
                for c in cells {
                    match c {
                        Cell::I16(v) => b.append_value(*v),
                        Cell::Null => b.append_null(),
                        _ => return Err(bad()),
                    }
                }
                Arc::new(b.finish())
            }
            Ty::I32 => {
                let mut b = Int32Builder::new();
                for c in cells {
                    match c {
                        Cell::I32(v) => b.append_value(*v),
                        Cell::Null => b.append_null(),
                        _ => return Err(bad()),
                    }
                }
                Arc::new(b.finish())
            }
            Ty::I64 => {
                let mut b = Int64Builder::new();
                for c in cells {
                    match c {
                        Cell::Null => b.append_null(),
                        _ => return Err(bad()),
                    }
                }
                Arc::new(b.finish())
            }
            Ty::F32 => {
                let mut b = Float32Builder::new();
                for c in cells {
                    match c {
                        Cell::F32(v) => b.append_value(*v),
                        Cell::Null => b.append_null(),
                        _ => return Err(bad()),
                    }
                }
                Arc::new(b.finish())
            }
            Ty::Timestamptz => {
                let mut b = TimestampNanosecondBuilder::new().with_timezone("+00:00");
                for c in cells {
                    match c {
                        Cell::Null => b.append_null(),
                        _ => return Err(bad()),
                    }
                }
                Arc::new(b.finish())
            }
            Ty::OidList => {
                let mut b = ListBuilder::new(UInt32Builder::new());
                for c in cells {
                    match c {
                        Cell::OidList(v) => {
                            b.values().append_slice(v);
                            b.append(true);
                        }
                        Cell::Null => b.append(false),
                        _ => return Err(bad()),
                    }
                }
                Arc::new(b.finish())
            }
            Ty::I16List => {
                let mut b = ListBuilder::new(Int16Builder::new());
                for c in cells {
                    match c {
                        Cell::I16List(v) => {
                            b.values().append_slice(v);
                            b.append(true);
                        }
                        Cell::Null => b.append(false),
                        _ => return Err(bad()),
                    }
                }
                Arc::new(b.finish())
            }
            Ty::TextList => {
                let mut b = ListBuilder::new(StringBuilder::new());
                for c in cells {
                    match c {
                        Cell::TextList(v) => {
                            for s in v {
                                b.values().append_value(s);
                            }
                            b.append(true);
                        }
                        Cell::Null => b.append(false),
                        _ => return Err(bad()),
                    }
                }
                Arc::new(b.finish())
            }
        };
        columns.push(array);
    }
    Ok(RecordBatch::try_new(relation.schema(), columns)?)
}
