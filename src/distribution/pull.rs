//! Pull (spec §4): resolve the manifest, select a platform from lists,
//! fetch the config, download the missing layers (≤ 3 at once, retried),
//! verify everything, then make the image, its layers and its references
//! appear in ONE store write.
//!
//! A layer's compressed bytes go to `<store root>/ingest/partial-<hex>`
//! while hashed; once complete and verified they are decompressed into the
//! content store (the DiffID check is the config's). Downloads resume: the
//! bytes of an interrupted or cancelled download stay there under a lease
//! that expires after [`PARTIAL_LEASE`] (gc keeps them meanwhile), and the
//! next attempt, or the next pull of the same blob, re-hashes them and asks
//! for the rest with `Range: bytes=N-` (a `200` answer starts over, as do a
//! `416` and a final digest mismatch). Leases live in memory: after a
//! restart, gc removes partial files as orphans unless a pull of the same
//! blob picks them up first.

use super::client::{Auth, Fail, MANIFEST_ACCEPT, Session, error_response, header, read_body};
use super::metadata::V2Metadata;
use super::{Progress, ProgressSender, send, short};
use crate::content::ContentStore;
use crate::digest::{Hasher, chain_ids, sha256_digest};
use crate::error::{Error, Result};
use crate::event::{Actor, EventBody, ImageSource};
use crate::layer::IngestedLayer;
use crate::reference::Reference;
use crate::service::ImageService;
use crate::service::lookup::{self, TagPath};
use crate::store::Store;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Method;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Options of a pull.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// Wanted platform `os[/arch[/variant]]`; default `linux/<host arch>`.
    pub platform: Option<String>,
    /// Credentials (anonymous when `None`).
    pub auth: Option<Auth>,
    /// Insecure registries and certificates (default: Docker's).
    pub registry: super::tls::RegistryOptions,
    /// Where progress messages go.
    pub progress: ProgressSender,
    /// Retry wait unit: failure k of a layer download waits `k × retry_delay`
    /// (Docker: 5 s).
    pub retry_delay: Duration,
    /// Retries after the first failed layer download (Docker: 5).
    pub max_download_attempts: u32,
    /// Layer downloads in flight (Docker: 3).
    pub max_concurrent_downloads: usize,
}

impl Default for PullOptions {
    fn default() -> PullOptions {
        PullOptions {
            platform: None,
            auth: None,
            registry: super::tls::RegistryOptions::default(),
            progress: None,
            retry_delay: Duration::from_secs(5),
            max_download_attempts: 5,
            max_concurrent_downloads: 3,
        }
    }
}

/// One image a pull resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PulledImage {
    /// The familiar reference pulled (`127.0.0.1:5000/test:1`, `…@sha256:…`).
    pub reference: String,
    /// The image ID.
    pub image_id: String,
    /// The manifest digest (the list's digest for manifest lists).
    pub digest: String,
    /// Whether the reference was (re)pointed ("Downloaded newer image").
    pub updated: bool,
    /// Blob digests actually downloaded.
    pub downloaded_blobs: Vec<String>,
}

/// What a pull did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullReport {
    /// The status lines without id, as Docker's CLI prints them:
    /// `Digest: …` and `Status: …`.
    pub lines: Vec<String>,
    /// Per tag (one, unless all tags were pulled).
    pub images: Vec<PulledImage>,
}

const MT_SCHEMA2: &str = "application/vnd.docker.distribution.manifest.v2+json";
const MT_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST_LIMIT: usize = 4 << 20;
const CONFIG_LIMIT: usize = 16 << 20;

#[derive(Deserialize, Clone, Debug)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    pub(crate) digest: String,
    #[serde(default)]
    platform: Option<PlatformSpec>,
}

#[derive(Deserialize, Clone, Debug, Default)]
struct PlatformSpec {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: String,
}

#[derive(Deserialize)]
pub(crate) struct ImageManifest {
    pub(crate) config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
pub(crate) struct ManifestList {
    #[serde(default)]
    pub(crate) manifests: Vec<Descriptor>,
}

fn pull_fail(f: Fail, r: &Reference) -> Error {
    let msg = f.message.clone();
    match f.code.as_deref() {
        Some("DENIED") => Error::not_found(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login': {msg}",
            r.familiar_name()
        )),
        Some("MANIFEST_UNKNOWN") => Error::not_found(format!(
            "manifest for {} not found: {msg}",
            r.familiar_string()
        )),
        Some("NAME_UNKNOWN") => {
            Error::not_found(format!("repository {} not found: {msg}", r.familiar_name()))
        }
        _ => Error::internal(msg),
    }
}

/// Parse a user reference the way the pull and push routes do.
pub(crate) fn parse_repo_reference(reference: &str) -> Result<Reference> {
    let r = Reference::parse_normalized_named(reference).map_err(|e| {
        let m = e.message();
        if m.starts_with("invalid reference format") {
            Error::invalid(m)
        } else {
            Error::invalid(format!("invalid reference format: {m}"))
        }
    })?;
    if r.familiar_name() == "scratch" {
        return Err(Error::invalid("'scratch' is a reserved name"));
    }
    Ok(r)
}

