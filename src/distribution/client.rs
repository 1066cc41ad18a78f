//! The registry client: endpoints and insecure rules (spec §1), an HTTP/1
//! client on hyper (§2), ping and authentication (§3), registry error
//! bodies (§9).
//!
//! Every request opens its own connection and says `Connection: close`, as
//! Docker's client does. `https://` is spoken with rustls (see
//! [`super::tls`]: which registries are insecure, certificates, the https
//! then http fallback of insecure registries).

use super::tls::{RegistryOptions, Transport};
use crate::error::{Error, Result};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Request bodies.
pub type ReqBody = BoxBody<Bytes, std::io::Error>;

/// An empty request body.
pub fn empty() -> ReqBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A request body of `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> ReqBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

const USER_AGENT: &str = concat!("strata/", env!("CARGO_PKG_VERSION"));
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);
const PING_TIMEOUT: Duration = Duration::from_secs(15);

/// The media types a manifest request accepts (Docker's six `Accept` headers).
pub const MANIFEST_ACCEPT: [&str; 6] = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/json",
];

/// Credentials for a registry: Docker's auth config (spec §3.5).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auth {
    /// User name (Basic auth, or the token server's `account`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// Password.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// An OAuth2 refresh token from an earlier login (`identitytoken`).
    #[serde(
        default,
        rename = "identitytoken",
        skip_serializing_if = "String::is_empty"
    )]
    pub identity_token: String,
    /// A bearer token sent as is (`registrytoken`): no token fetch.
    #[serde(
        default,
        rename = "registrytoken",
        skip_serializing_if = "String::is_empty"
    )]
    pub registry_token: String,
    /// `base64(user:pass)` as in `~/.docker/config.json`; decoded into
    /// username/password by [`Auth::normalized`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    /// The registry the credentials are for (informational).
    #[serde(
        default,
        rename = "serveraddress",
        skip_serializing_if = "String::is_empty"
    )]
    pub server_address: String,
}

impl Auth {
    /// Username and password.
    pub fn basic(username: &str, password: &str) -> Auth {
        Auth {
            username: username.into(),
            password: password.into(),
            ..Auth::default()
        }
    }

    /// The value with `auth` (base64 `user:pass`) decoded into username/password.
    pub fn normalized(mut self) -> Auth {
        if self.username.is_empty()
            && !self.auth.is_empty()
            && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(self.auth.trim())
            && let Ok(text) = String::from_utf8(raw)
            && let Some((u, p)) = text.split_once(':')
        {
            self.username = u.to_string();
            self.password = p.trim_end_matches('\0').to_string();
        }
        self
    }

    /// Decode an `X-Registry-Auth` header (base64url JSON); `None` when it
    /// does not decode (Docker then pulls anonymously).
    pub fn from_registry_auth_header(value: &str) -> Option<Auth> {
        let v = value.trim();
        let engines = [
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
            base64::engine::general_purpose::STANDARD,
        ];
        let raw = engines.iter().find_map(|e| e.decode(v).ok())?;
        let a: Auth = serde_json::from_slice(&raw).ok()?;
        Some(a.normalized())
    }

    /// The credentials for `registry` from a Docker CLI config file's
    /// `auths` (keys `host`, `http(s)://host`, `https://index.docker.io/v1/`
    /// for docker.io).
    pub fn from_docker_config(config_json: &[u8], registry: &str) -> Option<Auth> {
        let v: serde_json::Value = serde_json::from_slice(config_json).ok()?;
        let auths = v.get("auths")?.as_object()?;
        let want = index_key(registry);
        for (k, entry) in auths {
            if index_key(k) == want {
                let a: Auth = serde_json::from_value(entry.clone()).ok()?;
                let a = a.normalized();
                if a == Auth::default() {
                    return None;
                }
                return Some(a);
            }
        }
        None
    }

    fn has_basic(&self) -> bool {
        !self.username.is_empty() && !self.password.is_empty()
    }
}

