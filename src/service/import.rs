//! `ImportImage`: a rootfs tarball becomes a one-layer image (image-service.md §5.2).

use super::ImageService;
use super::lookup::{self, TagPath};
use crate::config::{ContainerConfig, GoTime, History, ImageConfig, RootFs};
use crate::distribution::Progress;
use crate::error::{Error, ErrorKind, Result};
use crate::event::ImageSource;
use crate::reference::Reference;
use tokio::sync::mpsc::UnboundedSender;

/// Options of [`ImageService::import_image`] beyond Docker's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportOptions {
    /// The creation time; `None` = now, in UTC (Docker's behaviour). Fixing it
    /// makes the image ID reproducible.
    pub created: Option<GoTime>,
    /// What the default message names: `Imported from <source_name>`; `-` for
    /// a request body or stdin (also what `docker import FILE` sends), else the URL.
    pub source_name: String,
    /// `os` of the config (Docker: the platform's OS, default the host's).
    pub os: String,
    /// `architecture` of the config (Docker: the host's).
    pub architecture: String,
}

impl Default for ImportOptions {
    fn default() -> ImportOptions {
        ImportOptions {
            created: None,
            source_name: "-".to_string(),
            os: "linux".to_string(),
            architecture: "amd64".to_string(),
        }
    }
}

/// §5.2 step 2: the reference to tag, if a repository was given.
fn import_reference(repository: Option<&str>, tag: Option<&str>) -> Result<Option<Reference>> {
    let Some(repository) = repository.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let mut r =
        Reference::parse_normalized_named(repository).map_err(|e| Error::invalid(e.message()))?;
    if r.digest().is_some() {
        return Err(Error::invalid("cannot import digest reference"));
    }
    if let Some(tag) = tag.filter(|t| !t.is_empty()) {
        r = r.with_tag(tag).map_err(|e| Error::invalid(e.message()))?;
    }
    Ok(Some(r))
}

/// The config bytes of an imported image (§5.2 step 7, serialised per §2.3).
pub(crate) fn import_config(
    config: ContainerConfig,
    diff_id: &str,
    message: &str,
    created: GoTime,
    options: &ImportOptions,
) -> Vec<u8> {
    ImageConfig {
        comment: message.to_string(),
        created,
        docker_version: crate::config::DOCKER_VERSION.to_string(),
        config: Some(config),
        architecture: options.architecture.clone(),
        os: options.os.clone(),
        rootfs: Some(RootFs {
            fs_type: "layers".to_string(),
            diff_ids: vec![diff_id.to_string()],
        }),
        history: vec![History {
            created,
            comment: message.to_string(),
            ..History::default()
        }],
        ..ImageConfig::default()
    }
    .to_docker_json()
}

/// Docker reports a layer that is not a tar as the failed `ApplyLayer` child.
fn layer_error(e: Error) -> Error {
    if e.kind() == ErrorKind::InvalidArgument && e.message().starts_with("layer: invalid tar") {
        return Error::internal(
            "ApplyLayer exit status 1 stdout:  stderr: archive/tar: invalid tar header",
        );
    }
    e
}

/// The reference and runtime config of an import, checked before any byte
/// of the source is read (Docker's order: reference, OS, changes, source).
struct Prepared {
    reference: Option<Reference>,
    config: ContainerConfig,
    message: Option<String>,
}

fn prepare(
    repository: Option<&str>,
    tag: Option<&str>,
    message: Option<&str>,
    changes: &[String],
    options: &ImportOptions,
) -> Result<Prepared> {
    let reference = import_reference(repository, tag)?;
    if options.os != "linux" {
        return Err(Error::invalid("operating system is not supported"));
    }
    let config = crate::changes::build_from_config(&ContainerConfig::default(), changes)?;
    Ok(Prepared {
        reference,
        config,
        message: message.filter(|m| !m.is_empty()).map(str::to_string),
    })
}

/// Docker's `ImportImage` source normalisation: a `src` without `://`
/// gets `http://` prepended.
pub(crate) fn import_source_url(src: &str) -> String {
    if src.contains("://") {
        src.to_string()
    } else {
        format!("http://{src}")
    }
}

