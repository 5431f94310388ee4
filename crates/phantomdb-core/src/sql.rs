//! Splitting SQL text into statements: DataFusion's parser, plus the statements PhantomDB
//! adds to its dialect (`COPY table FROM 'file'`).

use datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use std::collections::{BTreeMap, VecDeque};

use datafusion::sql::sqlparser::ast::{
    CopyOption, CopySource, CopyTarget, CreateTableOptions, Expr as SqlExpr, SqlOption,
    Statement as SqlStatement, Value as SqlValue,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::error::{Error, Result};

pub mod limits;
mod reindex;

pub use reindex::Reindex;

/// One parsed statement.
#[derive(Debug, Clone)]
pub enum Statement {
    /// A statement DataFusion understands (possibly handled by PhantomDB, like DDL and DML).
    DataFusion(Box<DfStatement>),
    /// `COPY table [(columns)] FROM 'path' [WITH (...)]`: bulk load.
    CopyFrom(CopyFrom),
    /// `LOAD PLUGIN 'path'`.
    LoadPlugin(String),
    /// `UNLOAD PLUGIN name`.
    UnloadPlugin(String),
    /// `SHOW PLUGINS`.
    ShowPlugins,
    /// `CREATE TABLE ... USING engine [WITH (key = 'value', ...)]`: a CREATE TABLE (the
    /// DataFusion statement, without the PhantomDB clauses) on a chosen storage engine.
    CreateTableUsing(Box<CreateTableUsing>),
    /// `SET default_table_access_method = 'engine'`.
    SetDefaultEngine(String),
    /// `REINDEX ...`: rebuilds indexes from their tables.
    Reindex(Reindex),
}

/// A `CREATE TABLE` with PhantomDB's storage clauses.
#[derive(Debug, Clone)]
pub struct CreateTableUsing {
    /// The statement for DataFusion to plan.
    pub statement: DfStatement,
    /// `USING engine`, if given (else the database's default engine).
    pub engine: Option<String>,
    /// `WITH (...)` options.
    pub options: BTreeMap<String, String>,
}

/// A parsed `COPY ... FROM`.
#[derive(Debug, Clone)]
pub struct CopyFrom {
    /// Target table name, normalized.
    pub table: String,
    /// Target columns, empty for all.
    pub columns: Vec<String>,
    /// File to read.
    pub path: String,
    /// `FORMAT` option (csv, parquet, json), if given.
    pub format: Option<String>,
    /// `HEADER` option, if given.
    pub header: Option<bool>,
    /// `DELIMITER` option, if given.
    pub delimiter: Option<char>,
}

/// Normalizes an unquoted identifier the way DataFusion does (lower case).
pub(crate) fn normalize_ident(ident: &datafusion::sql::sqlparser::ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// Parses `sql` into statements. A syntax error carries its position in `sql`
/// ([`Error::position`]).
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    limits::check_length(sql)?;
    parse_statements(sql).map_err(|e| e.at_end_of(sql))
}

fn parse_statements(sql: &str) -> Result<Vec<Statement>> {
    let dialect = GenericDialect {};
    let mut parser = DFParserBuilder::new(sql)
        .with_dialect(&dialect)
        .build()
        .map_err(Error::from)?;
    // `USING engine` is not in DataFusion's dialect: take it out of the token stream, and
    // remember it for the CREATE TABLE statement it belongs to.
    let mut engines = VecDeque::new();
    if sql.to_ascii_lowercase().contains("using") {
        let tokens = Tokenizer::new(&dialect, sql)
            .tokenize_with_location()
            .map_err(|e| Error::from_parser(ParserError::TokenizerError(e.to_string())))?;
        let (tokens, found) = take_using_clauses(tokens);
        engines = found;
        let inner = std::mem::replace(
            &mut parser.parser,
            datafusion::sql::sqlparser::parser::Parser::new(&dialect),
        );
        parser.parser = inner.with_tokens_with_locations(tokens);
    }
    let mut out = Vec::new();
    let mut expecting_delimiter = false;
    loop {
        while parser.parser.consume_token(&Token::SemiColon) {
            expecting_delimiter = false;
        }
        if parser.parser.peek_token() == Token::EOF {
            break;
        }
        if expecting_delimiter {
            return Err(Error::unexpected_token(&parser.parser.peek_token()));
        }
        let stmt = if let Some(stmt) = parse_plugin_statement(&mut parser.parser)? {
            stmt
        } else if is_copy_from(&parser.parser) {
            let parsed = parser
                .parser
                .parse_statement()
                .map_err(Error::from_parser)?;
            Statement::CopyFrom(copy_from(parsed)?)
        } else if let Some(stmt) = parse_set_default_engine(&mut parser.parser)? {
            stmt
        } else if let Some(stmt) = parse_role_statement(&mut parser.parser)? {
            stmt
        } else if let Some(reindex) = reindex::parse_reindex(&mut parser.parser)? {
            Statement::Reindex(reindex)
        } else {
            let stmt = limits::check_depth(parser.parse_statement().map_err(Error::from)?)?;
            match stmt {
                DfStatement::Statement(s) if matches!(s.as_ref(), SqlStatement::CreateTable(_)) => {
                    create_table(*s, engines.pop_front().flatten())?
                }
                other => Statement::DataFusion(Box::new(other)),
            }
        };
        out.push(stmt);
        expecting_delimiter = true;
    }
    Ok(out)
}

/// Splits the storage clauses off a CREATE TABLE.
fn create_table(stmt: SqlStatement, engine: Option<String>) -> Result<Statement> {
    let SqlStatement::CreateTable(mut ct) = stmt else {
        return Err(Error::Sql("expected CREATE TABLE".into()));
    };
    let options = match std::mem::take(&mut ct.table_options) {
        CreateTableOptions::None => BTreeMap::new(),
        CreateTableOptions::With(opts) => table_options(opts)?,
        other => {
            return Err(Error::Unsupported(format!(
                "table options {other}; use WITH (key = 'value', ...)"
            )))
        }
    };
    let statement = DfStatement::Statement(Box::new(SqlStatement::CreateTable(ct)));
    if engine.is_none() && options.is_empty() {
        return Ok(Statement::DataFusion(Box::new(statement)));
    }
    Ok(Statement::CreateTableUsing(Box::new(CreateTableUsing {
        statement,
        engine,
        options,
    })))
}

/// `WITH (key = 'value', ...)` as a map; values may be strings, numbers, booleans or words.
fn table_options(opts: Vec<SqlOption>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for opt in opts {
        let SqlOption::KeyValue { key, value } = opt else {
            return Err(Error::Sql(format!(
                "table option {opt}: expected key = 'value'"
            )));
        };
        let value = match value {
            SqlExpr::Value(v) => match v.value {
                SqlValue::SingleQuotedString(s) | SqlValue::DoubleQuotedString(s) => s,
                SqlValue::Number(n, _) => n.to_string(),
                SqlValue::Boolean(b) => b.to_string(),
                other => other.to_string(),
            },
            SqlExpr::Identifier(i) => i.value,
            other => {
                return Err(Error::Sql(format!(
                    "table option {key}: expected a literal value, found {other}"
                )))
            }
        };
        out.insert(key.value.to_lowercase(), value);
    }
    Ok(out)
}

/// Removes `USING engine` from every `CREATE TABLE` (where it stands at the top level, before
/// any `AS`), returning the tokens left and, per CREATE TABLE in order, the engine named.
fn take_using_clauses(
    tokens: Vec<TokenWithSpan>,
) -> (Vec<TokenWithSpan>, VecDeque<Option<String>>) {
    let is_kw = |t: &Token, k: Keyword| matches!(t, Token::Word(w) if w.keyword == k);
    let mut out = Vec::with_capacity(tokens.len());
    let mut engines = VecDeque::new();
    // Per statement: the significant tokens seen so far, paren depth, whether this is a
    // CREATE TABLE still before its AS.
    let mut words: Vec<Keyword> = Vec::new();
    let mut depth = 0i32;
    let mut in_create = false;
    let mut found: Option<String> = None;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i].token;
        if matches!(t, Token::Whitespace(_)) {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        if matches!(t, Token::SemiColon | Token::EOF) {
            if in_create {
                engines.push_back(found.take());
            }
            words.clear();
            depth = 0;
            in_create = false;
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        if words.len() < 6 {
            if let Token::Word(w) = t {
                words.push(w.keyword);
                if w.keyword == Keyword::TABLE && words.first() == Some(&Keyword::CREATE) {
                    in_create = true;
                }
            } else {
                words.push(Keyword::NoKeyword);
            }
        }
        match t {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ => {}
        }
        if in_create && depth == 0 && is_kw(t, Keyword::AS) {
            engines.push_back(found.take());
            in_create = false;
        }
        if in_create && depth == 0 && is_kw(t, Keyword::USING) {
            // The next significant token must be the engine name.
            let mut j = i + 1;
            while j < tokens.len() && matches!(tokens[j].token, Token::Whitespace(_)) {
                j += 1;
            }
            if let Some(Token::Word(w)) = tokens.get(j).map(|t| &t.token) {
                found = Some(if w.quote_style.is_some() {
                    w.value.clone()
                } else {
                    w.value.to_lowercase()
                });
                out.push(TokenWithSpan::wrap(Token::Whitespace(Whitespace::Space)));
                i = j + 1;
                continue;
            }
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    if in_create {
        engines.push_back(found.take());
    }
    (out, engines)
}

/// Parses `SET default_table_access_method = 'engine'` (also `TO`).
fn parse_set_default_engine(
    p: &mut datafusion::sql::sqlparser::parser::Parser,
) -> Result<Option<Statement>> {
    let word = |t: &Token| match t {
        Token::Word(w) => Some(w.value.to_ascii_lowercase()),
        _ => None,
    };
    if word(&p.peek_token().token).as_deref() != Some("set")
        || word(&p.peek_nth_token(1).token).as_deref()
            != Some(crate::catalog::DEFAULT_ENGINE_SETTING)
    {
        return Ok(None);
    }
    p.next_token();
    p.next_token();
    match p.next_token().token {
        Token::Eq => {}
        Token::Word(w) if w.keyword == Keyword::TO => {}
        other => {
            return Err(Error::Sql(format!(
                "SET {}: expected = or TO, found {other}",
                crate::catalog::DEFAULT_ENGINE_SETTING
            )))
        }
    }
    let engine = match p.next_token().token {
        Token::SingleQuotedString(s) => s,
        Token::Word(w) if w.quote_style.is_none() => w.value.to_lowercase(),
        Token::Word(w) => w.value,
        other => {
            return Err(Error::Sql(format!(
                "SET {}: expected an engine name, found {other}",
                crate::catalog::DEFAULT_ENGINE_SETTING
            )))
        }
    };
    Ok(Some(Statement::SetDefaultEngine(engine)))
}

/// The first two tokens ahead, upper-cased, when they are unquoted words.
fn leading_keywords(
    p: &datafusion::sql::sqlparser::parser::Parser,
) -> (Option<String>, Option<String>) {
    let word = |t: &Token| match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    };
    (
        word(&p.peek_token().token),
        word(&p.peek_nth_token(1).token),
    )
}

/// Parses `CREATE | ALTER | DROP ROLE ...` (and `... USER ...`, PostgreSQL's other spelling;
/// `CREATE USER` implies `LOGIN`) with PostgreSQL's dialect: the generic one skips role options
/// and has no `ALTER ROLE`.
fn parse_role_statement(
    p: &mut datafusion::sql::sqlparser::parser::Parser,
) -> Result<Option<Statement>> {
    let (first, second) = leading_keywords(p);
    let user = match (first.as_deref(), second.as_deref()) {
        (Some("CREATE" | "ALTER" | "DROP"), Some("ROLE")) => false,
        (Some("CREATE" | "ALTER" | "DROP"), Some("USER")) => true,
        (Some("GRANT" | "REVOKE"), _) if is_role_grant(p) => false,
        _ => return Ok(None),
    };
    let mut tokens = Vec::new();
    while !matches!(p.peek_token().token, Token::SemiColon | Token::EOF) {
        tokens.push(p.next_token());
    }
    if user {
        tokens[1] = TokenWithSpan::wrap(Token::make_keyword("ROLE"));
    }
    if matches!(first.as_deref(), Some("GRANT" | "REVOKE")) {
        tokens = mark_granted_roles(tokens);
    }
    let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
    let mut pg = datafusion::sql::sqlparser::parser::Parser::new(&dialect)
        .with_tokens_with_locations(tokens);
    let mut stmt = pg.parse_statement().map_err(Error::from_parser)?;
    if pg.peek_token() != Token::EOF {
        return Err(Error::unexpected_token(&pg.peek_token()));
    }
    if let SqlStatement::CreateRole(c) = &mut stmt {
        if user && c.login.is_none() {
            c.login = Some(true);
        }
    }
    Ok(Some(Statement::DataFusion(Box::new(
        DfStatement::Statement(Box::new(stmt)),
    ))))
}

/// Whether the parser stands at `GRANT role [, ...] TO` or `REVOKE role [, ...] FROM`: a
/// GRANT or REVOKE without `ON` (privileges on objects always name them).
fn is_role_grant(p: &datafusion::sql::sqlparser::parser::Parser) -> bool {
    let is_keyword = |t: &Token, k: Keyword| matches!(t, Token::Word(w) if w.keyword == k);
    for n in 1..512 {
        let t = p.peek_nth_token(n).token;
        if matches!(t, Token::EOF | Token::SemiColon) || is_keyword(&t, Keyword::ON) {
            return false;
        }
        if is_keyword(&t, Keyword::TO) || is_keyword(&t, Keyword::FROM) {
            return n > 1;
        }
    }
    false
}

/// `GRANT a, b TO ...` as `GRANT ROLE a, ROLE b TO ...`, the form sqlparser reads as role
/// grants.
fn mark_granted_roles(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let is_keyword = |t: &Token, k: Keyword| matches!(t, Token::Word(w) if w.keyword == k);
    let mut out = Vec::with_capacity(tokens.len() + 4);
    let mut in_list = true;
    let mut expect_name = false;
    for (i, t) in tokens.into_iter().enumerate() {
        if i == 0 {
            out.push(t);
            expect_name = true;
            continue;
        }
        if in_list && (is_keyword(&t.token, Keyword::TO) || is_keyword(&t.token, Keyword::FROM)) {
            in_list = false;
        }
        if in_list && expect_name {
            out.push(TokenWithSpan::wrap(Token::make_keyword("ROLE")));
            expect_name = false;
        }
        if in_list && t.token == Token::Comma {
            expect_name = true;
        }
        out.push(t);
    }
    out
}

/// Parses `LOAD PLUGIN 'path'`, `UNLOAD PLUGIN name` and `SHOW PLUGINS` when the parser
/// stands at one.
fn parse_plugin_statement(
    p: &mut datafusion::sql::sqlparser::parser::Parser,
) -> Result<Option<Statement>> {
    let (first, second) = leading_keywords(p);
    let stmt = match (first.as_deref(), second.as_deref()) {
        (Some("LOAD"), Some("PLUGIN")) => {
            p.next_token();
            p.next_token();
            let path = p
                .parse_literal_string()
                .map_err(|e| Error::Sql(format!("LOAD PLUGIN expects a quoted file path: {e}")))?;
            Statement::LoadPlugin(path)
        }
        (Some("UNLOAD"), Some("PLUGIN")) => {
            p.next_token();
            p.next_token();
            let name = match p.next_token().token {
                Token::Word(w) => w.value,
                Token::SingleQuotedString(s) => s,
                other => {
                    return Err(Error::Sql(format!(
                        "UNLOAD PLUGIN expects a plugin name, found {other}"
                    )))
                }
            };
            Statement::UnloadPlugin(name)
        }
        (Some("SHOW"), Some("PLUGINS")) => {
            p.next_token();
            p.next_token();
            Statement::ShowPlugins
        }
        _ => return Ok(None),
    };
    Ok(Some(stmt))
}

/// Whether the parser stands at `COPY <table> ... FROM`.
fn is_copy_from(p: &datafusion::sql::sqlparser::parser::Parser) -> bool {
    let is_keyword = |t: &Token, k: Keyword| matches!(t, Token::Word(w) if w.keyword == k);
    if !is_keyword(&p.peek_token().token, Keyword::COPY) {
        return false;
    }
    let mut depth = 0i32;
    for n in 1..512 {
        let t = p.peek_nth_token(n).token;
        match t {
            Token::EOF | Token::SemiColon => return false,
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0 && is_keyword(&t, Keyword::FROM) => return true,
            _ if depth == 0 && (is_keyword(&t, Keyword::TO) || is_keyword(&t, Keyword::INTO)) => {
                return false
            }
            _ => {}
        }
    }
    false
}

fn copy_from(stmt: SqlStatement) -> Result<CopyFrom> {
    let SqlStatement::Copy {
        source,
        to: false,
        target,
        options,
        ..
    } = stmt
    else {
        return Err(Error::Sql("expected COPY ... FROM".into()));
    };
    let CopySource::Table {
        table_name,
        columns,
    } = source
    else {
        return Err(Error::Sql("COPY FROM needs a table, not a query".into()));
    };
    let CopyTarget::File { filename } = target else {
        return Err(Error::Unsupported(
            "COPY FROM reads from a file path only".into(),
        ));
    };
    let table = table_name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(normalize_ident)
        .ok_or_else(|| Error::Sql("COPY FROM: missing table name".into()))?;
    let mut copy = CopyFrom {
        table,
        columns: columns.iter().map(normalize_ident).collect(),
        path: filename,
        format: None,
        header: None,
        delimiter: None,
    };
    for option in options {
        match option {
            CopyOption::Format(f) => copy.format = Some(f.value.to_lowercase()),
            CopyOption::Header(h) => copy.header = Some(h),
            CopyOption::Delimiter(d) => copy.delimiter = Some(d),
            other => return Err(Error::Unsupported(format!("COPY option {other}"))),
        }
    }
    Ok(copy)
}
