//! The rows of the `pg_catalog` relations PhantomDB fills from the statement's catalog
//! snapshot: tables, views, primary keys, defaults, storage engines.

use arrow::datatypes::{DataType, SchemaRef};

use super::cells::{row, Cell};
use super::oids;
use super::settings::PG_SETTINGS;
use super::tables::{Relation, RELATIONS};
use super::types::{pg_type_of, type_info, TYPES};
use crate::catalog::{Catalog, TableDef, ViewDef};
use crate::privileges::grants::{owner_name, DEFAULT_USER};

/// What the rows are built from: the statement's catalog, the storage engines it can use,
/// and the column lists of its views.
pub(crate) struct Snapshot<'a> {
    pub(crate) catalog: &'a Catalog,
    pub(crate) engines: Vec<String>,
    /// Each view with its columns (`None` when its query no longer plans).
    pub(crate) views: Vec<(&'a ViewDef, Option<SchemaRef>)>,
}

/// The rows of a catalog-sourced relation.
pub(crate) fn rows(relation: &Relation, s: &Snapshot<'_>) -> Vec<Vec<Cell>> {
    match relation.name {
        "pg_namespace" => namespaces(),
        "pg_class" => classes(s),
        "pg_attribute" => attributes(s),
        "pg_type" => types(s),
        "pg_attrdef" => attrdefs(s),
        "pg_index" => indexes(s),
        "pg_constraint" => constraints(s),
        "pg_am" => access_methods(s),
        "pg_tablespace" => vec![
            row![
                oids::DEFAULT_TABLESPACE,
                "pg_default",
                oids::BOOTSTRAP_SUPERUSER,
                Cell::Null,
                Cell::Null
            ],
            row![
                1664u32,
                "pg_global",
                oids::BOOTSTRAP_SUPERUSER,
                Cell::Null,
                Cell::Null
            ],
        ],
        "pg_settings" => settings(),
        "pg_tables" => pg_tables(s),
        "pg_views" => pg_views(s),
        "pg_indexes" => pg_indexes(s),
        "pg_collation" => collations(),
        _ => Vec::new(),
    }
}

/// The owner of namespaces, types and `pg_catalog`'s relations: the database owner.
const OWNER: u32 = oids::BOOTSTRAP_SUPERUSER;

fn namespaces() -> Vec<Vec<Cell>> {
    [
        (oids::PG_CATALOG_NAMESPACE, "pg_catalog"),
        (oids::PUBLIC_NAMESPACE, "public"),
        (oids::INFORMATION_SCHEMA_NAMESPACE, "information_schema"),
        (oids::PG_TOAST_NAMESPACE, "pg_toast"),
    ]
    .into_iter()
    .map(|(oid, name)| row![oid, name, OWNER, Cell::Null])
    .collect()
}

/// Non-secret engine options as `key=value`, PostgreSQL's `reloptions` form.
fn reloptions(def: &TableDef) -> Cell {
    let options: Vec<String> = def
        .options
        .iter()
        .filter(|(k, _)| !crate::system::is_secret(k))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if options.is_empty() {
        Cell::Null
    } else {
        Cell::TextList(options)
    }
}

/// One `pg_class` row; the columns after `relkind` that vary are passed in.
#[allow(clippy::too_many_arguments)]
fn class_row(
    oid: u32,
    owner: u32,
    name: &str,
    namespace: u32,
    reltype: u32,
    am: u32,
    has_index: bool,
    kind: char,
    natts: usize,
    options: Cell,
) -> Vec<Cell> {
    let natts = i16::try_from(natts).unwrap_or(i16::MAX);
    row![
        oid,
        name,
        namespace,
        reltype,
        0u32,
        owner,
        am,
        if kind == 'v' { 0 } else { oid },
        0u32,
        0i32,
        -1.0f32,
        0i32,
        0u32,
        has_index,
        false,
        'p',
        kind,
        natts,
        0i16,
        false,
        false,
        false,
        false,
        false,
        true,
        if kind == 'i' { 'n' } else { 'd' },
        false,
        0u32,
        0u32,
        0u32,
        Cell::Null,
        options,
        Cell::Null
    ]
}

