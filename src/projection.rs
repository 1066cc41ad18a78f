//! The projection: the tables that answer queries, and [`apply`], the only
//! code that writes them.
//!
//! Every table maps a `&str` key to `&[u8]`. Edges (an image's references,
//! a parent's children, an image's containers) are composite keys
//! `"<from>\0<to>"` with empty values, so a prefix range lists them in
//! byte order.
//!
//! ```text
//! images            image id ─────────────► ImageRow (postcard): parent, top layer,
//!                                             created, size, labels, last tag time
//! configs           image id ─────────────► config bytes, verbatim (sha256 = id)
//! refs              canonical reference ──► image id        (sorted = Docker's order)
//! image_refs        "id\0canonical ref" ──► ()              (refs(X) in Docker's order)
//! children          "parent\0child" ──────► ()
//! layers            chain id ─────────────► LayerRow: diff id, parent chain,
//!                                             diff size, cumulative size, refcount
//! containers        container id ─────────► ContainerRow: name, image, top layer
//! container_configs container id ─────────► container config JSON (when recorded)
//! dist_metadata     diff id ──────────────► [(blob digest, repository)], oldest first, ≤ 50
//! dist_by_digest    blob digest ──────────► diff id
//! image_containers  "image\0container" ───► ()
//! ```
//!
//! A layer's refcount counts the images whose top layer it is, the layers
//! directly above it and the containers created on it. To change the
//! schema: update this drawing, bump `store::SCHEMA_VERSION`, add a
//! migration under `migrations/`.

use crate::config::ImageConfig;
use crate::digest::{chain_id, chain_ids, sha256_digest};
use crate::error::{Error, Result};
use crate::event::{Envelope, EventBody, ImageSource};
use crate::kv::{Kv, KvMut, MemTable};
use redb::TableDefinition;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

type Def = TableDefinition<'static, &'static str, &'static [u8]>;

const IMAGES: Def = TableDefinition::new("images");
const CONFIGS: Def = TableDefinition::new("configs");
const REFS: Def = TableDefinition::new("refs");
const IMAGE_REFS: Def = TableDefinition::new("image_refs");
const CHILDREN: Def = TableDefinition::new("children");
const LAYERS: Def = TableDefinition::new("layers");
const CONTAINERS: Def = TableDefinition::new("containers");
const IMAGE_CONTAINERS: Def = TableDefinition::new("image_containers");
const CONTAINER_CONFIGS: Def = TableDefinition::new("container_configs");
const DIST_METADATA: Def = TableDefinition::new("dist_metadata");
const DIST_BY_DIGEST: Def = TableDefinition::new("dist_by_digest");

/// Docker keeps at most this many v2 metadata entries per DiffID.
const MAX_DIST_METADATA: usize = 50;

/// Every projection table, in a fixed order (for dumps and comparisons).
const ALL: [Def; 11] = [
    IMAGES,
    CONFIGS,
    REFS,
    IMAGE_REFS,
    CHILDREN,
    LAYERS,
    CONTAINERS,
    IMAGE_CONTAINERS,
    CONTAINER_CONFIGS,
    DIST_METADATA,
    DIST_BY_DIGEST,
];

/// The per-image summary row: everything a listing needs without parsing the config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageRow {
    /// Parent image ID (metadata).
    pub parent: Option<String>,
    /// ChainID of the top layer; `None` for an image without layers.
    pub top_layer: Option<String>,
    /// The config's `created`, unix nanoseconds.
    pub created_unix_nanos: i128,
    /// Image size: cumulative size of the top layer.
    pub size: u64,
    /// The runtime config's labels; `None` when there is no runtime config or no labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Whether the config has a runtime `config` object.
    pub has_runtime_config: bool,
    /// When the image was last tagged through the tag path (unix nanoseconds).
    pub last_tag_time_unix_nanos: Option<i64>,
    /// How it was made.
    pub source: ImageSource,
}

