//! `strata fsck`: check the tables against a replay of the log (rows that do
//! not decode, rows that differ), re-hash every layer blob the tables name, report damaged
//! and missing ones with the images they affect, and optionally move damaged
//! blobs out of the way (quarantine) so that nothing serves bad bytes.
//!
//! fsck changes no table: a damaged image stays listed (its metadata is
//! intact) and its layers can be restored by loading or pulling the image
//! again, which re-ingests the blob under the same DiffID.

use crate::error::Result;
use crate::store::Store;
use serde::Serialize;
use std::collections::BTreeMap;

/// One problem fsck found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The blob (a layer DiffID).
    pub blob: String,
    /// `missing` or `damaged`.
    pub state: &'static str,
    /// What the blob's bytes hash to, when damaged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// Images whose layers include this blob.
    pub images: Vec<String>,
    /// Where the damaged blob was moved, with `repair`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantined_to: Option<String>,
    /// The registry blob (`repository@digest`) it was fetched again from,
    /// with `repair`, when the log knows where the layer came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refetched_from: Option<String>,
}

/// What fsck found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FsckReport {
    /// Table rows that do not decode, as `table/key`.
    pub bad_rows: Vec<String>,
    /// Whether the tables differ from a replay of the log (first difference).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tables_differ: Option<String>,
    /// Whether `repair` rebuilt the tables from the log.
    pub tables_rebuilt: bool,
    /// Blobs checked.
    pub checked: u64,
    /// Bytes re-hashed.
    pub bytes: u64,
    /// Every damaged or missing blob.
    pub problems: Vec<Problem>,
}

/// Check the tables against the log and every blob the tables name; with
/// `repair`, rebuild damaged tables from the log and quarantine damaged blobs
/// under `<root>/quarantine/`.
pub fn fsck(store: &Store, repair: bool) -> Result<FsckReport> {
    let mut report = FsckReport {
        bad_rows: store
            .read(|t| t.bad_rows())?
            .into_iter()
            .map(|(t, k)| format!("{t}/{k}"))
            .collect(),
        tables_differ: store.verify_replay()?,
        ..Default::default()
    };
    if repair && (report.tables_differ.is_some() || !report.bad_rows.is_empty()) {
        store.rebuild_tables()?;
        report.tables_rebuilt = true;
    }
    let (layers, images) = store.read(|t| {
        let layers = t.layers()?;
        let mut by_blob: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let chains: BTreeMap<String, String> = layers
            .iter()
            .map(|(c, l)| (c.clone(), l.diff_id.clone()))
            .collect();
        for (id, row) in t.images()? {
            let mut cur = row.top_layer.clone();
            while let Some(c) = cur {
                let Some(layer) = t.layer(&c)? else { break };
                by_blob
                    .entry(layer.diff_id.clone())
                    .or_default()
                    .push(id.clone());
                cur = layer.parent;
            }
        }
        Ok((chains, by_blob))
    })?;
    let content = store.content();
    let mut seen = std::collections::BTreeSet::new();
    for blob in layers.values() {
        if !seen.insert(blob.clone()) {
            continue;
        }
        report.checked += 1;
        let affected = images.get(blob).cloned().unwrap_or_default();
        if !content.contains(blob) {
            report.problems.push(Problem {
                blob: blob.clone(),
                state: "missing",
                actual: None,
                images: affected,
                quarantined_to: None,
                refetched_from: None,
            });
            continue;
        }
        report.bytes += std::fs::metadata(content.path(blob))?.len();
        if let Some(actual) = content.check(blob)? {
            let quarantined_to = if repair {
                let dir = store.root().join("quarantine");
                std::fs::create_dir_all(&dir)?;
                let dest = dir.join(crate::digest::hex_part(blob));
                std::fs::rename(content.path(blob), &dest)?;
                std::fs::File::open(store.root().join("blobs/sha256"))?.sync_all()?;
                Some(dest.display().to_string())
            } else {
                None
            };
            report.problems.push(Problem {
                blob: blob.clone(),
                state: "damaged",
                actual: Some(actual),
                images: affected,
                quarantined_to,
                refetched_from: None,
            });
        }
    }
    Ok(report)
}