/// The key under which the CLI stores credentials for a registry: the
/// host, with docker.io spelled `https://index.docker.io/v1/`.
pub fn index_key(registry: &str) -> String {
    let mut s = registry.trim();
    for p in ["https://", "http://"] {
        if let Some(r) = s.strip_prefix(p) {
            s = r;
        }
    }
    let host = s.split('/').next().unwrap_or("");
    match host {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            "https://index.docker.io/v1/".to_string()
        }
        h => h.to_string(),
    }
}

/// A URL: scheme, authority (`host[:port]`) and path with query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`.
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parse an absolute `http(s)://` URL.
    pub fn parse(s: &str) -> Result<Url> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| Error::invalid(format!("invalid URL {s:?}")))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        if authority.is_empty() {
            return Err(Error::invalid(format!("invalid URL {s:?}")));
        }
        Ok(Url {
            scheme: scheme.to_ascii_lowercase(),
            authority: authority.to_string(),
            path,
        })
    }

    /// Resolve `location` (absolute, or relative to this URL).
    pub fn join(&self, location: &str) -> Result<Url> {
        if location.contains("://") {
            return Url::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return Url::parse(&format!("{}://{rest}", self.scheme));
        }
        let path = if location.starts_with('/') {
            location.to_string()
        } else {
            let base = self.path.split('?').next().unwrap_or("/");
            let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{location}")
        };
        Ok(Url {
            path,
            ..self.clone()
        })
    }

    /// This URL with `key=value` (escaped) appended to the query.
    pub fn with_query(&self, key: &str, value: &str) -> Url {
        let sep = if self.path.contains('?') { '&' } else { '?' };
        Url {
            path: format!("{}{sep}{key}={}", self.path, query_escape(value)),
            ..self.clone()
        }
    }

    fn host_port(&self) -> String {
        if self.authority.starts_with('[') {
            if self.authority.contains("]:") {
                return self.authority.clone();
            }
        } else if self.authority.contains(':') {
            return self.authority.clone();
        }
        let port = if self.scheme == "https" { 443 } else { 80 };
        format!("{}:{port}", self.authority)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.path)
    }
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Whether the registry `host` (`host[:port]`) is insecure under Docker's
/// defaults: loopback (`127.0.0.0/8`, `::1`) or `localhost` (spec §1.2).
pub fn is_insecure(host: &str) -> bool {
    RegistryOptions::default().is_insecure(host)
}

/// The registry base URL for a reference domain (the last endpoint tried:
/// plain http for insecure registries).
pub fn endpoint_for(domain: &str) -> Url {
    let (scheme, authority) = match domain {
        "docker.io" | "index.docker.io" => ("https", "registry-1.docker.io"),
        d if is_insecure(d) => ("http", d),
        d => ("https", d),
    };
    Url {
        scheme: scheme.into(),
        authority: authority.into(),
        path: "/".into(),
    }
}

/// A failure talking to a registry, with what decides retries and translation.
#[derive(Clone, Debug)]
pub struct Fail {
    /// The error text (Docker's).
    pub message: String,
    /// The registry error code of the first error (`MANIFEST_UNKNOWN`, …).
    pub code: Option<String>,
    /// Whether retrying may help (transport errors, 5xx, truncated bodies).
    pub retry: bool,
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Fail {
    /// A non-retryable failure.
    pub fn fatal(message: impl Into<String>) -> Fail {
        Fail {
            message: message.into(),
            code: None,
            retry: false,
        }
    }
    /// A retryable failure.
    pub fn transient(message: impl Into<String>) -> Fail {
        Fail {
            message: message.into(),
            code: None,
            retry: true,
        }
    }
    /// As a strata error (HTTP 500 class).
    pub fn into_error(self) -> Error {
        Error::internal(self.message)
    }
}

fn go_method(m: &Method) -> String {
    let s = m.as_str().to_ascii_lowercase();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => s,
    }
}

fn url_error(m: &Method, url: &Url, err: impl fmt::Display) -> Fail {
    Fail::transient(format!("{} \"{url}\": {err}", go_method(m)))
}

