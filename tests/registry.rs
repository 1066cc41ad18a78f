//! Pull, push, login and search against registries: Debian's
//! `docker-registry` (distribution 2.8) started once per test binary on
//! 127.0.0.1 (plain, and with htpasswd auth), tiny in-test registries that
//! lie, and the private dockerd for interop. All traffic stays on 127.0.0.1.

mod common;
#[path = "common/dockerd.rs"]
mod dockerd;
#[path = "common/registry.rs"]
mod registry_harness;
use registry_harness::*;

use common::builder::*;
use common::*;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use strata::distribution::{Auth, Progress, PullOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

// ---------------------------------------------------------------- harness

fn collector() -> (
    tokio::sync::mpsc::UnboundedSender<Progress>,
    tokio::sync::mpsc::UnboundedReceiver<Progress>,
) {
    tokio::sync::mpsc::unbounded_channel()
}

fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Progress>) -> Vec<Progress> {
    let mut out = Vec::new();
    while let Ok(p) = rx.try_recv() {
        out.push(p);
    }
    out
}

/// Item messages as `id: status` lines (byte progress dropped).
fn item_lines(ps: &[Progress]) -> Vec<String> {
    ps.iter()
        .filter(|p| matches!(p, Progress::Item { .. }))
        .filter_map(|p| p.plain_line())
        .collect()
}

fn fast_pull(progress: Option<tokio::sync::mpsc::UnboundedSender<Progress>>) -> PullOptions {
    PullOptions {
        progress,
        retry_delay: Duration::from_millis(20),
        ..PullOptions::default()
    }
}

async fn repo_tags_digests(svc: &strata::ImageService, name: &str) -> (Vec<String>, Vec<String>) {
    let i = svc.lookup_image(name).await.unwrap();
    (i.repo_tags.clone(), i.repo_digests.clone())
}

fn two_layer_image(tag: &str, seed: &str) -> Img {
    base(
        vec![
            layer(&[("etc/base", seed.as_bytes()), ("bin/tool", &[7u8; 3000])]),
            layer(&[("app/data", format!("{seed}-top").as_bytes())]),
        ],
        1_650_000_000,
        &[("org.example", seed)],
        &[tag],
    )
}

