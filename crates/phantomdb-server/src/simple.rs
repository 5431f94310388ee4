//! The simple query protocol: one `Query` message with one or more statements, each
//! answered with its rows (streamed as they are produced) and a command tag.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::query::SimpleQueryHandler;
use pgwire::api::results::{FieldFormat, Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyInResponse, CopyOutResponse};
use pgwire::messages::data::RowDescription;
use pgwire::messages::response::{CommandComplete, EmptyQueryResponse, ReadyForQuery};
use pgwire::messages::simplequery::Query;
use pgwire::messages::PgWireBackendMessage;

use crate::copy::{self, ClientCopy, CopyIn};
use crate::error_info::ClientError;
use crate::session::{session_of, Session};
use crate::statement::{self, Kind};
use crate::types;

/// Answers `Query` messages.
#[derive(Debug, Default)]
pub(crate) struct SimpleHandler;

/// A client the handlers can write to.
pub(crate) trait Client:
    ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync
{
}

impl<T> Client for T where T: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync {}

#[async_trait]
impl SimpleQueryHandler for SimpleHandler {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let session = session_of(client)?;
        let copying = run_query(client, &session, &query.query).await?;
        if !copying {
            ready_for_query(client, &session).await?;
        }
        Ok(())
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // `on_query` answers every query itself.
        Err(ClientError::protocol("unexpected query dispatch").into())
    }
}

/// Sends `ReadyForQuery` with the session's transaction status.
pub(crate) async fn ready_for_query<C>(client: &mut C, session: &Session) -> PgWireResult<()>
where
    C: Client,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let status = session.status();
    client.set_state(PgWireConnectionState::ReadyForQuery);
    client.set_transaction_status(status);
    client
        .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
            status,
        )))
        .await?;
    Ok(())
}

/// Runs every statement of a query; `true` when it started a `COPY ... FROM STDIN` (the
/// client now sends data, and `ReadyForQuery` waits for its end).
async fn run_query<C>(client: &mut C, session: &Arc<Session>, sql: &str) -> PgWireResult<bool>
where
    C: Client,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    if sql.chars().all(|c| c == ';' || c.is_whitespace()) {
        client
            .feed(PgWireBackendMessage::EmptyQueryResponse(
                EmptyQueryResponse::new(),
            ))
            .await?;
        return Ok(false);
    }
    if let Some(copy) = copy::parse_client_copy(sql) {
        return run_client_copy(client, session, copy).await;
    }
    // psql's and drivers' catalog queries use PostgreSQL-only syntax.
    let sql = phantomdb::pg_catalog::rewrite(sql);
    let statements = match session.conn.parse(&sql).await {
        Ok(s) => s,
        Err(e) => {
            let unknown = Kind::Other("?".into());
            if session.begin_statement(&unknown).is_ok() {
                session.end_statement_of(&unknown, false).await;
            }
            send_error(client, e.into()).await?;
            return Ok(false);
        }
    };
    for stmt in statements {
        let kind = statement::kind(&stmt);
        if let Err(e) = session.begin_statement(&kind) {
            send_error(client, e).await?;
            break;
        }
        let result = if matches!(
            kind,
            Kind::Savepoint(_) | Kind::Release(_) | Kind::RollbackTo(_)
        ) {
            session.savepoint_command(&kind)
        } else if session.is_aborted() {
            session
                .roll_back_aborted()
                .await
                .map(|_| Tag::new("ROLLBACK"))
                .map_err(ClientError::from)
        } else {
            match session.conn.execute_statement_stream(stmt).await {
                Ok(stream) => send_stream(client, session, stream, &kind).await?,
                Err(e) => Err(e.into()),
            }
        };
        session.end_statement_of(&kind, result.is_ok()).await;
        match result {
            Ok(tag) => {
                client
                    .feed(PgWireBackendMessage::CommandComplete(tag.into()))
                    .await?
            }
            Err(e) => {
                send_error(client, e).await?;
                break;
            }
        }
    }
    Ok(false)
}

