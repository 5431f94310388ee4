//! PostgreSQL's view of Arrow types: type OIDs, names and sizes, as the wire protocol's
//! `RowDescription` and the `pg_type` / `pg_attribute` catalog relations report them.
//!
//! [`pg_type_of`] is the one mapping from an Arrow [`DataType`] to a PostgreSQL type; the
//! wire server and the catalog both use it, so a column's type is the same in a result's
//! row description and in `pg_attribute.atttypid`.

use arrow::datatypes::{DataType, TimeUnit};

/// A PostgreSQL type as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgType {
    /// The type's OID (`pg_type.oid`), PostgreSQL's real one (`int4` is 23).
    pub oid: u32,
    /// The type's name in `pg_type` (`int4`, `text`, `_int4` for `int4[]`).
    pub name: &'static str,
    /// `pg_type.typlen`: the size in bytes, or -1 for variable-length types.
    pub len: i16,
    /// The type modifier (`atttypmod`): `numeric(p, s)` carries `((p << 16) | s) + 4`; -1
    /// when the type has none.
    pub typmod: i32,
}

/// One row of the built-in type table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TypeInfo {
    pub(crate) oid: u32,
    pub(crate) name: &'static str,
    pub(crate) len: i16,
    /// `typcategory` (`N` numeric, `S` string, `A` array, ...).
    pub(crate) category: char,
    /// The array type whose elements are this type (0: none).
    pub(crate) array: u32,
    /// For an array type, its element type (0 otherwise).
    pub(crate) elem: u32,
    /// The name `format_type` prints (`integer`, `double precision`).
    pub(crate) display: &'static str,
    /// `typcollation`: 100 (`default`) for collatable types, 950 (`C`) for `name`, else 0.
    pub(crate) collation: u32,
}

const fn base(
    oid: u32,
    name: &'static str,
    len: i16,
    category: char,
    array: u32,
    display: &'static str,
    collation: u32,
) -> TypeInfo {
    TypeInfo {
        oid,
        name,
        len,
        category,
        array,
        elem: 0,
        display,
        collation,
    }
}

const fn array(oid: u32, name: &'static str, elem: u32, display: &'static str) -> TypeInfo {
    TypeInfo {
        oid,
        name,
        len: -1,
        category: 'A',
        array: 0,
        elem,
        display,
        collation: 0,
    }
}

/// `text`, the type of values with no better match.
const TEXT: TypeInfo = base(25, "text", -1, 'S', 1009, "text", 100);