/// One request on a fresh connection; no auth, no redirects.
async fn send_raw(
    method: &Method,
    url: &Url,
    headers: &[(String, String)],
    body: ReqBody,
    timeout: Option<Duration>,
    tr: &Transport,
) -> std::result::Result<Response<Incoming>, Fail> {
    if url.scheme != "http" && url.scheme != "https" {
        return Err(Fail::fatal(format!(
            "{} \"{url}\": unsupported protocol scheme \"{}\"",
            go_method(method),
            url.scheme
        )));
    }
    let addr = url.host_port();
    let stream =
        match tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect(&addr)).await {
            Err(_) => {
                return Err(url_error(
                    method,
                    url,
                    format!("dial tcp {addr}: i/o timeout"),
                ));
            }
            Ok(Err(e)) => {
                let what = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                    _ => e.to_string(),
                };
                return Err(url_error(
                    method,
                    url,
                    format!("dial tcp {addr}: connect: {what}"),
                ));
            }
            Ok(Ok(s)) => s,
        };
    let host = url_host(&url.authority);
    let stream: Box<dyn super::tls::Io> = if url.scheme == "https" {
        tr.handshake(stream, &host)
            .await
            .map_err(|e| url_error(method, url, e))?
    } else {
        Box::new(stream)
    };
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| url_error(method, url, e))?;
    // A TLS alert after the handshake (a client certificate the server
    // refuses, TLS 1.3) ends the connection task; keep its text.
    let (conn_err_tx, conn_err) = tokio::sync::oneshot::channel::<String>();
    let conn_host = host.clone();
    tokio::spawn(async move {
        if let Err(e) = conn.await
            && let Some(t) = super::tls::hyper_tls_text(&e, &conn_host)
        {
            let _ = conn_err_tx.send(t);
        }
    });
    let mut req = Request::builder()
        .method(method.clone())
        .uri(&url.path)
        .header("Host", &url.authority)
        .header("User-Agent", USER_AGENT)
        .header("Connection", "close");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req.body(body).map_err(|e| url_error(method, url, e))?;
    let fut = sender.send_request(req);
    let resp = match timeout {
        Some(t) => tokio::time::timeout(t, fut).await.map_err(|_| {
            url_error(
                method,
                url,
                "net/http: request canceled (Client.Timeout exceeded while awaiting headers)",
            )
        })?,
        None => fut.await,
    };
    match resp {
        Ok(r) => Ok(r),
        Err(e) => {
            let text = match super::tls::hyper_tls_text(&e, &host) {
                Some(t) => t,
                None => match tokio::time::timeout(Duration::from_secs(1), conn_err).await {
                    Ok(Ok(t)) => t,
                    _ => hyper_text(&e, &host),
                },
            };
            Err(url_error(method, url, text))
        }
    }
}

/// The host of an authority, without port or brackets.
fn url_host(authority: &str) -> String {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_string();
    }
    authority
        .rsplit_once(':')
        .filter(|(h, p)| !h.contains(':') && p.chars().all(|c| c.is_ascii_digit()))
        .map_or(authority, |(h, _)| h)
        .to_string()
}

fn hyper_text(e: &hyper::Error, host: &str) -> String {
    if let Some(t) = super::tls::hyper_tls_text(e, host) {
        t
    } else if e.is_incomplete_message() {
        "EOF".to_string()
    } else {
        e.to_string()
    }
}

/// Read a whole response body (at most `limit` bytes).
pub async fn read_body(resp: Response<Incoming>, limit: usize) -> std::result::Result<Bytes, Fail> {
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Fail::transient(body_error(&e)))?;
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
            if out.len() > limit {
                return Err(Fail::fatal(format!(
                    "response body exceeds the limit of {limit} bytes"
                )));
            }
        }
    }
    Ok(Bytes::from(out))
}

