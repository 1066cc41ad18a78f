//! The `engine_request` target: how `strata serve` reads an Engine API
//! request before any handler runs.

use std::cmp::Ordering;
use strata::fuzzing::{
    Auth, Filters, Query, Reference, Route, build_from_config, compare_versions, parse_platform,
    percent_decode, query_escape, route_request, split_version,
};

/// Versions every version in the input is compared with.
const VERSIONS: &[&str] = &["1.41", "1.12", "1.24", "1.32", "1.4", "1.41.0", "2", ""];

/// Go's `ishex` percent-decoding (the reference for `percent_decode`):
/// `%XX` with two hex digits decodes, anything else stays as it is.
fn reference_decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let (h, l) = (b[i + 1], b[i + 2]);
            if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() {
                let v = u8::from_str_radix(std::str::from_utf8(&[h, l]).unwrap(), 16).unwrap();
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if plus && b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The method(s) and decoded, unversioned path that give `r`.
fn route_source(r: &Route) -> (&'static [&'static str], String) {
    use Route::*;
    const GET: &[&str] = &["GET"];
    const POST: &[&str] = &["POST"];
    match r {
        Ping => (&["GET", "HEAD"], "/_ping".into()),
        Version => (GET, "/version".into()),
        Info => (GET, "/info".into()),
        Events => (GET, "/events".into()),
        SystemDf => (GET, "/system/df".into()),
        Auth => (POST, "/auth".into()),
        ImagesList => (GET, "/images/json".into()),
        ImagesGet => (GET, "/images/get".into()),
        ImageGet(n) => (GET, format!("/images/{n}/get")),
        ImageHistory(n) => (GET, format!("/images/{n}/history")),
        ImageInspect(n) => (GET, format!("/images/{n}/json")),
        ImagesLoad => (POST, "/images/load".into()),
        ImageTag(n) => (POST, format!("/images/{n}/tag")),
        ImageDelete(n) => (&["DELETE"], format!("/images/{n}")),
        ImagesPrune => (POST, "/images/prune".into()),
        ContainersList => (GET, "/containers/json".into()),
        ContainerCreate => (POST, "/containers/create".into()),
        ContainerInspect(n) => (GET, format!("/containers/{n}/json")),
        ContainerDelete(n) => (&["DELETE"], format!("/containers/{n}")),
        ImagesCreate => (POST, "/images/create".into()),
        Commit => (POST, "/commit".into()),
        ContainerArchiveGet(n) => (GET, format!("/containers/{n}/archive")),
        ContainerArchiveHead(n) => (&["HEAD"], format!("/containers/{n}/archive")),
        ContainerArchivePut(n) => (&["PUT"], format!("/containers/{n}/archive")),
        ContainerExport(n) => (GET, format!("/containers/{n}/export")),
        ImagesSearch => (GET, "/images/search".into()),
        ImagePush(n) => (POST, format!("/images/{n}/push")),
        NotImplemented(_) => (&[], String::new()),
    }
}

/// Base64url with padding, as the CLI encodes `X-Registry-Auth`.
fn base64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Engine API request parsing.
///
/// Input: a request line `METHOD target` (target = path and optional
/// `?query`), then header lines `Name: value`.
///
/// Properties: no panic; the router's route is one the method and the
/// decoded path give (each route reconstructs exactly the path it came
/// from); the split version is `/v<digits and dots>` before a `/`;
/// `compare_versions` is reflexive and antisymmetric; `Query` agrees with
/// a strict reference decoder (Go's `ishex`) pair by pair, `get` is the
/// first of `all`, and every decoded key and value round-trips through
/// `query_escape`; `filters` parse without panic; an accepted `platform`
/// re-parses to itself and a refused one is a 400 ending in `invalid
/// argument`; `changes` apply deterministically (none: config unchanged);
/// the pull's `fromImage` + `tag` reference re-parses to itself with that
/// tag; a decoded `X-Registry-Auth` is normalised and re-encoded decodes
/// to itself.
pub fn engine_request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let request_line = lines.next().unwrap_or("");
    let (method, target) = request_line.split_once(' ').unwrap_or((request_line, "/"));
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    request_path(method, path);
    let q = Query::parse(query);
    if let Some(raw) = query {
        query_pairs(raw, &q);
    }
    parameters(&q);
    for line in lines.take(8) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("x-registry-auth") {
            registry_auth(value.trim());
        }
    }
}

