//! `docker load`: formats.md §A.7.
//!
//! The archive is streamed once: small files are kept in memory, large
//! compressed ones staged in the content store's ingest directory, and large
//! uncompressed ones (the usual layer.tar) written straight into a content
//! ingest, hashed and scanned as a tar while they stream by, so a layer's
//! bytes are written once. Then `manifest.json` is
//! read, every path in it resolved inside the archive (symlinks followed,
//! never out of it), every layer verified against its DiffID, even layers
//! the store already has, and written as a blob; compressed layers are
//! first inflated side by side, one per core ([`Archive::inflate_ahead`]),
//! with the errors and bounds of inflating them in order. Finally one write
//! transaction registers layers, creates images and moves tags. Any error
//! leaves the tables untouched (stray blobs are garbage for gc).
//!
//! Decompression is bounded (`layer::Limits`): the archive stream, each
//! layer, and all layers together may each inflate to at most
//! `STRATA_MAX_DECOMPRESSED_BYTES` (default 64 GiB), with an inflation-ratio
//! bound past 1 GiB; the error names the entry or layer.

use crate::config::ImageConfig;
use crate::content::{ContentStore, Ingest};
use crate::error::{Error, Result};
use crate::event::{EventBody, ImageSource};
use crate::layer::{self, IngestedLayer, escapes_root};
use crate::lease::Lease;
use crate::reference::Reference;
use crate::service::lookup::{self, TagPath};
use crate::store::Store;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, Read, Write};

/// Files up to this size are kept in memory while the archive streams by.
const IN_MEMORY_LIMIT: u64 = 1 << 20;
/// The largest manifest.json or config strata reads.
const JSON_LIMIT: u64 = 64 << 20;
/// How many symlinks a path may go through.
const MAX_LINKS: usize = 255;

/// What a load did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// The lines Docker prints (`Loaded image: x`, `Loaded image ID: sha256:…`, rename notices).
    pub lines: Vec<String>,
    /// IDs of the images in the archive, in manifest order.
    pub images: Vec<String>,
}

/// An archive file's bytes, kept until the manifest says what it is.
pub(super) enum Staged {
    /// A small file.
    Memory(Vec<u8>),
    /// A large compressed file, copied as is.
    File(Box<StagedFile>),
    /// A large uncompressed file, already in a content ingest.
    Ingest(Box<StagedIngest>),
}

/// A large uncompressed archive file written into a content ingest while it
/// streamed by: its SHA-256 (the DiffID, if it is a layer) and its tar scan
/// are known, and it becomes a blob only when a manifest names it as a layer
/// with that DiffID. Uncommitted, it is dropped with the archive.
pub(super) struct StagedIngest {
    ingest: std::sync::Mutex<Option<Ingest>>,
    file: std::path::PathBuf,
    digest: String,
    size: u64,
    /// The DiffSize, when the bytes are a tar stream whose entries stay
    /// inside the layer root.
    diff_size: Option<u64>,
}

/// A large compressed archive file, and the layer it inflated to when
/// [`Archive::inflate_ahead`] did that work beside others.
pub(super) struct StagedFile {
    tmp: tempfile::NamedTempFile,
    ahead: std::sync::Mutex<Option<(IngestedLayer, Ingest)>>,
}

impl StagedFile {
    /// A reader of the compressed bytes.
    fn open(&self) -> Result<std::io::BufReader<std::fs::File>> {
        Ok(std::io::BufReader::with_capacity(
            1 << 20,
            self.tmp.reopen()?,
        ))
    }

    /// The layer inflated ahead of time, if it is the one `expected` and
    /// fits in `budget`; otherwise `None`, and the caller inflates the
    /// file again, meeting the same error it would have met alone.
    fn take_ahead(
        &self,
        budget: Option<&layer::Budget>,
        expected: Option<(usize, &str)>,
    ) -> Option<(IngestedLayer, Ingest)> {
        let (layer, ingest) = self
            .ahead
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        if expected.is_some_and(|(_, want)| want != layer.diff_id) {
            return None;
        }
        if budget.is_some_and(|b| !b.try_charge(ingest.len())) {
            return None;
        }
        Some((layer, ingest))
    }
}

