//! The plugin manifest: the fixed-layout [`PluginManifest`] a plugin embeds in an object-file
//! section, so a host can read a plugin's name, version, ABI version and platform *without*
//! loading (`dlopen`ing) the library. Also the manifest's field sizes and byte offsets (for
//! readers that parse the raw section bytes), [`PluginType`], and the platform string helpers.
//!
//! The layout of the first fields (magic, ABI version, size) is fixed for every ABI version, so
//! any host can recognise a plugin built for another ABI major version.

use crate::{PHANTOMDB_PLUGIN_ABI_MAJOR, PHANTOMDB_PLUGIN_ABI_MINOR, PHANTOMDB_PLUGIN_MAGIC};

/// Name of the object-file section holding the [`PluginManifest`] (ELF, PE).
pub const MANIFEST_SECTION_NAME: &str = ".phantomdb_plugin";
/// Name of the Mach-O section (in segment `__DATA`) holding the [`PluginManifest`].
pub const MANIFEST_SECTION_NAME_MACHO: &str = "__phdb_plugin";

/// Size of [`PluginManifest::platform`].
pub const MANIFEST_PLATFORM_LEN: usize = 32;
/// Size of [`PluginManifest::name`].
pub const MANIFEST_NAME_LEN: usize = 64;
/// Size of [`PluginManifest::version`].
pub const MANIFEST_VERSION_LEN: usize = 32;
/// Size of [`PluginManifest::host_version_req`].
pub const MANIFEST_HOST_REQ_LEN: usize = 64;
/// Size of [`PluginManifest::description`].
pub const MANIFEST_DESCRIPTION_LEN: usize = 256;

/// Byte offsets of the manifest fields, for readers that parse the section bytes without loading
/// the library. `magic`, `abi_major`, `abi_minor` and `manifest_size` keep these offsets in every
/// ABI version, so any host can tell a plugin built for another ABI major version.
pub mod manifest_offsets {
    /// `magic`: 16 bytes.
    pub const MAGIC: usize = 0;
    /// `abi_major`: u32 in the target's byte order.
    pub const ABI_MAJOR: usize = 16;
    /// `abi_minor`: u32.
    pub const ABI_MINOR: usize = 20;
    /// `manifest_size`: u32.
    pub const MANIFEST_SIZE: usize = 24;
    /// `plugin_type`: u32 ([`super::PluginType`]).
    pub const PLUGIN_TYPE: usize = 28;
    /// `platform`: NUL-padded UTF-8.
    pub const PLATFORM: usize = 32;
    /// `name`: NUL-padded UTF-8.
    pub const NAME: usize = PLATFORM + super::MANIFEST_PLATFORM_LEN;
    /// `version`: NUL-padded UTF-8 (semver).
    pub const VERSION: usize = NAME + super::MANIFEST_NAME_LEN;
    /// `host_version_req`: NUL-padded UTF-8 (semver requirement).
    pub const HOST_VERSION_REQ: usize = VERSION + super::MANIFEST_VERSION_LEN;
    /// `description`: NUL-padded UTF-8.
    pub const DESCRIPTION: usize = HOST_VERSION_REQ + super::MANIFEST_HOST_REQ_LEN;
    /// Total size of the version-1 manifest.
    pub const END: usize = DESCRIPTION + super::MANIFEST_DESCRIPTION_LEN;
}

/// Kind of plugin, stored as `u32` in the manifest.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginType {
    /// Adds scalar, aggregate and/or table functions (`phantomdb.functions/1`).
    Functions = 1,
    /// Adds storage engines (`phantomdb.storage/1`), possibly functions too. Since ABI 1.1.
    Storage = 2,
    /// Adds authentication providers (`phantomdb.auth/1`). Since ABI 1.3.
    Authentication = 3,
    /// Adds query processors (`phantomdb.query/1`). Since ABI 1.4.
    QueryProcessor = 4,
    /// Adds custom data types (`phantomdb.types/1`), usually with functions. Since ABI 1.5.
    DataType = 5,
}

impl PluginType {
    /// Decodes a manifest value; `None` for values this ABI version does not know.
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Functions),
            2 => Some(Self::Storage),
            3 => Some(Self::Authentication),
            4 => Some(Self::QueryProcessor),
            5 => Some(Self::DataType),
            _ => None,
        }
    }

    /// Stable lower-case name, e.g. `"functions"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Functions => "functions",
            Self::Storage => "storage",
            Self::Authentication => "authentication",
            Self::QueryProcessor => "query_processor",
            Self::DataType => "data_type",
        }
    }
}

