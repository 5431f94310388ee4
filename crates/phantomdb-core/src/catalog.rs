//! PhantomDB's catalog: the tables and views of a database, as stored in its file.
//!
//! The catalog is versioned together with the data (it lives in the same redb file), so a
//! transaction sees the catalog and the rows of one consistent snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::privileges::grants::Grants;

/// Name of the built-in storage engine every table uses unless told otherwise.
pub const DEFAULT_ENGINE: &str = "redb";

/// Setting holding the default storage engine (PostgreSQL's name for it; per database here).
pub const DEFAULT_ENGINE_SETTING: &str = "default_table_access_method";

/// A stored table definition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableDef {
    /// Stable identifier; data and indexes are keyed by it, so renames are cheap.
    pub id: u64,
    /// The table name (lower-case unless quoted at creation).
    pub name: String,
    /// Column names, types and nullability (NOT NULL = non-nullable field).
    #[serde(with = "schema_serde")]
    pub schema: Schema,
    /// Positions of the primary key columns in `schema`, in key order; empty when none.
    pub primary_key: Vec<usize>,
    /// `DEFAULT` expressions as SQL text, by column name.
    pub defaults: BTreeMap<String, String>,
    /// Storage engine name.
    pub engine: String,
    /// Engine options (`WITH (...)`, completed by the engine at creation).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// For columns added by `ALTER TABLE ADD COLUMN`: the value (SQL literal text) that rows
    /// written before the column existed read as. Keyed by column position.
    #[serde(default)]
    pub backfill: BTreeMap<usize, String>,
    /// The role that created the table; empty (tables of older files) means the database
    /// owner.
    #[serde(default)]
    pub owner: String,
    /// Privileges granted on the table, by grantee (a role name or `public`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grants: Grants,
    /// Secondary indexes and UNIQUE constraints (a UNIQUE constraint is a unique index
    /// marked `constraint`; it has storage only on engines that keep indexes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexDef>,
    /// CHECK constraints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckDef>,
    /// Identity columns (`GENERATED ... AS IDENTITY`, `SERIAL`, `AUTOINCREMENT`), by column
    /// position.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub identity: BTreeMap<usize, Identity>,
}

/// A secondary index or UNIQUE constraint of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDef {
    /// Index name, unique in the database (PostgreSQL's `t_col_key` for constraints).
    pub name: String,
    /// Storage id (the engine keys the index's entries by it).
    pub id: u64,
    /// Positions of the indexed columns in the table's schema, in key order.
    pub columns: Vec<usize>,
    /// Whether two rows may not share a key (rows with a NULL in the key never conflict).
    pub unique: bool,
    /// Made by a UNIQUE constraint (`CREATE TABLE`) rather than `CREATE INDEX`.
    #[serde(default)]
    pub constraint: bool,
    /// Whether the engine keeps entries for it (else it is enforced by scanning).
    #[serde(default)]
    pub stored: bool,
}

/// A CHECK constraint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckDef {
    /// Constraint name (`t_col_check` or as given).
    pub name: String,
    /// The condition as SQL text; a row passes when it is true or NULL.
    pub expr: String,
}

/// An identity column: its values come from a sequence when none (or NULL) is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// `GENERATED ALWAYS`: explicit values are refused.
    pub always: bool,
    /// The sequence's name (`t_col_seq`), for `currval`/`nextval`.
    pub sequence: String,
}

impl TableDef {
    /// The Arrow schema of the table.
    pub fn schema_ref(&self) -> SchemaRef {
        Arc::new(self.schema.clone())
    }

    /// Names of the primary key columns.
    pub fn primary_key_names(&self) -> Vec<&str> {
        self.primary_key
            .iter()
            .map(|&i| self.schema.field(i).name().as_str())
            .collect()
    }
}

/// A stored view definition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ViewDef {
    /// The view name.
    pub name: String,
    /// The view's query, as SQL text.
    pub query: String,
    /// The role that created the view (empty: the database owner). The view reads its
    /// tables with this role's privileges.
    #[serde(default)]
    pub owner: String,
    /// Privileges granted on the view, by grantee (a role name or `public`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grants: Grants,
}

/// A stored role (`CREATE ROLE`), kept in the `roles` table of the database file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleDef {
    /// The role name.
    pub name: String,
    /// `LOGIN`: the role may connect.
    #[serde(default)]
    pub login: bool,
    /// `SUPERUSER`: every privilege check passes.
    #[serde(default)]
    pub superuser: bool,
    /// The SCRAM-SHA-256 password verifier in PostgreSQL's text form; never a password.
    #[serde(default)]
    pub password: Option<String>,
    /// The roles this role is a member of (`GRANT group TO role`); it holds their
    /// privileges. Absent in files written before membership existed.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub member_of: BTreeSet<String>,
}

impl RoleDef {
    /// Serializes the role for storage.
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(Error::storage)
    }

    /// Decodes a stored role.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| Error::Storage(format!("corrupt role: {e}")))
    }
}

/// One catalog entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CatalogEntry {
    /// A table.
    Table(Arc<TableDef>),
    /// A view.
    View(Arc<ViewDef>),
}

impl CatalogEntry {
    /// The owner of the table or view (empty: the database owner).
    pub(crate) fn owner(&self) -> &str {
        match self {
            CatalogEntry::Table(t) => &t.owner,
            CatalogEntry::View(v) => &v.owner,
        }
    }

