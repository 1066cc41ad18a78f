//! The registry routes (engine-api.md §3.6, §3.8, §3.12, §3.15;
//! distribution.md): pull (`POST /images/create?fromImage=…`), push
//! (`POST /images/{name}/push`), search (`GET /images/search`) and login
//! (`POST /auth`).
//!
//! Pull and push answer with Docker's JSON message stream, mapped from the
//! library's typed [`Progress`] values. As in dockerd, an error before the
//! first message is an ordinary HTTP error; after it, the error is the last
//! message of the stream (`{"errorDetail":{"message":…},"error":…}`).
//! A pull's `pull` image event (image-service.md §6) and a push's `push`
//! events are mapped from their `ImagePulled` / `ImagePushed` log events.

use super::Body;
use super::errors::{ApiError, ApiResult};
use super::json::{JsonMessage, marshal_html};
use super::router::{Ctx, compare_versions, json_response};
use super::stream::channel_body;
use crate::distribution::{Auth, Progress, PullOptions, PushOptions};
use crate::filters::Filters;
use crate::reference::{Reference, go_quote};
use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{HeaderMap, Response};
use serde::Serialize;
use tokio::sync::mpsc;

/// The credentials of an `X-Registry-Auth` header: `None` when absent,
/// anonymous, or undecodable (dockerd then proceeds without credentials).
pub fn registry_auth(headers: &HeaderMap) -> Option<Auth> {
    let v = headers.get("x-registry-auth")?.to_str().ok()?;
    if v.is_empty() {
        return None;
    }
    Auth::from_registry_auth_header(v).filter(|a| *a != Auth::default())
}

// ------------------------------------------------------------ wire format

/// `jsonmessage.JSONProgress`: zero fields omitted.
#[derive(Serialize, Default)]
struct Detail {
    #[serde(skip_serializing_if = "is_zero")]
    current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    total: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `jsonmessage.JSONMessage` with the fields pull and push use, in Go's
/// declaration order.
#[derive(Serialize, Default)]
struct Wire {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    progress_detail: Option<Detail>,
    #[serde(skip_serializing_if = "String::is_empty")]
    progress: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aux: Option<PushAux>,
}

/// `types.PushResult`, the aux value after each pushed tag.
#[derive(Serialize)]
struct PushAux {
    #[serde(rename = "Tag")]
    tag: String,
    #[serde(rename = "Digest")]
    digest: String,
    #[serde(rename = "Size")]
    size: u64,
}

/// Go's `units.HumanSize`: decimal units, 4 significant digits (`%.4g`).
pub fn human_size(size: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut s = size as f64;
    let mut i = 0;
    while s >= 1000.0 && i < UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g4(s), UNITS[i])
}

/// `fmt.Sprintf("%.4g", v)` for 0 ≤ v < 1000 (no exponent form needed
/// except when rounding reaches 1000, which Go prints as `1000`).
fn go_g4(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    let decimals = (3 - exp).max(0) as usize;
    let mut s = format!("{v:.decimals$}");
    // Rounding may add a digit (999.95 → "1000.0" with one decimal): Go's
    // %g then has 4 significant digits of the rounded value.
    let digits = s.chars().filter(|c| c.is_ascii_digit()).count();
    if digits > 4 && s.contains('.') {
        let d = decimals.saturating_sub(digits - 4);
        s = format!("{v:.d$}");
    }
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    s
}

/// `JSONProgress.String()` at the server's assumed width of 200.
pub fn progress_bar(current: u64, total: u64) -> String {
    if current == 0 && total == 0 {
        return String::new();
    }
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let pct = (((current as f64 / total as f64) * 100.0) as i64 / 2).min(50) as usize;
    let bar = format!("[{}>{}] ", "=".repeat(pct), " ".repeat(50 - pct));
    let numbers = if current > total {
        format!("{:>8}", human_size(current))
    } else {
        format!("{:>8}/{}", human_size(current), human_size(total))
    };
    bar + &numbers
}

/// One progress value as Docker writes it on the wire (with `\r\n`).
pub fn progress_line(p: &Progress) -> Vec<u8> {
    let w = match p {
        Progress::Status(s) => Wire {
            status: Some(s.clone()),
            ..Wire::default()
        },
        // `progress.Message` (no progressDetail): `Pulling from`, warnings.
        Progress::Item { id, status } if status.starts_with("Pulling from ") || id == "WARNING" => {
            Wire {
                status: Some(status.clone()),
                id: Some(id.clone()),
                ..Wire::default()
            }
        }
        Progress::Item { id, status } => Wire {
            status: Some(status.clone()),
            progress_detail: Some(Detail::default()),
            id: Some(id.clone()),
            ..Wire::default()
        },
        Progress::Bytes {
            id,
            action,
            current,
            total,
        } => Wire {
            status: Some(action.clone()),
            progress_detail: Some(Detail {
                current: *current,
                total: *total,
            }),
            progress: progress_bar(*current, *total),
            id: Some(id.clone()),
            ..Wire::default()
        },
        Progress::PushResult { tag, digest, size } => Wire {
            progress_detail: Some(Detail::default()),
            aux: Some(PushAux {
                tag: tag.clone(),
                digest: digest.clone(),
                size: *size,
            }),
            ..Wire::default()
        },
    };
    let mut out = marshal_html(&w);
    out.extend_from_slice(b"\r\n");
    out
}