fn classes(s: &Snapshot<'_>) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for def in s.catalog.tables() {
        let oid = oids::table(def);
        let owner = oids::role(owner_name(&def.owner));
        let pk = !def.primary_key.is_empty();
        rows.push(class_row(
            oid,
            owner,
            &def.name,
            oids::PUBLIC_NAMESPACE,
            oids::row_type(def),
            oids::access_method(&def.engine),
            pk,
            'r',
            def.schema.fields().len(),
            reloptions(def),
        ));
        if pk {
            rows.push(class_row(
                oids::primary_key_index(def),
                owner,
                &index_name(def),
                oids::PUBLIC_NAMESPACE,
                0,
                oids::BTREE_AM,
                false,
                'i',
                def.primary_key.len(),
                Cell::Null,
            ));
        }
    }
    for (view, schema) in &s.views {
        let oid = oids::view(&view.name);
        let natts = schema.as_ref().map_or(0, |s| s.fields().len());
        rows.push(class_row(
            oid,
            oids::role(owner_name(&view.owner)),
            &view.name,
            oids::PUBLIC_NAMESPACE,
            oid + 1,
            0,
            false,
            'v',
            natts,
            Cell::Null,
        ));
    }
    for r in RELATIONS {
        let am = if r.kind == 'r' { HEAP_AM } else { 0 };
        rows.push(class_row(
            r.oid,
            OWNER,
            r.name,
            oids::PG_CATALOG_NAMESPACE,
            0,
            am,
            false,
            r.kind,
            r.columns.len(),
            Cell::Null,
        ));
    }
    rows
}

/// `heap`: the access method of `pg_catalog`'s own tables.
const HEAP_AM: u32 = 2;

/// The name of a table's primary-key index and constraint, as PostgreSQL names them.
pub(crate) fn index_name(def: &TableDef) -> String {
    format!("{}_pkey", def.name)
}

/// One `pg_attribute` row.
fn attribute_row(
    relid: u32,
    attnum: usize,
    name: &str,
    ty: &DataType,
    not_null: bool,
    has_default: bool,
) -> Vec<Cell> {
    let pg = pg_type_of(ty);
    let info = type_info(pg.oid);
    let collation = info.map_or(0, |t| t.collation);
    let dims = i32::from(info.is_some_and(|t| t.elem != 0));
    let byval = matches!(pg.len, 1 | 2 | 4 | 8);
    let align = match pg.len {
        1 => 'c',
        2 => 's',
        8 => 'd',
        _ => 'i',
    };
    row![
        relid,
        name,
        pg.oid,
        -1i32,
        pg.len,
        i16::try_from(attnum).unwrap_or(i16::MAX),
        dims,
        -1i32,
        pg.typmod,
        byval,
        align,
        if pg.len == -1 { 'x' } else { 'p' },
        "",
        not_null,
        has_default,
        false,
        "",
        "",
        false,
        true,
        0i32,
        collation,
        Cell::Null,
        Cell::Null,
        Cell::Null,
        Cell::Null
    ]
}

fn attributes(s: &Snapshot<'_>) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for def in s.catalog.tables() {
        let oid = oids::table(def);
        for (i, f) in def.schema.fields().iter().enumerate() {
            let has_default = def.defaults.contains_key(f.name());
            rows.push(attribute_row(
                oid,
                i + 1,
                f.name(),
                f.data_type(),
                !f.is_nullable(),
                has_default,
            ));
        }
        let index = oids::primary_key_index(def);
        for (i, &k) in def.primary_key.iter().enumerate() {
            let f = def.schema.field(k);
            rows.push(attribute_row(
                index,
                i + 1,
                f.name(),
                f.data_type(),
                true,
                false,
            ));
        }
    }
    for (view, schema) in &s.views {
        let oid = oids::view(&view.name);
        for (i, f) in schema.iter().flat_map(|s| s.fields().iter()).enumerate() {
            rows.push(attribute_row(
                oid,
                i + 1,
                f.name(),
                f.data_type(),
                false,
                false,
            ));
        }
    }
    for r in RELATIONS {
        for (i, (name, ty)) in r.columns.iter().enumerate() {
            rows.push(attribute_row(
                r.oid,
                i + 1,
                name,
                &ty.data_type(),
                false,
                false,
            ));
        }
    }
    rows
}

