//! Push (spec §5): one tag or all tags of a repository; per layer an
//! existence check (HEAD) and cross-repository mounts from the v2 metadata,
//! else an upload gzip-compressed while streaming (POST, one chunked PATCH,
//! PUT `?digest=`); the config blob; the schema2 manifest; then, in one
//! store write per tag, the local `repo@digest` reference and the
//! `ImagePushed` event.

use super::client::{Auth, Fail, ReqBody, Session, Url, empty, error_response, full, header};
use super::metadata::{MetadataStore, V2Metadata};
use super::pull::parse_repo_reference;
use super::{Progress, ProgressSender, send, short};
use crate::digest::{Hasher, chain_ids, sha256_digest};
use crate::error::{Error, Result};
use crate::event::{Actor, EventBody};
use crate::reference::Reference;
use crate::service::ImageService;
use crate::service::lookup::{self, TagPath};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Method;
use hyper::body::Frame;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Options of a push.
#[derive(Clone, Debug)]
pub struct PushOptions {
    /// Credentials (anonymous when `None`).
    pub auth: Option<Auth>,
    /// Insecure registries and certificates (default: Docker's).
    pub registry: super::tls::RegistryOptions,
    /// Where progress messages go.
    pub progress: ProgressSender,
    /// Layer uploads in flight (Docker: 5).
    pub max_concurrent_uploads: usize,
    /// Tries per layer upload (Docker: 5).
    pub max_upload_attempts: u32,
    /// Retry wait unit: failure k waits `k × retry_delay` (Docker: 5 s).
    pub retry_delay: Duration,
}

impl Default for PushOptions {
    fn default() -> PushOptions {
        PushOptions {
            auth: None,
            registry: super::tls::RegistryOptions::default(),
            progress: None,
            max_concurrent_uploads: 5,
            max_upload_attempts: 5,
            retry_delay: Duration::from_secs(5),
        }
    }
}

/// One pushed tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedTag {
    /// The tag.
    pub tag: String,
    /// The manifest digest.
    pub digest: String,
    /// The manifest size.
    pub size: u64,
}

/// What a push did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushReport {
    /// Lines without id: `The push refers to repository […]`, then per tag
    /// `<tag>: digest: sha256:… size: N`.
    pub lines: Vec<String>,
    /// Per tag.
    pub pushed: Vec<PushedTag>,
    /// Blob digests actually uploaded (layers and configs).
    pub uploaded_blobs: Vec<String>,
    /// Blob digests mounted from other repositories.
    pub mounted_blobs: Vec<String>,
}

const MT_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const MT_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const MT_SCHEMA2: &str = "application/vnd.docker.distribution.manifest.v2+json";

#[derive(Serialize, Clone, Debug)]
struct Desc {
    #[serde(rename = "mediaType")]
    media_type: String,
    size: u64,
    digest: String,
}

#[derive(Serialize)]
struct Manifest<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    config: Desc,
    layers: Vec<Desc>,
}

/// Go's `json.MarshalIndent(m, "", "   ")`.
fn manifest_bytes(config: Desc, layers: Vec<Desc>) -> Vec<u8> {
    let m = Manifest {
        schema_version: 2,
        media_type: MT_SCHEMA2,
        config,
        layers,
    };
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    m.serialize(&mut ser).expect("manifest serializes");
    out
}

struct Shared {
    sess: Session,
    svc: ImageService,
    repo: Reference,
    meta: MetadataStore,
    opts: PushOptions,
    /// DiffID → descriptor, for this push session.
    known: Mutex<BTreeMap<String, Desc>>,
    uploaded: Mutex<Vec<String>>,
    mounted: Mutex<Vec<String>>,
}

