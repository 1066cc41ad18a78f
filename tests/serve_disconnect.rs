//! A client that hangs up in the middle of a pull or a push (issue 5).
//!
//! dockerd 20.10 runs a pull (`postImagesCreate` → `PullImage(r.Context())`)
//! and a push under the request's context: when the client goes away the
//! context is cancelled, the layer transfers lose their last watcher and
//! stop, and no image appears. strata does the same; the compressed bytes
//! of the cancelled download stay under their lease, so the next pull of
//! the image resumes with `Range: bytes=N-`.
//!
//! An in-process `strata serve` pulls from (and pushes to) a real
//! `docker-registry` through a throttling TCP proxy on 127.0.0.1 that
//! records each request (strata sends `Connection: close`, so one
//! connection is one request) and how many bytes went each way.

mod common;
#[path = "common/dockerd.rs"]
mod dockerd;
#[path = "common/registry.rs"]
mod registry_harness;
use registry_harness::*;

use common::builder::*;
use common::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strata::distribution::PushOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};

// ---------------------------------------------------------------- server

struct Server {
    _dir: tempfile::TempDir,
    root: PathBuf,
    sock: PathBuf,
    svc: strata::ImageService,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<strata::Result<()>>>,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let svc = strata::ImageService::open(&root).unwrap();
        let sock = dir.path().join("s.sock");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn({
            let (svc, sock) = (svc.clone(), sock.clone());
            async move {
                strata::server::serve(svc, &sock, async {
                    let _ = rx.await;
                })
                .await
            }
        });
        for _ in 0..500 {
            if UnixStream::connect(&sock).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Server {
            _dir: dir,
            root,
            sock,
            svc,
            stop: Some(tx),
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let r = tokio::time::timeout(Duration::from_secs(10), self.task.take().unwrap())
            .await
            .expect("server did not stop")
            .unwrap();
        assert!(r.is_ok(), "{r:?}");
    }

    /// One request to completion: (status, body).
    async fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let a = serve::request(&self.sock, method, path, headers, Vec::new()).await;
        (a.status, a.text())
    }

