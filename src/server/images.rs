//! The image routes (engine-api.md §3.7–§3.18).

use super::errors::{ApiError, ApiResult};
use super::events::{EventMessage, now_nanos};
use super::json::JsonMessage;
use super::router::{Ctx, compare_versions, json_response};
use super::stream::{BodyReader, ChannelWriter, channel_body};
use super::{Body, full};
use crate::filters::Filters;
use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use std::collections::BTreeMap;
use tokio::sync::mpsc;

/// `GET /images/json`.
pub async fn list(ctx: Ctx) -> ApiResult<Response<Body>> {
    let mut filters = Filters::from_json(ctx.query.get("filters"))?;
    if let Some(v) = ctx.version.as_deref()
        && compare_versions(v, "1.41").is_lt()
    {
        let legacy = ctx.query.get("filter");
        if !legacy.is_empty() {
            filters.add("reference", legacy);
        }
    }
    let all = ctx.query.bool("all");
    let images = ctx.svc.images(filters, all, false).await?;
    Ok(json_response(200, &images))
}

/// `GET /images/{name}/json`.
pub async fn inspect(ctx: Ctx, name: &str) -> ApiResult<Response<Body>> {
    Ok(json_response(200, &ctx.svc.lookup_image(name).await?))
}

/// `GET /images/{name}/history`.
pub async fn history(ctx: Ctx, name: &str) -> ApiResult<Response<Body>> {
    Ok(json_response(200, &ctx.svc.image_history(name).await?))
}

/// `POST /images/{name}/tag`: 201, empty body.
pub async fn tag(ctx: Ctx, name: &str) -> ApiResult<Response<Body>> {
    ctx.svc
        .tag_image(name, ctx.query.get("repo"), ctx.query.get("tag"))
        .await?;
    let mut resp = Response::new(full(Vec::new()));
    *resp.status_mut() = StatusCode::CREATED;
    Ok(resp)
}

/// `DELETE /images/{name}`.
pub async fn delete(ctx: Ctx, name: &str) -> ApiResult<Response<Body>> {
    if name.trim_matches(' ').trim().is_empty() {
        return Err(ApiError::bad_request("image name cannot be blank"));
    }
    let force = ctx.query.bool("force");
    let prune = !ctx.query.bool("noprune");
    Ok(json_response(
        200,
        &ctx.svc.image_delete(name, force, prune).await?,
    ))
}

/// `POST /images/prune`; emits the `prune` event the log has no record of.
pub async fn prune(ctx: Ctx) -> ApiResult<Response<Body>> {
    let filters = Filters::from_json(ctx.query.get("filters"))?;
    let report = ctx.svc.images_prune(filters).await?;
    ctx.state
        .hub
        .emit(EventMessage::prune(report.space_reclaimed, now_nanos()));
    Ok(json_response(200, &report))
}

/// The image IDs `names` save, for `save` events (best effort: the
/// library's own resolution in `archive::save` is private).
fn saved_ids(svc: &crate::service::ImageService, names: &[String]) -> Vec<String> {
    use crate::reference::Reference;
    use crate::service::lookup::{get_image, parse_stored};
    svc.store()
        .read(|t| {
            let mut ids: Vec<String> = Vec::new();
            let mut add = |id: String| {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            };
            for name in names {
                if let Ok(found) = get_image(t, name) {
                    add(found.id);
                    continue;
                }
                if let Ok(r) = Reference::parse_normalized_named(name)
                    && r.is_name_only()
                {
                    for (canonical, id) in t.refs_with_prefix(&format!("{}:", r.name()))? {
                        if parse_stored(&canonical).is_ok() {
                            add(id);
                        }
                    }
                }
            }
            Ok(ids)
        })
        .unwrap_or_default()
}