/// Push `reference` (a tag, or a bare repository for all its tags).
pub async fn push(
    svc: &ImageService,
    actor: &Actor,
    reference: &str,
    opts: PushOptions,
) -> Result<PushReport> {
    let r = parse_repo_reference(reference)?;
    let store = svc.store();
    let name = r.name();
    let first = format!("The push refers to repository [{name}]");
    send(&opts.progress, Progress::Status(first.clone()));
    let mut report = PushReport {
        lines: vec![first],
        pushed: Vec::new(),
        uploaded_blobs: Vec::new(),
        mounted_blobs: Vec::new(),
    };
    let refs: Vec<(String, String)> = store
        .read(|t| t.refs_with_prefix(&name))?
        .into_iter()
        .filter(|(k, _)| k[name.len()..].starts_with([':', '@']))
        .collect();
    if refs.is_empty() {
        return Err(Error::not_found(format!(
            "An image does not exist locally with the tag: {}",
            r.familiar_name()
        )));
    }
    if r.digest().is_some() {
        return Err(Error::invalid("cannot push a digest reference"));
    }
    let tags: Vec<(Reference, String)> = match r.tag() {
        Some(_) => {
            let key = r.canonical_string();
            match refs.iter().find(|(k, _)| *k == key) {
                Some((_, id)) => vec![(r.clone(), id.clone())],
                None => {
                    return Err(Error::not_found(format!(
                        "tag does not exist: {}",
                        r.familiar_string()
                    )));
                }
            }
        }
        None => refs
            .iter()
            .filter(|(k, _)| k[name.len()..].starts_with(':'))
            .map(|(k, id)| {
                let t = &k[name.len() + 1..];
                Ok((
                    r.with_tag(t).map_err(|e| Error::internal(e.message()))?,
                    id.clone(),
                ))
            })
            .collect::<Result<_>>()?,
    };
    if tags.is_empty() {
        return Err(Error::not_found(format!(
            "no tags to push for {}",
            r.familiar_name()
        )));
    }
    let scope = format!("repository:{}:push,pull", r.path());
    let sess = Session::open_with(r.domain(), opts.auth.clone(), vec![scope], &opts.registry)
        .await
        .map_err(Fail::into_error)?;
    let shared = Arc::new(Shared {
        sess,
        svc: svc.clone(),
        repo: r.trim_named(),
        meta: MetadataStore::new(svc),
        opts: opts.clone(),
        known: Mutex::new(BTreeMap::new()),
        uploaded: Mutex::new(Vec::new()),
        mounted: Mutex::new(Vec::new()),
    });
    for (tag_ref, id) in tags {
        let (pushed, meta_items) = push_tag(&shared, &tag_ref, &id).await?;
        let line = format!(
            "{}: digest: {} size: {}",
            pushed.tag, pushed.digest, pushed.size
        );
        send(&opts.progress, Progress::Status(line.clone()));
        send(
            &opts.progress,
            Progress::PushResult {
                tag: pushed.tag.clone(),
                digest: pushed.digest.clone(),
                size: pushed.size,
            },
        );
        report.lines.push(line);
        // The local digest reference, as Docker adds it.
        let digest_ref = tag_ref
            .trim_named()
            .with_digest(&pushed.digest)
            .map_err(|e| Error::internal(e.message()))?;
        // One write: the blobs this tag's manifest names (normally recorded
        // already, as each layer was pushed), the digest reference, and the
        // push itself.
        let (svc2, actor2, id2) = (svc.clone(), actor.clone(), id.clone());
        let pushed_event = EventBody::ImagePushed {
            reference: tag_ref.canonical_string(),
            image: id.clone(),
            digest: pushed.digest.clone(),
            repository: name.clone(),
        };
        tokio::task::spawn_blocking(move || {
            svc2.store().write(&actor2, |w| {
                super::metadata::emit_all(w, &meta_items)?;
                if w.tables().has_image(&id2)?
                    && w.tables()
                        .resolve(&digest_ref.canonical_string())?
                        .is_none()
                {
                    lookup::add_reference(w, &digest_ref, &id2, TagPath::Load)?;
                }
                w.emit(pushed_event)
            })
        })
        .await
        .map_err(|e| Error::internal(format!("worker failed: {e}")))??;
        report.pushed.push(pushed);
    }
    report.uploaded_blobs = shared
        .uploaded
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default();
    report.mounted_blobs = shared.mounted.lock().map(|v| v.clone()).unwrap_or_default();
    Ok(report)
}

