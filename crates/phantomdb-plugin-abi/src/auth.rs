//! The `phantomdb.auth/1` interface ([`AuthInterface`]), since ABI 1.3: authentication
//! providers. The server's rules (`[[auth.rules]]` in `phantomdb.toml`) name a provider; for a
//! login the host asks the client for its password in clear text and calls
//! [`AuthInterface::authenticate`] with an [`AuthRequest`], off its I/O threads and under a
//! time limit. The provider answers accept (optionally naming the role to run as), reject
//! (with a reason the host logs and never sends to the client), or fails (an error status:
//! logged, and the client sees a rejection).
//!
//! One module per interface, so each interface's tables (append-only within the ABI major
//! version) can be read and reviewed on their own.

use std::ffi::{c_char, CStr};

use crate::{OutError, Status};
// Only named in documentation links.
#[cfg(doc)]
use crate::PluginVTable;

/// Name of the authentication interface ([`AuthInterface`]), since ABI 1.3.
pub const AUTH_INTERFACE_V1: &str = "phantomdb.auth/1";
/// Same as [`AUTH_INTERFACE_V1`], NUL-terminated for `get_interface`.
pub const AUTH_INTERFACE_V1_C: &CStr = c"phantomdb.auth/1";

/// Answers of [`AuthInterface::authenticate`] ([`AuthInterface::authenticate`]'s
/// `out_decision`), stored as `u32`.
pub mod auth_decision {
    /// The credentials are good: the login may proceed (as `out_role` when written).
    pub const ACCEPT: u32 = 1;
    /// The credentials are not good; `out_reason` says why (logged, not sent to the client).
    pub const REJECT: u32 = 2;
}

/// One authentication provider of a plugin. Strings live as long as the plugin (forever).
#[repr(C)]
#[derive(Debug)]
pub struct AuthProviderDescriptor {
    /// `size_of::<AuthProviderDescriptor>()` in the plugin's ABI version.
    pub struct_size: usize,
    /// Provider name as rules use it (lower case), NUL-terminated, e.g. `"ldap"`.
    pub name: *const c_char,
    /// One-line description, NUL-terminated.
    pub description: *const c_char,
}

/// One login attempt. All pointers are borrowed for the call; strings are UTF-8, not
/// NUL-terminated.
#[repr(C)]
#[derive(Debug)]
pub struct AuthRequest {
    /// `size_of::<AuthRequest>()` in the host's ABI version.
    pub struct_size: usize,
    /// The user name the client sent.
    pub user: *const u8,
    /// Length of `user`.
    pub user_len: usize,
    /// The password the client sent (may be empty).
    pub password: *const u8,
    /// Length of `password`.
    pub password_len: usize,
    /// The database the client asked for.
    pub database: *const u8,
    /// Length of `database`.
    pub database_len: usize,
    /// The client's IP address as text (`127.0.0.1`, `::1`).
    pub client_addr: *const u8,
    /// Length of `client_addr`.
    pub client_addr_len: usize,
    /// The matching rule's `options`, a JSON object.
    pub options_json: *const u8,
    /// Length of `options_json`.
    pub options_len: usize,
    /// 1 when the connection uses TLS.
    pub tls: u8,
}

/// The `phantomdb.auth/1` interface. Append-only. `provider` arguments index `providers`.
///
/// Strings the plugin writes (`out_role`, `out_reason`, errors) are allocated by the plugin
/// and released by the host with [`PluginVTable::free_string`].
#[repr(C)]
#[derive(Debug)]
pub struct AuthInterface {
    /// `size_of::<AuthInterface>()` in the plugin's ABI version.
    pub struct_size: usize,
    /// Number of entries in `providers`.
    pub num_providers: usize,
    /// Provider descriptors; stride is their `struct_size`.
    pub providers: *const AuthProviderDescriptor,
    /// Checks a rule's options (a JSON object) when the rules load, so a mistake is reported
    /// then rather than at a login. An error status refuses the rules.
    pub check_options: unsafe extern "C" fn(
        provider: usize,
        options_json: *const u8,
        options_len: usize,
        out_error: OutError,
    ) -> Status,
    /// Decides one login. On [`Status::OK`] writes an [`auth_decision`] into `out_decision`;
    /// on accept it may write the role to run as (NUL-terminated) into `out_role` (null: the
    /// user name), on reject the reason into `out_reason`. May block (network calls); the host
    /// calls it off its I/O threads and stops waiting after its time limit.
    pub authenticate: unsafe extern "C" fn(
        provider: usize,
        request: *const AuthRequest,
        out_decision: *mut u32,
        out_role: *mut *mut c_char,
        out_reason: *mut *mut c_char,
        out_error: OutError,
    ) -> Status,
}
