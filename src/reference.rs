//! Docker image references, digests and image-ID prefixes (Docker 20.10).
//!
//! This module owns how user strings become image names, exactly as the
//! vendored `docker/distribution/reference` and `opencontainers/go-digest`
//! packages of dockerd 20.10 do it:
//!
//! * the reference grammar and raw [`Reference::parse`] (spec
//!   references.md §2), with Docker's exact error texts;
//! * digest validation, [`validate_digest`] (§3);
//! * normalisation, [`Reference::parse_normalized_named`], and the familiar
//!   and canonical spellings (§4), [`parse_any_reference`] (§4.4);
//! * image-ID helpers: [`truncate_id`], [`id_search_term`],
//!   [`is_image_id_prefix`] (§5);
//! * the reference store's ordering and digest preference (§7.2, §7.6) and
//!   the delete path's [`is_single_reference`];
//! * [`go_quote`], Go's `strconv.Quote`, for messages that quote user input.
//!
//! It does not look anything up: stores and the image service build on it.
//! For example `busybox` normalises to `docker.io/library/busybox`, whose
//! familiar string after [`Reference::tag_name_only`] is `busybox:latest`.

use std::cmp::Ordering;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// The registry used when a name has none.
const DEFAULT_DOMAIN: &str = "docker.io";
/// The legacy spelling of [`DEFAULT_DOMAIN`], rewritten on normalisation.
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of official images on the default registry.
const OFFICIAL_REPO_NAME: &str = "library";
/// The tag added to name-only references.
const DEFAULT_TAG: &str = "latest";
/// The longest name (domain and path) a reference may have.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

const MSG_INVALID_FORMAT: &str = "invalid reference format";
const MSG_NAME_UPPERCASE: &str = "repository name must be lowercase";
const MSG_NAME_EMPTY: &str = "repository name must have at least one component";
const MSG_NAME_TOO_LONG: &str = "repository name must not be more than 255 characters";
const MSG_TAG_INVALID: &str = "invalid tag format";
const MSG_REF_DIGEST_INVALID: &str = "invalid digest format";
const MSG_NORMALIZED_UPPERCASE: &str =
    "invalid reference format: repository name must be lowercase";
const MSG_DIGEST_FORMAT: &str = "invalid checksum digest format";
const MSG_DIGEST_LENGTH: &str = "invalid checksum digest length";
const MSG_DIGEST_UNSUPPORTED: &str = "unsupported digest algorithm";

// The grammar pieces (§2). Only ASCII classes: Go's `\w` is ASCII, Rust's is
// not, so it is spelled out.
const ALPHANUMERIC: &str = "[a-z0-9]+";
const SEPARATOR: &str = "(?:[._]|__|[-]*)";
const DOMAIN_COMPONENT: &str = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const TAG: &str = "[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}";
const DIGEST: &str = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}";

fn name_component() -> String {
    format!("{ALPHANUMERIC}(?:{SEPARATOR}{ALPHANUMERIC})*")
}

fn domain() -> String {
    format!("{DOMAIN_COMPONENT}(?:\\.{DOMAIN_COMPONENT})*(?::[0-9]+)?")
}

fn path_pattern() -> String {
    let component = name_component();
    format!("{component}(?:/{component})*")
}

/// Compiles a constant pattern. The patterns are fixed and covered by tests,
/// so `None` never happens in practice; matching against `None` fails.
fn compile(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

/// `^(name)(?::(tag))?(?:@(digest))?$`
static REFERENCE_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    compile(&format!(
        "^((?:{}/)?{})(?::({TAG}))?(?:@({DIGEST}))?$",
        domain(),
        path_pattern()
    ))
});
/// `^(?:(domain)/)?(path)$`, splitting a matched name.
static ANCHORED_NAME_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| compile(&format!("^(?:({})/)?({})$", domain(), path_pattern())));
static ANCHORED_TAG_RE: LazyLock<Option<Regex>> = LazyLock::new(|| compile(&format!("^{TAG}$")));
static ANCHORED_DIGEST_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| compile(&format!("^{DIGEST}$")));
/// A bare 64-character image ID.
static IDENTIFIER_RE: LazyLock<Option<Regex>> = LazyLock::new(|| compile("^[a-f0-9]{64}$"));
/// go-digest's `DigestRegexpAnchored`.
static GO_DIGEST_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| compile("^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"));
/// go-digest's encoded-part check for the sha2 family.
static LOWER_HEX_RE: LazyLock<Option<Regex>> = LazyLock::new(|| compile("^[a-f0-9]+$"));

fn is_match(re: &LazyLock<Option<Regex>>, s: &str) -> bool {
    re.as_ref().is_some_and(|re| re.is_match(s))
}

/// A reference-parse error: Docker's message text, e.g. `invalid reference format`.
///
/// It carries no kind: callers choose the HTTP category (400 when resolving
/// an image, 500 on the tag route), so it is not a [`crate::error::Error`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(String);

impl ParseError {
    fn new(message: impl Into<String>) -> ParseError {
        ParseError(message.into())
    }

