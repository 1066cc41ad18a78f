//! OCI image layouts (formats.md part B): loading them (a tar of the layout,
//! or a directory via `ImageService::load_layout_dir`) and writing them
//! (`ImageService::export_oci`). Docker 20.10 can do neither.
//!
//! # Loading
//!
//! The layout is staged like a docker-archive (`load.rs`); when the archive
//! has no `manifest.json` but has `oci-layout` and `index.json`, this module
//! turns it into images (a `manifest.json` always wins, so Docker 25+
//! archives, which carry both, load as docker-archives: §A.9).
//!
//! * `oci-layout` must parse as JSON with an `imageLayoutVersion` of `1.x`.
//! * Every blob is `blobs/sha256/<hex>` and is checked against the
//!   descriptor that names it: size first, then digest, before anything
//!   else reads it. Layers are then decompressed (by magic: gzip, bzip2,
//!   xz, zstd, else plain) and their sha256 must equal the config's
//!   `rootfs.diff_ids[i]`; the number of layers must equal the number of
//!   diff_ids. Messages reuse Docker's for the last two (`invalid diffID
//!   for layer …`, `invalid manifest, layers length mismatch: …`).
//! * Manifests may be OCI (`application/vnd.oci.image.manifest.v1+json`)
//!   or Docker schema2; indexes OCI or Docker manifest lists. A descriptor
//!   without a media type is typed by its content. Schema 1, encrypted
//!   layers and non-image configs (plugins, artifacts) are refused.
//! * Platform: the descriptors of `index.json` that carry no `platform` are
//!   images of their own, loaded whatever their architecture (like a
//!   docker-archive; the config's OS must still be Linux). Descriptors of
//!   `index.json` that carry a `platform`, grouped by their name
//!   annotations, and the entries of every nested index are variants of one
//!   image: the first whose `platform` matches the wanted one (default: the
//!   host, linux/amd64 here) is taken, in list order, nested indexes
//!   searched depth first; entries without a `platform` come after all
//!   explicit matches and a manifest among them is taken only when its
//!   config's os/architecture match. No match is an error.
//! * Tags. The names of an image come from the annotations of its
//!   descriptor in `index.json` (never from nested ones):
//!   `io.containerd.image.name` when it is a valid reference with a tag
//!   (`docker.io/library/busybox:1`, as containerd and Docker 25 write it);
//!   else `org.opencontainers.image.ref.name` when it is itself a full
//!   reference with a tag (`example.com/app:1.0`, `busybox:1`). A bare
//!   ref name (`1.0`, `latest`, skopeo's `oci:dir:small-1`) names no
//!   repository, so it cannot become a Docker reference: such an image is
//!   loaded untagged and reported as `Loaded image ID: sha256:…` (one line
//!   per untagged image, in index order); tag it afterwards. Names that do
//!   not parse, or carry a digest, are ignored the same way. Several
//!   descriptors of the same image add up their tags.
//!
//! # Writing
//!
//! `oci-layout`, `index.json` and `blobs/sha256/…`; the config verbatim
//! (its digest is the image ID), every layer uncompressed
//! (`application/vnd.oci.image.layer.v1.tar`, digest = DiffID), an OCI
//! manifest per image in compact JSON with fixed key order, and in
//! `index.json` one descriptor per (image, tag), annotated with
//! `io.containerd.image.name` (the full reference, e.g.
//! `docker.io/library/busybox:1`) and `org.opencontainers.image.ref.name`
//! (the tag), as containerd and Docker 25 do; an image saved by ID gets one
//! descriptor without annotations. Entries are in lexical order, mtime 0,
//! so the same store and names always give the same bytes.

use super::load::{Archive, PreparedImage, Staged};
use super::tar_writer::TarWriter;
use crate::config::ImageConfig;
use crate::content::ContentStore;
use crate::digest::{Hasher, hex_part, sha256_digest};
use crate::error::{Error, Result};
use crate::layer::{self, IngestedLayer};
use crate::reference::Reference;
use crate::store::Store;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;

/// OCI image manifest.
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// Docker schema2 manifest.
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// containerd's (and Docker 25's) full-name annotation.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI reference-name annotation.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// How deep indexes may nest.
const MAX_DEPTH: usize = 8;

