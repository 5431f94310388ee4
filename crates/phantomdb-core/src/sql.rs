//! Splitting SQL text into statements: DataFusion's parser, plus the statements PhantomDB
//! adds to its dialect (`COPY table FROM 'file'`).

use datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{
    CopyOption, CopySource, CopyTarget, Statement as SqlStatement,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{Error, Result};

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

/// Parses `sql` into statements.
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    let dialect = GenericDialect {};
    let mut parser = DFParserBuilder::new(sql)
        .with_dialect(&dialect)
        .build()
        .map_err(|e| Error::Sql(e.strip_backtrace()))?;
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
            return Err(Error::Sql(format!(
                "SQL error: expected end of statement, found: {}",
                parser.parser.peek_token()
            )));
        }
        let stmt = if let Some(stmt) = parse_plugin_statement(&mut parser.parser)? {
            stmt
        } else if is_copy_from(&parser.parser) {
            let parsed = parser
                .parser
                .parse_statement()
                .map_err(|e| Error::Sql(format!("SQL error: {e}")))?;
            Statement::CopyFrom(copy_from(parsed)?)
        } else {
            Statement::DataFusion(Box::new(
                parser
                    .parse_statement()
                    .map_err(|e| Error::Sql(e.strip_backtrace()))?,
            ))
        };
        out.push(stmt);
        expecting_delimiter = true;
    }
    Ok(out)
}

/// Parses `LOAD PLUGIN 'path'`, `UNLOAD PLUGIN name` and `SHOW PLUGINS` when the parser
/// stands at one.
fn parse_plugin_statement(
    p: &mut datafusion::sql::sqlparser::parser::Parser,
) -> Result<Option<Statement>> {
    let word = |t: &Token| match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    };
    let first = word(&p.peek_token().token);
    let second = word(&p.peek_nth_token(1).token);
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