// ---------------------------------------------------------------- real registry

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_by_tag_and_digest_round_trips() {
    let Some(reg) = plain_registry() else { return };
    let repo = format!("{}/rt/img", reg.host);
    let tag = format!("{repo}:1");
    let img = two_layer_image(&tag, "roundtrip");
    let (_a, svc_a) = service();
    load_imgs(&svc_a, &[&img]).await;

    // First push: every blob uploaded.
    let (tx, mut rx) = collector();
    let report = svc_a.push_image(&tag, None, Some(tx)).await.unwrap();
    let pushed = &report.pushed[0];
    assert_eq!(
        report.lines,
        [
            format!("The push refers to repository [{repo}]"),
            format!("1: digest: {} size: {}", pushed.digest, pushed.size),
        ]
    );
    assert_eq!(report.uploaded_blobs.len(), 3, "{report:?}");
    let mut items = item_lines(&drain(&mut rx));
    items.sort();
    let l0 = &sha(&img.layers[0])[7..19];
    let l1 = &sha(&img.layers[1])[7..19];
    let mut want = vec![
        format!("{l0}: Preparing"),
        format!("{l1}: Preparing"),
        format!("{l0}: Pushed"),
        format!("{l1}: Pushed"),
    ];
    want.sort();
    assert_eq!(items, want);
    let digest_ref = format!("{repo}@{}", pushed.digest);
    assert_eq!(
        repo_tags_digests(&svc_a, &tag).await,
        (vec![tag.clone()], vec![digest_ref.clone()])
    );
    assert_verified(&svc_a);

    // Second push: nothing uploaded, same digest.
    let (tx, mut rx) = collector();
    let again = svc_a.push_image(&tag, None, Some(tx)).await.unwrap();
    assert_eq!(again.lines, report.lines);
    assert_eq!(again.uploaded_blobs, Vec::<String>::new());
    let mut items = item_lines(&drain(&mut rx));
    items.sort();
    let mut want = vec![
        format!("{l0}: Preparing"),
        format!("{l1}: Preparing"),
        format!("{l0}: Layer already exists"),
        format!("{l1}: Layer already exists"),
    ];
    want.sort();
    assert_eq!(items, want);

    // Pull by tag into a fresh store.
    let (_b, svc_b) = service();
    let (tx, mut rx) = collector();
    let pulled = svc_b
        .pull_image_with(&tag, fast_pull(Some(tx)))
        .await
        .unwrap();
    assert_eq!(
        pulled.lines,
        [
            format!("Digest: {}", pushed.digest),
            format!("Status: Downloaded newer image for {tag}"),
        ]
    );
    assert_eq!(pulled.images[0].image_id, img.id());
    let progress = drain(&mut rx);
    assert_eq!(
        progress.first().and_then(|p| p.plain_line()),
        Some("1: Pulling from rt/img".to_string())
    );
    assert_eq!(
        svc_b.get_image(&tag).await.unwrap(),
        img.id(),
        "same image ID"
    );
    assert_eq!(
        repo_tags_digests(&svc_b, &tag).await,
        (vec![tag.clone()], vec![digest_ref.clone()])
    );
    assert_verified(&svc_b);

    // Again: up to date; only the pull itself is recorded.
    let head = svc_b.store().head().unwrap();
    let again = svc_b.pull_image_with(&tag, fast_pull(None)).await.unwrap();
    assert_eq!(
        again.lines,
        [
            format!("Digest: {}", pushed.digest),
            format!("Status: Image is up to date for {tag}"),
        ]
    );
    let after = svc_b.store().head().unwrap();
    assert_eq!(after.next_seq, head.next_seq + 1);
    let written = svc_b.store().events(head.next_seq, head.next_seq).unwrap();
    assert_eq!(written[0].body.kind(), "image-pulled");

    // Pull by digest into another fresh store: digest reference only.
    let (_c, svc_c) = service();
    let by_digest = svc_c
        .pull_image_with(&digest_ref, fast_pull(None))
        .await
        .unwrap();
    assert_eq!(
        by_digest.lines,
        [
            format!("Digest: {}", pushed.digest),
            format!("Status: Downloaded newer image for {digest_ref}"),
        ]
    );
    assert_eq!(
        repo_tags_digests(&svc_c, &digest_ref).await,
        (vec![], vec![digest_ref.clone()])
    );
    assert_eq!(svc_c.get_image(&digest_ref).await.unwrap(), img.id());
    assert_verified(&svc_c);

    // The pulled layers are the original bytes (DiffIDs verified against the config).
    let exported = svc_c.lookup_image(&digest_ref).await.unwrap();
    assert_eq!(
        exported.root_fs.layers,
        img.layers.iter().map(|l| sha(l)).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_all_tags_then_pull_all_tags() {
    let Some(reg) = plain_registry() else { return };
    let repo = format!("{}/all/tags", reg.host);
    let a = two_layer_image(&format!("{repo}:a"), "tag-a");
    let b = two_layer_image(&format!("{repo}:b"), "tag-b");
    let (_d, svc) = service();
    load_imgs(&svc, &[&a, &b]).await;
    let report = svc.push_image(&repo, None, None).await.unwrap();
    let tags: Vec<&str> = report.pushed.iter().map(|p| p.tag.as_str()).collect();
    assert_eq!(tags, ["a", "b"]);
    assert_eq!(report.lines.len(), 3);

    let (_e, fresh) = service();
    let pulled = fresh.pull_image_with(&repo, fast_pull(None)).await.unwrap();
    // Tags come in the registry's order.
    let mut lines = pulled.lines.clone();
    lines[..2].sort();
    let mut want = vec![
        format!("Digest: {}", report.pushed[0].digest),
        format!("Digest: {}", report.pushed[1].digest),
    ];
    want.sort();
    want.push(format!("Status: Downloaded newer image for {repo}"));
    assert_eq!(lines, want);
    assert_eq!(fresh.get_image(&format!("{repo}:a")).await.unwrap(), a.id());
    assert_eq!(fresh.get_image(&format!("{repo}:b")).await.unwrap(), b.id());
    assert_verified(&fresh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_downloads_only_missing_layers() {
    let Some(reg) = plain_registry() else { return };
    let repo = format!("{}/partial/img", reg.host);
    let bottom = layer(&[("shared", b"the shared bottom layer")]);
    let top = layer(&[("only-top", b"only in the child")]);
    let parent = base(vec![bottom.clone()], 1_650_000_000, &[], &["local/base:1"]);
    let child_img = child(
        &parent,
        Some(top.clone()),
        1_650_000_100,
        &[],
        &[&format!("{repo}:2")],
    );
    let (_a, src) = service();
    load_imgs(&src, &[&parent, &child_img]).await;
    src.push_image(&format!("{repo}:2"), None, None)
        .await
        .unwrap();

    let (_b, dst) = service();
    load_imgs(&dst, &[&parent]).await;
    let (tx, mut rx) = collector();
    let pulled = dst
        .pull_image_with(&format!("{repo}:2"), fast_pull(Some(tx)))
        .await
        .unwrap();
    assert_eq!(pulled.images[0].image_id, child_img.id());
    assert_eq!(pulled.images[0].downloaded_blobs.len(), 1);
    let items = item_lines(&drain(&mut rx));
    let already: Vec<&String> = items
        .iter()
        .filter(|l| l.ends_with("Already exists"))
        .collect();
    assert_eq!(already.len(), 1, "{items:?}");
    let downloaded = &pulled.images[0].downloaded_blobs[0];
    assert!(
        items.contains(&format!("{}: Pull complete", &downloaded[7..19])),
        "{items:?}"
    );
    assert_verified(&dst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_good_and_bad_credentials() {
    let Some(reg) = auth_registry() else { return };
    let repo = format!("{}/auth/img", reg.host);
    let tag = format!("{repo}:1");
    let img = two_layer_image(&tag, "auth");
    let (_a, svc) = service();
    load_imgs(&svc, &[&img]).await;
    let good = Auth::basic(USER, PASS);
    let bad = Auth::basic(USER, "wrong");

    let err = svc.push_image(&tag, None, None).await.unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "Post \"http://{}/v2/auth/img/blobs/uploads/\": no basic auth credentials",
            reg.host
        )
    );
    let err = svc
        .push_image(&tag, Some(bad.clone()), None)
        .await
        .unwrap_err();
    assert_eq!(err.message(), "unauthorized: authentication required");
    svc.push_image(&tag, Some(good.clone()), None)
        .await
        .unwrap();

    let (_b, fresh) = service();
    let err = fresh
        .pull_image_with(&tag, fast_pull(None))
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "Head \"http://{}/v2/auth/img/manifests/1\": no basic auth credentials",
            reg.host
        )
    );
    let err = fresh
        .pull_image_with(
            &tag,
            PullOptions {
                auth: Some(bad.clone()),
                ..fast_pull(None)
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.message(), "unauthorized: authentication required");
    assert_eq!(fresh.count_images().await.unwrap(), 0);
    fresh
        .pull_image_with(
            &tag,
            PullOptions {
                auth: Some(good.clone()),
                ..fast_pull(None)
            },
        )
        .await
        .unwrap();
    assert_eq!(fresh.get_image(&tag).await.unwrap(), img.id());
    assert_verified(&fresh);

    // Login.
    let ok = strata::distribution::login(&reg.host, &good).await.unwrap();
    assert_eq!(ok.status, "Login Succeeded");
    let err = strata::distribution::login(&reg.host, &bad)
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
            reg.host
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_from_a_real_registry() {
    let Some(reg) = plain_registry() else { return };
    let (_d, svc) = service();
    let missing = format!("{}/nonexist:1", reg.host);
    let err = svc
        .pull_image_with(&missing, fast_pull(None))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.message().to_string()),
        (
            strata::ErrorKind::NotFound,
            format!("manifest for {missing} not found: manifest unknown: manifest unknown")
        )
    );
    let port = free_port();
    let err = svc
        .pull_image_with(&format!("127.0.0.1:{port}/nothere:1"), fast_pull(None))
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "Get \"http://127.0.0.1:{port}/v2/\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        )
    );
    let err = svc
        .push_image(&format!("{}/never/pushed:1", reg.host), None, None)
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "An image does not exist locally with the tag: {}/never/pushed",
            reg.host
        )
    );
    let err = svc
        .push_image(
            &format!("{}/x@sha256:{}", reg.host, "a".repeat(64)),
            None,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "An image does not exist locally with the tag: {}/x",
            reg.host
        )
    );
    let err = svc
        .pull_image("scratch", None, None, None)
        .await
        .unwrap_err();
    assert_eq!(err.message(), "'scratch' is a reserved name");
    // Registry 2.8 has no v1 search.
    let err = svc
        .search_registry_for_images(
            &format!("{}/test", reg.host),
            None,
            &strata::Filters::new(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.message(), "Unexpected status code 404");
    assert_verified(&svc);
}

