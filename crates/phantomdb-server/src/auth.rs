//! Logins: the startup packet, the authentication rule that matches the connection
//! ([`crate::rules`]), the provider it names, the `LOGIN` check, then the client's
//! [`Session`].
//!
//! `scram`: pgwire's SCRAM mechanism runs the exchange; it is given the role's
//! PostgreSQL-format verifier (salt, iterations, StoredKey, ServerKey), so the server never
//! holds a password or salted password. An unknown user (or a role without a password) gets a
//! mock verifier derived from a per-server secret: the exchange looks the same and fails the
//! same way, with the same message, as a wrong password. With TLS the server offers
//! `SCRAM-SHA-256-PLUS` (channel binding to its certificate) too.
//!
//! `reject` refuses the login; no matching rule refuses it too. A plugin provider receives
//! the password in clear text ([`crate::provider`]).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use futures::Sink;
use hmac::{Hmac, KeyInit, Mac};
use pgwire::api::auth::driver::AuthOutcome;
use pgwire::api::auth::mechanism::{AuthMechanism, AuthMechanismFactory};
use pgwire::api::auth::sasl::scram::{ScramAuth, ScramSecret};
use pgwire::api::auth::{
    AuthDriver, AuthSource, DefaultServerParameterProvider, LoginInfo, Password,
    ServerParameterProvider, StartupHandler,
};
use pgwire::api::{ClientInfo, METADATA_APPLICATION_NAME, METADATA_DATABASE, METADATA_USER};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use phantomdb::Database;
use sha2::Sha256;
use tokio::sync::Semaphore;

use crate::error_info::ClientError;
use crate::provider::{ProviderLogin, MAX_CALLS_IN_FLIGHT};
use crate::registry::{ConnectionSlot, Registry};
use crate::rules::{Login, Rule, REJECT, SCRAM};
use crate::session::Session;
use crate::AuthSettings;

/// Handles the startup phase of every connection.
pub(crate) struct Startup {
    db: Database,
    registry: Arc<Registry>,
    /// The rules in force (replaced by a reload).
    settings: Arc<ArcSwap<AuthSettings>>,
    /// The identity a mechanism reports is the role to run as, when it is not the user.
    driver: AuthDriver<Parameters, String>,
    scram: ScramAuth<String>,
    /// SCRAM with channel binding to the server's certificate, for TLS connections.
    scram_tls: Option<ScramAuth<String>>,
    /// Plugin provider calls in flight.
    provider_calls: Arc<Semaphore>,
}

impl Startup {
    pub(crate) fn new(
        db: Database,
        registry: Arc<Registry>,
        settings: Arc<ArcSwap<AuthSettings>>,
        cert_pem: Option<&[u8]>,
    ) -> Self {
        let source = Arc::new(Verifiers {
            db: db.clone(),
            mock_key: rand_key(),
        });
        let scram = ScramAuth::new(source);
        // Channel binding is offered on TLS connections only (libpq refuses an offer of
        // SCRAM-SHA-256-PLUS on a plain one).
        let scram_tls = cert_pem.and_then(|pem| {
            let mut with_binding = scram.clone();
            match with_binding.configure_certificate(pem) {
                Ok(()) => Some(with_binding),
                Err(e) => {
                    tracing::warn!(error = %e, "SCRAM channel binding is off: the certificate cannot be hashed");
                    None
                }
            }
        });
        Self {
            db,
            registry,
            settings,
            driver: AuthDriver::new(Parameters::default()),
            scram,
            scram_tls,
            provider_calls: Arc::new(Semaphore::new(MAX_CALLS_IN_FLIGHT)),
        }
    }

