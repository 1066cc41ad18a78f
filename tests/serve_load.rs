//! Load test of `strata serve`: 16 concurrent clients on the unix socket,
//! each looping tag → inspect → list → untag on its own names for a bounded
//! time (10 s; `STRATA_LOAD_SECS` overrides, e.g. 20 as the issue asks).
//! Every request must succeed with the exact expected status/body; then
//! every committed tag appears exactly once in `/events?since=0`, the untag
//! count matches, and `strata::audit::verify` passes.

mod common;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::net::UnixStream;

const CLIENTS: usize = 16;

struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(sock: &PathBuf) -> Conn {
        let stream = UnixStream::connect(sock).await.unwrap();
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        Conn { sender }
    }

    async fn req(&mut self, method: &str, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        self.sender.ready().await.unwrap();
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("Host", "docker")
            .header("User-Agent", "strata-load-test")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let resp = self.sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_clients_tag_untag_inspect_list() {
    let secs: u64 = std::env::var("STRATA_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let svc = strata::ImageService::open(dir.path().join("root")).unwrap();
    load(&svc, "chain-tagged.tar").await;
    let sock = dir.path().join("s.sock");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let (svc, sock) = (svc.clone(), sock.clone());
        async move {
            strata::server::serve(svc, &sock, async {
                let _ = stop_rx.await;
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
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let sock = sock.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&sock).await;
            let mut tagged: Vec<String> = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let name = format!("load/c{c}:t{n}");
                let (st, body) = conn
                    .req(
                        "POST",
                        &format!("/v1.41/images/dev/chain:1/tag?repo=load/c{c}&tag=t{n}"),
                        Vec::new(),
                    )
                    .await;
                assert_eq!((st, body.as_slice()), (201, &b""[..]), "tag {name}");
                tagged.push(name.clone());
                let (st, body) = conn
                    .req("GET", &format!("/v1.41/images/{name}/json"), Vec::new())
                    .await;
                assert_eq!(st, 200, "inspect {name}");
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["Id"], CHAIN_ID, "inspect {name}");
                assert!(
                    v["RepoTags"]
                        .as_array()
                        .unwrap()
                        .contains(&serde_json::json!(name)),
                    "inspect {name}: {v}"
                );
                let (st, body) = conn.req("GET", "/v1.41/images/json", Vec::new()).await;
                assert_eq!(st, 200, "list");
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v.as_array().unwrap().len(), 1, "list: {v}");
                let (st, body) = conn
                    .req("DELETE", &format!("/v1.41/images/{name}"), Vec::new())
                    .await;
                assert_eq!(
                    (st, String::from_utf8_lossy(&body).into_owned()),
                    (200, format!("[{{\"Untagged\":\"{name}\"}}]\n")),
                    "untag {name}"
                );
                n += 1;
            }
            tagged
        }));
    }
    let mut all_tags = Vec::new();
    for t in tasks {
        all_tags.extend(t.await.unwrap());
    }
    assert!(all_tags.len() >= CLIENTS, "too few operations");

    // Every tag once, and as many untags, in the durable event stream.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let mut conn = Conn::open(&sock).await;
    let (st, body) = conn
        .req(
            "GET",
            &format!("/v1.41/events?since=0&until={until}"),
            Vec::new(),
        )
        .await;
    assert_eq!(st, 200);
    let mut tag_counts: std::collections::HashMap<String, usize> = Default::default();
    let mut untags = 0usize;
    for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let ev: serde_json::Value = serde_json::from_slice(line).unwrap();
        match ev["Action"].as_str().unwrap() {
            "tag" => {
                let name = ev["Actor"]["Attributes"]["name"].as_str().unwrap();
                *tag_counts.entry(name.to_string()).or_default() += 1;
            }
            "untag" => {
                assert_eq!(ev["Actor"]["ID"], CHAIN_ID);
                untags += 1;
            }
            _ => {}
        }
    }
    for name in &all_tags {
        assert_eq!(tag_counts.get(name), Some(&1), "tag event of {name}");
    }
    // No other tag events (a load's references are not `tag` events).
    assert_eq!(tag_counts.len(), all_tags.len());
    assert_eq!(untags, all_tags.len());
    eprintln!(
        "{} tag/inspect/list/untag rounds by {CLIENTS} clients in {secs} s",
        all_tags.len()
    );

    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
    assert_verified(&svc);
}
