//! `docker save`: formats.md §A.1–A.6. A single-image save is byte for byte
//! the archive dockerd 20.10 writes.

use super::tar_writer::TarWriter;
use crate::config::{ImageConfig, v1_layers};
use crate::digest::{chain_ids, hex_part};
use crate::error::{Error, Result};
use crate::projection::ReadTables;
use crate::reference::{AnyReference, Reference, parse_any_reference};
use crate::service::lookup::{get_image, parse_stored, search_id_prefix, store_key};
use crate::store::Store;
use std::collections::BTreeMap;
use std::io::Write;

/// One image to save and the tags it is saved under.
pub(super) struct Item {
    pub(super) id: String,
    pub(super) tags: Vec<Reference>,
}

/// formats.md §A.6: which images and tags `names` mean.
pub(super) fn resolve(t: &ReadTables, names: &[String]) -> Result<Vec<Item>> {
    let mut items: Vec<Item> = Vec::new();
    let mut add = |id: String, tag: Option<Reference>| {
        let pos = match items.iter().position(|i| i.id == id) {
            Some(p) => p,
            None => {
                items.push(Item {
                    id,
                    tags: Vec::new(),
                });
                items.len() - 1
            }
        };
        if let Some(tag) = tag
            && !items[pos].tags.contains(&tag)
        {
            items[pos].tags.push(tag);
        }
    };
    for name in names {
        let parsed = parse_any_reference(name).map_err(|e| Error::invalid(e.message()))?;
        let r = match parsed {
            AnyReference::Digest(_) => {
                add(get_image(t, name)?.id, None);
                continue;
            }
            AnyReference::Named(r) => r,
        };
        if r.digest().is_some() {
            add(get_image(t, name)?.id, None);
            continue;
        }
        if r.familiar_name() == "sha256" && r.tag().is_some() {
            match search_id_prefix(t, name)? {
                Some(id) => add(id, None),
                None => return Err(Error::not_found(format!("No such image: {name}"))),
            }
            continue;
        }
        if r.is_name_only() {
            let repo = r.name();
            let tags = t.refs_with_prefix(&format!("{repo}:"))?;
            let digests = t.refs_with_prefix(&format!("{repo}@"))?;
            if tags.is_empty() && digests.is_empty() {
                match search_id_prefix(t, name)? {
                    Some(id) => add(id, None),
                    None => return Err(Error::not_found(format!("No such image: {name}"))),
                }
                continue;
            }
            for (canonical, id) in tags {
                add(id, Some(parse_stored(&canonical)?));
            }
            continue;
        }
        let key = store_key(&r);
        match t.resolve(&key.canonical_string())? {
            Some(id) if t.has_image(&id)? => add(id, Some(key)),
            _ => return Err(Error::not_found("reference does not exist")),
        }
    }
    Ok(items)
}

enum Entry {
    Dir,
    Bytes(Vec<u8>),
    Blob(String),
    Link(String),
}

