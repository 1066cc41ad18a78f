//! The `registry_response` target: what strata's distribution client parses
//! from a registry's answers.

use serde_json::Value;
use strata::ErrorKind;
use strata::fuzzing::{
    Challenge, check_manifest, normalize_platform, parse_challenge, parse_registry_error,
    select_manifest, validate_digest,
};

/// Platforms every manifest list is tried with (`None`: the host default).
const PLATFORMS: &[Option<&str>] = &[
    None,
    Some(""),
    Some("linux/amd64"),
    Some("linux/arm64"),
    Some("linux/arm64/v8"),
    Some("linux/arm"),
    Some("linux/arm/v7"),
    Some("linux/arm/v5"),
    Some("linux/386"),
    Some("LINUX/X86_64"),
    Some("windows/amd64"),
    Some("linux"),
    Some("/arm64"),
];

/// Media types an image manifest body is checked under.
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/json",
    "",
];

/// Statuses a registry error body is parsed under.
const STATUSES: &[u16] = &[400, 401, 403, 404, 429, 500];

/// The host architecture as pull names it when no platform is asked for.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    }
}

/// Registry responses: challenges, manifest lists and platform selection,
/// image manifests, error bodies.
///
/// Input: a response body; optionally, after a NUL byte, lines that are
/// `WWW-Authenticate` values and extra platforms to select. The body is
/// also tried line by line as challenges.
///
/// Properties: no panic; `parse_challenge(s)` is `Some` exactly when
/// `s.trim()` is not empty, with a lowercase scheme and non-empty,
/// lowercase, trimmed keys, and a challenge written back with every value
/// quoted parses to itself; a selected manifest is an entry of the list,
/// the first whose normalised platform equals the wanted one (or, for
/// `arm`, the first with the same os/arch when none is exact), and a
/// failed selection means no entry matches and names the wanted platform
/// exactly; `normalize_platform` is idempotent; an accepted image manifest
/// has a valid config digest and a non-schema1 media type; a parsed error
/// body has a code and Docker's retry rule and message, deterministically.
pub fn registry_response(data: &[u8]) {
    let (body, extra) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let extra = String::from_utf8_lossy(extra);
    let extra: Vec<&str> = extra.split('\n').take(8).collect();
    for line in extra
        .iter()
        .copied()
        .chain(std::str::from_utf8(body).unwrap_or("").split('\n').take(8))
    {
        challenge(line);
    }
    let platforms: Vec<Option<&str>> = PLATFORMS
        .iter()
        .copied()
        .chain(extra.iter().map(|s| Some(*s)))
        .collect();
    manifest_list(body, &platforms);
    for mt in MANIFEST_TYPES {
        if let Ok(digest) = check_manifest(mt, body) {
            assert!(
                validate_digest(&digest).is_ok(),
                "accepted config digest {digest:?}"
            );
            assert!(!mt.is_empty() && *mt != "application/json", "schema1 {mt}");
        }
    }
    for status in STATUSES {
        error_body(*status, body);
    }
}

fn challenge(s: &str) {
    let parsed = parse_challenge(s);
    assert_eq!(
        parsed.is_some(),
        !s.trim().is_empty(),
        "parse_challenge({s:?}) = {parsed:?}"
    );
    let Some(c) = parsed else { return };
    assert_eq!(c.scheme, c.scheme.to_ascii_lowercase());
    assert!(!c.scheme.is_empty() && !c.scheme.contains(' '));
    for (k, _) in &c.params {
        assert!(!k.is_empty(), "empty key in {s:?}");
        assert_eq!(k, &k.to_ascii_lowercase(), "key case in {s:?}");
        assert_eq!(k, k.trim(), "untrimmed key in {s:?}");
        assert!(!k.contains(['=', ',']), "key {k:?} of {s:?}");
    }
    // Written back with every value quoted, it parses to itself (when
    // nothing of the scheme would be trimmed away).
    if c.scheme != c.scheme.trim() || c.params.iter().any(|(k, _)| k.starts_with([' ', ','])) {
        return;
    }
    let params: Vec<String> = c
        .params
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    let written = format!("{} {}", c.scheme, params.join(","));
    assert_eq!(
        parse_challenge(&written),
        Some(Challenge {
            scheme: c.scheme.clone(),
            params: c.params.clone()
        }),
        "{s:?} written back as {written:?}"
    );
}