impl StagedIngest {
    /// Stream `entry` into a new ingest, scanning it as a layer tar.
    fn write(content: &ContentStore, mut entry: impl Read) -> std::io::Result<StagedIngest> {
        let mut ingest = content.ingest().map_err(std::io::Error::other)?;
        let scanned = layer::scan_tar(
            layer::Tee {
                inner: &mut entry,
                out: &mut ingest,
            },
            "",
        );
        let diff_size = scanned.ok().map(|(_, size)| size);
        // A scan that stopped early leaves the rest of the file to copy.
        std::io::copy(&mut entry, &mut ingest)?;
        ingest.flush()?;
        let digest = ingest.digest();
        Ok(StagedIngest {
            file: ingest
                .file_path()
                .ok_or_else(|| std::io::Error::other("ingest already committed"))?
                .to_path_buf(),
            size: ingest.len(),
            digest,
            diff_size,
            ingest: std::sync::Mutex::new(Some(ingest)),
        })
    }

    /// The bytes (the ingest's file stays in place until the archive's
    /// blobs are committed, after everything is read).
    fn open(&self) -> Result<std::fs::File> {
        Ok(std::fs::File::open(&self.file)?)
    }

    /// The layer these bytes are, and their ingest the first time; without
    /// a clean scan, the generic path gives the error.
    fn layer(
        &self,
        content: &ContentStore,
        what: &str,
        limits: layer::Limits,
        budget: Option<&layer::Budget>,
        expected: Option<(usize, &str)>,
    ) -> Result<(IngestedLayer, Option<Ingest>)> {
        let Some(diff_size) = self.diff_size else {
            let (l, ingest) = layer::ingest_layer_uncommitted(
                content,
                self.open()?,
                what,
                limits,
                budget,
                expected,
            )?;
            return Ok((l, Some(ingest)));
        };
        if let Some((i, want)) = expected
            && want != self.digest
        {
            return Err(Error::invalid(format!(
                "invalid diffID for layer {i}: expected {want:?}, got {:?}",
                self.digest
            )));
        }
        let ingest = self.ingest.lock().unwrap_or_else(|e| e.into_inner()).take();
        Ok((
            IngestedLayer {
                diff_id: self.digest.clone(),
                diff_size,
            },
            ingest,
        ))
    }
}

impl Staged {
    /// The number of bytes.
    pub(super) fn len(&self) -> Result<u64> {
        Ok(match self {
            Staged::Memory(b) => b.len() as u64,
            Staged::File(f) => f.tmp.as_file().metadata()?.len(),
            Staged::Ingest(s) => s.size,
        })
    }

    /// The SHA-256 digest, when it was computed while streaming.
    pub(super) fn known_digest(&self) -> Option<&str> {
        match self {
            Staged::Ingest(s) => Some(&s.digest),
            _ => None,
        }
    }

    /// A reader of the bytes.
    pub(super) fn open(&self) -> Result<Box<dyn Read + '_>> {
        Ok(match self {
            Staged::Memory(b) => Box::new(&b[..]),
            Staged::File(f) => Box::new(f.open()?),
            Staged::Ingest(s) => Box::new(std::io::BufReader::with_capacity(1 << 20, s.open()?)),
        })
    }
}

enum Node {
    File(Staged),
    Link(String),
}

#[derive(Deserialize)]
struct ManifestItem {
    #[serde(rename = "Config", alias = "config")]
    config: String,
    #[serde(rename = "RepoTags", alias = "repoTags", alias = "repotags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", alias = "layers", default)]
    layers: Option<Vec<String>>,
    #[serde(rename = "Parent", alias = "parent", default)]
    parent: Option<String>,
}

