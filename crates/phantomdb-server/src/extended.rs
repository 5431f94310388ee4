//! The extended query protocol: `Parse` prepares the statement on the session (planned once,
//! described with its parameter and column types), `Bind` + `Execute` run it with parameters
//! and stream rows through a portal that honours `Execute`'s row limit.

use std::fmt::Debug;
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use futures::{stream, Sink, SinkExt, StreamExt};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::ExtendedQueryHandler;
use pgwire::api::results::{FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::stmt::StoredStatement;
use pgwire::api::store::Entry;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type, DEFAULT_NAME};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::extendedquery::{Bind, BindComplete, Parse, ParseComplete, Sync as PgSync};
use pgwire::messages::response::ReadyForQuery;
use pgwire::messages::PgWireBackendMessage;
use phantomdb::arrow::datatypes::SchemaRef;
use phantomdb::datafusion::common::ScalarValue;
use phantomdb::StatementDescription;

use crate::error_info::ClientError;
use crate::session::{session_of, Session};
use crate::statement::{self, Kind};
use crate::types;

/// A statement from `Parse`.
#[derive(Clone)]
pub(crate) struct ServerStatement(Arc<Parsed>);

struct Parsed {
    sql: String,
    kind: Kind,
    /// Prepared on the session, for statements that take parameters; others run as text.
    prepared: Option<Prepared>,
    /// The columns of a statement that returns rows but is not prepared (SHOW, EXPLAIN),
    /// learned by running it once at `Parse` (they have no side effects).
    utility_schema: Option<SchemaRef>,
}

/// A statement prepared on the session under `name`, forgotten when dropped.
struct Prepared {
    name: String,
    description: StatementDescription,
    session: Weak<Session>,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if let Some(session) = self.session.upgrade() {
            session.conn.close_named(&self.name);
        }
    }
}

/// Parses and prepares statements for the extended protocol.
#[derive(Debug, Default)]
pub(crate) struct Parser;

#[async_trait]
impl QueryParser for Parser {
    type Statement = ServerStatement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<ServerStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = session_of(client)?;
        let parsed = parse(&session, sql).await;
        if parsed.is_err() {
            session.mark_failed();
        }
        Ok(parsed?)
    }

    fn get_parameter_types(&self, stmt: &ServerStatement) -> PgWireResult<Vec<Type>> {
        Ok(match &stmt.0.prepared {
            Some(p) => p
                .description
                .parameter_types
                .iter()
                .map(|t| t.as_ref().map(types::pg_type).unwrap_or(Type::TEXT))
                .collect(),
            None => Vec::new(),
        })
    }

    fn get_result_schema(
        &self,
        stmt: &ServerStatement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let schema = match (&stmt.0.prepared, &stmt.0.utility_schema) {
            (Some(p), _) => &p.description.schema,
            (None, Some(schema)) => schema,
            (None, None) => return Ok(Vec::new()),
        };
        Ok(types::field_infos(schema, |i| format_of(column_format, i)))
    }
}

/// Parses and (for statements with parameters) prepares `sql` on the session.
async fn parse(session: &Arc<Session>, sql: &str) -> Result<Option<ServerStatement>, ClientError> {
    let rewritten = phantomdb::pg_catalog::rewrite(sql);
    let sql = rewritten.as_ref();
    let kind = match phantomdb::parse(sql) {
        Ok(statements) if statements.len() == 1 => statement::kind(&statements[0]),
        Ok(statements) if statements.is_empty() => return Ok(None),
        Ok(_) => {
            return Err(ClientError::new(
                "42601",
                "cannot insert multiple commands into a prepared statement",
            ))
        }
        Err(_) if crate::copy::parse_client_copy(sql).is_some() => Kind::Other("COPY".into()),
        Err(e) => return Err(e.into()),
    };
    if session.is_aborted() && !kind.allowed_when_aborted() {
        return Err(crate::error_info::aborted_error());
    }
    let utility_schema = if kind.is_utility_query() {
        let stream = session.conn.execute_stream_async(sql).await?;
        Some(stream.schema().clone())
    } else {
        None
    };
    let prepared = if kind.preparable() {
        let name = session.statement_name();
        let description = session.conn.prepare_named(&name, sql).await?;
        Some(Prepared {
            name,
            description,
            session: Arc::downgrade(session),
        })
    } else {
        None
    };
    Ok(Some(ServerStatement(Arc::new(Parsed {
        sql: sql.to_string(),
        kind,
        prepared,
        utility_schema,
    }))))
}

/// The format of result column `i` (text unless the client asked for binary).
fn format_of(format: Option<&Format>, i: usize) -> FieldFormat {
    match format {
        Some(Format::UnifiedBinary) => FieldFormat::Binary,
        Some(Format::Individual(codes)) => codes
            .get(i)
            .map(|c| FieldFormat::from(*c))
            .unwrap_or(FieldFormat::Text),
        _ => FieldFormat::Text,
    }
}

/// Runs portals.
#[derive(Debug, Default)]
pub(crate) struct ExtendedHandler {
    parser: Arc<Parser>,
}

