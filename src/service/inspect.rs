//! `LookupImage` (inspect) and `ImageHistory`: image-service.md §4.1, §4.3.

use super::lookup::{get_image, parse_stored};
use crate::config::{GoTime, ImageConfig};
use crate::digest::chain_ids;
use crate::error::{Error, Result};
use crate::projection::ReadTables;
use serde::Serialize;
use serde_json::value::RawValue;

/// `{"Data": null, "Name": "vfs"}`: strata materializes layers by copying, as vfs does.
#[derive(Clone, Debug, Serialize)]
pub struct GraphDriver {
    /// Always null.
    #[serde(rename = "Data")]
    pub data: Option<()>,
    /// `vfs`.
    #[serde(rename = "Name")]
    pub name: &'static str,
}

/// `RootFS` of inspect.
#[derive(Clone, Debug, Serialize)]
pub struct InspectRootFs {
    /// `layers`.
    #[serde(rename = "Type")]
    pub fs_type: String,
    /// DiffIDs, omitted when empty.
    #[serde(rename = "Layers", skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
}

/// `Metadata` of inspect.
#[derive(Clone, Debug, Serialize)]
pub struct InspectMetadata {
    /// RFC3339Nano, or `0001-01-01T00:00:00Z` when never tagged through the tag path.
    #[serde(rename = "LastTagTime")]
    pub last_tag_time: String,
}

/// The Engine API's ImageInspect, field for field in Docker's order.
#[derive(Clone, Debug, Serialize)]
#[allow(missing_docs)]
pub struct ImageInspect {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "RepoTags")]
    pub repo_tags: Vec<String>,
    #[serde(rename = "RepoDigests")]
    pub repo_digests: Vec<String>,
    #[serde(rename = "Parent")]
    pub parent: String,
    #[serde(rename = "Comment")]
    pub comment: String,
    #[serde(rename = "Created")]
    pub created: String,
    #[serde(rename = "Container")]
    pub container: String,
    #[serde(rename = "ContainerConfig")]
    pub container_config: Box<RawValue>,
    #[serde(rename = "DockerVersion")]
    pub docker_version: String,
    #[serde(rename = "Author")]
    pub author: String,
    #[serde(rename = "Config")]
    pub config: Option<Box<RawValue>>,
    #[serde(rename = "Architecture")]
    pub architecture: String,
    #[serde(rename = "Variant", skip_serializing_if = "String::is_empty")]
    pub variant: String,
    #[serde(rename = "Os")]
    pub os: String,
    #[serde(rename = "OsVersion", skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    #[serde(rename = "Size")]
    pub size: i64,
    #[serde(rename = "VirtualSize")]
    pub virtual_size: i64,
    #[serde(rename = "GraphDriver")]
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: InspectRootFs,
    #[serde(rename = "Metadata")]
    pub metadata: InspectMetadata,
}

/// One item of `GET /images/{name}/history`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct HistoryItem {
    /// History comment.
    #[serde(rename = "Comment")]
    pub comment: String,
    /// Unix seconds.
    #[serde(rename = "Created")]
    pub created: i64,
    /// The command that made the layer.
    #[serde(rename = "CreatedBy")]
    pub created_by: String,
    /// Image ID or `<missing>`.
    #[serde(rename = "Id")]
    pub id: String,
    /// Layer DiffSize (0 for empty layers).
    #[serde(rename = "Size")]
    pub size: i64,
    /// Tags of that image, `null` when none.
    #[serde(rename = "Tags")]
    pub tags: Option<Vec<String>>,
}

fn raw(bytes: Vec<u8>) -> Result<Box<RawValue>> {
    let s = String::from_utf8(bytes).map_err(|e| Error::internal(e.to_string()))?;
    RawValue::from_string(s).map_err(|e| Error::internal(e.to_string()))
}

fn load_config(t: &ReadTables, id: &str) -> Result<ImageConfig> {
    let bytes = t
        .config(id)?
        .ok_or_else(|| Error::corrupt(format!("config of image {id} is missing")))?;
    ImageConfig::from_json(&bytes)
}