/// A read-only layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRow {
    /// The layer's DiffID (and the name of its blob).
    pub diff_id: String,
    /// ChainID of the layer below.
    pub parent: Option<String>,
    /// Docker's DiffSize: sum of the tar entries' sizes.
    pub diff_size: u64,
    /// DiffSize of this layer plus all below.
    pub size: u64,
    /// Images on top of it + layers directly above + containers on it.
    pub refcount: u64,
}

/// A container record (created, never run: strata starts no processes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRow {
    /// Name without the leading `/`.
    pub name: String,
    /// Image ID it was created from.
    pub image: String,
    /// ChainID its read-write layer sits on.
    pub top_layer: Option<String>,
    /// Creation time, unix nanoseconds.
    pub created_unix_nanos: i64,
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(v).map_err(|e| Error::internal(format!("encoding row: {e}")))
}

fn decode<'a, T: Deserialize<'a>>(table: &str, key: &str, bytes: &'a [u8]) -> Result<T> {
    match postcard::take_from_bytes(bytes) {
        Ok((v, [])) => Ok(v),
        _ => Err(Error::corrupt(format!(
            "undecodable row {key:?} in table {table}"
        ))),
    }
}

fn edge(from: &str, to: &str) -> String {
    format!("{from}\0{to}")
}

/// Every row of every table, by table name: `(name, [(key, value)])`.
pub type Dump = Vec<(&'static str, Vec<(String, Vec<u8>)>)>;

/// The projection tables, open in a read or a write transaction.
pub struct Tables<T> {
    images: T,
    configs: T,
    refs: T,
    image_refs: T,
    children: T,
    layers: T,
    containers: T,
    image_containers: T,
    container_configs: T,
    dist_metadata: T,
    dist_by_digest: T,
}

/// Tables open for writing inside a redb write transaction.
pub type WriteTables<'txn> = Tables<redb::Table<'txn, &'static str, &'static [u8]>>;
/// Tables open in a read transaction (a consistent snapshot).
pub type ReadTables = Tables<redb::ReadOnlyTable<&'static str, &'static [u8]>>;

impl<'txn> WriteTables<'txn> {
    /// Delete every projection table (to rebuild them from the log).
    pub(crate) fn drop_all(txn: &'txn redb::WriteTransaction) -> Result<()> {
        for def in ALL {
            txn.delete_table(def)?;
        }
        Ok(())
    }

    /// Open (creating when missing) every table in `txn`.
    pub fn open_write(txn: &'txn redb::WriteTransaction) -> Result<Self> {
        Ok(Tables {
            images: txn.open_table(IMAGES)?,
            configs: txn.open_table(CONFIGS)?,
            refs: txn.open_table(REFS)?,
            image_refs: txn.open_table(IMAGE_REFS)?,
            children: txn.open_table(CHILDREN)?,
            layers: txn.open_table(LAYERS)?,
            containers: txn.open_table(CONTAINERS)?,
            image_containers: txn.open_table(IMAGE_CONTAINERS)?,
            container_configs: txn.open_table(CONTAINER_CONFIGS)?,
            dist_metadata: txn.open_table(DIST_METADATA)?,
            dist_by_digest: txn.open_table(DIST_BY_DIGEST)?,
        })
    }
}

/// Tables held in memory: what `verify_replay` folds the whole log into.
pub type MemTables = Tables<MemTable>;

impl MemTables {
    /// Empty tables.
    pub fn new() -> MemTables {
        Tables {
            images: MemTable::default(),
            configs: MemTable::default(),
            refs: MemTable::default(),
            image_refs: MemTable::default(),
            children: MemTable::default(),
            layers: MemTable::default(),
            containers: MemTable::default(),
            image_containers: MemTable::default(),
            container_configs: MemTable::default(),
            dist_metadata: MemTable::default(),
            dist_by_digest: MemTable::default(),
        }
    }
}

impl Default for MemTables {
    fn default() -> Self {
        MemTables::new()
    }
}

impl ReadTables {
    /// Open every table in a read transaction. The store creates them at
    /// open, so a missing table is corruption.
    pub fn open_read(txn: &redb::ReadTransaction) -> Result<Self> {
        Ok(Tables {
            images: txn.open_table(IMAGES)?,
            configs: txn.open_table(CONFIGS)?,
            refs: txn.open_table(REFS)?,
            image_refs: txn.open_table(IMAGE_REFS)?,
            children: txn.open_table(CHILDREN)?,
            layers: txn.open_table(LAYERS)?,
            containers: txn.open_table(CONTAINERS)?,
            image_containers: txn.open_table(IMAGE_CONTAINERS)?,
            container_configs: txn.open_table(CONTAINER_CONFIGS)?,
            dist_metadata: txn.open_table(DIST_METADATA)?,
            dist_by_digest: txn.open_table(DIST_BY_DIGEST)?,
        })
    }
}

/// Keys `"<prefix>\0<x>"` of an edge table, returning the `<x>` parts in order.
fn edge_targets<T: Kv>(t: &T, from: &str) -> Result<Vec<String>> {
    let start = format!("{from}\0");
    let mut out = Vec::new();
    t.scan_from(&start, |k, _| {
        Ok(match k.strip_prefix(start.as_str()) {
            Some(rest) => {
                out.push(rest.to_string());
                true
            }
            None => false,
        })
    })?;
    Ok(out)
}

/// Every `(from, to)` edge of an edge table, in key order.
fn all_edges<T: Kv>(t: &T) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    t.scan_from("", |k, _| {
        if let Some((from, to)) = k.split_once('\0') {
            out.push((from.to_string(), to.to_string()));
        }
        Ok(true)
    })?;
    Ok(out)
}

