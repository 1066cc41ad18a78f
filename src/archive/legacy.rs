//! Legacy `docker load` of an archive without `manifest.json`: formats.md
//! §A.8, Docker 20.10's `legacyLoad` / `legacyLoadImage` and
//! `v1.MakeConfigFromV1Config`.
//!
//! Every top-level directory is a v1 image: `<dir>/json` (parsed for `os`
//! and `parent`, the parent loaded first) and `<dir>/layer.tar`, registered
//! on the parent's chain. The config is rebuilt from the v1 JSON as a Go map
//! (keys sorted, values compacted), without `id`, `parent`, `Size`,
//! `parent_id`, `layer_id`, `throwaway`, with `rootfs` and `history` from the
//! parent plus this layer. Tags come from the (required) `repositories` file.
//! Nothing is printed but rename notices, no `load` events are logged.
//!
//! Unlike Docker, which creates images one by one, everything is prepared
//! first and committed in one write, so an error leaves the store unchanged;
//! a parent chain that loops is an error (Docker recurses until its stack
//! overflows).

use super::load::{Archive, PreparedImage, clean};
use crate::config::{History, ImageConfig, RootFs};
use crate::content::ContentStore;
use crate::error::{Error, Result};
use crate::gojson::{self, Doc, NodeKind};
use crate::layer::{self, IngestedLayer};
use crate::reference::Reference;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The fields of Docker's `image.V1Image` (for Go's case-insensitive key
/// matching when decoding a v1 JSON through it).
const V1_FIELDS: &[&str] = &[
    "id",
    "parent",
    "comment",
    "created",
    "container",
    "container_config",
    "docker_version",
    "author",
    "config",
    "architecture",
    "variant",
    "os",
    "Size",
];

/// Keys `MakeConfigFromV1Config` deletes (exact, case-sensitive map keys).
const DROPPED: &[&str] = &["id", "parent", "Size", "parent_id", "layer_id", "throwaway"];

/// v1 JSONs older than this are normalized through `V1Image` first.
const NO_FALLBACK_MIN_VERSION: &str = "1.8.3";

struct Loader<'a> {
    content: &'a ContentStore,
    archive: &'a Archive,
    prepared: Vec<PreparedImage>,
    /// Legacy ID (directory name or `parent` value, as written) → index in
    /// `prepared`.
    loaded: HashMap<String, usize>,
    /// Image ID → index in `prepared`.
    by_id: HashMap<String, usize>,
    /// Resolved archive path of a `layer.tar` → the ingested stream.
    ingested: HashMap<String, IngestedLayer>,
}

/// Prepare every image and tag of a legacy archive (formats.md §A.8).
pub(super) fn prepare(content: &ContentStore, archive: &Archive) -> Result<Vec<PreparedImage>> {
    let mut l = Loader {
        content,
        archive,
        prepared: Vec::new(),
        loaded: HashMap::new(),
        by_id: HashMap::new(),
        ingested: HashMap::new(),
    };
    for dir in archive.top_dirs() {
        l.load_image(&dir)?;
    }
    let repositories = read(archive, "repositories").map_err(|e| {
        e.context("the archive has no manifest.json, so it is read as a legacy archive")
    })?;
    for (name, tags) in parse_repositories(&repositories)? {
        for (tag, old_id) in tags {
            let Some(&index) = l.loaded.get(&old_id) else {
                return Err(Error::invalid(format!("invalid target ID: {old_id}")));
            };
            let named = Reference::parse_normalized_named(&name)
                .map_err(|e| Error::invalid(e.message()))?;
            let tagged = named
                .with_tag(&tag)
                .map_err(|e| Error::invalid(e.message()))?;
            // Docker ignores the error AddTag returns for these two: the
            // tag is silently not created.
            if named.digest().is_some() || tagged.familiar_name() == "sha256" {
                continue;
            }
            l.prepared[index].tags.push(tagged);
        }
    }
    Ok(l.prepared)
}

/// Read the archive file `path` (symlinks followed inside the archive);
/// Go's `open` error when it does not exist.
fn read(archive: &Archive, path: &str) -> Result<Vec<u8>> {
    let cleaned = clean(path).ok_or_else(|| outside(path))?;
    if !archive.has(&cleaned) {
        return Err(no_such_file(&cleaned));
    }
    archive.read_small_from(&cleaned, "a legacy archive")
}