pub(crate) fn inspect(t: &ReadTables, name: &str) -> Result<ImageInspect> {
    let found = get_image(t, name).map_err(|e| e.context(format!("no such image: {name}")))?;
    let id = found.id;
    let cfg = load_config(t, &id)?;
    let mut tags = Vec::new();
    let mut digests = Vec::new();
    for canonical in t.refs_of(&id)? {
        let r = parse_stored(&canonical)?;
        if r.digest().is_some() {
            digests.push(r.familiar_string());
        } else {
            tags.push(r.familiar_string());
        }
    }
    let comment = if !cfg.comment.is_empty() {
        cfg.comment.clone()
    } else {
        cfg.history
            .last()
            .map(|h| h.comment.clone())
            .unwrap_or_default()
    };
    let mut cc = Vec::new();
    cfg.container_config.write_json(&mut cc, false);
    let config = match &cfg.config {
        Some(c) => {
            let mut b = Vec::new();
            c.write_json(&mut b, false);
            Some(raw(b)?)
        }
        None => None,
    };
    let rootfs = cfg.rootfs.clone().unwrap_or_default();
    let last_tag = match found.row.last_tag_time_unix_nanos {
        Some(n) => GoTime::from_unix_nanos_utc(n as i128).to_rfc3339_nano(),
        None => "0001-01-01T00:00:00Z".to_string(),
    };
    Ok(ImageInspect {
        id: id.clone(),
        repo_tags: tags,
        repo_digests: digests,
        parent: found.row.parent.clone().unwrap_or_default(),
        comment,
        created: cfg.created.to_rfc3339_nano(),
        container: cfg.container.clone(),
        container_config: raw(cc)?,
        docker_version: cfg.docker_version.clone(),
        author: cfg.author.clone(),
        config,
        architecture: cfg.architecture.clone(),
        variant: cfg.variant.clone(),
        os: if cfg.os.is_empty() {
            "linux".into()
        } else {
            cfg.os.clone()
        },
        os_version: cfg.os_version.clone(),
        size: found.row.size as i64,
        virtual_size: found.row.size as i64,
        graph_driver: GraphDriver {
            data: None,
            name: "vfs",
        },
        root_fs: InspectRootFs {
            fs_type: rootfs.fs_type,
            layers: rootfs.diff_ids,
        },
        metadata: InspectMetadata {
            last_tag_time: last_tag,
        },
    })
}

pub(crate) fn history(t: &ReadTables, name: &str) -> Result<Vec<HistoryItem>> {
    let found = get_image(t, name)?;
    let cfg = load_config(t, &found.id)?;
    let diff_ids = cfg
        .rootfs
        .as_ref()
        .map(|r| r.diff_ids.clone())
        .unwrap_or_default();
    let chains = chain_ids(&diff_ids);
    let mut items = Vec::with_capacity(cfg.history.len());
    let mut k = 0usize;
    for h in &cfg.history {
        let mut size = 0i64;
        if !h.empty_layer {
            let chain = chains
                .get(k)
                .ok_or_else(|| Error::internal("too many non-empty layers in History section"))?;
            let layer = t
                .layer(chain)?
                .ok_or_else(|| Error::internal(format!("layer {chain} does not exist")))?;
            size = layer.diff_size as i64;
            k += 1;
        }
        items.push(HistoryItem {
            comment: h.comment.clone(),
            created: h.created.unix_seconds(),
            created_by: h.created_by.clone(),
            id: "<missing>".to_string(),
            size,
            tags: None,
        });
    }
    items.reverse();
    let mut current = Some(found.id.clone());
    for item in items.iter_mut() {
        let Some(id) = current.take() else { break };
        let Some(row) = t.image(&id)? else { break };
        let mut tags = Vec::new();
        for canonical in t.refs_of(&id)? {
            let r = parse_stored(&canonical)?;
            if r.digest().is_none() {
                tags.push(r.familiar_string());
            }
        }
        item.id = id;
        item.tags = (!tags.is_empty()).then_some(tags);
        current = row.parent;
    }
    Ok(items)
}