/// The row under `key`, decoded.
fn get_row<R: serde::de::DeserializeOwned, T: Kv>(
    t: &T,
    table: &str,
    key: &str,
) -> Result<Option<R>> {
    t.get_with(key, |v| decode(table, key, v))?.transpose()
}

/// Every row, decoded, in key order; an undecodable row is an error.
fn all_rows<R: serde::de::DeserializeOwned, T: Kv>(t: &T, table: &str) -> Result<Vec<(String, R)>> {
    let mut out = Vec::new();
    t.scan_from("", |k, v| {
        out.push((k.to_string(), decode(table, k, v)?));
        Ok(true)
    })?;
    Ok(out)
}

/// Keys of the rows that do not decode as `R`.
fn undecodable<R: serde::de::DeserializeOwned, T: Kv>(
    t: &T,
    table: &'static str,
    out: &mut Vec<(&'static str, String)>,
) -> Result<()> {
    t.scan_from("", |k, v| {
        if decode::<R>(table, k, v).is_err() {
            out.push((table, k.to_string()));
        }
        Ok(true)
    })
}

impl<T: Kv> Tables<T> {
    /// The summary row of image `id`.
    pub fn image(&self, id: &str) -> Result<Option<ImageRow>> {
        get_row(&self.images, "images", id)
    }

    /// Whether image `id` exists.
    pub fn has_image(&self, id: &str) -> Result<bool> {
        Ok(self.images.get_with(id, |_| ())?.is_some())
    }

    /// The verbatim config bytes of image `id`.
    pub fn config(&self, id: &str) -> Result<Option<Vec<u8>>> {
        self.configs.get_with(id, <[u8]>::to_vec)
    }

    /// Every image, in ID order. An undecodable row is skipped (and logged)
    /// so that one bad record never stops the store from serving the rest;
    /// `strata fsck` reports it and can rebuild the tables from the log.
    pub fn images(&self) -> Result<Vec<(String, ImageRow)>> {
        let mut out = Vec::new();
        self.images.scan_from("", |k, v| {
            match decode("images", k, v) {
                Ok(row) => out.push((k.to_string(), row)),
                Err(e) => tracing::warn!("skipping a damaged row: {e}"),
            }
            Ok(true)
        })?;
        Ok(out)
    }

    /// `(table, key)` of every row that does not decode.
    pub fn bad_rows(&self) -> Result<Vec<(&'static str, String)>> {
        let mut out = Vec::new();
        undecodable::<ImageRow, _>(&self.images, "images", &mut out)?;
        undecodable::<LayerRow, _>(&self.layers, "layers", &mut out)?;
        undecodable::<ContainerRow, _>(&self.containers, "containers", &mut out)?;
        Ok(out)
    }

    /// Number of images.
    pub fn image_count(&self) -> Result<u64> {
        self.images.count()
    }

    /// IDs whose text starts with `prefix` (e.g. `sha256:1b5b`), at most `limit`.
    pub fn image_ids_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        let mut out = Vec::new();
        self.images.scan_from(prefix, |k, _| {
            if !k.starts_with(prefix) || out.len() >= limit {
                return Ok(false);
            }
            out.push(k.to_string());
            Ok(true)
        })?;
        Ok(out)
    }

    /// The image a canonical reference string points at.
    pub fn resolve(&self, canonical: &str) -> Result<Option<String>> {
        self.refs
            .get_with(canonical, |v| String::from_utf8_lossy(v).into_owned())
    }

    /// Canonical references of image `id`, in Docker's reference-store order.
    pub fn refs_of(&self, id: &str) -> Result<Vec<String>> {
        edge_targets(&self.image_refs, id)
    }

    /// All references whose canonical string starts with `prefix`, with their images.
    pub fn refs_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        self.refs.scan_from(prefix, |k, v| {
            if !k.starts_with(prefix) {
                return Ok(false);
            }
            out.push((k.to_string(), String::from_utf8_lossy(v).into_owned()));
            Ok(true)
        })?;
        Ok(out)
    }

    /// Every `(image, reference)` pair, in image order (one scan, for
    /// listings: much cheaper than [`ReadTables::refs_of`] per image).
    pub fn all_image_refs(&self) -> Result<Vec<(String, String)>> {
        all_edges(&self.image_refs)
    }

    /// Every image that has children, in order, each once (one scan).
    pub fn parents(&self) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        self.children.scan_from("", |k, _| {
            let parent = k.split('\0').next().unwrap_or_default();
            if out.last().map(String::as_str) != Some(parent) {
                out.push(parent.to_string());
            }
            Ok(true)
        })?;
        Ok(out)
    }

    /// Images whose parent is `id`.
    pub fn children_of(&self, id: &str) -> Result<Vec<String>> {
        edge_targets(&self.children, id)
    }

    /// Whether image `id` has children.
    pub fn has_children(&self, id: &str) -> Result<bool> {
        let start = format!("{id}\0");
        let mut found = false;
        self.children.scan_from(&start, |k, _| {
            found = k.starts_with(start.as_str());
            Ok(false)
        })?;
        Ok(found)
    }

    /// A layer by ChainID.
    pub fn layer(&self, chain: &str) -> Result<Option<LayerRow>> {
        get_row(&self.layers, "layers", chain)
    }

    /// Every layer, by ChainID.
    pub fn layers(&self) -> Result<Vec<(String, LayerRow)>> {
        all_rows(&self.layers, "layers")
    }

    /// A container by ID.
    pub fn container(&self, id: &str) -> Result<Option<ContainerRow>> {
        get_row(&self.containers, "containers", id)
    }

    /// Every container, by ID.
    pub fn containers(&self) -> Result<Vec<(String, ContainerRow)>> {
        all_rows(&self.containers, "containers")
    }

    /// The recorded config of container `id` (container-config JSON).
    pub fn container_config(&self, id: &str) -> Result<Option<Vec<u8>>> {
        self.container_configs.get_with(id, <[u8]>::to_vec)
    }

    /// Registry blobs known for layer `diff_id`: `(digest, repository)`, oldest first.
    pub fn dist_metadata(&self, diff_id: &str) -> Result<Vec<(String, String)>> {
        Ok(get_row(&self.dist_metadata, "dist_metadata", diff_id)?.unwrap_or_default())
    }

    /// The DiffID of registry blob `digest`, if known.
    pub fn dist_diff_id(&self, digest: &str) -> Result<Option<String>> {
        self.dist_by_digest
            .get_with(digest, |v| String::from_utf8_lossy(v).into_owned())
    }

    /// IDs of the containers created from image `id`.
    pub fn containers_of(&self, image: &str) -> Result<Vec<String>> {
        edge_targets(&self.image_containers, image)
    }

    /// Every row of every table, for comparing two projections.
    pub fn dump(&self) -> Result<Dump> {
        let tables = [
            &self.images,
            &self.configs,
            &self.refs,
            &self.image_refs,
            &self.children,
            &self.layers,
            &self.containers,
            &self.image_containers,
            &self.container_configs,
            &self.dist_metadata,
            &self.dist_by_digest,
        ];
        let mut out = Vec::new();
        for (def, t) in ALL.iter().zip(tables) {
            let mut rows = Vec::new();
            t.scan_from("", |k, v| {
                rows.push((k.to_string(), v.to_vec()));
                Ok(true)
            })?;
            out.push((redb::TableHandle::name(def), rows));
        }
        Ok(out)
    }
}