fn outside(path: &str) -> Error {
    Error::invalid(format!("evalSymlinksInScope: {path} is not in the archive"))
}

fn no_such_file(path: &str) -> Error {
    Error::invalid(format!("open {path}: no such file or directory"))
}

impl Loader<'_> {
    /// `legacyLoadImage(old_id)`: load `old_id` and, first, its parents.
    fn load_image(&mut self, old_id: &str) -> Result<()> {
        // The chain of not yet loaded images from `old_id` down, with their
        // v1 JSON and parent: read top-down (as Docker recurses), then
        // loaded bottom-up.
        let mut chain: Vec<(String, Vec<u8>, String)> = Vec::new();
        let mut seen = HashSet::new();
        let mut cur = old_id.to_string();
        while !self.loaded.contains_key(&cur) {
            if !seen.insert(cur.clone()) {
                return Err(Error::invalid(format!(
                    "invalid legacy image {old_id}: its parent chain loops at {cur}"
                )));
            }
            let path = format!("{cur}/json");
            let json = read(self.archive, &path)?;
            let (os, parent) = os_and_parent(&json)?;
            check_os(&os)?;
            let next = parent.clone();
            chain.push((cur, json, parent));
            if next.is_empty() {
                break;
            }
            cur = next;
        }
        for (id, json, parent) in chain.into_iter().rev() {
            let parent = if parent.is_empty() {
                None
            } else {
                Some(self.loaded[&parent])
            };
            let index = self.load_one(&id, &json, parent)?;
            self.loaded.insert(id, index);
        }
        Ok(())
    }

    /// Load one v1 image whose parent (an index in `prepared`) is loaded.
    fn load_one(&mut self, old_id: &str, json: &[u8], parent: Option<usize>) -> Result<usize> {
        let (mut rootfs, mut history, mut layers, parent_id) = match parent {
            Some(p) => {
                let p = &self.prepared[p];
                let rootfs = p.cfg.rootfs.clone().unwrap_or_default();
                let id = crate::digest::sha256_digest(&p.config);
                (rootfs, p.cfg.history.clone(), p.layers.clone(), Some(id))
            }
            None => (
                RootFs {
                    fs_type: "layers".into(),
                    diff_ids: Vec::new(),
                },
                Vec::new(),
                Vec::new(),
                None,
            ),
        };
        let layer = self.ingest(&format!("{old_id}/layer.tar"))?;
        rootfs.diff_ids.push(layer.diff_id.clone());
        layers.push(layer);

        let v1 = decode_v1(json)?;
        history.push(History {
            created: v1.created,
            author: v1.author.clone(),
            created_by: v1
                .container_config
                .cmd
                .as_deref()
                .unwrap_or_default()
                .join(" "),
            comment: v1.comment.clone(),
            empty_layer: false,
        });
        let config = make_config(json, &v1, &rootfs, &history)?;
        let cfg = ImageConfig::from_json(&config)?;
        let id = crate::digest::sha256_digest(&config);
        if let Some(&index) = self.by_id.get(&id) {
            return Ok(index);
        }
        self.prepared.push(PreparedImage {
            config,
            cfg,
            layers,
            tags: Vec::new(),
            parent: parent_id,
        });
        let index = self.prepared.len() - 1;
        self.by_id.insert(id, index);
        Ok(index)
    }

    /// Hash and store the layer stream at `path` (once per archive file).
    fn ingest(&mut self, path: &str) -> Result<IngestedLayer> {
        let cleaned = clean(path).ok_or_else(|| outside(path))?;
        if !self.archive.has(&cleaned) {
            return Err(no_such_file(&cleaned));
        }
        let (key, staged) = self.archive.resolve_from(&cleaned, "a legacy archive")?;
        if let Some(l) = self.ingested.get(key) {
            return Ok(l.clone());
        }
        let what = format!("layer {cleaned}");
        let l = self.archive.ingest_layer(
            staged,
            self.content,
            &what,
            layer::Limits::get(),
            None,
            None,
        )?;
        self.ingested.insert(key.to_string(), l.clone());
        Ok(l)
    }
}