    /// The privileges granted on the table or view.
    pub(crate) fn grants(&self) -> &Grants {
        match self {
            CatalogEntry::Table(t) => &t.grants,
            CatalogEntry::View(v) => &v.grants,
        }
    }

    /// `table` or `view`, as messages name the entry.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            CatalogEntry::Table(_) => "table",
            CatalogEntry::View(_) => "view",
        }
    }

    /// A copy of the entry with its grants changed by `change`.
    pub(crate) fn with_grants(&self, change: impl FnOnce(&mut Grants)) -> Self {
        match self {
            CatalogEntry::Table(t) => {
                let mut t = (**t).clone();
                change(&mut t.grants);
                CatalogEntry::Table(Arc::new(t))
            }
            CatalogEntry::View(v) => {
                let mut v = (**v).clone();
                change(&mut v.grants);
                CatalogEntry::View(Arc::new(v))
            }
        }
    }

    /// Serializes the entry for storage.
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(Error::storage)
    }

    /// Decodes a stored entry.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::Storage(format!("corrupt catalog entry: {e}")))
    }
}

/// An immutable view of all catalog entries at one version.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: BTreeMap<String, CatalogEntry>,
    pub(crate) settings: BTreeMap<String, String>,
    /// Roles by name.
    pub(crate) roles: BTreeMap<String, Arc<RoleDef>>,
}

impl Catalog {
    pub(crate) fn from_entries(entries: BTreeMap<String, CatalogEntry>) -> Self {
        Self {
            entries,
            settings: BTreeMap::new(),
            roles: BTreeMap::new(),
        }
    }

    /// Looks a role up by name.
    pub fn role(&self, name: &str) -> Option<&Arc<RoleDef>> {
        self.roles.get(name)
    }

    /// All roles, by name.
    pub fn roles(&self) -> impl Iterator<Item = &Arc<RoleDef>> {
        self.roles.values()
    }

    /// `role` and every role it is a member of, directly or through other roles.
    pub fn roles_of(&self, role: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::from([role.to_string()]);
        let mut pending = vec![role.to_string()];
        while let Some(next) = pending.pop() {
            let Some(def) = self.roles.get(&next) else {
                continue;
            };
            for group in &def.member_of {
                if found.insert(group.clone()) {
                    pending.push(group.clone());
                }
            }
        }
        found
    }

    /// All tables and views, by name.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&String, &CatalogEntry)> {
        self.entries.iter()
    }

    /// A database setting, e.g. [`DEFAULT_ENGINE_SETTING`].
    pub fn setting(&self, name: &str) -> Option<&str> {
        self.settings.get(name).map(String::as_str)
    }

    /// The storage engine of tables created without `USING`.
    pub fn default_engine(&self) -> &str {
        self.setting(DEFAULT_ENGINE_SETTING)
            .unwrap_or(DEFAULT_ENGINE)
    }

    /// Looks an entry up by name.
    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.entries.get(name)
    }

    /// Looks a table up by name.
    pub fn table(&self, name: &str) -> Option<&Arc<TableDef>> {
        match self.entries.get(name) {
            Some(CatalogEntry::Table(t)) => Some(t),
            _ => None,
        }
    }

    /// Looks a table up by id.
    pub fn table_by_id(&self, id: u64) -> Option<&Arc<TableDef>> {
        self.tables().find(|t| t.id == id)
    }

    /// All tables, by name.
    pub fn tables(&self) -> impl Iterator<Item = &Arc<TableDef>> {
        self.entries.values().filter_map(|e| match e {
            CatalogEntry::Table(t) => Some(t),
            _ => None,
        })
    }

    /// All views, by name.
    pub fn views(&self) -> impl Iterator<Item = &Arc<ViewDef>> {
        self.entries.values().filter_map(|e| match e {
            CatalogEntry::View(v) => Some(v),
            _ => None,
        })
    }

    /// All entry names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.entries.keys()
    }

    pub(crate) fn insert(&mut self, name: String, entry: CatalogEntry) {
        self.entries.insert(name, entry);
    }

    pub(crate) fn remove(&mut self, name: &str) -> Option<CatalogEntry> {
        self.entries.remove(name)
    }
}

/// Stores a schema as a list of `{name, type, nullable[, metadata]}`, the type in Arrow's text
/// form.
mod schema_serde {
    use std::collections::BTreeMap;

    use arrow::datatypes::{DataType, Field, Schema};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Column {
        name: String,
        #[serde(rename = "type")]
        data_type: String,
        nullable: bool,
        /// Field metadata: a custom type's name and plugin (`crate::types`).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        metadata: BTreeMap<String, String>,
    }

    pub fn serialize<S: Serializer>(schema: &Schema, s: S) -> Result<S::Ok, S::Error> {
        let cols: Vec<Column> = schema
            .fields()
            .iter()
            .map(|f| Column {
                name: f.name().clone(),
                data_type: f.data_type().to_string(),
                nullable: f.is_nullable(),
                metadata: f
                    .metadata()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })
            .collect();
        cols.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Schema, D::Error> {
        let cols = Vec::<Column>::deserialize(d)?;
        let fields = cols
            .into_iter()
            .map(|c| {
                let ty: DataType = c.data_type.parse().map_err(serde::de::Error::custom)?;
                Ok(Field::new(c.name, ty, c.nullable)
                    .with_metadata(c.metadata.into_iter().collect()))
            })
            .collect::<Result<Vec<_>, D::Error>>()?;
        Ok(Schema::new(fields))
    }
}
