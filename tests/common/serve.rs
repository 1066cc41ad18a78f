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
