//! Routing: `/v<version><path>` and `<path>`, the version check, the
//! headers every routed response carries (engine-api.md §1, §2.1, §3).

use super::errors::{ApiError, ApiResult};
use super::query::{Query, percent_decode};
use super::{Body, State, archive, containers, images, registry, system};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::sync::Arc;

/// The API version strata speaks.
pub const API_VERSION: &str = "1.41";
/// The oldest API version accepted.
pub const MIN_API_VERSION: &str = "1.12";

/// A matched route and its `{name}` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Ping,
    Version,
    Info,
    Events,
    SystemDf,
    Auth,
    ImagesList,
    ImagesGet,
    ImageGet(String),
    ImageHistory(String),
    ImageInspect(String),
    ImagesLoad,
    ImageTag(String),
    ImageDelete(String),
    ImagesPrune,
    ContainersList,
    ContainerCreate,
    ContainerInspect(String),
    ContainerDelete(String),
    ImagesCreate,
    Commit,
    ContainerArchiveGet(String),
    ContainerArchiveHead(String),
    ContainerArchivePut(String),
    ContainerExport(String),
    ImagesSearch,
    ImagePush(String),
    /// A route strata does not serve yet: 501 naming it.
    NotImplemented(&'static str),
}

fn suffix<'a>(path: &'a str, prefix: &str, end: &str) -> Option<&'a str> {
    path.strip_prefix(prefix)?.strip_suffix(end)
}

/// Match `method` and an unversioned, decoded `path`, in gorilla/mux's
/// registration order.
pub fn route(method: &Method, path: &str) -> Option<Route> {
    use Route::*;
    let name = |s: &str| s.to_string();
    match *method {
        Method::GET | Method::HEAD if path == "/_ping" => Some(Ping),
        Method::GET => Some(match path {
            "/version" => Version,
            "/info" => Info,
            "/events" => Events,
            "/system/df" => SystemDf,
            "/images/json" => ImagesList,
            "/images/search" => ImagesSearch,
            "/images/get" => ImagesGet,
            "/containers/json" => ContainersList,
            _ => {
                if let Some(n) = suffix(path, "/images/", "/get") {
                    ImageGet(name(n))
                } else if let Some(n) = suffix(path, "/images/", "/history") {
                    ImageHistory(name(n))
                } else if let Some(n) = suffix(path, "/images/", "/json") {
                    ImageInspect(name(n))
                } else if let Some(n) = suffix(path, "/containers/", "/export") {
                    ContainerExport(name(n))
                } else if let Some(n) = suffix(path, "/containers/", "/archive") {
                    ContainerArchiveGet(name(n))
                } else if let Some(n) = suffix(path, "/containers/", "/json") {
                    ContainerInspect(name(n))
                } else {
                    return None;
                }
            }
        }),
        Method::HEAD if suffix(path, "/containers/", "/archive").is_some() => {
            suffix(path, "/containers/", "/archive").map(|n| ContainerArchiveHead(name(n)))
        }
        Method::PUT if suffix(path, "/containers/", "/archive").is_some() => {
            suffix(path, "/containers/", "/archive").map(|n| ContainerArchivePut(name(n)))
        }
        Method::POST => Some(match path {
            "/auth" => Auth,
            "/images/load" => ImagesLoad,
            "/images/create" => ImagesCreate,
            "/commit" => Commit,
            "/containers/create" => ContainerCreate,
            _ => {
                if let Some(n) = suffix(path, "/images/", "/push") {
                    ImagePush(name(n))
                } else if let Some(n) = suffix(path, "/images/", "/tag") {
                    ImageTag(name(n))
                } else if path == "/images/prune" {
                    ImagesPrune
                } else {
                    return None;
                }
            }
        }),
        Method::DELETE => {
            if let Some(n) = path.strip_prefix("/images/") {
                Some(ImageDelete(name(n)))
            } else {
                match path.strip_prefix("/containers/") {
                    Some(n) if !n.contains('/') => Some(ContainerDelete(name(n))),
                    _ => None,
                }
            }
        }
        _ => None,
    }
}

/// Split `/v1.41/images/json` into `(Some("1.41"), "/images/json")`.
pub fn split_version(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if end > 0 && rest[end..].starts_with('/') {
            return (Some(&rest[..end]), &rest[end..]);
        }
    }
    (None, path)
}