// ------------------------------------------------------------ streaming

fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let mut resp = Response::new(channel_body(rx));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A spawned job that is aborted when this is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Run `job` (which reports through the sender paired with `rx`) and
/// answer with its message stream. An error before the first message is
/// returned as an HTTP error; later ones end the stream. `done` runs after
/// a success (for events).
///
/// As in dockerd, where the pull or push runs under the request's context,
/// a client that goes away cancels the job: before the stream begins (the
/// request is dropped) or after (the response body is dropped). A pull
/// cancelled that way keeps its partial layer downloads for a later pull to
/// resume, and writes nothing to the store.
async fn stream_job<T: Send + 'static>(
    job: impl std::future::Future<Output = crate::Result<T>> + Send + 'static,
    mut rx: mpsc::UnboundedReceiver<Progress>,
    done: impl FnOnce(T) + Send + 'static,
) -> ApiResult<Response<Body>> {
    let mut guard = AbortOnDrop(tokio::spawn(job));
    let job = &mut guard.0;
    let mut result = None;
    let first = tokio::select! {
        biased;
        m = rx.recv() => m,
        r = &mut *job => {
            result = Some(r);
            rx.try_recv().ok()
        }
    };
    let joined = |r: Result<crate::Result<T>, tokio::task::JoinError>| {
        r.map_err(|e| crate::Error::internal(format!("worker failed: {e}")))
            .and_then(|r| r)
    };
    let Some(first) = first else {
        let r = match result {
            Some(r) => r,
            None => job.await,
        };
        let value = joined(r)?;
        done(value);
        let (_tx, rx) = mpsc::channel(1);
        return Ok(stream_response(rx));
    };
    let (tx, out) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let job = &mut guard.0;
        let mut gone = tx.send(Bytes::from(progress_line(&first))).await.is_err();
        let r = match result {
            Some(r) => r,
            None => loop {
                if gone {
                    // The client went away: cancel the job (dockerd's
                    // request context) and wait for it to unwind.
                    job.abort();
                    let _ = (&mut *job).await;
                    return;
                }
                tokio::select! {
                    biased;
                    m = rx.recv() => match m {
                        Some(p) => {
                            gone = tx.send(Bytes::from(progress_line(&p))).await.is_err();
                        }
                        None => break (&mut *job).await,
                    },
                    r = &mut *job => break r,
                    _ = tx.closed() => gone = true,
                }
            },
        };
        while let Ok(p) = rx.try_recv() {
            if !gone {
                gone = tx.send(Bytes::from(progress_line(&p))).await.is_err();
            }
        }
        match joined(r) {
            Ok(v) => done(v),
            Err(e) => {
                if !gone {
                    let _ = tx
                        .send(Bytes::from(JsonMessage::error(e.message()).to_line()))
                        .await;
                }
            }
        }
    });
    Ok(stream_response(out))
}

// ------------------------------------------------------------ platform

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
    "zos",
];

const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "ppc64",
    "ppc64le",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// containerd's `platforms.Parse` (what dockerd 20.10 uses for the pull