    /// The rule for this connection; refuses it (28000) when the rule is `reject` or no rule
    /// matches. The reason with the rule's number is logged, not sent.
    fn rule_for<C: ClientInfo>(&self, client: &C, user: &str) -> Result<Rule, ClientError> {
        let database = client
            .metadata()
            .get(METADATA_DATABASE)
            .cloned()
            .unwrap_or_else(|| user.to_string());
        let login = Login {
            tls: client.is_secure(),
            database: &database,
            user,
            address: client.socket_addr().ip(),
        };
        let settings = self.settings.load();
        let is_member = |user: &str, group: &str| match self.db.is_member_of(user, group) {
            Ok(member) => member,
            Err(e) => {
                tracing::warn!(user, group, error = %e, "cannot read role memberships");
                false
            }
        };
        let described = format!(
            "host \"{}\", user \"{user}\", database \"{database}\", {}",
            login.address,
            if login.tls {
                "SSL encryption"
            } else {
                "no encryption"
            }
        );
        match settings.rules.first_match(&login, is_member) {
            None => {
                tracing::info!(user, database, address = %login.address, tls = login.tls, "login refused: no authentication rule matches");
                Err(ClientError::fatal(
                    "28000",
                    format!("no authentication rule for {described}"),
                ))
            }
            Some(rule) if rule.provider == REJECT => {
                tracing::info!(user, database, address = %login.address, rule = rule.number, "login refused by a reject rule");
                Err(ClientError::fatal(
                    "28000",
                    format!("authentication rules reject connection for {described}"),
                ))
            }
            Some(rule) => Ok(rule),
        }
    }

    /// The login through the plugin provider `rule` names: refused (28000) on a connection
    /// without TLS unless the rule allows it, or when the provider is no longer loaded.
    fn plugin_login<C: ClientInfo>(
        &self,
        client: &C,
        user: &str,
        rule: Rule,
    ) -> Result<Box<dyn AuthMechanism<String>>, ClientError> {
        if !client.is_secure() && !rule.allow_cleartext_without_tls {
            tracing::info!(
                user,
                rule = rule.number,
                provider = rule.provider,
                "login refused: the provider needs the password, and the connection has no TLS"
            );
            return Err(ClientError::fatal(
                "28000",
                format!(
                    "authentication provider \"{}\" needs an SSL connection: the password would travel in clear text",
                    rule.provider
                ),
            ));
        }
        let provider = self
            .db
            .plugins()
            .auth_provider(&rule.provider)
            .and_then(|info| info.provider);
        let Some(provider) = provider else {
            tracing::error!(
                user,
                rule = rule.number,
                provider = rule.provider,
                "login refused: the authentication provider is not loaded"
            );
            return Err(ClientError::fatal(
                "28000",
                format!(
                    "authentication provider \"{}\" is not available",
                    rule.provider
                ),
            ));
        };
        let options = match rule.options {
            serde_json::Value::Object(map) => map,
            _ => Default::default(),
        };
        Ok(Box::new(ProviderLogin {
            name: rule.provider,
            provider,
            options,
            rule: rule.number,
            timeout: self.settings.load().provider_timeout,
            calls: self.provider_calls.clone(),
        }))
    }

    /// Checks the role may log in and opens its session; also says whether it is a superuser.
    async fn open_session(
        &self,
        role_name: &str,
        application: Option<&String>,
    ) -> Result<(Session, bool), ClientError> {
        let role = self.db.role(role_name)?;
        if !role.as_ref().is_some_and(|r| r.login) {
            return Err(ClientError::fatal(
                "28000",
                format!("role \"{role_name}\" is not permitted to log in"),
            ));
        }
        let conn = self.db.connect_as(role_name)?;
        if let Some(name) = application {
            let quoted = name.replace('\'', "''");
            // A bad application name is not worth refusing the login for.
            let _ = conn
                .execute_async(&format!("SET application_name = '{quoted}'"))
                .await;
        }
        let superuser = role.is_some_and(|r| r.superuser);
        Ok((Session::new(conn), superuser))
    }
}