/// Push one tag: what was pushed, and the `(DiffID, blob)` metadata of its layers.
async fn push_tag(
    shared: &Arc<Shared>,
    tag_ref: &Reference,
    id: &str,
) -> Result<(PushedTag, Vec<(String, V2Metadata)>)> {
    let tag = tag_ref.tag().unwrap_or("latest").to_string();
    let id_s = id.to_string();
    let config = shared
        .svc
        .store()
        .read(move |t| t.config(&id_s))?
        .ok_or_else(|| Error::not_found(format!("No such image: {id}")))?;
    let cfg: serde_json::Value = serde_json::from_slice(&config)
        .map_err(|e| Error::internal(format!("invalid image config: {e}")))?;
    let diff_ids: Vec<String> = cfg
        .pointer("/rootfs/diff_ids")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    let chains = chain_ids(&diff_ids);
    let sizes: Vec<u64> = shared.svc.store().read(|t| {
        chains
            .iter()
            .map(|c| {
                t.layer(c)?
                    .map(|r| r.diff_size)
                    .ok_or_else(|| Error::not_found(format!("layer does not exist: {c}")))
            })
            .collect()
    })?;
    for d in diff_ids.iter().rev() {
        send(&shared.opts.progress, Progress::item(short(d), "Preparing"));
    }
    // Upload (top first, as Docker schedules them), ≤ N at once, one per DiffID.
    let sem = Arc::new(tokio::sync::Semaphore::new(
        shared.opts.max_concurrent_uploads.max(1),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    let mut seen = Vec::new();
    for (i, d) in diff_ids.iter().enumerate().rev() {
        if seen.contains(d) {
            continue;
        }
        seen.push(d.clone());
        let (shared, sem, d, size) = (shared.clone(), sem.clone(), d.clone(), sizes[i]);
        tasks.spawn(async move {
            let permit = match sem.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    send(&shared.opts.progress, Progress::item(short(&d), "Waiting"));
                    sem.acquire_owned()
                        .await
                        .map_err(|_| Error::internal("upload queue closed"))?
                }
            };
            let res = push_layer(&shared, &d, size).await;
            drop(permit);
            res.map(|desc| (d, desc))
        });
    }
    let mut descs: BTreeMap<String, Desc> = BTreeMap::new();
    let mut first_err = None;
    while let Some(j) = tasks.join_next().await {
        match j {
            Ok(Ok((d, desc))) => {
                descs.insert(d, desc);
            }
            Ok(Err(e)) => {
                if first_err.is_none() {
                    first_err = Some(e);
                    tasks.abort_all();
                }
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => {
                first_err.get_or_insert(Error::internal(format!("upload task failed: {e}")));
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    // The config blob.
    let path = shared.repo.path().to_string();
    let exists = blob_exists(&shared.sess, &path, id)
        .await
        .map_err(Fail::into_error)?;
    if exists.is_none() {
        upload_bytes(&shared.sess, &path, id, Bytes::from(config.clone()))
            .await
            .map_err(Fail::into_error)?;
        if let Ok(mut u) = shared.uploaded.lock() {
            u.push(id.to_string());
        }
    }
    let layers: Vec<Desc> = diff_ids
        .iter()
        .map(|d| descs.get(d).cloned().expect("every layer has a descriptor"))
        .collect();
    let manifest = manifest_bytes(
        Desc {
            media_type: MT_CONFIG.into(),
            size: config.len() as u64,
            digest: id.to_string(),
        },
        layers,
    );
    let digest = sha256_digest(&manifest);
    let size = manifest.len() as u64;
    let url = shared.sess.url(&format!("/v2/{path}/manifests/{tag}"));
    let resp = shared
        .sess
        .send(
            Method::PUT,
            url,
            vec![
                ("Content-Type".into(), MT_SCHEMA2.into()),
                ("Content-Length".into(), size.to_string()),
            ],
            full(manifest),
        )
        .await
        .map_err(Fail::into_error)?;
    if !resp.status().is_success() {
        return Err(error_response(resp).await.into_error());
    }
    match header(&resp, "docker-content-digest") {
        Some(d) if d == digest => {}
        Some(d) if crate::reference::validate_digest(&d).is_ok() => {
            return Err(Error::internal(format!(
                "the registry stored the manifest under {d}, expected {digest}"
            )));
        }
        _ => {
            return Err(Error::internal(
                "registry did not return a valid Docker-Content-Digest for the manifest",
            ));
        }
    }
    let meta_items = diff_ids
        .iter()
        .filter_map(|d| descs.get(d).map(|desc| (d, desc)))
        .map(|(d, desc)| {
            (
                d.clone(),
                V2Metadata {
                    digest: desc.digest.clone(),
                    source_repository: shared.repo.name(),
                    hmac: String::new(),
                },
            )
        })
        .collect();
    Ok((PushedTag { tag, digest, size }, meta_items))
}

/// `HEAD /v2/<path>/blobs/<digest>`: the size when it exists.
async fn blob_exists(
    sess: &Session,
    path: &str,
    digest: &str,
) -> std::result::Result<Option<u64>, Fail> {
    let resp = sess
        .get(Method::HEAD, &format!("/v2/{path}/blobs/{digest}"), &[])
        .await?;
    let s = resp.status().as_u16();
    if s == 404 {
        return Ok(None);
    }
    if !resp.status().is_success() {
        return Err(error_response(resp).await);
    }
    Ok(Some(
        header(&resp, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    ))
}

fn record(shared: &Shared, diff_id: &str, digest: &str) {
    let _ = shared.meta.add_all(&[(
        diff_id.to_string(),
        V2Metadata {
            digest: digest.to_string(),
            source_repository: shared.repo.name(),
            hmac: String::new(),
        },
    )]);
}

async fn push_layer(shared: &Arc<Shared>, diff_id: &str, diff_size: u64) -> Result<Desc> {
    let id = short(diff_id);
    let progress = &shared.opts.progress;
    if let Some(d) = shared
        .known
        .lock()
        .ok()
        .and_then(|k| k.get(diff_id).cloned())
    {
        send(progress, Progress::item(id, "Layer already exists"));
        return Ok(d);
    }
    let path = shared.repo.path().to_string();
    let repo_name = shared.repo.name();
    let domain = shared.repo.domain().to_string();
    let entries = shared.meta.get_metadata(diff_id);
    let desc = |digest: &str, size: u64| Desc {
        media_type: MT_LAYER_GZIP.into(),
        size,
        digest: digest.to_string(),
    };
    // One existence check: this repository's newest entry first, else any.
    let check = entries
        .iter()
        .rev()
        .find(|e| e.source_repository == repo_name)
        .or_else(|| entries.last());
    if let Some(e) = check {
        match blob_exists(&shared.sess, &path, &e.digest).await {
            Ok(Some(size)) => {
                record(shared, diff_id, &e.digest);
                send(progress, Progress::item(id, "Layer already exists"));
                let d = desc(&e.digest, size);
                remember(shared, diff_id, &d);
                return Ok(d);
            }
            Ok(None) if e.source_repository == repo_name => {
                let _ = shared.meta.remove(diff_id, e);
            }
            Ok(None) => {}
            Err(f) => return Err(f.into_error()),
        }
    }
    // Cross-repository mounts: same registry, another repository, newest first.
    let mut session_location: Option<Url> = None;
    let candidates: Vec<&V2Metadata> = entries
        .iter()
        .rev()
        .filter(|e| {
            e.source_repository != repo_name
                && e.source_repository
                    .split_once('/')
                    .is_some_and(|(d, _)| d == domain)
        })
        .take(3)
        .collect();
    for c in candidates {
        let from = &c.source_repository[domain.len() + 1..];
        let url = shared
            .sess
            .url(&format!("/v2/{path}/blobs/uploads/"))
            .with_query("from", from)
            .with_query("mount", &c.digest);
        let resp = shared
            .sess
            .send(
                Method::POST,
                url.clone(),
                vec![("Content-Length".into(), "0".into())],
                empty(),
            )
            .await
            .map_err(Fail::into_error)?;
        match resp.status().as_u16() {
            201 => {
                let size = blob_exists(&shared.sess, &path, &c.digest)
                    .await
                    .map_err(Fail::into_error)?
                    .unwrap_or(0);
                record(shared, diff_id, &c.digest);
                send(progress, Progress::item(id, format!("Mounted from {from}")));
                if let Ok(mut m) = shared.mounted.lock() {
                    m.push(c.digest.clone());
                }
                let d = desc(&c.digest, size);
                remember(shared, diff_id, &d);
                return Ok(d);
            }
            202 => {
                if let Some(loc) = header(&resp, "location") {
                    if let Some(old) = session_location.take() {
                        let _ = shared.sess.send(Method::DELETE, old, vec![], empty()).await;
                    }
                    session_location = url.join(&loc).ok();
                }
                let _ = shared.meta.remove(diff_id, c);
            }
            _ => {
                let _ = shared.meta.remove(diff_id, c);
            }
        }
    }
    // Upload, retried.
    let mut failures = 0u32;
    loop {
        let res = upload_layer(shared, diff_id, diff_size, session_location.take()).await;
        match res {
            Ok((digest, size)) => {
                record(shared, diff_id, &digest);
                send(progress, Progress::item(id, "Pushed"));
                if let Ok(mut u) = shared.uploaded.lock() {
                    u.push(digest.clone());
                }
                let d = desc(&digest, size);
                remember(shared, diff_id, &d);
                return Ok(d);
            }
            Err(f) if f.retry && failures + 1 < shared.opts.max_upload_attempts => {
                failures += 1;
                let wait = shared.opts.retry_delay * failures;
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                let step = wait / secs as u32;
                for s in (1..=secs).rev() {
                    let unit = if s == 1 { "second" } else { "seconds" };
                    send(
                        progress,
                        Progress::item(id.clone(), format!("Retrying in {s} {unit}")),
                    );
                    tokio::time::sleep(step).await;
                }
            }
            Err(f) => return Err(f.into_error()),
        }
    }
}

fn remember(shared: &Shared, diff_id: &str, d: &Desc) {
    if let Ok(mut k) = shared.known.lock() {
        k.insert(diff_id.to_string(), d.clone());
    }
}

/// `POST /v2/<path>/blobs/uploads/`: the upload location.
async fn start_upload(sess: &Session, path: &str) -> std::result::Result<Url, Fail> {
    let url = sess.url(&format!("/v2/{path}/blobs/uploads/"));
    let resp = sess
        .send(
            Method::POST,
            url.clone(),
            vec![("Content-Length".into(), "0".into())],
            empty(),
        )
        .await?;
    if resp.status().as_u16() != 202 {
        return Err(error_response(resp).await);
    }
    let loc = header(&resp, "location")
        .ok_or_else(|| Fail::fatal("registry did not return an upload location"))?;
    url.join(&loc).map_err(|e| Fail::fatal(e.message()))
}

/// PATCH `body` to `location`, then PUT `?digest=`.
async fn finish_upload(
    sess: &Session,
    location: Url,
    body: ReqBody,
    digest_of: impl std::future::Future<Output = std::result::Result<String, Fail>>,
) -> std::result::Result<String, Fail> {
    let resp = sess
        .send(Method::PATCH, location.clone(), vec![], body)
        .await?;
    if resp.status().as_u16() != 202 {
        return Err(error_response(resp).await);
    }
    let next = match header(&resp, "location") {
        Some(l) => location.join(&l).map_err(|e| Fail::fatal(e.message()))?,
        None => location,
    };
    let digest = digest_of.await?;
    let put = next.with_query("digest", &digest);
    let resp = sess
        .send(
            Method::PUT,
            put,
            vec![("Content-Length".into(), "0".into())],
            empty(),
        )
        .await?;
    if resp.status().as_u16() != 201 {
        return Err(error_response(resp).await);
    }
    Ok(digest)
}

async fn upload_bytes(
    sess: &Session,
    path: &str,
    digest: &str,
    bytes: Bytes,
) -> std::result::Result<(), Fail> {
    let loc = start_upload(sess, path).await?;
    let d = digest.to_string();
    finish_upload(sess, loc, full(bytes), async move { Ok(d) }).await?;
    Ok(())
}

/// Upload the layer blob `diff_id` gzip-compressed while streaming: the
/// compressed digest and size.
async fn upload_layer(
    shared: &Arc<Shared>,
    diff_id: &str,
    diff_size: u64,
    location: Option<Url>,
) -> std::result::Result<(String, u64), Fail> {
    let path = shared.repo.path().to_string();
    let location = match location {
        Some(l) => l,
        None => start_upload(&shared.sess, &path).await?,
    };
    let file_path = shared.svc.store().content().path(diff_id);
    let (tx, rx) =
        tokio::sync::mpsc::channel::<std::result::Result<Frame<Bytes>, std::io::Error>>(2);
    let progress = shared.opts.progress.clone();
    let id = short(diff_id);
    // Reading, compressing and hashing are CPU work: a blocking thread per
    // upload, feeding the request body through the channel.
    let producer = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = std::fs::File::open(&file_path)?;
        let mut gz = super::gzip::ChunkedGzip::new();
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; super::gzip::CHUNK];
        let mut read = 0u64;
        let mut reported = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                gz.finish();
            } else {
                gz.write(&buf[..n]);
                read += n as u64;
                if read - reported >= 512 * 1024 || reported == 0 {
                    reported = read;
                    send(
                        &progress,
                        Progress::Bytes {
                            id: id.clone(),
                            action: "Pushing".into(),
                            current: read,
                            total: diff_size,
                        },
                    );
                }
            }
            let out = gz.take_output();
            if !out.is_empty() {
                hasher.update(&out);
                if tx.blocking_send(Ok(Frame::data(Bytes::from(out)))).is_err() {
                    return Err(std::io::Error::other("the upload was interrupted"));
                }
            }
            if n == 0 {
                break;
            }
        }
        drop(tx);
        let size = hasher.len();
        Ok::<_, std::io::Error>((hasher.finish(), size))
    });
    let body =
        http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)).boxed();
    let result = Arc::new(Mutex::new(None));
    let result2 = result.clone();
    let digest_of = async move {
        let r = producer
            .await
            .map_err(|e| Fail::fatal(format!("compression failed: {e}")))?
            .map_err(|e| Fail::transient(format!("reading layer blob: {e}")))?;
        if let Ok(mut g) = result2.lock() {
            *g = Some(r.1);
        }
        Ok(r.0)
    };
    let digest = finish_upload(&shared.sess, location, body, digest_of).await?;
    let size = result.lock().ok().and_then(|g| *g).unwrap_or(0);
    Ok((digest, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_is_go_indented() {
        let m = manifest_bytes(
            Desc {
                media_type: MT_CONFIG.into(),
                size: 2,
                digest: "sha256:aa".into(),
            },
            vec![Desc {
                media_type: MT_LAYER_GZIP.into(),
                size: 3,
                digest: "sha256:bb".into(),
            }],
        );
        let want = "{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n   \"config\": {\n      \"mediaType\": \"application/vnd.docker.container.image.v1+json\",\n      \"size\": 2,\n      \"digest\": \"sha256:aa\"\n   },\n   \"layers\": [\n      {\n         \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n         \"size\": 3,\n         \"digest\": \"sha256:bb\"\n      }\n   ]\n}";
        assert_eq!(String::from_utf8(m).unwrap(), want);
    }
}