/// Go's text for a body read that failed.
pub fn body_error(e: &hyper::Error) -> String {
    let mut cause: Option<&dyn std::error::Error> = Some(e);
    let mut eof = e.is_incomplete_message();
    while let Some(c) = cause {
        eof |= c.to_string().contains("end of file");
        cause = c.source();
    }
    if eof {
        "unexpected EOF".to_string()
    } else {
        e.to_string()
    }
}

/// A header value as text.
pub fn header(resp: &Response<Incoming>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// An authentication challenge from `WWW-Authenticate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Lowercase scheme (`bearer`, `basic`).
    pub scheme: String,
    /// Parameters (`realm`, `service`, `scope`, `error`, …).
    pub params: Vec<(String, String)>,
}

impl Challenge {
    fn param(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

/// Parse every challenge of every `WWW-Authenticate` header.
pub fn challenges(resp: &Response<Incoming>) -> Vec<Challenge> {
    resp.headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(parse_challenge)
        .collect()
}

/// Parse one `scheme k="v",k2=v2` challenge.
pub fn parse_challenge(s: &str) -> Option<Challenge> {
    let s = s.trim();
    let (scheme, rest) = match s.find(' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = rest[ks..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        let mut value = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                let ch = rest[i..].chars().next().unwrap_or(' ');
                value.push(ch);
                i += ch.len_utf8();
            }
            i += 1;
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            value = rest[vs..i].trim().to_string();
        }
        if !key.is_empty() {
            params.push((key, value));
        }
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

#[derive(Deserialize)]
struct RegErr {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct RegErrs {
    errors: Vec<RegErr>,
}

/// Go's `errcode.ErrorCode.Error()`: the value lowercased, `_` → space.
fn code_words(code: &str) -> String {
    code.to_ascii_lowercase().replace('_', " ")
}

fn default_message(code: &str) -> &'static str {
    match code {
        "UNAUTHORIZED" => "authentication required",
        "DENIED" => "requested access to the resource is denied",
        "TOOMANYREQUESTS" => "too many requests",
        _ => "unknown error",
    }
}

fn code_fail(code: &str, message: &str) -> Fail {
    let retry = !matches!(
        code,
        "UNAUTHORIZED" | "DENIED" | "UNSUPPORTED" | "TOOMANYREQUESTS" | "NAME_UNKNOWN"
    ) && !code.ends_with("_UNKNOWN");
    Fail {
        message: format!("{}: {message}", code_words(code)),
        code: Some(code.to_string()),
        retry,
    }
}

/// Go's `parseHTTPErrorResponse`.
pub(crate) fn parse_error_body(status: u16, body: &[u8]) -> std::result::Result<Fail, String> {
    #[derive(Deserialize)]
    struct Details {
        #[serde(default)]
        details: String,
    }
    if let Ok(d) = serde_json::from_slice::<Details>(body)
        && !d.details.is_empty()
    {
        let code = match status {
            401 => "UNAUTHORIZED",
            403 => "DENIED",
            429 => "TOOMANYREQUESTS",
            _ => "UNKNOWN",
        };
        return Ok(code_fail(code, &d.details));
    }
    let errs: RegErrs = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(_) => {
            let parse = match crate::gojson::parse(body) {
                Err(e) => e.message().to_string(),
                Ok(_) => "json: cannot unmarshal into Go value of type errcode.Errors".to_string(),
            };
            return Err(parse);
        }
    };
    let Some(first) = errs.errors.first() else {
        return Err("no error details found in HTTP response body".into());
    };
    let mut f = code_fail(&first.code, &first.message);
    if errs.errors.len() > 1 {
        let mut m = String::from("errors:\n");
        for e in &errs.errors {
            m.push_str(&format!("{}: {}\n", code_words(&e.code), e.message));
        }
        f.message = m;
    }
    Ok(f)
}

/// Go's `HandleErrorResponse` for a failed response.
pub async fn error_response(resp: Response<Incoming>) -> Fail {
    let status = resp.status();
    let code = status.as_u16();
    if (400..500).contains(&code) {
        let bearer = challenges(&resp).into_iter().find_map(|c| {
            if c.scheme != "bearer" {
                return None;
            }
            let code = match c.param("error") {
                Some("invalid_token") => "UNAUTHORIZED",
                Some("insufficient_scope") => "DENIED",
                _ => return None,
            };
            let msg = c
                .param("error_description")
                .filter(|d| !d.is_empty())
                .unwrap_or(default_message(code))
                .to_string();
            Some(code_fail(code, &msg))
        });
        let body = read_body(resp, 1 << 20).await.unwrap_or_default();
        if let Some(f) = bearer {
            return f;
        }
        return match parse_error_body(code, &body) {
            Ok(f) => f,
            Err(_) if code == 401 => code_fail("UNAUTHORIZED", default_message("UNAUTHORIZED")),
            Err(parse) => Fail::fatal(format!(
                "error parsing HTTP {code} response body: {parse}: {}",
                crate::reference::go_quote_bytes(&body)
            )),
        };
    }
    Fail {
        message: format!(
            "received unexpected HTTP status: {} {}",
            code,
            status.canonical_reason().unwrap_or("")
        ),
        code: None,
        retry: code >= 500,
    }
}

/// What a session authenticates with, decided by the ping's challenges.
#[derive(Clone, Debug)]
enum Scheme {
    Anonymous,
    Basic,
    Bearer { realm: String, service: String },
}

/// An authenticated conversation with one registry for one operation.
#[derive(Debug)]
pub struct Session {
    /// The endpoint (`http://host:port/`).
    pub base: Url,
    auth: Option<Auth>,
    scopes: Vec<String>,
    scheme: Scheme,
    token: tokio::sync::Mutex<Option<String>>,
    transport: Transport,
}

impl Session {
    /// Ping `domain`'s endpoint and prepare auth for `scopes`.
    pub async fn open(
        domain: &str,
        auth: Option<Auth>,
        scopes: Vec<String>,
    ) -> std::result::Result<Session, Fail> {
        Session::open_with(domain, auth, scopes, &RegistryOptions::default()).await
    }