/// `platform` parameter): `os/arch[/variant]` with the missing parts
/// filled in, or the 400 error Docker gives.
pub fn parse_platform(spec: &str) -> ApiResult<String> {
    let invalid = |why: String| ApiError::bad_request(format!("{why}: invalid argument"));
    let parts: Vec<&str> = spec.split('/').collect();
    for p in &parts {
        if p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(format!(
                "{} is an invalid component of {}: platform specifier component must match \"^[A-Za-z0-9_-]+$\"",
                go_quote(p),
                go_quote(spec)
            )));
        }
    }
    let os = |s: &str| {
        let l = s.to_lowercase();
        if l == "macos" { "darwin".into() } else { l }
    };
    let arch = |s: &str| -> String {
        match s.to_lowercase().as_str() {
            "i386" => "386".into(),
            "x86_64" | "x86-64" => "amd64".into(),
            "aarch64" => "arm64".into(),
            "armhf" | "armel" => "arm".into(),
            other => other.to_string(),
        }
    };
    match parts.as_slice() {
        [one] => {
            let o = os(one);
            if KNOWN_OS.contains(&o.as_str()) {
                return Ok(format!("{o}/{}", host_arch()));
            }
            let a = arch(one);
            if KNOWN_ARCH.contains(&a.as_str()) {
                let full = match one.to_lowercase().as_str() {
                    "armhf" => "arm/v7".to_string(),
                    "armel" => "arm/v6".to_string(),
                    _ => a,
                };
                return Ok(format!("linux/{full}"));
            }
            Err(invalid(format!(
                "{}: unknown operating system or architecture",
                go_quote(spec)
            )))
        }
        [o, a] => Ok(format!("{}/{}", os(o), arch(a))),
        [o, a, v] => Ok(format!("{}/{}/{}", os(o), arch(a), v.to_lowercase())),
        _ => Err(invalid(format!(
            "{}: cannot parse platform specifier",
            go_quote(spec)
        ))),
    }
}

// ------------------------------------------------------------ routes

/// `POST /images/create?fromImage=…` (pull).
pub async fn pull(ctx: Ctx) -> ApiResult<Response<Body>> {
    let q = &ctx.query;
    let mut platform = None;
    let p = q.get("platform");
    if !p.is_empty()
        && ctx
            .version
            .as_deref()
            .is_none_or(|v| !compare_versions(v, "1.32").is_lt())
    {
        platform = Some(parse_platform(p)?);
    }
    let image = q.get("fromImage").trim_end_matches(':');
    let mut r =
        Reference::parse_normalized_named(image).map_err(|e| ApiError::bad_request(e.message()))?;
    let tag = q.get("tag");
    if !tag.is_empty() {
        r = match r.with_digest(tag) {
            Ok(d) => d,
            Err(_) => r
                .with_tag(tag)
                .map_err(|e| ApiError::bad_request(e.message()))?,
        };
    }
    let (ptx, prx) = mpsc::unbounded_channel();
    let opts = PullOptions {
        platform,
        auth: registry_auth(ctx.req.headers()),
        registry: crate::distribution::RegistryOptions::from_env(),
        progress: Some(ptx),
        ..PullOptions::default()
    };
    let svc = ctx.svc.clone();
    let target = r.canonical_string();
    // The `pull` event comes from the log (`ImagePulled`), not from here.
    stream_job(
        async move { svc.pull_image_with(&target, opts).await },
        prx,
        |_report| {},
    )
    .await
}

/// `POST /images/{name}/push?tag=…`.
pub async fn push(ctx: Ctx, name: &str) -> ApiResult<Response<Body>> {
    let auth = if ctx.req.headers().contains_key("x-registry-auth") {
        registry_auth(ctx.req.headers())
    } else {
        // The old API: the auth config is the request body.
        let body = super::router::small_body(ctx.req, 500).await?;
        let a: Auth = serde_json::from_slice(&body).map_err(|e| {
            let why = if body.iter().all(u8::is_ascii_whitespace) {
                "EOF".to_string()
            } else {
                e.to_string()
            };
            ApiError::bad_request(format!("Bad parameters and missing X-Registry-Auth: {why}"))
        })?;
        Some(a.normalized()).filter(|a| *a != Auth::default())
    };
    // dockerd: reference errors here are plain errors (500).
    let mut r =
        Reference::parse_normalized_named(name).map_err(|e| ApiError::new(500, e.message()))?;
    let tag = ctx.query.get("tag");
    if !tag.is_empty() {
        r = r
            .with_tag(tag)
            .map_err(|e| ApiError::new(500, e.message()))?;
    }
    let (ptx, prx) = mpsc::unbounded_channel();
    let opts = PushOptions {
        auth,
        registry: crate::distribution::RegistryOptions::from_env(),
        progress: Some(ptx),
        ..PushOptions::default()
    };
    let svc = ctx.svc.clone();
    let target = r.canonical_string();
    // The `push` event comes from the log (`ImagePushed`), not from here.
    stream_job(
        async move { svc.push_image_with(&target, opts).await },
        prx,
        |_report| {},
    )
    .await
}

/// `GET /images/search?term=…&limit=…&filters=…`: the results array.
pub async fn search(ctx: Ctx) -> ApiResult<Response<Body>> {
    let q = &ctx.query;
    let auth = registry_auth(ctx.req.headers());
    let limit = match q.get("limit") {
        "" => None,
        l => Some(l.parse::<i64>().map_err(|e| {
            let why = match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                    "value out of range"
                }
                _ => "invalid syntax",
            };
            ApiError::new(500, format!("strconv.Atoi: parsing {}: {why}", go_quote(l)))
        })?),
    };
    let filters = Filters::from_json(q.get("filters"))?;
    let results = ctx
        .svc
        .search_registry_for_images_with(
            q.get("term"),
            limit,
            &filters,
            auth,
            &crate::distribution::RegistryOptions::from_env(),
        )
        .await?;
    Ok(json_response(200, &results))
}