/// What folding an event needs from its bytes that does not depend on the
/// tables (an image's ID and the parts of its config that go into its row),
/// computed ahead of [`apply_decoded`], e.g. on another thread while a
/// replay folds. The config itself is read in full, so that a config `apply`
/// refuses live is refused on replay too, and dropped where it was read.
pub struct Decoded {
    id: String,
    facts: Result<ConfigFacts>,
}

/// The parts of an image config its [`ImageRow`] holds.
struct ConfigFacts {
    top_layer: Option<String>,
    created_unix_nanos: i128,
    labels: Option<BTreeMap<String, String>>,
    has_runtime_config: bool,
}

impl ConfigFacts {
    fn of(config: &[u8]) -> Result<ConfigFacts> {
        let cfg = ImageConfig::from_json(config)?;
        let top_layer = match &cfg.rootfs {
            Some(r) => chain_ids(&r.diff_ids).pop(),
            None => None,
        };
        let has_runtime_config = cfg.config.is_some();
        Ok(ConfigFacts {
            top_layer,
            created_unix_nanos: cfg.created.unix_nanos(),
            labels: cfg.config.and_then(|c| c.labels),
            has_runtime_config,
        })
    }
}

impl Decoded {
    /// The table-independent part of applying `env`, if it has one.
    pub fn of(env: &Envelope) -> Option<Decoded> {
        match &env.body {
            EventBody::ImageCreated { config, .. } => Some(Decoded::image_created(config)),
            _ => None,
        }
    }

