//! Host side of `phantomdb.auth/1`: a plugin's authentication providers, seen through the
//! SDK's safe [`AuthProvider`] trait, so the server treats every provider the same way.
//!
//! Every call checks the plugin is initialized (and holds its state lock for the call, so a
//! shutdown waits for it). The decision is validated: an unknown decision value or a role
//! name that is empty or not UTF-8 is an error, never an accept.

use std::ffi::{c_char, CStr};

use phantomdb_plugin_abi::{
    auth_decision, AuthInterface, AuthProviderDescriptor, AuthRequest as CAuthRequest,
    AUTH_INTERFACE_V1, AUTH_INTERFACE_V1_C,
};
use phantomdb_plugin_sdk::auth::{AuthDecision, AuthOptions, AuthProvider, AuthRequest};

use crate::ffi::c_str;
use crate::{CallError, LoadedPlugin};

const MAX_PROVIDERS: usize = 1_000;

/// A provider as declared by a plugin.
#[derive(Debug, Clone)]
pub(crate) struct ProviderDecl {
    name: String,
    description: String,
}

/// Reads the plugin's authentication interface, if it has one.
pub(crate) fn read_interface(
    vtable: &'static phantomdb_plugin_abi::PluginVTable,
) -> Result<(Option<&'static AuthInterface>, Vec<ProviderDecl>), String> {
    // SAFETY: valid NUL-terminated name; the plugin returns null or a pointer to a static table.
    let ptr = unsafe { (vtable.get_interface)(AUTH_INTERFACE_V1_C.as_ptr()) };
    if ptr.is_null() {
        return Ok((None, Vec::new()));
    }
    // SAFETY: an `AuthInterface` by ABI contract; struct_size is checked before other fields.
    let iface: &'static AuthInterface = unsafe { &*(ptr as *const AuthInterface) };
    if iface.struct_size < std::mem::size_of::<AuthInterface>() {
        return Err(format!(
            "`{AUTH_INTERFACE_V1}` table is {} bytes, expected at least {}",
            iface.struct_size,
            std::mem::size_of::<AuthInterface>()
        ));
    }
    if iface.num_providers > MAX_PROVIDERS || (iface.num_providers > 0 && iface.providers.is_null())
    {
        return Err(format!(
            "`{AUTH_INTERFACE_V1}` declares {} providers at an invalid address",
            iface.num_providers
        ));
    }
    let mut providers = Vec::with_capacity(iface.num_providers);
    let mut stride = std::mem::size_of::<AuthProviderDescriptor>();
    for i in 0..iface.num_providers {
        // SAFETY: `num_providers` descriptors with a common stride (their struct_size).
        let d = unsafe {
            &*((iface.providers as *const u8).add(i * stride) as *const AuthProviderDescriptor)
        };
        if i == 0 {
            if d.struct_size < std::mem::size_of::<AuthProviderDescriptor>() {
                return Err("authentication provider descriptor is too small".to_string());
            }
            stride = d.struct_size;
        }
        // SAFETY: NUL-terminated strings that live forever.
        let name = unsafe { c_str(d.name, "provider name") }?;
        // SAFETY: as above.
        let description = unsafe { c_str(d.description, "provider description") }?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "authentication provider name `{name}` must be non-empty ASCII letters, digits or _"
            ));
        }
        providers.push(ProviderDecl {
            name: name.to_ascii_lowercase(),
            description,
        });
    }
    Ok((Some(iface), providers))
}

/// An authentication provider living in a native plugin.
#[derive(Clone)]
pub struct NativeAuthProvider {
    plugin: LoadedPlugin,
    index: usize,
}

impl std::fmt::Debug for NativeAuthProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeAuthProvider")
            .field("plugin", &self.plugin.name())
            .field("provider", &self.decl().name)
            .finish()
    }
}

impl NativeAuthProvider {
    pub(crate) fn new(plugin: LoadedPlugin, index: usize) -> Self {
        Self { plugin, index }
    }

    fn decl(&self) -> &ProviderDecl {
        &self.plugin.inner.auth_providers[self.index]
    }

