//! Docker's v2 metadata service (spec §6): per DiffID, the compressed blobs
//! known to exist in which repositories; per blob digest, its DiffID.
//!
//! Recorded in the event log (`DistributionMetadataAdded` / `Removed`) and
//! read from the projection's `dist_metadata` and `dist_by_digest` tables,
//! like every other piece of store state. Pulls and adoption record it in
//! the same write as the image; push records what it learns as it goes.

use crate::error::Result;
use crate::event::EventBody;
use crate::service::ImageService;
use crate::store::Writer;
use serde::{Deserialize, Serialize};

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

/// Record `items` inside an ongoing write.
pub(crate) fn emit_all(w: &mut Writer<'_>, items: &[(String, V2Metadata)]) -> Result<()> {
    for (diff_id, m) in items {
        let current = w.tables().dist_metadata(diff_id)?;
        let entry = (m.digest.clone(), m.source_repository.clone());
        if current.last() == Some(&entry) {
            continue; // already the newest entry: nothing would change
        }
        w.emit(EventBody::DistributionMetadataAdded {
            diff_id: diff_id.clone(),
            digest: m.digest.clone(),
            repository: m.source_repository.clone(),
        })?;
    }
    Ok(())
}

/// The v2 metadata of a store, read from and recorded in its log.
#[derive(Clone, Debug)]
pub struct MetadataStore {
    svc: ImageService,
}

impl MetadataStore {
    /// The metadata of `svc`'s store; changes are recorded as `svc`'s actor.
    pub fn new(svc: &ImageService) -> MetadataStore {
        MetadataStore { svc: svc.clone() }
    }

    /// Entries for `diff_id`, oldest first.
    pub fn get_metadata(&self, diff_id: &str) -> Vec<V2Metadata> {
        self.svc
            .store()
            .read(|t| t.dist_metadata(diff_id))
            .unwrap_or_default()
            .into_iter()
            .map(|(digest, source_repository)| V2Metadata {
                digest,
                source_repository,
                hmac: String::new(),
            })
            .collect()
    }

    /// The DiffID of a blob, if known.
    pub fn get_diff_id(&self, digest: &str) -> Option<String> {
        self.svc
            .store()
            .read(|t| t.dist_diff_id(digest))
            .ok()
            .flatten()
    }

    /// Remember (several) `(diff_id, metadata)` pairs in one write.
    pub fn add_all(&self, items: &[(String, V2Metadata)]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        self.svc
            .store()
            .write(self.svc.actor(), |w| emit_all(w, items))
    }

    /// Forget one entry.
    pub fn remove(&self, diff_id: &str, m: &V2Metadata) -> Result<()> {
        self.svc.store().write(self.svc.actor(), |w| {
            let known = w.tables().dist_metadata(diff_id)?;
            if known
                .iter()
                .any(|(d, r)| *d == m.digest && *r == m.source_repository)
            {
                w.emit(EventBody::DistributionMetadataRemoved {
                    diff_id: diff_id.to_string(),
                    digest: m.digest.clone(),
                    repository: m.source_repository.clone(),
                })?;
            }
            Ok(())
        })
    }
}