/// `registry.AuthenticateOKBody`, in Go's field order.
#[derive(Serialize)]
struct AuthOk {
    #[serde(rename = "IdentityToken")]
    identity_token: String,
    #[serde(rename = "Status")]
    status: String,
}

/// `POST /auth`: log in to the registry the body's `serveraddress` names.
pub async fn auth(ctx: Ctx) -> ApiResult<Response<Body>> {
    let body = super::router::small_body(ctx.req, 500).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(500, "EOF"));
    }
    let a: Auth = serde_json::from_slice(&body).map_err(|e| ApiError::new(500, e.to_string()))?;
    let a = a.normalized();
    let report = crate::distribution::login_with(
        &a.server_address,
        &a,
        &crate::distribution::RegistryOptions::from_env(),
    )
    .await?;
    Ok(json_response(
        200,
        &AuthOk {
            identity_token: report.identity_token,
            status: report.status,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_and_bars() {
        for (n, want) in [
            (0, "0B"),
            (512, "512B"),
            (2560, "2.56kB"),
            (37888, "37.89kB"),
            (1982262, "1.982MB"),
            (1054000, "1.054MB"),
            (999_999, "1000kB"),
            (1000, "1kB"),
        ] {
            assert_eq!(human_size(n), want, "{n}");
        }
        assert_eq!(
            progress_bar(512, 4),
            "[==================================================>]     512B"
        );
        assert_eq!(
            progress_bar(37888, 1982262),
            "[>                                                  ]  37.89kB/1.982MB"
        );
        assert_eq!(progress_bar(0, 0), "");
        assert_eq!(progress_bar(2048, 0), " 2.048kB");
    }

    #[test]
    fn wire_lines() {
        let cases: &[(&str, Progress, &str)] = &[
            (
                "pulling from",
                Progress::Item {
                    id: "1".into(),
                    status: "Pulling from test".into(),
                },
                r#"{"status":"Pulling from test","id":"1"}"#,
            ),
            (
                "item",
                Progress::Item {
                    id: "9ca2cc1a77a2".into(),
                    status: "Preparing".into(),
                },
                r#"{"status":"Preparing","progressDetail":{},"id":"9ca2cc1a77a2"}"#,
            ),
            (
                "bytes",
                Progress::Bytes {
                    id: "c25f37d16ec0".into(),
                    action: "Pushing".into(),
                    current: 512,
                    total: 4,
                },
                r#"{"status":"Pushing","progressDetail":{"current":512,"total":4},"progress":"[==================================================\u003e]     512B","id":"c25f37d16ec0"}"#,
            ),
            (
                "status",
                Progress::Status("Digest: sha256:ab".into()),
                r#"{"status":"Digest: sha256:ab"}"#,
            ),
            (
                "aux",
                Progress::PushResult {
                    tag: "1".into(),
                    digest: "sha256:c1".into(),
                    size: 1149,
                },
                r#"{"progressDetail":{},"aux":{"Tag":"1","Digest":"sha256:c1","Size":1149}}"#,
            ),
        ];
        for (name, p, want) in cases {
            assert_eq!(
                String::from_utf8(progress_line(p)).unwrap(),
                format!("{want}\r\n"),
                "{name}"
            );
        }
    }

    #[test]
    fn platforms() {
        let ok = [
            ("linux", format!("linux/{}", host_arch())),
            ("arm64", "linux/arm64".to_string()),
            ("linux/arm64", "linux/arm64".into()),
            ("Linux/x86_64", "linux/amd64".into()),
            ("linux/arm/v7", "linux/arm/v7".into()),
        ];
        for (p, want) in ok {
            assert_eq!(parse_platform(p).unwrap(), want, "{p}");
        }
        let bad = [
            (
                "bogus",
                "\"bogus\": unknown operating system or architecture: invalid argument",
            ),
            (
                "a/b/c/d",
                "\"a/b/c/d\": cannot parse platform specifier: invalid argument",
            ),
            (
                "linux/",
                "\"\" is an invalid component of \"linux/\": platform specifier component must match \"^[A-Za-z0-9_-]+$\": invalid argument",
            ),
        ];
        for (p, want) in bad {
            let e = parse_platform(p).unwrap_err();
            assert_eq!((e.status, e.message.as_str()), (400, want), "{p}");
        }
    }
}
