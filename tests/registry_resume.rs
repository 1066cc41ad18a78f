//! Resumable pulls: the compressed bytes of an interrupted or cancelled
//! layer download stay in `<root>/ingest/partial-<hex>` under a lease (gc
//! keeps them), and the next attempt or the next pull of the same blob
//! resumes with `Range: bytes=N-` after re-hashing them. Served by a tiny
//! in-test registry on 127.0.0.1 that can cut a blob off, stall mid-blob,
//! honour or ignore `Range`.

mod common;

use common::builder::*;
use common::*;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strata::distribution::PullOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// A one-layer image as a registry serves it at `res/img:1`.
struct Served {
    id: String,
    manifest: Vec<u8>,
    config: Vec<u8>,
    layer_digest: String,
    layer: Vec<u8>,
}

fn served(seed: u64) -> Served {
    let img = base(
        vec![layer(&[("data/big", &noise(seed, 300_000))])],
        1_650_000_000,
        &[("org.example", "resume")],
        &["res/img:1"],
    );
    let gz = gzip(&img.layers[0]);
    let layer_digest = sha(&gz);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": img.config.len(), "digest": img.id()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": gz.len(), "digest": layer_digest}],
    }))
    .unwrap();
    Served {
        id: img.id(),
        manifest,
        config: img.config.clone(),
        layer_digest,
        layer: gz,
    }
}

/// What the first request for the layer blob gets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum First {
    /// The whole blob.
    Whole,
    /// The first n bytes (of a full Content-Length), then the connection closes.
    Cut(usize),
    /// The first n bytes, then nothing (the connection stays open).
    Stall(usize),
}

struct Fake {
    host: String,
    /// The `Range` header (if any) of each layer blob request, in order.
    ranges: Arc<Mutex<Vec<Option<String>>>>,
    /// Layer blob body bytes written.
    served: Arc<AtomicU64>,
}

fn head(status: &str, headers: &[(&str, String)]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n").into_bytes();
    for (k, v) in headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn full(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut hs = headers.to_vec();
    hs.push(("Content-Length", body.len().to_string()));
    let mut out = head(status, &hs);
    out.extend_from_slice(body);
    out
}

/// Serve `s` at `res/img`; the layer blob per `first` and `honour_range`.
async fn fake(s: &Served, first: First, honour_range: bool) -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let ranges: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let served = Arc::new(AtomicU64::new(0));
    let blobs: Arc<HashMap<String, Vec<u8>>> = Arc::new(
        [
            (s.id.clone(), s.config.clone()),
            (s.layer_digest.clone(), s.layer.clone()),
        ]
        .into_iter()
        .collect(),
    );
    let (manifest, layer_digest) = (Arc::new(s.manifest.clone()), s.layer_digest.clone());
    let (ranges2, served2) = (ranges.clone(), served.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (ranges, served, blobs, manifest, layer_digest) = (
                ranges2.clone(),
                served2.clone(),
                blobs.clone(),
                manifest.clone(),
                layer_digest.clone(),
            );
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
                let text = String::from_utf8_lossy(&buf).to_string();
                let mut parts = text.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("").to_string();
                let range = text.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("range")
                        .then(|| v.trim().to_string())
                });
                let api = (
                    "Docker-Distribution-Api-Version",
                    "registry/2.0".to_string(),
                );
                let md = sha(&manifest);
                let mut resp = if path == "/v2/" {
                    full("200 OK", &[api], b"{}")
                } else if path == "/v2/res/img/manifests/1"
                    || path == format!("/v2/res/img/manifests/{md}")
                {
                    let ct = (
                        "Content-Type",
                        "application/vnd.docker.distribution.manifest.v2+json".to_string(),
                    );
                    full(
                        "200 OK",
                        &[api, ct, ("Docker-Content-Digest", md)],
                        &manifest,
                    )
                } else if let Some(b) = path
                    .strip_prefix("/v2/res/img/blobs/")
                    .and_then(|d| blobs.get(d))
                {
                    if !path.ends_with(&layer_digest) {
                        full("200 OK", &[], b)
                    } else {
                        let nth = {
                            let mut r = ranges.lock().unwrap();
                            r.push(range.clone());
                            r.len()
                        };
                        let from = range
                            .as_deref()
                            .filter(|_| honour_range)
                            .and_then(|r| r.strip_prefix("bytes="))
                            .and_then(|r| r.strip_suffix('-'))
                            .map(|n| n.parse::<usize>().unwrap());
                        let len = b.len();
                        let (mut out, body): (Vec<u8>, &[u8]) = match (nth, first, from) {
                            (1, First::Cut(n) | First::Stall(n), _) => (
                                head("200 OK", &[("Content-Length", len.to_string())]),
                                &b[..n],
                            ),
                            (_, _, Some(f)) if f >= len => {
                                (full("416 Range Not Satisfiable", &[], b""), &[])
                            }
                            (_, _, Some(f)) => (
                                head(
                                    "206 Partial Content",
                                    &[
                                        ("Content-Length", (len - f).to_string()),
                                        ("Content-Range", format!("bytes {f}-{}/{len}", len - 1)),
                                    ],
                                ),
                                &b[f..],
                            ),
                            _ => (head("200 OK", &[("Content-Length", len.to_string())]), b),
                        };
                        served.fetch_add(body.len() as u64, Ordering::SeqCst);
                        out.extend_from_slice(body);
                        if nth == 1 && matches!(first, First::Stall(_)) {
                            let _ = sock.write_all(&out).await;
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            return;
                        }
                        out
                    }
                } else {
                    full(
                        "404 Not Found",
                        &[("Content-Type", "application/json".to_string())],
                        br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":null}]}"#,
                    )
                };
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
    Fake {
        host,
        ranges,
        served,
    }
}

