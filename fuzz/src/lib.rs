//! Bodies of strata's fuzz targets, one function per target taking the raw
//! input bytes. `fuzz_targets/<name>.rs` hands libFuzzer's input to the
//! function of the same name; `tests/corpus.rs` replays every file under
//! `corpus/` through every function, so the properties are checked by a
//! plain `cargo test` too.
//!
//! Every function must never panic on any input; each one also asserts the
//! properties listed in its doc comment (a failed assertion is a crash).

#![forbid(unsafe_code)]

mod apply;
#[path = "../../tests/common/builder.rs"]
pub mod builder;
mod engine;
mod layout;
mod model;
mod registry;

pub use apply::{APPLY_BASES, layer_apply};
pub use engine::engine_request;
pub use layout::oci_layout;
pub use model::store_model;
pub use registry::registry_response;

use std::cell::RefCell;
use std::io::Cursor;
use std::path::Path;
use strata::fuzzing::{
    Envelope, Filters, ImageConfig, Reference, escapes_root, go_json_parse, parse_any_reference,
    parse_until, path_match, scan_tar as strata_scan_tar, validate_digest,
};
use strata::{Filters as PublicFilters, ImageService};

/// A target body: the raw input bytes, a panic on a failed property.
pub type Target = fn(&[u8]);

/// Every target, by name, for the corpus replay.
pub const TARGETS: &[(&str, Target)] = &[
    ("reference", reference),
    ("filters", filters),
    ("envelope", envelope),
    ("load_archive", load_archive),
    ("scan_tar", scan_tar),
    ("image_config", image_config),
    ("go_json", go_json),
    ("store_model", store_model),
    ("registry_response", registry_response),
    ("engine_request", engine_request),
    ("oci_layout", oci_layout),
    ("layer_apply", layer_apply),
];

thread_local! {
    static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

/// Run `fut` on this thread's current-thread runtime (with a blocking pool,
/// which the service's `spawn_blocking` needs).
pub(crate) fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    RUNTIME.with(|cell| {
        let mut slot = cell.borrow_mut();
        let rt = slot.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("tokio runtime")
        });
        rt.block_on(fut)
    })
}

/// Panic unless `audit::verify` passes (chain intact, tables == replay(log),
/// every layer blob present and intact).
pub(crate) fn assert_verified(svc: &ImageService, when: &str) {
    match strata::audit::verify(svc.store()) {
        Ok(Ok(_)) => {}
        Ok(Err(problem)) => panic!("audit verify failed {when}: {problem}"),
        Err(e) => panic!("audit verify errored {when}: {e}"),
    }
}