    /// Send `head` on a raw connection, read until `until` shows up in what
    /// came back (the stream has begun), then hang up. What was read.
    async fn hang_up_after(&self, head: &str, until: &str) -> String {
        let mut s = UnixStream::connect(&self.sock).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(20);
        while !String::from_utf8_lossy(&got).contains(until) {
            assert!(Instant::now() < deadline, "no {until:?} in {got:?}");
            let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
                .await
                .expect("read timed out")
                .unwrap();
            assert!(
                n > 0,
                "connection closed early: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
        drop(s);
        String::from_utf8_lossy(&got).into_owned()
    }

    /// The server answers `/_ping` and the store passes `audit verify`.
    async fn assert_healthy(&self) {
        assert_eq!(
            self.raw("GET", "/_ping", &[]).await,
            (200, "OK".to_string())
        );
        assert_verified(&self.svc);
    }

    /// The log head: equal before and after ⇔ the store did not change.
    fn head(&self) -> (u64, [u8; 32]) {
        let h = self.svc.store().head().unwrap();
        (h.next_seq, h.last_hash)
    }

    async fn image_ids(&self) -> Vec<String> {
        let (st, body) = self.raw("GET", "/v1.41/images/json?all=1", &[]).await;
        assert_eq!(st, 200, "{body}");
        let v: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        v.iter()
            .map(|i| i["Id"].as_str().unwrap().to_string())
            .collect()
    }

    fn partial_files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.join("ingest"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("partial-"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

// ---------------------------------------------------------------- proxy

/// One proxied connection.
#[derive(Clone, Debug, Default)]
struct Conn {
    /// The first bytes the client sent (the request head).
    head: String,
    /// Bytes forwarded client → registry and registry → client.
    up: u64,
    down: u64,
    /// Both directions have ended.
    closed: bool,
}

impl Conn {
    fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A TCP proxy in front of `target`, forwarding at most `rate` bytes per
/// second each way on each connection (0: unlimited).
struct Proxy {
    host: String,
    rate: Arc<AtomicU64>,
    conns: Arc<Mutex<Vec<Conn>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = l.local_addr().unwrap().to_string();
        let rate = Arc::new(AtomicU64::new(0));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, c, s) = (rate.clone(), conns.clone(), stop.clone());
        tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                let Ok((client, _)) = l.accept().await else {
                    return;
                };
                let Ok(upstream) = TcpStream::connect(&target).await else {
                    continue;
                };
                let idx = {
                    let mut v = c.lock().unwrap();
                    v.push(Conn::default());
                    v.len() - 1
                };
                let (cr, cw) = client.into_split();
                let (ur, uw) = upstream.into_split();
                let (r1, c1, r2, c2) = (r.clone(), c.clone(), r.clone(), c.clone());
                tokio::spawn(async move {
                    let up = pump(cr, uw, r1, c1.clone(), idx, true);
                    let down = pump(ur, cw, r2, c2, idx, false);
                    tokio::join!(up, down);
                    c1.lock().unwrap()[idx].closed = true;
                });
            }
        });
        Proxy {
            host,
            rate,
            conns,
            stop,
        }
    }

    fn conns(&self) -> Vec<Conn> {
        self.conns.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.conns.lock().unwrap().clear();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    rate: Arc<AtomicU64>,
    conns: Arc<Mutex<Vec<Conn>>>,
    idx: usize,
    up: bool,
) {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let r = rate.load(Ordering::SeqCst);
        let chunk = if r == 0 {
            buf.len()
        } else {
            (r / 20).clamp(1, buf.len() as u64) as usize
        };
        let n = match from.read(&mut buf[..chunk]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        {
            let mut v = conns.lock().unwrap();
            let Some(c) = v.get_mut(idx) else { break };
            if up {
                if c.head.len() < 4096 {
                    c.head.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
                c.up += n as u64;
            } else {
                c.down += n as u64;
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        if r != 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let _ = to.shutdown().await;
}

// ---------------------------------------------------------------- images

/// One layer of `mib` MiB of noise.
fn big_image(tag: &str, seed: u64, mib: usize) -> Img {
    let data = noise(seed, mib << 20);
    base(
        vec![layer(&[("blob", data.as_slice())])],
        1_600_000_000,
        &[],
        &[tag],
    )
}

const RATE: u64 = 512 << 10; // bytes per second while throttled

/// Wait until `cond` holds on the proxy's connections (or fail with them).
async fn wait_for(proxy: &Proxy, what: &str, secs: u64, cond: impl Fn(&[Conn]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let c = proxy.conns();
        if cond(&c) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {c:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_blob_get(c: &Conn) -> bool {
    c.request_line().starts_with("GET ") && c.request_line().contains("/blobs/sha256:")
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_hanging_up_mid_pull_cancels_it_and_the_next_pull_resumes() {
    let Some(reg) = plain_registry() else {
        return;
    };
    let proxy = Proxy::start(reg.host.clone()).await;
    let repo = format!("{}/disconnect/pull", proxy.host);
    let tag = format!("{repo}:1");
    let img = big_image(&tag, 7, 4);
    {
        let (_d, src) = service();
        load_imgs(&src, &[&img]).await;
        src.push_image_with(&tag, PushOptions::default())
            .await
            .unwrap();
    }
    let srv = Server::start().await;
    let before = srv.head();
    proxy.clear();
    proxy.rate.store(RATE, Ordering::SeqCst);

    // Hang up once the layer download has begun.
    let req = format!(
        "POST /v1.41/images/create?fromImage={repo}&tag=1 HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n"
    );
    let got = srv.hang_up_after(&req, "Downloading").await;
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(
        got.contains(r#"{"status":"Pulling from disconnect/pull","id":"1"}"#),
        "{got}"
    );
    let hung_up = Instant::now();

    // dockerd's behaviour: the pull is cancelled. The layer download stops
    // well before the throttled transfer (8 s) could have finished.
    wait_for(&proxy, "the blob downloads stop", 5, |c| {
        c.iter().any(is_blob_get) && c.iter().filter(|c| is_blob_get(c)).all(|c| c.closed)
    })
    .await;
    assert!(hung_up.elapsed() < Duration::from_secs(5));
    // The layer is the biggest blob fetched (the config is a few hundred
    // bytes).
    let first = proxy
        .conns()
        .into_iter()
        .filter(is_blob_get)
        .max_by_key(|c| c.down)
        .unwrap();
    assert!(
        first.down > 0 && first.down < 4 << 20,
        "cancelled download got {} bytes",
        first.down
    );
    let blob_path = first.request_line().split(' ').nth(1).unwrap().to_string();
    // Nothing more is fetched, no image appears, the store is unchanged.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let n = proxy.conns().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(proxy.conns().len(), n, "{:#?}", proxy.conns());
    assert_eq!(srv.image_ids().await, Vec::<String>::new());
    assert_eq!(srv.head(), before, "a cancelled pull writes nothing");
    srv.assert_healthy().await;
    // The received bytes are kept for the next pull.
    let blob_hex = blob_path.rsplit("sha256:").next().unwrap().to_string();
    assert_eq!(srv.partial_files(), vec![format!("partial-{blob_hex}")]);

    // The next pull completes and resumes the layer with a Range request.
    proxy.clear();
    proxy.rate.store(0, Ordering::SeqCst);
    let (st, body) = srv
        .raw(
            "POST",
            &format!("/v1.41/images/create?fromImage={repo}&tag=1"),
            &[],
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert!(
        body.contains(&format!(
            r#"{{"status":"Status: Downloaded newer image for {tag}"}}"#
        )),
        "{body}"
    );
    assert_eq!(srv.image_ids().await, vec![img.id()]);
    let blob_gets: Vec<Conn> = proxy
        .conns()
        .into_iter()
        .filter(|c| is_blob_get(c) && c.request_line().contains(&blob_hex))
        .collect();
    assert_eq!(blob_gets.len(), 1, "{blob_gets:#?}");
    let range = blob_gets[0].header("Range").map(str::to_string);
    let from: u64 = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resumable Range: {range:?}"));
    assert!(
        from > 0 && from <= first.down,
        "resumed from {from}, had {}",
        first.down
    );
    assert!(
        blob_gets[0].down < 4 << 20,
        "the resumed download fetched only the rest: {}",
        blob_gets[0].down
    );
    assert_eq!(srv.partial_files(), Vec::<String>::new());
    srv.assert_healthy().await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_hanging_up_mid_push_cancels_it() {
    let Some(reg) = plain_registry() else {
        return;
    };
    let proxy = Proxy::start(reg.host.clone()).await;
    let repo = format!("{}/disconnect/push", proxy.host);
    let tag = format!("{repo}:1");
    let img = big_image(&tag, 11, 4);
    let srv = Server::start().await;
    load_imgs(&srv.svc, &[&img]).await;
    let before = srv.head();
    let ids = srv.image_ids().await;
    proxy.rate.store(RATE, Ordering::SeqCst);

    let req = format!(
        "POST /v1.41/images/{repo}/push?tag=1 HTTP/1.1\r\nHost: docker\r\nX-Registry-Auth: e30=\r\nContent-Length: 0\r\n\r\n"
    );
    let got = srv.hang_up_after(&req, "Pushing").await;
    assert!(
        got.contains(&format!(
            r#"{{"status":"The push refers to repository [{repo}]"}}"#
        )),
        "{got}"
    );
    let is_upload = |c: &Conn| {
        let l = c.request_line();
        (l.starts_with("PATCH ") || l.starts_with("PUT ")) && l.contains("/blobs/uploads/")
    };
    wait_for(&proxy, "the upload stops", 5, |c| {
        c.iter().any(is_upload) && c.iter().filter(|c| is_upload(c)).all(|c| c.closed)
    })
    .await;
    let up: u64 = proxy
        .conns()
        .iter()
        .filter(|c| is_upload(c))
        .map(|c| c.up)
        .sum();
    assert!(up < 4 << 20, "cancelled upload sent {up} bytes");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let n = proxy.conns().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(proxy.conns().len(), n, "{:#?}", proxy.conns());
    // No manifest was written; the store is unchanged.
    assert!(
        !proxy
            .conns()
            .iter()
            .any(|c| c.request_line().starts_with("PUT ")
                && c.request_line().contains("/manifests/")),
        "{:#?}",
        proxy.conns()
    );
    assert_eq!(srv.head(), before, "a cancelled push writes nothing");
    assert_eq!(srv.image_ids().await, ids);
    srv.assert_healthy().await;

    // Pushing again works.
    proxy.rate.store(0, Ordering::SeqCst);
    let (st, body) = srv
        .raw(
            "POST",
            &format!("/v1.41/images/{repo}/push?tag=1"),
            &[("X-Registry-Auth", "e30=")],
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert!(
        body.contains(r#""aux":{"Tag":"1","Digest":"sha256:"#),
        "{body}"
    );
    srv.assert_healthy().await;
    srv.stop().await;
}