/// `GET /images/get?names=…` and `GET /images/{name}/get`: the tar streams
/// as it is written; errors before the first byte are HTTP errors, later
/// ones are appended to the stream as a JSON error.
pub async fn get(ctx: Ctx, names: Vec<String>) -> ApiResult<Response<Body>> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(4);
    let writer = ChannelWriter::new(tx);
    let svc = ctx.svc.clone();
    let export_names = names.clone();
    let mut job = tokio::spawn(async move { svc.export_image(export_names, writer).await });
    let first = tokio::select! {
        biased;
        chunk = rx.recv() => chunk,
        done = &mut job => {
            let done = done.map_err(|e| ApiError::new(500, e.to_string()))?;
            done?;
            rx.recv().await
        }
    };
    // The writer is gone before the job's result is in: a failure before
    // any output shows up here as an empty channel.
    let mut finished = false;
    if first.is_none() {
        let done = (&mut job)
            .await
            .map_err(|e| ApiError::new(500, e.to_string()))?;
        done?;
        finished = true;
    }
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(4);
    let hub = ctx.state.hub.clone();
    let svc = ctx.svc.clone();
    tokio::spawn(async move {
        if let Some(c) = first
            && out_tx.send(c).await.is_err()
        {
            return;
        }
        loop {
            tokio::select! {
                chunk = rx.recv() => match chunk {
                    Some(c) => if out_tx.send(c).await.is_err() { return },
                    None => break,
                },
                done = &mut job, if !finished => {
                    finished = true;
                    let err = match done {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e.message().to_string()),
                        Err(e) => Some(e.to_string()),
                    };
                    if let Some(msg) = err {
                        while let Ok(c) = rx.try_recv() {
                            if out_tx.send(c).await.is_err() { return }
                        }
                        let _ = out_tx.send(Bytes::from(JsonMessage::error(&msg).to_line())).await;
                        return;
                    }
                }
            }
        }
        if !finished && !matches!(job.await, Ok(Ok(()))) {
            return;
        }
        let saved = tokio::task::spawn_blocking(move || {
            saved_ids(&svc, &names)
                .into_iter()
                .map(|id| {
                    let attrs = image_attrs(&svc, &id);
                    (id, attrs)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (id, attrs) in saved {
            hub.emit(EventMessage::image("save", &id, attrs, now_nanos()));
        }
    });
    let mut resp = Response::new(channel_body(out_rx));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    Ok(resp)
}

/// An image event's attributes: its labels plus `name` = ID.
fn image_attrs(svc: &crate::service::ImageService, id: &str) -> BTreeMap<String, String> {
    let mut a = svc
        .store()
        .read(|t| Ok(t.image(id)?.and_then(|r| r.labels)))
        .ok()
        .flatten()
        .unwrap_or_default();
    a.insert("name".into(), id.to_string());
    a
}

/// `POST /images/load`: 200 and a JSON message stream; every error is in
/// the stream.
pub async fn load(ctx: Ctx) -> ApiResult<Response<Body>> {
    let _quiet = ctx.query.bool_or("quiet", true);
    let svc = ctx.svc.clone();
    let hub = ctx.state.hub.clone();
    let reader = BodyReader::spawn(ctx.req.into_body());
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let before = svc.store().head().map(|h| h.next_seq).unwrap_or(1);
        match svc.load_image(reader, true).await {
            Ok(report) => {
                for line in &report.lines {
                    let msg = JsonMessage::stream(format!("{line}\n"));
                    if tx.send(Bytes::from(msg.to_line())).await.is_err() {
                        break;
                    }
                }
                // `load` events: the log has them for images this load
                // created; the others (already present) are emitted here.
                let svc2 = svc.clone();
                let others = tokio::task::spawn_blocking(move || {
                    let after = svc2.store().head().map(|h| h.next_seq).unwrap_or(before);
                    let created: Vec<String> = svc2
                        .store()
                        .events(before, after.saturating_sub(1))
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|env| match env.body {
                            crate::event::EventBody::ImageCreated { config, .. } => {
                                Some(crate::digest::sha256_digest(&config))
                            }
                            _ => None,
                        })
                        .collect();
                    let mut seen = Vec::new();
                    for id in report.images {
                        if !created.contains(&id) && !seen.contains(&id) {
                            seen.push(id);
                        }
                    }
                    seen.into_iter()
                        .map(|id| {
                            let attrs = image_attrs(&svc2, &id);
                            (id, attrs)
                        })
                        .collect::<Vec<_>>()
                })
                .await
                .unwrap_or_default();
                for (id, attrs) in others {
                    hub.emit(EventMessage::image("load", &id, attrs, now_nanos()));
                }
            }
            Err(e) => {
                let _ = tx
                    .send(Bytes::from(JsonMessage::error(e.message()).to_line()))
                    .await;
            }
        }
    });
    let mut resp = Response::new(channel_body(rx));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// The source of `fromSrc=<url>`: `http://127.0.0.1[:port]/…` or
/// `http://localhost…` only (Docker adds `http://` when no scheme is given).
fn import_url(src: &str) -> ApiResult<(String, hyper::Uri)> {
    let full = if src.contains("://") {
        src.to_string()
    } else {
        format!("http://{src}")
    };
    let uri: hyper::Uri = full
        .parse()
        .map_err(|e| ApiError::bad_request(format!("parse \"{full}\": {e}")))?;
    let local = matches!(uri.host(), Some("127.0.0.1") | Some("localhost"));
    if uri.scheme_str() != Some("http") || !local {
        return Err(ApiError::bad_request(format!(
            "strata imports only from http://127.0.0.1 URLs, not {full}"
        )));
    }
    Ok((full, uri))
}

