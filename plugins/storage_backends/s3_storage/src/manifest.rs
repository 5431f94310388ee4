//! Table manifests: `<location>/_manifest/<version, 20 digits>.json`, one per commit.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use phantomdb_plugin_sdk::arrow_schema::Schema;
use phantomdb_plugin_sdk::Value;
use serde::{Deserialize, Serialize};

/// `format` of every manifest written by this version.
pub(crate) const FORMAT: &str = "phantomdb.s3_storage/1";
pub(crate) const MANIFEST_DIR: &str = "_manifest";
pub(crate) const DATA_DIR: &str = "data";

/// The error text of a lost commit race (SQLSTATE 40001 wording, so retry logic recognises it).
pub(crate) const CONFLICT: &str = "could not serialize access due to concurrent update";

/// One version of a table: the live data files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub format: String,
    pub version: u64,
    /// Random id of the commit that wrote this version.
    pub commit_id: String,
    /// Table name when created (informational).
    #[serde(default)]
    pub table_name: String,
    /// Smallest file id never used in this table.
    pub next_file_id: u64,
    /// Table schema at the last commit (informational).
    #[serde(default)]
    pub schema: Vec<ColumnDesc>,
    pub files: Vec<DataFile>,
}

/// A column of [`Manifest::schema`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ColumnDesc {
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
}

/// One immutable Parquet file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DataFile {
    /// File id: the upper 32 bits of the row ids of its rows.
    pub id: u64,
    /// Path relative to the table location, e.g. `data/<hex>.parquet`.
    pub path: String,
    pub rows: u64,
    pub size: u64,
    /// Per-column bounds (from the Parquet statistics), for pruning whole files and for
    /// table statistics. Missing columns or bounds mean unknown.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, ColumnStats>,
}

/// Bounds of one column in one file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ColumnStats {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_count: Option<u64>,
}

impl Manifest {
    /// Version 0: an empty table.
    pub(crate) fn empty(table_name: &str, schema: &Schema) -> Self {
        Self {
            format: FORMAT.to_string(),
            version: 0,
            commit_id: format!("{:016x}", crate::config::random_u64()),
            table_name: table_name.to_string(),
            next_file_id: 1,
            schema: describe_schema(schema),
            files: Vec::new(),
        }
    }

    pub(crate) fn row_count(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }
}

pub(crate) fn describe_schema(schema: &Schema) -> Vec<ColumnDesc> {
    schema
        .fields()
        .iter()
        .map(|f| ColumnDesc {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
            nullable: f.is_nullable(),
        })
        .collect()
}

pub(crate) fn manifest_dir(root: &Path) -> Path {
    root.clone().join(MANIFEST_DIR)
}

pub(crate) fn manifest_path(root: &Path, version: u64) -> Path {
    manifest_dir(root).join(format!("{version:020}.json"))
}

/// The version of a manifest file name, if it is one.
pub(crate) fn parse_manifest_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Object path of a data file given its manifest-relative path.
pub(crate) fn data_path(root: &Path, relative: &str) -> Path {
    relative
        .split('/')
        .filter(|s| !s.is_empty())
        .fold(root.clone(), |p, part| p.join(part))
}

fn io_err(what: &str, e: object_store::Error) -> String {
    format!("s3_storage: {what}: {e}")
}

/// The newest manifest version by listing `_manifest/`, `None` if there is none.
pub(crate) async fn latest_version_by_listing(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
) -> Result<Option<u64>, String> {
    let dir = manifest_dir(root);
    let metas: Vec<_> = store
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(|e| io_err(&format!("cannot list {dir}"), e))?;
    Ok(metas
        .iter()
        .filter_map(|m| m.location.filename().and_then(parse_manifest_name))
        .max())
}

pub(crate) async fn read_manifest(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    version: u64,
) -> Result<Manifest, String> {
    let path = manifest_path(root, version);
    let bytes = store
        .get(&path)
        .await
        .map_err(|e| io_err(&format!("cannot read {path}"), e))?
        .bytes()
        .await
        .map_err(|e| io_err(&format!("cannot read {path}"), e))?;
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| format!("s3_storage: corrupt manifest {path}: {e}"))?;
    if m.format != FORMAT {
        return Err(format!(
            "s3_storage: manifest {path} has format '{}', this version reads '{FORMAT}'",
            m.format
        ));
    }
    if m.version != version {
        return Err(format!(
            "s3_storage: manifest {path} claims version {}",
            m.version
        ));
    }
    Ok(m)
}

