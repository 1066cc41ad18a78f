//! `strata migrate from-docker`: adopt the images of a dockerd 20.10 data
//! root (`/var/lib/docker`) into a strata store, reading the source only.
//!
//! What is read, for the storage driver `<d>` (`vfs` or `overlay2`):
//!
//! - `image/<d>/imagedb/content/sha256/<id>`: image configs, stored verbatim
//!   (the ID is their sha256); `imagedb/metadata/sha256/<id>/parent`: the
//!   parent link. Images dockerd would not restore are skipped as dockerd
//!   skips them (a config that does not hash to its name or does not parse,
//!   a top layer missing from the layer store), with a note.
//! - `image/<d>/layerdb/sha256/<chainid>/{diff,parent,cache-id,size,tar-split.json.gz}`
//!   and the driver's layer directory (`vfs/dir/<cache-id>`, the full
//!   rootfs of that layer, or `overlay2/<cache-id>/diff`, the layer's own
//!   files): each layer stream is reassembled byte for byte as tar-split's
//!   `asm.WriteOutputTarStream` does (raw segments from the tar-split file,
//!   file payloads from the layer directory with their crc64 checked) and
//!   must hash to the layer's DiffID. Whiteouts and opaque directories need
//!   nothing from the layer directory (their tar headers are tar-split
//!   segments, with no payload), so overlay2's 0:0 character devices and
//!   `trusted.overlay.opaque` xattrs are never read. A layer's size is its
//!   `size` file (what dockerd reports: for overlay2 the disk usage of `diff`,
//!   not the tar entries' sum), else the entries' sum.
//! - `image/<d>/repositories.json`: tags and digest references.
//! - `image/<d>/distribution/v2metadata-by-diffid`: carried into the store's
//!   distribution metadata side file (not part of the log).
//!
//! Everything lands in the store as ONE write: `LayerRegistered` for every
//! layer, `ImageCreated` (source `Load`, with the parent) parents first,
//! then `ReferenceAdded` without tag time. Images' `LastTagTime`
//! (`metadata/.../lastUpdated`) is not carried: the log has no event that
//! sets it to a given time (see [`AdoptReport::last_tag_times_dropped`]).
//!
//! Paths named by a tar-split file are resolved inside the layer directory
//! as the chrooted extraction that created it did (`openat2` with
//! `RESOLVE_IN_ROOT`), so a symlink in a layer never leads out of it.

use crate::digest::{chain_id, chain_ids, sha256_digest};
use crate::error::{Error, Result};
use crate::event::{Actor, ImageSource};
use crate::layer::{IngestedLayer, escapes_root, ingest_layer, register_layers};
use crate::reference::Reference;
use crate::service::lookup::{self, TagPath};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The storage drivers whose layer directories strata can read.
pub const DRIVERS: [&str; 2] = ["vfs", "overlay2"];

/// What an adoption did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AdoptReport {
    /// The storage driver read.
    pub driver: String,
    /// Adopted image IDs, parents before children.
    pub images: Vec<String>,
    /// Layers (ChainIDs) reassembled and verified.
    pub layers: usize,
    /// Adopted references, familiar strings, in repositories.json order.
    pub references: Vec<String>,
    /// Images whose `LastTagTime` was set in the source but is not carried.
    pub last_tag_times_dropped: usize,
    /// v2 metadata entries carried into the distribution side file.
    pub distribution_entries: usize,
    /// What was skipped, and why (as dockerd's restore would skip it).
    pub notes: Vec<String>,
}

