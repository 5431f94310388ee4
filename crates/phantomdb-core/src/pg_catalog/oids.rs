//! Stable synthetic OIDs for what PhantomDB's catalog holds, and PostgreSQL's fixed OIDs for
//! what every PostgreSQL database has (namespaces, the bootstrap superuser, access methods).
//!
//! A table's OID is derived from its id (`TableDef.id`), which never changes, so renames keep
//! it; its primary-key index, constraint and row type take the next three OIDs. Views,
//! roles and storage engines have no id and take a hash of their name instead.

use crate::catalog::TableDef;

/// `pg_catalog`'s namespace OID.
pub(crate) const PG_CATALOG_NAMESPACE: u32 = 11;
/// `public`'s namespace OID.
pub(crate) const PUBLIC_NAMESPACE: u32 = 2200;
/// `information_schema`'s namespace OID.
pub(crate) const INFORMATION_SCHEMA_NAMESPACE: u32 = 13000;
/// `pg_toast`'s namespace OID.
pub(crate) const PG_TOAST_NAMESPACE: u32 = 99;
/// The bootstrap superuser's OID: the owner of everything.
pub(crate) const BOOTSTRAP_SUPERUSER: u32 = 10;
/// The `btree` access method (primary-key indexes).
pub(crate) const BTREE_AM: u32 = 403;
/// The `pg_default` tablespace.
pub(crate) const DEFAULT_TABLESPACE: u32 = 1663;
/// The first OID PostgreSQL gives user objects.
const FIRST_USER_OID: u32 = 16384;

/// The OID of a table.
pub(crate) fn table(def: &TableDef) -> u32 {
    let slot = u32::try_from(def.id).unwrap_or(u32::MAX / 8) & 0x0fff_ffff;
    FIRST_USER_OID + slot * 4
}

/// The OID of a table's primary-key index.
pub(crate) fn primary_key_index(def: &TableDef) -> u32 {
    table(def) + 1
}

/// The OID of a table's primary-key constraint.
pub(crate) fn primary_key_constraint(def: &TableDef) -> u32 {
    table(def) + 2
}

/// The OID of a table's row type (`pg_class.reltype`).
pub(crate) fn row_type(def: &TableDef) -> u32 {
    table(def) + 3
}

/// The OID of a view (in `0x4000_0000..0x8000_0000`, even; its row type is the next one).
pub(crate) fn view(name: &str) -> u32 {
    0x4000_0000 | ((fnv1a(name) & 0x1fff_ffff) << 1)
}

/// The OID of a role: the database owner is PostgreSQL's bootstrap superuser (10).
pub(crate) fn role(name: &str) -> u32 {
    if name == crate::privileges::grants::DEFAULT_USER {
        BOOTSTRAP_SUPERUSER
    } else {
        0x2000_0000 | (fnv1a(name) & 0x1fff_ffff)
    }
}

/// The OID of a storage engine as a table access method.
pub(crate) fn access_method(engine: &str) -> u32 {
    0x1000_0000 | (fnv1a(engine) & 0x0fff_ffff)
}

/// The OID of a column default (`pg_attrdef.oid`).
pub(crate) fn attrdef(def: &TableDef, attnum: usize) -> u32 {
    let slot = (table(def) - FIRST_USER_OID) / 4;
    0x6000_0000 | ((slot << 10 | (attnum as u32 & 0x3ff)) & 0x1fff_ffff)
}

/// 32-bit FNV-1a: stable across runs and platforms (unlike `std`'s hasher).
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}