/// A field of a struct that serde may have read from a map or a sequence.
fn field<'a>(v: &'a Value, name: &str, index: usize) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m.get(name),
        Value::Array(a) => a.get(index),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

/// `(os, arch, variant)` of a descriptor, normalised as pull does.
fn entry_platform(d: &Value) -> (String, String, String) {
    let p = field(d, "platform", 3).filter(|p| !p.is_null());
    let get = |name, i| text(p.and_then(|p| field(p, name, i)));
    normalize_platform(get("os", 1), get("architecture", 0), get("variant", 2))
}

fn manifest_list(body: &[u8], platforms: &[Option<&str>]) {
    for wanted in platforms {
        let Some(picked) = select_manifest(body, *wanted) else {
            return;
        };
        // The parse succeeded, so the body is JSON of the list's shape; but
        // `Value` refuses lone surrogates that ignored fields may hold.
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return;
        };
        let entries: Vec<Value> = match field(&v, "manifests", 0) {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        let spec = wanted.filter(|w| !w.is_empty()).unwrap_or("");
        let mut parts = spec.split('/');
        let os = parts.next().filter(|s| !s.is_empty()).unwrap_or("linux");
        let arch = parts
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or(host_arch());
        let variant = parts.next().unwrap_or("");
        let want = normalize_platform(os, arch, variant);
        assert_eq!(
            normalize_platform(&want.0, &want.1, &want.2),
            want,
            "normalize_platform not idempotent for {spec:?}"
        );
        let platforms: Vec<_> = entries.iter().map(entry_platform).collect();
        let exact = platforms.iter().position(|p| *p == want);
        let loose = platforms
            .iter()
            .position(|p| want.1 == "arm" && p.0 == want.0 && p.1 == want.1);
        match picked {
            Ok(i) => {
                assert!(i < entries.len(), "selected entry not in the list");
                assert_eq!(
                    Some(i),
                    exact.or(loose),
                    "selection for {spec:?} among {platforms:?}"
                );
            }
            Err(e) => {
                assert_eq!(exact.or(loose), None, "{spec:?} matches but: {e}");
                let mut name = format!("{}/{}", want.0, want.1);
                if !want.2.is_empty() {
                    name = format!("{name}/{}", want.2);
                }
                assert_eq!(
                    e.message(),
                    format!("no matching manifest for {name} in the manifest list entries")
                );
                assert_eq!(e.kind(), ErrorKind::NotFound);
            }
        }
    }
}

fn error_body(status: u16, body: &[u8]) {
    let got = parse_registry_error(status, body);
    let again = parse_registry_error(status, body);
    match (&got, &again) {
        (Ok(a), Ok(b)) => {
            assert_eq!(
                (&a.message, &a.code, a.retry),
                (&b.message, &b.code, b.retry)
            )
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("parse_error_body not deterministic"),
    }
    match got {
        Ok(f) => {
            let code = f.code.clone().expect("a parsed error has a code");
            let words = code.to_ascii_lowercase().replace('_', " ");
            let retry = !matches!(
                code.as_str(),
                "UNAUTHORIZED" | "DENIED" | "UNSUPPORTED" | "TOOMANYREQUESTS" | "NAME_UNKNOWN"
            ) && !code.ends_with("_UNKNOWN");
            assert_eq!(f.retry, retry, "retry of {code}");
            assert!(
                f.message.starts_with(&format!("{words}: ")) || f.message.starts_with("errors:\n"),
                "message {:?} of {code}",
                f.message
            );
        }
        Err(why) => assert!(!why.is_empty()),
    }
}