/// Pick the driver: the given one, else the only `image/<driver>` with an image database.
pub fn detect_driver(root: &Path, driver: Option<&str>) -> Result<String> {
    if let Some(d) = driver {
        if !DRIVERS.contains(&d) {
            return Err(Error::invalid(format!(
                "unsupported storage driver {d:?}: strata reads {}",
                DRIVERS.join(" and ")
            )));
        }
        if !root.join("image").join(d).join("imagedb").is_dir() {
            return Err(Error::not_found(format!(
                "{} has no image store for the {d} driver (no image/{d}/imagedb)",
                root.display()
            )));
        }
        return Ok(d.to_string());
    }
    let image = root.join("image");
    let mut found = Vec::new();
    let entries = fs::read_dir(&image).map_err(|e| {
        Error::not_found(format!(
            "{} is not a docker data root: {}: {e}",
            root.display(),
            image.display()
        ))
    })?;
    for e in entries {
        let e = e?;
        if e.path().join("imagedb").is_dir() {
            found.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    found.sort();
    match found.as_slice() {
        [] => Err(Error::not_found(format!(
            "{} is not a docker data root: no image/<driver>/imagedb",
            root.display()
        ))),
        [one] if DRIVERS.contains(&one.as_str()) => Ok(one.clone()),
        [one] => Err(Error::invalid(format!(
            "unsupported storage driver {one:?}: strata reads {}",
            DRIVERS.join(" and ")
        ))),
        many => Err(Error::invalid(format!(
            "{} holds image stores of several drivers ({}): choose one with --driver",
            root.display(),
            many.join(", ")
        ))),
    }
}

/// One image found in the source.
struct SourceImage {
    id: String,
    config: Vec<u8>,
    chain: Vec<String>,
    parent: Option<String>,
    tagged_at: bool,
}

/// One layer of the layer database.
struct SourceLayer {
    diff_id: String,
    cache_id: String,
    size: Option<u64>,
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn read_trimmed(p: &Path) -> Option<String> {
    fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Adopt the images of the dockerd data root `root` into `store` (see the module docs).
pub(crate) fn adopt(
    store: &Store,
    actor: &Actor,
    root: &Path,
    driver: Option<&str>,
) -> Result<AdoptReport> {
    let driver = detect_driver(root, driver)?;
    let base = root.join("image").join(&driver);
    let mut report = AdoptReport {
        driver: driver.clone(),
        ..AdoptReport::default()
    };

    // Layers: read lazily, by ChainID.
    let layerdb = base.join("layerdb").join("sha256");
    let mut layer_meta: HashMap<String, Option<SourceLayer>> = HashMap::new();
    let mut layer = |chain: &str| -> Option<String> {
        let entry = layer_meta
            .entry(chain.to_string())
            .or_insert_with(|| read_layer(&layerdb, chain));
        entry.as_ref().map(|l| l.diff_id.clone())
    };

    // Images, as dockerd's image store restores them.
    let mut images: BTreeMap<String, SourceImage> = BTreeMap::new();
    let content = base.join("imagedb").join("content").join("sha256");
    let metadata = base.join("imagedb").join("metadata").join("sha256");
    let mut names: Vec<String> = match fs::read_dir(&content) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_hex64(n))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    names.sort();
    for hex in names {
        let id = format!("sha256:{hex}");
        let config = fs::read(content.join(&hex))?;
        if sha256_digest(&config) != id {
            report.notes.push(format!(
                "invalid image {id}: its config does not hash to its name"
            ));
            continue;
        }
        let cfg = match crate::config::ImageConfig::from_json(&config) {
            Ok(c) => c,
            Err(e) => {
                report
                    .notes
                    .push(format!("invalid image {id}: {}", e.message()));
                continue;
            }
        };
        let diff_ids = cfg.rootfs.map(|r| r.diff_ids).unwrap_or_default();
        let chain = chain_ids(&diff_ids);
        let mut complete = true;
        for (c, d) in chain.iter().zip(&diff_ids) {
            match layer(c) {
                Some(found) if &found == d => {}
                Some(found) => {
                    return Err(Error::corrupt(format!(
                        "layer {c} of image {id}: its diff file names {found}, not {d}"
                    )));
                }
                None => {
                    complete = false;
                    report.notes.push(format!(
                        "layer does not exist, not restoring image {id}, {c}"
                    ));
                    break;
                }
            }
        }
        if !complete {
            continue;
        }
        let meta = metadata.join(&hex);
        images.insert(
            id.clone(),
            SourceImage {
                id,
                config,
                chain,
                parent: read_trimmed(&meta.join("parent")),
                tagged_at: read_trimmed(&meta.join("lastUpdated")).is_some(),
            },
        );
    }

    // Parents must be adopted images.
    let ids: Vec<String> = images.keys().cloned().collect();
    for img in images.values_mut() {
        if let Some(p) = &img.parent
            && !ids.contains(p)
        {
            report.notes.push(format!(
                "parent {p} of image {} is not in the source: parent link dropped",
                img.id
            ));
            img.parent = None;
        }
    }
    let order = parents_first(&images);

    // Reassemble every layer the adopted images use, once per ChainID.
    let cs = store.content();
    let mut done: HashMap<String, IngestedLayer> = HashMap::new();
    let mut by_diff_id: HashMap<String, IngestedLayer> = HashMap::new();
    for id in &order {
        let img = &images[id];
        for c in &img.chain {
            if done.contains_key(c) {
                continue;
            }
            let meta = layer_meta
                .get(c)
                .and_then(|l| l.as_ref())
                .ok_or_else(|| Error::internal(format!("layer {c} vanished")))?;
            let mut ingested = match by_diff_id.get(&meta.diff_id) {
                // Same content on another parent: one blob, already verified.
                Some(l) => l.clone(),
                None => {
                    let l = reassemble(cs, root, &layerdb, &driver, c, meta)?;
                    by_diff_id.insert(meta.diff_id.clone(), l.clone());
                    l
                }
            };
            // The size dockerd reports is its layer's size file: for vfs the
            // sum of the tar entries' sizes, for overlay2 the disk usage of
            // the layer's diff directory (symlink targets counted, hard
            // links once), which differs by design.
            if let Some(size) = meta.size
                && size != ingested.diff_size
            {
                if driver == "vfs" {
                    report.notes.push(format!(
                        "layer {c}: size file says {size}, its entries sum to {}",
                        ingested.diff_size
                    ));
                }
                ingested.diff_size = size;
            }
            done.insert(c.clone(), ingested);
        }
    }
    report.layers = done.len();

    // References, as the reference store restores them.
    let mut refs: Vec<(Reference, String)> = Vec::new();
    let repos = base.join("repositories.json");
    if let Some(bytes) = match fs::read(&repos) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    } {
        let parsed: RepositoriesFile = serde_json::from_slice(&bytes)
            .map_err(|e| Error::corrupt(format!("{}: {e}", repos.display())))?;
        for (_, repo) in parsed.repositories {
            for (key, id) in repo {
                let r = match Reference::parse_normalized_named(&key) {
                    Ok(r) => r,
                    Err(e) => {
                        report
                            .notes
                            .push(format!("reference {key:?}: {}", e.message()));
                        continue;
                    }
                };
                if r.tag().is_none() && r.digest().is_none() {
                    report
                        .notes
                        .push(format!("reference {key:?} has neither tag nor digest"));
                    continue;
                }
                if !images.contains_key(&id) {
                    report
                        .notes
                        .push(format!("reference {key} names {id}, which is not adopted"));
                    continue;
                }
                refs.push((r, id));
            }
        }
    }

    // Distribution metadata of the adopted layers, recorded in the same write.
    let dist_items = read_v2_metadata(&base, &by_diff_id);

    // ONE write.
    store.write(actor, |w| {
        for id in &order {
            let img = &images[id];
            let layers: Vec<IngestedLayer> = img.chain.iter().map(|c| done[c].clone()).collect();
            register_layers(w, &layers)?;
            crate::service::create_image_in(
                w,
                img.config.clone(),
                img.parent.as_deref(),
                ImageSource::Load,
            )?;
            if let Some(p) = img.parent.as_deref() {
                // An image the store already had keeps or gains this parent link.
                let current = w.tables().image(id)?.and_then(|r| r.parent);
                if current.as_deref() != Some(p) {
                    w.emit(crate::event::EventBody::ImageParentSet {
                        id: id.clone(),
                        parent: p.to_string(),
                    })?;
                }
            }
        }
        crate::distribution::metadata::emit_all(w, &dist_items)?;
        for (r, id) in &refs {
            if r.digest().is_some() {
                lookup::add_reference(w, r, id, TagPath::Load)?;
            } else {
                lookup::add_tag(w, r, id, TagPath::Load)?;
            }
        }
        Ok(())
    })?;
    report.images = order.clone();
    report.references = refs.iter().map(|(r, _)| r.familiar_string()).collect();
    report.last_tag_times_dropped = images.values().filter(|i| i.tagged_at).count();

    report.distribution_entries = dist_items.len();
    Ok(report)
}

#[derive(Deserialize)]
struct RepositoriesFile {
    #[serde(rename = "Repositories", default)]
    repositories: BTreeMap<String, BTreeMap<String, String>>,
}

fn read_layer(layerdb: &Path, chain: &str) -> Option<SourceLayer> {
    let hex = chain.strip_prefix("sha256:").filter(|h| is_hex64(h))?;
    let dir = layerdb.join(hex);
    let diff_id = read_trimmed(&dir.join("diff"))?;
    let parent = read_trimmed(&dir.join("parent"));
    // The directory must be the layer its files describe.
    if chain_id(parent.as_deref(), &diff_id) != chain {
        return None;
    }
    Some(SourceLayer {
        diff_id,
        cache_id: read_trimmed(&dir.join("cache-id"))?,
        size: read_trimmed(&dir.join("size")).and_then(|s| s.parse().ok()),
    })
}

fn parents_first(images: &BTreeMap<String, SourceImage>) -> Vec<String> {
    let mut order = Vec::with_capacity(images.len());
    let mut state: HashMap<&str, u8> = HashMap::new();
    for start in images.keys() {
        let mut stack = vec![start.as_str()];
        while let Some(&id) = stack.last() {
            match state.get(id).copied().unwrap_or(0) {
                0 => {
                    state.insert(id, 1);
                    if let Some(p) = images[id].parent.as_deref()
                        && state.get(p).copied().unwrap_or(0) == 0
                    {
                        stack.push(p);
                    }
                }
                1 => {
                    state.insert(id, 2);
                    order.push(id.to_string());
                    stack.pop();
                }
                _ => {
                    stack.pop();
                }
            }
        }
    }
    order
}

fn read_v2_metadata(
    base: &Path,
    layers: &HashMap<String, IngestedLayer>,
) -> Vec<(String, crate::distribution::metadata::V2Metadata)> {
    let dir = base
        .join("distribution")
        .join("v2metadata-by-diffid")
        .join("sha256");
    let mut out = Vec::new();
    let mut diff_ids: Vec<&String> = layers.keys().collect();
    diff_ids.sort();
    for d in diff_ids {
        let Some(hex) = d.strip_prefix("sha256:") else {
            continue;
        };
        let Ok(bytes) = fs::read(dir.join(hex)) else {
            continue;
        };
        let Ok(list) =
            serde_json::from_slice::<Vec<crate::distribution::metadata::V2Metadata>>(&bytes)
        else {
            continue;
        };
        out.extend(list.into_iter().map(|m| (d.clone(), m)));
    }
    out
}

/// The directory holding a layer's files for the tar-split file getter.
pub fn layer_dir(root: &Path, driver: &str, cache_id: &str) -> Result<PathBuf> {
    if cache_id.is_empty() || cache_id.contains('/') || cache_id == "." || cache_id == ".." {
        return Err(Error::corrupt(format!("invalid cache-id {cache_id:?}")));
    }
    match driver {
        "vfs" => Ok(root.join("vfs").join("dir").join(cache_id)),
        "overlay2" => Ok(root.join("overlay2").join(cache_id).join("diff")),
        other => Err(Error::invalid(format!(
            "unsupported storage driver {other:?}"
        ))),
    }
}

fn reassemble(
    cs: &crate::content::ContentStore,
    root: &Path,
    layerdb: &Path,
    driver: &str,
    chain: &str,
    meta: &SourceLayer,
) -> Result<IngestedLayer> {
    let what = format!("layer {chain}");
    let dir = layer_dir(root, driver, &meta.cache_id)?;
    let split = layerdb
        .join(crate::digest::hex_part(chain))
        .join("tar-split.json.gz");
    let split = File::open(&split)
        .map_err(|e| Error::corrupt(format!("{what}: cannot read {}: {e}", split.display())))?;
    let failure = Arc::new(Mutex::new(None));
    let stream = Reassembler::new(split, &dir, failure.clone())
        .map_err(|e| Error::corrupt(format!("{what}: layer directory {}: {e}", dir.display())))?;
    let result = ingest_layer(cs, stream, &what);
    if let Some(msg) = failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(Error::corrupt(format!("{what}: {msg}")));
    }
    let l = result?;
    if l.diff_id != meta.diff_id {
        return Err(Error::corrupt(format!(
            "{what}: the reassembled stream hashes to {}, not its DiffID {}",
            l.diff_id, meta.diff_id
        )));
    }
    Ok(l)
}

// ------------------------------------------------------------- tar-split

/// One record of a tar-split file (`storage.Entry`).
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    name_raw: Option<String>,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    payload: Option<String>,
}