/// Go's `versions.compare`: dotted integers, missing parts are 0.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    let (pa, pb) = (parts(a), parts(b));
    for i in 0..pa.len().max(pb.len()) {
        let x = pa.get(i).copied().unwrap_or(0);
        let y = pb.get(i).copied().unwrap_or(0);
        if x != y {
            return x.cmp(&y);
        }
    }
    std::cmp::Ordering::Equal
}

fn header(resp: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

fn server_headers(resp: &mut Response<Body>, experimental: bool) {
    header(resp, "api-version", API_VERSION);
    if experimental {
        header(resp, "docker-experimental", "false");
    }
    header(resp, "ostype", "linux");
    header(
        resp,
        "server",
        &format!("strata/{} (linux)", env!("CARGO_PKG_VERSION")),
    );
}

/// What a handler gets.
/// The largest JSON request body read into memory (container configs, auth,
/// commit options). dockerd sets no bound; a real body is a few KiB.
pub const MAX_JSON_BODY: usize = 16 << 20;

/// Read a JSON request body of at most [`MAX_JSON_BODY`] bytes: a larger one
/// is refused with 413 before it is all read; a transport error is `status`.
pub async fn small_body(req: Request<Incoming>, status: u16) -> ApiResult<bytes::Bytes> {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(req.into_body(), MAX_JSON_BODY)
        .collect()
        .await
    {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
            413,
            format!("request body is larger than {MAX_JSON_BODY} bytes"),
        )),
        Err(e) => Err(ApiError::new(status, e.to_string())),
    }
}

pub struct Ctx {
    /// Shared server state.
    pub state: Arc<State>,
    /// The service, acting as this request's client.
    pub svc: crate::service::ImageService,
    /// Query parameters.
    pub query: Query,
    /// The request.
    pub req: Request<Incoming>,
    /// The API version in the path, if any.
    pub version: Option<String>,
}

/// Handle one request.
pub async fn handle(state: Arc<State>, uid: Option<u32>, req: Request<Incoming>) -> Response<Body> {
    if req.method() == Method::OPTIONS {
        return Response::new(super::full(Vec::new()));
    }
    let raw_path = percent_decode(req.uri().path(), false);
    let (version, path) = split_version(&raw_path);
    let Some(route) = route(req.method(), path) else {
        return ApiError::new(404, "page not found").into_response(false);
    };
    let version = version.map(str::to_string);
    let plain = version
        .as_deref()
        .is_some_and(|v| compare_versions(v, "1.24").is_lt());
    if let Some(v) = version.as_deref() {
        let err = if compare_versions(v, MIN_API_VERSION).is_lt() {
            Some(format!(
                "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
            ))
        } else if compare_versions(v, API_VERSION).is_gt() {
            Some(format!(
                "client version {v} is too new. Maximum supported API version is {API_VERSION}"
            ))
        } else {
            None
        };
        if let Some(msg) = err {
            let mut resp = ApiError::bad_request(msg).into_response(plain);
            server_headers(&mut resp, false);
            return resp;
        }
    }
    let actor = super::actor::request_actor(uid, req.headers());
    let ctx = Ctx {
        svc: state.svc.with_actor(actor),
        state,
        query: Query::parse(req.uri().query()),
        req,
        version,
    };
    let mut resp = match dispatch(ctx, route).await {
        Ok(r) => r,
        Err(e) => e.into_response(plain),
    };
    server_headers(&mut resp, true);
    resp
}