    /// The message, exactly as Docker prints it.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// A parsed reference: domain, path, optional tag and optional digest.
///
/// Immutable; the builders return new values. Ordering ([`Ord`]) is by
/// [`Reference::canonical_string`], byte-wise, which is the order of the
/// reference store (spec §7.6). [`fmt::Display`] prints the canonical string.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Split a canonical string the store wrote itself
    /// (`domain/path:tag` or `domain/path@digest`) without the grammar's
    /// regexes: listing parses every stored reference. `None` when the text
    /// is not of that shape.
    pub(crate) fn from_stored_canonical(s: &str) -> Option<Reference> {
        let (domain, rest) = s.split_once('/')?;
        let (path, tag, digest) = match rest.split_once('@') {
            Some((path, digest)) => (path, None, Some(digest)),
            None => {
                let (path, tag) = rest.rsplit_once(':')?;
                (path, Some(tag), None)
            }
        };
        if domain.is_empty() || path.is_empty() || path.contains(':') {
            return None;
        }
        Some(Reference {
            domain: domain.to_string(),
            path: path.to_string(),
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }

    /// The familiar string of a stored canonical reference as a slice of it
    /// (Docker's familiar form only ever drops a `docker.io/` or
    /// `docker.io/library/` prefix), with the length of its familiar name
    /// and whether it is a digest reference; no allocation, for listings.
    /// `None` when [`Reference::from_stored_canonical`] would say `None`.
    pub(crate) fn familiar_of_stored(s: &str) -> Option<(&str, usize, bool)> {
        let (domain, rest) = s.split_once('/')?;
        let (path, digest) = match rest.split_once('@') {
            Some((path, _)) => (path, true),
            None => (rest.rsplit_once(':')?.0, false),
        };
        if domain.is_empty() || path.is_empty() || path.contains(':') {
            return None;
        }
        let familiar = if domain != DEFAULT_DOMAIN {
            s
        } else {
            match path.strip_prefix(OFFICIAL_REPO_NAME) {
                Some(p) if p.starts_with('/') && !p[1..].contains('/') => {
                    &rest[path.len() - p.len() + 1..]
                }
                _ => rest,
            }
        };
        let name_len = familiar.len() - (rest.len() - path.len());
        Some((familiar, name_len, digest))
    }

    /// Go's `reference.Parse`: the raw grammar, no normalisation (§2.1).
    ///
    /// Errors: `repository name must have at least one component` (empty
    /// input), `repository name must be lowercase` (would match if
    /// lowercased), `invalid reference format`, `repository name must not be
    /// more than 255 characters`, or a digest error from [`validate_digest`].
    pub fn parse(s: &str) -> Result<Reference, ParseError> {
        let Some(caps) = REFERENCE_RE.as_ref().and_then(|re| re.captures(s)) else {
            if s.is_empty() {
                return Err(ParseError::new(MSG_NAME_EMPTY));
            }
            if is_match(&REFERENCE_RE, &go_to_lower(s)) {
                return Err(ParseError::new(MSG_NAME_UPPERCASE));
            }
            return Err(ParseError::new(MSG_INVALID_FORMAT));
        };
        let name = caps.get(1).map_or("", |m| m.as_str());
        if name.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ParseError::new(MSG_NAME_TOO_LONG));
        }
        let (domain, path) = match ANCHORED_NAME_RE.as_ref().and_then(|re| re.captures(name)) {
            Some(parts) => (
                parts.get(1).map_or("", |m| m.as_str()),
                parts.get(2).map_or(name, |m| m.as_str()),
            ),
            None => ("", name),
        };
        let tag = caps.get(2).map(|m| m.as_str().to_owned());
        let digest = match caps.get(3) {
            Some(m) => {
                validate_digest(m.as_str())?;
                Some(m.as_str().to_owned())
            }
            None => None,
        };
        if path.is_empty() {
            return Err(ParseError::new(MSG_NAME_EMPTY));
        }
        Ok(Reference {
            domain: domain.to_owned(),
            path: path.to_owned(),
            tag,
            digest,
        })
    }

    /// Go's `reference.ParseNormalizedNamed` (§4): the parser for every
    /// user-supplied repository name.
    ///
    /// Adds `docker.io` and `library/` where Docker does, rewrites
    /// `index.docker.io`, rejects a bare 64-hex string and an uppercase path
    /// (`invalid reference format: repository name must be lowercase`), then
    /// applies [`Reference::parse`] — so the 255-character limit counts the
    /// normalised name.
    pub fn parse_normalized_named(s: &str) -> Result<Reference, ParseError> {
        if is_match(&IDENTIFIER_RE, s) {
            return Err(ParseError::new(format!(
                "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
            )));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote_name = match remainder.find(':') {
            Some(i) => &remainder[..i],
            None => remainder.as_str(),
        };
        if go_to_lower(remote_name) != remote_name {
            return Err(ParseError::new(MSG_NORMALIZED_UPPERCASE));
        }
        Reference::parse(&format!("{domain}/{remainder}"))
    }

    /// The registry host (with port), or `""` for a raw-parsed name without one.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`algorithm:hex`), if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The canonical repository name, `domain/path` (Go's `Name()`).
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// Go's `FamiliarName` (§4.1): `docker.io/` dropped, and `library/`
    /// dropped when the path has exactly two components.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            let mut parts = self.path.split('/');
            if let (Some(OFFICIAL_REPO_NAME), Some(second), None) =
                (parts.next(), parts.next(), parts.next())
            {
                return second.to_owned();
            }
            return self.path.clone();
        }
        self.name()
    }

    /// Go's `FamiliarString`: the familiar name plus `:tag` and/or `@digest`.
    pub fn familiar_string(&self) -> String {
        self.with_suffixes(self.familiar_name())
    }

    /// Go's `ref.String()`: canonical name plus `:tag` and/or `@digest`.
    /// This is the sort key of the reference store (§7.6).
    pub fn canonical_string(&self) -> String {
        self.with_suffixes(self.name())
    }

    fn with_suffixes(&self, mut name: String) -> String {
        if let Some(tag) = &self.tag {
            name.push(':');
            name.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            name.push('@');
            name.push_str(digest);
        }
        name
    }

    /// True when the reference has neither tag nor digest.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// Go's `TrimNamed`: the name alone, tag and digest dropped.
    pub fn trim_named(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    /// `WithTag(TrimNamed(self), tag)`: this name with `tag` and no digest.
    ///
    /// Errors with `invalid tag format` unless `tag` matches the tag grammar.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ParseError> {
        if !is_match(&ANCHORED_TAG_RE, tag) {
            return Err(ParseError::new(MSG_TAG_INVALID));
        }
        let mut r = self.trim_named();
        r.tag = Some(tag.to_owned());
        Ok(r)
    }

    /// `WithDigest(TrimNamed(self), digest)`: this name with `digest` and no tag.
    ///
    /// Errors with `invalid digest format` unless `digest` matches the digest
    /// grammar, then with the [`validate_digest`] error if it is not valid.
    pub fn with_digest(&self, digest: &str) -> Result<Reference, ParseError> {
        if !is_match(&ANCHORED_DIGEST_RE, digest) {
            return Err(ParseError::new(MSG_REF_DIGEST_INVALID));
        }
        validate_digest(digest)?;
        let mut r = self.trim_named();
        r.digest = Some(digest.to_owned());
        Ok(r)
    }

    /// Go's `TagNameOnly` (§4.2): a name-only reference gets tag `latest`;
    /// anything else is returned unchanged.
    pub fn tag_name_only(&self) -> Reference {
        if self.is_name_only() {
            let mut r = self.clone();
            r.tag = Some(DEFAULT_TAG.to_owned());
            return r;
        }
        self.clone()
    }

    /// The reference store's `favorDigest` (§7.2): `name:tag@digest` becomes
    /// `name@digest`; anything else is returned unchanged.
    pub fn favor_digest(&self) -> Reference {
        let mut r = self.clone();
        if r.digest.is_some() {
            r.tag = None;
        }
        r
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical_string())
    }
}