    /// [`Session::open`] with explicit registry settings: the endpoints
    /// are tried in order (https, then http for insecure registries); the
    /// first that answers the ping is used, the last failure is returned.
    pub async fn open_with(
        domain: &str,
        auth: Option<Auth>,
        scopes: Vec<String>,
        opts: &RegistryOptions,
    ) -> std::result::Result<Session, Fail> {
        let (ep, _, challenges) = ping_endpoints(domain, opts).await?;
        Ok(Session::with_challenges(
            ep.url,
            auth,
            scopes,
            &challenges,
            ep.transport,
        ))
    }

    /// A session on `base` that never authenticates (v1 search, tests).
    pub fn plain(base: Url) -> Session {
        Session::with_challenges(base, None, Vec::new(), &[], Transport::default())
    }

    /// A session on `base` that never authenticates, speaking https with
    /// `transport`.
    pub fn plain_with(base: Url, transport: Transport) -> Session {
        Session::with_challenges(base, None, Vec::new(), &[], transport)
    }

    fn with_challenges(
        base: Url,
        auth: Option<Auth>,
        scopes: Vec<String>,
        challenges: &[Challenge],
        transport: Transport,
    ) -> Session {
        let scheme = challenges
            .iter()
            .find_map(|c| match c.scheme.as_str() {
                "bearer" => Some(Scheme::Bearer {
                    realm: c.param("realm").unwrap_or("").to_string(),
                    service: c.param("service").unwrap_or("").to_string(),
                }),
                "basic" => Some(Scheme::Basic),
                _ => None,
            })
            .unwrap_or(Scheme::Anonymous);
        Session {
            base,
            auth: auth.map(Auth::normalized),
            scopes,
            scheme,
            token: tokio::sync::Mutex::new(None),
            transport,
        }
    }

    /// `base` joined with `path`.
    pub fn url(&self, path: &str) -> Url {
        Url {
            path: path.to_string(),
            ..self.base.clone()
        }
    }