/// Metadata embedded in the plugin library in section [`MANIFEST_SECTION_NAME`], readable without
/// loading (`dlopen`) the library. All strings are UTF-8, NUL-padded to their fixed size.
///
/// Build one with [`PluginManifest::new`] in a `#[used] #[link_section]` static (the SDK's
/// `phantomdb_plugin!` macro does this).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PluginManifest {
    /// Always [`PHANTOMDB_PLUGIN_MAGIC`].
    pub magic: [u8; 16],
    /// ABI major version the plugin was built with.
    pub abi_major: u32,
    /// ABI minor version the plugin was built with.
    pub abi_minor: u32,
    /// `size_of::<PluginManifest>()` in the plugin's ABI version (append-only).
    pub manifest_size: u32,
    /// [`PluginType`] as `u32`.
    pub plugin_type: u32,
    /// Platform the plugin was compiled for: `"{arch}-{os}"` as in `std::env::consts`,
    /// e.g. `"x86_64-linux"`.
    pub platform: [u8; MANIFEST_PLATFORM_LEN],
    /// Plugin name (unique in a host), e.g. `"math_functions"`.
    pub name: [u8; MANIFEST_NAME_LEN],
    /// Plugin version, semver, e.g. `"1.2.0"`.
    pub version: [u8; MANIFEST_VERSION_LEN],
    /// Host versions the plugin accepts, a semver requirement such as `">=0.1, <0.2"`.
    pub host_version_req: [u8; MANIFEST_HOST_REQ_LEN],
    /// One-line human-readable description.
    pub description: [u8; MANIFEST_DESCRIPTION_LEN],
}

const _: () = assert!(std::mem::size_of::<PluginManifest>() == manifest_offsets::END);

/// Copies `s` into a NUL-padded fixed buffer; fails compilation (in const context) when too long.
const fn fixed_str<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    assert!(
        b.len() < N,
        "PhantomDB plugin manifest string is too long for its field"
    );
    let mut out = [0u8; N];
    let mut i = 0;
    while i < b.len() {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// The current platform string, `"{ARCH}-{OS}"` (e.g. `"x86_64-linux"`), NUL-padded.
pub const fn current_platform() -> [u8; MANIFEST_PLATFORM_LEN] {
    let arch = std::env::consts::ARCH.as_bytes();
    let os = std::env::consts::OS.as_bytes();
    assert!(arch.len() + 1 + os.len() < MANIFEST_PLATFORM_LEN);
    let mut out = [0u8; MANIFEST_PLATFORM_LEN];
    let mut i = 0;
    while i < arch.len() {
        out[i] = arch[i];
        i += 1;
    }
    out[i] = b'-';
    let mut j = 0;
    while j < os.len() {
        out[i + 1 + j] = os[j];
        j += 1;
    }
    out
}

/// The current platform string as a `String` (e.g. `"x86_64-linux"`).
pub fn current_platform_string() -> String {
    format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
}

impl PluginManifest {
    /// A manifest for the current ABI version and the platform being compiled for.
    ///
    /// Panics (a compile error when used in a `static`) if a string is too long for its field:
    /// name < 64 bytes, version < 32, host_version_req < 64, description < 256.
    pub const fn new(
        plugin_type: PluginType,
        name: &str,
        version: &str,
        host_version_req: &str,
        description: &str,
    ) -> Self {
        Self {
            magic: PHANTOMDB_PLUGIN_MAGIC,
            abi_major: PHANTOMDB_PLUGIN_ABI_MAJOR,
            abi_minor: PHANTOMDB_PLUGIN_ABI_MINOR,
            manifest_size: std::mem::size_of::<PluginManifest>() as u32,
            plugin_type: plugin_type as u32,
            platform: current_platform(),
            name: fixed_str(name),
            version: fixed_str(version),
            host_version_req: fixed_str(host_version_req),
            description: fixed_str(description),
        }
    }

    /// Overrides the ABI version (for tests and compatibility fixtures).
    pub const fn with_abi_version(mut self, major: u32, minor: u32) -> Self {
        self.abi_major = major;
        self.abi_minor = minor;
        self
    }

    /// Overrides the platform string (for tests and fixtures).
    pub const fn with_platform(mut self, platform: &str) -> Self {
        self.platform = fixed_str(platform);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_layout_is_fixed() {
        let m = PluginManifest::new(PluginType::Functions, "x", "1.0.0", "*", "d");
        let base = &m as *const _ as usize;
        assert_eq!(
            &m.abi_major as *const _ as usize - base,
            manifest_offsets::ABI_MAJOR
        );
        assert_eq!(&m.name as *const _ as usize - base, manifest_offsets::NAME);
        assert_eq!(
            &m.description as *const _ as usize - base,
            manifest_offsets::DESCRIPTION
        );
        assert_eq!(m.manifest_size as usize, manifest_offsets::END);
    }

    #[test]
    fn platform_string() {
        let p = current_platform();
        let s = std::str::from_utf8(&p)
            .expect("utf8")
            .trim_end_matches('\0');
        assert_eq!(s, current_platform_string());
    }
}
