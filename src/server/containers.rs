//! The container routes strata serves on its container records (created,
//! never run): create, list, inspect, remove.

use super::errors::{ApiError, ApiResult};
use super::router::{Ctx, json_response};
use super::{Body, full};
use crate::config::GoTime;
use crate::service::ImageService;
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

struct Record {
    id: String,
    name: String,
    image: String,
    created_nanos: i64,
    image_tag: Option<String>,
    size: u64,
}

/// Every container record with what the summaries need.
fn records(svc: &ImageService) -> crate::Result<Vec<Record>> {
    use crate::service::lookup::parse_stored;
    svc.store().read(|t| {
        let mut out = Vec::new();
        for (id, row) in t.containers()? {
            let mut image_tag = None;
            for canonical in t.refs_of(&row.image)? {
                let r = parse_stored(&canonical)?;
                if r.digest().is_none() {
                    image_tag = Some(r.familiar_string());
                    break;
                }
            }
            let size = t.image(&row.image)?.map(|r| r.size).unwrap_or(0);
            out.push(Record {
                id,
                name: row.name,
                image: row.image,
                created_nanos: row.created_unix_nanos,
                image_tag,
                size,
            });
        }
        out.sort_by_key(|r| std::cmp::Reverse(r.created_nanos));
        Ok(out)
    })
}

async fn all_records(svc: &ImageService) -> ApiResult<Vec<Record>> {
    let svc = svc.clone();
    Ok(tokio::task::spawn_blocking(move || records(&svc))
        .await
        .map_err(|e| ApiError::new(500, e.to_string()))??)
}

fn summary(r: &Record, size: bool) -> Value {
    let mut v = json!({
        "Id": r.id,
        "Names": [format!("/{}", r.name)],
        "Image": r.image_tag.clone().unwrap_or_else(|| r.image.clone()),
        "ImageID": r.image,
        "Command": "",
        "Created": r.created_nanos.div_euclid(1_000_000_000),
        "Ports": [],
        "Labels": {},
        "State": "created",
        "Status": "Created",
        "HostConfig": {"NetworkMode": "default"},
        "NetworkSettings": {"Networks": {}},
        "Mounts": [],
    });
    if size {
        v["SizeRw"] = json!(0);
        v["SizeRootFs"] = json!(r.size);
    }
    v
}

/// Container summaries (`types.Container`) for `/containers/json` and `/system/df`.
pub async fn summaries(svc: &ImageService, all: bool, size: bool) -> ApiResult<Vec<Value>> {
    if !all {
        // No container ever runs.
        return Ok(Vec::new());
    }
    Ok(all_records(svc)
        .await?
        .iter()
        .map(|r| summary(r, size))
        .collect())
}

/// `GET /containers/json`.
pub async fn list(ctx: Ctx) -> ApiResult<Response<Body>> {
    let all = ctx.query.bool("all");
    let size = ctx.query.bool("size");
    Ok(json_response(200, &summaries(&ctx.svc, all, size).await?))
}

fn find<'a>(records: &'a [Record], needle: &str) -> ApiResult<&'a Record> {
    let n = needle.trim_start_matches('/');
    if let Some(r) = records.iter().find(|r| r.id == n || r.name == n) {
        return Ok(r);
    }
    let matches: Vec<&Record> = records.iter().filter(|r| r.id.starts_with(n)).collect();
    match matches.as_slice() {
        [r] if !n.is_empty() => Ok(r),
        _ => Err(ApiError::new(404, format!("No such container: {needle}"))),
    }
}

/// `GET /containers/{id}/json`: a minimal ContainerJSON of a created container.
pub async fn inspect(ctx: Ctx, name: &str) -> ApiResult<Response<Body>> {
    let records = all_records(&ctx.svc).await?;
    let r = find(&records, name)?;
    let created = GoTime::from_unix_nanos_utc(r.created_nanos as i128).to_rfc3339_nano();
    let zero = "0001-01-01T00:00:00Z";
    let image_name = r.image_tag.clone().unwrap_or_else(|| r.image.clone());
    let mut body = json!({
        "Id": r.id,
        "Created": created,
        "Path": "",
        "Args": [],
        "State": {
            "Status": "created", "Running": false, "Paused": false, "Restarting": false,
            "OOMKilled": false, "Dead": false, "Pid": 0, "ExitCode": 0, "Error": "",
            "StartedAt": zero, "FinishedAt": zero
        },
        "Image": r.image,
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": "",
        "Name": format!("/{}", r.name),
        "RestartCount": 0,
        "Driver": "vfs",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": {"NetworkMode": "default"},
        "GraphDriver": {"Data": null, "Name": "vfs"},
        "Mounts": [],
        "Config": {
            "Hostname": &r.id[..12.min(r.id.len())],
            "Domainname": "",
            "User": "",
            "AttachStdin": false,
            "AttachStdout": false,
            "AttachStderr": false,
            "Tty": false,
            "OpenStdin": false,
            "StdinOnce": false,
            "Env": null,
            "Cmd": null,
            "Image": image_name,
            "Volumes": null,
            "WorkingDir": "",
            "Entrypoint": null,
            "OnBuild": null,
            "Labels": {}
        },
        "NetworkSettings": {"Networks": {}},
    });
    if ctx.query.bool("size") {
        let (rw, rootfs) = ctx.svc.container_layer_size(&r.id).await?;
        body["SizeRw"] = json!(rw);
        body["SizeRootFs"] = json!(rootfs);
    }
    Ok(json_response(200, &body))
}

/// `POST /containers/create`: a container record; 201 `{"Id":…,"Warnings":[]}`.
pub async fn create(ctx: Ctx) -> ApiResult<Response<Body>> {
    let name = ctx.query.get("name").to_string();
    if !name.is_empty() {
        crate::service::check_container_name(&name)?;
    }
    let ctype = ctx
        .req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let svc = ctx.svc.clone();
    let body = super::router::small_body(ctx.req, 400).await?;
    let mime = ctype.split(';').next().unwrap_or("").trim();
    if !body.is_empty() && mime != "application/json" {
        return Err(ApiError::bad_request(format!(
            "Content-Type specified ({ctype}) must be 'application/json'"
        )));
    }
    let config: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(e.to_string()))?
    };
    if config.is_null() {
        return Err(ApiError::bad_request(
            "Config cannot be empty in order to create a container",
        ));
    }
    let image = config
        .get("Image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = name.trim_start_matches('/');
    // The body is a container config plus HostConfig/NetworkingConfig; Go's
    // decoder (and ours) ignores the keys that are not config fields.
    let container_config = crate::config::ContainerConfig::from_json(&body)
        .map_err(|e| ApiError::bad_request(e.message().to_string()))?;
    let id = svc
        .create_container_with_config(
            &image,
            (!name.is_empty()).then_some(name),
            Some(container_config),
        )
        .await?;
    Ok(json_response(201, &json!({"Id": id, "Warnings": []})))
}

/// `DELETE /containers/{id}`: 204.
pub async fn delete(ctx: Ctx, name: &str) -> ApiResult<Response<Body>> {
    ctx.svc.remove_container(name).await?;
    let mut resp = Response::new(full(Vec::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}