    async fn authorization(&self) -> std::result::Result<Option<String>, String> {
        if let Some(a) = &self.auth
            && !a.registry_token.is_empty()
        {
            return Ok(Some(format!("Bearer {}", a.registry_token)));
        }
        match &self.scheme {
            Scheme::Anonymous => Ok(None),
            Scheme::Basic => match &self.auth {
                Some(a) if a.has_basic() => Ok(Some(basic_header(a))),
                _ => Err("no basic auth credentials".into()),
            },
            Scheme::Bearer { realm, service } => {
                let mut cached = self.token.lock().await;
                if let Some(t) = cached.as_ref() {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let t = fetch_token(
                    realm,
                    service,
                    &self.scopes,
                    self.auth.as_ref(),
                    false,
                    &self.transport,
                )
                .await
                .map_err(|f| f.message)?;
                *cached = Some(t.token.clone());
                Ok(Some(format!("Bearer {}", t.token)))
            }
        }
    }

    /// Send a request with auth, following redirects (GET/HEAD, up to 10).
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        headers: Vec<(String, String)>,
        body: ReqBody,
    ) -> std::result::Result<Response<Incoming>, Fail> {
        let mut url = url;
        let mut body = Some(body);
        for _ in 0..=10 {
            let mut hs = headers.clone();
            if url.authority == self.base.authority && url.path.contains("/v2/") {
                match self.authorization().await {
                    Ok(Some(v)) => hs.push(("Authorization".into(), v)),
                    Ok(None) => {}
                    Err(e) => {
                        return Err(Fail::fatal(format!(
                            "{} \"{url}\": {e}",
                            go_method(&method)
                        )));
                    }
                }
            }
            let b = body.take().unwrap_or_else(empty);
            let resp = send_raw(&method, &url, &hs, b, None, &self.transport).await?;
            let s = resp.status().as_u16();
            if matches!(s, 301 | 302 | 303 | 307 | 308)
                && (method == Method::GET || method == Method::HEAD)
                && let Some(loc) = header(&resp, "location")
            {
                url = url.join(&loc).map_err(|e| Fail::fatal(e.message()))?;
                continue;
            }
            return Ok(resp);
        }
        Err(Fail::fatal(format!(
            "{} \"{url}\": stopped after 10 redirects",
            go_method(&method)
        )))
    }