/// `json.Unmarshal(imageJSON, &struct{ OS, Parent string })`.
fn os_and_parent(json: &[u8]) -> Result<(String, String)> {
    let doc = gojson::parse(json)?;
    let root = doc.root();
    let entries = match &doc.node(root).kind {
        NodeKind::Object(entries) => entries,
        NodeKind::Null => return Ok((String::new(), String::new())),
        _ => {
            return Err(Error::invalid(format!(
                "json: cannot unmarshal {} into Go value of type struct {{ OS string; Parent string }}",
                doc.kind_name(root)
            )));
        }
    };
    let (mut os, mut parent) = (String::new(), String::new());
    let mut saved: Option<Error> = None;
    for (key, value) in entries {
        let (field, slot) = if go_fold_eq("OS", key) {
            ("OS", &mut os)
        } else if go_fold_eq("Parent", key) {
            ("Parent", &mut parent)
        } else {
            continue;
        };
        match &doc.node(*value).kind {
            NodeKind::String(s) => *slot = s.clone(),
            NodeKind::Null => {}
            _ => {
                saved.get_or_insert_with(|| {
                    Error::invalid(format!(
                        "json: cannot unmarshal {} into Go struct field .{field} of type string",
                        doc.kind_name(*value)
                    ))
                });
            }
        }
    }
    match saved {
        Some(e) => Err(e),
        None => Ok((os, parent)),
    }
}

/// Go's case-insensitive match of an ASCII field name (with the two
/// non-ASCII folds that can equal ASCII letters: KELVIN SIGN and LONG S).
fn go_fold_eq(name: &str, key: &str) -> bool {
    let mut chars = key.chars();
    for n in name.bytes() {
        let Some(k) = chars.next() else {
            return false;
        };
        let ok = if k.is_ascii() {
            (k as u8).eq_ignore_ascii_case(&n)
        } else {
            (k == '\u{212a}' && n.eq_ignore_ascii_case(&b'k'))
                || (k == '\u{17f}' && n.eq_ignore_ascii_case(&b's'))
        };
        if !ok {
            return false;
        }
    }
    chars.next().is_none()
}

/// `checkCompatibleOS`, as the manifest path applies it.
fn check_os(os: &str) -> Result<()> {
    match os {
        "" | "linux" => Ok(()),
        "windows" => Err(Error::invalid("cannot load windows image on linux")),
        other => Err(Error::invalid(format!(
            "image operating system {other:?} cannot be used on this platform"
        ))),
    }
}

