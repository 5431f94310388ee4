//! The data phase of `COPY ... FROM STDIN`: `CopyData`, then `CopyDone` (load) or `CopyFail`.

use std::fmt::Debug;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::copy::CopyHandler;
use pgwire::api::results::Tag;
use pgwire::api::ClientInfo;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::response::CommandComplete;
use pgwire::messages::PgWireBackendMessage;

use crate::error_info::ClientError;
use crate::session::session_of;

/// Receives `COPY ... FROM STDIN` data.
#[derive(Debug, Default)]
pub(crate) struct CopyInHandler;

#[async_trait]
impl CopyHandler for CopyInHandler {
    async fn on_copy_data<C>(&self, client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(client)?;
        let mut copy = session.copy_in.lock();
        if let Some(c) = copy.as_mut() {
            c.push(&copy_data.data);
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(client)?;
        let copy = session.copy_in.lock().take();
        let Some(mut copy) = copy else {
            return Err(ClientError::protocol("CopyDone without COPY FROM STDIN").into());
        };
        let result = match copy.finish() {
            Ok(load) => session
                .conn
                .copy_from_client_file(load)
                .await
                .map_err(ClientError::from),
            Err(e) => Err(e),
        };
        session.end_statement(result.is_ok()).await;
        client.set_transaction_status(session.status());
        let rows = result?.rows_affected.unwrap_or(0);
        client
            .send(PgWireBackendMessage::CommandComplete(
                CommandComplete::from(Tag::new("COPY").with_rows(rows)),
            ))
            .await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Ok(session) = session_of(client) {
            session.copy_in.lock().take();
            session.end_statement(false).await;
            client.set_transaction_status(session.status());
        }
        ClientError::new("57014", format!("COPY from stdin failed: {}", fail.message)).into()
    }
}
