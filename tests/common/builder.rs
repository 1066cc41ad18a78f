//! Build docker-archives of synthetic images (chosen layers, labels,
//! creation times, parents, tags) for the tests, the fuzz targets and the
//! benchmarks (which include this file), loaded through the real load path.
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::io::Write;

/// `sha256:<hex>` of `bytes`.
pub fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A layer tar holding `files` (name, content), deterministic bytes.
pub fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// An image to put in an archive.
#[derive(Clone, Debug)]
pub struct Img {
    /// Config bytes (the ID is their sha256).
    pub config: Vec<u8>,
    /// Layer tars, bottom first.
    pub layers: Vec<Vec<u8>>,
    /// RepoTags for the manifest.
    pub tags: Vec<String>,
    /// Parent image ID for the manifest.
    pub parent: Option<String>,
    history: Vec<serde_json::Value>,
}

impl Img {
    /// The image ID.
    pub fn id(&self) -> String {
        sha(&self.config)
    }
    /// Short (12 hex) ID.
    pub fn short(&self) -> String {
        self.id()[7..19].to_string()
    }
}

pub fn config_json(
    diff_ids: &[String],
    history: &[serde_json::Value],
    created: i64,
    labels: &[(&str, &str)],
) -> Vec<u8> {
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    let v = serde_json::json!({
        "architecture": "amd64",
        "config": { "Env": ["PATH=/bin"], "Labels": if labels.is_empty() { serde_json::Value::Null } else { labels.into() } },
        "created": time_string(created),
        "history": history,
        "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    serde_json::to_vec(&v).unwrap()
}

pub fn time_string(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// One history entry per layer, all at `created`.
pub fn history_for(n: usize, created: i64) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| serde_json::json!({"created": time_string(created), "created_by": format!("layer {i}")}))
        .collect()
}

/// A base image with `layers`, created at unix time `created`.
pub fn base(layers: Vec<Vec<u8>>, created: i64, labels: &[(&str, &str)], tags: &[&str]) -> Img {
    let history = history_for(layers.len(), created);
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
    Img {
        config: config_json(&diff_ids, &history, created, labels),
        layers,
        tags: tags.iter().map(|s| s.to_string()).collect(),
        parent: None,
        history,
    }
}

/// A child of `parent` (one more history entry; a new layer when given).
pub fn child(
    parent: &Img,
    new_layer: Option<Vec<u8>>,
    created: i64,
    labels: &[(&str, &str)],
    tags: &[&str],
) -> Img {
    let mut layers = parent.layers.clone();
    let mut history = parent.history.clone();
    let mut h = serde_json::json!({"created": time_string(created), "created_by": format!("step {}", history.len())});
    match new_layer {
        Some(l) => layers.push(l),
        None => {
            h["empty_layer"] = true.into();
        }
    }
    history.push(h);
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
    Img {
        config: config_json(&diff_ids, &history, created, labels),
        layers,
        tags: tags.iter().map(|s| s.to_string()).collect(),
        parent: Some(parent.id()),
        history,
    }
}

/// A docker-archive (layers as `<hex>.tar`) of `imgs`, written to `out`.
pub fn write_archive(imgs: &[&Img], out: impl Write) {
    let mut files: Vec<(String, &[u8])> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut manifest = Vec::new();
    let mut cfg_names = Vec::new();
    for img in imgs {
        cfg_names.push(format!("{}.json", &img.id()[7..]));
    }
    for (img, cfg_name) in imgs.iter().zip(&cfg_names) {
        files.push((cfg_name.clone(), &img.config));
        let mut paths = Vec::new();
        for l in &img.layers {
            let name = format!("{}.tar", &sha(l)[7..]);
            if seen.insert(name.clone()) {
                files.push((name.clone(), l));
            }
            paths.push(name);
        }
        let mut m = serde_json::json!({"Config": cfg_name, "RepoTags": img.tags, "Layers": paths});
        if img.tags.is_empty() {
            m["RepoTags"] = serde_json::Value::Null;
        }
        if let Some(p) = &img.parent {
            m["Parent"] = p.clone().into();
        }
        manifest.push(m);
    }
    let manifest = serde_json::to_vec(&manifest).unwrap();
    files.push(("manifest.json".into(), &manifest));
    let mut b = tar::Builder::new(out);
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    b.into_inner().unwrap().flush().unwrap();
}

pub fn archive(imgs: &[&Img]) -> Vec<u8> {
    let mut v = Vec::new();
    write_archive(imgs, &mut v);
    v
}

/// Load `imgs` into `svc` as one archive.
pub async fn load_imgs(svc: &strata::ImageService, imgs: &[&Img]) -> strata::archive::LoadReport {
    let bytes = archive(imgs);
    svc.load_image(std::io::Cursor::new(bytes), true)
        .await
        .unwrap()
}