fn types(s: &Snapshot<'_>) -> Vec<Vec<Cell>> {
    let mut rows: Vec<Vec<Cell>> = TYPES
        .iter()
        .map(|t| {
            let byval = matches!(t.len, 1 | 2 | 4 | 8);
            let subscript = if t.elem != 0 {
                "array_subscript_handler"
            } else {
                "-"
            };
            row![
                t.oid,
                t.name,
                oids::PG_CATALOG_NAMESPACE,
                OWNER,
                t.len,
                byval,
                'b',
                t.category,
                false,
                true,
                ',',
                0u32,
                subscript,
                t.elem,
                t.array,
                "-",
                "-",
                "-",
                "-",
                'i',
                if t.len == -1 { 'x' } else { 'p' },
                false,
                0u32,
                -1i32,
                0i32,
                t.collation,
                Cell::Null,
                Cell::Null,
                Cell::Null
            ]
        })
        .collect();
    for def in s.catalog.tables() {
        rows.push(row![
            oids::row_type(def),
            def.name.as_str(),
            oids::PUBLIC_NAMESPACE,
            OWNER,
            -1i16,
            false,
            'c',
            'C',
            false,
            true,
            ',',
            oids::table(def),
            "-",
            0u32,
            0u32,
            "-",
            "-",
            "-",
            "-",
            'd',
            'x',
            false,
            0u32,
            -1i32,
            0i32,
            0u32,
            Cell::Null,
            Cell::Null,
            Cell::Null
        ]);
    }
    rows
}

fn attrdefs(s: &Snapshot<'_>) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for def in s.catalog.tables() {
        for (i, f) in def.schema.fields().iter().enumerate() {
            if let Some(expr) = def.defaults.get(f.name()) {
                let attnum = i16::try_from(i + 1).unwrap_or(i16::MAX);
                rows.push(row![
                    oids::attrdef(def, i + 1),
                    oids::table(def),
                    attnum,
                    expr.as_str()
                ]);
            }
        }
    }
    rows
}

/// The 1-based column numbers of a table's primary key.
fn key_columns(def: &TableDef) -> Vec<i16> {
    def.primary_key
        .iter()
        .map(|&k| i16::try_from(k + 1).unwrap_or(i16::MAX))
        .collect()
}

fn indexes(s: &Snapshot<'_>) -> Vec<Vec<Cell>> {
    s.catalog
        .tables()
        .filter(|def| !def.primary_key.is_empty())
        .map(|def| {
            let keys = key_columns(def);
            let n = i16::try_from(keys.len()).unwrap_or(i16::MAX);
            let zeros = vec![0u32; keys.len()];
            row![
                oids::primary_key_index(def),
                oids::table(def),
                n,
                n,
                true,
                false,
                true,
                false,
                true,
                false,
                true,
                false,
                true,
                true,
                false,
                Cell::I16List(keys.clone()),
                Cell::OidList(zeros.clone()),
                Cell::OidList(zeros),
                Cell::I16List(vec![0; keys.len()]),
                Cell::Null,
                Cell::Null
            ]
        })
        .collect()
}

fn constraints(s: &Snapshot<'_>) -> Vec<Vec<Cell>> {
    s.catalog
        .tables()
        .filter(|def| !def.primary_key.is_empty())
        .map(|def| {
            row![
                oids::primary_key_constraint(def),
                index_name(def),
                oids::PUBLIC_NAMESPACE,
                'p',
                false,
                false,
                true,
                oids::table(def),
                0u32,
                oids::primary_key_index(def),
                0u32,
                0u32,
                ' ',
                ' ',
                ' ',
                true,
                0i32,
                true,
                Cell::I16List(key_columns(def)),
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null,
                Cell::Null
            ]
        })
        .collect()
}