fn utf8(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// True for a path component that `splitDockerDomain` takes as a registry
/// host (contains `.` or `:`, or is `localhost`).
fn looks_like_domain(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

fn is_64_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Reference parsing and normalisation. Input: one string per line (at
/// most 8 lines), each checked on its own.
///
/// Properties, per line `s`:
/// * no parser panics;
/// * `Reference::parse(s) = Ok(r)` ⇒ `Reference::parse(r.canonical_string()) == r`;
/// * `parse_normalized_named(s) = Ok(r)` ⇒ the canonical string re-parses
///   (normalised and raw) to `r`, and the familiar string re-parses to `r`
///   — except where Go's `FamiliarName` itself is not invertible: a
///   `docker.io` path whose first component looks like a domain
///   (`docker.io/foo.com/bar` → `foo.com/bar`) or whose familiar name is 64
///   hex (`library/<hex>` → `<hex>`, refused as an ID);
/// * `parse_any_reference(s)`: `Named(r)` equals `parse_normalized_named(s)`,
///   `Digest(d)` is a valid digest;
/// * `validate_digest(s) = Ok` ⇒ `x@s` parses with digest `s`;
/// * `with_tag`, `tag_name_only`, `trim_named` results re-parse to themselves.
pub fn reference(data: &[u8]) {
    let Some(text) = utf8(data) else { return };
    for s in text.split('\n').take(8) {
        reference_one(s);
    }
}

fn reference_one(s: &str) {
    if let Ok(r) = Reference::parse(s) {
        let canonical = r.canonical_string();
        assert_eq!(
            Reference::parse(&canonical).as_ref(),
            Ok(&r),
            "raw parse of {s:?}: canonical {canonical:?} does not re-parse"
        );
    }
    let normalized = Reference::parse_normalized_named(s);
    if let Ok(r) = &normalized {
        let canonical = r.canonical_string();
        assert_eq!(
            Reference::parse_normalized_named(&canonical).as_ref(),
            Ok(r),
            "normalized {s:?}: canonical {canonical:?} does not re-normalize"
        );
        assert_eq!(
            Reference::parse(&canonical).as_ref(),
            Ok(r),
            "normalized {s:?}: canonical {canonical:?} does not raw-parse"
        );
        let familiar = r.familiar_string();
        let familiar_name = r.familiar_name();
        let first = familiar_name.split('/').next().unwrap_or("");
        let go_exception = r.domain() == "docker.io"
            && ((familiar_name.contains('/') && looks_like_domain(first))
                || is_64_hex(&familiar_name));
        if !go_exception {
            assert_eq!(
                Reference::parse_normalized_named(&familiar).as_ref(),
                Ok(r),
                "normalized {s:?}: familiar {familiar:?} does not re-normalize"
            );
        }
        assert!(
            canonical.len() >= familiar.len(),
            "familiar {familiar:?} longer than canonical {canonical:?}"
        );
        let name_only = r.tag_name_only();
        assert_eq!(
            Reference::parse(&name_only.canonical_string()).as_ref(),
            Ok(&name_only)
        );
        let trimmed = r.trim_named();
        assert!(trimmed.is_name_only());
        assert_eq!(trimmed.name(), r.name());
        if let Ok(t) = r.with_tag("fuzz-1") {
            assert_eq!(t.tag(), Some("fuzz-1"));
            assert_eq!(Reference::parse(&t.canonical_string()).as_ref(), Ok(&t));
        }
    }
    // `AnyReference` is not exported by `strata::fuzzing`: compare its Debug form.
    match parse_any_reference(s) {
        Ok(any) => {
            let shown = format!("{any:?}");
            if let Ok(r) = &normalized {
                let digest_form = shown.starts_with("Digest(");
                assert!(
                    digest_form || shown == format!("Named({r:?})"),
                    "parse_any_reference({s:?}) = {shown}, normalized {r:?}"
                );
            } else {
                assert!(
                    shown.starts_with("Digest(\"sha256:") || validate_digest(s).is_ok(),
                    "parse_any_reference({s:?}) = {shown} but normalization fails"
                );
            }
        }
        Err(e) => {
            assert!(!e.message().is_empty());
            assert_eq!(
                normalized.as_ref().err().map(|e| e.message()),
                Some(e.message()),
                "parse_any_reference({s:?}) error differs from normalization"
            );
        }
    }
    if validate_digest(s).is_ok() {
        let r = Reference::parse(&format!("x@{s}"))
            .unwrap_or_else(|e| panic!("valid digest {s:?} refused in a reference: {e}"));
        assert_eq!(r.digest(), Some(s));
    }
}

/// Names the `reference=` matcher is tried against, besides those in the input.
const MATCH_NAMES: &[&str] = &[
    "busybox",
    "busybox:latest",
    "library/busybox:latest",
    "docker.io/library/busybox:latest",
    "dev/chain:1",
    "localhost:5000/foo:v1",
    "",
];

/// Filter JSON, the `reference=` matcher and `until`.
///
/// Input: a `filters` query value; optionally, after a NUL byte, extra
/// lines that are names to match and `until` values.
///
/// Properties: no panic; `from_json(to_json(f)) == f`; `from_cli_pairs` of
/// every `k=v` of `f` gives the same keys; `path_match(p, n)`: a pattern
/// without metacharacters matches exactly itself, `*` matches exactly the
/// names without `/`; `parse_until` never panics and is deterministic.
pub fn filters(data: &[u8]) {
    let (json, extra) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let extra: Vec<String> = String::from_utf8_lossy(extra)
        .split('\n')
        .take(8)
        .map(str::to_string)
        .collect();
    let Some(json) = utf8(json) else { return };
    let parsed = Filters::from_json(json);
    let mut patterns: Vec<String> = Vec::new();
    let mut untils: Vec<String> = extra.clone();
    if let Ok(f) = &parsed {
        let encoded = f.to_json();
        let again = Filters::from_json(&encoded)
            .unwrap_or_else(|e| panic!("to_json {encoded:?} of {json:?} does not decode: {e}"));
        assert_eq!(&again, f, "round trip of {json:?} via {encoded:?}");
        let _ = f.single_until();
        let _ = f.list_dangling();
        let _ = f.prune_dangling_only();
        let _ = f.validate(&[
            "dangling",
            "label",
            "label!",
            "until",
            "reference",
            "before",
            "since",
        ]);
        for key in ["reference", "label", "until", "dangling"] {
            for v in f.values(key).into_iter().take(8) {
                if key == "reference" {
                    patterns.push(v.to_string());
                } else if key == "until" {
                    untils.push(v.to_string());
                }
            }
        }
        let pairs: Vec<String> = ["reference", "label", "dangling"]
            .iter()
            .flat_map(|k| f.values(k).into_iter().map(move |v| format!("{k}={v}")))
            .take(16)
            .collect();
        let cli = PublicFilters::from_cli_pairs(&pairs).expect("k=v pairs");
        for p in &pairs {
            let (k, _) = p.split_once('=').unwrap();
            assert!(cli.contains(k));
        }
    }
    patterns.extend(extra.iter().cloned());
    let names: Vec<&str> = MATCH_NAMES
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
        .collect();
    for p in patterns.iter().take(8) {
        for n in &names {
            let got = path_match(p, n);
            if !p.contains(['*', '?', '[', '\\']) {
                assert_eq!(got, Ok(p == n), "literal pattern {p:?} vs {n:?}");
            }
            assert_eq!(got, path_match(p, n), "path_match not deterministic");
        }
        let _ = path_match(p, p);
    }
    for n in &names {
        assert_eq!(path_match("*", n), Ok(!n.contains('/')), "'*' vs {n:?}");
    }
    const NOW: i128 = 1_700_000_000_123_456_789;
    for u in untils.iter().take(8) {
        for offset in [0, 3600, -5 * 3600 - 1800] {
            let a = parse_until(u, NOW, offset);
            let b = parse_until(u, NOW, offset);
            assert_eq!(
                a.as_ref().map_err(|e| e.to_string()),
                b.as_ref().map_err(|e| e.to_string())
            );
        }
    }
}

/// Event envelope decoding (postcard).
///
/// Properties: no panic; when `decode(data) = Ok(e)`: `decode(encode(e)) == e`,
/// `encode(e)` with any byte appended and every strict prefix of it are
/// rejected, and the JSON form (audit export) round-trips to `e`.
pub fn envelope(data: &[u8]) {
    let Ok(env) = Envelope::decode(data) else {
        return;
    };
    let bytes = env.encode().expect("encode a decoded envelope");
    let again = Envelope::decode(&bytes).expect("decode(encode(e))");
    assert_eq!(again, env, "decode(encode(decode(x))) != decode(x)");
    assert_eq!(
        again.encode().expect("encode"),
        bytes,
        "encoding is not stable"
    );
    for extra in [0u8, 1, 0xff] {
        let mut longer = bytes.clone();
        longer.push(extra);
        assert!(
            Envelope::decode(&longer).is_err(),
            "trailing byte {extra} accepted"
        );
    }
    let step = (bytes.len() / 64).max(1);
    for cut in (0..bytes.len()).step_by(step) {
        assert!(
            Envelope::decode(&bytes[..cut]).is_err(),
            "truncation to {cut} of {} bytes accepted",
            bytes.len()
        );
    }
    let json = serde_json::to_string(&env).expect("envelope to JSON");
    let back: Envelope = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("envelope JSON {json} does not decode: {e}"));
    assert_eq!(back, env, "JSON round trip");
}

/// Loading a docker-archive made of arbitrary bytes into a fresh store.
///
/// Properties: no panic; `audit::verify` passes afterwards whether the load
/// succeeded or not; nothing is created beside the store directory and no
/// symlink inside it; a successful load can be repeated.
pub fn load_archive(data: &[u8]) {
    let parent = tempfile::tempdir().expect("tempdir");
    let root = parent.path().join("store");
    let svc = ImageService::open(&root).expect("open store");
    let first = block_on(svc.load_image(Cursor::new(data.to_vec()), true));
    assert_verified(&svc, "after load");
    if first.is_ok() {
        block_on(svc.load_image(Cursor::new(data.to_vec()), true))
            .unwrap_or_else(|e| panic!("second load of an archive that loaded failed: {e}"));
        assert_verified(&svc, "after second load");
    }
    let beside: Vec<String> = std::fs::read_dir(parent.path())
        .expect("read parent")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside, ["store"], "load wrote beside the store directory");
    assert_no_symlinks(&root);
}

pub(crate) fn assert_no_symlinks(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("read store dir") {
        let entry = entry.expect("entry");
        let ty = entry.file_type().expect("file type");
        assert!(
            !ty.is_symlink(),
            "symlink in the store: {}",
            entry.path().display()
        );
        if ty.is_dir() {
            assert_no_symlinks(&entry.path());
        }
    }
}

/// Layer scanning (`scan_tar`) on arbitrary bytes, and `escapes_root`.
///
/// Properties: no panic; when the scan accepts the stream, no entry path
/// (nor hardlink target) escapes the root and the DiffSize equals the sum
/// of the entry sizes as the `tar` crate lists them; `escapes_root(p)`
/// implies `p` has a `..` component, and prefixing enough components
/// (`a/` per `..`) makes it not escape.
pub fn scan_tar(data: &[u8]) {
    let result = strata_scan_tar(Cursor::new(data), "layer");
    if let Ok((_, size)) = result {
        let mut archive = tar::Archive::new(Cursor::new(data));
        let mut sum = 0u64;
        let entries = archive.entries().expect("entries after an accepted scan");
        for entry in entries {
            let entry = entry.expect("an accepted scan has only valid entries");
            let path = entry.path_bytes();
            assert!(!escapes_root(&path), "accepted escaping entry {path:?}");
            if entry.header().entry_type().is_hard_link()
                && let Some(target) = entry.link_name_bytes()
            {
                assert!(!escapes_root(&target), "accepted escaping link {target:?}");
            }
            sum = sum.saturating_add(entry.size());
        }
        assert_eq!(size, sum, "DiffSize");
    }
    for path in data.split(|&b| b == b'\n').take(8) {
        if escapes_root(path) {
            assert!(
                path.split(|&b| b == b'/').any(|c| c == b".."),
                "{path:?} escapes without a '..'"
            );
            let ups = path.split(|&b| b == b'/').filter(|c| *c == b"..").count();
            let mut prefixed = b"a/".repeat(ups);
            prefixed.extend_from_slice(path);
            assert!(!escapes_root(&prefixed), "{prefixed:?} still escapes");
        }
    }
}

/// Image config parsing.
///
/// Properties: no panic; when `from_json(data) = Ok(c)`, `to_docker_json(c)`
/// re-parses to a config equal to `c`, and serialising that again gives the
/// same bytes.
pub fn image_config(data: &[u8]) {
    let Ok(config) = ImageConfig::from_json(data) else {
        return;
    };
    let json = config.to_docker_json();
    let again = ImageConfig::from_json(&json).unwrap_or_else(|e| {
        panic!(
            "to_docker_json output does not parse: {e}\n{}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(
        again,
        config,
        "config round trip via {}",
        String::from_utf8_lossy(&json)
    );
    assert_eq!(again.to_docker_json(), json, "serialisation not stable");
    let _ = config.chain_ids();
    let _ = config.inspect_comment();
}

/// Go JSON syntax check.
///
/// Properties: no panic; everything serde_json accepts Go accepts; for
/// valid UTF-8 without `\u` escapes (Go accepts lone surrogates, serde_json
/// does not) and nesting under serde_json's limit of 128, Go accepts
/// exactly what serde_json accepts.
pub fn go_json(data: &[u8]) {
    let go = go_json_parse(data);
    let serde = serde_json::from_slice::<serde::de::IgnoredAny>(data);
    match (&go, &serde) {
        (Err(e), Ok(_)) => panic!("Go parse refused JSON serde_json accepts: {e}"),
        (Ok(()), Err(e)) => {
            let comparable = std::str::from_utf8(data).is_ok()
                && !data.windows(2).any(|w| w == b"\\u")
                && !e.to_string().contains("recursion limit");
            assert!(
                !comparable,
                "Go parse accepted JSON serde_json refuses: {e}"
            );
        }
        _ => {}
    }
}
