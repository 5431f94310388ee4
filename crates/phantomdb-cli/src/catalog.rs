//! The database's tables and views as the shell shows and dumps them, read from the system
//! tables (`phantomdb_tables()`, `phantomdb_columns()`, `phantomdb_views()`).

use anyhow::Result;
use phantomdb::arrow::util::display::array_value_to_string;
use phantomdb::Connection;

/// Rows of a query, every value as text.
pub async fn text_rows(conn: &Connection, sql: &str) -> Result<Vec<Vec<String>>> {
    let result = conn.execute_async(sql).await?;
    let mut rows = Vec::new();
    for batch in &result.batches {
        for r in 0..batch.num_rows() {
            let row = batch
                .columns()
                .iter()
                .map(|c| array_value_to_string(c, r))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            rows.push(row);
        }
    }
    Ok(rows)
}

/// One column of a table.
pub struct Column {
    pub name: String,
    pub sql_type: String,
    pub not_null: bool,
    pub default: Option<String>,
}

/// A table: its columns, primary key, storage engine and engine options.
pub struct Table {
    pub name: String,
    pub engine: String,
    /// `key=value` pairs as the catalog shows them (credentials are never shown).
    pub options: Vec<(String, String)>,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
}

impl Table {
    /// The `CREATE TABLE` statement that makes this table again (with `;`).
    pub fn create_sql(&self) -> String {
        let mut body: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let mut s = format!("{} {}", quote_ident(&c.name), c.sql_type);
                if c.not_null {
                    s.push_str(" NOT NULL");
                }
                if let Some(d) = &c.default {
                    s.push_str(&format!(" DEFAULT {d}"));
                }
                s
            })
            .collect();
        if !self.primary_key.is_empty() {
            let key: Vec<String> = self.primary_key.iter().map(|k| quote_ident(k)).collect();
            body.push(format!("PRIMARY KEY ({})", key.join(", ")));
        }
        let mut sql = format!(
            "CREATE TABLE {} ({}) USING {}",
            quote_ident(&self.name),
            body.join(", "),
            self.engine
        );
        if !self.options.is_empty() {
            let options: Vec<String> = self
                .options
                .iter()
                .map(|(k, v)| format!("{k} = {}", quote_literal(v)))
                .collect();
            sql.push_str(&format!(" WITH ({})", options.join(", ")));
        }
        sql.push(';');
        sql
    }
}

/// Every table, by name.
pub async fn tables(conn: &Connection) -> Result<Vec<Table>> {
    let columns = text_rows(
        conn,
        "SELECT table_name, name, type, not_null, \"default\", key_position \
         FROM phantomdb_columns() ORDER BY table_name, CAST(position AS INT)",
    )
    .await?;
    let rows = text_rows(
        conn,
        "SELECT name, engine, options FROM phantomdb_tables() ORDER BY name",
    )
    .await?;
    let mut out = Vec::new();
    for t in rows {
        let mine: Vec<&Vec<String>> = columns.iter().filter(|c| c[0] == t[0]).collect();
        let mut key: Vec<(u32, String)> = mine
            .iter()
            .filter_map(|c| Some((c[5].parse().ok()?, c[1].clone())))
            .collect();
        key.sort();
        out.push(Table {
            name: t[0].clone(),
            engine: t[1].clone(),
            options: parse_options(&t[2]),
            columns: mine
                .iter()
                .map(|c| Column {
                    name: c[1].clone(),
                    sql_type: c[2].clone(),
                    not_null: c[3] == "true",
                    default: (!c[4].is_empty()).then(|| c[4].clone()),
                })
                .collect(),
            primary_key: key.into_iter().map(|(_, n)| n).collect(),
        });
    }
    Ok(out)
}

/// Every view as `(name, query)`, by name.
pub async fn views(conn: &Connection) -> Result<Vec<(String, String)>> {
    Ok(text_rows(
        conn,
        "SELECT name, query FROM phantomdb_views() ORDER BY name",
    )
    .await?
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect())
}

/// `k=v, k2=v2` as `phantomdb_tables()` shows options.
fn parse_options(text: &str) -> Vec<(String, String)> {
    text.split(", ")
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A name as SQL: bare when it is a plain lower-case identifier, double-quoted otherwise.
pub fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !is_reserved(name);
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A string literal.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Words that cannot be a bare table or column name.
fn is_reserved(name: &str) -> bool {
    const RESERVED: &[&str] = &[
        "all",
        "and",
        "as",
        "asc",
        "between",
        "by",
        "case",
        "cast",
        "create",
        "cross",
        "default",
        "delete",
        "desc",
        "distinct",
        "drop",
        "else",
        "end",
        "except",
        "exists",
        "false",
        "from",
        "full",
        "group",
        "having",
        "in",
        "inner",
        "insert",
        "intersect",
        "into",
        "is",
        "join",
        "key",
        "left",
        "like",
        "limit",
        "not",
        "null",
        "offset",
        "on",
        "or",
        "order",
        "outer",
        "primary",
        "right",
        "select",
        "set",
        "table",
        "then",
        "to",
        "true",
        "union",
        "update",
        "user",
        "using",
        "values",
        "when",
        "where",
        "with",
    ];
    RESERVED.contains(&name)
}