const FILE_TYPE: u8 = 1;
const SEGMENT_TYPE: u8 = 2;

fn b64(s: &str) -> io::Result<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| io::Error::other(format!("bad base64 in tar-split: {e}")))
}

impl Entry {
    fn name_bytes(&self) -> io::Result<Vec<u8>> {
        match self.name_raw.as_deref().filter(|s| !s.is_empty()) {
            Some(raw) => b64(raw),
            None => Ok(self.name.clone().unwrap_or_default().into_bytes()),
        }
    }
}

/// Go's `crc64.MakeTable(crc64.ISO)`.
fn crc_table() -> &'static [u64; 256] {
    static TABLE: OnceLock<[u64; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        const ISO: u64 = 0xD800_0000_0000_0000;
        let mut t = [0u64; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut crc = i as u64;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ ISO
                } else {
                    crc >> 1
                };
            }
            *slot = crc;
        }
        t
    })
}

/// Go's `crc64.Update(crc, table, p)`.
pub fn crc64_update(crc: u64, p: &[u8]) -> u64 {
    let t = crc_table();
    let mut crc = !crc;
    for &b in p {
        crc = t[((crc as u8) ^ b) as usize] ^ (crc >> 8);
    }
    !crc
}

type Entries = serde_json::StreamDeserializer<
    'static,
    serde_json::de::IoRead<BufReader<flate2::read::MultiGzDecoder<File>>>,
    Entry,
