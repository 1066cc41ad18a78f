//! "One store, two ways in": when `strata serve` holds the store, the CLI's
//! image commands go through the server's socket (`<root>/strata.sock`)
//! and print exactly what the local path prints (same render functions).
//!
//! Served remotely: `images`/`image ls`, `inspect`/`image inspect`,
//! `tag`/`image tag`, `rmi`/`image rm`, `history`/`image history`, `load`,
//! `save` (docker-archive), `image prune`, `import`, `container
//! create/ls/rm` (`POST /containers/create`, `GET /containers/json`,
//! `DELETE /containers/{id}`), `commit` (`POST /commit`) and `system df`
//! (`GET /system/df`). `gc` and `fsck` have no Engine API route: they fail
//! naming the server's pid and what to do. Other commands fail with a
//! message saying the store is served. `audit` never comes here: it opens
//! the store read-only.

use super::{
    Command, ContainerCommand, Failure, HistoryArgs, ImageCommand, ImagesArgs, RmiArgs,
    SystemCommand, render,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use strata::Filters;
use tokio::net::UnixStream;

type ReqBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// Whether a server answers `GET /_ping` on `sock`.
pub(super) async fn available(sock: &Path) -> bool {
    matches!(request(sock, "GET", "/_ping", empty()).await, Ok((200, _)))
}

fn empty() -> ReqBody {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

/// Percent-encode a path segment or query value.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:/@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn enc_q(s: &str) -> String {
    enc(s)
        .replace('/', "%2F")
        .replace(':', "%3A")
        .replace('@', "%40")
}

async fn send(
    sock: &Path,
    method: &str,
    path: &str,
    body: ReqBody,
) -> Result<hyper::Response<hyper::body::Incoming>, Failure> {
    send_typed(sock, method, path, body, None).await
}

/// [`send`] with a `Content-Type`.
async fn send_typed(
    sock: &Path,
    method: &str,
    path: &str,
    body: ReqBody,
    content_type: Option<&str>,
) -> Result<hyper::Response<hyper::body::Incoming>, Failure> {
    let stream = UnixStream::connect(sock).await.map_err(|e| {
        Failure(format!(
            "Cannot connect to strata serve at unix://{}: {e}",
            sock.display()
        ))
    })?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| Failure(format!("strata serve: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("/v1.41{path}"))
        .header("Host", "strata")
        .header(
            "User-Agent",
            concat!("strata-cli/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(t) = content_type {
        req = req.header("Content-Type", t);
    }
    let req = req.body(body).map_err(|e| Failure(e.to_string()))?;
    sender
        .send_request(req)
        .await
        .map_err(|e| Failure(format!("strata serve: {e}")))
}

/// A complete request: status and body.
async fn request(
    sock: &Path,
    method: &str,
    path: &str,
    body: ReqBody,
) -> Result<(u16, Vec<u8>), Failure> {
    read_all(send(sock, method, path, body).await?).await
}

/// A response's status and whole body.
async fn read_all(resp: hyper::Response<hyper::body::Incoming>) -> Result<(u16, Vec<u8>), Failure> {
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| Failure(format!("strata serve: {e}")))?
        .to_bytes()
        .to_vec();
    Ok((status, body))
}

/// The `message` of an error body.
fn message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string())
}

fn daemon(body: &[u8]) -> Failure {
    Failure(format!("Error response from daemon: {}", message(body)))
}

fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|e| Failure(format!("strata serve: bad response: {e}")))
}

/// A body streamed from a blocking reader (a file or stdin).
fn reader_body(mut r: impl std::io::Read + Send + 'static) -> ReqBody {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx
                        .blocking_send(Ok(Frame::data(Bytes::copy_from_slice(&buf[..n]))))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    BodyExt::boxed(StreamBody::new(
        tokio_stream::wrappers::ReceiverStream::new(rx),
    ))
}