    /// [`Session::send`] with no body and the given headers.
    pub async fn get(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::result::Result<Response<Incoming>, Fail> {
        let hs = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.send(method, self.url(path), hs, empty()).await
    }
}

fn basic_header(a: &Auth) -> String {
    let raw = format!("{}:{}", a.username, a.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// `GET /v2/` without auth: the status and the challenges (spec §3.1).
/// `https://` bases are verified against the system roots only.
pub async fn ping(base: &Url) -> std::result::Result<(u16, Vec<Challenge>), Fail> {
    ping_with(base, &Transport::default()).await
}

/// [`ping`] speaking https with `tr`.
pub async fn ping_with(
    base: &Url,
    tr: &Transport,
) -> std::result::Result<(u16, Vec<Challenge>), Fail> {
    let url = Url {
        path: "/v2/".into(),
        ..base.clone()
    };
    let resp = send_raw(&Method::GET, &url, &[], empty(), Some(PING_TIMEOUT), tr).await?;
    let status = resp.status().as_u16();
    let ch = challenges(&resp);
    let _ = read_body(resp, 1 << 20).await;
    Ok((status, ch))
}

/// Ping `domain`'s endpoints in order; the first that answers, with its
/// status and challenges, or the last failure (Docker's endpoint fallback).
pub(crate) async fn ping_endpoints(
    domain: &str,
    opts: &RegistryOptions,
) -> std::result::Result<(super::tls::Endpoint, u16, Vec<Challenge>), Fail> {
    let endpoints = opts.endpoints(domain)?;
    let mut last = None;
    for ep in endpoints {
        match ping_with(&ep.url, &ep.transport).await {
            Ok((status, ch)) => return Ok((ep, status, ch)),
            Err(f) => {
                tracing::debug!("registry endpoint {} failed: {f}", ep.url);
                last = Some(f);
            }
        }
    }
    Err(last.unwrap_or_else(|| Fail::fatal(format!("no endpoint for {domain}"))))
}

struct Token {
    token: String,
    refresh: String,
}

/// Fetch a bearer token (spec §3.3): GET with Basic credentials, or the
/// OAuth2 refresh-token POST when an identity token is configured.
async fn fetch_token(
    realm: &str,
    service: &str,
    scopes: &[String],
    auth: Option<&Auth>,
    login: bool,
    tr: &Transport,
) -> std::result::Result<Token, Fail> {
    let realm_url = Url::parse(realm).map_err(|e| Fail::fatal(e.message()))?;
    let (method, url, headers, body) = match auth.filter(|a| !a.identity_token.is_empty()) {
        Some(a) => {
            let form = format!(
                "client_id=docker&grant_type=refresh_token&refresh_token={}&scope={}&service={}",
                query_escape(&a.identity_token),
                query_escape(&scopes.join(" ")),
                query_escape(service)
            );
            (
                Method::POST,
                realm_url,
                vec![(
                    "Content-Type".to_string(),
                    "application/x-www-form-urlencoded".to_string(),
                )],
                full(form),
            )
        }
        None => {
            let mut q: Vec<(&str, String)> = Vec::new();
            let basic = auth.filter(|a| a.has_basic());
            if let Some(a) = basic {
                q.push(("account", a.username.clone()));
            }
            if login {
                q.push(("client_id", "docker".into()));
                q.push(("offline_token", "true".into()));
            }
            for s in scopes {
                q.push(("scope", s.clone()));
            }
            if !service.is_empty() {
                q.push(("service", service.to_string()));
            }
            q.sort_by(|a, b| a.0.cmp(b.0));
            let mut url = realm_url;
            for (k, v) in q {
                url = url.with_query(k, &v);
            }
            let hs = basic
                .map(|a| vec![("Authorization".to_string(), basic_header(a))])
                .unwrap_or_default();
            (Method::GET, url, hs, empty())
        }
    };
    let resp = send_raw(&method, &url, &headers, body, Some(PING_TIMEOUT), tr).await?;
    if !resp.status().is_success() {
        return Err(error_response(resp).await);
    }
    let body = read_body(resp, 1 << 20).await?;
    #[derive(Deserialize)]
    struct Resp {
        #[serde(default)]
        token: String,
        #[serde(default)]
        access_token: String,
        #[serde(default)]
        refresh_token: String,
    }
    let r: Resp = serde_json::from_slice(&body)
        .map_err(|e| Fail::fatal(format!("unable to decode token response: {e}")))?;
    let token = if r.access_token.is_empty() {
        r.token
    } else {
        r.access_token
    };
    if token.is_empty() {
        return Err(Fail::fatal(
            "authorization server did not include a token in the response",
        ));
    }
    Ok(Token {
        token,
        refresh: r.refresh_token,
    })
}

/// What a login returned (Engine API `POST /auth`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginReport {
    /// `Login Succeeded`.
    #[serde(rename = "Status")]
    pub status: String,
    /// The refresh token the token server handed out, if any.
    #[serde(rename = "IdentityToken")]
    pub identity_token: String,
}

/// Check credentials against `server` (spec §3.4).
pub async fn login(server: &str, auth: &Auth) -> Result<LoginReport> {
    login_with(server, auth, &RegistryOptions::default()).await
}

/// [`login`] with explicit registry settings.
pub async fn login_with(server: &str, auth: &Auth, opts: &RegistryOptions) -> Result<LoginReport> {
    let host = index_key(server);
    let domain = if host.starts_with("https://index.docker.io") {
        "docker.io".to_string()
    } else {
        host
    };
    let (ep, status, challenges) = ping_endpoints(&domain, opts)
        .await
        .map_err(Fail::into_error)?;
    let (base, tr) = (ep.url, ep.transport);
    let v2 = Url {
        path: "/v2/".into(),
        ..base.clone()
    };
    let auth = auth.clone().normalized();
    let mut identity = String::new();
    let mut headers = Vec::new();
    let bearer = challenges.iter().find(|c| c.scheme == "bearer");
    if let Some(c) = bearer {
        let t = fetch_token(
            c.param("realm").unwrap_or(""),
            c.param("service").unwrap_or(""),
            &[],
            Some(&auth),
            true,
            &tr,
        )
        .await
        .map_err(|f| Error::internal(format!("Get \"{v2}\": {f}")))?;
        identity = t.refresh;
        headers.push(("Authorization".to_string(), format!("Bearer {}", t.token)));
    } else if challenges.iter().any(|c| c.scheme == "basic") {
        if !auth.has_basic() {
            return Err(Error::internal(format!(
                "Get \"{v2}\": no basic auth credentials"
            )));
        }
        headers.push(("Authorization".to_string(), basic_header(&auth)));
    } else if status == 200 {
        return Ok(LoginReport {
            status: "Login Succeeded".into(),
            identity_token: String::new(),
        });
    }
    let resp = send_raw(
        &Method::GET,
        &v2,
        &headers,
        empty(),
        Some(PING_TIMEOUT),
        &tr,
    )
    .await
    .map_err(Fail::into_error)?;
    let st = resp.status();
    if st.as_u16() != 200 {
        return Err(Error::new(
            crate::ErrorKind::Internal,
            format!(
                "login attempt to {v2} failed with status: {} {}",
                st.as_u16(),
                st.canonical_reason().unwrap_or("")
            ),
        ));
    }
    Ok(LoginReport {
        status: "Login Succeeded".into(),
        identity_token: identity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parsing() {
        let c = parse_challenge(
            r#"Bearer realm="http://127.0.0.1:5059/token",service="fmt-registry",scope="repository:test:pull""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("http://127.0.0.1:5059/token"));
        assert_eq!(c.param("service"), Some("fmt-registry"));
        assert_eq!(c.param("scope"), Some("repository:test:pull"));
        let b = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(b.scheme, "basic");
    }

    #[test]
    fn insecure_rules() {
        for (h, want) in [
            ("127.0.0.1:5000", true),
            ("127.3.4.5", true),
            ("localhost:5000", true),
            ("localhost", true),
            ("[::1]:5000", true),
            ("10.0.0.1:5000", false),
            ("registry.example.com", false),
            ("docker.io", false),
        ] {
            assert_eq!(is_insecure(h), want, "{h}");
        }
    }

    #[test]
    fn url_join_and_query() {
        let u = Url::parse("http://127.0.0.1:5000/v2/test/blobs/uploads/").unwrap();
        assert_eq!(
            u.join("/v2/test/blobs/uploads/abc?_state=x")
                .unwrap()
                .to_string(),
            "http://127.0.0.1:5000/v2/test/blobs/uploads/abc?_state=x"
        );
        assert_eq!(
            u.join("abc").unwrap().to_string(),
            "http://127.0.0.1:5000/v2/test/blobs/uploads/abc"
        );
        assert_eq!(
            u.with_query("digest", "sha256:ab").path,
            "/v2/test/blobs/uploads/?digest=sha256%3Aab"
        );
    }

    #[test]
    fn docker_config_auths() {
        let cfg = br#"{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpwYXNz"},"https://index.docker.io/v1/":{"auth":"YTpi"}}}"#;
        assert_eq!(
            Auth::from_docker_config(cfg, "127.0.0.1:5000").map(|a| (a.username, a.password)),
            Some(("user".into(), "pass".into()))
        );
        assert_eq!(
            Auth::from_docker_config(cfg, "docker.io").map(|a| a.username),
            Some("a".into())
        );
        assert_eq!(Auth::from_docker_config(cfg, "other:1"), None);
    }
}
