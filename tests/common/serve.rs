//! An in-process `strata serve` on a temporary store and socket, for the
//! Engine API tests (each test file wraps it with its own request helpers).

use std::path::PathBuf;
use std::time::Duration;

/// A running in-process server.
pub struct InProcess {
    /// The temporary directory holding the store (`root/`) and the socket.
    pub dir: tempfile::TempDir,
    /// The unix socket it listens on.
    pub sock: PathBuf,
    /// The service it serves (shares the store with the server).
    pub svc: strata::ImageService,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<strata::Result<()>>>,
}

impl InProcess {
    /// Open a fresh store and serve it; returns once the socket accepts.
    pub async fn start() -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let svc = strata::ImageService::open(dir.path().join("root")).unwrap();
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
            if tokio::net::UnixStream::connect(&sock).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        InProcess {
            dir,
            sock,
            svc,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Shut the server down gracefully (within 10 s) and return how it ended.
    pub async fn shutdown(&mut self) -> strata::Result<()> {
        let _ = self.stop.take().expect("already stopped").send(());
        tokio::time::timeout(
            Duration::from_secs(10),
            self.task.take().expect("already stopped"),
        )
        .await
        .expect("server did not stop")
        .unwrap()
    }
}

/// What [`request`] got back.
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on a new connection to `sock` (with `Host:
/// docker`), its answer read to the end.
pub async fn request(
    sock: &std::path::Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    use http_body_util::BodyExt;
    let stream = tokio::net::UnixStream::connect(sock).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut b = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("Host", "docker");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let body = http_body_util::Full::new(bytes::Bytes::from(body));
    let resp = sender.send_request(b.body(body).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}