/// A platform to select from an index (`os`/`architecture`/`variant`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Platform {
    /// e.g. `linux`.
    #[serde(default)]
    pub os: String,
    /// GOARCH, e.g. `amd64`.
    #[serde(default)]
    pub architecture: String,
    /// e.g. `v8`; empty when none.
    #[serde(default)]
    pub variant: String,
}

impl Platform {
    /// The platform strata runs on, in Go's terms (linux/amd64 on x86_64).
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: String::new(),
        }
    }

    fn normalized(&self) -> (String, String, String) {
        let os = self.os.to_ascii_lowercase();
        let mut arch = self.architecture.to_ascii_lowercase();
        let mut variant = self.variant.to_ascii_lowercase();
        match arch.as_str() {
            "x86_64" | "x86-64" => arch = "amd64".into(),
            "aarch64" => arch = "arm64".into(),
            "i386" => arch = "386".into(),
            _ => {}
        }
        if arch == "amd64" && variant == "v1" {
            variant.clear();
        }
        if arch == "arm64" && variant.is_empty() {
            variant = "v8".into();
        }
        (os, arch, variant)
    }

    /// Whether `other` (from an index or a config) can run as `self`.
    pub fn matches(&self, other: &Platform) -> bool {
        let (os, arch, variant) = self.normalized();
        let (o_os, o_arch, o_variant) = other.normalized();
        os == o_os && arch == o_arch && (variant.is_empty() || variant == o_variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    digest: String,
    size: i64,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    platform: Option<Platform>,
}

impl Descriptor {
    fn media_type(&self) -> &str {
        self.media_type.as_deref().unwrap_or("")
    }
    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

#[derive(Deserialize)]
struct Index {
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<i64>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<i64>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    config: Descriptor,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

#[derive(Deserialize)]
struct Layout {
    #[serde(rename = "imageLayoutVersion")]
    version: String,
}

fn invalid(msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!("invalid OCI layout: {msg}"))
}

/// `blobs/sha256/<hex>` for a descriptor's digest, refusing anything else.
fn blob_path(digest: &str) -> Result<String> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Err(invalid(format!(
            "unsupported digest {digest:?}: only sha256 is supported"
        )));
    };
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(invalid(format!("invalid digest {digest:?}")));
    }
    Ok(format!("blobs/sha256/{hex}"))
}

struct Loader<'a> {
    content: &'a ContentStore,
    archive: &'a Archive,
    platform: &'a Platform,
    /// Blob digest → the layer it gave.
    layers: HashMap<String, IngestedLayer>,
}

/// What a descriptor points at, by media type or, without one, by content.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Manifest,
    Index,
}

/// A manifest selected for loading: its config and layer descriptors.
struct Selected {
    manifest_digest: String,
    manifest: Manifest,
}