/// Run `command` through the server on `sock`.
pub(super) async fn run(command: Command, sock: &Path) -> Result<(), Failure> {
    let mut out = super::stdout::Stdout::lock();
    match command {
        Command::Images(a)
        | Command::Image {
            command: ImageCommand::Ls(a),
        } => images(sock, &mut out, a).await,
        Command::Inspect { names }
        | Command::Image {
            command: ImageCommand::Inspect { names },
        } => inspect(sock, &mut out, names).await,
        Command::Tag { source, target }
        | Command::Image {
            command: ImageCommand::Tag { source, target },
        } => tag(sock, &source, &target).await,
        Command::Rmi(a)
        | Command::Image {
            command: ImageCommand::Rm(a),
        } => rmi(sock, &mut out, a).await,
        Command::History(a)
        | Command::Image {
            command: ImageCommand::History(a),
        } => history(sock, &mut out, a).await,
        Command::Image {
            command: ImageCommand::Prune { all, force, filter },
        } => prune(sock, &mut out, all, force, filter).await,
        Command::Load { input, quiet } => load(sock, &mut out, input, quiet).await,
        Command::Save {
            output,
            images,
            format,
        } => save(sock, output, images, &format).await,
        Command::Import {
            message,
            change,
            file,
            reference,
        } => import(sock, &mut out, message, change, file, reference).await,
        Command::Container { command } => container(sock, &mut out, command).await,
        Command::Commit {
            message,
            author,
            change,
            pause,
            container,
            reference,
        } => {
            commit(
                sock, &mut out, message, author, change, container, reference, pause,
            )
            .await
        }
        Command::System {
            command: SystemCommand::Df { format },
        } => system_df(sock, &mut out, format == "json").await,
        Command::Gc { .. } => Err(maintenance(sock, "gc").await),
        Command::Fsck { .. } => Err(maintenance(sock, "fsck").await),
        _ => Err(Failure(format!(
            "strata: the store is served by `strata serve` (unix://{}); this command is not available through the server yet: stop the server or use the docker CLI with DOCKER_HOST=unix://{}",
            sock.display(),
            sock.display()
        ))),
    }
}

async fn images(sock: &Path, out: &mut impl Write, a: ImagesArgs) -> Result<(), Failure> {
    let mut filters = super::cli_filters(&a.filter)?;
    if let Some(r) = &a.reference {
        filters.add("reference", r);
    }
    let path = format!(
        "/images/json?all={}&filters={}",
        if a.all { 1 } else { 0 },
        enc_q(&filters.to_json())
    );
    let (st, body) = request(sock, "GET", &path, empty()).await?;
    if st != 200 {
        return Err(daemon(&body));
    }
    let list: Vec<strata::ImageSummary> = json(&body)?;
    super::print_images(out, &list, &a)
}

async fn inspect(sock: &Path, out: &mut impl Write, names: Vec<String>) -> Result<(), Failure> {
    let mut raws = Vec::new();
    let mut errors = Vec::new();
    for n in &names {
        let (st, body) = request(sock, "GET", &format!("/images/{}/json", enc(n)), empty()).await?;
        match st {
            200 => {
                let mut b = body;
                while b.last() == Some(&b'\n') {
                    b.pop();
                }
                raws.push(b)
            }
            404 => errors.push(format!("Error: No such object: {n}")),
            _ => errors.push(format!("Error response from daemon: {}", message(&body))),
        }
    }
    super::print_inspect(out, &raws, errors)
}

async fn tag(sock: &Path, source: &str, target: &str) -> Result<(), Failure> {
    let (repo, tag) = super::tag_target(target)?;
    let path = format!(
        "/images/{}/tag?repo={}&tag={}",
        enc(source),
        enc_q(&repo),
        enc_q(&tag)
    );
    let (st, body) = request(sock, "POST", &path, empty()).await?;
    if st != 201 {
        return Err(daemon(&body));
    }
    Ok(())
}

async fn rmi(sock: &Path, out: &mut impl Write, a: RmiArgs) -> Result<(), Failure> {
    let mut results = Vec::new();
    for name in &a.images {
        let path = format!(
            "/images/{}?force={}&noprune={}",
            enc(name),
            if a.force { 1 } else { 0 },
            if a.no_prune { 1 } else { 0 }
        );
        let (st, body) = request(sock, "DELETE", &path, empty()).await?;
        results.push(match st {
            200 => {
                let items: Vec<strata::DeleteItem> = json(&body)?;
                render::RmiResult::Removed(items.into_iter().map(super::delete_item).collect())
            }
            404 => render::RmiResult::NotFound { name: name.clone() },
            _ => render::RmiResult::Failed {
                message: message(&body),
            },
        });
    }
    let report = render::render_rmi_command(&results, a.force);
    write!(out, "{}", report.stdout)?;
    eprint!("{}", report.stderr);
    if report.exit_code == 0 {
        Ok(())
    } else {
        Err(Failure(String::new()))
    }
}