/// The built-in types PhantomDB reports (PostgreSQL 15's OIDs), base types first.
pub(crate) const TYPES: &[TypeInfo] = &[
    base(16, "bool", 1, 'B', 1000, "boolean", 0),
    base(17, "bytea", -1, 'U', 1001, "bytea", 0),
    base(18, "char", 1, 'Z', 1002, "\"char\"", 0),
    base(19, "name", 64, 'S', 1003, "name", 950),
    base(20, "int8", 8, 'N', 1016, "bigint", 0),
    base(21, "int2", 2, 'N', 1005, "smallint", 0),
    base(22, "int2vector", -1, 'A', 1006, "int2vector", 0),
    base(23, "int4", 4, 'N', 1007, "integer", 0),
    base(24, "regproc", 4, 'N', 1008, "regproc", 0),
    TEXT,
    base(26, "oid", 4, 'N', 1028, "oid", 0),
    base(30, "oidvector", -1, 'A', 1013, "oidvector", 0),
    base(114, "json", -1, 'U', 199, "json", 0),
    base(194, "pg_node_tree", -1, 'Z', 0, "pg_node_tree", 100),
    base(700, "float4", 4, 'N', 1021, "real", 0),
    base(701, "float8", 8, 'N', 1022, "double precision", 0),
    base(705, "unknown", -2, 'X', 0, "unknown", 0),
    base(1033, "aclitem", 12, 'U', 1034, "aclitem", 0),
    base(1042, "bpchar", -1, 'S', 1014, "character", 100),
    base(1043, "varchar", -1, 'S', 1015, "character varying", 100),
    base(1082, "date", 4, 'D', 1182, "date", 0),
    base(1083, "time", 8, 'D', 1183, "time without time zone", 0),
    base(
        1114,
        "timestamp",
        8,
        'D',
        1115,
        "timestamp without time zone",
        0,
    ),
    base(
        1184,
        "timestamptz",
        8,
        'D',
        1185,
        "timestamp with time zone",
        0,
    ),
    base(1186, "interval", 16, 'T', 1187, "interval", 0),
    base(1266, "timetz", 12, 'D', 1270, "time with time zone", 0),
    base(1700, "numeric", -1, 'N', 1231, "numeric", 0),
    base(2205, "regclass", 4, 'N', 2210, "regclass", 0),
    base(2206, "regtype", 4, 'N', 2211, "regtype", 0),
    base(2950, "uuid", 16, 'U', 2951, "uuid", 0),
    base(3802, "jsonb", -1, 'U', 3807, "jsonb", 0),
    array(1000, "_bool", 16, "boolean[]"),
    array(1001, "_bytea", 17, "bytea[]"),
    array(1002, "_char", 18, "\"char\"[]"),
    array(1003, "_name", 19, "name[]"),
    array(1016, "_int8", 20, "bigint[]"),
    array(1005, "_int2", 21, "smallint[]"),
    array(1006, "_int2vector", 22, "int2vector[]"),
    array(1007, "_int4", 23, "integer[]"),
    array(1008, "_regproc", 24, "regproc[]"),
    array(1009, "_text", 25, "text[]"),
    array(1028, "_oid", 26, "oid[]"),
    array(1013, "_oidvector", 30, "oidvector[]"),
    array(199, "_json", 114, "json[]"),
    array(1021, "_float4", 700, "real[]"),
    array(1022, "_float8", 701, "double precision[]"),
    array(1034, "_aclitem", 1033, "aclitem[]"),
    array(1014, "_bpchar", 1042, "character[]"),
    array(1015, "_varchar", 1043, "character varying[]"),
    array(1182, "_date", 1082, "date[]"),
    array(1183, "_time", 1083, "time without time zone[]"),
    array(1115, "_timestamp", 1114, "timestamp without time zone[]"),
    array(1185, "_timestamptz", 1184, "timestamp with time zone[]"),
    array(1187, "_interval", 1186, "interval[]"),
    array(1270, "_timetz", 1266, "time with time zone[]"),
    array(1231, "_numeric", 1700, "numeric[]"),
    array(2210, "_regclass", 2205, "regclass[]"),
    array(2211, "_regtype", 2206, "regtype[]"),
    array(2951, "_uuid", 2950, "uuid[]"),
    array(3807, "_jsonb", 3802, "jsonb[]"),
];

/// The built-in type with this OID.
pub(crate) fn type_info(oid: u32) -> Option<&'static TypeInfo> {
    TYPES.iter().find(|t| t.oid == oid)
}

/// The PostgreSQL type of an Arrow type. Every Arrow type maps to some type: integers to
/// the smallest PostgreSQL integer that holds them (`UInt32` is `oid`, `UInt64` `numeric`),
/// strings to `text`, binaries to `bytea`, lists to the array type of their element
/// (`text[]` when the element has none), and nested or unusual types to `text`.
pub fn pg_type_of(data_type: &DataType) -> PgType {
    use DataType as T;
    let (oid, typmod) = match data_type {
        T::Boolean => (16, -1),
        T::Int8 | T::Int16 | T::UInt8 => (21, -1),
        T::Int32 | T::UInt16 => (23, -1),
        T::Int64 => (20, -1),
        T::UInt32 => (26, -1),
        T::UInt64 => (1700, -1),
        T::Float16 | T::Float32 => (700, -1),
        T::Float64 => (701, -1),
        T::Decimal32(p, s) | T::Decimal64(p, s) | T::Decimal128(p, s) | T::Decimal256(p, s) => {
            (1700, numeric_typmod(*p, *s))
        }
        T::Utf8 | T::LargeUtf8 | T::Utf8View => (25, -1),
        T::Binary | T::LargeBinary | T::BinaryView | T::FixedSizeBinary(_) => (17, -1),
        T::Date32 | T::Date64 => (1082, -1),
        T::Time32(_) | T::Time64(_) => (1083, -1),
        T::Timestamp(unit, tz) => (
            if tz.is_some() { 1184 } else { 1114 },
            match unit {
                TimeUnit::Second => 0,
                TimeUnit::Millisecond => 3,
                TimeUnit::Microsecond | TimeUnit::Nanosecond => -1,
            },
        ),
        T::Interval(_) | T::Duration(_) => (1186, -1),
        T::Dictionary(_, value) => return pg_type_of(value),
        T::List(f) | T::LargeList(f) | T::ListView(f) | T::LargeListView(f) => {
            (array_of(pg_type_of(f.data_type()).oid), -1)
        }
        T::FixedSizeList(f, _) => (array_of(pg_type_of(f.data_type()).oid), -1),
        _ => (25, -1),
    };
    let info = type_info(oid).unwrap_or(&TEXT);
    PgType {
        oid: info.oid,
        name: info.name,
        len: info.len,
        typmod,
    }
}

