//! Docker's v2 metadata service (spec §6): per DiffID, the compressed blobs
//! known to exist in which repositories; per blob digest, its DiffID.
//!
//! Kept in a side file `<store root>/distribution.json`, rewritten
//! atomically (temporary file, fsync, rename). It is a cache that only
//! saves uploads and downloads: losing it is harmless. (It is not part of
//! the event log; see the helper's report for the event that would carry it.)

use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One remembered blob of a DiffID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct V2Metadata {
    /// The compressed blob digest.
    #[serde(rename = "Digest")]
    pub digest: String,
    /// Full repository name (`127.0.0.1:5000/test`, `docker.io/library/busybox`).
    #[serde(rename = "SourceRepository")]
    pub source_repository: String,
    /// HMAC of the credentials (empty: strata does not record one).
    #[serde(rename = "HMAC", default)]
    pub hmac: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(default)]
    by_diff_id: BTreeMap<String, Vec<V2Metadata>>,
    #[serde(default)]
    diff_id_by_digest: BTreeMap<String, String>,
}

static LOCK: Mutex<()> = Mutex::new(());
const MAX_ENTRIES: usize = 50;

/// The metadata side file of a store.
#[derive(Clone, Debug)]
pub struct MetadataStore {
    path: PathBuf,
}

impl MetadataStore {
    /// The side file under `root`.
    pub fn at(root: &Path) -> MetadataStore {
        MetadataStore {
            path: root.join("distribution.json"),
        }
    }

    fn load(&self) -> File {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&self, f: &File) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".distribution-")
            .tempfile_in(dir)?;
        tmp.write_all(&serde_json::to_vec(f).map_err(crate::Error::internal)?)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path)
            .map_err(|e| crate::Error::from(e.error))?;
        Ok(())
    }

    /// Entries for `diff_id`, oldest first.
    pub fn get_metadata(&self, diff_id: &str) -> Vec<V2Metadata> {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        self.load()
            .by_diff_id
            .get(diff_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The DiffID of a blob, if known.
    pub fn get_diff_id(&self, digest: &str) -> Option<String> {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        self.load().diff_id_by_digest.get(digest).cloned()
    }

    /// Remember (several) `(diff_id, metadata)` pairs at once.
    pub fn add_all(&self, items: &[(String, V2Metadata)]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut f = self.load();
        for (diff_id, m) in items {
            let list = f.by_diff_id.entry(diff_id.clone()).or_default();
            list.retain(|e| e != m);
            list.push(m.clone());
            if list.len() > MAX_ENTRIES {
                let extra = list.len() - MAX_ENTRIES;
                list.drain(..extra);
            }
            f.diff_id_by_digest
                .insert(m.digest.clone(), diff_id.clone());
        }
        self.save(&f)
    }

    /// Forget one entry.
    pub fn remove(&self, diff_id: &str, m: &V2Metadata) -> Result<()> {
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut f = self.load();
        if let Some(list) = f.by_diff_id.get_mut(diff_id) {
            list.retain(|e| e != m);
            if list.is_empty() {
                f.by_diff_id.remove(diff_id);
            }
        }
        self.save(&f)
    }
}