/// Clean an archive path: no leading `./` or `/`, no `.` parts, `..` resolved;
/// `None` when it climbs out of the archive.
pub(super) fn clean(path: &str) -> Option<String> {
    if escapes_root(path.as_bytes()) {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

pub(super) struct Archive {
    nodes: HashMap<String, Node>,
    /// First components of directory entries (directories may also exist
    /// only implicitly, as the parents of other entries).
    dirs: BTreeSet<String>,
    /// Ingests of the layers found good so far, committed together.
    pending: std::sync::Mutex<Vec<Ingest>>,
}

impl Archive {
    pub(super) fn read(content: &ContentStore, lease: &Lease, input: impl Read) -> Result<Archive> {
        let (plain, trip) = layer::decompressed_bounded(input, layer::Limits::get(), None)?;
        let mut current = None;
        let result = Self::read_entries(content, lease, plain, &mut current);
        match (result, layer::tripped(&trip)) {
            (Err(_), Some(msg)) => Err(Error::invalid(match current {
                Some(raw) => format!("archive entry {raw:?}: {msg}"),
                None => format!("archive: {msg}"),
            })),
            (r, _) => r,
        }
    }

    /// Stream the entries of `plain`; `current` names the entry being read.
    fn read_entries(
        content: &ContentStore,
        lease: &Lease,
        plain: impl Read,
        current: &mut Option<String>,
    ) -> Result<Archive> {
        let mut tar = tar::Archive::new(plain);
        let mut nodes = HashMap::new();
        let mut dirs = BTreeSet::new();
        let entries = tar.entries().map_err(invalid_tar)?;
        for entry in entries {
            *current = None;
            let mut entry = entry.map_err(invalid_tar)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            *current = Some(raw.clone());
            if raw.starts_with('/') {
                return Err(Error::invalid(format!(
                    "archive entry {raw:?} has an absolute path"
                )));
            }
            let name = clean(&raw).ok_or_else(|| {
                Error::invalid(format!("archive entry {raw:?} is outside of the archive"))
            })?;
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                if let Some(top) = name.split('/').next().filter(|t| !t.is_empty()) {
                    dirs.insert(top.to_string());
                }
                continue;
            }
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                if target.starts_with('/') {
                    return Err(Error::invalid(format!(
                        "archive entry {raw:?} links to the absolute path {target:?}"
                    )));
                }
                let joined = if kind.is_symlink() {
                    match name.rfind('/') {
                        Some(i) => format!("{}/{}", &name[..i], target),
                        None => target.clone(),
                    }
                } else {
                    target.clone()
                };
                let resolved = clean(&joined).ok_or_else(|| {
                    Error::invalid(format!(
                        "archive entry {raw:?} links to {target:?}, outside of the archive"
                    ))
                })?;
                nodes.insert(name, Node::Link(resolved));
                continue;
            }
            if !kind.is_file() {
                return Err(Error::invalid(format!(
                    "archive entry {raw:?} has unsupported type {:?}",
                    kind
                )));
            }
            let size = entry.size();
            let entry_error =
                |e: std::io::Error| Error::invalid(format!("archive entry {raw:?}: {e}"));
            let staged = if size <= IN_MEMORY_LIMIT {
                let mut buf = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut buf).map_err(entry_error)?;
                Staged::Memory(buf)
            } else {
                let mut entry = std::io::BufReader::with_capacity(1 << 20, entry);
                let head = entry.fill_buf().map_err(entry_error)?;
                if layer::detect_compression(head) == layer::Compression::None {
                    Staged::Ingest(Box::new(
                        StagedIngest::write(content, entry).map_err(entry_error)?,
                    ))
                } else {
                    let mut tmp = content.staging_file(lease)?;
                    std::io::copy(&mut entry, &mut tmp).map_err(entry_error)?;
                    tmp.flush()?;
                    Staged::File(Box::new(StagedFile {
                        tmp,
                        ahead: Default::default(),
                    }))
                }
            };
            nodes.insert(name, Node::File(staged));
        }
        Ok(Archive {
            nodes,
            dirs,
            pending: Default::default(),
        })
    }

    /// Decompress and check `staged` (one of this archive's files) as a
    /// layer (see [`layer::ingest_layer_within`]), without reading an
    /// already-ingested file again. Its blob is committed by
    /// [`Archive::commit_blobs`], so a load that fails later leaves no blob.
    pub(super) fn ingest_layer(
        &self,
        staged: &Staged,
        content: &ContentStore,
        what: &str,
        limits: layer::Limits,
        budget: Option<&layer::Budget>,
        expected: Option<(usize, &str)>,
    ) -> Result<IngestedLayer> {
        let ahead = match staged {
            Staged::File(f) => f.take_ahead(budget, expected),
            _ => None,
        };
        let (l, ingest) = match (staged, ahead) {
            (_, Some((l, i))) => (l, Some(i)),
            (Staged::Ingest(s), None) => s.layer(content, what, limits, budget, expected)?,
            (_, None) => {
                let (l, i) = layer::ingest_layer_uncommitted(
                    content,
                    staged.open()?,
                    what,
                    limits,
                    budget,
                    expected,
                )?;
                (l, Some(i))
            }
        };
        if let Some(ingest) = ingest {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(ingest);
        }
        Ok(l)
    }

    /// Inflate the compressed files among `layers` side by side, one per
    /// core, ahead of [`Archive::ingest_layer`], which then takes the
    /// result instead of inflating alone. Purely a head start: a file
    /// that fails here (not a layer, a bound tripped) is left for
    /// `ingest_layer` to fail on, with its own message, in manifest order.
    pub(super) fn inflate_ahead<'a>(
        &self,
        content: &ContentStore,
        limits: layer::Limits,
        layers: impl IntoIterator<Item = &'a Staged>,
    ) {
        let mut files: Vec<&StagedFile> = Vec::new();
        for staged in layers {
            if let Staged::File(f) = staged
                && !files.iter().any(|seen| std::ptr::eq(*seen, &**f))
            {
                files.push(f);
            }
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = cores.min(files.len());
        if workers < 2 {
            return;
        }
        // The archive's budget is charged when a result is taken; this one
        // bounds the work done ahead.
        let budget = layer::Budget::new(limits.max_bytes);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = || {
            while let Some(f) = files.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                let Ok(reader) = f.open() else { continue };
                let what = f.tmp.path().display().to_string();
                if let Ok(done) = layer::ingest_layer_uncommitted(
                    content,
                    reader,
                    &what,
                    limits,
                    Some(&budget),
                    None,
                ) {
                    *f.ahead.lock().unwrap_or_else(|e| e.into_inner()) = Some(done);
                }
            }
        };
        std::thread::scope(|s| {
            for _ in 1..workers {
                // A helper that cannot start leaves its share to the others.
                let _ = std::thread::Builder::new()
                    .name("strata-inflate".into())
                    .spawn_scoped(s, work);
            }
            work();
        });
    }

    /// Make the blobs of every layer ingested so far durable (before the
    /// load's events commit).
    pub(super) fn commit_blobs(&self) -> Result<()> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for ingest in pending {
            ingest.commit()?;
        }
        Ok(())
    }

    /// Whether the archive has an entry (file or link) named `name`.
    pub(super) fn has(&self, name: &str) -> bool {
        self.nodes.contains_key(name)
    }

    /// The top-level directories, sorted by name (Go's `os.ReadDir`): the
    /// first components of all nested entries and directory entries, except
    /// names that are themselves files or symlinks.
    pub(super) fn top_dirs(&self) -> BTreeSet<String> {
        self.nodes
            .keys()
            .filter_map(|k| k.split_once('/').map(|(top, _)| top))
            .chain(self.dirs.iter().map(String::as_str))
            .filter(|top| !self.nodes.contains_key(*top))
            .map(str::to_string)
            .collect()
    }

    /// Follow symlinks from `path` to a file, staying inside the archive.
    pub(super) fn resolve(&self, path: &str) -> Result<(&str, &Staged)> {
        self.resolve_from(path, "manifest.json")
    }

    /// [`Archive::resolve`] for a path named in the archive file `source`.
    pub(super) fn resolve_from(&self, path: &str, source: &str) -> Result<(&str, &Staged)> {
        let mut cur = clean(path).ok_or_else(|| {
            Error::invalid(format!(
                "path {path:?} in {source} is outside of the archive"
            ))
        })?;
        for _ in 0..MAX_LINKS {
            match self.nodes.get_key_value(cur.as_str()) {
                Some((k, Node::File(s))) => return Ok((k.as_str(), s)),
                Some((_, Node::Link(t))) => cur = t.clone(),
                None => {
                    return Err(Error::invalid(format!(
                        "archive has no file {path:?} named in {source}"
                    )));
                }
            }
        }
        Err(Error::invalid(format!("too many links resolving {path:?}")))
    }

    pub(super) fn read_small(&self, path: &str) -> Result<Vec<u8>> {
        self.read_small_from(path, "manifest.json")
    }

    /// [`Archive::read_small`] for a path named in the archive file `source`.
    pub(super) fn read_small_from(&self, path: &str, source: &str) -> Result<Vec<u8>> {
        let (_, staged) = self.resolve_from(path, source)?;
        match staged {
            Staged::Memory(b) => Ok(b.clone()),
            large => {
                let mut out = Vec::new();
                large.open()?.take(JSON_LIMIT + 1).read_to_end(&mut out)?;
                if out.len() as u64 > JSON_LIMIT {
                    return Err(Error::invalid(format!(
                        "{path} is larger than {JSON_LIMIT} bytes"
                    )));
                }
                Ok(out)
            }
        }
    }
}