fn access_methods(s: &Snapshot<'_>) -> Vec<Vec<Cell>> {
    let mut rows = vec![
        row![HEAP_AM, "heap", "heap_tableam_handler", 't'],
        row![oids::BTREE_AM, "btree", "bthandler", 'i'],
    ];
    let mut engines: Vec<&str> = s.engines.iter().map(String::as_str).collect();
    engines.extend(s.catalog.tables().map(|t| t.engine.as_str()));
    engines.sort_unstable();
    engines.dedup();
    for e in engines {
        rows.push(row![oids::access_method(e), e, "phantomdb", 't']);
    }
    rows
}

fn settings() -> Vec<Vec<Cell>> {
    PG_SETTINGS
        .iter()
        .map(|p| {
            row![
                p.name,
                p.value,
                Cell::Null,
                "PhantomDB",
                p.description,
                Cell::Null,
                "internal",
                "string",
                "default",
                Cell::Null,
                Cell::Null,
                Cell::Null,
                p.value,
                p.value,
                Cell::Null,
                Cell::Null,
                false
            ]
        })
        .collect()
}

fn pg_tables(s: &Snapshot<'_>) -> Vec<Vec<Cell>> {
    let user = s.catalog.tables().map(|def| {
        let pk = !def.primary_key.is_empty();
        row![
            "public",
            def.name.as_str(),
            owner_name(&def.owner),
            Cell::Null,
            pk,
            false,
            false,
            false
        ]
    });
    let system = RELATIONS.iter().filter(|r| r.kind == 'r').map(|r| {
        row![
            "pg_catalog",
            r.name,
            DEFAULT_USER,
            Cell::Null,
            false,
            false,
            false,
            false
        ]
    });
    user.chain(system).collect()
}

fn pg_views(s: &Snapshot<'_>) -> Vec<Vec<Cell>> {
    s.catalog
        .views()
        .map(|v| {
            row![
                "public",
                v.name.as_str(),
                owner_name(&v.owner),
                v.query.as_str()
            ]
        })
        .collect()
}

/// `CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)`: a primary key's index as
/// `pg_get_indexdef` and `pg_indexes` show it.
pub(crate) fn index_definition(def: &TableDef) -> String {
    format!(
        "CREATE UNIQUE INDEX {} ON public.{} USING btree ({})",
        quote_ident(&index_name(def)),
        quote_ident(&def.name),
        def.primary_key_names()
            .into_iter()
            .map(quote_ident)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `PRIMARY KEY (id)`: a primary key as `pg_get_constraintdef` shows it.
pub(crate) fn constraint_definition(def: &TableDef) -> String {
    let columns: Vec<String> = def
        .primary_key_names()
        .into_iter()
        .map(quote_ident)
        .collect();
    format!("PRIMARY KEY ({})", columns.join(", "))
}

/// An identifier as PostgreSQL prints it: bare when it is lower-case letters, digits and
/// underscores (not starting with a digit), double-quoted otherwise.
pub(crate) fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn pg_indexes(s: &Snapshot<'_>) -> Vec<Vec<Cell>> {
    s.catalog
        .tables()
        .filter(|def| !def.primary_key.is_empty())
        .map(|def| {
            row![
                "public",
                def.name.as_str(),
                index_name(def),
                Cell::Null,
                index_definition(def)
            ]
        })
        .collect()
}

fn collations() -> Vec<Vec<Cell>> {
    [
        (100u32, "default", 'd', Cell::Null),
        (950, "C", 'c', "C".into()),
        (951, "POSIX", 'c', "POSIX".into()),
    ]
    .into_iter()
    .map(|(oid, name, provider, locale)| {
        row![
            oid,
            name,
            oids::PG_CATALOG_NAMESPACE,
            OWNER,
            provider,
            true,
            -1i32,
            locale.clone(),
            locale,
            Cell::Null,
            Cell::Null
        ]
    })
    .collect()
}