    fn image_created(config: &[u8]) -> Decoded {
        Decoded {
            id: sha256_digest(config),
            facts: ConfigFacts::of(config),
        }
    }
}

/// Fold one event into the tables. The only writer of projection tables:
/// live writes and replay both come here. An event that does not fit the
/// current tables (a log that was tampered with, or a bug) is a
/// [`crate::ErrorKind::Corrupt`] error, and the surrounding transaction aborts.
pub fn apply<T: KvMut>(t: &mut Tables<T>, env: &Envelope) -> Result<()> {
    apply_decoded(t, env, Decoded::of(env))
}

/// [`apply`] with `decoded` = [`Decoded::of`]`(env)`, computed beforehand.
pub fn apply_decoded<T: KvMut>(
    t: &mut Tables<T>,
    env: &Envelope,
    decoded: Option<Decoded>,
) -> Result<()> {
    let bad = |what: String| Error::corrupt(format!("event {} does not apply: {what}", env.seq));
    match &env.body {
        EventBody::LayerRegistered {
            diff_id,
            parent,
            diff_size,
        } => {
            let chain = chain_id(parent.as_deref(), diff_id);
            if t.layer(&chain)?.is_some() {
                return Err(bad(format!("layer {chain} already exists")));
            }
            let mut size = *diff_size;
            if let Some(p) = parent {
                let mut row = t
                    .layer(p)?
                    .ok_or_else(|| bad(format!("no parent layer {p}")))?;
                size += row.size;
                row.refcount += 1;
                put(&mut t.layers, p, &row)?;
            }
            let row = LayerRow {
                diff_id: diff_id.clone(),
                parent: parent.clone(),
                diff_size: *diff_size,
                size,
                refcount: 0,
            };
            put(&mut t.layers, &chain, &row)?;
        }
        EventBody::LayerReleased { chain_id } => {
            let row = t
                .layer(chain_id)?
                .ok_or_else(|| bad(format!("no layer {chain_id}")))?;
            if row.refcount != 0 {
                return Err(bad(format!("layer {chain_id} is still referenced")));
            }
            t.layers.del(chain_id.as_str())?;
            if let Some(p) = &row.parent {
                unref_layer(t, p).map_err(|e| bad(e.to_string()))?;
            }
        }
        EventBody::ImageCreated {
            config,
            parent,
            source,
        } => {
            let Decoded { id, facts } = decoded.unwrap_or_else(|| Decoded::image_created(config));
            if t.has_image(&id)? {
                return Err(bad(format!("image {id} already exists")));
            }
            let facts = facts.map_err(|e| bad(e.to_string()))?;
            let mut size = 0;
            if let Some(top) = &facts.top_layer {
                let mut row = t
                    .layer(top)?
                    .ok_or_else(|| bad(format!("no layer {top}")))?;
                size = row.size;
                row.refcount += 1;
                put(&mut t.layers, top, &row)?;
            }
            if let Some(p) = parent {
                if !t.has_image(p)? {
                    return Err(bad(format!("no parent image {p}")));
                }
                t.children.put(edge(p, &id).as_str(), &[])?;
            }
            let row = ImageRow {
                parent: parent.clone(),
                top_layer: facts.top_layer,
                created_unix_nanos: facts.created_unix_nanos,
                size,
                labels: facts.labels,
                has_runtime_config: facts.has_runtime_config,
                last_tag_time_unix_nanos: None,
                source: source.clone(),
            };
            put(&mut t.images, &id, &row)?;
            t.configs.put(id.as_str(), config.as_slice())?;
        }
        EventBody::ImageDeleted { id } => {
            let row = t.image(id)?.ok_or_else(|| bad(format!("no image {id}")))?;
            if !t.refs_of(id)?.is_empty() {
                return Err(bad(format!("image {id} still has references")));
            }
            if t.has_children(id)? {
                return Err(bad(format!("image {id} still has children")));
            }
            t.images.del(id.as_str())?;
            t.configs.del(id.as_str())?;
            if let Some(p) = &row.parent {
                t.children.del(edge(p, id).as_str())?;
            }
            if let Some(top) = &row.top_layer {
                unref_layer(t, top).map_err(|e| bad(e.to_string()))?;
            }
        }
        EventBody::ReferenceAdded {
            reference,
            image,
            tag_time,
        } => {
            let mut row = t
                .image(image)?
                .ok_or_else(|| bad(format!("no image {image}")))?;
            if let Some(old) = t.resolve(reference)? {
                t.image_refs.del(edge(&old, reference).as_str())?;
            }
            t.refs.put(reference.as_str(), image.as_bytes())?;
            t.image_refs.put(edge(image, reference).as_str(), &[][..])?;
            if *tag_time {
                row.last_tag_time_unix_nanos = Some(env.time_unix_nanos);
                put(&mut t.images, image, &row)?;
            }
        }
        EventBody::ReferenceRemoved { reference, image } => {
            if t.resolve(reference)?.as_deref() != Some(image.as_str()) {
                return Err(bad(format!(
                    "reference {reference} does not point at {image}"
                )));
            }
            t.refs.del(reference.as_str())?;
            t.image_refs.del(edge(image, reference).as_str())?;
        }
        EventBody::ContainerCreated { id, name, image } => {
            if t.container(id)?.is_some() {
                return Err(bad(format!("container {id} already exists")));
            }
            let img = t
                .image(image)?
                .ok_or_else(|| bad(format!("no image {image}")))?;
            if let Some(top) = &img.top_layer {
                let mut l = t
                    .layer(top)?
                    .ok_or_else(|| bad(format!("no layer {top}")))?;
                l.refcount += 1;
                put(&mut t.layers, top, &l)?;
            }
            let row = ContainerRow {
                name: name.clone(),
                image: image.clone(),
                top_layer: img.top_layer,
                created_unix_nanos: env.time_unix_nanos,
            };
            put(&mut t.containers, id, &row)?;
            t.image_containers.put(edge(image, id).as_str(), &[][..])?;
        }
        EventBody::ImageParentSet { id, parent } => {
            let mut row = t.image(id)?.ok_or_else(|| bad(format!("no image {id}")))?;
            if !t.has_image(parent)? {
                return Err(bad(format!("no parent image {parent}")));
            }
            if let Some(old) = &row.parent {
                t.children.del(edge(old, id).as_str())?;
            }
            t.children.put(edge(parent, id).as_str(), &[][..])?;
            row.parent = Some(parent.clone());
            put(&mut t.images, id, &row)?;
        }
        EventBody::BlobsCollected { blobs, .. } => {
            // Blobs are not in the tables; a collected blob must not be one they name.
            for (chain, layer) in t.layers()? {
                if blobs.contains(&layer.diff_id) {
                    return Err(bad(format!(
                        "collected blob {} of layer {chain}",
                        layer.diff_id
                    )));
                }
            }
        }
        EventBody::DistributionMetadataAdded {
            diff_id,
            digest,
            repository,
        } => {
            let mut list = t.dist_metadata(diff_id)?;
            let entry = (digest.clone(), repository.clone());
            list.retain(|e| *e != entry);
            list.push(entry);
            if list.len() > MAX_DIST_METADATA {
                let extra = list.len() - MAX_DIST_METADATA;
                list.drain(..extra);
            }
            put(&mut t.dist_metadata, diff_id, &list)?;
            t.dist_by_digest.put(digest.as_str(), diff_id.as_bytes())?;
        }
        EventBody::DistributionMetadataRemoved {
            diff_id,
            digest,
            repository,
        } => {
            let mut list = t.dist_metadata(diff_id)?;
            list.retain(|(d, r)| !(d == digest && r == repository));
            if list.is_empty() {
                t.dist_metadata.del(diff_id.as_str())?;
            } else {
                put(&mut t.dist_metadata, diff_id, &list)?;
            }
        }
        EventBody::ImagePushed { .. } => {
            // A record of a push: the reference and metadata it implies are
            // events of their own (see the variant's docs).
        }
        EventBody::ImagePulled { .. } => {
            // A record of a pull: what it changed are events of their own.
        }
        EventBody::ContainerConfigured { id, config } => {
            if t.container(id)?.is_none() {
                return Err(bad(format!("no container {id}")));
            }
            t.container_configs.put(id.as_str(), config.as_slice())?;
        }
        EventBody::ContainerRemoved { id } => {
            let row = t
                .container(id)?
                .ok_or_else(|| bad(format!("no container {id}")))?;
            t.containers.del(id.as_str())?;
            t.container_configs.del(id.as_str())?;
            t.image_containers.del(edge(&row.image, id).as_str())?;
            if let Some(top) = &row.top_layer {
                unref_layer(t, top).map_err(|e| bad(e.to_string()))?;
            }
        }
    }
    Ok(())
}

fn put<R: Serialize>(table: &mut impl KvMut, key: &str, row: &R) -> Result<()> {
    table.put(key, &encode(row)?)
}

fn unref_layer<T: KvMut>(t: &mut Tables<T>, chain: &str) -> Result<()> {
    let mut row = t
        .layer(chain)?
        .ok_or_else(|| Error::corrupt(format!("no layer {chain}")))?;
    row.refcount = row
        .refcount
        .checked_sub(1)
        .ok_or_else(|| Error::corrupt(format!("layer {chain} refcount underflow")))?;
    put(&mut t.layers, chain, &row)
}