/// Pull `reference` into `store` (see the module docs).
pub async fn pull(
    svc: &ImageService,
    actor: &Actor,
    reference: &str,
    opts: PullOptions,
) -> Result<PullReport> {
    let r = parse_repo_reference(reference)?;
    let scope = format!("repository:{}:pull", r.path());
    let sess = Session::open_with(r.domain(), opts.auth.clone(), vec![scope], &opts.registry)
        .await
        .map_err(|f| pull_fail(f, &r))?;
    let sess = Arc::new(sess);
    let refs = if r.is_name_only() {
        let tags = list_tags(&sess, &r).await.map_err(|f| pull_fail(f, &r))?;
        tags.iter()
            .map(|t| r.with_tag(t).map_err(|e| Error::invalid(e.message())))
            .collect::<Result<Vec<_>>>()?
    } else {
        vec![r.clone()]
    };
    let mut report = PullReport {
        lines: Vec::new(),
        images: Vec::new(),
    };
    for (i, one) in refs.iter().enumerate() {
        // The `ImagePulled` record goes into the last write of the pull.
        let last = (i + 1 == refs.len()).then_some(&r);
        let img = pull_one(svc, actor, &sess, one, &opts, last).await?;
        let line = format!("Digest: {}", img.digest);
        send(&opts.progress, Progress::Status(line.clone()));
        report.lines.push(line);
        if !r.is_name_only() {
            let line = status_line(img.updated, &one.familiar_string());
            send(&opts.progress, Progress::Status(line.clone()));
            report.lines.push(line);
        }
        report.images.push(img);
    }
    if refs.is_empty() {
        // Nothing to write but the record of the pull.
        let (svc2, actor2, r2) = (svc.clone(), actor.clone(), r.clone());
        tokio::task::spawn_blocking(move || {
            svc2.store()
                .write(&actor2, |w| w.emit(pulled_event(w, &r2)))
        })
        .await
        .map_err(|e| Error::internal(format!("worker failed: {e}")))??;
    }
    if r.is_name_only() {
        let updated = report.images.iter().any(|i| i.updated);
        let line = status_line(updated, &r.familiar_string());
        send(&opts.progress, Progress::Status(line.clone()));
        report.lines.push(line);
    }
    Ok(report)
}

fn status_line(updated: bool, r: &str) -> String {
    if updated {
        format!("Status: Downloaded newer image for {r}")
    } else {
        format!("Status: Image is up to date for {r}")
    }
}