async fn dispatch(ctx: Ctx, route: Route) -> ApiResult<Response<Body>> {
    use Route::*;
    match route {
        Ping => system::ping(ctx),
        Version => system::version(ctx),
        Info => system::info(ctx).await,
        Events => system::events(ctx),
        SystemDf => system::df(ctx).await,
        Auth => registry::auth(ctx).await,
        ImagesSearch => registry::search(ctx).await,
        ImagePush(n) => registry::push(ctx, &n).await,
        ImagesList => images::list(ctx).await,
        ImagesGet => {
            let names = ctx.query.all("names");
            images::get(ctx, names).await
        }
        ImageGet(n) => images::get(ctx, vec![n]).await,
        ImageHistory(n) => images::history(ctx, &n).await,
        ImageInspect(n) => images::inspect(ctx, &n).await,
        ImagesLoad => images::load(ctx).await,
        ImageTag(n) => images::tag(ctx, &n).await,
        ImageDelete(n) => images::delete(ctx, &n).await,
        ImagesPrune => images::prune(ctx).await,
        ContainersList => containers::list(ctx).await,
        ContainerCreate => containers::create(ctx).await,
        ContainerInspect(n) => containers::inspect(ctx, &n).await,
        ContainerDelete(n) => containers::delete(ctx, &n).await,
        ImagesCreate => images::create(ctx).await,
        Commit => archive::commit(ctx).await,
        ContainerArchiveGet(n) => archive::get(ctx, &n).await,
        ContainerArchiveHead(n) => archive::head(ctx, &n).await,
        ContainerArchivePut(n) => archive::put(ctx, &n).await,
        ContainerExport(n) => archive::export(ctx, &n).await,
        NotImplemented(what) => Err(ApiError::not_implemented(what)),
    }
}

/// A `status` response with `body` as JSON (Go's encoder, no HTML escaping).
pub fn json_response(status: u16, body: &impl serde::Serialize) -> Response<Body> {
    encoded_json_response(status, super::json::encode(body))
}

/// [`json_response`] of a body already encoded.
pub fn encoded_json_response(status: u16, body: impl Into<bytes::Bytes>) -> Response<Body> {
    let mut resp = Response::new(super::full(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        use Route::*;
        let cases: &[(&str, Method, &str, Option<Route>)] = &[
            ("ping", Method::HEAD, "/_ping", Some(Ping)),
            ("list", Method::GET, "/images/json", Some(ImagesList)),
            (
                "inspect slash",
                Method::GET,
                "/images/127.0.0.1:5055/test:1/json",
                Some(ImageInspect("127.0.0.1:5055/test:1".into())),
            ),
            (
                "get before name",
                Method::GET,
                "/images/get",
                Some(ImagesGet),
            ),
            (
                "name get",
                Method::GET,
                "/images/a/b/get",
                Some(ImageGet("a/b".into())),
            ),
            (
                "history",
                Method::GET,
                "/images/x/history",
                Some(ImageHistory("x".into())),
            ),
            (
                "json wins over get",
                Method::GET,
                "/images/a/get/json",
                Some(ImageInspect("a/get".into())),
            ),
            (
                "tag",
                Method::POST,
                "/images/small:1/tag",
                Some(ImageTag("small:1".into())),
            ),
            (
                "push",
                Method::POST,
                "/images/r/push",
                Some(ImagePush("r".into())),
            ),
            ("prune", Method::POST, "/images/prune", Some(ImagesPrune)),
            (
                "delete blank",
                Method::DELETE,
                "/images/",
                Some(ImageDelete("".into())),
            ),
            (
                "delete slash",
                Method::DELETE,
                "/images/a/b:1",
                Some(ImageDelete("a/b:1".into())),
            ),
            (
                "push with registry",
                Method::POST,
                "/images/127.0.0.1:5000/a/b/push",
                Some(ImagePush("127.0.0.1:5000/a/b".into())),
            ),
            ("search", Method::GET, "/images/search", Some(ImagesSearch)),
            ("auth", Method::POST, "/auth", Some(Auth)),
            ("wrong method", Method::PUT, "/images/json", None),
            ("unknown", Method::GET, "/nope", None),
            (
                "container rm",
                Method::DELETE,
                "/containers/abc",
                Some(ContainerDelete("abc".into())),
            ),
        ];
        for (name, m, p, want) in cases {
            assert_eq!(&route(m, p), want, "{name}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(
            split_version("/v1.41/images/json"),
            (Some("1.41"), "/images/json")
        );
        assert_eq!(split_version("/images/json"), (None, "/images/json"));
        assert_eq!(split_version("/v/x"), (None, "/v/x"));
        assert!(compare_versions("1.9", "1.12").is_lt());
        assert!(compare_versions("1.41", "1.41.0").is_eq());
        assert!(compare_versions("1.99", "1.41").is_gt());
    }
}