impl Loader<'_> {
    /// The staged blob of `desc`, after checking its size and digest.
    fn blob(&self, desc: &Descriptor, what: &str) -> Result<&Staged> {
        let path = blob_path(&desc.digest)?;
        if !self.archive.has(&path) {
            return Err(invalid(format!("{what}: blob {} is missing", desc.digest)));
        }
        let (_, staged) = self.archive.resolve(&path)?;
        if desc.size < 0 {
            return Err(invalid(format!(
                "{what}: descriptor of {} has a negative size",
                desc.digest
            )));
        }
        let len = staged.len()?;
        if len != desc.size as u64 {
            return Err(invalid(format!(
                "{what}: blob {} has {len} bytes, its descriptor says {}",
                desc.digest, desc.size
            )));
        }
        let actual = match staged.known_digest() {
            Some(d) => d.to_string(),
            None => {
                let mut hasher = Hasher::new();
                std::io::copy(&mut staged.open()?, &mut hasher)?;
                hasher.finish()
            }
        };
        if actual != desc.digest {
            return Err(invalid(format!(
                "{what}: blob {} does not match its digest: its content hashes to {actual}",
                desc.digest
            )));
        }
        Ok(staged)
    }

    /// The bytes of a small verified blob (manifest, index, config).
    fn small_blob(&self, desc: &Descriptor, what: &str) -> Result<Vec<u8>> {
        self.blob(desc, what)?;
        self.archive.read_small(&blob_path(&desc.digest)?)
    }

    fn kind(&self, desc: &Descriptor, bytes: &[u8], what: &str) -> Result<Kind> {
        let declared = match desc.media_type() {
            MEDIA_OCI_MANIFEST | MEDIA_DOCKER_MANIFEST => Some(Kind::Manifest),
            MEDIA_OCI_INDEX | MEDIA_DOCKER_LIST => Some(Kind::Index),
            "" => None,
            mt if mt.starts_with("application/vnd.docker.distribution.manifest.v1") => {
                return Err(invalid(format!(
                    "{what}: schema 1 manifests ({mt}) are not supported"
                )));
            }
            mt => {
                return Err(invalid(format!(
                    "{what}: unsupported media type {mt:?} for {}",
                    desc.digest
                )));
            }
        };
        #[derive(Deserialize)]
        struct Sniff {
            #[serde(rename = "schemaVersion", default)]
            schema_version: Option<i64>,
            #[serde(rename = "mediaType", default)]
            media_type: Option<String>,
            #[serde(default)]
            manifests: Option<serde_json::Value>,
            #[serde(default)]
            config: Option<serde_json::Value>,
        }
        let sniff: Sniff = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("{what}: {} is not valid JSON: {e}", desc.digest)))?;
        if sniff.schema_version != Some(2) {
            return Err(invalid(format!(
                "{what}: {} has schemaVersion {}, only 2 is supported",
                desc.digest,
                sniff
                    .schema_version
                    .map_or("(none)".to_string(), |v| v.to_string())
            )));
        }
        if let (Some(inner), Some(outer)) =
            (sniff.media_type.as_deref(), desc.media_type.as_deref())
            && !outer.is_empty()
            && inner != outer
        {
            return Err(invalid(format!(
                "{what}: {} has media type {inner:?}, its descriptor says {outer:?}",
                desc.digest
            )));
        }
        if let Some(k) = declared {
            return Ok(k);
        }
        match sniff.media_type.as_deref() {
            Some(MEDIA_OCI_MANIFEST | MEDIA_DOCKER_MANIFEST) => return Ok(Kind::Manifest),
            Some(MEDIA_OCI_INDEX | MEDIA_DOCKER_LIST) => return Ok(Kind::Index),
            _ => {}
        }
        match (sniff.manifests.is_some(), sniff.config.is_some()) {
            (true, false) => Ok(Kind::Index),
            (false, true) => Ok(Kind::Manifest),
            _ => Err(invalid(format!(
                "{what}: cannot tell whether {} is a manifest or an index",
                desc.digest
            ))),
        }
    }

    /// Resolve `desc` to one manifest, `None` when nothing in it is for our
    /// platform. `check_config`: a manifest must be for our platform by
    /// its config (it came from an index without a `platform`).
    fn resolve(
        &self,
        desc: &Descriptor,
        what: &str,
        depth: usize,
        check_config: bool,
    ) -> Result<Option<Selected>> {
        if depth > MAX_DEPTH {
            return Err(invalid(format!(
                "{what}: indexes nested more than {MAX_DEPTH} deep"
            )));
        }
        let bytes = self.small_blob(desc, what)?;
        match self.kind(desc, &bytes, what)? {
            Kind::Index => {
                let index: Index = serde_json::from_slice(&bytes).map_err(|e| {
                    invalid(format!("{what}: invalid image index {}: {e}", desc.digest))
                })?;
                let children = index.manifests.unwrap_or_default();
                // No match is `None`: the caller may try other entries.
                self.pick(
                    &children,
                    &format!("{what}: index {}", desc.digest),
                    depth + 1,
                )
            }
            Kind::Manifest => {
                let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
                    invalid(format!("{what}: invalid manifest {}: {e}", desc.digest))
                })?;
                if check_config {
                    let config = self.small_blob(&manifest.config, what)?;
                    let p: Platform = serde_json::from_slice(&config).map_err(|e| {
                        invalid(format!(
                            "{what}: invalid config {}: {e}",
                            manifest.config.digest
                        ))
                    })?;
                    if !self.platform.matches(&p) {
                        return Ok(None);
                    }
                }
                Ok(Some(Selected {
                    manifest_digest: desc.digest.clone(),
                    manifest,
                }))
            }
        }
    }

    /// The manifest `group` (variants of one index.json entry) loads as.
    fn select(&self, group: &[&Descriptor], what: &str) -> Result<Option<Selected>> {
        let first = group[0];
        if first.platform.is_none() {
            self.resolve(first, what, 0, false)
        } else {
            let owned: Vec<Descriptor> = group.iter().map(|d| (*d).clone()).collect();
            self.pick(&owned, what, 0)
        }
    }

    /// The first of `children` for our platform: explicit matches in list
    /// order, then the entries without a platform.
    fn pick(&self, children: &[Descriptor], what: &str, depth: usize) -> Result<Option<Selected>> {
        for c in children {
            if let Some(p) = &c.platform
                && self.platform.matches(p)
                && let Some(s) = self.resolve(c, what, depth, false)?
            {
                return Ok(Some(s));
            }
        }
        for c in children.iter().filter(|c| c.platform.is_none()) {
            if let Some(s) = self.resolve(c, what, depth, true)? {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// Verify and ingest the image of a selected manifest.
    fn prepare(&mut self, sel: Selected, what: &str) -> Result<PreparedImage> {
        let m = &sel.manifest;
        if m.schema_version != Some(2) {
            return Err(invalid(format!(
                "{what}: manifest {} is not schemaVersion 2",
                sel.manifest_digest
            )));
        }
        if let Some(mt) = m.media_type.as_deref()
            && mt != MEDIA_OCI_MANIFEST
            && mt != MEDIA_DOCKER_MANIFEST
        {
            return Err(invalid(format!(
                "{what}: manifest {} has media type {mt:?}",
                sel.manifest_digest
            )));
        }
        match m.config.media_type() {
            MEDIA_OCI_CONFIG
            | MEDIA_DOCKER_CONFIG
            | ""
            | "application/octet-stream"
            | "application/json" => {}
            mt => {
                return Err(invalid(format!(
                    "{what}: manifest {} is not an image: config media type {mt:?}",
                    sel.manifest_digest
                )));
            }
        }
        let config = self.small_blob(&m.config, &format!("{what}: config"))?;
        let descs = m.layers.clone().unwrap_or_default();
        let (cfg, diff_ids) = super::load::loadable_config(&config, descs.len())?;
        let mut layers = Vec::with_capacity(descs.len());
        for (i, (d, expected)) in descs.iter().zip(&diff_ids).enumerate() {
            let mt = d.media_type().to_ascii_lowercase();
            let known = mt.is_empty()
                || mt == "application/octet-stream"
                || mt.starts_with("application/vnd.oci.image.")
                || mt.starts_with("application/vnd.docker.");
            if mt.contains("+encrypted") || !known {
                return Err(invalid(format!(
                    "{what}: layer {i}: unsupported media type {:?}",
                    d.media_type()
                )));
            }
            let ingested = match self.layers.get(&d.digest) {
                Some(l) => l.clone(),
                None => {
                    let lw = format!("{what}: layer {i} ({})", d.digest);
                    let staged = self.blob(d, &lw)?;
                    let l = self.archive.ingest_layer(
                        staged,
                        self.content,
                        &lw,
                        layer::Limits::get(),
                        None,
                        None,
                    )?;
                    self.layers.insert(d.digest.clone(), l.clone());
                    l
                }
            };
            if &ingested.diff_id != expected {
                return Err(Error::invalid(format!(
                    "invalid diffID for layer {i}: expected {expected:?}, got {:?}",
                    ingested.diff_id
                )));
            }
            layers.push(ingested);
        }
        Ok(PreparedImage {
            config,
            cfg,
            layers,
            tags: Vec::new(),
            parent: None,
        })
    }
}

/// The Docker reference an `index.json` descriptor names, if any (module doc).
fn reference_of(desc: &Descriptor) -> Option<Reference> {
    let full = |s: &str| {
        Reference::parse_normalized_named(s)
            .ok()
            .filter(|r| r.tag().is_some() && r.digest().is_none())
    };
    if let Some(r) = desc.annotation(ANNOTATION_CONTAINERD_NAME).and_then(full) {
        return Some(r);
    }
    let name = desc.annotation(ANNOTATION_REF_NAME)?;
    // A bare tag (`1.0`, `latest`) parses as a repository name: require a tag.
    if !name.contains(':') {
        return None;
    }
    full(name)
}

/// The images of the OCI layout staged in `archive`, for `platform`, with
/// their tags (every blob verified, every layer ingested).
pub(super) fn prepare(
    content: &ContentStore,
    archive: &Archive,
    platform: &Platform,
) -> Result<Vec<PreparedImage>> {
    let layout: Layout = serde_json::from_slice(&archive.read_small("oci-layout")?)
        .map_err(|e| invalid(format!("oci-layout: {e}")))?;
    if layout.version != "1.0.0" && !layout.version.starts_with("1.") {
        return Err(invalid(format!(
            "unsupported imageLayoutVersion {:?}",
            layout.version
        )));
    }
    let index: Index = serde_json::from_slice(&archive.read_small("index.json")?)
        .map_err(|e| invalid(format!("index.json: {e}")))?;
    if index.schema_version != Some(2) {
        return Err(invalid("index.json: schemaVersion must be 2"));
    }
    if let Some(mt) = index.media_type.as_deref()
        && mt != MEDIA_OCI_INDEX
        && mt != MEDIA_DOCKER_LIST
    {
        return Err(invalid(format!("index.json: media type {mt:?}")));
    }
    let top = index.manifests.unwrap_or_default();

    // Groups of top-level descriptors that are variants of one image.
    let mut groups: Vec<Vec<&Descriptor>> = Vec::new();
    let mut by_name: HashMap<(Option<&str>, Option<&str>), usize> = HashMap::new();
    for d in &top {
        if d.platform.is_none() {
            groups.push(vec![d]);
            continue;
        }
        let key = (
            d.annotation(ANNOTATION_CONTAINERD_NAME),
            d.annotation(ANNOTATION_REF_NAME),
        );
        match by_name.get(&key) {
            Some(&g) => groups[g].push(d),
            None => {
                by_name.insert(key, groups.len());
                groups.push(vec![d]);
            }
        }
    }

    let mut loader = Loader {
        content,
        archive,
        platform,
        layers: HashMap::new(),
    };
    let what_of = |first: &Descriptor| match first.annotation(ANNOTATION_REF_NAME) {
        Some(n) => format!("index.json entry {n:?}"),
        None => format!("index.json entry {}", first.digest),
    };
    // A head start on inflating the layers: the walk below meets any
    // error, in order.
    let selections: Vec<Selected> = groups
        .iter()
        .filter_map(|group| loader.select(group, &what_of(group[0])).ok().flatten())
        .collect();
    archive.inflate_ahead(
        content,
        layer::Limits::get(),
        selections
            .iter()
            .flat_map(|sel| sel.manifest.layers.iter().flatten())
            .filter_map(|d| archive.resolve(&blob_path(&d.digest).ok()?).ok())
            .map(|(_, staged)| staged),
    );
    drop(selections);

    let mut prepared: Vec<PreparedImage> = Vec::new();
    for group in groups {
        let first = group[0];
        let what = what_of(first);
        let Some(sel) = loader.select(&group, &what)? else {
            return Err(invalid(format!(
                "{what}: no matching manifest for {platform}"
            )));
        };
        let mut image = loader.prepare(sel, &what)?;
        let tags: Vec<Reference> = group.iter().filter_map(|d| reference_of(d)).collect();
        let id = sha256_digest(&image.config);
        match prepared.iter_mut().find(|p| sha256_digest(&p.config) == id) {
            Some(p) => {
                for t in tags {
                    if !p.tags.contains(&t) {
                        p.tags.push(t);
                    }
                }
            }
            None => {
                for t in tags {
                    if !image.tags.contains(&t) {
                        image.tags.push(t);
                    }
                }
                prepared.push(image);
            }
        }
    }
    Ok(prepared)
}

/// Write an OCI layout tar of `names` (resolved like `docker save`, §A.6).
pub fn save_oci(store: &Store, names: &[String], out: impl Write) -> Result<()> {
    struct Planned {
        id: String,
        config: Vec<u8>,
        tags: Vec<Reference>,
        /// (DiffID, size) bottom first.
        layers: Vec<(String, u64)>,
    }
    let content = store.content();
    let planned: Vec<Planned> = store.read(|t| {
        let items = super::save::resolve(t, names)?;
        let mut out = Vec::new();
        for item in items {
            let config = t
                .config(&item.id)?
                .ok_or_else(|| Error::corrupt(format!("config of {} is missing", item.id)))?;
            let cfg = ImageConfig::from_json(&config)?;
            let mut layers = Vec::new();
            for d in cfg.rootfs.iter().flat_map(|r| r.diff_ids.iter()) {
                let size = content.open_blob(d)?.metadata()?.len();
                layers.push((d.clone(), size));
            }
            out.push(Planned {
                id: item.id,
                config,
                tags: item.tags,
                layers,
            });
        }
        Ok(out)
    })?;

    enum Blob {
        Bytes(Vec<u8>),
        Stored(String, u64),
    }
    let mut blobs: BTreeMap<String, Blob> = BTreeMap::new();
    let mut index_entries: Vec<u8> = Vec::new();
    for p in &planned {
        blobs.insert(hex_part(&p.id).to_string(), Blob::Bytes(p.config.clone()));
        let mut m = Vec::new();
        m.extend_from_slice(b"{\"schemaVersion\":2,\"mediaType\":");
        json_str(&mut m, MEDIA_OCI_MANIFEST);
        m.extend_from_slice(b",\"config\":");
        descriptor(&mut m, MEDIA_OCI_CONFIG, &p.id, p.config.len() as u64);
        m.extend_from_slice(b",\"layers\":[");
        for (i, (d, size)) in p.layers.iter().enumerate() {
            if i > 0 {
                m.push(b',');
            }
            descriptor(&mut m, MEDIA_OCI_LAYER, d, *size);
            blobs.insert(hex_part(d).to_string(), Blob::Stored(d.clone(), *size));
        }
        m.extend_from_slice(b"]}");
        let mdigest = sha256_digest(&m);
        let mlen = m.len() as u64;
        blobs.insert(hex_part(&mdigest).to_string(), Blob::Bytes(m));
        let names: Vec<Option<&Reference>> = if p.tags.is_empty() {
            vec![None]
        } else {
            p.tags.iter().map(Some).collect()
        };
        for r in names {
            if !index_entries.is_empty() {
                index_entries.push(b',');
            }
            let mut d = Vec::new();
            descriptor(&mut d, MEDIA_OCI_MANIFEST, &mdigest, mlen);
            d.pop(); // reopen the object for annotations
            if let Some(r) = r {
                d.extend_from_slice(b",\"annotations\":{");
                json_str(&mut d, ANNOTATION_CONTAINERD_NAME);
                d.push(b':');
                json_str(&mut d, &r.canonical_string());
                d.push(b',');
                json_str(&mut d, ANNOTATION_REF_NAME);
                d.push(b':');
                json_str(&mut d, r.tag().unwrap_or("latest"));
                d.push(b'}');
            }
            d.push(b'}');
            index_entries.extend_from_slice(&d);
        }
    }
    let mut index = Vec::new();
    index.extend_from_slice(b"{\"schemaVersion\":2,\"mediaType\":");
    json_str(&mut index, MEDIA_OCI_INDEX);
    index.extend_from_slice(b",\"manifests\":[");
    index.extend_from_slice(&index_entries);
    index.extend_from_slice(b"]}");

    let mut w = TarWriter::new(out);
    w.dir("blobs/", 0)?;
    w.dir("blobs/sha256/", 0)?;
    for (hex, blob) in &blobs {
        let name = format!("blobs/sha256/{hex}");
        match blob {
            Blob::Bytes(b) => w.file(&name, 0, b.len() as u64, &b[..])?,
            Blob::Stored(d, size) => {
                let f = content.open_blob(d)?;
                w.file(
                    &name,
                    0,
                    *size,
                    std::io::BufReader::with_capacity(1 << 20, f),
                )?
            }
        }
    }
    w.file("index.json", 0, index.len() as u64, &index[..])?;
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    w.file("oci-layout", 0, layout.len() as u64, &layout[..])?;
    w.finish()?;
    Ok(())
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    crate::gojson::write_string(out, s, true);
}

fn descriptor(out: &mut Vec<u8>, media_type: &str, digest: &str, size: u64) {
    out.extend_from_slice(b"{\"mediaType\":");
    json_str(out, media_type);
    out.extend_from_slice(b",\"digest\":");
    json_str(out, digest);
    out.extend_from_slice(format!(",\"size\":{size}}}").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(os: &str, arch: &str, variant: &str) -> Platform {
        Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.into(),
        }
    }

    #[test]
    fn platform_matching() {
        let amd = p("linux", "amd64", "");
        let arm = p("linux", "arm64", "v8");
        for (name, want, other, ok) in [
            ("same", &amd, p("linux", "amd64", ""), true),
            ("x86_64 alias", &amd, p("linux", "x86_64", ""), true),
            ("amd64 v1", &amd, p("linux", "amd64", "v1"), true),
            (
                "amd64 v3 (host has no variant)",
                &amd,
                p("linux", "amd64", "v3"),
                true,
            ),
            ("arm64", &amd, p("linux", "arm64", ""), false),
            ("windows", &amd, p("windows", "amd64", ""), false),
            ("arm64 no variant", &arm, p("linux", "arm64", ""), true),
            ("aarch64", &arm, p("linux", "aarch64", "v8"), true),
            ("arm64 v9", &arm, p("linux", "arm64", "v9"), false),
        ] {
            assert_eq!(want.matches(&other), ok, "{name}");
        }
    }

    #[test]
    fn references_from_annotations() {
        let d = |pairs: &[(&str, &str)]| Descriptor {
            media_type: None,
            digest: String::new(),
            size: 0,
            annotations: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            platform: None,
        };
        for (name, pairs, want) in [
            ("bare tag", vec![(ANNOTATION_REF_NAME, "1.0")], None),
            ("bare word", vec![(ANNOTATION_REF_NAME, "latest")], None),
            (
                "full ref name",
                vec![(ANNOTATION_REF_NAME, "example.com/app:1.0")],
                Some("example.com/app:1.0"),
            ),
            (
                "short full ref",
                vec![(ANNOTATION_REF_NAME, "busybox:1")],
                Some("busybox:1"),
            ),
            (
                "port without tag",
                vec![(ANNOTATION_REF_NAME, "localhost:5000/app")],
                None,
            ),
            (
                "digest",
                vec![(
                    ANNOTATION_REF_NAME,
                    &format!("app@sha256:{}", "a".repeat(64)),
                )],
                None,
            ),
            (
                "containerd wins",
                vec![
                    (ANNOTATION_CONTAINERD_NAME, "docker.io/library/busybox:1"),
                    (ANNOTATION_REF_NAME, "1"),
                ],
                Some("busybox:1"),
            ),
            (
                "containerd without tag falls back",
                vec![
                    (ANNOTATION_CONTAINERD_NAME, "docker.io/library/busybox"),
                    (ANNOTATION_REF_NAME, "x/y:2"),
                ],
                Some("x/y:2"),
            ),
            ("bad syntax", vec![(ANNOTATION_REF_NAME, "UPPER:1")], None),
        ] {
            let got = reference_of(&d(&pairs)).map(|r| r.familiar_string());
            assert_eq!(got.as_deref(), want, "{name}");
        }
    }

    #[test]
    fn blob_paths() {
        let hex = "0".repeat(64);
        assert_eq!(
            blob_path(&format!("sha256:{hex}")).unwrap(),
            format!("blobs/sha256/{hex}")
        );
        for bad in ["sha512:00", "sha256:../../etc/passwd", "sha256:ABC", ""] {
            assert!(blob_path(bad).is_err(), "{bad}");
        }
    }
}