impl Ord for Reference {
    /// Byte-wise by canonical string (the reference store order); the fields
    /// break ties so the order agrees with equality.
    fn cmp(&self, other: &Reference) -> Ordering {
        self.canonical_string()
            .cmp(&other.canonical_string())
            .then_with(|| self.domain.cmp(&other.domain))
            .then_with(|| self.path.cmp(&other.path))
            .then_with(|| self.tag.cmp(&other.tag))
            .then_with(|| self.digest.cmp(&other.digest))
    }
}

impl PartialOrd for Reference {
    fn partial_cmp(&self, other: &Reference) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Sorts references into the reference store's order (§7.6): byte-wise by
/// canonical string. (The store keeps them in this order by construction.)
#[cfg(test)]
pub fn sort_references(refs: &mut [Reference]) {
    refs.sort_by_cached_key(|r| r.canonical_string());
}

/// Go's `splitDockerDomain` (§4 step 2), returning the domain and remainder.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.find('/') {
        Some(i) if name[..i].contains(['.', ':']) || &name[..i] == "localhost" => {
            (name[..i].to_owned(), name[i + 1..].to_owned())
        }
        _ => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_owned();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_NAME}/{remainder}");
    }
    (domain, remainder)
}

/// Go's `strings.ToLower`: per-character simple lowercase mapping. Rust's
/// `to_lowercase` differs only for U+0130, which Go maps to `i`.
fn go_to_lower(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '\u{130}' {
            out.push('i');
            continue;
        }
        let mut lower = c.to_lowercase();
        match (lower.next(), lower.next()) {
            (Some(l), None) => out.push(l),
            _ => out.push(c),
        }
    }
    out
}

/// What [`parse_any_reference`] found (§4.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AnyReference {
    /// A digest-only reference, `sha256:<hex>`: an exact image-ID lookup.
    Digest(String),
    /// A (normalised) named reference.
    Named(Reference),
}

/// Go's `reference.ParseAnyReference` (§4.4), used by `GetImage`.
///
/// A bare 64-hex string becomes `sha256:<hex>`, a valid digest stays a
/// digest, anything else goes through [`Reference::parse_normalized_named`]
/// (whose errors propagate).
pub fn parse_any_reference(s: &str) -> Result<AnyReference, ParseError> {
    if is_match(&IDENTIFIER_RE, s) {
        return Ok(AnyReference::Digest(format!("sha256:{s}")));
    }
    if validate_digest(s).is_ok() {
        return Ok(AnyReference::Digest(s.to_owned()));
    }
    Reference::parse_normalized_named(s).map(AnyReference::Named)
}

/// The hex length of an available digest algorithm (`sha256`, `sha384`,
/// `sha512`), or `None` when dockerd does not support it.
fn algorithm_hex_len(algorithm: &str) -> Option<usize> {
    match algorithm {
        "sha256" => Some(64),
        "sha384" => Some(96),
        "sha512" => Some(128),
        _ => None,
    }
}

/// go-digest's `Digest.Validate` (§3).
///
/// Errors: `invalid checksum digest format`, `unsupported digest algorithm`
/// or `invalid checksum digest length`, checked in go-digest's order.
pub fn validate_digest(s: &str) -> Result<(), ParseError> {
    let i = match s.find(':') {
        Some(i) if i > 0 && i + 1 < s.len() => i,
        _ => return Err(ParseError::new(MSG_DIGEST_FORMAT)),
    };
    let (algorithm, encoded) = (&s[..i], &s[i + 1..]);
    let Some(hex_len) = algorithm_hex_len(algorithm) else {
        if !is_match(&GO_DIGEST_RE, s) {
            return Err(ParseError::new(MSG_DIGEST_FORMAT));
        }
        return Err(ParseError::new(MSG_DIGEST_UNSUPPORTED));
    };
    if encoded.len() != hex_len {
        return Err(ParseError::new(MSG_DIGEST_LENGTH));
    }
    if !is_match(&LOWER_HEX_RE, encoded) {
        return Err(ParseError::new(MSG_DIGEST_FORMAT));
    }
    Ok(())
}

/// How the image store's prefix search reads `term` (§5.2, digestset).
///
/// `(Some(algorithm), hex_prefix)` when `term` validates as a digest or
/// fails only for a reason other than format (wrong length, unsupported
/// algorithm): entries must then have that algorithm. `(None, term)` when
/// validation reports `invalid checksum digest format`: the whole term is a
/// bare hex prefix.
pub fn id_search_term(term: &str) -> (Option<&str>, &str) {
    match validate_digest(term) {
        Err(e) if e.message() == MSG_DIGEST_FORMAT => (None, term),
        _ => match term.split_once(':') {
            Some((algorithm, hex)) => (Some(algorithm), hex),
            None => (None, term),
        },
    }
}

/// Docker's `isImageIDPrefix` (§5.4): `image_id` (`sha256:<hex>`) starts with
/// `input`, or its hex part does.
pub fn is_image_id_prefix(image_id: &str, input: &str) -> bool {
    if image_id.starts_with(input) {
        return true;
    }
    match image_id.split_once(':') {
        Some((_, hex)) => hex.starts_with(input),
        None => false,
    }
}

/// Docker's `stringid.TruncateID` (§5.1): drop everything up to and
/// including the first `:`, keep at most 12 bytes.
///
/// IDs are ASCII; should a 12-byte cut fall inside a multi-byte character,
/// the cut moves back to the character boundary (Go would cut the bytes).
pub fn truncate_id(id: &str) -> &str {
    let id = match id.split_once(':') {
        Some((_, rest)) => rest,
        None => id,
    };
    let mut end = id.len().min(12);
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    &id[..end]
}

/// Docker's `isSingleReference` (delete-prune-filters §2.2): true iff `refs`
/// is non-empty, holds at most one reference without a digest, and all
/// digest references share one repository, the same as that reference's.
/// A single reference of any kind counts. Repositories are compared by
/// canonical name.
pub fn is_single_reference(refs: &[Reference]) -> bool {
    if refs.len() <= 1 {
        return refs.len() == 1;
    }
    let mut single: Option<&Reference> = None;
    let mut digest_repos: Vec<String> = Vec::new();
    for r in refs {
        if r.digest.is_some() {
            let name = r.name();
            if !digest_repos.contains(&name) {
                digest_repos.push(name);
            }
        } else if single.is_none() {
            single = Some(r);
        } else {
            return false;
        }
    }
    let single = single.unwrap_or(&refs[0]);
    digest_repos.len() == 1 && digest_repos[0] == single.name()
}

