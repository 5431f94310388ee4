//! Reading the embedded plugin manifest without loading the library.

use std::path::{Path, PathBuf};

use object::{Object, ObjectSection};
use phantomdb_plugin_abi::{
    current_platform_string, manifest_offsets as off, PluginType, MANIFEST_DESCRIPTION_LEN,
    MANIFEST_HOST_REQ_LEN, MANIFEST_NAME_LEN, MANIFEST_PLATFORM_LEN, MANIFEST_SECTION_NAME,
    MANIFEST_SECTION_NAME_MACHO, MANIFEST_VERSION_LEN, PHANTOMDB_PLUGIN_ABI_MAJOR,
    PHANTOMDB_PLUGIN_MAGIC,
};

use crate::LoadError;

/// The manifest of a plugin file, as read by [`inspect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginManifest {
    /// The file the manifest was read from.
    pub path: PathBuf,
    /// Plugin name, e.g. `"math_functions"`.
    pub name: String,
    /// Plugin version.
    pub version: semver::Version,
    /// One-line description.
    pub description: String,
    /// Kind of plugin.
    pub plugin_type: PluginType,
    /// ABI major version the plugin was built with (always equal to the host's after `inspect`).
    pub abi_major: u32,
    /// ABI minor version the plugin was built with.
    pub abi_minor: u32,
    /// Platform the plugin was built for, e.g. `"x86_64-linux"`.
    pub platform: String,
    /// Host versions the plugin accepts.
    pub host_version_req: semver::VersionReq,
}

impl PluginManifest {
    /// Whether the plugin accepts this host version.
    pub fn accepts_host(&self, host_version: &semver::Version) -> bool {
        self.host_version_req.matches(host_version)
    }

    /// Checks [`Self::accepts_host`], returning [`LoadError::HostVersionRejected`] otherwise.
    pub fn check_host_version(&self, host_version: &str) -> Result<(), LoadError> {
        let host = parse_host_version(&self.path, host_version)?;
        if self.accepts_host(&host) {
            Ok(())
        } else {
            Err(LoadError::HostVersionRejected {
                path: self.path.clone(),
                name: self.name.clone(),
                version: self.version.to_string(),
                required: self.host_version_req.to_string(),
                host: host.to_string(),
            })
        }
    }
}

pub(crate) fn parse_host_version(path: &Path, v: &str) -> Result<semver::Version, LoadError> {
    semver::Version::parse(v).map_err(|e| LoadError::InvalidHostVersion {
        path: path.to_path_buf(),
        version: v.to_string(),
        reason: e.to_string(),
    })
}

/// Reads and checks the manifest of the plugin at `path` **without loading it** (no `dlopen`, so
/// no code of the plugin runs).
///
/// Checks, in order: the file is readable and an object file / shared library; it has a PhantomDB
/// manifest section; the magic bytes; the ABI major version; the platform. Does not check the host
/// version (see [`PluginManifest::check_host_version`] and [`crate::load`]).
pub fn inspect(path: impl AsRef<Path>) -> Result<PluginManifest, LoadError> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    // Reads only what parsing touches (headers, section table, the manifest section), not
    // the whole library: a release plugin with line tables is tens of MB.
    let cache = object::ReadCache::new(std::io::BufReader::new(file));
    parse_manifest(path, &cache)
}

fn read_u32(data: &[u8], at: usize, little_endian: bool) -> Option<u32> {
    let b: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
    Some(if little_endian {
        u32::from_le_bytes(b)
    } else {
        u32::from_be_bytes(b)
    })
}

fn read_str(
    path: &Path,
    data: &[u8],
    at: usize,
    len: usize,
    field: &str,
) -> Result<String, LoadError> {
    let raw = data
        .get(at..at + len)
        .ok_or_else(|| invalid(path, "manifest truncated"))?;
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    std::str::from_utf8(&raw[..end])
        .map(str::to_string)
        .map_err(|_| invalid(path, &format!("field `{field}` is not UTF-8")))
}

