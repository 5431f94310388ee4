//! The relations of `pg_catalog`: their names, OIDs and columns (PostgreSQL 15's, as far as
//! clients read them), and where their rows come from.
//!
//! Column types follow PostgreSQL's: `oid` columns are `UInt32` (reported as `oid`), `name`,
//! `text` and `"char"` are `Utf8`, `int2vector` and `int2[]` are lists of `Int16`. Relations
//! PhantomDB has nothing for (publications, policies, triggers, ...) are empty but have the
//! columns psql's and drivers' queries name, so those queries plan and return no rows.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The type of a catalog column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Oid,
    Text,
    Bool,
    I16,
    I32,
    I64,
    F32,
    Timestamptz,
    OidList,
    I16List,
    TextList,
}

impl Ty {
    /// The Arrow type of the column.
    pub(crate) fn data_type(self) -> DataType {
        match self {
            Ty::Oid => DataType::UInt32,
            Ty::Text => DataType::Utf8,
            Ty::Bool => DataType::Boolean,
            Ty::I16 => DataType::Int16,
            Ty::I32 => DataType::Int32,
            Ty::I64 => DataType::Int64,
            Ty::F32 => DataType::Float32,
            Ty::Timestamptz => DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into())),
            Ty::OidList => DataType::new_list(DataType::UInt32, true),
            Ty::I16List => DataType::new_list(DataType::Int16, true),
            Ty::TextList => DataType::new_list(DataType::Utf8, true),
        }
    }

    /// The SQL type a view definition casts the column to.
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Ty::Oid => "INT UNSIGNED",
            Ty::Text => "VARCHAR",
            Ty::Bool => "BOOLEAN",
            Ty::I16 => "SMALLINT",
            Ty::I32 => "INT",
            Ty::I64 => "BIGINT",
            Ty::F32 => "REAL",
            Ty::Timestamptz => "TIMESTAMP WITH TIME ZONE",
            Ty::OidList => "INT UNSIGNED[]",
            Ty::I16List => "SMALLINT[]",
            Ty::TextList => "VARCHAR[]",
        }
    }
}

/// Where a relation's rows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Always empty in PhantomDB.
    Empty,
    /// Built from the statement's catalog snapshot (`rows.rs`).
    Catalog,
    /// A query, planned per statement like a stored view (`rows::view_sql`).
    View,
}

/// One `pg_catalog` relation.
#[derive(Debug)]
pub(crate) struct Relation {
    pub(crate) name: &'static str,
    pub(crate) oid: u32,
    /// `r` for catalog tables, `v` for catalog views.
    pub(crate) kind: char,
    pub(crate) columns: &'static [(&'static str, Ty)],
    pub(crate) source: Source,
}

impl Relation {
    /// The Arrow schema of the relation.
    pub(crate) fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|(name, ty)| Field::new(*name, ty.data_type(), true))
                .collect::<Vec<_>>(),
        ))
    }
}

use Source::{Catalog, Empty, View};
use Ty::*;

const fn rel(
    name: &'static str,
    oid: u32,
    kind: char,
    source: Source,
    columns: &'static [(&'static str, Ty)],
) -> Relation {
    Relation {
        name,
        oid,
        kind,
        columns,
        source,
    }
}