async fn history(sock: &Path, out: &mut impl Write, a: HistoryArgs) -> Result<(), Failure> {
    let (st, body) = request(
        sock,
        "GET",
        &format!("/images/{}/history", enc(&a.image)),
        empty(),
    )
    .await?;
    if st != 200 {
        return Err(daemon(&body));
    }
    let items: Vec<strata::HistoryItem> = json(&body)?;
    super::print_history(out, &items, &a)
}

async fn prune(
    sock: &Path,
    out: &mut impl Write,
    all: bool,
    force: bool,
    filter: Vec<String>,
) -> Result<(), Failure> {
    let mut filters: Filters = super::cli_filters(&filter)?;
    filters.add("dangling", if all { "false" } else { "true" });
    if !force && !super::confirm_prune(out, all)? {
        return Ok(());
    }
    let path = format!("/images/prune?filters={}", enc_q(&filters.to_json()));
    let (st, body) = request(sock, "POST", &path, empty()).await?;
    if st != 200 {
        return Err(daemon(&body));
    }
    let report: strata::PruneReport = json(&body)?;
    super::print_prune(out, report)
}

/// Read a JSON message stream: `stream` texts and `status` lines go to
/// `out`; an error ends it.
async fn messages(
    resp: hyper::Response<hyper::body::Incoming>,
    out: &mut impl Write,
    statuses: bool,
) -> Result<(), Failure> {
    let (status, body) = read_all(resp).await?;
    if status != 200 {
        return Err(daemon(&body));
    }
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let v: serde_json::Value = json(line)?;
        if let Some(e) = v["error"].as_str() {
            return Err(Failure(format!("Error response from daemon: {e}")));
        }
        if let Some(s) = v["stream"].as_str() {
            write!(out, "{s}")?;
        }
        if statuses && let Some(s) = v["status"].as_str() {
            writeln!(out, "{s}")?;
        }
    }
    Ok(())
}

async fn load(
    sock: &Path,
    out: &mut impl Write,
    input: Option<PathBuf>,
    quiet: bool,
) -> Result<(), Failure> {
    let body = match input {
        Some(p) if p.is_dir() => {
            return Err(Failure(
                "strata: loading an OCI layout directory is not available through strata serve"
                    .into(),
            ));
        }
        Some(p) => {
            let f = std::fs::File::open(&p).map_err(|e| {
                Failure(format!(
                    "open {}: {}",
                    p.display(),
                    e.to_string().to_lowercase()
                ))
            })?;
            reader_body(f)
        }
        None => {
            if std::io::stdin().is_terminal() {
                return Err(Failure(
                    "requested load from stdin, but stdin is empty".into(),
                ));
            }
            reader_body(std::io::stdin())
        }
    };
    let path = format!("/images/load?quiet={}", if quiet { 1 } else { 0 });
    let resp = send(sock, "POST", &path, body).await?;
    messages(resp, out, false).await
}

async fn save(
    sock: &Path,
    output: Option<PathBuf>,
    images: Vec<String>,
    format: &str,
) -> Result<(), Failure> {
    if format != "docker-archive" {
        return Err(Failure(format!(
            "strata: --format {format} is not available through strata serve (docker-archive only)"
        )));
    }
    let names: Vec<String> = images
        .iter()
        .map(|n| format!("names={}", enc_q(n)))
        .collect();
    let resp = send(
        sock,
        "GET",
        &format!("/images/get?{}", names.join("&")),
        empty(),
    )
    .await?;
    if resp.status().as_u16() != 200 {
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Failure(e.to_string()))?
            .to_bytes();
        return Err(daemon(&body));
    }
    let mut body = resp.into_body();
    let (mut sink, tmp): (Box<dyn Write>, Option<(tempfile::NamedTempFile, PathBuf)>) = match output
    {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let tmp = tempfile::NamedTempFile::new_in(dir)
                .map_err(|e| Failure(format!("failed to save image: {e}")))?;
            (
                Box::new(std::io::BufWriter::new(tmp.reopen()?)),
                Some((tmp, path)),
            )
        }
        None => {
            if std::io::stdout().is_terminal() {
                return Err(Failure(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
                ));
            }
            (Box::new(std::io::stdout()), None)
        }
    };
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Failure(format!("failed to save image: {e}")))?;
        if let Ok(data) = frame.into_data() {
            sink.write_all(&data)?;
        }
    }
    sink.flush()?;
    drop(sink);
    if let Some((tmp, path)) = tmp {
        tmp.persist(&path)
            .map_err(|e| Failure(format!("failed to save image: {}", e.error)))?;
    }
    Ok(())
}