    fn iface(&self) -> Result<&'static AuthInterface, CallError> {
        self.plugin
            .inner
            .auth_iface
            .ok_or_else(|| CallError::NoSuchFunction {
                plugin: self.plugin.name().to_string(),
                reason: "plugin has no authentication interface".to_string(),
            })
    }

    fn function(&self, call: &str) -> String {
        format!("{}.{call}", self.decl().name)
    }

    /// A plugin-allocated string from an out slot (freed here), if written.
    fn take_string(&self, p: *mut c_char, call: &str) -> Result<Option<String>, CallError> {
        if p.is_null() {
            return Ok(None);
        }
        // SAFETY: plugin-allocated NUL-terminated string, freed right after.
        let text = unsafe { CStr::from_ptr(p) }.to_str().map(str::to_string);
        // SAFETY: returned to the allocator that produced it.
        unsafe { (self.plugin.inner.vtable.free_string)(p) };
        text.map(Some).map_err(|_| CallError::InvalidResult {
            plugin: self.plugin.name().to_string(),
            function: self.function(call),
            reason: "a string it returned is not UTF-8".to_string(),
        })
    }

    fn invalid(&self, call: &str, reason: impl Into<String>) -> CallError {
        CallError::InvalidResult {
            plugin: self.plugin.name().to_string(),
            function: self.function(call),
            reason: reason.into(),
        }
    }
}

/// The host's errors as the SDK trait's strings.
fn text(e: CallError) -> String {
    e.to_string()
}

impl AuthProvider for NativeAuthProvider {
    fn name(&self) -> &str {
        &self.decl().name
    }

    fn description(&self) -> &str {
        &self.decl().description
    }

    fn check_options(&self, options: &AuthOptions) -> Result<(), String> {
        let iface = self.iface().map_err(text)?;
        let json = serde_json::to_string(options).map_err(|e| e.to_string())?;
        let _guard = self.plugin.enter().map_err(text)?;
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid pointer/length for the call; err is a valid out slot.
        let status =
            unsafe { (iface.check_options)(self.index, json.as_ptr(), json.len(), &mut err) };
        self.plugin
            .check_status(status, err, &self.function("check_options"))
            .map_err(text)
    }

    fn authenticate(&self, request: &AuthRequest<'_>) -> Result<AuthDecision, String> {
        let iface = self.iface().map_err(text)?;
        let options = serde_json::to_string(request.options).map_err(|e| e.to_string())?;
        let c = CAuthRequest {
            struct_size: std::mem::size_of::<CAuthRequest>(),
            user: request.user.as_ptr(),
            user_len: request.user.len(),
            password: request.password.as_ptr(),
            password_len: request.password.len(),
            database: request.database.as_ptr(),
            database_len: request.database.len(),
            client_addr: request.client_addr.as_ptr(),
            client_addr_len: request.client_addr.len(),
            options_json: options.as_ptr(),
            options_len: options.len(),
            tls: u8::from(request.tls),
        };
        let _guard = self.plugin.enter().map_err(text)?;
        let mut decision = 0u32;
        let mut role: *mut c_char = std::ptr::null_mut();
        let mut reason: *mut c_char = std::ptr::null_mut();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: the request's pointers live for the call; every out slot is valid.
        let status = unsafe {
            (iface.authenticate)(
                self.index,
                &c,
                &mut decision,
                &mut role,
                &mut reason,
                &mut err,
            )
        };
        // Strings written before a failure are still the plugin's to free.
        let role = self.take_string(role, "authenticate");
        let reason = self.take_string(reason, "authenticate");
        self.plugin
            .check_status(status, err, &self.function("authenticate"))
            .map_err(text)?;
        let (role, reason) = (role.map_err(text)?, reason.map_err(text)?);
        match decision {
            auth_decision::ACCEPT => match role {
                Some(r) if r.trim().is_empty() => Err(text(
                    self.invalid("authenticate", "it accepted with an empty role name"),
                )),
                role => Ok(AuthDecision::Accept { role }),
            },
            auth_decision::REJECT => Ok(AuthDecision::Reject {
                reason: reason.unwrap_or_else(|| "rejected (no reason given)".to_string()),
            }),
            other => Err(text(self.invalid(
                "authenticate",
                format!("unknown decision {other} (neither accept nor reject)"),
            ))),
        }
    }
}