// ---------------------------------------------------------------- lying registries

/// A raw HTTP answer.
fn http(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n").into_bytes();
    let mut has_len = false;
    for (k, v) in headers {
        has_len |= k.eq_ignore_ascii_case("content-length");
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if !has_len {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

type Handler = dyn Fn(&str, &str, usize, &str) -> Vec<u8> + Send + Sync;

/// A tiny HTTP server on 127.0.0.1: `handler(method, path, nth request to
/// that method+path, request head)` returns the raw response bytes.
/// (Former doc:
/// that method+path)` returns the raw response bytes.
struct FakeRegistry {
    host: String,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn fake_registry(handler: Arc<Handler>) -> FakeRegistry {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (handler, seen, counts) = (handler.clone(), seen2.clone(), counts.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if buf.first() == Some(&0x16) {
                        // A TLS hello (the client tries https first on a
                        // loopback registry): answer as a plain HTTP server does.
                        let _ = sock
                            .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                            .await;
                        return;
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let mut parts = head.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("").to_string();
                let key = format!("{method} {path}");
                let n = {
                    let mut c = counts.lock().unwrap();
                    let e = c.entry(key.clone()).or_insert(0);
                    *e += 1;
                    *e
                };
                seen.lock().unwrap().push(key);
                let mut resp = handler(&method, &path, n, &head);
                if method == "HEAD"
                    && let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n")
                {
                    resp.truncate(end + 4);
                }
                let _ = sock.write_all(&resp).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    FakeRegistry { host, seen }
}

/// An image as a registry serves it: gzip layers, config, schema2 manifest.
#[derive(Clone)]
struct Served {
    img: Img,
    blobs: HashMap<String, Vec<u8>>,
    manifest: Vec<u8>,
    layer_digests: Vec<String>,
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn serve(img: Img) -> Served {
    let mut blobs = HashMap::new();
    let mut layers = Vec::new();
    let mut layer_digests = Vec::new();
    for l in &img.layers {
        let gz = gzip(l);
        let d = sha(&gz);
        layers.push(serde_json::json!({
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": gz.len(), "digest": d,
        }));
        layer_digests.push(d.clone());
        blobs.insert(d, gz);
    }
    blobs.insert(img.id(), img.config.clone());
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": img.config.len(), "digest": img.id()},
        "layers": layers,
    }))
    .unwrap();
    Served {
        img,
        blobs,
        manifest,
        layer_digests,
    }
}

const MT_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Serve `s` honestly at repository `lie/img`, tag `1`, except where `twist`
/// answers first.
fn honest(
    s: &Served,
    twist: impl Fn(&str, &str, usize) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> Arc<Handler> {
    let s = s.clone();
    Arc::new(move |method: &str, path: &str, n: usize, _head: &str| {
        if let Some(r) = twist(method, path, n) {
            return r;
        }
        let api = (
            "Docker-Distribution-Api-Version",
            "registry/2.0".to_string(),
        );
        if path == "/v2/" {
            return http("200 OK", &[api], b"{}");
        }
        let md = sha(&s.manifest);
        if path == "/v2/lie/img/manifests/1" || path == format!("/v2/lie/img/manifests/{md}") {
            return http(
                "200 OK",
                &[
                    api,
                    ("Content-Type", MT_V2.to_string()),
                    ("Docker-Content-Digest", md),
                ],
                &s.manifest,
            );
        }
        if let Some(d) = path.strip_prefix("/v2/lie/img/blobs/")
            && let Some(b) = s.blobs.get(d)
        {
            return http("200 OK", &[("Docker-Content-Digest", d.to_string())], b);
        }
        http(
            "404 Not Found",
            &[("Content-Type", "application/json".to_string())],
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":null}]}"#,
        )
    })
}

/// Pull from a lying registry and check the error and that the store is untouched.
async fn expect_clean_failure(handler: Arc<Handler>, reference: &str, want: &str) {
    let fake = fake_registry(handler).await;
    let (_d, svc) = service();
    let head = svc.store().head().unwrap();
    let err = svc
        .pull_image_with(&format!("{}/{reference}", fake.host), fast_pull(None))
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        want.replace("HOST", &fake.host),
        "requests: {:?}",
        fake.seen.lock().unwrap()
    );
    assert_eq!(svc.store().head().unwrap(), head, "nothing written");
    assert_eq!(svc.count_images().await.unwrap(), 0);
    assert_verified(&svc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_registries_give_clear_errors_and_write_nothing() {
    let s = serve(two_layer_image("lie/img:1", "liar"));
    let md = sha(&s.manifest);
    let l0 = s.layer_digests[0].clone();
    let cfg = s.img.id();

    // Wrong blob bytes.
    let bad = l0.clone();
    let h = honest(&s, move |_, p, _| {
        p.ends_with(&bad)
            .then(|| http("200 OK", &[], &gzip(&layer(&[("evil", b"x")]))))
    });
    expect_clean_failure(
        h,
        "lie/img:1",
        &format!("filesystem layer verification failed for digest {l0}"),
    )
    .await;

    // Wrong manifest bytes when pulling by digest.
    let other = serve(two_layer_image("lie/img:1", "other"));
    let h = honest(&s, move |_, p, _| {
        p.ends_with(&md).then(|| {
            http(
                "200 OK",
                &[("Content-Type", MT_V2.to_string())],
                &other.manifest,
            )
        })
    });
    let md = sha(&s.manifest);
    expect_clean_failure(
        h,
        &format!("lie/img@{md}"),
        &format!("manifest verification failed for digest {md}"),
    )
    .await;

    // Wrong config bytes.
    let c = cfg.clone();
    let h = honest(&s, move |_, p, _| {
        p.ends_with(&c)
            .then(|| http("200 OK", &[], b"{\"rootfs\":{}}"))
    });
    expect_clean_failure(
        h,
        "lie/img:1",
        &format!(
            "error pulling image configuration: image config verification failed for digest {cfg}"
        ),
    )
    .await;

    // A body always cut short: retried, then the error.
    let bad = l0.clone();
    let blob = s.blobs[&l0].clone();
    let h = honest(&s, move |_, p, _| {
        p.ends_with(&bad).then(|| {
            let mut r = http(
                "200 OK",
                &[("Content-Length", blob.len().to_string())],
                &blob,
            );
            r.truncate(r.len() - blob.len() / 2);
            r
        })
    });
    expect_clean_failure(h, "lie/img:1", "unexpected EOF").await;

    // 404 for the manifest.
    expect_clean_failure(
        honest(&s, |_, _, _| None),
        "lie/img:2",
        "manifest for HOST/lie/img:2 not found: manifest unknown: manifest unknown",
    )
    .await;

    // Schema 1.
    let h = honest(&s, |_, p, _| {
        p.contains("/manifests/").then(|| {
            http(
                "200 OK",
                &[(
                    "Content-Type",
                    "application/vnd.docker.distribution.manifest.v1+prettyjws".to_string(),
                )],
                br#"{"schemaVersion":1,"name":"lie/img","tag":"1","fsLayers":[],"history":[]}"#,
            )
        })
    });
    expect_clean_failure(h, "lie/img:1", "invalid manifest: not schema2").await;

    // Layers that do not match the config's DiffIDs.
    let mut swapped = s.clone();
    let mut m: serde_json::Value = serde_json::from_slice(&s.manifest).unwrap();
    let layers = m["layers"].as_array_mut().unwrap();
    layers.swap(0, 1);
    swapped.manifest = serde_json::to_vec(&m).unwrap();
    expect_clean_failure(
        honest(&swapped, |_, _, _| None),
        "lie/img:1",
        "layers from manifest don't match image configuration",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried() {
    let s = serve(two_layer_image("lie/img:1", "flaky"));
    let l0 = s.layer_digests[0].clone();
    let l1 = s.layer_digests[1].clone();
    let blob1 = s.blobs[&l1].clone();
    let (a, b) = (l0.clone(), l1.clone());
    let h = honest(&s, move |_, p, n| {
        if p.ends_with(&a) && n <= 2 {
            return Some(http("503 Service Unavailable", &[], b""));
        }
        if p.ends_with(&b) && n == 1 {
            let mut r = http("200 OK", &[], &blob1);
            r.truncate(r.len() - 10);
            return Some(r);
        }
        None
    });
    let fake = fake_registry(h).await;
    let (_d, svc) = service();
    let (tx, mut rx) = collector();
    let reference = format!("{}/lie/img:1", fake.host);
    let report = svc
        .pull_image_with(&reference, fast_pull(Some(tx)))
        .await
        .unwrap();
    assert_eq!(report.images[0].image_id, s.img.id());
    let items = item_lines(&drain(&mut rx));
    let retries = |d: &str| {
        items
            .iter()
            .filter(|l| **l == format!("{}: Retrying in 1 second", &d[7..19]))
            .count()
    };
    assert_eq!((retries(&l0), retries(&l1)), (2, 1), "{items:?}");
    let gets = |d: &str| {
        fake.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|k| **k == format!("GET /v2/lie/img/blobs/{d}"))
            .count()
    };
    assert_eq!((gets(&l0), gets(&l1)), (3, 2));
    assert_verified(&svc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_lists_select_the_platform() {
    let amd = serve(two_layer_image("lie/img:1", "amd64"));
    let arm = serve(two_layer_image("lie/img:1", "arm64"));
    let entry = |s: &Served, arch: &str, variant: Option<&str>| {
        let mut p = serde_json::json!({"architecture": arch, "os": "linux"});
        if let Some(v) = variant {
            p["variant"] = v.into();
        }
        serde_json::json!({"mediaType": MT_V2, "size": s.manifest.len(), "digest": sha(&s.manifest), "platform": p})
    };
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [entry(&arm, "arm64", Some("v8")), entry(&amd, "amd64", None)],
    }))
    .unwrap();
    let ld = sha(&list);
    let mut all = amd.clone();
    all.blobs.extend(arm.blobs.clone());
    let (list2, ld2, amd_m, arm_m) = (
        list.clone(),
        ld.clone(),
        amd.manifest.clone(),
        arm.manifest.clone(),
    );
    let h = honest(&all, move |_, p, _| {
        let mt = |t: &str| vec![("Content-Type", t.to_string())];
        if p == "/v2/lie/img/manifests/1" || p == format!("/v2/lie/img/manifests/{ld2}") {
            return Some(http(
                "200 OK",
                &mt("application/vnd.docker.distribution.manifest.list.v2+json"),
                &list2,
            ));
        }
        for m in [&amd_m, &arm_m] {
            if p == format!("/v2/lie/img/manifests/{}", sha(m)) {
                return Some(http("200 OK", &mt(MT_V2), m));
            }
        }
        None
    });
    let fake = fake_registry(h).await;
    let reference = format!("{}/lie/img:1", fake.host);
    for (platform, want) in [
        (Some("linux/amd64"), amd.img.id()),
        (Some("linux/arm64"), arm.img.id()),
        (Some("linux/aarch64/v8"), arm.img.id()),
    ] {
        let (_d, svc) = service();
        let r = svc
            .pull_image_with(
                &reference,
                PullOptions {
                    platform: platform.map(str::to_string),
                    ..fast_pull(None)
                },
            )
            .await
            .unwrap();
        assert_eq!(r.images[0].image_id, want, "{platform:?}");
        assert_eq!(r.lines[0], format!("Digest: {ld}"));
        assert_eq!(
            repo_tags_digests(&svc, &reference).await.1,
            vec![format!("{}/lie/img@{ld}", fake.host)]
        );
        assert_verified(&svc);
    }
    let (_d, svc) = service();
    let err = svc
        .pull_image_with(
            &reference,
            PullOptions {
                platform: Some("linux/s390x".into()),
                ..fast_pull(None)
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "no matching manifest for linux/s390x in the manifest list entries"
    );
}

// ---------------------------------------------------------------- dockerd interop

// The dockerd session guard is held on purpose for the whole test.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerd_pulls_what_strata_pushed_and_back() {
    let Some(reg) = plain_registry() else { return };
    let Some((_guard, d)) = dockerd::session("registry interop") else {
        return;
    };
    // strata → registry → dockerd.
    let repo = format!("{}/interop/ours", reg.host);
    let tag = format!("{repo}:1");
    let img = two_layer_image(&tag, "interop");
    let (_a, svc) = service();
    load_imgs(&svc, &[&img]).await;
    let pushed = svc.push_image(&tag, None, None).await.unwrap();
    d.docker(&["pull", "-q", &tag]);
    let id = d.docker(&["inspect", "-f", "{{.Id}}", &tag]);
    assert_eq!(id.trim(), img.id());
    let digests = d.docker(&["inspect", "-f", "{{json .RepoDigests}}", &tag]);
    assert_eq!(
        digests.trim(),
        format!("[\"{repo}@{}\"]", pushed.pushed[0].digest)
    );

    // dockerd → registry → strata.
    let theirs_repo = format!("{}/interop/theirs", reg.host);
    let theirs = format!("{theirs_repo}:2");
    let other = two_layer_image(&theirs, "from-dockerd");
    let f = d.file("theirs.tar", &archive(&[&other]));
    d.docker(&["load", "-i", f.to_str().unwrap()]);
    let out = d.docker(&["push", &theirs]);
    let digest_line = out
        .lines()
        .find(|l| l.starts_with("2: digest: "))
        .unwrap()
        .to_string();
    let (_b, fresh) = service();
    let pulled = fresh
        .pull_image_with(&theirs, fast_pull(None))
        .await
        .unwrap();
    assert_eq!(pulled.images[0].image_id, other.id());
    let digest = digest_line.split_whitespace().nth(2).unwrap();
    assert_eq!(pulled.lines[0], format!("Digest: {digest}"));
    assert_verified(&fresh);
    // And strata pushes it again to a new repository: a cross-repository mount.
    fresh
        .tag_image(&theirs, &format!("{}/interop/copy", reg.host), "3")
        .await
        .unwrap();
    let copy = fresh
        .push_image(&format!("{}/interop/copy:3", reg.host), None, None)
        .await
        .unwrap();
    assert_eq!(copy.mounted_blobs.len(), 2, "{copy:?}");
}

/// A layer that is partly incompressible is pushed as a gzip stream mixing
/// stored and deflated chunks; dockerd (Go's gzip reader, which checks the
/// DiffID) and strata both read it back to the same image.
// The dockerd session guard is held on purpose for the whole test.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerd_pulls_a_layer_pushed_with_stored_chunks() {
    let Some(reg) = plain_registry() else { return };
    let Some((_guard, d)) = dockerd::session("stored chunks") else {
        return;
    };
    let noise = noise(0x9e37_79b9_7f4a_7c15, 3 * 1024 * 1024 + 123);
    let text = b"a compressible line of a text file in a layer\n".repeat(40_000);
    let tag = format!("{}/interop/stored:1", reg.host);
    let img = base(
        vec![layer(&[
            ("random.bin", &noise[..]),
            ("text.txt", &text[..]),
        ])],
        1_600_000_000,
        &[],
        &[&tag],
    );
    let (_a, svc) = service();
    load_imgs(&svc, &[&img]).await;
    let pushed = svc.push_image(&tag, None, None).await.unwrap();
    // Stored where it cannot shrink: the blob is about the random bytes'
    // size, far below the uncompressed layer and above the noise alone.
    let manifest = d.docker(&["manifest", "inspect", "--insecure", &tag]);
    let m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let size = m["layers"][0]["size"].as_u64().unwrap() as usize;
    assert!(
        size > noise.len() && size < noise.len() + text.len() / 4,
        "{size}"
    );
    d.docker(&["pull", "-q", &tag]);
    let id = d.docker(&["inspect", "-f", "{{.Id}}", &tag]);
    assert_eq!(id.trim(), img.id());
    let (_b, fresh) = service();
    let pulled = fresh.pull_image_with(&tag, fast_pull(None)).await.unwrap();
    assert_eq!(pulled.images[0].image_id, img.id());
    assert_eq!(
        pulled.lines[0],
        format!("Digest: {}", pushed.pushed[0].digest)
    );
    assert_verified(&fresh);
}

/// The auth error texts are dockerd's own: the private dockerd pulls from the
/// htpasswd registry without and with wrong credentials, and logs in wrongly.
// The dockerd session guard is held on purpose for the whole test.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_errors_match_dockerd() {
    let Some(reg) = auth_registry() else { return };
    let Some((_guard, d)) = dockerd::session("registry auth interop") else {
        return;
    };
    let tag = format!("{}/authcmp/img:1", reg.host);
    let img = two_layer_image(&tag, "authcmp");
    let (_a, svc) = service();
    load_imgs(&svc, &[&img]).await;
    svc.push_image(&tag, Some(Auth::basic(USER, PASS)), None)
        .await
        .unwrap();
    let docker_err = |args: &[&str]| {
        let out = d.docker_cmd(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    };
    let (_b, fresh) = service();
    let ours = fresh
        .pull_image_with(&tag, fast_pull(None))
        .await
        .unwrap_err();
    assert_eq!(
        docker_err(&["pull", "-q", &tag]),
        format!("Error response from daemon: {}", ours.message())
    );
    let bad = Auth::basic(USER, "wrong");
    // Wrong stored credentials (the CLI sends them from its config file).
    let cli_dir = d.dir.join("cli");
    std::fs::create_dir_all(&cli_dir).unwrap();
    let config = format!(
        r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
        reg.host,
        base64_encode(format!("{USER}:wrong").as_bytes())
    );
    std::fs::write(cli_dir.join("config.json"), &config).unwrap();
    let from_config = Auth::from_docker_config(config.as_bytes(), &reg.host);
    assert_eq!(
        from_config,
        Some(Auth {
            auth: base64_encode(format!("{USER}:wrong").as_bytes()),
            ..bad.clone()
        })
    );
    let ours = fresh
        .pull_image_with(
            &tag,
            PullOptions {
                auth: from_config,
                ..fast_pull(None)
            },
        )
        .await
        .unwrap_err();
    let theirs = docker_err(&["pull", "-q", &tag]);
    std::fs::remove_file(cli_dir.join("config.json")).unwrap();
    assert_eq!(
        theirs,
        format!("Error response from daemon: {}", ours.message())
    );
    let ours = strata::distribution::login(&reg.host, &bad)
        .await
        .unwrap_err();
    assert_eq!(
        docker_err(&["login", "-u", USER, "-p", "wrong", &reg.host]),
        format!(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\nError response from daemon: {}",
            ours.message()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_handshake() {
    let s = serve(two_layer_image("lie/img:1", "bearer"));
    let inner = honest(&s, |_, _, _| None);
    let host_cell: Arc<OnceLock<String>> = Arc::default();
    let hc = host_cell.clone();
    let h: Arc<Handler> = Arc::new(move |m: &str, p: &str, n: usize, head: &str| {
        let host = hc.get().cloned().unwrap_or_default();
        let lower = head.to_ascii_lowercase();
        if let Some(q) = p.strip_prefix("/token?") {
            let basic = format!(
                "authorization: basic {}",
                base64_encode(format!("{USER}:{PASS}").as_bytes())
            )
            .to_ascii_lowercase();
            let token = match q {
                "account=strata&scope=repository%3Alie%2Fimg%3Apull&service=fake"
                    if lower.contains(&basic) =>
                {
                    "T-user"
                }
                "scope=repository%3Alie%2Fimg%3Apull&service=fake" => "T-anon",
                _ => {
                    return http(
                        "401 Unauthorized",
                        &[],
                        b"{\"details\":\"bad token request\"}",
                    );
                }
            };
            return http(
                "200 OK",
                &[],
                format!("{{\"token\":\"{token}\",\"expires_in\":300}}").as_bytes(),
            );
        }
        let challenge = (
            "WWW-Authenticate",
            format!("Bearer realm=\"http://{host}/token\",service=\"fake\""),
        );
        if p == "/v2/"
            || !(lower.contains("authorization: bearer t-user")
                || lower.contains("authorization: bearer t-anon"))
        {
            return http(
                "401 Unauthorized",
                &[challenge, ("Docker-Distribution-Api-Version", "registry/2.0".into())],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#,
            );
        }
        if lower.contains("t-anon") && p.contains("/blobs/") {
            return http(
                "401 Unauthorized",
                &[(
                    "WWW-Authenticate",
                    format!("Bearer realm=\"http://{host}/token\",service=\"fake\",error=\"insufficient_scope\""),
                )],
                br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied","detail":null}]}"#,
            );
        }
        inner(m, p, n, head)
    });
    let fake = fake_registry(h).await;
    host_cell.set(fake.host.clone()).unwrap();
    let reference = format!("{}/lie/img:1", fake.host);

    // Anonymous token: the manifest is readable, the blobs are not.
    let (_a, anon) = service();
    let err = anon
        .pull_image_with(&reference, fast_pull(None))
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "error pulling image configuration: download failed after attempts=1: denied: requested access to the resource is denied"
    );
    assert_eq!(anon.count_images().await.unwrap(), 0);

    let (_b, svc) = service();
    let report = svc
        .pull_image_with(
            &reference,
            PullOptions {
                auth: Some(Auth::basic(USER, PASS)),
                ..fast_pull(None)
            },
        )
        .await
        .unwrap();
    assert_eq!(report.images[0].image_id, s.img.id());
    let seen = fake.seen.lock().unwrap().clone();
    let tokens: Vec<&String> = seen
        .iter()
        .filter(|k| k.starts_with("GET /token"))
        .collect();
    assert_eq!(
        tokens,
        [
            "GET /token?scope=repository%3Alie%2Fimg%3Apull&service=fake",
            "GET /token?account=strata&scope=repository%3Alie%2Fimg%3Apull&service=fake",
        ],
        "one token fetch per pull"
    );
    assert_verified(&svc);
}

/// fsck --repair fetches a damaged or missing layer again from the registry
/// the log says it came from (issue 6), and the store verifies afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsck_repair_fetches_damaged_layers_again() {
    let Some(reg) = plain_registry() else { return };
    let repo = format!("{}/repair/img", reg.host);
    let img = base(
        vec![
            layer(&[("a", b"the bottom layer of the repaired image")]),
            layer(&[("b", b"the top layer")]),
        ],
        1_650_000_500,
        &[],
        &[&format!("{repo}:1")],
    );
    let (_a, src) = service();
    load_imgs(&src, &[&img]).await;
    src.push_image(&format!("{repo}:1"), None, None)
        .await
        .unwrap();

    let (d, dst) = service();
    dst.pull_image_with(&format!("{repo}:1"), fast_pull(None))
        .await
        .unwrap();
    let diff_ids = dst.lookup_image(&img.id()).await.unwrap().root_fs.layers;
    let blob = |id: &str| d.path().join("blobs/sha256").join(&id[7..]);
    let mut bytes = std::fs::read(blob(&diff_ids[0])).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(blob(&diff_ids[0]), bytes).unwrap();
    std::fs::remove_file(blob(&diff_ids[1])).unwrap();

    let report = dst.fsck(true).await.unwrap();
    assert_eq!(report.problems.len(), 2);
    for p in &report.problems {
        let from = p
            .refetched_from
            .as_deref()
            .unwrap_or_else(|| panic!("{p:?} not repaired"));
        assert!(from.starts_with(&format!("{repo}@sha256:")), "{from}");
    }
    let again = dst.fsck(false).await.unwrap();
    assert!(again.problems.is_empty(), "{:?}", again.problems);
    assert_verified(&dst);
}
