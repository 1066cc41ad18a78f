//! `strata serve`: the Docker Engine API v1.41's image routes on a unix
//! socket, for the real `docker` CLI and API clients.
//!
//! * [`router`]: paths (versioned and not), the version check, common headers;
//! * [`images`], [`system`], [`containers`]: the route handlers;
//! * [`errors`]: `{"message":…}` bodies with the status of the error's kind;
//! * [`json`]: Go-compatible JSON and the JSON message streams;
//! * [`stream`]: async body ⇄ blocking `Read`/`Write` bridges;
//! * [`events`]: `/events` from the durable log plus live events;
//! * [`actor`]: every request runs as its peer uid + User-Agent.
//!
//! * [`archive`]: `docker cp`'s archive routes, export and commit.
//! * [`registry`]: pull, push, search and login against registries.

pub mod actor;
pub mod archive;
pub mod containers;
pub mod errors;
pub mod events;
pub mod images;
pub mod json;
pub mod query;
pub mod registry;
pub mod router;
pub mod stream;
pub mod system;

use crate::error::{Error, ErrorKind, Result};
use crate::service::ImageService;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::watch;

/// Response body type of every route.
pub type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// State shared by all connections.
pub struct State {
    svc: ImageService,
    hub: Arc<events::Hub>,
    stop: watch::Receiver<bool>,
    df_running: AtomicBool,
    /// The last `GET /images/json` answer (see [`images::ListingAnswer`]).
    listing: std::sync::Mutex<Option<images::ListingAnswer>>,
}

/// How long shutdown waits for in-flight requests.
const GRACE: Duration = Duration::from_secs(30);

/// Make `socket` bindable: refuse when a live server answers on it or it
/// is not a socket; remove a stale socket file.
fn prepare_socket(socket: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(socket) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::from(e).context(format!("socket {}", socket.display()))),
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("socket {} is in use by a running server", socket.display()),
                ));
            }
            std::fs::remove_file(socket).map_err(|e| {
                Error::from(e).context(format!("removing stale socket {}", socket.display()))
            })
        }
        Ok(_) => Err(Error::invalid(format!(
            "{} exists and is not a socket",
            socket.display()
        ))),
    }
}

/// Serve the Engine API for `svc` on the unix socket `socket` until
/// `shutdown` resolves; then stop accepting, end event streams, let
/// in-flight requests finish (up to 30 s) and remove the socket file.
pub async fn serve(
    svc: ImageService,
    socket: &Path,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    prepare_socket(socket)?;
    let listener = UnixListener::bind(socket)
        .map_err(|e| Error::from(e).context(format!("listening on {}", socket.display())))?;
    let result = run(svc, listener, shutdown).await;
    let _ = std::fs::remove_file(socket);
    result
}

async fn run(
    svc: ImageService,
    listener: UnixListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(addr) = listener.local_addr()
            && let Some(path) = addr.as_pathname()
        {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660));
        }
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let store_events = svc.store().subscribe();
    let svc2 = svc.clone();
    let (mapper, head) = tokio::task::spawn_blocking(move || -> Result<_> {
        let head = svc2.store().head()?.next_seq.saturating_sub(1);
        Ok((events::Mapper::from_store(svc2.store())?, head))
    })
    .await
    .map_err(|e| Error::internal(format!("worker failed: {e}")))??;
    let hub = events::Hub::start(store_events, mapper, head, stop_rx.clone());
    let state = Arc::new(State {
        svc,
        hub,
        stop: stop_rx,
        df_running: AtomicBool::new(false),
        listing: std::sync::Mutex::new(None),
    });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            conn = listener.accept() => {
                let stream = match conn {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let uid = stream.peer_cred().ok().map(|c| c.uid());
                let st = state.clone();
                let service = service_fn(move |req| {
                    let st = st.clone();
                    async move { Ok::<_, Infallible>(router::handle(st, uid, req).await) }
                });
                let conn = http1::Builder::new()
                    .title_case_headers(true)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(GRACE, graceful.shutdown()).await;
    Ok(())
}
