//! Logins checked by a plugin's authentication provider (`phantomdb.auth/1`): the server asks
//! the client for its password in clear text, then calls the provider on a thread of its own
//! (never an I/O thread) and waits at most `[auth] provider_timeout`.
//!
//! A provider that rejects, fails, panics (the SDK turns a panic into an error) or does not
//! answer in time refuses that login: the reason is logged, and the client gets the same
//! message as for a wrong password. A call that hangs keeps its (detached) thread; at most
//! [`MAX_CALLS_IN_FLIGHT`] calls run at once per server, so a hanging provider cannot take
//! every thread: further logins through it are refused until calls return.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pgwire::api::auth::mechanism::{AuthMechanism, AuthState};
use pgwire::api::{ClientInfo, METADATA_DATABASE, METADATA_USER};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::{Authentication, PasswordMessageFamily};
use phantomdb::plugins::auth::{AuthDecision, AuthOptions, AuthProvider, AuthRequest};
use tokio::sync::Semaphore;

use crate::error_info::ClientError;

/// Provider calls one server runs at once (calls that hang count until they return).
pub(crate) const MAX_CALLS_IN_FLIGHT: usize = 64;

/// What the provider decided, or why there is no decision.
#[derive(Debug)]
enum Outcome {
    Accepted(Option<String>),
    Rejected(String),
    Failed(String),
}

/// The provider a rule names, with the rule's options; one per login attempt.
pub(crate) struct ProviderLogin {
    pub(crate) name: String,
    pub(crate) provider: Arc<dyn AuthProvider>,
    pub(crate) options: AuthOptions,
    pub(crate) rule: usize,
    pub(crate) timeout: Duration,
    pub(crate) calls: Arc<Semaphore>,
}

impl ProviderLogin {
    /// Calls the provider off the I/O threads, under the time limit.
    async fn decide(
        &self,
        user: String,
        password: String,
        database: String,
        peer: SocketAddr,
        tls: bool,
    ) -> Outcome {
        let Ok(permit) = self.calls.clone().try_acquire_owned() else {
            return Outcome::Failed(format!(
                "{MAX_CALLS_IN_FLIGHT} provider calls are still running (is a provider hanging?)"
            ));
        };
        let provider = self.provider.clone();
        let options = self.options.clone();
        let answer = off_thread(self.timeout, move || {
            let _permit = permit;
            let address = peer.ip().to_canonical().to_string();
            provider.authenticate(&AuthRequest {
                user: &user,
                password: &password,
                database: &database,
                client_addr: &address,
                tls,
                options: &options,
            })
        })
        .await;
        match answer {
            Err(e) => Outcome::Failed(e),
            Ok(Err(message)) => Outcome::Failed(message),
            Ok(Ok(AuthDecision::Accept { role })) => Outcome::Accepted(role),
            Ok(Ok(AuthDecision::Reject { reason })) => Outcome::Rejected(reason),
        }
    }
}

/// Runs `work` (plugin code) on a thread of its own and waits at most `limit` for it. A
/// thread that does not finish is left to itself: it is detached, so neither the runtime's
/// shutdown nor the process's exit waits for it.
pub(crate) async fn off_thread<T: Send + 'static>(
    limit: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("phantomdb-auth".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(|e| format!("cannot start a thread for the call: {e}"))?;
    match tokio::time::timeout(limit, rx).await {
        Err(_) => Err(format!(
            "no answer within {limit:?} (auth.provider_timeout)"
        )),
        Ok(Err(_)) => Err("the call ended without an answer (it panicked)".to_string()),
        Ok(Ok(value)) => Ok(value),
    }
}

/// The failure every refused plugin login reports to the client (the reason is logged).
fn refused(user: &str) -> PgWireError {
    ClientError::fatal(
        "28P01",
        format!("password authentication failed for user \"{user}\""),
    )
    .into()
}

#[async_trait]
impl AuthMechanism<String> for ProviderLogin {
    async fn begin(
        &mut self,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> PgWireResult<AuthState<String>> {
        Ok(AuthState::InProgress(Authentication::CleartextPassword))
    }

    async fn next(
        &mut self,
        client: &(dyn ClientInfo + Send + Sync),
        message: PasswordMessageFamily,
    ) -> PgWireResult<AuthState<String>> {
        let password = message.into_password()?.password;
        let metadata = client.metadata();
        let user = metadata.get(METADATA_USER).cloned().unwrap_or_default();
        let database = metadata
            .get(METADATA_DATABASE)
            .cloned()
            .unwrap_or_else(|| user.clone());
        let peer = client.socket_addr();
        let outcome = self
            .decide(user.clone(), password, database, peer, client.is_secure())
            .await;
        let (provider, rule) = (&self.name, self.rule);
        match outcome {
            Outcome::Accepted(role) => {
                tracing::debug!(user, provider, rule, ?role, "provider accepted the login");
                Ok(AuthState::Ok {
                    final_message: None,
                    identity: role,
                })
            }
            Outcome::Rejected(reason) => {
                tracing::info!(user, provider, rule, reason, address = %peer.ip(), "login rejected by the authentication provider");
                Ok(AuthState::Failed(refused(&user)))
            }
            Outcome::Failed(error) => {
                tracing::error!(user, provider, rule, error, address = %peer.ip(), "authentication provider failed; login refused");
                Ok(AuthState::Failed(refused(&user)))
            }
        }
    }
}