/// dockerd's `remotecontext.GetWithStatusError`: GET `url` (following up
/// to 10 redirects, http or https with the system roots); a status ≥ 400
/// fails with `failed to GET <url> with status <code> <reason>: <trimmed
/// body>` (NotFound for 404, InvalidArgument for 400, else Internal);
/// transport errors are Go's `Get "<url>": …` text (Internal).
async fn get_with_status_error(url: &str) -> Result<hyper::Response<hyper::body::Incoming>> {
    use crate::distribution::client::{Session, Url, empty, read_body};
    let parsed = Url::parse(url)?;
    let session = Session::plain(Url::parse("http://import.invalid/")?);
    let resp = session
        .send(hyper::Method::GET, parsed, Vec::new(), empty())
        .await
        .map_err(|f| {
            let e = f.into_error();
            // Go: a DNS failure (not a timeout) is NotFound.
            if e.message().contains("lookup") || e.message().contains("failed to lookup address") {
                e.with_kind(ErrorKind::NotFound)
            } else {
                e
            }
        })?;
    let status = resp.status();
    if status.as_u16() < 400 {
        return Ok(resp);
    }
    let reason = resp
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_string());
    let mut msg = format!(
        "failed to GET {url} with status {} {reason}",
        status.as_u16()
    );
    match read_body(resp, 16 << 20).await {
        Ok(body) => {
            msg.push_str(": ");
            msg.push_str(String::from_utf8_lossy(&body).trim());
        }
        Err(_) => {
            return Err(Error::internal(format!("{msg}: error reading body")));
        }
    }
    Err(match status.as_u16() {
        404 => Error::not_found(msg),
        400 => Error::invalid(msg),
        _ => Error::internal(msg),
    })
}

/// A blocking reader over a response body, with Docker's `Importing`
/// progress (`progress.NewProgressReader`: an update every 1% of the
/// length, at most every 512 KiB, rate-limited to one per 100 ms, and
/// always the last one).
struct DownloadReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    cur: bytes::Bytes,
    current: u64,
    total: u64,
    last_update: u64,
    last_sent: Option<std::time::Instant>,
    progress: Option<UnboundedSender<Progress>>,
}

impl DownloadReader {
    fn spawn(
        resp: hyper::Response<hyper::body::Incoming>,
        progress: Option<UnboundedSender<Progress>>,
    ) -> DownloadReader {
        use http_body_util::BodyExt;
        let total = resp
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .unwrap_or(0);
        let mut body = resp.into_body();
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => {
                        if let Ok(data) = f.into_data()
                            && !data.is_empty()
                            && tx.send(Ok(data)).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(e) => {
                        let text = crate::distribution::client::body_error(&e);
                        let _ = tx
                            .send(Err(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                text,
                            )))
                            .await;
                        return;
                    }
                }
            }
        });
        DownloadReader {
            rx,
            cur: bytes::Bytes::new(),
            current: 0,
            total,
            last_update: 0,
            last_sent: None,
            progress,
        }
    }

    fn update(&mut self, last: bool) {
        let Some(tx) = &self.progress else { return };
        let now = std::time::Instant::now();
        let allowed = self
            .last_sent
            .is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_millis(100));
        if last || self.current == self.total || allowed {
            self.last_sent = Some(now);
            let _ = tx.send(Progress::Bytes {
                id: String::new(),
                action: "Importing".to_string(),
                current: self.current,
                total: self.total,
            });
        }
    }

    fn account(&mut self, read: usize, end: bool) {
        self.current += read as u64;
        let mut every: u64 = 512 * 1024;
        if self.total > 0 {
            every = every.min(self.total / 100);
        }
        if self.current - self.last_update > every || end {
            self.update(end && read == 0);
            self.last_update = self.current;
        }
    }
}

impl std::io::Read for DownloadReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => {
                    self.account(0, true);
                    return Err(e);
                }
                None => {
                    self.account(0, true);
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        self.account(n, false);
        Ok(n)
    }
}