async fn import(
    sock: &Path,
    out: &mut impl Write,
    message: Option<String>,
    change: Vec<String>,
    file: String,
    reference: Option<String>,
) -> Result<(), Failure> {
    let mut q = vec!["fromSrc=-".to_string()];
    if let Some(r) = &reference {
        q.push(format!("repo={}", enc_q(r)));
    }
    if let Some(m) = &message {
        q.push(format!("message={}", enc_q(m)));
    }
    for c in &change {
        q.push(format!("changes={}", enc_q(c)));
    }
    let body = if file == "-" {
        reader_body(std::io::stdin())
    } else {
        let f = std::fs::File::open(&file)
            .map_err(|e| Failure(format!("open {file}: {}", e.to_string().to_lowercase())))?;
        reader_body(f)
    };
    let resp = send(
        sock,
        "POST",
        &format!("/images/create?{}", q.join("&")),
        body,
    )
    .await?;
    messages(resp, out, true).await
}

/// The pid of the process serving `sock` (the peer of a connection to it).
async fn server_pid(sock: &Path) -> Option<i32> {
    let stream = UnixStream::connect(sock).await.ok()?;
    stream.peer_cred().ok()?.pid()
}

/// Why `command` (gc, fsck) cannot run while the store is served: they
/// need the store to themselves and the Engine API has no route for them.
async fn maintenance(sock: &Path, command: &str) -> Failure {
    let (who, stop) = match server_pid(sock).await {
        Some(pid) => (
            format!("`strata serve` (pid {pid}, unix://{})", sock.display()),
            format!("stop the server (kill {pid})"),
        ),
        None => (
            format!("`strata serve` (unix://{})", sock.display()),
            "stop the server".to_string(),
        ),
    };
    Failure(format!(
        "strata: the store is served by {who}; `strata {command}` needs the store to itself and the server has no route for it: {stop}, run `strata {command}`, then start `strata serve` again"
    ))
}

/// A JSON request body.
fn json_body(v: &serde_json::Value) -> ReqBody {
    Full::new(Bytes::from(v.to_string()))
        .map_err(|never| match never {})
        .boxed()
}

/// `POST` a JSON body (with its content type); status and body.
async fn post_json(
    sock: &Path,
    path: &str,
    v: &serde_json::Value,
) -> Result<(u16, Vec<u8>), Failure> {
    read_all(send_typed(sock, "POST", path, json_body(v), Some("application/json")).await?).await
}

async fn container(
    sock: &Path,
    out: &mut impl Write,
    cmd: ContainerCommand,
) -> Result<(), Failure> {
    match cmd {
        ContainerCommand::Create { name, image } => {
            // The local path records no config: commit then starts from
            // the config dockerd gives a container created from `image`
            // alone. Send exactly that config (with the image's ID, as the
            // local record names it), so both paths create the same record.
            // An image the server cannot find is sent as named: the create
            // route then words the error as the local path does.
            let (st, body) = request(
                sock,
                "GET",
                &format!("/images/{}/json", enc(&image)),
                empty(),
            )
            .await?;
            let found: serde_json::Value = if st == 200 {
                json(&body)?
            } else {
                serde_json::Value::Null
            };
            let id = found["Id"].as_str().unwrap_or(&image);
            let config = serde_json::json!({
                "AttachStdout": true,
                "AttachStderr": true,
                "Image": id,
                "Labels": {},
            });
            let mut path = "/containers/create".to_string();
            if let Some(n) = &name {
                path.push_str(&format!("?name={}", enc_q(n)));
            }
            let (st, body) = post_json(sock, &path, &config).await?;
            if st != 201 {
                return Err(daemon(&body));
            }
            let created: serde_json::Value = json(&body)?;
            let id = created["Id"].as_str().unwrap_or_default();
            // `<root>/containers/<id>/rw`; the socket is `<root>/strata.sock`.
            let root = sock.parent().unwrap_or(Path::new("."));
            let rw = root.join("containers").join(id).join("rw");
            writeln!(out, "{id}\t{}", rw.display())?;
        }
        ContainerCommand::Ls => {
            let (st, body) = request(sock, "GET", "/containers/json?all=1", empty()).await?;
            if st != 200 {
                return Err(daemon(&body));
            }
            let mut list: Vec<serde_json::Value> = json(&body)?;
            // The local listing is in ID order.
            list.sort_by(|a, b| a["Id"].as_str().cmp(&b["Id"].as_str()));
            let mut lines = vec!["CONTAINER ID\tIMAGE\tNAMES".to_string()];
            for c in &list {
                let id = c["Id"].as_str().unwrap_or_default();
                let name = c["Names"][0].as_str().unwrap_or_default();
                lines.push(format!(
                    "{}\t{}\t{}",
                    &id[..12.min(id.len())],
                    render::truncate_id(c["ImageID"].as_str().unwrap_or_default()),
                    name.strip_prefix('/').unwrap_or(name)
                ));
            }
            write!(out, "{}", render::docker_table(&lines))?;
        }
        ContainerCommand::Rm { containers } => {
            let mut errors = Vec::new();
            for c in &containers {
                let (st, body) =
                    request(sock, "DELETE", &format!("/containers/{}", enc(c)), empty()).await?;
                if st == 204 || st == 200 {
                    writeln!(out, "{c}")?;
                } else {
                    errors.push(daemon(&body).0);
                }
            }
            if !errors.is_empty() {
                return Err(Failure(errors.join("\n")));
            }
        }
    }
    Ok(())
}