fn invalid(path: &Path, reason: &str) -> LoadError {
    LoadError::InvalidManifest {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// [`inspect`] over any object-file reader: a byte slice, or a [`object::ReadCache`] over a file.
pub(crate) fn parse_manifest<'data, R: object::ReadRef<'data>>(
    path: &Path,
    bytes: R,
) -> Result<PluginManifest, LoadError> {
    let file = object::File::parse(bytes).map_err(|e| LoadError::NotALibrary {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if file.kind() != object::ObjectKind::Dynamic {
        return Err(LoadError::NotALibrary {
            path: path.to_path_buf(),
            reason: format!(
                "object file kind is {:?}, not a shared library",
                file.kind()
            ),
        });
    }
    let section = file
        .section_by_name(MANIFEST_SECTION_NAME)
        .or_else(|| file.section_by_name(MANIFEST_SECTION_NAME_MACHO))
        .ok_or_else(|| LoadError::NoManifest {
            path: path.to_path_buf(),
        })?;
    let data = section
        .data()
        .map_err(|e| invalid(path, &format!("cannot read manifest section: {e}")))?;
    let le = file.is_little_endian();

    if data.get(off::MAGIC..off::MAGIC + 16) != Some(&PHANTOMDB_PLUGIN_MAGIC[..]) {
        return Err(LoadError::BadMagic {
            path: path.to_path_buf(),
        });
    }
    let abi_major =
        read_u32(data, off::ABI_MAJOR, le).ok_or_else(|| invalid(path, "manifest truncated"))?;
    let abi_minor =
        read_u32(data, off::ABI_MINOR, le).ok_or_else(|| invalid(path, "manifest truncated"))?;
    if abi_major != PHANTOMDB_PLUGIN_ABI_MAJOR {
        return Err(LoadError::AbiMismatch {
            path: path.to_path_buf(),
            expected: PHANTOMDB_PLUGIN_ABI_MAJOR,
            found: abi_major,
            found_minor: abi_minor,
        });
    }
    let size = read_u32(data, off::MANIFEST_SIZE, le)
        .ok_or_else(|| invalid(path, "manifest truncated"))? as usize;
    if size < off::END || data.len() < off::END {
        return Err(invalid(
            path,
            &format!(
                "manifest is {} bytes (declares {size}), expected at least {}",
                data.len(),
                off::END
            ),
        ));
    }
    let plugin_type_raw =
        read_u32(data, off::PLUGIN_TYPE, le).ok_or_else(|| invalid(path, "manifest truncated"))?;
    let platform = read_str(path, data, off::PLATFORM, MANIFEST_PLATFORM_LEN, "platform")?;
    let name = read_str(path, data, off::NAME, MANIFEST_NAME_LEN, "name")?;
    let version = read_str(path, data, off::VERSION, MANIFEST_VERSION_LEN, "version")?;
    let host_req = read_str(
        path,
        data,
        off::HOST_VERSION_REQ,
        MANIFEST_HOST_REQ_LEN,
        "host_version_req",
    )?;
    let description = read_str(
        path,
        data,
        off::DESCRIPTION,
        MANIFEST_DESCRIPTION_LEN,
        "description",
    )?;

    let expected_platform = current_platform_string();
    if platform != expected_platform {
        return Err(LoadError::WrongPlatform {
            path: path.to_path_buf(),
            name,
            expected: expected_platform,
            found: platform,
        });
    }
    if name.is_empty() {
        return Err(invalid(path, "plugin name is empty"));
    }
    let plugin_type = PluginType::from_u32(plugin_type_raw).ok_or_else(|| {
        invalid(
            path,
            &format!("unknown plugin type {plugin_type_raw} (plugin built with a newer SDK?)"),
        )
    })?;
    let version = semver::Version::parse(&version).map_err(|e| {
        invalid(
            path,
            &format!("plugin version `{version}` is not semver: {e}"),
        )
    })?;
    let host_version_req = semver::VersionReq::parse(&host_req).map_err(|e| {
        invalid(
            path,
            &format!("host version requirement `{host_req}` is not a semver requirement: {e}"),
        )
    })?;
    Ok(PluginManifest {
        path: path.to_path_buf(),
        name,
        version,
        description,
        plugin_type,
        abi_major,
        abi_minor,
        platform,
        host_version_req,
    })
}
