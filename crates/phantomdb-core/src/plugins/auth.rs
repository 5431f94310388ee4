//! Authentication providers as the registry keeps them ([`AuthProviderInfo`]), and which
//! of a server's authentication rules name each one ([`AuthRuleUse`], published by the server
//! that applies the rules, shown by `phantomdb_auth_providers()`).
//!
//! The core does not authenticate anyone: a server matches its rules, asks the client for its
//! credentials and calls the provider. `scram` and `reject` are the server's own (registered
//! by the `builtin` plugin, so no plugin can take their names); every other provider comes
//! from a plugin (`phantomdb.auth/1`).

use std::sync::Arc;

pub use phantomdb_plugin_sdk::auth::{AuthDecision, AuthOptions, AuthProvider, AuthRequest};

/// The provider that checks SCRAM-SHA-256 proofs against the roles' stored verifiers.
pub const SCRAM_PROVIDER: &str = "scram";
/// The provider that refuses every login.
pub const REJECT_PROVIDER: &str = "reject";

/// One registered authentication provider.
#[derive(Clone)]
pub struct AuthProviderInfo {
    /// The name rules use.
    pub name: String,
    /// Name of the plugin that provides it.
    pub plugin: String,
    /// One-line description.
    pub description: String,
    /// The implementation; `None` for the providers a server runs itself (`scram`,
    /// `reject`).
    pub provider: Option<Arc<dyn AuthProvider>>,
}

impl std::fmt::Debug for AuthProviderInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthProviderInfo")
            .field("name", &self.name)
            .field("plugin", &self.plugin)
            .finish()
    }
}

impl AuthProviderInfo {
    /// A provider a plugin implements.
    pub fn from_provider(plugin: &str, provider: Arc<dyn AuthProvider>) -> Self {
        Self {
            name: provider.name().to_ascii_lowercase(),
            plugin: plugin.to_string(),
            description: provider.description().to_string(),
            provider: Some(provider),
        }
    }

    /// `scram` and `reject`, which the server runs itself.
    pub(super) fn server_providers(plugin: &str) -> [Self; 2] {
        let make = |name: &str, description: &str| Self {
            name: name.to_string(),
            plugin: plugin.to_string(),
            description: description.to_string(),
            provider: None,
        };
        [
            make(
                SCRAM_PROVIDER,
                "SCRAM-SHA-256 against the role's stored password verifier",
            ),
            make(REJECT_PROVIDER, "refuses the login"),
        ]
    }
}

/// One authentication rule naming a provider, as `phantomdb_auth_providers()` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRuleUse {
    /// The provider the rule names.
    pub provider: String,
    /// The rule, e.g. `#1 hostssl all +ldap_users 127.0.0.1/32`.
    pub rule: String,
}
