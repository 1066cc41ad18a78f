//! The image routes (engine-api.md §3.7–§3.18).

use super::errors::{ApiError, ApiResult};
use super::events::{EventMessage, now_nanos};
use super::json::JsonMessage;
use super::router::{Ctx, compare_versions, encoded_json_response, json_response};
use super::stream::{BodyReader, ChannelWriter, channel_body};
use super::{Body, full};
use crate::filters::Filters;
use crate::store::TablesVersion;
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
    let now = ctx.svc.tables_version().await?;
    if let Some(body) = ListingAnswer::get(&ctx.state.listing, now, all, &filters) {
        return Ok(encoded_json_response(200, body));
    }
    let (version, images) = ctx
        .svc
        .images_versioned(filters.clone(), all, false)
        .await?;
    let body = Bytes::from(super::json::encode(&images));
    ListingAnswer::put(&ctx.state.listing, version, all, filters, body.clone());
    Ok(encoded_json_response(200, body))
}

/// The encoded answer to one image listing, kept for the next request with
/// the same query while the tables stay at `version`: clients that poll
/// the list (the docker CLI, dashboards) get the same bytes without a new
/// listing and encoding. A listing without container counts depends on the
/// tables, the filters and `all` only, so equal keys give equal answers.
pub(super) struct ListingAnswer {
    version: TablesVersion,
    all: bool,
    filters: Filters,
    body: Bytes,
}

impl ListingAnswer {
    fn get(
        slot: &std::sync::Mutex<Option<ListingAnswer>>,
        version: TablesVersion,
        all: bool,
        filters: &Filters,
    ) -> Option<Bytes> {
        let slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref()
            .filter(|a| a.version == version && a.all == all && a.filters == *filters)
            .map(|a| a.body.clone())
    }

    /// Keep `body` unless an answer of a newer version is there.
    fn put(
        slot: &std::sync::Mutex<Option<ListingAnswer>>,
        version: TablesVersion,
        all: bool,
        filters: Filters,
        body: Bytes,
    ) {
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_none_or(|old| old.version <= version) {
            *slot = Some(ListingAnswer {
                version,
                all,
                filters,
                body,
            });
        }
    }
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

/// The HTTP status of a failed URL import: dockerd categorises
/// `failed to GET … with status N …` by the remote status (401 and 403
/// have no library error kind).
fn import_error(e: crate::Error) -> ApiError {
    let m = e.message();
    if m.starts_with("failed to GET ") {
        for code in [401u16, 403] {
            if m.contains(&format!(" with status {code} ")) {
                return ApiError::new(code, m);
            }
        }
    }
    e.into()
}

/// `{"status":"Importing","progressDetail":{…},"progress":"…"}` (no id).
fn importing_line(current: u64, total: u64) -> Bytes {
    #[derive(serde::Serialize)]
    struct Detail {
        #[serde(skip_serializing_if = "is_zero")]
        current: u64,
        #[serde(skip_serializing_if = "is_zero")]
        total: u64,
    }
    #[derive(serde::Serialize)]
    struct Line {
        status: &'static str,
        #[serde(rename = "progressDetail")]
        progress_detail: Detail,
        #[serde(skip_serializing_if = "String::is_empty")]
        progress: String,
    }
    fn is_zero(n: &u64) -> bool {
        *n == 0
    }
    let mut l = super::json::marshal_html(&Line {
        status: "Importing",
        progress_detail: Detail { current, total },
        progress: super::registry::progress_bar(current, total),
    });
    l.extend_from_slice(b"\r\n");
    Bytes::from(l)
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
    // URL: errors before `Downloading from` (reference, changes, the GET)
    // are HTTP errors; later ones end the stream.
    let (ptx, mut prx) = mpsc::unbounded_channel::<crate::distribution::Progress>();
    let (repo, tag, message) = (repo.to_string(), tag.to_string(), message.to_string());
    let mut job = tokio::spawn(async move {
        svc.import_image_url(
            &src,
            Some(&repo),
            Some(&tag),
            Some(&message),
            &changes,
            options,
            Some(ptx),
        )
        .await
    });
    let status = |s: String| {
        let mut l = super::json::marshal_html(&serde_json::json!({ "status": s }));
        l.extend_from_slice(b"\r\n");
        Bytes::from(l)
    };
    // `done`: the job's result when it ended before the first message.
    let mut done = None;
    let first = tokio::select! {
        p = prx.recv() => p,
        r = &mut job => {
            done = Some(r);
            prx.recv().await
        }
    };
    if first.is_none() && done.is_none() {
        done = Some((&mut job).await);
    }
    if first.is_none() {
        // No message at all: an error before the download started.
        done.take()
            .expect("job result")
            .map_err(|e| ApiError::new(500, e.to_string()))?
            .map_err(import_error)?;
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let line = |p: crate::distribution::Progress| match p {
            crate::distribution::Progress::Bytes { current, total, .. } => {
                importing_line(current, total)
            }
            crate::distribution::Progress::Status(s) => status(s),
            other => Bytes::from(super::registry::progress_line(&other)),
        };
        if let Some(p) = first
            && tx.send(line(p)).await.is_err()
        {
            return;
        }
        while let Some(p) = prx.recv().await {
            if tx.send(line(p)).await.is_err() {
                return;
            }
        }
        let result = match done {
            Some(r) => r,
            None => job.await,
        };
        let last = match result {
            Ok(Ok(id)) => status(id),
            Ok(Err(e)) => Bytes::from(JsonMessage::error(e.message()).to_line()),
            Err(e) => Bytes::from(JsonMessage::error(&e.to_string()).to_line()),
        };
        let _ = tx.send(last).await;
    });
    let mut resp = Response::new(channel_body(rx));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}