/// Every relation of `pg_catalog`, with PostgreSQL's OIDs for its catalog tables.
#[rustfmt::skip]
pub(crate) const RELATIONS: &[Relation] = &[
    rel("pg_namespace", 2615, 'r', Catalog, &[
        ("oid", Oid), ("nspname", Text), ("nspowner", Oid), ("nspacl", TextList),
    ]),
    rel("pg_class", 1259, 'r', Catalog, &[
        ("oid", Oid), ("relname", Text), ("relnamespace", Oid), ("reltype", Oid),
        ("reloftype", Oid), ("relowner", Oid), ("relam", Oid), ("relfilenode", Oid),
        ("reltablespace", Oid), ("relpages", I32), ("reltuples", F32), ("relallvisible", I32),
        ("reltoastrelid", Oid), ("relhasindex", Bool), ("relisshared", Bool),
        ("relpersistence", Text), ("relkind", Text), ("relnatts", I16), ("relchecks", I16),
        ("relhasrules", Bool), ("relhastriggers", Bool), ("relhassubclass", Bool),
        ("relrowsecurity", Bool), ("relforcerowsecurity", Bool), ("relispopulated", Bool),
        ("relreplident", Text), ("relispartition", Bool), ("relrewrite", Oid),
        ("relfrozenxid", Oid), ("relminmxid", Oid), ("relacl", TextList),
        ("reloptions", TextList), ("relpartbound", Text),
    ]),
    rel("pg_attribute", 1249, 'r', Catalog, &[
        ("attrelid", Oid), ("attname", Text), ("atttypid", Oid), ("attstattarget", I32),
        ("attlen", I16), ("attnum", I16), ("attndims", I32), ("attcacheoff", I32),
        ("atttypmod", I32), ("attbyval", Bool), ("attalign", Text), ("attstorage", Text),
        ("attcompression", Text), ("attnotnull", Bool), ("atthasdef", Bool),
        ("atthasmissing", Bool), ("attidentity", Text), ("attgenerated", Text),
        ("attisdropped", Bool), ("attislocal", Bool), ("attinhcount", I32),
        ("attcollation", Oid), ("attacl", TextList), ("attoptions", TextList),
        ("attfdwoptions", TextList), ("attmissingval", TextList),
    ]),
    rel("pg_type", 1247, 'r', Catalog, &[
        ("oid", Oid), ("typname", Text), ("typnamespace", Oid), ("typowner", Oid),
        ("typlen", I16), ("typbyval", Bool), ("typtype", Text), ("typcategory", Text),
        ("typispreferred", Bool), ("typisdefined", Bool), ("typdelim", Text), ("typrelid", Oid),
        ("typsubscript", Text), ("typelem", Oid), ("typarray", Oid), ("typinput", Text),
        ("typoutput", Text), ("typreceive", Text), ("typsend", Text), ("typalign", Text),
        ("typstorage", Text), ("typnotnull", Bool), ("typbasetype", Oid), ("typtypmod", I32),
        ("typndims", I32), ("typcollation", Oid), ("typdefaultbin", Text), ("typdefault", Text),
        ("typacl", TextList),
    ]),
    rel("pg_attrdef", 2604, 'r', Catalog, &[
        ("oid", Oid), ("adrelid", Oid), ("adnum", I16), ("adbin", Text),
    ]),
    rel("pg_index", 2610, 'r', Catalog, &[
        ("indexrelid", Oid), ("indrelid", Oid), ("indnatts", I16), ("indnkeyatts", I16),
        ("indisunique", Bool), ("indnullsnotdistinct", Bool), ("indisprimary", Bool),
        ("indisexclusion", Bool), ("indimmediate", Bool), ("indisclustered", Bool),
        ("indisvalid", Bool), ("indcheckxmin", Bool), ("indisready", Bool), ("indislive", Bool),
        ("indisreplident", Bool), ("indkey", I16List), ("indcollation", OidList),
        ("indclass", OidList), ("indoption", I16List), ("indexprs", Text), ("indpred", Text),
    ]),
    rel("pg_constraint", 2606, 'r', Catalog, &[
        ("oid", Oid), ("conname", Text), ("connamespace", Oid), ("contype", Text),
        ("condeferrable", Bool), ("condeferred", Bool), ("convalidated", Bool),
        ("conrelid", Oid), ("contypid", Oid), ("conindid", Oid), ("conparentid", Oid),
        ("confrelid", Oid), ("confupdtype", Text), ("confdeltype", Text),
        ("confmatchtype", Text), ("conislocal", Bool), ("coninhcount", I32),
        ("connoinherit", Bool), ("conkey", I16List), ("confkey", I16List),
        ("conpfeqop", OidList), ("conppeqop", OidList), ("conffeqop", OidList),
        ("confdelsetcols", I16List), ("conexclop", OidList), ("conbin", Text),
    ]),
    rel("pg_am", 2601, 'r', Catalog, &[
        ("oid", Oid), ("amname", Text), ("amhandler", Text), ("amtype", Text),
    ]),
    rel("pg_database", 1262, 'r', View, &[
        ("oid", Oid), ("datname", Text), ("datdba", Oid), ("encoding", I32),
        ("datlocprovider", Text), ("datistemplate", Bool), ("datallowconn", Bool),
        ("datconnlimit", I32), ("datfrozenxid", Oid), ("datminmxid", Oid),
        ("dattablespace", Oid), ("datcollate", Text), ("datctype", Text),
        ("daticulocale", Text), ("datcollversion", Text), ("datacl", TextList),
    ]),
    rel("pg_roles", 12001, 'v', View, &[
        ("rolname", Text), ("rolsuper", Bool), ("rolinherit", Bool), ("rolcreaterole", Bool),
        ("rolcreatedb", Bool), ("rolcanlogin", Bool), ("rolreplication", Bool),
        ("rolconnlimit", I32), ("rolpassword", Text), ("rolvaliduntil", Timestamptz),
        ("rolbypassrls", Bool), ("rolconfig", TextList), ("oid", Oid),
    ]),
    rel("pg_user", 12002, 'v', View, &[
        ("usename", Text), ("usesysid", Oid), ("usecreatedb", Bool), ("usesuper", Bool),
        ("userepl", Bool), ("usebypassrls", Bool), ("passwd", Text),
        ("valuntil", Timestamptz), ("useconfig", TextList),
    ]),
    rel("pg_auth_members", 1261, 'r', Empty, &[
        ("roleid", Oid), ("member", Oid), ("grantor", Oid), ("admin_option", Bool),
    ]),
    rel("pg_tablespace", 1213, 'r', Catalog, &[
        ("oid", Oid), ("spcname", Text), ("spcowner", Oid), ("spcacl", TextList),
        ("spcoptions", TextList),
    ]),
    rel("pg_settings", 12003, 'v', Catalog, &[
        ("name", Text), ("setting", Text), ("unit", Text), ("category", Text),
        ("short_desc", Text), ("extra_desc", Text), ("context", Text), ("vartype", Text),
        ("source", Text), ("min_val", Text), ("max_val", Text), ("enumvals", TextList),
        ("boot_val", Text), ("reset_val", Text), ("sourcefile", Text), ("sourceline", I32),
        ("pending_restart", Bool),
    ]),
    rel("pg_tables", 12004, 'v', Catalog, &[
        ("schemaname", Text), ("tablename", Text), ("tableowner", Text), ("tablespace", Text),
        ("hasindexes", Bool), ("hasrules", Bool), ("hastriggers", Bool), ("rowsecurity", Bool),
    ]),
    rel("pg_views", 12005, 'v', Catalog, &[
        ("schemaname", Text), ("viewname", Text), ("viewowner", Text), ("definition", Text),
    ]),
    rel("pg_indexes", 12006, 'v', Catalog, &[
        ("schemaname", Text), ("tablename", Text), ("indexname", Text), ("tablespace", Text),
        ("indexdef", Text),
    ]),
    rel("pg_description", 2609, 'r', Empty, &[
        ("objoid", Oid), ("classoid", Oid), ("objsubid", I32), ("description", Text),
    ]),
    rel("pg_shdescription", 2396, 'r', Empty, &[
        ("objoid", Oid), ("classoid", Oid), ("description", Text),
    ]),
    rel("pg_collation", 3456, 'r', Catalog, &[
        ("oid", Oid), ("collname", Text), ("collnamespace", Oid), ("collowner", Oid),
        ("collprovider", Text), ("collisdeterministic", Bool), ("collencoding", I32),
        ("collcollate", Text), ("collctype", Text), ("colliculocale", Text),
        ("collversion", Text),
    ]),
    rel("pg_inherits", 2611, 'r', Empty, &[
        ("inhrelid", Oid), ("inhparent", Oid), ("inhseqno", I32), ("inhdetachpending", Bool),
    ]),
    rel("pg_partitioned_table", 3350, 'r', Empty, &[
        ("partrelid", Oid), ("partstrat", Text), ("partnatts", I16), ("partdefid", Oid),
        ("partattrs", I16List), ("partclass", OidList), ("partcollation", OidList),
        ("partexprs", Text),
    ]),
    rel("pg_policy", 3256, 'r', Empty, &[
        ("oid", Oid), ("polname", Text), ("polrelid", Oid), ("polcmd", Text),
        ("polpermissive", Bool), ("polroles", OidList), ("polqual", Text),
        ("polwithcheck", Text),
    ]),
    rel("pg_publication", 6104, 'r', Empty, &[
        ("oid", Oid), ("pubname", Text), ("pubowner", Oid), ("puballtables", Bool),
        ("pubinsert", Bool), ("pubupdate", Bool), ("pubdelete", Bool), ("pubtruncate", Bool),
        ("pubviaroot", Bool),
    ]),
    rel("pg_publication_rel", 6106, 'r', Empty, &[
        ("oid", Oid), ("prpubid", Oid), ("prrelid", Oid), ("prqual", Text),
        ("prattrs", I16List),
    ]),
    rel("pg_publication_namespace", 6237, 'r', Empty, &[
        ("oid", Oid), ("pnpubid", Oid), ("pnnspid", Oid),
    ]),
    rel("pg_statistic_ext", 3381, 'r', Empty, &[
        ("oid", Oid), ("stxrelid", Oid), ("stxname", Text), ("stxnamespace", Oid),
        ("stxowner", Oid), ("stxstattarget", I32), ("stxkeys", I16List), ("stxkind", TextList),
        ("stxexprs", Text),
    ]),
    rel("pg_trigger", 2620, 'r', Empty, &[
        ("oid", Oid), ("tgrelid", Oid), ("tgparentid", Oid), ("tgname", Text), ("tgfoid", Oid),
        ("tgtype", I16), ("tgenabled", Text), ("tgisinternal", Bool), ("tgconstrrelid", Oid),
        ("tgconstrindid", Oid), ("tgconstraint", Oid), ("tgdeferrable", Bool),
        ("tginitdeferred", Bool), ("tgnargs", I16), ("tgattr", I16List), ("tgargs", Text),
        ("tgqual", Text), ("tgoldtable", Text), ("tgnewtable", Text),
    ]),
    rel("pg_rewrite", 2618, 'r', Empty, &[
        ("oid", Oid), ("rulename", Text), ("ev_class", Oid), ("ev_type", Text),
        ("ev_enabled", Text), ("is_instead", Bool), ("ev_qual", Text), ("ev_action", Text),
    ]),
    rel("pg_foreign_table", 3118, 'r', Empty, &[
        ("ftrelid", Oid), ("ftserver", Oid), ("ftoptions", TextList),
    ]),
    rel("pg_sequence", 2224, 'r', Empty, &[
        ("seqrelid", Oid), ("seqtypid", Oid), ("seqstart", I64), ("seqincrement", I64),
        ("seqmax", I64), ("seqmin", I64), ("seqcache", I64), ("seqcycle", Bool),
    ]),
    rel("pg_enum", 3501, 'r', Empty, &[
        ("oid", Oid), ("enumtypid", Oid), ("enumsortorder", F32), ("enumlabel", Text),
    ]),
    rel("pg_range", 3541, 'r', Empty, &[
        ("rngtypid", Oid), ("rngsubtype", Oid), ("rngmultitypid", Oid), ("rngcollation", Oid),
        ("rngsubopc", Oid), ("rngcanonical", Text), ("rngsubdiff", Text),
    ]),
    rel("pg_proc", 1255, 'r', Empty, &[
        ("oid", Oid), ("proname", Text), ("pronamespace", Oid), ("proowner", Oid),
        ("prolang", Oid), ("procost", F32), ("prorows", F32), ("provariadic", Oid),
        ("prosupport", Text), ("prokind", Text), ("prosecdef", Bool), ("proleakproof", Bool),
        ("proisstrict", Bool), ("proretset", Bool), ("provolatile", Text),
        ("proparallel", Text), ("pronargs", I16), ("pronargdefaults", I16),
        ("prorettype", Oid), ("proargtypes", OidList), ("proallargtypes", OidList),
        ("proargmodes", TextList), ("proargnames", TextList), ("proargdefaults", Text),
        ("protrftypes", OidList), ("prosrc", Text), ("probin", Text), ("prosqlbody", Text),
        ("proconfig", TextList), ("proacl", TextList),
    ]),
    rel("pg_opclass", 2616, 'r', Empty, &[
        ("oid", Oid), ("opcmethod", Oid), ("opcname", Text), ("opcnamespace", Oid),
        ("opcowner", Oid), ("opcfamily", Oid), ("opcintype", Oid), ("opcdefault", Bool),
        ("opckeytype", Oid),
    ]),
    rel("pg_extension", 3079, 'r', Empty, &[
        ("oid", Oid), ("extname", Text), ("extowner", Oid), ("extnamespace", Oid),
        ("extrelocatable", Bool), ("extversion", Text), ("extconfig", OidList),
        ("extcondition", TextList),
    ]),
    rel("pg_depend", 2608, 'r', Empty, &[
        ("classid", Oid), ("objid", Oid), ("objsubid", I32), ("refclassid", Oid),
        ("refobjid", Oid), ("refobjsubid", I32), ("deptype", Text),
    ]),
    rel("pg_matviews", 12007, 'v', Empty, &[
        ("schemaname", Text), ("matviewname", Text), ("matviewowner", Text),
        ("tablespace", Text), ("hasindexes", Bool), ("ispopulated", Bool),
        ("definition", Text),
    ]),
];

/// The relation called `name`.
pub(crate) fn relation(name: &str) -> Option<&'static Relation> {
    RELATIONS.iter().find(|r| r.name == name)
}

/// Whether PhantomDB never has rows in the relation called `name`.
pub(crate) fn always_empty(name: &str) -> bool {
    relation(name).is_some_and(|r| r.source == Source::Empty)
}