fn invalid_tar(e: std::io::Error) -> Error {
    Error::invalid(format!(
        "Error processing tar file(exit status 1): archive/tar: invalid tar header ({e})"
    ))
}

pub(super) struct PreparedImage {
    pub(super) config: Vec<u8>,
    pub(super) cfg: ImageConfig,
    pub(super) layers: Vec<IngestedLayer>,
    pub(super) tags: Vec<Reference>,
    pub(super) parent: Option<String>,
}

/// Load a docker-archive from `input` into `store` as one write.
pub fn load(store: &Store, actor: &crate::event::Actor, input: impl Read) -> Result<LoadReport> {
    let content = store.content();
    let lease = content.lease();
    let archive = Archive::read(content, &lease, input)?;
    if !archive.has("manifest.json") {
        if archive.has("index.json") && archive.has("oci-layout") {
            let prepared = super::oci::prepare(content, &archive, &super::oci::Platform::host())?;
            archive.commit_blobs()?;
            return commit(store, actor, &prepared, Lines::UntaggedIds);
        }
        let prepared = super::legacy::prepare(content, &archive)?;
        archive.commit_blobs()?;
        return commit(store, actor, &prepared, Lines::Legacy);
    }
    let manifest_bytes = archive.read_small("manifest.json")?;
    let items: Vec<ManifestItem> = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| Error::invalid(format!("invalid manifest.json: {e}")))?;

    let limits = layer::Limits::get();
    let budget = layer::Budget::new(limits.max_bytes);
    archive.inflate_ahead(
        content,
        limits,
        items
            .iter()
            .flat_map(|item| item.layers.iter().flatten())
            .filter_map(|path| archive.resolve(path).ok())
            .map(|(_, staged)| staged),
    );
    let mut done: HashMap<String, IngestedLayer> = HashMap::new();
    let mut prepared = Vec::with_capacity(items.len());
    for item in &items {
        let config = archive.read_small(&item.config)?;
        check_named_digest(&item.config, &config)?;
        let paths = item.layers.clone().unwrap_or_default();
        let (cfg, diff_ids) = loadable_config(&config, paths.len())?;
        let mut layers = Vec::with_capacity(paths.len());
        for (i, (path, expected)) in paths.iter().zip(&diff_ids).enumerate() {
            let (key, staged) = archive.resolve(path)?;
            let ingested = match done.get(key) {
                Some(l) => l.clone(),
                None => {
                    let what = format!("layer {i} ({path})");
                    let l = archive.ingest_layer(
                        staged,
                        content,
                        &what,
                        limits,
                        Some(&budget),
                        Some((i, expected.as_str())),
                    )?;
                    done.insert(key.to_string(), l.clone());
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
        let mut tags = Vec::new();
        for t in item.repo_tags.iter().flatten() {
            let r = Reference::parse_normalized_named(t)
                .map_err(|e| Error::invalid(format!("invalid tag {t:?}: {e}")))?;
            if r.tag().is_none() || r.digest().is_some() {
                return Err(Error::invalid(format!("invalid tag {t:?}")));
            }
            tags.push(r);
        }
        prepared.push(PreparedImage {
            config,
            cfg,
            layers,
            tags,
            parent: item.parent.clone().filter(|p| !p.is_empty()),
        });
    }
    archive.commit_blobs()?;
    commit(store, actor, &prepared, Lines::Docker)
}

/// Which lines a load prints besides rename notices.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lines {
    /// `Loaded image: x` per tag, and Docker's quirk: every
    /// `Loaded image ID` when the last item is untagged (manifest.json).
    Docker,
    /// `Loaded image: x` per tag, `Loaded image ID` for exactly the untagged
    /// images (OCI layouts).
    UntaggedIds,
    /// Nothing, and no `load` events (formats.md §A.8: legacy archives).
    Legacy,
}

/// Register, create and tag `prepared` in one write; `lines` selects what is
/// printed.
fn commit(
    store: &Store,
    actor: &crate::event::Actor,
    prepared: &[PreparedImage],
    lines_mode: Lines,
) -> Result<LoadReport> {
    // Docker's legacy load creates images without logging `load` events.
    let source = if lines_mode == Lines::Legacy {
        ImageSource::Create
    } else {
        ImageSource::Load
    };
    let ids: Vec<String> = prepared
        .iter()
        .map(|p| crate::digest::sha256_digest(&p.config))
        .collect();
    validate_parents(prepared, &ids)?;

    let order = parents_first(prepared, &ids);
    store.write(actor, |w| {
        for &i in &order {
            let p = &prepared[i];
            layer::register_layers(w, &p.layers)?;
            let parent = p.parent.as_deref().filter(|par| ids.iter().any(|i| i == par));
            let id = crate::service::create_image_in(w, p.config.clone(), parent, source.clone())?;
            if let Some(parent) = parent {
                let current = w.tables().image(&id)?.and_then(|r| r.parent);
                if current.as_deref() != Some(parent) {
                    w.emit(EventBody::ImageParentSet {
                        id,
                        parent: parent.to_string(),
                    })?;
                }
            }
        }
        let mut lines = Vec::new();
        let mut tagged_last = false;
        for (p, id) in prepared.iter().zip(&ids) {
            tagged_last = !p.tags.is_empty();
            for r in &p.tags {
                let key = r.canonical_string();
                if let Some(old) = w.tables().resolve(&key)?
                    && &old != id
                {
                    lines.push(format!(
                        "The image {} already exists, renaming the old one with ID {old} to empty string",
                        r.familiar_string()
                    ));
                }
                lookup::add_tag(w, r, id, TagPath::Load)?;
                if lines_mode != Lines::Legacy {
                    lines.push(format!("Loaded image: {}", r.familiar_string()));
                }
            }
        }
        if lines_mode == Lines::UntaggedIds {
            for (p, id) in prepared.iter().zip(&ids) {
                if p.tags.is_empty() {
                    lines.push(format!("Loaded image ID: {id}"));
                }
            }
        } else if lines_mode == Lines::Docker && !prepared.is_empty() && !tagged_last {
            for id in &ids {
                lines.push(format!("Loaded image ID: {id}"));
            }
        }
        Ok(LoadReport {
            lines,
            images: ids.clone(),
        })
    })
}

/// Indexes of `prepared` ordered so that a parent from the same archive
/// comes before its children (dockerd links parents after creating all).
fn parents_first(prepared: &[PreparedImage], ids: &[String]) -> Vec<usize> {
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut order = Vec::with_capacity(prepared.len());
    let mut state = vec![0u8; prepared.len()]; // 0 new, 1 visiting, 2 done
    fn visit(
        i: usize,
        prepared: &[PreparedImage],
        index: &HashMap<&str, usize>,
        state: &mut [u8],
        order: &mut Vec<usize>,
    ) {
        if state[i] != 0 {
            return;
        }
        state[i] = 1;
        if let Some(&p) = prepared[i].parent.as_deref().and_then(|p| index.get(p)) {
            visit(p, prepared, index, state, order);
        }
        state[i] = 2;
        order.push(i);
    }
    for i in 0..prepared.len() {
        visit(i, prepared, &index, &mut state, &mut order);
    }
    order
}

/// A config stored under its digest's name (`<hex>.json`, `blobs/sha256/<hex>`)
/// must hash to that name.
fn check_named_digest(path: &str, bytes: &[u8]) -> Result<()> {
    let base = path.rsplit('/').next().unwrap_or(path);
    let hex = base.strip_suffix(".json").unwrap_or(base);
    let named = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !named {
        return Ok(());
    }
    let actual = crate::digest::sha256_digest(bytes);
    if crate::digest::hex_part(&actual) != hex {
        return Err(Error::invalid(format!(
            "config {path:?} does not match its digest: its content hashes to {actual}"
        )));
    }
    Ok(())
}

/// formats.md §A.7: parse an image config for loading, refuse operating
/// systems this host cannot run, and check that `layers` layer files were
/// given for its DiffIDs. Returns the config and its DiffIDs.
pub(super) fn loadable_config(config: &[u8], layers: usize) -> Result<(ImageConfig, Vec<String>)> {
    let cfg = ImageConfig::from_json(config)?;
    match cfg.os.as_str() {
        "" | "linux" => {}
        "windows" => return Err(Error::invalid("cannot load windows image on linux")),
        other => {
            return Err(Error::invalid(format!(
                "image operating system {other:?} cannot be used on this platform"
            )));
        }
    }
    let diff_ids = cfg
        .rootfs
        .as_ref()
        .map(|r| r.diff_ids.clone())
        .unwrap_or_default();
    if layers != diff_ids.len() {
        return Err(Error::invalid(format!(
            "invalid manifest, layers length mismatch: expected {layers}, got {}",
            diff_ids.len()
        )));
    }
    Ok((cfg, diff_ids))
}

/// formats.md §A.7 step 5: a parent named in the manifest must have a
/// history that is the child's minus one entry.
fn validate_parents(prepared: &[PreparedImage], ids: &[String]) -> Result<()> {
    let by_id: BTreeMap<&str, &PreparedImage> = ids
        .iter()
        .map(String::as_str)
        .zip(prepared.iter())
        .collect();
    for (p, id) in prepared.iter().zip(ids) {
        let Some(parent_id) = p.parent.as_deref() else {
            continue;
        };
        let Some(parent) = by_id.get(parent_id) else {
            continue;
        };
        let ph = &parent.cfg.history;
        let ch = &p.cfg.history;
        let ok = (ph.is_empty() && ch.is_empty())
            || (ph.len() + 1 == ch.len() && ph.iter().zip(ch.iter()).all(|(a, b)| a == b));
        if !ok {
            return Err(Error::invalid(format!(
                "image {parent_id} is not a valid parent for {id}"
            )));
        }
    }
    Ok(())
}
