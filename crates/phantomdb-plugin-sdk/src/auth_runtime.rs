//! Plugin-side trampolines of the `phantomdb.auth/1` interface: decode the C arguments, call
//! the plugin's [`AuthProvider`]s under `catch_unwind` (see [`crate::runtime::call`]) and encode
//! the decision.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use phantomdb_plugin_abi::{
    auth_decision, AuthInterface, AuthProviderDescriptor, AuthRequest as CAuthRequest, OutError,
    Status,
};

use crate::auth::{AuthDecision, AuthOptions, AuthProvider, AuthRequest};
use crate::runtime::{call, tables, text, write_string, Failure, InterfaceTables};

/// The plugin's providers and the C tables describing them.
pub(crate) struct AuthTables {
    providers: Vec<Arc<dyn AuthProvider>>,
    _strings: Vec<CString>,
    _descriptors: Vec<AuthProviderDescriptor>,
    interface: AuthInterface,
}

impl AuthTables {
    /// `None` when the plugin has no providers (then it does not offer the interface).
    pub(crate) fn new(providers: Vec<Arc<dyn AuthProvider>>) -> Option<Self> {
        if providers.is_empty() {
            return None;
        }
        let c = |s: &str| {
            CString::new(s.replace('\0', "")).unwrap_or_else(|_| CString::from(c"invalid"))
        };
        let mut strings = Vec::new();
        let mut descriptors = Vec::new();
        for p in &providers {
            let name = c(p.name());
            let description = c(p.description());
            descriptors.push(AuthProviderDescriptor {
                struct_size: std::mem::size_of::<AuthProviderDescriptor>(),
                name: name.as_ptr(),
                description: description.as_ptr(),
            });
            // Moving a CString does not move its heap buffer, so the pointers stay valid.
            strings.push(name);
            strings.push(description);
        }
        let interface = AuthInterface {
            struct_size: std::mem::size_of::<AuthInterface>(),
            num_providers: descriptors.len(),
            providers: descriptors.as_ptr(),
            check_options,
            authenticate,
        };
        Some(Self {
            providers,
            _strings: strings,
            _descriptors: descriptors,
            interface,
        })
    }
}

impl InterfaceTables for AuthTables {
    fn interface_name(&self) -> &'static std::ffi::CStr {
        phantomdb_plugin_abi::AUTH_INTERFACE_V1_C
    }

    fn interface_ptr(&self) -> *const c_void {
        &self.interface as *const AuthInterface as *const c_void
    }
}

fn provider(index: usize) -> Result<&'static Arc<dyn AuthProvider>, Failure> {
    tables::<AuthTables>("authentication providers")?
        .providers
        .get(index)
        .ok_or_else(|| Failure::invalid(format!("no authentication provider #{index}")))
}

fn options(json: &str) -> Result<AuthOptions, Failure> {
    if json.trim().is_empty() {
        return Ok(AuthOptions::new());
    }
    serde_json::from_str(json).map_err(|e| Failure::invalid(format!("bad options JSON: {e}")))
}

unsafe extern "C" fn check_options(
    index: usize,
    options_json: *const u8,
    options_len: usize,
    out_error: OutError,
) -> Status {
    let work = || {
        let p = provider(index)?;
        // SAFETY: the host passes `options_len` readable bytes.
        let opts = options(unsafe { text(options_json, options_len, "options") }?)?;
        p.check_options(&opts).map_err(Failure::error)
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn authenticate(
    index: usize,
    request: *const CAuthRequest,
    out_decision: *mut u32,
    out_role: *mut *mut c_char,
    out_reason: *mut *mut c_char,
    out_error: OutError,
) -> Status {
    let work = || {
        let p = provider(index)?;
        if request.is_null() || out_decision.is_null() {
            return Err(Failure::invalid("null request or decision pointer"));
        }
        // SAFETY: the host passes a valid request for the call.
        let c = unsafe { &*request };
        // SAFETY: pointers and lengths come from the same request.
        let (user, database, client_addr, opts) = unsafe {
            (
                text(c.user, c.user_len, "user")?,
                text(c.database, c.database_len, "database")?,
                text(c.client_addr, c.client_addr_len, "client address")?,
                options(text(c.options_json, c.options_len, "options")?)?,
            )
        };
        // SAFETY: as above. A password that is not UTF-8 is a rejection, not a failure.
        let decision = match unsafe { text(c.password, c.password_len, "password") } {
            Err(_) => AuthDecision::reject("the password is not UTF-8"),
            Ok(password) => p
                .authenticate(&AuthRequest {
                    user,
                    password,
                    database,
                    client_addr,
                    tls: c.tls != 0,
                    options: &opts,
                })
                .map_err(Failure::error)?,
        };
        // SAFETY: non-null host slots (checked above; the others are checked when written).
        unsafe {
            match decision {
                AuthDecision::Accept { role } => {
                    *out_decision = auth_decision::ACCEPT;
                    if let Some(role) = role {
                        write_string(out_role, &role);
                    }
                }
                AuthDecision::Reject { reason } => {
                    *out_decision = auth_decision::REJECT;
                    write_string(out_reason, &reason);
                }
            }
        }
        Ok(())
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}