/// `strata commit` through `POST /commit` (the local path's client-side
/// reference handling, then the daemon's).
#[allow(clippy::too_many_arguments)]
async fn commit(
    sock: &Path,
    out: &mut impl Write,
    message: Option<String>,
    author: Option<String>,
    changes: Vec<String>,
    container: String,
    reference: Option<String>,
    pause: bool,
) -> Result<(), Failure> {
    let mut q = vec![format!("container={}", enc_q(&container))];
    if let Some((repo, tag)) = super::commit::commit_target(reference.as_deref())? {
        q.push(format!("repo={}", enc_q(&repo)));
        q.push(format!("tag={}", enc_q(&tag)));
    }
    if let Some(a) = &author {
        q.push(format!("author={}", enc_q(a)));
    }
    if let Some(m) = &message {
        q.push(format!("comment={}", enc_q(m)));
    }
    for c in &changes {
        q.push(format!("changes={}", enc_q(c)));
    }
    q.push(format!("pause={}", if pause { 1 } else { 0 }));
    let (st, body) = request(sock, "POST", &format!("/commit?{}", q.join("&")), empty()).await?;
    if st != 201 && st != 200 {
        return Err(daemon(&body));
    }
    let v: serde_json::Value = json(&body)?;
    writeln!(out, "{}", v["Id"].as_str().unwrap_or_default())?;
    Ok(())
}

/// `strata system df` through `GET /system/df`.
async fn system_df(sock: &Path, out: &mut impl Write, as_json: bool) -> Result<(), Failure> {
    let (st, body) = request(sock, "GET", "/system/df", empty()).await?;
    if st != 200 {
        return Err(daemon(&body));
    }
    let v: serde_json::Value = json(&body)?;
    let images: Vec<strata::ImageSummary> = serde_json::from_value(v["Images"].clone())
        .map_err(|e| Failure(format!("strata serve: bad response: {e}")))?;
    let i64_of = |v: &serde_json::Value| v.as_i64().unwrap_or(0);
    let str_of = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let mut containers: Vec<strata::DfContainer> = v["Containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|c| strata::DfContainer {
            id: str_of(&c["Id"]),
            names: c["Names"]
                .as_array()
                .map(|a| a.iter().map(str_of).collect())
                .unwrap_or_default(),
            // The local path names the image by its ID.
            image: str_of(&c["ImageID"]),
            image_id: str_of(&c["ImageID"]),
            command: str_of(&c["Command"]),
            created: i64_of(&c["Created"]),
            size_rw: i64_of(&c["SizeRw"]),
            size_root_fs: i64_of(&c["SizeRootFs"]),
            state: str_of(&c["State"]),
            status: str_of(&c["Status"]),
        })
        .collect();
    // The local listing is in ID order.
    containers.sort_by(|a, b| a.id.cmp(&b.id));
    let du = strata::DiskUsage {
        layers_size: i64_of(&v["LayersSize"]),
        images,
        containers,
        volumes: Vec::new(),
        build_cache: None,
        builder_size: i64_of(&v["BuilderSize"]),
    };
    super::commit::print_system_df(out, &du, as_json)
}