fn request_path(method: &str, path: &str) {
    let decoded = percent_decode(path, false);
    assert_eq!(decoded, reference_decode(path, false), "path {path:?}");
    let (version, rest) = split_version(&decoded);
    match version {
        Some(v) => {
            assert!(!v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'));
            assert!(rest.starts_with('/'));
            assert_eq!(format!("/v{v}{rest}"), decoded);
            versions(v);
        }
        None => assert_eq!(rest, decoded),
    }
    let Some((v2, route)) = route_request(method.as_bytes(), path) else {
        return;
    };
    assert_eq!(v2.as_deref(), version);
    if let Some(r) = route {
        let (methods, source) = route_source(&r);
        assert!(methods.contains(&method), "{method} {rest:?} -> {r:?}");
        assert_eq!(source, rest, "{method} {rest:?} -> {r:?}");
    }
}

fn versions(v: &str) {
    assert_eq!(compare_versions(v, v), Ordering::Equal);
    for w in VERSIONS {
        assert_eq!(
            compare_versions(v, w),
            compare_versions(w, v).reverse(),
            "{v:?} vs {w:?}"
        );
    }
}

fn query_pairs(raw: &str, q: &Query) {
    let mut seen: Vec<String> = Vec::new();
    for piece in raw.split(['&', ';']).filter(|p| !p.is_empty()).take(16) {
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        let (dk, dv) = (percent_decode(k, true), percent_decode(v, true));
        for s in [&dk, &dv] {
            assert_eq!(
                &percent_decode(&query_escape(s), true),
                s,
                "query_escape round trip of {s:?}"
            );
        }
        if seen.contains(&dk) {
            continue;
        }
        assert_eq!(dk, reference_decode(k, true), "key {k:?}");
        let want: Vec<String> = raw
            .split(['&', ';'])
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .filter(|(pk, _)| percent_decode(pk, true) == dk)
            .map(|(_, pv)| percent_decode(pv, true))
            .collect();
        assert_eq!(q.all(&dk), want, "values of {dk:?}");
        assert_eq!(dv, reference_decode(v, true), "value {v:?}");
        assert!(q.has(&dk));
        assert_eq!(q.get(&dk), want[0]);
        let again = Query::parse(Some(&format!(
            "{}={}",
            query_escape(&dk),
            query_escape(&dv)
        )));
        assert_eq!(again.all(&dk), std::slice::from_ref(&dv));
        seen.push(dk);
    }
}

fn parameters(q: &Query) {
    let _ = Filters::from_json(q.get("filters"));
    let _ = q.bool("all");
    assert_eq!(q.bool_or("force", true), !q.has("force") || q.bool("force"));

    let platform = q.get("platform");
    match parse_platform(platform) {
        Ok(p) => {
            let again = parse_platform(&p).map_err(|e| e.message);
            assert_eq!(again.as_deref(), Ok(p.as_str()), "platform {platform:?}");
            assert!((2..=3).contains(&p.split('/').count()), "{p:?}");
        }
        Err(e) => {
            assert_eq!(e.status, 400);
            assert!(e.message.ends_with(": invalid argument"), "{}", e.message);
        }
    }

    let changes = q.all("changes");
    let base = strata::ContainerConfig::default();
    let a = build_from_config(&base, &changes);
    let b = build_from_config(&base, &changes);
    match (&a, &b) {
        (Ok(x), Ok(y)) => assert_eq!(x, y),
        (Err(x), Err(y)) => assert_eq!(x.message(), y.message()),
        _ => panic!("changes {changes:?} not deterministic"),
    }
    if changes.is_empty() {
        assert_eq!(a.as_ref().ok(), Some(&base));
    }

    // The pull's reference: `fromImage` (trailing `:` trimmed) and `tag`.
    let image = q.get("fromImage").trim_end_matches(':');
    if let Ok(mut r) = Reference::parse_normalized_named(image) {
        let tag = q.get("tag");
        if !tag.is_empty() {
            match r.with_digest(tag) {
                Ok(d) => {
                    assert_eq!(d.digest(), Some(tag));
                    r = d;
                }
                Err(_) => match r.with_tag(tag) {
                    Ok(t) => {
                        assert_eq!(t.tag(), Some(tag));
                        r = t;
                    }
                    Err(_) => return,
                },
            }
        }
        let canonical = r.canonical_string();
        assert_eq!(
            Reference::parse_normalized_named(&canonical).as_ref(),
            Ok(&r),
            "pull reference {canonical:?}"
        );
    }
}

fn registry_auth(value: &str) {
    let Some(a) = Auth::from_registry_auth_header(value) else {
        return;
    };
    assert_eq!(a.clone().normalized(), a, "normalized is idempotent");
    let json = serde_json::to_vec(&a).expect("auth to JSON");
    let header = base64url(&json);
    assert_eq!(
        Auth::from_registry_auth_header(&header).as_ref(),
        Some(&a),
        "re-encoded X-Registry-Auth {header:?}"
    );
}
