//! The stable data type codes ([`TypeCode`]) used in function signatures, and their mapping to
//! and from Arrow data types. Codes are plain `u32`s in the ABI, so they never change meaning;
//! the data itself always travels as Arrow C Data Interface arrays.
//!
//! A module of its own because the codes are shared by every interface that declares types.

/// Stable data type codes used in function signatures, stored as `u32`. The data itself always
/// travels as Arrow C Data Interface arrays of the corresponding Arrow type.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeCode {
    /// Arrow `Null`.
    Null = 0,
    /// Arrow `Boolean`.
    Boolean = 1,
    /// Arrow `Int8`.
    Int8 = 2,
    /// Arrow `Int16`.
    Int16 = 3,
    /// Arrow `Int32`.
    Int32 = 4,
    /// Arrow `Int64`.
    Int64 = 5,
    /// Arrow `UInt8`.
    UInt8 = 6,
    /// Arrow `UInt16`.
    UInt16 = 7,
    /// Arrow `UInt32`.
    UInt32 = 8,
    /// Arrow `UInt64`.
    UInt64 = 9,
    /// Arrow `Float32`.
    Float32 = 10,
    /// Arrow `Float64`.
    Float64 = 11,
    /// Arrow `Utf8` (i32 offsets). The host casts `Utf8View` and `LargeUtf8` to this.
    Utf8 = 12,
    /// Arrow `Binary` (i32 offsets).
    Binary = 13,
    /// Arrow `Date32` (days since epoch).
    Date32 = 14,
    /// Arrow `Timestamp(Microsecond, None)`.
    TimestampMicrosecond = 15,
}

impl TypeCode {
    /// Decodes an ABI value.
    pub const fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => Self::Null,
            1 => Self::Boolean,
            2 => Self::Int8,
            3 => Self::Int16,
            4 => Self::Int32,
            5 => Self::Int64,
            6 => Self::UInt8,
            7 => Self::UInt16,
            8 => Self::UInt32,
            9 => Self::UInt64,
            10 => Self::Float32,
            11 => Self::Float64,
            12 => Self::Utf8,
            13 => Self::Binary,
            14 => Self::Date32,
            15 => Self::TimestampMicrosecond,
            _ => return None,
        })
    }

    /// The Arrow data type for this code.
    pub fn to_data_type(self) -> arrow_schema::DataType {
        use arrow_schema::{DataType, TimeUnit};
        match self {
            Self::Null => DataType::Null,
            Self::Boolean => DataType::Boolean,
            Self::Int8 => DataType::Int8,
            Self::Int16 => DataType::Int16,
            Self::Int32 => DataType::Int32,
            Self::Int64 => DataType::Int64,
            Self::UInt8 => DataType::UInt8,
            Self::UInt16 => DataType::UInt16,
            Self::UInt32 => DataType::UInt32,
            Self::UInt64 => DataType::UInt64,
            Self::Float32 => DataType::Float32,
            Self::Float64 => DataType::Float64,
            Self::Utf8 => DataType::Utf8,
            Self::Binary => DataType::Binary,
            Self::Date32 => DataType::Date32,
            Self::TimestampMicrosecond => DataType::Timestamp(TimeUnit::Microsecond, None),
        }
    }

    /// The code for an Arrow data type, if it is one of the ABI types.
    pub fn from_data_type(dt: &arrow_schema::DataType) -> Option<Self> {
        use arrow_schema::{DataType, TimeUnit};
        Some(match dt {
            DataType::Null => Self::Null,
            DataType::Boolean => Self::Boolean,
            DataType::Int8 => Self::Int8,
            DataType::Int16 => Self::Int16,
            DataType::Int32 => Self::Int32,
            DataType::Int64 => Self::Int64,
            DataType::UInt8 => Self::UInt8,
            DataType::UInt16 => Self::UInt16,
            DataType::UInt32 => Self::UInt32,
            DataType::UInt64 => Self::UInt64,
            DataType::Float32 => Self::Float32,
            DataType::Float64 => Self::Float64,
            DataType::Utf8 => Self::Utf8,
            DataType::Binary => Self::Binary,
            DataType::Date32 => Self::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, None) => Self::TimestampMicrosecond,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_codes_round_trip() {
        for v in 0..16 {
            let code = TypeCode::from_u32(v).expect("known code");
            assert_eq!(TypeCode::from_data_type(&code.to_data_type()), Some(code));
        }
        assert!(TypeCode::from_u32(999).is_none());
    }
}