/// The same failure for an unknown user, a wrong password and a role without a password.
fn login_failed(user: &str) -> PgWireError {
    ClientError::fatal(
        "28P01",
        format!("password authentication failed for user \"{user}\""),
    )
    .into()
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                pgwire::api::auth::protocol_negotiation(client, startup).await?;
                pgwire::api::auth::save_startup_parameters_to_metadata(client, startup);
                if client.metadata().get(METADATA_USER).is_none() {
                    return Err(ClientError::fatal(
                        "28000",
                        "no PostgreSQL user name specified in startup packet",
                    )
                    .into());
                }
                let Some(slot) = ConnectionSlot::take(&self.registry) else {
                    return Err(
                        ClientError::fatal("53300", "sorry, too many clients already").into(),
                    );
                };
                client.session_extensions().insert(slot);
                let user = client
                    .metadata()
                    .get(METADATA_USER)
                    .cloned()
                    .unwrap_or_default();
                let rule = self.rule_for(client, &user)?;
                let mechanism = if rule.provider == SCRAM {
                    match &self.scram_tls {
                        Some(scram) if client.is_secure() => scram.create(),
                        _ => self.scram.create(),
                    }
                } else {
                    self.plugin_login(client, &user, rule)?
                };
                self.driver.begin_authentication(client, mechanism).await?;
                Ok(())
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let user = client
                    .metadata()
                    .get(METADATA_USER)
                    .cloned()
                    .unwrap_or_default();
                let outcome = match self.driver.advance_authentication(client, message).await {
                    Ok(o) => o,
                    Err(e) => {
                        tracing::info!(user, error = %e, "login failed");
                        return Err(login_failed(&user));
                    }
                };
                let AuthOutcome::Authenticated {
                    final_message,
                    identity,
                } = outcome
                else {
                    return Ok(());
                };
                let role = identity.unwrap_or_else(|| user.clone());
                let application = client.metadata().get(METADATA_APPLICATION_NAME).cloned();
                let (session, superuser) = self.open_session(&role, application.as_ref()).await?;
                client
                    .session_extensions()
                    .insert(ParametersFor { superuser });
                client.session_extensions().insert(session);
                let session = crate::session::session_of(client)?;
                self.registry.attach(client.socket_addr(), &session);
                self.driver
                    .complete_authentication(client, final_message)
                    .await?;
                let (pid, secret) = client.pid_and_secret_key();
                let registration = self.registry.register(pid, secret, session.cancel_handle());
                client.session_extensions().insert(registration);
                tracing::info!(user, role, pid, tls = client.is_secure(), "login");
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The role verifiers SCRAM checks proofs against.
#[derive(Debug)]
struct Verifiers {
    db: Database,
    /// Derives mock verifiers for unknown users.
    mock_key: [u8; 32],
}

#[async_trait]
impl AuthSource<String> for Verifiers {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        Err(login_failed(login.user().unwrap_or_default()))
    }

    async fn get_scram_secret(
        &self,
        login: &LoginInfo,
    ) -> PgWireResult<(ScramSecret, Option<String>)> {
        let user = login.user().unwrap_or_default();
        let stored = self.db.role(user).ok().flatten().and_then(|r| r.verifier);
        let secret = match stored {
            Some(v) => ScramSecret::Verifier {
                salt: v.salt,
                iterations: v.iterations as usize,
                stored_key: v.stored_key.to_vec(),
                server_key: v.server_key.to_vec(),
            },
            None => ScramSecret::Verifier {
                salt: self.mock(b"salt", user)[..16].to_vec(),
                iterations: phantomdb::auth::DEFAULT_ITERATIONS as usize,
                stored_key: self.mock(b"stored", user).to_vec(),
                server_key: self.mock(b"server", user).to_vec(),
            },
        };
        Ok((secret, None))
    }
}

impl Verifiers {
    fn mock(&self, what: &[u8], user: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.mock_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(what);
        mac.update(user.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// A random per-server secret (from the OS; a clock-derived key if it has none to give).
fn rand_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    if getrandom::fill(&mut key).is_err() {
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(seed.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"phantomdb mock verifier key");
        key = mac.finalize().into_bytes().into();
    }
    key
}

/// What the server reports about itself at login (`ParameterStatus`).
#[derive(Debug, Default)]
struct Parameters(DefaultServerParameterProvider);

/// Per-session values of the reported parameters.
struct ParametersFor {
    superuser: bool,
}

impl ServerParameterProvider for Parameters {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let mut params = self.0.server_parameters(client)?;
        params.insert(
            "server_version".into(),
            phantomdb::pg_catalog::SERVER_VERSION.into(),
        );
        let superuser = client
            .session_extensions()
            .get::<ParametersFor>()
            .is_some_and(|p| p.superuser);
        params.insert(
            "is_superuser".into(),
            if superuser { "on" } else { "off" }.into(),
        );
        Some(params)
    }
}