/// The Arrow type PhantomDB uses for values of a PostgreSQL type (a parameter type a client
/// declared, say), or `None` for a type PhantomDB has no column type for.
pub fn data_type_of_pg(oid: u32) -> Option<DataType> {
    use DataType as T;
    Some(match oid {
        16 => T::Boolean,
        17 => T::Binary,
        18 | 19 | 25 | 1042 | 1043 | 114 | 3802 | 705 | 2950 => T::Utf8,
        20 => T::Int64,
        21 => T::Int16,
        23 => T::Int32,
        26 | 2205 | 2206 | 24 => T::UInt32,
        700 => T::Float32,
        701 => T::Float64,
        1700 => T::Decimal128(38, 10),
        1082 => T::Date32,
        1083 => T::Time64(TimeUnit::Microsecond),
        1114 => T::Timestamp(TimeUnit::Microsecond, None),
        1184 => T::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        1186 => T::Interval(arrow::datatypes::IntervalUnit::MonthDayNano),
        _ => {
            let info = type_info(oid)?;
            if info.elem == 0 {
                return None;
            }
            T::new_list(data_type_of_pg(info.elem)?, true)
        }
    })
}

/// The array type of an element type (`_text` when the element has none).
fn array_of(elem: u32) -> u32 {
    match type_info(elem) {
        Some(t) if t.array != 0 => t.array,
        _ => 1009,
    }
}

/// `numeric(p, s)`'s type modifier.
fn numeric_typmod(precision: u8, scale: i8) -> i32 {
    ((i32::from(precision) << 16) | (i32::from(scale) & 0xffff)) + 4
}

/// `format_type(oid, typmod)`: the SQL name of a type, with its modifier
/// (`numeric(10,2)`, `character varying(20)`); `???` for an unknown OID.
pub(crate) fn format_type(oid: u32, typmod: Option<i32>) -> String {
    let Some(info) = type_info(oid) else {
        return "???".into();
    };
    let typmod = typmod.unwrap_or(-1);
    match oid {
        1700 if typmod >= 4 => {
            let t = typmod - 4;
            format!("numeric({},{})", (t >> 16) & 0xffff, t & 0xffff)
        }
        1042 | 1043 if typmod >= 4 => format!("{}({})", info.display, typmod - 4),
        1114 | 1184 | 1083 | 1266 if typmod >= 0 => {
            let (head, tail) = info.display.split_once(' ').unwrap_or((info.display, ""));
            format!("{head}({typmod}) {tail}")
        }
        _ => info.display.to_string(),
    }
}

/// `to_regtype(name)`: the OID of a type named as SQL or `pg_type` names it (`integer`,
/// `int4`, `pg_catalog.int4`, `text[]`), or `None`.
pub(crate) fn type_oid_by_name(name: &str) -> Option<u32> {
    let name = name.trim().to_ascii_lowercase();
    let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
    let alias = match name {
        "int" | "integer" => "int4",
        "smallint" => "int2",
        "bigint" => "int8",
        "real" => "float4",
        "double precision" | "float" => "float8",
        "boolean" => "bool",
        "character varying" => "varchar",
        "character" | "char" => "bpchar",
        "decimal" => "numeric",
        "timestamp without time zone" => "timestamp",
        "timestamp with time zone" => "timestamptz",
        "time without time zone" => "time",
        "time with time zone" => "timetz",
        "\"char\"" => "char",
        other => other,
    };
    TYPES
        .iter()
        .find(|t| t.name == alias || t.display == alias)
        .map(|t| t.oid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_types_map_to_postgres_oids() {
        assert_eq!(pg_type_of(&DataType::Int32).oid, 23);
        assert_eq!(pg_type_of(&DataType::Utf8).name, "text");
        let list = DataType::new_list(DataType::Int16, true);
        assert_eq!(pg_type_of(&list).oid, 1005);
        let d = pg_type_of(&DataType::Decimal128(10, 2));
        assert_eq!(format_type(d.oid, Some(d.typmod)), "numeric(10,2)");
        assert_eq!(format_type(1114, None), "timestamp without time zone");
        assert_eq!(type_oid_by_name("integer"), Some(23));
        assert_eq!(type_oid_by_name("hstore"), None);
    }
}
