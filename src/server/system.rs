//! System routes: `/_ping`, `/version`, `/info`, `/events`, `/system/df`
//! (engine-api.md §3.1–§3.5, §4.8–§4.10).

use super::errors::{ApiError, ApiResult};
use super::events::{EventsRequest, parse_event_time, serve_events};
use super::router::{API_VERSION, Ctx, MIN_API_VERSION, json_response};
use super::{Body, full};
use crate::filters::Filters;
use hyper::Response;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

/// A JSON object with keys in a fixed (Go struct) order.
pub struct Ordered(pub Vec<(&'static str, J)>);

/// A value in an [`Ordered`] object.
pub enum J {
    /// Any JSON value (objects in it have sorted keys, like Go maps).
    V(Value),
    /// A nested ordered object.
    O(Ordered),
}

impl Serialize for Ordered {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            match v {
                J::V(v) => m.serialize_entry(k, v)?,
                J::O(o) => m.serialize_entry(k, o)?,
            }
        }
        m.end()
    }
}

fn v(x: impl Into<Value>) -> J {
    J::V(x.into())
}

/// `GET|HEAD /_ping`.
pub fn ping(ctx: Ctx) -> ApiResult<Response<Body>> {
    let head = ctx.req.method() == hyper::Method::HEAD;
    let mut resp = Response::new(full(if head { Vec::new() } else { b"OK".to_vec() }));
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static("cache-control"),
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(
        HeaderName::from_static("pragma"),
        HeaderValue::from_static("no-cache"),
    );
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        hyper::header::CONTENT_LENGTH,
        HeaderValue::from_static(if head { "0" } else { "2" }),
    );
    Ok(resp)
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn kernel_version() -> String {
    read_trim("/proc/sys/kernel/osrelease")
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

const BUILD_TIME: &str = "";

/// `GET /version`.
pub fn version(_ctx: Ctx) -> ApiResult<Response<Body>> {
    let ver = env!("CARGO_PKG_VERSION");
    let details = json!({
        "ApiVersion": API_VERSION,
        "Arch": go_arch(),
        "BuildTime": BUILD_TIME,
        "Experimental": "false",
        "GitCommit": "",
        "GoVersion": "",
        "KernelVersion": kernel_version(),
        "MinAPIVersion": MIN_API_VERSION,
        "Os": "linux",
    });
    let mut fields = vec![
        ("Platform", J::O(Ordered(vec![("Name", v("strata"))]))),
        (
            "Components",
            J::V(json!([{ "Name": "Engine", "Version": ver, "Details": details }])),
        ),
        ("Version", v(ver)),
        ("ApiVersion", v(API_VERSION)),
        ("MinAPIVersion", v(MIN_API_VERSION)),
        ("GitCommit", v("")),
        ("GoVersion", v("")),
        ("Os", v("linux")),
        ("Arch", v(go_arch())),
    ];
    let kv = kernel_version();
    if !kv.is_empty() {
        fields.push(("KernelVersion", v(kv)));
    }
    Ok(json_response(200, &Ordered(fields)))
}

fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let pretty = get("PRETTY_NAME");
    (
        if pretty.is_empty() {
            "Linux".to_string()
        } else {
            pretty
        },
        get("VERSION_ID"),
    )
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// A stable daemon ID in Docker's style (12 groups of 4 base32 characters),
/// derived from the store's path.
fn daemon_id(root: &std::path::Path) -> String {
    use sha2::Digest;
    const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let h = sha2::Sha256::digest(root.as_os_str().as_encoded_bytes());
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut chars = Vec::new();
    for b in h.iter() {
        bits = (bits << 8) | *b as u32;
        nbits += 8;
        while nbits >= 5 && chars.len() < 48 {
            nbits -= 5;
            chars.push(B32[((bits >> nbits) & 31) as usize] as char);
        }
    }
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(":")
}

/// `GET /info`.
pub async fn info(ctx: Ctx) -> ApiResult<Response<Body>> {
    let images = ctx.svc.count_images().await?;
    let containers = ctx.svc.containers().await?.len() as u64;
    let (os, os_version) = os_release();
    let root = ctx.svc.store().root().to_path_buf();
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let commit = || J::O(Ordered(vec![("ID", v("")), ("Expected", v(""))]));
    let body = Ordered(vec![
        ("ID", v(daemon_id(&root))),
        ("Containers", v(containers)),
        ("ContainersRunning", v(0)),
        ("ContainersPaused", v(0)),
        ("ContainersStopped", v(containers)),
        ("Images", v(images)),
        ("Driver", v("vfs")),
        ("DriverStatus", J::V(Value::Null)),
        (
            "Plugins",
            J::O(Ordered(vec![
                ("Volume", J::V(json!([]))),
                ("Network", J::V(json!([]))),
                ("Authorization", J::V(Value::Null)),
                ("Log", J::V(json!([]))),
            ])),
        ),
        ("MemoryLimit", v(false)),
        ("SwapLimit", v(false)),
        ("KernelMemory", v(false)),
        ("KernelMemoryTCP", v(false)),
        ("CpuCfsPeriod", v(false)),
        ("CpuCfsQuota", v(false)),
        ("CPUShares", v(false)),
        ("CPUSet", v(false)),
        ("PidsLimit", v(false)),
        ("IPv4Forwarding", v(false)),
        ("BridgeNfIptables", v(false)),
        ("BridgeNfIp6tables", v(false)),
        ("Debug", v(false)),
        ("NFd", v(0)),
        ("OomKillDisable", v(false)),
        ("NGoroutines", v(0)),
        (
            "SystemTime",
            v(crate::config::GoTime::now_utc().to_rfc3339_nano()),
        ),
        ("LoggingDriver", v("")),
        ("CgroupDriver", v("none")),
        ("CgroupVersion", v("")),
        ("NEventsListener", v(0)),
        ("KernelVersion", v(kernel_version())),
        ("OperatingSystem", v(os)),
        ("OSVersion", v(os_version)),
        ("OSType", v("linux")),
        ("Architecture", v(std::env::consts::ARCH)),
        ("IndexServerAddress", v("https://index.docker.io/v1/")),
        (
            "RegistryConfig",
            J::O(Ordered(vec![
                ("AllowNondistributableArtifactsCIDRs", J::V(json!([]))),
                ("AllowNondistributableArtifactsHostnames", J::V(json!([]))),
                ("InsecureRegistryCIDRs", J::V(json!(["127.0.0.0/8"]))),
                (
                    "IndexConfigs",
                    J::V(
                        json!({"docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}}),
                    ),
                ),
                ("Mirrors", J::V(json!([]))),
            ])),
        ),
        ("NCPU", v(ncpu)),
        ("MemTotal", v(mem_total())),
        ("GenericResources", J::V(Value::Null)),
        ("DockerRootDir", v(root.display().to_string())),
        ("HttpProxy", v("")),
        ("HttpsProxy", v("")),
        ("NoProxy", v("")),
        ("Name", v(read_trim("/proc/sys/kernel/hostname"))),
        ("Labels", J::V(json!([]))),
        ("ExperimentalBuild", v(false)),
        ("ServerVersion", v(env!("CARGO_PKG_VERSION"))),
        ("Runtimes", J::V(json!({}))),
        ("DefaultRuntime", v("")),
        (
            "Swarm",
            J::O(Ordered(vec![
                ("NodeID", v("")),
                ("NodeAddr", v("")),
                ("LocalNodeState", v("inactive")),
                ("ControlAvailable", v(false)),
                ("Error", v("")),
                ("RemoteManagers", J::V(Value::Null)),
            ])),
        ),
        ("LiveRestoreEnabled", v(false)),
        ("Isolation", v("")),
        ("InitBinary", v("")),
        ("ContainerdCommit", commit()),
        ("RuncCommit", commit()),
        ("InitCommit", commit()),
        ("SecurityOptions", J::V(json!([]))),
        ("Warnings", J::V(Value::Null)),
    ]);
    Ok(json_response(200, &body))
}

/// `GET /events`.
pub fn events(ctx: Ctx) -> ApiResult<Response<Body>> {
    let since_raw = ctx.query.get("since");
    let until_raw = ctx.query.get("until");
    let since = parse_event_time(since_raw)?;
    let until = parse_event_time(until_raw)?;
    if let Some(u) = until
        && u < since.unwrap_or(i64::MIN)
    {
        return Err(ApiError::bad_request(format!(
            "`since` time ({since_raw}) cannot be after `until` time ({until_raw})"
        )));
    }
    let filters = Filters::from_json(ctx.query.get("filters"))?;
    let body = serve_events(
        ctx.svc.clone(),
        ctx.state.hub.clone(),
        EventsRequest {
            since,
            until,
            filters,
        },
        ctx.state.stop.clone(),
    );
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// `GET /system/df`.
pub async fn df(ctx: Ctx) -> ApiResult<Response<Body>> {
    if ctx.state.df_running.swap(true, Ordering::SeqCst) {
        return Err(ApiError::new(
            500,
            "a disk usage operation is already running",
        ));
    }
    let result = df_inner(&ctx).await;
    ctx.state.df_running.store(false, Ordering::SeqCst);
    result
}

async fn df_inner(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let images = ctx.svc.images(Filters::new(), false, true).await?;
    let mut containers = super::containers::summaries(&ctx.svc, true, true).await?;
    for c in containers.iter_mut() {
        let id = c["Id"].as_str().unwrap_or("").to_string();
        if let Ok((rw, rootfs)) = ctx.svc.container_layer_size(&id).await {
            c["SizeRw"] = json!(rw);
            c["SizeRootFs"] = json!(rootfs);
        }
    }
    let ids: Vec<String> = images.iter().map(|i| i.id.clone()).collect();
    let svc = ctx.svc.clone();
    let layers_size = tokio::task::spawn_blocking(move || {
        svc.store().read(|t| {
            let mut seen = BTreeSet::new();
            let mut total = 0u64;
            for id in &ids {
                let mut cur = t.image(id)?.and_then(|r| r.top_layer);
                while let Some(chain) = cur {
                    if !seen.insert(chain.clone()) {
                        break;
                    }
                    let Some(layer) = t.layer(&chain)? else { break };
                    total += layer.diff_size;
                    cur = layer.parent;
                }
            }
            Ok(total)
        })
    })
    .await
    .map_err(|e| ApiError::new(500, e.to_string()))??;
    let body = Ordered(vec![
        ("LayersSize", v(layers_size)),
        (
            "Images",
            J::V(serde_json::to_value(&images).unwrap_or(Value::Null)),
        ),
        ("Containers", J::V(Value::Array(containers))),
        ("Volumes", J::V(json!([]))),
        ("BuildCache", J::V(Value::Null)),
        ("BuilderSize", v(0)),
    ]);
    Ok(json_response(200, &body))
}
