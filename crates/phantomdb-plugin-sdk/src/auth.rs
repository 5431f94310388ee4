//! Authentication providers: the SDK side of `phantomdb.auth/1`.
//!
//! A provider decides logins. The server's rules (`[[auth.rules]]` in `phantomdb.toml`) name
//! it, with options (a JSON object) passed to every call; the server asks the client for its
//! password in clear text (TLS connections only, unless a rule allows otherwise) and calls
//! [`AuthProvider::authenticate`] off its I/O threads under a time limit. A provider that
//! panics, errors or takes too long refuses that login; the server goes on.
//!
//! ```
//! use phantomdb_plugin_sdk::auth::{AuthDecision, AuthProvider, AuthRequest};
//!
//! struct Fixed;
//!
//! impl AuthProvider for Fixed {
//!     fn name(&self) -> &str {
//!         "fixed"
//!     }
//!     fn authenticate(&self, request: &AuthRequest<'_>) -> Result<AuthDecision, String> {
//!         let expected = request.options.get("password").and_then(|p| p.as_str());
//!         Ok(if !request.password.is_empty() && expected == Some(request.password) {
//!             AuthDecision::accept()
//!         } else {
//!             AuthDecision::reject("wrong password")
//!         })
//!     }
//! }
//! ```

/// A rule's options: a JSON object.
pub type AuthOptions = serde_json::Map<String, serde_json::Value>;

/// One login attempt.
#[derive(Debug, Clone, Copy)]
pub struct AuthRequest<'a> {
    /// The user name the client sent.
    pub user: &'a str,
    /// The password the client sent (may be empty: reject it unless that is meant).
    pub password: &'a str,
    /// The database the client asked for.
    pub database: &'a str,
    /// The client's IP address (`127.0.0.1`, `::1`).
    pub client_addr: &'a str,
    /// Whether the connection uses TLS.
    pub tls: bool,
    /// The matching rule's options.
    pub options: &'a AuthOptions,
}

/// What a provider decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    /// The credentials are good. The session runs as `role` when given (it must exist and
    /// have `LOGIN`), else as the user name.
    Accept {
        /// The role to run as instead of the user name.
        role: Option<String>,
    },
    /// The credentials are not good. The reason is logged by the server, never sent to the
    /// client.
    Reject {
        /// Why, for the server's log.
        reason: String,
    },
}

impl AuthDecision {
    /// Accept, running as the user name.
    pub fn accept() -> Self {
        Self::Accept { role: None }
    }

    /// Accept, running as `role`.
    pub fn accept_as(role: impl Into<String>) -> Self {
        Self::Accept {
            role: Some(role.into()),
        }
    }

    /// Reject, for `reason` (logged by the server).
    pub fn reject(reason: impl Into<String>) -> Self {
        Self::Reject {
            reason: reason.into(),
        }
    }
}

/// An authentication provider. Called concurrently from many threads; calls may block
/// (network round trips) but should respect their own timeouts.
pub trait AuthProvider: Send + Sync + 'static {
    /// The name rules use (lower case), e.g. `ldap`.
    fn name(&self) -> &str;

    /// One-line description.
    fn description(&self) -> &str {
        ""
    }

    /// Checks a rule's options when the rules load (an error refuses the rules, naming the
    /// rule). The default accepts any options.
    fn check_options(&self, _options: &AuthOptions) -> Result<(), String> {
        Ok(())
    }

    /// Decides one login. An `Err` is a failure to decide (the server logs it and refuses
    /// the login with the same message as a rejection).
    fn authenticate(&self, request: &AuthRequest<'_>) -> Result<AuthDecision, String>;
}