/// Go's `strconv.Quote` of a string: double quotes around it, with `"` and
/// `\` backslash-escaped, `\a \b \f \n \r \t \v` for those controls, `\xNN`
/// for other bytes below 0x20 and 0x7f, `\uNNNN`/`\UNNNNNNNN` for other
/// non-printable characters; printable Unicode is kept.
pub fn go_quote(s: &str) -> String {
    go_quote_bytes(s.as_bytes())
}

/// [`go_quote`] for raw bytes: invalid UTF-8 bytes become `\xNN` each.
pub fn go_quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            crate::gotime::push_escaped_rune(&mut out, c, '"');
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn familiar_of_stored_agrees_with_the_parser() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        for s in [
            "docker.io/library/busybox:latest".to_string(),
            "docker.io/library/a/b:1".to_string(),
            "docker.io/libraryx/y:1".to_string(),
            "docker.io/library:1".to_string(),
            "docker.io/foo/bar:1".to_string(),
            "localhost:5000/foo:1".to_string(),
            "localhost:5000/library/foo:1".to_string(),
            format!("docker.io/library/busybox@{d}"),
            format!("example.com/x/y@{d}"),
        ] {
            let r = Reference::parse(&s).unwrap();
            let (familiar, name_len, digest) = Reference::familiar_of_stored(&s).unwrap();
            assert_eq!(familiar, r.familiar_string(), "{s}");
            assert_eq!(&familiar[..name_len], r.familiar_name(), "{s}");
            assert_eq!(digest, r.digest().is_some(), "{s}");
        }
        assert_eq!(Reference::familiar_of_stored("busybox"), None);
        assert_eq!(
            Reference::familiar_of_stored(&format!("docker.io/a:1@{d}")),
            None
        );
    }

    fn hex64(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn norm(s: &str) -> Reference {
        Reference::parse_normalized_named(s)
            .unwrap_or_else(|e| panic!("parse_normalized_named({s:?}): {e}"))
    }

    #[test]
    fn all_patterns_compile() {
        let all: &[(&str, &LazyLock<Option<Regex>>)] = &[
            ("reference", &REFERENCE_RE),
            ("anchored_name", &ANCHORED_NAME_RE),
            ("anchored_tag", &ANCHORED_TAG_RE),
            ("anchored_digest", &ANCHORED_DIGEST_RE),
            ("identifier", &IDENTIFIER_RE),
            ("go_digest", &GO_DIGEST_RE),
            ("lower_hex", &LOWER_HEX_RE),
        ];
        for (case, re) in all {
            assert!(re.is_some(), "case {case}: pattern does not compile");
        }
    }

    /// §2 grammar notes and §2.1: raw parse results (domain, path, tag, digest) or error.
    #[test]
    fn raw_parse_table() {
        let d = format!("sha256:{}", hex64('a'));
        let t128 = "t".repeat(128);
        let a255 = "a".repeat(255);
        type Want<'a> = Result<(&'a str, &'a str, Option<&'a str>, Option<&'a str>), &'a str>;
        let cases: Vec<(&str, String, Want)> = vec![
            (
                "double_underscore",
                "a__b".into(),
                Ok(("", "a__b", None, None)),
            ),
            (
                "dash_run",
                "a-----b".into(),
                Ok(("", "a-----b", None, None)),
            ),
            ("double_dot", "a..b".into(), Err(MSG_INVALID_FORMAT)),
            ("triple_underscore", "a___b".into(), Err(MSG_INVALID_FORMAT)),
            ("dot_dash", "a.-b".into(), Err(MSG_INVALID_FORMAT)),
            ("leading_dash", "-a".into(), Err(MSG_INVALID_FORMAT)),
            ("trailing_slash", "a/".into(), Err(MSG_INVALID_FORMAT)),
            ("double_slash", "a//b".into(), Err(MSG_INVALID_FORMAT)),
            (
                "uppercase_domain",
                "FOO.com/bar".into(),
                Ok(("FOO.com", "bar", None, None)),
            ),
            (
                "uppercase_domain_port",
                "HOSTNAME.DOMAIN.COM:443/foo/bar".into(),
                Ok(("HOSTNAME.DOMAIN.COM:443", "foo/bar", None, None)),
            ),
            ("greedy_domain", "a/b".into(), Ok(("a", "b", None, None))),
            (
                "underscore_not_domain",
                "a_b/c".into(),
                Ok(("", "a_b/c", None, None)),
            ),
            (
                "port_then_slash",
                "host:5000/x".into(),
                Ok(("host:5000", "x", None, None)),
            ),
            (
                "port_alone_is_tag",
                "host:5000".into(),
                Ok(("", "host", Some("5000"), None)),
            ),
            (
                "uppercase_tag",
                "foo:TAG".into(),
                Ok(("", "foo", Some("TAG"), None)),
            ),
            (
                "digest",
                format!("foo@{d}"),
                Ok(("", "foo", None, Some(d.as_str()))),
            ),
            (
                "tag_and_digest",
                format!("foo:1@{d}"),
                Ok(("", "foo", Some("1"), Some(d.as_str()))),
            ),
            ("empty", "".into(), Err(MSG_NAME_EMPTY)),
            ("uppercase_path", "Foo".into(), Err(MSG_NAME_UPPERCASE)),
            (
                "uppercase_path_after_domain",
                "foo.com/Bar".into(),
                Err(MSG_NAME_UPPERCASE),
            ),
            (
                "kelvin_sign_lowercases_to_k",
                "\u{212A}".into(),
                Err(MSG_NAME_UPPERCASE),
            ),
            (
                "dotted_capital_i_lowercases_to_i",
                "\u{130}".into(),
                Err(MSG_NAME_UPPERCASE),
            ),
            ("two_colons", "a:b:c".into(), Err(MSG_INVALID_FORMAT)),
            ("only_tag", ":tag".into(), Err(MSG_INVALID_FORMAT)),
            (
                "short_digest",
                "x@sha256:abc".into(),
                Err(MSG_INVALID_FORMAT),
            ),
            (
                "name_255",
                a255.clone(),
                Ok(("", a255.as_str(), None, None)),
            ),
            ("name_256", "a".repeat(256), Err(MSG_NAME_TOO_LONG)),
            (
                "tag_128",
                format!("x:{t128}"),
                Ok(("", "x", Some(t128.as_str()), None)),
            ),
            (
                "tag_129",
                format!("x:{}", "t".repeat(129)),
                Err(MSG_INVALID_FORMAT),
            ),
            (
                "bad_digest_hex_case",
                format!("x@sha256:{}", hex64('A')),
                Err(MSG_DIGEST_FORMAT),
            ),
        ];
        for (case, input, want) in cases {
            let got = Reference::parse(&input);
            match (got, want) {
                (Ok(r), Ok((domain, path, tag, digest))) => {
                    assert_eq!(r.domain(), domain, "case {case}: domain");
                    assert_eq!(r.path(), path, "case {case}: path");
                    assert_eq!(r.tag(), tag, "case {case}: tag");
                    assert_eq!(r.digest(), digest, "case {case}: digest");
                    assert_eq!(r.canonical_string(), input, "case {case}: round trip");
                }
                (Err(e), Err(msg)) => assert_eq!(e.message(), msg, "case {case}"),
                (got, want) => panic!("case {case}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// §3 table and extra go-digest cases.
    #[test]
    fn digest_validation_table() {
        let cases: Vec<(&str, String, Result<(), &str>)> = vec![
            ("sha256_ok", format!("sha256:{}", hex64('a')), Ok(())),
            ("sha384_ok", format!("sha384:{}", "a".repeat(96)), Ok(())),
            ("sha512_ok", format!("sha512:{}", "a".repeat(128)), Ok(())),
            (
                "uppercase_hex",
                format!("sha256:{}", hex64('A')),
                Err(MSG_DIGEST_FORMAT),
            ),
            (
                "md5_unsupported",
                format!("md5:{}", "a".repeat(32)),
                Err(MSG_DIGEST_UNSUPPORTED),
            ),
            (
                "sha256_63",
                format!("sha256:{}", "a".repeat(63)),
                Err(MSG_DIGEST_LENGTH),
            ),
            (
                "sha512_32",
                format!("sha512:{}", "a".repeat(32)),
                Err(MSG_DIGEST_LENGTH),
            ),
            ("sha256_short", "sha256:abc".into(), Err(MSG_DIGEST_LENGTH)),
            ("no_colon", "abc".into(), Err(MSG_DIGEST_FORMAT)),
            ("leading_colon", ":abc".into(), Err(MSG_DIGEST_FORMAT)),
            ("trailing_colon", "sha256:".into(), Err(MSG_DIGEST_FORMAT)),
            (
                "unsupported_bad_syntax",
                "MD5:abc".into(),
                Err(MSG_DIGEST_FORMAT),
            ),
            (
                "unsupported_bad_encoded",
                "md5:a.b".into(),
                Err(MSG_DIGEST_FORMAT),
            ),
            (
                "length_before_case",
                format!("sha256:{}", "A".repeat(10)),
                Err(MSG_DIGEST_LENGTH),
            ),
            (
                "non_hex_right_length",
                format!("sha256:{}", hex64('g')),
                Err(MSG_DIGEST_FORMAT),
            ),
        ];
        for (case, input, want) in cases {
            let got = validate_digest(&input).map_err(|e| e.message().to_owned());
            assert_eq!(got, want.map_err(str::to_owned), "case {case}");
        }
    }

    /// §3 examples through reference parsing.
    #[test]
    fn digest_errors_through_parse() {
        let cases: Vec<(&str, String, &str)> = vec![
            (
                "uppercase_hex",
                format!("x@sha256:{}", hex64('A')),
                MSG_DIGEST_FORMAT,
            ),
            (
                "md5",
                format!("x@md5:{}", "a".repeat(32)),
                MSG_DIGEST_UNSUPPORTED,
            ),
            (
                "sha256_63",
                format!("x@sha256:{}", "a".repeat(63)),
                MSG_DIGEST_LENGTH,
            ),
            (
                "sha512_32",
                format!("x@sha512:{}", "a".repeat(32)),
                MSG_DIGEST_LENGTH,
            ),
            (
                "too_short_for_grammar",
                "x@sha256:abc".into(),
                MSG_INVALID_FORMAT,
            ),
        ];
        for (case, input, want) in cases {
            for (how, got) in [
                ("parse", Reference::parse(&input)),
                ("normalized", Reference::parse_normalized_named(&input)),
            ] {
                match got {
                    Err(e) => assert_eq!(e.message(), want, "case {case} via {how}"),
                    Ok(r) => panic!("case {case} via {how}: parsed {r:?}"),
                }
            }
        }
    }

    /// §4.3: input, canonical string, familiar string, familiar after TagNameOnly.
    #[test]
    fn normalization_table() {
        let cases: &[(&str, &str, &str, &str, &str)] = &[
            (
                "official",
                "busybox",
                "docker.io/library/busybox",
                "busybox",
                "busybox:latest",
            ),
            (
                "library_prefix",
                "library/busybox",
                "docker.io/library/busybox",
                "busybox",
                "busybox:latest",
            ),
            (
                "docker_io",
                "docker.io/busybox",
                "docker.io/library/busybox",
                "busybox",
                "busybox:latest",
            ),
            (
                "legacy_index",
                "index.docker.io/library/busybox:1",
                "docker.io/library/busybox:1",
                "busybox:1",
                "busybox:1",
            ),
            (
                "user",
                "user/app",
                "docker.io/user/app",
                "user/app",
                "user/app:latest",
            ),
            (
                "library_three_components",
                "docker.io/library/foo/bar",
                "docker.io/library/foo/bar",
                "library/foo/bar",
                "library/foo/bar:latest",
            ),
            (
                "localhost",
                "localhost/foo",
                "localhost/foo",
                "localhost/foo",
                "localhost/foo:latest",
            ),
            (
                "localhost_port_tag",
                "localhost:5000/foo:v1",
                "localhost:5000/foo:v1",
                "localhost:5000/foo:v1",
                "localhost:5000/foo:v1",
            ),
            (
                "port_domain",
                "foo:5000/bar",
                "foo:5000/bar",
                "foo:5000/bar",
                "foo:5000/bar:latest",
            ),
            (
                "mixed_case_docker_io",
                "Docker.io/x",
                "Docker.io/x",
                "Docker.io/x",
                "Docker.io/x:latest",
            ),
            (
                "uppercase_domain",
                "FOO.com/bar",
                "FOO.com/bar",
                "FOO.com/bar",
                "FOO.com/bar:latest",
            ),
            (
                "uppercase_tag",
                "foo:TAG",
                "docker.io/library/foo:TAG",
                "foo:TAG",
                "foo:TAG",
            ),
            (
                "algorithm_as_name",
                "sha256:abc",
                "docker.io/library/sha256:abc",
                "sha256:abc",
                "sha256:abc",
            ),
            (
                "legacy_index_user",
                "index.docker.io/foo",
                "docker.io/library/foo",
                "foo",
                "foo:latest",
            ),
        ];
        for (case, input, canonical, familiar, tagged) in cases {
            let r = norm(input);
            assert_eq!(r.canonical_string(), *canonical, "case {case}: canonical");
            assert_eq!(r.to_string(), *canonical, "case {case}: display");
            assert_eq!(r.familiar_string(), *familiar, "case {case}: familiar");
            assert_eq!(
                r.tag_name_only().familiar_string(),
                *tagged,
                "case {case}: tag_name_only"
            );
        }
        let sha = norm("sha256:abc");
        assert_eq!(sha.familiar_name(), "sha256");
        assert_eq!(sha.tag(), Some("abc"));
    }

    /// §4.3 error rows, §4 step 1 and the §4 length consequences, §6 repo rows.
    #[test]
    fn normalization_errors_table() {
        let h = hex64('a');
        let hex_msg =
            format!("invalid repository name ({h}), cannot specify 64-byte hexadecimal strings");
        let cases: Vec<(&str, String, Option<&str>)> = vec![
            (
                "uppercase_user",
                "FOO/bar".into(),
                Some(MSG_NORMALIZED_UPPERCASE),
            ),
            (
                "uppercase_name",
                "Foo".into(),
                Some(MSG_NORMALIZED_UPPERCASE),
            ),
            (
                "uppercase_hex_prefix",
                "6A".into(),
                Some(MSG_NORMALIZED_UPPERCASE),
            ),
            ("two_colons", "a:b:c".into(), Some(MSG_INVALID_FORMAT)),
            ("only_tag", ":tag".into(), Some(MSG_INVALID_FORMAT)),
            ("leading_dash", "-a".into(), Some(MSG_INVALID_FORMAT)),
            ("double_dot", "a..b".into(), Some(MSG_INVALID_FORMAT)),
            ("empty", "".into(), Some(MSG_INVALID_FORMAT)),
            ("algorithm_only", "sha256:".into(), Some(MSG_INVALID_FORMAT)),
            ("hex64", h.clone(), Some(hex_msg.as_str())),
            ("hex64_with_tag_is_name", format!("{h}:x"), None),
            ("official_237", "a".repeat(237), None),
            ("official_238", "a".repeat(238), Some(MSG_NAME_TOO_LONG)),
            ("user_245", format!("u/{}", "a".repeat(243)), None),
            (
                "user_246",
                format!("u/{}", "a".repeat(244)),
                Some(MSG_NAME_TOO_LONG),
            ),
            (
                "tag_129",
                format!("x:{}", "t".repeat(129)),
                Some(MSG_INVALID_FORMAT),
            ),
            (
                "uppercase_domain_dotted_i",
                "\u{130}.com/x".into(),
                Some(MSG_NAME_UPPERCASE),
            ),
        ];
        for (case, input, want) in cases {
            let got = Reference::parse_normalized_named(&input);
            match (got, want) {
                (Ok(_), None) => {}
                (Err(e), Some(msg)) => assert_eq!(e.message(), msg, "case {case}"),
                (got, want) => panic!("case {case}: got {got:?}, want error {want:?}"),
            }
        }
    }

    /// §4.4 and the §5.3 message examples.
    #[test]
    fn parse_any_reference_table() {
        let zeros = hex64('0');
        let d = format!("sha256:{}", hex64('d'));
        // (case, input, Ok(digest-only) | Ok(named familiar TagNameOnly) | Err(message))
        enum Want {
            Digest(String),
            Named(String),
            Error(&'static str),
        }
        let cases: Vec<(&str, String, Want)> = vec![
            (
                "bare_hex64",
                zeros.clone(),
                Want::Digest(format!("sha256:{zeros}")),
            ),
            (
                "sha256_digest",
                format!("sha256:{zeros}"),
                Want::Digest(format!("sha256:{zeros}")),
            ),
            (
                "sha512_digest",
                format!("sha512:{}", "0".repeat(128)),
                Want::Digest(format!("sha512:{}", "0".repeat(128))),
            ),
            (
                "sha384_wrong_length_is_name",
                format!("sha384:{zeros}"),
                Want::Named(format!("sha384:{zeros}")),
            ),
            (
                "nonexist",
                "nonexist".into(),
                Want::Named("nonexist:latest".into()),
            ),
            (
                "ambiguous_prefix",
                "3".into(),
                Want::Named("3:latest".into()),
            ),
            (
                "short_hex",
                "1b5b7665562e".into(),
                Want::Named("1b5b7665562e:latest".into()),
            ),
            (
                "alg_prefix",
                "sha256:1b5b".into(),
                Want::Named("sha256:1b5b".into()),
            ),
            (
                "alg_short",
                "sha256:6".into(),
                Want::Named("sha256:6".into()),
            ),
            (
                "no_match",
                "aaaaaaaaaaaa".into(),
                Want::Named("aaaaaaaaaaaa:latest".into()),
            ),
            (
                "tag_and_digest",
                format!("127.0.0.1:5733/t/img:2@{d}"),
                Want::Named(format!("127.0.0.1:5733/t/img:2@{d}")),
            ),
            (
                "uppercase",
                "6A".into(),
                Want::Error(MSG_NORMALIZED_UPPERCASE),
            ),
            (
                "algorithm_only",
                "sha256:".into(),
                Want::Error(MSG_INVALID_FORMAT),
            ),
            (
                "md5",
                format!("x@md5:{}", "a".repeat(32)),
                Want::Error(MSG_DIGEST_UNSUPPORTED),
            ),
        ];
        for (case, input, want) in cases {
            let got = parse_any_reference(&input);
            match (got, want) {
                (Ok(AnyReference::Digest(g)), Want::Digest(w)) => assert_eq!(g, w, "case {case}"),
                (Ok(AnyReference::Named(r)), Want::Named(w)) => {
                    assert_eq!(r.tag_name_only().familiar_string(), w, "case {case}")
                }
                (Err(e), Want::Error(w)) => assert_eq!(e.message(), w, "case {case}"),
                (got, _) => panic!("case {case}: unexpected {got:?}"),
            }
        }
        match parse_any_reference("1b5b7665562e") {
            Ok(AnyReference::Named(r)) => {
                assert_eq!(r.canonical_string(), "docker.io/library/1b5b7665562e")
            }
            other => panic!("short hex: {other:?}"),
        }
    }

    /// §5.1.
    #[test]
    fn truncate_id_table() {
        let full = format!("sha256:1b5b7665562e{}", "f".repeat(52));
        let cases: Vec<(&str, &str, &str)> = vec![
            ("full_id", full.as_str(), "1b5b7665562e"),
            ("bare_hex", "1b5b7665562eabcdef", "1b5b7665562e"),
            ("short", "sha256:abc", "abc"),
            ("no_colon_short", "abc", "abc"),
            ("first_colon_only", "a:b:cdefghijklmnop", "b:cdefghijkl"),
            ("empty", "", ""),
            ("multibyte_boundary", "12345678901\u{263A}", "12345678901"),
        ];
        for (case, input, want) in cases {
            assert_eq!(truncate_id(input), want, "case {case}");
        }
    }

    /// §5.2.
    #[test]
    fn id_search_term_table() {
        let upper = format!("sha256:{}", hex64('A'));
        let lower = format!("sha256:{}", hex64('a'));
        let h = hex64('a');
        type Case<'a> = (&'a str, &'a str, (Option<&'a str>, &'a str));
        let cases: Vec<Case> = vec![
            ("bare_prefix", "1b5b", (None, "1b5b")),
            ("one_char", "d", (None, "d")),
            ("alg_prefix", "sha256:1b5b", (Some("sha256"), "1b5b")),
            ("alg_uppercase_prefix", "sha256:6A", (Some("sha256"), "6A")),
            ("alg_one_char", "sha256:6", (Some("sha256"), "6")),
            (
                "uppercase_full_length",
                upper.as_str(),
                (None, upper.as_str()),
            ),
            ("full_digest", lower.as_str(), (Some("sha256"), h.as_str())),
            ("unsupported_alg", "md5:abc", (Some("md5"), "abc")),
            ("leading_colon", ":abc", (None, ":abc")),
            ("trailing_colon", "sha256:", (None, "sha256:")),
            ("bad_alg_syntax", "MD5:abc", (None, "MD5:abc")),
        ];
        for (case, input, want) in cases {
            assert_eq!(id_search_term(input), want, "case {case}");
        }
    }

    /// §5.4.
    #[test]
    fn image_id_prefix_table() {
        let id = format!("sha256:0eca9fa9{}", "1".repeat(56));
        let cases: &[(&str, &str, bool)] = &[
            ("s", "s", true),
            ("sh", "sh", true),
            ("sha", "sha", true),
            ("sha256", "sha256", true),
            ("sha256_colon", "sha256:", true),
            ("alg_and_prefix", "sha256:0eca", true),
            ("hex_prefix", "0eca", true),
            ("full_hex", &id[7..], true),
            ("full_id", &id, true),
            ("empty", "", true),
            ("other_prefix", "0ecb", false),
            ("tag_like", "0eca:latest", false),
            ("wrong_alg", "sha512:0eca", false),
            ("uppercase", "0ECA", false),
        ];
        for (case, input, want) in cases {
            assert_eq!(is_image_id_prefix(&id, input), *want, "case {case}");
        }
        assert!(!is_image_id_prefix("abc", "x"), "no colon, no prefix");
    }

    /// §6 tag rows and with_tag / with_digest behaviour.
    #[test]
    fn with_tag_and_digest() {
        let d = format!("sha256:{}", hex64('a'));
        let cases: Vec<(&str, &str, String, Result<&str, &str>)> = vec![
            ("replaces_tag", "foo:bar", "baz".into(), Ok("foo:baz")),
            (
                "official_full",
                "docker.io/library/foo",
                "bar".into(),
                Ok("foo:bar"),
            ),
            (
                "legacy_index",
                "index.docker.io/foo",
                "x".into(),
                Ok("foo:x"),
            ),
            (
                "drops_digest",
                "foo:1@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "2".into(),
                Ok("foo:2"),
            ),
            ("uppercase_ok", "foo", "TAG".into(), Ok("foo:TAG")),
            ("leading_dash", "foo", "-bad".into(), Err(MSG_TAG_INVALID)),
            ("empty", "foo", "".into(), Err(MSG_TAG_INVALID)),
            ("digest_as_tag", "foo:bar", d.clone(), Err(MSG_TAG_INVALID)),
            ("tag_128", "foo", "t".repeat(128), Ok("")),
            ("tag_129", "foo", "t".repeat(129), Err(MSG_TAG_INVALID)),
        ];
        for (case, base, tag, want) in cases {
            match (norm(base).with_tag(&tag), want) {
                (Ok(r), Ok(w)) => {
                    if !w.is_empty() {
                        assert_eq!(r.familiar_string(), w, "case {case}");
                    }
                }
                (Err(e), Err(w)) => assert_eq!(e.message(), w, "case {case}"),
                (got, want) => panic!("case {case}: got {got:?}, want {want:?}"),
            }
        }
        let r = norm("foo:1")
            .with_digest(&d)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.familiar_string(), format!("foo@{d}"));
        let bad = norm("foo").with_digest("sha256:abc");
        assert_eq!(
            bad.map_err(|e| e.message().to_owned()),
            Err(MSG_REF_DIGEST_INVALID.to_owned())
        );
        let bad = norm("foo").with_digest(&format!("sha256:{}", hex64('A')));
        assert_eq!(
            bad.map_err(|e| e.message().to_owned()),
            Err(MSG_DIGEST_FORMAT.to_owned())
        );
    }

    /// §4.2 and §7.2, plus the store's Get/Delete key shapes (§7.4, §7.5).
    #[test]
    fn tag_name_only_and_favor_digest() {
        let d = format!("sha256:{}", hex64('b'));
        let cases: Vec<(&str, String, &str, String)> = vec![
            // (case, input, familiar after tag_name_only, familiar after favor_digest)
            ("name_only", "foo".into(), "foo:latest", "foo".into()),
            ("tagged", "foo:1".into(), "foo:1", "foo:1".into()),
            ("digested", format!("foo@{d}"), "", format!("foo@{d}")),
            (
                "tagged_digested",
                format!("foo:1@{d}"),
                "",
                format!("foo@{d}"),
            ),
        ];
        for (case, input, tagged, favored) in cases {
            let r = norm(&input);
            let want_tagged = if tagged.is_empty() {
                input.clone()
            } else {
                tagged.to_owned()
            };
            assert_eq!(
                r.tag_name_only().familiar_string(),
                want_tagged,
                "case {case}: tag_name_only"
            );
            assert_eq!(
                r.favor_digest().familiar_string(),
                favored,
                "case {case}: favor_digest"
            );
            assert_eq!(
                r.favor_digest().tag_name_only().familiar_string(),
                if r.digest().is_some() {
                    favored.clone()
                } else {
                    want_tagged.clone()
                },
                "case {case}: store key"
            );
        }
        assert!(norm("foo").is_name_only());
        assert!(!norm("foo:1").is_name_only());
        assert_eq!(
            norm("foo:1").trim_named().canonical_string(),
            "docker.io/library/foo"
        );
        assert_eq!(norm("foo:1").name(), "docker.io/library/foo");
        assert_eq!(
            Reference::parse("foo").map(|r| r.name()),
            Ok("foo".to_owned())
        );
    }

    /// §7.6: the live 12-reference list and the listed consequences.
    #[test]
    fn store_order() {
        let live = [
            "Docker.io/x:latest",
            "FOO.com/bar:latest",
            "HOSTNAME.DOMAIN.COM:443/foo/bar:latest",
            "a-----b:latest",
            "a__b:latest",
            "library/foo/bar:latest",
            "foo2:latest",
            "foo:latest",
            "imp:v1",
            "zz:latest",
            "localhost/foo:latest",
            "localhost:5000/x:latest",
        ];
        for (how, mut refs) in [
            (
                "reversed",
                live.iter().rev().map(|s| norm(s)).collect::<Vec<_>>(),
            ),
            (
                "rotated",
                live.iter()
                    .cycle()
                    .skip(5)
                    .take(12)
                    .map(|s| norm(s))
                    .collect(),
            ),
        ] {
            let mut by_ord = refs.clone();
            by_ord.sort();
            sort_references(&mut refs);
            for sorted in [&refs, &by_ord] {
                let got: Vec<String> = sorted.iter().map(Reference::familiar_string).collect();
                assert_eq!(got, live, "case {how}");
            }
        }
        let d = format!("sha256:{}", hex64('c'));
        let pairs: Vec<(&str, String, String)> = vec![
            ("domain_before_docker_io", "a.b/c:1".into(), "aa:1".into()),
            ("tag_before_digest", "repo:tag".into(), format!("repo@{d}")),
            ("digit_before_colon", "foo2".into(), "foo:latest".into()),
            ("uppercase_domain_first", "Docker.io/x".into(), "a:1".into()),
            (
                "docker_io_before_localhost",
                "zz".into(),
                "localhost/foo".into(),
            ),
        ];
        for (case, first, second) in pairs {
            assert!(
                norm(&first) < norm(&second),
                "case {case}: {first} < {second}"
            );
        }
    }

    /// delete-prune-filters §2.2.
    #[test]
    fn single_reference_table() {
        let d1 = format!("sha256:{}", hex64('1'));
        let d2 = format!("sha256:{}", hex64('2'));
        let cases: Vec<(&str, Vec<String>, bool)> = vec![
            ("empty", vec![], false),
            ("one_tag", vec!["a:1".into()], true),
            ("one_digest", vec![format!("a@{d1}")], true),
            (
                "tag_and_digest",
                vec!["a:1".into(), format!("a@{d1}")],
                true,
            ),
            (
                "tag_and_two_digests",
                vec!["a:1".into(), format!("a@{d1}"), format!("a@{d2}")],
                true,
            ),
            ("digest_first", vec![format!("a@{d1}"), "a:1".into()], true),
            (
                "two_digests",
                vec![format!("a@{d1}"), format!("a@{d2}")],
                true,
            ),
            ("two_tags", vec!["a:1".into(), "a:2".into()], false),
            (
                "tag_and_other_digest",
                vec!["a:1".into(), format!("b@{d1}")],
                false,
            ),
            (
                "digests_two_repos",
                vec![format!("a@{d1}"), format!("b@{d1}")],
                false,
            ),
            (
                "same_repo_by_canonical_name",
                vec!["docker.io/library/a:1".into(), format!("a@{d1}")],
                true,
            ),
        ];
        for (case, refs, want) in cases {
            let refs: Vec<Reference> = refs.iter().map(|s| norm(s)).collect();
            assert_eq!(is_single_reference(&refs), want, "case {case}");
        }
    }

    /// Go's strconv.Quote.
    #[test]
    fn go_quote_table() {
        let cases: &[(&str, &str, &str)] = &[
            ("plain", "busybox", r#""busybox""#),
            ("empty", "", r#""""#),
            ("quote_and_backslash", r#"a"b\c"#, r#""a\"b\\c""#),
            (
                "named_controls",
                "\u{7}\u{8}\u{c}\n\r\t\u{b}",
                r#""\a\b\f\n\r\t\v""#,
            ),
            ("other_control", "\u{1}\u{1f}", r#""\x01\x1f""#),
            ("delete", "\u{7f}", r#""\x7f""#),
            ("space_kept", "a b", r#""a b""#),
            ("printable_unicode", "\u{263A}\u{e9}", "\"\u{263A}\u{e9}\""),
            ("c1_control", "\u{85}", r#""\u0085""#),
            ("nbsp", "\u{a0}", r#""\u00a0""#),
            ("zero_width_space", "\u{200b}", r#""\u200b""#),
            ("emoji", "\u{1F600}", "\"\u{1F600}\""),
            ("astral_format", "\u{e0001}", r#""\U000e0001""#),
            ("replacement_char", "\u{fffd}", "\"\u{fffd}\""),
        ];
        for (case, input, want) in cases {
            assert_eq!(go_quote(input), *want, "case {case}");
        }
        let bytes: &[(&str, &[u8], &str)] = &[
            ("invalid_byte", b"a\xffb", r#""a\xffb""#),
            ("truncated_sequence", b"\xe2\x82A", r#""\xe2\x82A""#),
        ];
        for (case, input, want) in bytes {
            assert_eq!(go_quote_bytes(input), *want, "case {case}");
        }
    }

    #[test]
    fn parse_error_display() {
        let e = ParseError::new(MSG_INVALID_FORMAT);
        assert_eq!(e.to_string(), "invalid reference format");
        assert_eq!(e.message(), "invalid reference format");
    }
}
