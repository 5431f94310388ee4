//! `ldap_auth`: the `ldap` authentication provider. A login is checked by binding to an LDAP
//! directory as the user, in one of PostgreSQL's two LDAP modes:
//!
//! * **simple bind**: the user's DN comes from a template, `user_dn = "uid=%u,ou=people,dc=example,dc=org"`
//!   (`%u` is the user name, escaped for a DN);
//! * **search then bind**: the server binds as `bind_dn` / `bind_password` (or anonymously),
//!   searches `search_base` with `search_filter` (default `(uid=%u)`, `%u` escaped for a
//!   filter) for exactly one entry, then binds as that entry.
//!
//! With `group_dn`, the user must also be a member of that group (`member_attribute`, default
//! `member`, holding the user's DN). An empty password is rejected before the directory is
//! contacted (an LDAP bind with an empty password is an "unauthenticated bind", which
//! servers accept). `ldaps://` URLs and `starttls = true` use TLS, verified against the system
//! roots or `ca_file`; `timeout` (default 5 s) bounds connecting and every operation.
//!
//! Options are those of the authentication rule naming the provider:
//!
//! ```toml
//! [[auth.rules]]
//! type = "hostssl"
//! user = "+ldap_users"
//! address = "127.0.0.1/32"
//! provider = "ldap"
//! options = { url = "ldap://127.0.0.1:389", starttls = true, user_dn = "uid=%u,ou=people,dc=example,dc=org" }
//! ```

mod options;

use ldap3::{dn_escape, ldap_escape, LdapConn, LdapConnSettings, LdapError, Scope, SearchEntry};
use phantomdb_plugin_sdk::prelude::*;

pub use options::LdapOptions;

/// LDAP result code 49: wrong DN or password.
const INVALID_CREDENTIALS: u32 = 49;

/// The `ldap` provider.
struct Ldap;

impl AuthProvider for Ldap {
    fn name(&self) -> &str {
        "ldap"
    }

    fn description(&self) -> &str {
        "binds to an LDAP directory as the user (simple bind or search then bind)"
    }

    fn check_options(&self, options: &AuthOptions) -> Result<(), String> {
        LdapOptions::from_json(options).map(|_| ())
    }

    fn authenticate(&self, request: &AuthRequest<'_>) -> Result<AuthDecision, String> {
        let options = LdapOptions::from_json(request.options)?;
        if request.password.is_empty() {
            return Ok(AuthDecision::reject(format!(
                "empty password for {} (never sent to the directory)",
                request.user
            )));
        }
        let mut ldap = connect(&options)?;
        let decision = decide(&mut ldap, &options, request);
        let _ = ldap.unbind();
        decision
    }
}

/// Opens a connection (TLS for `ldaps://` or with StartTLS).
fn connect(options: &LdapOptions) -> Result<LdapConn, String> {
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(options.timeout)
        .set_starttls(options.starttls);
    if let Some(ca) = &options.ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
        let cert = native_tls::Certificate::from_pem(&pem)
            .map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
        let connector = native_tls::TlsConnector::builder()
            .add_root_certificate(cert)
            .build()
            .map_err(|e| format!("TLS set-up: {e}"))?;
        settings = settings.set_connector(connector);
    }
    LdapConn::with_settings(settings, &options.url)
        .map_err(|e| format!("cannot connect to {}: {e}", options.url))
}

/// Finds the user's DN, binds as it, checks the group.
fn decide(
    ldap: &mut LdapConn,
    options: &LdapOptions,
    request: &AuthRequest<'_>,
) -> Result<AuthDecision, String> {
    let dn = match &options.user_dn {
        Some(template) => template.replace("%u", &dn_escape(request.user)),
        None => match find_user(ldap, options, request.user)? {
            Ok(dn) => dn,
            Err(reason) => return Ok(AuthDecision::reject(reason)),
        },
    };
    match ldap
        .with_timeout(options.timeout)
        .simple_bind(&dn, request.password)
        .and_then(|r| r.success())
    {
        Ok(_) => {}
        Err(LdapError::LdapResult { result }) if result.rc == INVALID_CREDENTIALS => {
            return Ok(AuthDecision::reject(format!(
                "invalid credentials for {dn}"
            )));
        }
        Err(e) => return Err(format!("bind as {dn} at {}: {e}", options.url)),
    }
    if let Some(group) = &options.group_dn {
        let filter = format!("({}={})", options.member_attribute, ldap_escape(&dn));
        let (entries, _) = ldap
            .with_timeout(options.timeout)
            .search(group, Scope::Base, &filter, vec!["1.1"])
            .and_then(|r| r.success())
            .map_err(|e| format!("group check in {group} at {}: {e}", options.url))?;
        if entries.is_empty() {
            return Ok(AuthDecision::reject(format!(
                "{dn} is not a member of {group}"
            )));
        }
    }
    Ok(AuthDecision::accept())
}

/// Search then bind: the DN of the one entry the filter finds for `user`, or why not.
fn find_user(
    ldap: &mut LdapConn,
    options: &LdapOptions,
    user: &str,
) -> Result<Result<String, String>, String> {
    let base = options.search_base.as_deref().unwrap_or_default();
    if let Some(bind_dn) = &options.bind_dn {
        let password = options.bind_password.as_deref().unwrap_or_default();
        ldap.with_timeout(options.timeout)
            .simple_bind(bind_dn, password)
            .and_then(|r| r.success())
            .map_err(|e| format!("search bind as {bind_dn} at {}: {e}", options.url))?;
    }
    let filter = options.search_filter.replace("%u", &ldap_escape(user));
    let (entries, _) = ldap
        .with_timeout(options.timeout)
        .search(base, Scope::Subtree, &filter, vec!["1.1"])
        .and_then(|r| r.success())
        .map_err(|e| format!("search {filter} in {base} at {}: {e}", options.url))?;
    let count = entries.len();
    Ok(match entries.into_iter().next() {
        Some(entry) if count == 1 => Ok(SearchEntry::construct(entry).dn),
        None => Err(format!("no entry for {user} ({filter} in {base})")),
        Some(_) => Err(format!(
            "{count} entries for {user} ({filter} in {base}); expected one"
        )),
    })
}

#[derive(Default)]
struct LdapAuth;

impl Plugin for LdapAuth {
    fn register(&self, registrar: &mut Registrar) {
        registrar.auth_providers(vec![Arc::new(Ldap)]);
    }
}

phantomdb_plugin! {
    name: "ldap_auth",
    version: env!("CARGO_PKG_VERSION"),
    description: "LDAP authentication provider (simple bind, search then bind, group check)",
    host_version: ">=0.1, <0.2",
    plugin_type: Authentication,
    plugin: LdapAuth,
}