>;

enum Current {
    Idle,
    Bytes(Vec<u8>, usize),
    File {
        file: File,
        name: String,
        size: u64,
        read: u64,
        crc: u64,
        want: Vec<u8>,
    },
}

/// `asm.WriteOutputTarStream` as a reader: tar-split records plus file payloads.
struct Reassembler {
    entries: Entries,
    dir: rustix::fd::OwnedFd,
    dir_path: PathBuf,
    current: Current,
    failure: Arc<Mutex<Option<String>>>,
}

impl Reassembler {
    fn new(
        split: File,
        dir: &Path,
        failure: Arc<Mutex<Option<String>>>,
    ) -> io::Result<Reassembler> {
        use rustix::fs::{Mode, OFlags};
        let fd = rustix::fs::open(
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let gz = flate2::read::MultiGzDecoder::new(split);
        let entries = serde_json::Deserializer::from_reader(BufReader::new(gz)).into_iter();
        Ok(Reassembler {
            entries,
            dir: fd,
            dir_path: dir.to_path_buf(),
            current: Current::Idle,
            failure,
        })
    }

    fn fail(&self, msg: String) -> io::Error {
        let mut slot = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(msg.clone());
        }
        io::Error::other(msg)
    }

    /// Open `name` inside the layer directory, as a chrooted process would.
    fn open_in_layer(&self, name: &[u8]) -> io::Result<File> {
        use rustix::fs::{Mode, OFlags, ResolveFlags};
        use std::os::unix::ffi::OsStrExt;
        let rel = std::ffi::OsStr::from_bytes(name);
        match rustix::fs::openat2(
            &self.dir,
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => Ok(File::from(fd)),
            Err(rustix::io::Errno::NOSYS) => {
                // Kernels before 5.6: refuse anything a symlink could redirect.
                if escapes_root(name) {
                    return Err(io::Error::other("path is outside of the layer root"));
                }
                let mut p = self.dir_path.clone();
                for comp in name
                    .split(|&b| b == b'/')
                    .filter(|c| !c.is_empty() && *c != b".")
                {
                    p.push(std::ffi::OsStr::from_bytes(comp));
                    if fs::symlink_metadata(&p)?.file_type().is_symlink() {
                        return Err(io::Error::other("path goes through a symlink"));
                    }
                }
                File::open(p)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Move to the next record; false at the end.
    fn advance(&mut self) -> io::Result<bool> {
        loop {
            let entry = match self.entries.next() {
                None => return Ok(false),
                Some(Ok(e)) => e,
                Some(Err(e)) => return Err(self.fail(format!("tar-split file: {e}"))),
            };
            match entry.kind {
                SEGMENT_TYPE => {
                    let bytes = match entry.payload.as_deref() {
                        Some(p) => b64(p).map_err(|e| self.fail(e.to_string()))?,
                        None => Vec::new(),
                    };
                    if bytes.is_empty() {
                        continue;
                    }
                    self.current = Current::Bytes(bytes, 0);
                    return Ok(true);
                }
                FILE_TYPE => {
                    if entry.size == 0 {
                        continue;
                    }
                    let name_bytes = entry.name_bytes().map_err(|e| self.fail(e.to_string()))?;
                    let name = String::from_utf8_lossy(&name_bytes).into_owned();
                    let size = u64::try_from(entry.size)
                        .map_err(|_| self.fail(format!("file {name:?}: negative size")))?;
                    let want = match entry.payload.as_deref() {
                        Some(p) => b64(p).map_err(|e| self.fail(e.to_string()))?,
                        None => Vec::new(),
                    };
                    let file = self
                        .open_in_layer(&name_bytes)
                        .map_err(|e| self.fail(format!("file {name:?} of the layer: {e}")))?;
                    self.current = Current::File {
                        file,
                        name,
                        size,
                        read: 0,
                        crc: 0,
                        want,
                    };
                    return Ok(true);
                }
                other => {
                    return Err(self.fail(format!("tar-split file: unknown entry type {other}")));
                }
            }
        }
    }
}

impl Read for Reassembler {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match &mut self.current {
                Current::Idle => {
                    if !self.advance()? {
                        return Ok(0);
                    }
                }
                Current::Bytes(bytes, pos) => {
                    let n = (bytes.len() - *pos).min(buf.len());
                    buf[..n].copy_from_slice(&bytes[*pos..*pos + n]);
                    *pos += n;
                    if *pos == bytes.len() {
                        self.current = Current::Idle;
                    }
                    return Ok(n);
                }
                Current::File {
                    file,
                    name,
                    size,
                    read,
                    crc,
                    want,
                } => {
                    let n = file.read(buf)?;
                    if n > 0 {
                        *crc = crc64_update(*crc, &buf[..n]);
                        *read += n as u64;
                        return Ok(n);
                    }
                    let msg = if *read != *size {
                        Some(format!(
                            "file {name:?} of the layer has {read} bytes, the layer's tar has {size}"
                        ))
                    } else if crc.to_be_bytes()[..] != want[..] {
                        Some(format!("file integrity checksum failed for {name:?}"))
                    } else {
                        None
                    };
                    if let Some(msg) = msg {
                        return Err(self.fail(msg));
                    }
                    self.current = Current::Idle;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_iso_matches_go() {
        // CRC-64/GO-ISO check value.
        assert_eq!(crc64_update(0, b"123456789"), 0xb909_56c7_75a4_1001);
        // Incremental updates equal one update.
        let one = crc64_update(0, b"hello, world\n");
        let two = crc64_update(crc64_update(0, b"hello, "), b"world\n");
        assert_eq!(one, two);
    }

    #[test]
    fn layer_dirs() {
        let r = Path::new("/var/lib/docker");
        assert_eq!(
            layer_dir(r, "vfs", "abc").unwrap(),
            PathBuf::from("/var/lib/docker/vfs/dir/abc")
        );
        assert_eq!(
            layer_dir(r, "overlay2", "abc").unwrap(),
            PathBuf::from("/var/lib/docker/overlay2/abc/diff")
        );
        for bad in ["", "..", "a/b", "."] {
            assert_eq!(
                layer_dir(r, "vfs", bad).unwrap_err().message(),
                format!("invalid cache-id {bad:?}")
            );
        }
    }
}