/// Whether manifest `version` exists.
pub(crate) async fn manifest_exists(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    version: u64,
) -> Result<bool, String> {
    let path = manifest_path(root, version);
    match store.head(&path).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(io_err(&format!("cannot check {path}"), e)),
    }
}

/// The newest manifest. With a `hint` (a manifest read earlier) it probes the following versions
/// with HEAD requests instead of listing: versions are written consecutively, so the newest is
/// the last one that exists.
pub(crate) async fn latest(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    hint: Option<Arc<Manifest>>,
) -> Result<Option<Arc<Manifest>>, String> {
    if let Some(hint) = hint {
        let mut v = hint.version;
        while manifest_exists(store, root, v + 1).await? {
            v += 1;
        }
        if v == hint.version {
            return Ok(Some(hint));
        }
        return Ok(Some(Arc::new(read_manifest(store, root, v).await?)));
    }
    match latest_version_by_listing(store, root).await? {
        None => Ok(None),
        Some(v) => Ok(Some(Arc::new(read_manifest(store, root, v).await?))),
    }
}

/// Why publishing a manifest failed.
#[derive(Debug)]
pub(crate) enum PutError {
    /// The version exists already: another commit won.
    Exists,
    Other(String),
}

/// Writes `manifest` as version `manifest.version` in one PUT that fails if the version exists
/// (`If-None-Match: *` on S3, an atomic hard link on a local file system).
pub(crate) async fn put_manifest(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    manifest: &Manifest,
) -> Result<(), PutError> {
    let path = manifest_path(root, manifest.version);
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| PutError::Other(format!("s3_storage: cannot encode the manifest: {e}")))?;
    let opts = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match store.put_opts(&path, PutPayload::from(json), opts).await {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. })
        | Err(object_store::Error::Precondition { .. }) => Err(PutError::Exists),
        Err(e) => Err(PutError::Other(io_err(&format!("cannot write {path}"), e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let root = Path::from("a/t");
        assert_eq!(
            manifest_path(&root, 7).as_ref(),
            "a/t/_manifest/00000000000000000007.json"
        );
        assert_eq!(parse_manifest_name("00000000000000000007.json"), Some(7));
        assert_eq!(parse_manifest_name("7.json"), None);
        assert_eq!(parse_manifest_name("0000000000000000000x.json"), None);
        assert_eq!(
            data_path(&root, "data/x.parquet").as_ref(),
            "a/t/data/x.parquet"
        );
    }

    /// Two commits of the same version: the second PUT must be refused, on both stores.
    #[test]
    fn create_only_manifest_put() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = phantomdb_testkit::S3TestServer::start(&dir.path().join("s3")).expect("s3");
        let local: Arc<dyn ObjectStore> = Arc::new(object_store::local::LocalFileSystem::new());
        let local_root = Path::from_absolute_path(dir.path().join("local")).expect("path");
        let s3: Arc<dyn ObjectStore> = Arc::new(
            object_store::aws::AmazonS3Builder::new()
                .with_endpoint(&server.endpoint)
                .with_allow_http(true)
                .with_virtual_hosted_style_request(false)
                .with_region(&server.region)
                .with_bucket_name(&server.bucket)
                .with_access_key_id(&server.access_key)
                .with_secret_access_key(&server.secret_key)
                .build()
                .expect("s3 client"),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        for (store, root) in [(local, local_root), (s3, Path::from("t1"))] {
            rt.block_on(async {
                let schema = Schema::empty();
                let mut m = Manifest::empty("t", &schema);
                assert!(latest(&store, &root, None).await.expect("latest").is_none());
                put_manifest(&store, &root, &m).await.expect("v0");
                m.version = 1;
                put_manifest(&store, &root, &m).await.expect("v1");
                let mut loser = m.clone();
                loser.commit_id = "loser".into();
                assert!(matches!(
                    put_manifest(&store, &root, &loser).await,
                    Err(PutError::Exists)
                ));
                let got = latest(&store, &root, None)
                    .await
                    .expect("latest")
                    .expect("some");
                assert_eq!(
                    (got.version, got.commit_id.as_str()),
                    (1, m.commit_id.as_str())
                );
                // The hint is verified: a stale hint finds the newer version.
                let stale = Arc::new(Manifest::empty("t", &schema));
                let got = latest(&store, &root, Some(stale))
                    .await
                    .expect("latest")
                    .expect("some");
                assert_eq!(got.version, 1);
            });
        }
    }
}