async fn list_tags(sess: &Session, r: &Reference) -> std::result::Result<Vec<String>, Fail> {
    #[derive(Deserialize)]
    struct Tags {
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    let mut out = Vec::new();
    let mut url = sess.url(&format!("/v2/{}/tags/list", r.path()));
    loop {
        let resp = sess
            .send(Method::GET, url.clone(), vec![], super::client::empty())
            .await?;
        if !resp.status().is_success() {
            return Err(error_response(resp).await);
        }
        let next = header(&resp, "link").and_then(|l| {
            let start = l.find('<')? + 1;
            let end = l.find('>')?;
            l.contains("rel=\"next\"")
                .then(|| l[start..end].to_string())
        });
        let body = read_body(resp, MANIFEST_LIMIT).await?;
        let t: Tags = serde_json::from_slice(&body)
            .map_err(|e| Fail::fatal(format!("invalid tags list: {e}")))?;
        out.extend(t.tags.unwrap_or_default());
        match next {
            Some(n) => url = url.join(&n).map_err(|e| Fail::fatal(e.message()))?,
            None => break,
        }
    }
    Ok(out)
}

fn accept_headers() -> Vec<(String, String)> {
    MANIFEST_ACCEPT
        .iter()
        .map(|m| ("Accept".to_string(), m.to_string()))
        .collect()
}

fn media_type_of(ct: Option<String>) -> String {
    ct.unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Fetch a manifest by tag or digest: `(media type, bytes)`.
async fn fetch_manifest(
    sess: &Session,
    path: &str,
    tag_or_digest: &str,
) -> std::result::Result<(String, Bytes), Fail> {
    let url = sess.url(&format!("/v2/{path}/manifests/{tag_or_digest}"));
    let resp = sess
        .send(Method::GET, url, accept_headers(), super::client::empty())
        .await?;
    if !resp.status().is_success() && !resp.status().is_redirection() {
        return Err(error_response(resp).await);
    }
    let mt = media_type_of(header(&resp, "content-type"));
    let body = read_body(resp, MANIFEST_LIMIT).await?;
    Ok((mt, body))
}

/// Resolve a tag with HEAD (GET when HEAD gives no digest): the digest, or
/// the manifest itself when only GET told it.
async fn resolve_tag(
    sess: &Session,
    path: &str,
    tag: &str,
) -> std::result::Result<(String, Option<(String, Bytes)>), Fail> {
    let url = sess.url(&format!("/v2/{path}/manifests/{tag}"));
    let resp = sess
        .send(Method::HEAD, url, accept_headers(), super::client::empty())
        .await?;
    let s = resp.status().as_u16();
    if (200..400).contains(&s)
        && let Some(d) = header(&resp, "docker-content-digest").filter(|d| !d.is_empty())
    {
        return Ok((d, None));
    }
    let (mt, body) = fetch_manifest(sess, path, tag).await?;
    Ok((sha256_digest(&body), Some((mt, body))))
}

pub(crate) fn is_schema1(mt: &str) -> bool {
    matches!(
        mt,
        "" | "application/json"
            | "application/vnd.docker.distribution.manifest.v1+json"
            | "application/vnd.docker.distribution.manifest.v1+prettyjws"
    )
}

/// The `ImagePulled` record of a pull of `pulled`: the image it names now.
fn pulled_event(w: &crate::store::Writer<'_>, pulled: &Reference) -> EventBody {
    let reference = pulled.canonical_string();
    let image = lookup::get_image(w.tables(), &reference)
        .map(|f| f.id)
        .unwrap_or_default();
    EventBody::ImagePulled { reference, image }
}

/// Pull one tag or digest; with `pulled`, its write also records the pull
/// of `pulled` (the reference the user asked for).
async fn pull_one(
    svc: &ImageService,
    actor: &Actor,
    sess: &Arc<Session>,
    r: &Reference,
    opts: &PullOptions,
    pulled: Option<&Reference>,
) -> Result<PulledImage> {
    let store = svc.store();
    let path = r.path().to_string();
    let fail = |f: Fail| pull_fail(f, r);
    let (digest, fetched) = match (r.digest(), r.tag()) {
        (Some(d), _) => (d.to_string(), None),
        (None, Some(t)) => resolve_tag(sess, &path, t).await.map_err(fail)?,
        (None, None) => return Err(Error::internal("no tag to pull")),
    };
    let (mt, bytes) = match fetched {
        Some(x) => x,
        None => fetch_manifest(sess, &path, &digest).await.map_err(fail)?,
    };
    if sha256_digest(&bytes) != digest {
        return Err(Error::internal(format!(
            "manifest verification failed for digest {digest}"
        )));
    }
    if is_schema1(&mt) {
        return Err(Error::internal("invalid manifest: not schema2"));
    }
    let id_for_progress = match r.digest() {
        Some(_) => r.familiar_string(),
        None => r.tag().unwrap_or("latest").to_string(),
    };
    let (image_mt, image_bytes) = match mt.as_str() {
        MT_SCHEMA2 | MT_OCI_MANIFEST => (mt.clone(), bytes.clone()),
        MT_LIST | MT_OCI_INDEX => {
            let list: ManifestList = serde_json::from_slice(&bytes)
                .map_err(|e| Error::internal(format!("invalid manifest list: {e}")))?;
            let child = select_platform(&list.manifests, opts.platform.as_deref())?;
            let (cmt, cbytes) = fetch_manifest(sess, &path, &child.digest)
                .await
                .map_err(fail)?;
            if sha256_digest(&cbytes) != child.digest {
                return Err(Error::internal(format!(
                    "manifest verification failed for digest {}",
                    child.digest
                )));
            }
            if is_schema1(&cmt) {
                return Err(Error::internal("invalid manifest: not schema2"));
            }
            if cmt != MT_SCHEMA2 && cmt != MT_OCI_MANIFEST {
                return Err(Error::internal(format!(
                    "unsupported manifest media type and no default available: {cmt}"
                )));
            }
            (cmt, cbytes)
        }
        other => {
            return Err(Error::internal(format!(
                "unsupported manifest media type and no default available: {other}"
            )));
        }
    };
    send(
        &opts.progress,
        Progress::item(id_for_progress, format!("Pulling from {path}")),
    );
    let m: ImageManifest = serde_json::from_slice(&image_bytes)
        .map_err(|e| Error::internal(format!("invalid manifest: {e}")))?;
    check_media_types(&image_mt, &m)?;
    let image_id = m.config.digest.clone();
    crate::reference::validate_digest(&image_id).map_err(|e| Error::internal(e.message()))?;

    let exists = {
        let id = image_id.clone();
        store.read(move |t| t.has_image(&id))?
    };
    let mut downloaded_blobs = Vec::new();
    let mut write_plan = None;
    if !exists {
        let config = fetch_config(sess, &path, &image_id).await?;
        let cfg: serde_json::Value = serde_json::from_slice(&config)
            .map_err(|e| Error::internal(format!("error pulling image configuration: {e}")))?;
        let diff_ids: Vec<String> = match cfg.get("rootfs").and_then(|r| r.get("diff_ids")) {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect(),
            Some(serde_json::Value::Null) => Vec::new(),
            Some(_) => return Err(Error::internal("invalid rootfs in image configuration")),
            None if cfg.get("rootfs").is_some() => Vec::new(),
            None => return Err(Error::internal("invalid rootfs in image configuration")),
        };
        if cfg.get("os").and_then(|o| o.as_str()) == Some("windows") {
            return Err(Error::internal(
                "image operating system \"windows\" cannot be used on this platform",
            ));
        }
        let layers = download_layers(store, sess, r, &m.layers, &diff_ids, opts).await?;
        downloaded_blobs = layers.downloaded.clone();
        let got: Vec<&str> = layers.layers.iter().map(|l| l.diff_id.as_str()).collect();
        if got != diff_ids.iter().map(String::as_str).collect::<Vec<_>>() {
            return Err(Error::internal(
                "layers from manifest don't match image configuration",
            ));
        }
        write_plan = Some((config, layers));
    }

    // The one write: layers, image, references (and the pull's record).
    let pulled = pulled.cloned();
    let r2 = r.clone();
    let digest2 = digest.clone();
    let id2 = image_id.clone();
    let plan_layers = write_plan.as_ref().map(|(_, l)| l.layers.clone());
    let plan_config = write_plan.as_ref().map(|(c, _)| c.to_vec());
    let meta_items: Vec<(String, V2Metadata)> = match &write_plan {
        Some((_, layers)) => layers
            .layers
            .iter()
            .zip(&m.layers)
            .map(|(l, d)| {
                (
                    l.diff_id.clone(),
                    V2Metadata {
                        digest: d.digest.clone(),
                        source_repository: r.name(),
                        hmac: String::new(),
                    },
                )
            })
            .collect(),
        None => Vec::new(),
    };
    let svc2 = svc.clone();
    let actor2 = actor.clone();
    let updated = tokio::task::spawn_blocking(move || {
        svc2.store().write(&actor2, |w| {
            if let (Some(layers), Some(config)) = (plan_layers, plan_config) {
                crate::layer::register_layers(w, &layers)?;
                super::metadata::emit_all(w, &meta_items)?;
                let id = crate::service::create_image_in(w, config, None, ImageSource::Pull)?;
                if id != id2 {
                    return Err(Error::internal("image ID does not match the config digest"));
                }
            } else if !w.tables().has_image(&id2)? {
                return Err(Error::conflict(format!(
                    "image {id2} was deleted during the pull; pull again"
                )));
            }
            let updated = tag_pulled(w, &r2, &digest2, &id2)?;
            if let Some(p) = &pulled {
                w.emit(pulled_event(w, p))?;
            }
            Ok(updated)
        })
    })
    .await
    .map_err(|e| Error::internal(format!("worker failed: {e}")))??;

    if let Some((_, layers)) = &write_plan {
        for blob in &layers.completed_order {
            send(&opts.progress, Progress::item(short(blob), "Pull complete"));
        }
    }
    Ok(PulledImage {
        reference: r.familiar_string(),
        image_id,
        digest,
        updated,
        downloaded_blobs,
    })
}

/// Docker's reference bookkeeping after a pull (spec §4.1 step 8). True
/// when the requested reference was (re)pointed.
fn tag_pulled(
    w: &mut crate::store::Writer<'_>,
    r: &Reference,
    digest: &str,
    id: &str,
) -> Result<bool> {
    let key = lookup::store_key(r).canonical_string();
    let digest_ref = r
        .trim_named()
        .with_digest(digest)
        .map_err(|e| Error::internal(e.message()))?;
    let add_digest = |w: &mut crate::store::Writer<'_>| -> Result<()> {
        match w.tables().resolve(&digest_ref.canonical_string())? {
            // Docker logs "Image ID for digest … changed" and keeps the old one.
            Some(_) => Ok(()),
            None => lookup::add_reference(w, &digest_ref, id, TagPath::Load),
        }
    };
    if w.tables().resolve(&key)?.as_deref() == Some(id) {
        add_digest(w)?;
        return Ok(false);
    }
    if r.digest().is_some() {
        lookup::add_reference(w, r, id, TagPath::Load)?;
    } else {
        add_digest(w)?;
        lookup::add_tag(w, r, id, TagPath::Load)?;
    }
    Ok(true)
}

pub(crate) fn check_media_types(mt: &str, m: &ImageManifest) -> Result<()> {
    let cfg = m.config.media_type.as_str();
    if mt == MT_SCHEMA2 {
        match cfg {
            "application/vnd.docker.container.image.v1+json"
            | "application/vnd.oci.image.config.v1+json"
            | "application/octet-stream"
            | "application/json"
            | "text/html"
            | "" => {}
            other => {
                let class = if other == "application/vnd.docker.plugin.v1+json" {
                    "plugin"
                } else {
                    "unknown"
                };
                return Err(Error::internal(format!(
                    "Encountered remote \"{other}\"({class}) when fetching"
                )));
            }
        }
    }
    let ok = |t: &str| {
        let l = t.to_ascii_lowercase();
        matches!(
            l.as_str(),
            "application/octet-stream" | "application/json" | "text/html" | ""
        ) || l.starts_with("application/vnd.oci.image.")
            || l.starts_with("application/vnd.docker.")
    };
    for t in std::iter::once(cfg).chain(m.layers.iter().map(|l| l.media_type.as_str())) {
        if !ok(t) {
            return Err(Error::internal(format!("unsupported media type {t}")));
        }
    }
    for l in &m.layers {
        crate::reference::validate_digest(&l.digest).map_err(|e| Error::internal(e.message()))?;
    }
    Ok(())
}

pub(crate) fn normalize_platform(os: &str, arch: &str, variant: &str) -> (String, String, String) {
    let os = os.to_ascii_lowercase();
    let mut arch = arch.to_ascii_lowercase();
    let mut variant = variant.to_ascii_lowercase();
    match arch.as_str() {
        "x86_64" | "x86-64" => {
            arch = "amd64".into();
            variant.clear();
        }
        "i386" => arch = "386".into(),
        "aarch64" | "arm64" => {
            arch = "arm64".into();
            if variant == "8" || variant == "v8" {
                variant.clear();
            }
        }
        "armhf" => {
            arch = "arm".into();
            variant = "v7".into();
        }
        "armel" => {
            arch = "arm".into();
            variant = "v6".into();
        }
        "arm" => {
            variant = match variant.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            }
        }
        _ => {}
    }
    (os, arch, variant)
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    }
}