/// dockerd's `GetWithStatusError`: a streaming GET; statuses ≥ 400 fail
/// with `failed to GET <url> with status <status>: <body>`.
async fn http_get(full: &str, uri: &hyper::Uri) -> ApiResult<hyper::body::Incoming> {
    use http_body_util::{BodyExt, Empty};
    let port = uri.port_u16().unwrap_or(80);
    let host = uri.host().unwrap_or("127.0.0.1");
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| ApiError::new(500, format!("Get \"{full}\": dial tcp {host}:{port}: {e}")))?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| ApiError::new(500, format!("Get \"{full}\": {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, format!("{host}:{port}"))
        .header(hyper::header::USER_AGENT, "Go-http-client/1.1")
        .body(Empty::<Bytes>::new())
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    let resp = send
        .send_request(req)
        .await
        .map_err(|e| ApiError::new(500, format!("Get \"{full}\": {e}")))?;
    let status = resp.status();
    if status.as_u16() < 400 {
        return Ok(resp.into_body());
    }
    let text = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut msg = format!("failed to GET {full} with status {text}");
    match resp.into_body().collect().await {
        Ok(b) => {
            msg.push_str(": ");
            msg.push_str(String::from_utf8_lossy(&b.to_bytes()).trim());
        }
        Err(_) => msg.push_str(": error reading body"),
    }
    let code = match status.as_u16() {
        404 => 404,
        400 => 400,
        401 => 401,
        403 => 403,
        _ => 500,
    };
    Err(ApiError::new(code, msg))
}

/// `POST /images/create` without `fromImage`: import (`fromSrc=-` reads
/// the request body, `fromSrc=<url>` downloads it). Errors before any
/// output are HTTP errors; after `Downloading from`, in-stream.
pub async fn create(ctx: Ctx) -> ApiResult<Response<Body>> {
    if !ctx.query.get("fromImage").is_empty() {
        return super::registry::pull(ctx).await;
    }
    let q = ctx.query.clone();
    let mut options = crate::service::ImportOptions::default();
    let platform = q.get("platform");
    if !platform.is_empty()
        && ctx
            .version
            .as_deref()
            .is_none_or(|v| !compare_versions(v, "1.32").is_lt())
    {
        let os = platform.split('/').next().unwrap_or("").to_lowercase();
        if os.is_empty() {
            return Err(ApiError::bad_request(format!(
                "\"{platform}\": unknown operating system or architecture: invalid argument"
            )));
        }
        options.os = os;
    }
    let src = q.get("fromSrc").to_string();
    let (repo, tag, message) = (q.get("repo"), q.get("tag"), q.get("message"));
    let changes = q.all("changes");
    let svc = ctx.svc.clone();
    if src == "-" || src.is_empty() {
        options.source_name = src.clone();
        let reader = BodyReader::spawn(ctx.req.into_body());
        let id = svc
            .import_image(
                reader,
                Some(repo),
                Some(tag),
                Some(message),
                &changes,
                options,
            )
            .await?;
        let line = super::json::marshal_html(&serde_json::json!({ "status": id }));
        let mut body = line;
        body.extend_from_slice(b"\r\n");
        let mut resp = Response::new(full(body));
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Ok(resp);
    }
    let (full_url, uri) = import_url(&src)?;
    let body = http_get(&full_url, &uri).await?;
    options.source_name = full_url.clone();
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let (repo, tag, message) = (repo.to_string(), tag.to_string(), message.to_string());
    tokio::spawn(async move {
        let status = |s: String| {
            let mut l = super::json::marshal_html(&serde_json::json!({ "status": s }));
            l.extend_from_slice(b"\r\n");
            Bytes::from(l)
        };
        if tx
            .send(status(format!("Downloading from {full_url}")))
            .await
            .is_err()
        {
            return;
        }
        let reader = BodyReader::spawn(body);
        let line = match svc
            .import_image(
                reader,
                Some(&repo),
                Some(&tag),
                Some(&message),
                &changes,
                options,
            )
            .await
        {
            Ok(id) => status(id),
            Err(e) => Bytes::from(JsonMessage::error(e.message()).to_line()),
        };
        let _ = tx.send(line).await;
    });
    let mut resp = Response::new(channel_body(rx));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}