impl ImageService {
    /// `ImportImage`: register `src` (a rootfs tar, possibly gzip/bzip2/xz
    /// compressed) as a new parentless layer, build an image config around
    /// it with `changes` applied to an empty container config, create the
    /// image and, when `repository` is given, tag it (`repository` may carry
    /// a tag; a non-empty `tag` replaces it). Returns the image ID.
    ///
    /// Errors (InvalidArgument unless said): the repository's parse error
    /// (`invalid reference format: repository name must be lowercase`),
    /// `cannot import digest reference`, `invalid tag format`, any change
    /// error (`run is not a valid change command`, …), a layer that is not a
    /// tar (Internal, `ApplyLayer exit status 1 stdout:  stderr: archive/tar:
    /// invalid tar header`). Nothing is recorded when an error is returned.
    pub async fn import_image(
        &self,
        src: impl std::io::Read + Send + 'static,
        repository: Option<&str>,
        tag: Option<&str>,
        message: Option<&str>,
        changes: &[String],
        options: ImportOptions,
    ) -> Result<String> {
        let prepared = prepare(repository, tag, message, changes, &options)?;
        self.import_prepared(src, prepared, options).await
    }

    /// `ImportImage` with `fromSrc=<url>`: as [`ImageService::import_image`]
    /// on the body of an HTTP(S) GET of `src` (`http://` is prepended when
    /// `src` has no scheme; redirects are followed). The reference and
    /// changes are checked before the request. The default message is
    /// `Imported from <url>` (`options.source_name` is replaced by the URL).
    /// `progress` receives `Downloading from <url>` (a [`Progress::Status`],
    /// once the response arrived) and `Importing` byte progress
    /// ([`Progress::Bytes`] with an empty id; total 0 when the length is
    /// unknown). The ID equals the one of importing the same bytes from a
    /// reader with the same message and creation time.
    ///
    /// Errors, besides those of `import_image`: Go's transport error
    /// (`Get "http://127.0.0.1:1/x": dial tcp 127.0.0.1:1: connect:
    /// connection refused`, Internal), an HTTP status ≥ 400 (`failed to GET
    /// <url> with status 404 Not Found: <trimmed body>`; NotFound for 404,
    /// InvalidArgument for 400, else Internal).
    #[allow(clippy::too_many_arguments)]
    pub async fn import_image_url(
        &self,
        src: &str,
        repository: Option<&str>,
        tag: Option<&str>,
        message: Option<&str>,
        changes: &[String],
        mut options: ImportOptions,
        progress: Option<UnboundedSender<Progress>>,
    ) -> Result<String> {
        let prepared = prepare(repository, tag, message, changes, &options)?;
        let url = import_source_url(src);
        let resp = get_with_status_error(&url).await?;
        if let Some(tx) = &progress {
            let _ = tx.send(Progress::Status(format!("Downloading from {url}")));
        }
        options.source_name = url;
        let reader = DownloadReader::spawn(resp, progress);
        self.import_prepared(reader, prepared, options).await
    }

    async fn import_prepared(
        &self,
        src: impl std::io::Read + Send + 'static,
        prepared: Prepared,
        options: ImportOptions,
    ) -> Result<String> {
        let Prepared {
            reference,
            config,
            message,
        } = prepared;
        let message = message.unwrap_or_else(|| format!("Imported from {}", options.source_name));
        self.blocking(move |s| {
            let layer = crate::layer::ingest_layer(s.store().content(), src, "layer")
                .map_err(layer_error)?;
            let created = options.created.unwrap_or_else(GoTime::now_utc);
            let bytes = import_config(config, &layer.diff_id, &message, created, &options);
            s.store().write(&s.actor, |w| {
                crate::layer::register_layers(w, std::slice::from_ref(&layer))?;
                let id = super::create_image_in(w, bytes, None, ImageSource::Import)?;
                if let Some(r) = &reference {
                    lookup::add_tag(w, r, &id, TagPath::UserTag)?;
                }
                Ok(id)
            })
        })
        .await
    }
}