/// `json.Unmarshal(imageJSON, &image.V1Image{})`: only the keys that select
/// a `V1Image` field are decoded (the rest are ignored, as Go ignores them),
/// through the image config decoder.
fn decode_v1(json: &[u8]) -> Result<ImageConfig> {
    let doc = gojson::parse(json)?;
    let root = doc.root();
    let mut filtered = Vec::new();
    let mut o = gojson::ObjectWriter::new(&mut filtered, false);
    if let NodeKind::Object(entries) = &doc.node(root).kind {
        for (key, value) in entries {
            if V1_FIELDS.iter().any(|f| f == key || go_fold_eq(f, key)) {
                o.raw(key, doc.raw(*value));
            }
        }
    }
    o.raw("rootfs", br#"{"type":"layers"}"#);
    o.finish();
    ImageConfig::from_json(&filtered).map_err(|e| {
        Error::invalid(
            e.message()
                .replace("Go struct field Image.", "Go struct field V1Image."),
        )
    })
}

/// `MakeConfigFromV1Config(imageJSON, rootfs, history)`.
fn make_config(
    json: &[u8],
    v1: &ImageConfig,
    rootfs: &RootFs,
    history: &[History],
) -> Result<Vec<u8>> {
    let normalized;
    let source: &[u8] = if version_less(&v1.docker_version, NO_FALLBACK_MIN_VERSION) {
        // json.Marshal(V1Image): the v1 fields in struct order; the map
        // below sorts them anyway.
        let typed = ImageConfig {
            rootfs: None,
            history: Vec::new(),
            os_version: String::new(),
            os_features: Vec::new(),
            ..v1.clone()
        };
        normalized = typed.to_docker_json();
        &normalized
    } else {
        json
    };
    let doc = gojson::parse(source)?;
    let mut map: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    match &doc.node(doc.root()).kind {
        NodeKind::Object(entries) => {
            for (key, value) in entries {
                map.insert(key.clone(), compact_html(&doc, *value));
            }
        }
        // Unreachable: a JSON without docker_version takes the fallback.
        _ => {
            return Err(Error::invalid(format!(
                "json: cannot unmarshal {} into Go value of type map[string]*json.RawMessage",
                doc.kind_name(doc.root())
            )));
        }
    }
    for key in DROPPED {
        map.remove(*key);
    }
    let mut r = Vec::new();
    rootfs.write_json(&mut r, true);
    map.insert("rootfs".into(), r);
    let mut h = vec![b'['];
    for (i, entry) in history.iter().enumerate() {
        if i > 0 {
            h.push(b',');
        }
        entry.write_json(&mut h, true);
    }
    h.push(b']');
    map.insert("history".into(), h);
    let mut out = Vec::new();
    gojson::write_sorted_object(
        &mut out,
        map.iter().map(|(k, v)| (k.as_str(), v.clone())).collect(),
        true,
    );
    Ok(out)
}

/// Go's `json.Compact` with HTML escaping of a value of `doc`: whitespace
/// outside strings removed, `<`, `>`, `&`, U+2028, U+2029 escaped.
fn compact_html(doc: &Doc<'_>, index: usize) -> Vec<u8> {
    let src = doc.raw(index);
    let mut out = Vec::with_capacity(src.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < src.len() {
        let c = src[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
        } else if c == b'"' {
            in_string = true;
        } else if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
            continue;
        }
        if matches!(c, b'<' | b'>' | b'&') {
            out.extend_from_slice(format!("\\u00{c:02x}").as_bytes());
        } else if c == 0xe2 && i + 2 < src.len() && src[i + 1] == 0x80 && src[i + 2] & !1 == 0xa8 {
            out.extend_from_slice(format!("\\u202{:x}", src[i + 2] & 0xf).as_bytes());
            i += 3;
            continue;
        } else {
            out.push(c);
        }
        i += 1;
    }
    out
}

/// `versions.LessThan(a, b)`: dot-separated integers compared in turn, a
/// part that is not an integer counting as 0.
fn version_less(a: &str, b: &str) -> bool {
    let (x, y): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    let num =
        |parts: &[&str], i: usize| -> i64 { parts.get(i).and_then(|p| go_atoi(p)).unwrap_or(0) };
    for i in 0..x.len().max(y.len()) {
        let (p, q) = (num(&x, i), num(&y, i));
        if p != q {
            return p < q;
        }
    }
    false
}

/// `strconv.Atoi`: optional sign, ASCII digits only.
fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `repositories` decoded as Go's `map[string]map[string]string`: later
/// duplicate keys replace earlier ones; `null` is an empty map.
fn parse_repositories(bytes: &[u8]) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid("EOF"));
    }
    let doc = gojson::parse(bytes)?;
    let ty = "map[string]map[string]string";
    let type_err = |doc: &Doc<'_>, i: usize, ty: &str| {
        Error::invalid(format!(
            "json: cannot unmarshal {} into Go value of type {ty}",
            doc.kind_name(i)
        ))
    };
    let mut out = BTreeMap::new();
    let mut saved: Option<Error> = None;
    let root = doc.root();
    match &doc.node(root).kind {
        NodeKind::Null => {}
        NodeKind::Object(repos) => {
            for (name, tags_index) in repos {
                let mut tags = BTreeMap::new();
                match &doc.node(*tags_index).kind {
                    NodeKind::Null => {}
                    NodeKind::Object(entries) => {
                        for (tag, id_index) in entries {
                            match &doc.node(*id_index).kind {
                                NodeKind::String(id) => {
                                    tags.insert(tag.clone(), id.clone());
                                }
                                NodeKind::Null => {
                                    tags.insert(tag.clone(), String::new());
                                }
                                _ => {
                                    saved
                                        .get_or_insert_with(|| type_err(&doc, *id_index, "string"));
                                }
                            }
                        }
                    }
                    _ => {
                        saved.get_or_insert_with(|| {
                            type_err(&doc, *tags_index, "map[string]string")
                        });
                    }
                }
                out.insert(name.clone(), tags);
            }
        }
        _ => return Err(type_err(&doc, root, ty)),
    }
    match saved {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for (v, less) in [
            ("", true),
            ("1.8.2", true),
            ("1.8.3-dev", true),
            ("1.8.3", false),
            ("1.9.0", false),
            ("20.10.24+dfsg1", false),
            ("1.10", false),
            ("x", true),
        ] {
            assert_eq!(version_less(v, NO_FALLBACK_MIN_VERSION), less, "{v}");
        }
    }
}