/// Sends a statement's rows (if it returns rows) and returns its tag; the inner `Err` is a
/// statement failure to report, the outer one a broken connection.
pub(crate) async fn send_stream<C>(
    client: &mut C,
    session: &Session,
    mut stream: phantomdb::ResultStream,
    kind: &Kind,
) -> PgWireResult<Result<Tag, ClientError>>
where
    C: Client,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    if let Some(n) = stream.rows_affected() {
        return Ok(Ok(kind.tag(Some(n))));
    }
    let schema = stream.schema().clone();
    if schema.fields().is_empty() {
        return Ok(Ok(kind.tag(None)));
    }
    let fields = types::field_infos(&schema, |_| FieldFormat::Text);
    let formats = vec![FieldFormat::Text; fields.len()];
    client
        .feed(PgWireBackendMessage::RowDescription(RowDescription::new(
            fields.iter().map(Into::into).collect(),
        )))
        .await?;
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let encoded = batch.map_err(ClientError::from).and_then(|b| {
            types::encode_batch(&b, &formats).map_err(|e| ClientError::new("XX000", e))
        });
        match encoded {
            Ok(data) => {
                rows += data.len();
                for row in data {
                    client.feed(PgWireBackendMessage::DataRow(row)).await?;
                }
                client.flush().await?;
            }
            Err(e) => {
                session.mark_failed();
                return Ok(Err(e));
            }
        }
    }
    let tag = match kind {
        Kind::Other(word) => Tag::new(word),
        _ => Tag::new("SELECT").with_rows(rows),
    };
    Ok(Ok(tag))
}

/// Sends an `ErrorResponse`.
pub(crate) async fn send_error<C>(client: &mut C, e: ClientError) -> PgWireResult<()>
where
    C: Client,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    client
        .feed(PgWireBackendMessage::ErrorResponse((*e.0).into()))
        .await?;
    Ok(())
}

/// `COPY ... FROM STDIN` (starts receiving) or `COPY ... TO STDOUT` (sends the rows).
async fn run_client_copy<C>(
    client: &mut C,
    session: &Arc<Session>,
    copy: Result<ClientCopy, ClientError>,
) -> PgWireResult<bool>
where
    C: Client,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let started = copy.and_then(|c| session.begin_statement(&Kind::Changes("COPY")).map(|_| c));
    let copy = match started {
        Ok(c) => c,
        Err(e) => {
            send_error(client, e).await?;
            return Ok(false);
        }
    };
    match copy {
        ClientCopy::In {
            table,
            columns,
            spec,
        } => {
            let copy_in = match CopyIn::new(table, columns, spec) {
                Ok(c) => c,
                Err(e) => {
                    session.end_statement(false).await;
                    send_error(client, e).await?;
                    return Ok(false);
                }
            };
            *session.copy_in.lock() = Some(copy_in);
            client
                .send(PgWireBackendMessage::CopyInResponse(CopyInResponse::new(
                    0,
                    0,
                    Vec::new(),
                )))
                .await?;
            client.set_state(PgWireConnectionState::CopyInProgress(false));
            Ok(true)
        }
        ClientCopy::Out { query, spec } => {
            let result = copy_out(client, session, &query, &spec).await?;
            session.end_statement(result.is_ok()).await;
            match result {
                Ok(n) => {
                    client
                        .feed(PgWireBackendMessage::CommandComplete(
                            CommandComplete::from(Tag::new("COPY").with_rows(n)),
                        ))
                        .await?
                }
                Err(e) => send_error(client, e).await?,
            }
            Ok(false)
        }
    }
}

/// Streams a query's rows as `CopyData`; the row count, or the failure to report.
async fn copy_out<C>(
    client: &mut C,
    session: &Session,
    query: &str,
    spec: &copy::CopySpec,
) -> PgWireResult<Result<usize, ClientError>>
where
    C: Client,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let mut stream = match session.conn.execute_stream_async(query).await {
        Ok(s) => s,
        Err(e) => return Ok(Err(e.into())),
    };
    let schema = stream.schema().clone();
    let columns = schema.fields().len() as i16;
    client
        .send(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
            0,
            columns,
            vec![0; columns as usize],
        )))
        .await?;
    if spec.header && spec.format == copy::CopyFormat::Csv {
        let line = copy::header_line(&schema, spec);
        client
            .feed(PgWireBackendMessage::CopyData(CopyData::new(line.into())))
            .await?;
    }
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let lines = batch
            .map_err(ClientError::from)
            .and_then(|b| copy::encode_rows(&b, spec));
        match lines {
            Ok(lines) => {
                rows += lines.len();
                for line in lines {
                    client
                        .feed(PgWireBackendMessage::CopyData(CopyData::new(line.into())))
                        .await?;
                }
            }
            Err(e) => return Ok(Err(e)),
        }
    }
    client
        .feed(PgWireBackendMessage::CopyDone(CopyDone::new()))
        .await?;
    Ok(Ok(rows))
}