fn fast_pull() -> PullOptions {
    PullOptions {
        retry_delay: Duration::from_millis(20),
        ..PullOptions::default()
    }
}

fn partial_path(root: &std::path::Path, digest: &str) -> PathBuf {
    root.join("ingest")
        .join(format!("partial-{}", &digest[7..]))
}

/// The names in `<root>/ingest/`, sorted.
fn ingest_files(root: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("ingest"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

async fn pull_ok(svc: &strata::ImageService, f: &Fake, s: &Served) {
    let report = svc
        .pull_image_with(&format!("{}/res/img:1", f.host), fast_pull())
        .await
        .unwrap_or_else(|e| panic!("pull: {e}; ranges {:?}", f.ranges.lock().unwrap()));
    assert_eq!(report.images[0].image_id, s.id);
    assert_eq!(svc.lookup_image(&s.id).await.unwrap().id, s.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_download_resumes_with_range() {
    let s = served(1);
    let len = s.layer.len();
    let cut = len / 2;
    assert!(len > 200_000, "blob is {len} bytes");

    // (name, server ignores Range, expected Range headers, bytes served)
    let cases: [(&str, bool, Vec<Option<String>>, usize); 2] = [
        ("206", true, vec![None, Some(format!("bytes={cut}-"))], len),
        (
            "200 to a Range request",
            false,
            vec![None, Some(format!("bytes={cut}-"))],
            cut + len,
        ),
    ];
    for (name, honour, want_ranges, want_served) in cases {
        let (dir, svc) = service();
        let f = fake(&s, First::Cut(cut), honour).await;
        pull_ok(&svc, &f, &s).await;
        assert_eq!(*f.ranges.lock().unwrap(), want_ranges, "{name}");
        assert_eq!(
            f.served.load(Ordering::SeqCst),
            want_served as u64,
            "{name}"
        );
        assert_eq!(ingest_files(dir.path()), Vec::<String>::new(), "{name}");
        assert_verified(&svc);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_pull_keeps_its_bytes_through_gc_and_a_later_pull_resumes() {
    let s = served(2);
    let len = s.layer.len();
    let stall = len / 3;
    let (dir, svc) = service();
    let partial = partial_path(dir.path(), &s.layer_digest);

    let f1 = fake(&s, First::Stall(stall), true).await;
    let svc2 = svc.clone();
    let reference = format!("{}/res/img:1", f1.host);
    let task = tokio::spawn(async move { svc2.pull_image_with(&reference, fast_pull()).await });
    let t0 = Instant::now();
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < stall as u64 {
        assert!(t0.elapsed() < Duration::from_secs(10), "no partial file");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());

    let report = svc.gc(false).await.unwrap();
    assert_eq!(report.orphan_ingest.count, 0, "{report:?}");
    assert_eq!(
        std::fs::read(&partial).unwrap(),
        s.layer[..stall],
        "gc kept the partial file"
    );
    assert_eq!(svc.count_images().await.unwrap(), 0);
    assert_verified(&svc);

    // A later pull (from another server of the same blob) resumes.
    let f2 = fake(&s, First::Whole, true).await;
    pull_ok(&svc, &f2, &s).await;
    assert_eq!(
        *f2.ranges.lock().unwrap(),
        vec![Some(format!("bytes={stall}-"))]
    );
    assert_eq!(f2.served.load(Ordering::SeqCst), (len - stall) as u64);
    assert_eq!(ingest_files(dir.path()), Vec::<String>::new());
    assert_verified(&svc);
}

/// (name, partial file bytes, expected Range headers, layer bytes served)
type PartialCase = (&'static str, Vec<u8>, Vec<Option<String>>, usize);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_files_left_before_the_process_started() {
    let s = served(3);
    let len = s.layer.len();
    let n = 1000;
    let mut corrupt = s.layer[..n].to_vec();
    corrupt[10] ^= 0xff;

    let cases: [PartialCase; 3] = [
        (
            "corrupt prefix: restart from zero",
            corrupt,
            vec![Some(format!("bytes={n}-")), None],
            (len - n) + len,
        ),
        (
            "good prefix: resumed",
            s.layer[..n].to_vec(),
            vec![Some(format!("bytes={n}-"))],
            len - n,
        ),
        ("complete blob: no download", s.layer.clone(), vec![], 0),
    ];
    for (name, bytes, want_ranges, want_served) in cases {
        let (dir, svc) = service();
        std::fs::write(partial_path(dir.path(), &s.layer_digest), &bytes).unwrap();
        let f = fake(&s, First::Whole, true).await;
        pull_ok(&svc, &f, &s).await;
        assert_eq!(*f.ranges.lock().unwrap(), want_ranges, "{name}");
        assert_eq!(
            f.served.load(Ordering::SeqCst),
            want_served as u64,
            "{name}"
        );
        assert_eq!(ingest_files(dir.path()), Vec::<String>::new(), "{name}");
        assert_verified(&svc);
    }

    // No pull picks it up: no lease holds it, gc removes it as an orphan.
    let (dir, svc) = service();
    let p = partial_path(dir.path(), &s.layer_digest);
    std::fs::write(&p, &s.layer[..n]).unwrap();
    let report = svc.gc(false).await.unwrap();
    assert_eq!(
        (report.orphan_ingest.count, report.orphan_ingest.bytes),
        (1, n as u64)
    );
    assert!(!p.exists());
    assert_verified(&svc);
}