/// Write a docker-archive of `names` to `out`.
pub fn save(store: &Store, names: &[String], out: impl Write) -> Result<()> {
    // Everything the archive needs is read in one snapshot.
    struct Planned {
        id: String,
        config: Vec<u8>,
        cfg: ImageConfig,
        tags: Vec<Reference>,
        parent: Option<String>,
    }
    let planned: Vec<Planned> = store.read(|t| {
        let items = resolve(t, names)?;
        let mut out = Vec::new();
        for item in items {
            let config = t
                .config(&item.id)?
                .ok_or_else(|| Error::corrupt(format!("config of {} is missing", item.id)))?;
            let cfg = ImageConfig::from_json(&config)?;
            let parent = t.image(&item.id)?.and_then(|r| r.parent);
            out.push(Planned {
                id: item.id,
                config,
                cfg,
                tags: item.tags,
                parent,
            });
        }
        Ok(out)
    })?;
    let ids: Vec<&str> = planned.iter().map(|p| p.id.as_str()).collect();

    // path -> (entry, mtime); a BTreeMap of top-level names gives Go's walk order.
    let mut top: BTreeMap<String, (Entry, i64)> = BTreeMap::new();
    let mut dirs: BTreeMap<String, BTreeMap<String, (Entry, i64)>> = BTreeMap::new();
    let mut layer_file_of: BTreeMap<String, String> = BTreeMap::new();
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for p in &planned {
        let diff_ids = p
            .cfg
            .rootfs
            .as_ref()
            .map(|r| r.diff_ids.clone())
            .unwrap_or_default();
        if diff_ids.is_empty() {
            return Err(Error::internal("empty export - not implemented"));
        }
        let created = p.cfg.created.unix_seconds();
        let hex = hex_part(&p.id).to_string();
        top.insert(
            format!("{hex}.json"),
            (Entry::Bytes(p.config.clone()), created),
        );
        let chains = chain_ids(&diff_ids);
        let v1 = v1_layers(&p.cfg, &chains);
        let mut layer_paths = Vec::new();
        for ((v1id, json), diff_id) in v1.iter().zip(&diff_ids) {
            let path = format!("{v1id}/layer.tar");
            layer_paths.push(path.clone());
            if dirs.contains_key(v1id) {
                continue;
            }
            let layer = match layer_file_of.get(diff_id) {
                Some(first) => Entry::Link(format!("../{first}")),
                None => {
                    layer_file_of.insert(diff_id.clone(), path.clone());
                    Entry::Blob(diff_id.clone())
                }
            };
            let mut d = BTreeMap::new();
            d.insert(
                "VERSION".to_string(),
                (Entry::Bytes(b"1.0".to_vec()), created),
            );
            d.insert("json".to_string(), (Entry::Bytes(json.clone()), created));
            d.insert("layer.tar".to_string(), (layer, created));
            dirs.insert(v1id.clone(), d);
            top.insert(v1id.clone(), (Entry::Dir, created));
        }
        let top_v1 = v1.last().map(|(id, _)| id.clone()).unwrap_or_default();
        let tags: Vec<String> = p.tags.iter().map(Reference::familiar_string).collect();
        for r in &p.tags {
            repositories
                .entry(r.familiar_name())
                .or_default()
                .insert(r.tag().unwrap_or("latest").to_string(), top_v1.clone());
        }
        let mut m = serde_json::Map::new();
        m.insert("Config".into(), format!("{hex}.json").into());
        m.insert(
            "RepoTags".into(),
            if tags.is_empty() {
                serde_json::Value::Null
            } else {
                tags.into()
            },
        );
        m.insert("Layers".into(), layer_paths.into());
        if let Some(parent) = p.parent.as_deref().filter(|par| ids.contains(par)) {
            m.insert("Parent".into(), parent.into());
        }
        manifest.push(m);
    }
    let mut manifest_bytes = Vec::new();
    manifest_bytes.push(b'[');
    for (i, m) in manifest.iter().enumerate() {
        if i > 0 {
            manifest_bytes.push(b',');
        }
        // Go struct order: Config, RepoTags, Layers, Parent.
        manifest_bytes.push(b'{');
        let mut first = true;
        for key in ["Config", "RepoTags", "Layers", "Parent"] {
            if let Some(v) = m.get(key) {
                if !first {
                    manifest_bytes.push(b',');
                }
                first = false;
                manifest_bytes.extend_from_slice(format!("{:?}:", key).as_bytes());
                manifest_bytes.extend_from_slice(&go_json(v));
            }
        }
        manifest_bytes.push(b'}');
    }
    manifest_bytes.extend_from_slice(b"]\n");
    top.insert("manifest.json".into(), (Entry::Bytes(manifest_bytes), 0));
    if !repositories.is_empty() {
        let mut r =
            serde_json::to_vec(&repositories).map_err(|e| Error::internal(e.to_string()))?;
        r.push(b'\n');
        top.insert("repositories".into(), (Entry::Bytes(r), 0));
    }

    let mut w = TarWriter::new(out);
    let content = store.content();
    let write_entry = |w: &mut TarWriter<_>, name: &str, e: &Entry, mtime: i64| -> Result<()> {
        match e {
            Entry::Dir => w.dir(&format!("{name}/"), mtime),
            Entry::Bytes(b) => w.file(name, mtime, b.len() as u64, &b[..]),
            Entry::Link(t) => w.symlink(name, mtime, t),
            Entry::Blob(d) => {
                let f = content.open_blob(d)?;
                let size = f.metadata()?.len();
                w.file(
                    name,
                    mtime,
                    size,
                    std::io::BufReader::with_capacity(1 << 20, f),
                )
            }
        }
    };
    for (name, (entry, mtime)) in &top {
        write_entry(&mut w, name, entry, *mtime)?;
        if let Some(children) = dirs.get(name) {
            for (child, (e, m)) in children {
                write_entry(&mut w, &format!("{name}/{child}"), e, *m)?;
            }
        }
    }
    w.finish()?;
    Ok(())
}

/// Go's JSON encoding of strings and arrays of strings (HTML-escaped).
fn go_json(v: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    match v {
        serde_json::Value::String(s) => crate::gojson::write_string(&mut out, s, true),
        serde_json::Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&go_json(x));
            }
            out.push(b']');
        }
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
    out
}