#[async_trait]
impl ExtendedQueryHandler for ExtendedHandler {
    type Statement = ServerStatement;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<ServerStatement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(client)?;
        let parsed = portal.statement.statement.0.clone();
        let kind = &parsed.kind;
        session.begin_statement(kind)?;
        if matches!(
            kind,
            Kind::Savepoint(_) | Kind::Release(_) | Kind::RollbackTo(_)
        ) {
            let result = session.savepoint_command(kind);
            session.end_statement_of(kind, result.is_ok()).await;
            return Ok(Response::Execution(result?));
        }
        if session.is_aborted() {
            let result = session.roll_back_aborted().await;
            session.end_statement_of(kind, result.is_ok()).await;
            result.map_err(ClientError::from)?;
            return Ok(Response::TransactionEnd(Tag::new("ROLLBACK")));
        }
        let started = match &parsed.prepared {
            Some(p) => match bind(portal, &p.description) {
                Ok(params) => session
                    .conn
                    .execute_named(&p.name, params)
                    .await
                    .map_err(ClientError::from),
                Err(e) => Err(e),
            },
            None if parsed.kind == Kind::Other("COPY".into()) => Err(ClientError::new(
                "0A000",
                "COPY FROM STDIN / TO STDOUT needs the simple query protocol",
            )),
            None => session
                .conn
                .execute_stream_async(&parsed.sql)
                .await
                .map_err(ClientError::from),
        };
        session.end_statement_of(kind, started.is_ok()).await;
        let stream = started?;
        Ok(response(
            session,
            stream,
            &parsed.kind,
            &portal.result_column_format,
        ))
    }

    // Parse and Bind answers are buffered until Sync (or Flush) sends them, as PostgreSQL
    // does: pgwire's defaults flush each one, costing a syscall and a client wake-up apiece.
    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message
            .name
            .clone()
            .unwrap_or_else(|| DEFAULT_NAME.to_owned());
        match StoredStatement::parse(client, &message, self.query_parser()).await? {
            Some(stmt) => client.portal_store().put_statement(Arc::new(stmt)),
            None => client.portal_store().put_empty_statement(&name),
        }
        client
            .feed(PgWireBackendMessage::ParseComplete(ParseComplete::new()))
            .await?;
        Ok(())
    }

    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                let portal = Portal::try_new(&message, statement)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) if message.parameters.is_empty() => {
                client.portal_store().put_empty_portal(portal_name)
            }
            Some(Entry::Empty) => {
                return Err(ClientError::protocol(format!(
                    "bind message supplies {} parameters, but prepared statement \"{statement_name}\" requires 0",
                    message.parameters.len()
                ))
                .into())
            }
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        client
            .feed(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
    }

    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.portal_store().rm_portal(DEFAULT_NAME);
        let status = match session_of(client) {
            Ok(s) => s.status(),
            Err(_) => client.transaction_status(),
        };
        client.set_transaction_status(status);
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await?;
        client.flush().await?;
        Ok(())
    }
}

/// The portal's parameters as the values the statement expects.
fn bind(
    portal: &Portal<ServerStatement>,
    description: &StatementDescription,
) -> Result<Vec<ScalarValue>, ClientError> {
    let expected = description.parameter_types.len();
    if portal.parameters.len() != expected {
        return Err(ClientError::protocol(format!(
            "bind message supplies {} parameters, but prepared statement requires {expected}",
            portal.parameters.len()
        )));
    }
    portal
        .parameters
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let declared = description.parameter_types[i].clone();
            let sent_as = portal
                .statement
                .parameter_types
                .get(i)
                .cloned()
                .flatten()
                .unwrap_or_else(|| declared.as_ref().map(types::pg_type).unwrap_or(Type::TEXT));
            let target = declared.unwrap_or_else(|| types::arrow_type(&sent_as));
            let binary = matches!(
                format_of(Some(&portal.parameter_format), i),
                FieldFormat::Binary
            );
            types::decode_param(raw.as_deref(), binary, &sent_as, &target)
                .map_err(|e| ClientError::new("22P02", format!("parameter ${}: {e}", i + 1)))
        })
        .collect()
}

/// The response for a started statement: its rows as a stream the portal reads from, or
/// its command tag.
fn response(
    session: Arc<Session>,
    stream: phantomdb::ResultStream,
    kind: &Kind,
    formats: &Format,
) -> Response {
    if let Some(n) = stream.rows_affected() {
        return Response::Execution(kind.tag(Some(n)));
    }
    let schema = stream.schema().clone();
    if schema.fields().is_empty() {
        return match kind {
            Kind::Begin => Response::TransactionStart(kind.tag(None)),
            Kind::Commit | Kind::Rollback => Response::TransactionEnd(kind.tag(None)),
            _ => Response::Execution(kind.tag(None)),
        };
    }
    let fields = Arc::new(types::field_infos(&schema, |i| format_of(Some(formats), i)));
    let column_formats: Vec<FieldFormat> = fields.iter().map(|f| f.format()).collect();
    let rows = stream.flat_map(move |batch| {
        let encoded = batch.map_err(ClientError::from).and_then(|b| {
            types::encode_batch(&b, &column_formats).map_err(|e| ClientError::new("XX000", e))
        });
        let items: Vec<PgWireResult<_>> = match encoded {
            Ok(rows) => rows.into_iter().map(Ok).collect(),
            Err(e) => {
                session.mark_failed();
                vec![Err(e.into())]
            }
        };
        stream::iter(items)
    });
    let mut response = QueryResponse::new(fields, rows);
    if let Kind::Other(word) = kind {
        response.set_command_tag(word);
    }
    Response::Query(response)
}

impl std::fmt::Debug for ServerStatement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerStatement")
            .field("sql", &self.0.sql)
            .finish_non_exhaustive()
    }
}