pub(crate) fn select_platform<'a>(
    list: &'a [Descriptor],
    wanted: Option<&str>,
) -> Result<&'a Descriptor> {
    let wanted = wanted.filter(|w| !w.is_empty());
    let mut parts = wanted.unwrap_or("").split('/');
    let os = parts.next().filter(|s| !s.is_empty()).unwrap_or("linux");
    let arch = parts
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(host_arch());
    let variant = parts.next().unwrap_or("");
    let want = normalize_platform(os, arch, variant);
    let of = |d: &Descriptor| {
        let p = d.platform.clone().unwrap_or_default();
        normalize_platform(&p.os, &p.architecture, &p.variant)
    };
    if let Some(d) = list.iter().find(|d| of(d) == want) {
        return Ok(d);
    }
    if want.1 == "arm"
        && let Some(d) = list.iter().find(|d| {
            let p = of(d);
            p.0 == want.0 && p.1 == want.1
        })
    {
        return Ok(d);
    }
    let mut name = format!("{}/{}", want.0, want.1);
    if !want.2.is_empty() {
        name.push('/');
        name.push_str(&want.2);
    }
    Err(Error::not_found(format!(
        "no matching manifest for {name} in the manifest list entries"
    )))
}

/// Fetch and verify the config: 5 attempts, 250 ms backoff doubling.
async fn fetch_config(sess: &Session, path: &str, digest: &str) -> Result<Bytes> {
    let mut delay = Duration::from_millis(250);
    let max = 5;
    let mut attempts = 0;
    let mut last = None;
    while attempts < max {
        attempts += 1;
        let res: std::result::Result<Bytes, Fail> = async {
            let resp = sess
                .get(Method::GET, &format!("/v2/{path}/blobs/{digest}"), &[])
                .await?;
            if !resp.status().is_success() {
                return Err(error_response(resp).await);
            }
            read_body(resp, CONFIG_LIMIT).await
        }
        .await;
        match res {
            Ok(b) => {
                if sha256_digest(&b) != digest {
                    return Err(Error::internal(format!(
                        "error pulling image configuration: image config verification failed for digest {digest}"
                    )));
                }
                return Ok(b);
            }
            Err(f) => {
                let retry = f.retry;
                last = Some(f);
                if !retry {
                    break;
                }
                if attempts < max {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
    }
    let f = last.unwrap_or_else(|| Fail::fatal("unknown error"));
    Err(Error::internal(format!(
        "error pulling image configuration: download failed after attempts={attempts}: {f}"
    )))
}

struct Layers {
    /// Bottom first, one per manifest layer.
    layers: Vec<IngestedLayer>,
    /// Blob digests downloaded.
    downloaded: Vec<String>,
    /// Downloaded blobs bottom first (for `Pull complete`).
    completed_order: Vec<String>,
}

async fn download_layers(
    store: &Store,
    sess: &Arc<Session>,
    r: &Reference,
    manifest_layers: &[Descriptor],
    diff_ids: &[String],
    opts: &PullOptions,
) -> Result<Layers> {
    // The prefix of layers whose ChainID exists locally is not downloaded.
    let mut sizes: Vec<u64> = Vec::new();
    if diff_ids.len() == manifest_layers.len() {
        let chains = chain_ids(diff_ids);
        sizes = store.read(|t| {
            let mut out = Vec::new();
            for c in &chains {
                match t.layer(c)? {
                    Some(row) => out.push(row.diff_size),
                    None => break,
                }
            }
            Ok(out)
        })?;
    }
    let present = sizes.len();
    let mut result: Vec<Option<IngestedLayer>> = vec![None; manifest_layers.len()];
    for i in 0..present {
        result[i] = Some(IngestedLayer {
            diff_id: diff_ids[i].clone(),
            diff_size: sizes[i],
        });
        send(
            &opts.progress,
            Progress::item(short(&manifest_layers[i].digest), "Already exists"),
        );
    }
    // Unique blobs to fetch, in order.
    let mut unique: Vec<String> = Vec::new();
    for d in &manifest_layers[present..] {
        if !unique.contains(&d.digest) {
            unique.push(d.digest.clone());
        }
    }
    for d in &unique {
        send(&opts.progress, Progress::item(short(d), "Pulling fs layer"));
    }
    let sem = Arc::new(tokio::sync::Semaphore::new(
        opts.max_concurrent_downloads.max(1),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for (idx, d) in unique.iter().enumerate() {
        let size = manifest_layers
            .iter()
            .find(|l| &l.digest == d)
            .map_or(0, |l| l.size.max(0) as u64);
        let sess = sess.clone();
        let sem = sem.clone();
        let content = store.content().clone();
        let path = r.path().to_string();
        let opts = opts.clone();
        let digest = d.clone();
        tasks.spawn(async move {
            let permit = match sem.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    send(&opts.progress, Progress::item(short(&digest), "Waiting"));
                    sem.acquire_owned()
                        .await
                        .map_err(|_| Error::internal("download queue closed"))?
                }
            };
            let res = download_with_retries(&sess, &content, &path, &digest, size, &opts).await;
            drop(permit);
            res.map(|l| (idx, digest, l))
        });
    }
    let mut got: BTreeMap<usize, (String, IngestedLayer)> = BTreeMap::new();
    let mut first_err = None;
    while let Some(j) = tasks.join_next().await {
        match j {
            Ok(Ok((idx, d, l))) => {
                got.insert(idx, (d, l));
            }
            Ok(Err(e)) => {
                if first_err.is_none() {
                    first_err = Some(e);
                    tasks.abort_all();
                }
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(Error::internal(format!("download task failed: {e}")));
                }
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    let by_digest: BTreeMap<&str, &IngestedLayer> =
        got.values().map(|(d, l)| (d.as_str(), l)).collect();
    for (i, d) in manifest_layers.iter().enumerate().skip(present) {
        result[i] = by_digest.get(d.digest.as_str()).map(|l| (*l).clone());
    }
    let layers: Vec<IngestedLayer> = result
        .into_iter()
        .map(|l| l.ok_or_else(|| Error::internal("a layer was not downloaded")))
        .collect::<Result<_>>()?;
    Ok(Layers {
        layers,
        downloaded: unique.clone(),
        completed_order: unique,
    })
}

async fn download_with_retries(
    sess: &Session,
    content: &ContentStore,
    path: &str,
    digest: &str,
    size: u64,
    opts: &PullOptions,
) -> Result<IngestedLayer> {
    let id = short(digest);
    let mut failures = 0u32;
    loop {
        match download_once(sess, content, path, digest, size, &opts.progress).await {
            Ok(l) => return Ok(l),
            Err(f) if f.retry && failures < opts.max_download_attempts => {
                failures += 1;
                let wait = opts.retry_delay * failures;
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                let step = wait / secs as u32;
                for s in (1..=secs).rev() {
                    let unit = if s == 1 { "second" } else { "seconds" };
                    send(
                        &opts.progress,
                        Progress::item(id.clone(), format!("Retrying in {s} {unit}")),
                    );
                    tokio::time::sleep(step).await;
                }
            }
            Err(f) => return Err(f.into_error()),
        }
    }
}

/// How long the bytes of an interrupted or cancelled layer download are kept
/// from gc for a later attempt to resume from.
pub const PARTIAL_LEASE: Duration = Duration::from_secs(24 * 3600);

/// Downloads of one partial file in this process, one at a time.
static PARTIAL_CLAIMS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, Arc<tokio::sync::Mutex<()>>>>,
> = std::sync::LazyLock::new(Default::default);

/// The partial file of one blob download, `<store root>/ingest/partial-<hex>`,
/// holding the compressed bytes received so far.
///
/// While the download runs, a lease protects the file. When the download
/// ends without the layer (a transport failure, an error, or the pull being
/// cancelled and this dropped), the lease is given [`PARTIAL_LEASE`] to
/// live, so gc keeps the bytes and the next attempt, or the next pull of the
/// same blob, resumes with a `Range` request. Leases live in memory: after
/// a restart of the process, gc treats partial files as orphans and removes
/// them unless a pull of the same blob picks them up first. A completed (or
/// unusable) download removes its file.
struct Partial {
    file: std::fs::File,
    path: std::path::PathBuf,
    lease: Option<crate::lease::Lease>,
    keep: bool,
    _claim: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Partial {
    async fn open(content: &ContentStore, digest: &str) -> Result<Partial> {
        let path = content
            .ingest_root()
            .join(format!("partial-{}", crate::digest::hex_part(digest)));
        let claim = PARTIAL_CLAIMS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(path.clone())
            .or_default()
            .clone();
        let claim = claim.lock_owned().await;
        let lease = content.lease();
        let (file, path) = content.partial_file(&lease, digest)?;
        Ok(Partial {
            file,
            path,
            lease: Some(lease),
            keep: true,
            _claim: Some(claim),
        })
    }

    /// Hash what is on disk: the hasher over the whole file, positioned at its end.
    async fn rehash(&mut self) -> std::result::Result<Hasher, Fail> {
        let file = self.file.try_clone().map_err(io_fail)?;
        tokio::task::spawn_blocking(move || {
            use std::io::{Seek, SeekFrom};
            let mut f = file;
            f.seek(SeekFrom::Start(0))?;
            let mut h = Hasher::new();
            std::io::copy(&mut f, &mut h)?;
            f.seek(SeekFrom::End(0))?;
            Ok::<_, std::io::Error>(h)
        })
        .await
        .map_err(|e| Fail::fatal(format!("hashing a partial download failed: {e}")))?
        .map_err(io_fail)
    }

    /// Drop what is on disk.
    fn truncate(&mut self) -> std::result::Result<(), Fail> {
        use std::io::{Seek, SeekFrom};
        self.file.set_len(0).map_err(io_fail)?;
        self.file.seek(SeekFrom::Start(0)).map_err(io_fail)?;
        Ok(())
    }

    /// Remove the file when this is dropped (done with it).
    fn discard(&mut self) {
        self.keep = false;
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        if self.keep && self.file.metadata().is_ok_and(|m| m.len() > 0) {
            lease.expire_after(PARTIAL_LEASE);
        } else {
            let _ = std::fs::remove_file(&self.path);
            drop(lease);
        }
        // Release the claim, and forget it when no one else waits.
        self._claim.take();
        let mut claims = PARTIAL_CLAIMS.lock().unwrap_or_else(|p| p.into_inner());
        if claims
            .get(&self.path)
            .is_some_and(|c| Arc::strong_count(c) == 1)
        {
            claims.remove(&self.path);
        }
    }
}

fn io_fail(e: std::io::Error) -> Fail {
    Fail::fatal(format!("writing a layer download failed: {e}"))
}

/// Where a `206 Partial Content` answer starts (`Content-Range: bytes N-M/T`).
fn content_range_start(resp: &hyper::Response<hyper::body::Incoming>) -> Option<u64> {
    let v = header(resp, "content-range")?;
    let rest = v.trim().strip_prefix("bytes ")?;
    rest.split('-').next()?.trim().parse().ok()
}

/// One download attempt: bring the compressed blob into its partial file
/// (resuming from what a former attempt left there), verify its digest,
/// then decompress and store the layer from the complete file.
async fn download_once(
    sess: &Session,
    content: &ContentStore,
    path: &str,
    digest: &str,
    size: u64,
    progress: &ProgressSender,
) -> std::result::Result<IngestedLayer, Fail> {
    use std::io::Write;
    let id = short(digest);
    let mut partial = Partial::open(content, digest)
        .await
        .map_err(|e| Fail::fatal(e.message()))?;
    let mut hasher = partial.rehash().await?;
    if size > 0 && hasher.len() > size {
        partial.truncate()?;
        hasher = Hasher::new();
    }
    let url = format!("/v2/{path}/blobs/{digest}");
    loop {
        let offset = hasher.len();
        let complete_on_disk = size > 0 && offset == size;
        if !complete_on_disk {
            let range = format!("bytes={offset}-");
            let headers: &[(&str, &str)] = if offset > 0 {
                &[("Range", range.as_str())]
            } else {
                &[]
            };
            let resp = sess.get(Method::GET, &url, headers).await?;
            let status = resp.status().as_u16();
            match status {
                206 if offset > 0 && content_range_start(&resp) == Some(offset) => {}
                200 => {
                    if offset > 0 {
                        // The server ignored the Range header: start over.
                        partial.truncate()?;
                        hasher = Hasher::new();
                    }
                }
                206 | 416 if offset > 0 => {
                    // Not the range asked for, or nothing past what we
                    // have: start over.
                    partial.truncate()?;
                    hasher = Hasher::new();
                    continue;
                }
                _ if !resp.status().is_success() => return Err(error_response(resp).await),
                _ => {
                    return Err(Fail::fatal(format!(
                        "unexpected status {status} downloading {digest}"
                    )));
                }
            }
            let start = hasher.len();
            let total = header(&resp, "content-length")
                .and_then(|v| v.parse::<u64>().ok())
                .map(|n| n + start)
                .unwrap_or(size);
            let mut body = resp.into_body();
            let mut reported = start;
            while let Some(frame) = body.frame().await {
                let frame = match frame {
                    Ok(f) => f,
                    Err(e) => {
                        // Keep what arrived: the next attempt resumes there.
                        let _ = partial.file.flush();
                        return Err(Fail::transient(super::client::body_error(&e)));
                    }
                };
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                partial.file.write_all(&data).map_err(io_fail)?;
                hasher.update(&data);
                let n = hasher.len();
                if n - reported >= (512 * 1024).min(total / 100).max(1) {
                    reported = n;
                    send(
                        progress,
                        Progress::Bytes {
                            id: id.clone(),
                            action: "Downloading".into(),
                            current: n,
                            total,
                        },
                    );
                }
            }
        }
        send(progress, Progress::item(id.clone(), "Verifying Checksum"));
        let got = std::mem::take(&mut hasher).finish();
        if got == digest {
            break;
        }
        if offset > 0 {
            // The bytes kept from before may be what is wrong: start over.
            partial.truncate()?;
            hasher = Hasher::new();
            continue;
        }
        partial.discard();
        return Err(Fail::fatal(format!(
            "filesystem layer verification failed for digest {digest}"
        )));
    }
    // The compressed blob is complete and verified: store the layer,
    // reporting `Extracting` over the compressed bytes as Docker does.
    send(progress, Progress::item(id.clone(), "Download complete"));
    partial.discard();
    let file = partial.file.try_clone().map_err(io_fail)?;
    let content = content.clone();
    let what = format!("layer {digest}");
    let extracting =
        ExtractProgress::new(progress.clone(), id, file.metadata().map_or(0, |m| m.len()));
    let res = tokio::task::spawn_blocking(move || {
        use std::io::{Seek, SeekFrom};
        let mut f = file;
        f.seek(SeekFrom::Start(0))?;
        let mut reader = ExtractReader {
            inner: f,
            progress: extracting,
        };
        let l = crate::layer::ingest_layer(&content, std::io::BufReader::new(&mut reader), &what)?;
        reader.progress.done();
        Ok(l)
    })
    .await
    .map_err(|e| Fail::fatal(format!("layer ingest failed: {e}")))?;
    drop(partial);
    res.map_err(|e: Error| Fail::fatal(format!("failed to register layer: {e}")))
}

/// `Extracting` progress over the compressed bytes of a layer being
/// stored: like Docker's progress reader, a message every 512 KiB (or 1 %
/// of the total when smaller), and one at the end with `current == total`.
struct ExtractProgress {
    tx: ProgressSender,
    id: String,
    total: u64,
    current: u64,
    reported: u64,
    sent_final: bool,
}

impl ExtractProgress {
    fn new(tx: ProgressSender, id: String, total: u64) -> ExtractProgress {
        ExtractProgress {
            tx,
            id,
            total,
            current: 0,
            reported: 0,
            sent_final: false,
        }
    }

    fn report(&mut self) {
        self.reported = self.current;
        self.sent_final = self.current == self.total;
        send(
            &self.tx,
            Progress::Bytes {
                id: self.id.clone(),
                action: "Extracting".into(),
                current: self.current,
                total: self.total,
            },
        );
    }

    fn advance(&mut self, n: u64) {
        self.current += n;
        let every = (512 * 1024).min(self.total / 100);
        if (n == 0 || self.current - self.reported > every) && !self.sent_final {
            self.report();
        }
    }

    /// The layer is stored: make sure the last message says so.
    fn done(&mut self) {
        if !self.sent_final {
            self.current = self.current.max(self.total);
            self.report();
        }
    }
}

struct ExtractReader<R> {
    inner: R,
    progress: ExtractProgress,
}

impl<R: std::io::Read> std::io::Read for ExtractReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Small reads, as from Docker's gzip reader, so progress has steps.
        let cap = buf.len().min(32 * 1024);
        let n = self.inner.read(&mut buf[..cap])?;
        if !buf.is_empty() {
            self.progress.advance(n as u64);
        }
        Ok(n)
    }
}

/// Download the layer blob `digest` of `repository` again and store it under
/// its DiffID (fsck's repair of a damaged or missing layer). Fails unless the
/// blob decompresses to exactly `diff_id`.
pub(crate) async fn refetch_layer(
    store: &Store,
    repository: &str,
    digest: &str,
    diff_id: &str,
    opts: &PullOptions,
) -> Result<()> {
    let r =
        Reference::parse_normalized_named(repository).map_err(|e| Error::invalid(e.message()))?;
    let scope = format!("repository:{}:pull", r.path());
    let sess = Arc::new(
        Session::open_with(r.domain(), opts.auth.clone(), vec![scope], &opts.registry)
            .await
            .map_err(Fail::into_error)?,
    );
    let desc = Descriptor {
        media_type: String::new(),
        size: 0,
        digest: digest.to_string(),
        platform: None,
    };
    // No DiffIDs: nothing counts as already present, the blob is fetched.
    let got = download_layers(store, &sess, &r, &[desc], &[], opts).await?;
    match got.layers.first() {
        Some(l) if l.diff_id == diff_id => Ok(()),
        Some(l) => Err(Error::corrupt(format!(
            "{repository}@{digest} holds layer {}, not {diff_id}",
            l.diff_id
        ))),
        None => Err(Error::internal("no layer was downloaded")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(os: &str, arch: &str, variant: &str, digest: &str) -> Descriptor {
        Descriptor {
            media_type: MT_SCHEMA2.into(),
            size: 1,
            digest: digest.into(),
            platform: Some(PlatformSpec {
                architecture: arch.into(),
                os: os.into(),
                variant: variant.into(),
            }),
        }
    }

    #[test]
    fn platform_selection() {
        let list = vec![
            d("linux", "arm64", "v8", "a"),
            d("linux", "amd64", "v3", "b"),
            d("linux", "amd64", "", "c"),
            d("linux", "arm", "v7", "e"),
        ];
        for (want, got) in [
            (Some("linux/amd64"), "c"),
            (Some("linux/arm64"), "a"),
            (Some("linux/aarch64"), "a"),
            (Some("linux/arm"), "e"),
            (Some("linux/arm/v6"), "e"),
            (Some("linux/x86_64"), "c"),
        ] {
            assert_eq!(
                select_platform(&list, want).unwrap().digest,
                got,
                "{want:?}"
            );
        }
        assert_eq!(
            select_platform(&list, Some("windows/amd64"))
                .unwrap_err()
                .message(),
            "no matching manifest for windows/amd64 in the manifest list entries"
        );
        assert_eq!(
            select_platform(&list, Some("linux/s390x"))
                .unwrap_err()
                .message(),
            "no matching manifest for linux/s390x in the manifest list entries"
        );
    }
}
