//! Docker's filter arguments (`filters.Args`), exactly as dockerd 20.10 treats them.
//!
//! This module owns: decoding the `filters` query parameter (current
//! `{"k":{"v":true}}` and legacy `{"k":["v"]}` formats, with Go
//! `encoding/json`'s exact error texts), the docker CLI's `--filter k=v`
//! parsing and encoding, the matching helpers dockerd applies (`ExactMatch`,
//! `MatchKVList`, key validation, `Invalid filter` messages), the image
//! list/prune `dangling` and `until` rules, and Docker's API boolean query
//! values. Go time parsing itself lives in [`crate::gotime`].
//!
//! Values are sets: a value may be mapped to `false` (only possible in the
//! JSON object form); it then counts for presence and listing but not for
//! [`Filters::exact_match`].

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::gotime;

/// A filter set: key -> (value -> bool), as Docker's `filters.Args`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    fields: BTreeMap<String, BTreeMap<String, bool>>,
}

impl Filters {
    /// An empty filter set.
    pub fn new() -> Filters {
        Filters::default()
    }

    /// Decodes the `filters` query parameter like Docker 20.10's
    /// `filters.FromJSON`: `""` is empty; otherwise the current format
    /// `{"k":{"v":true}}` is tried, then the legacy `{"k":["v"]}`. JSON `null`
    /// anywhere decodes as Go's zero value (a key with no values, a value
    /// mapped to `false`, an empty-string value).
    ///
    /// # Errors
    /// When both formats fail, the current format's error as
    /// [`ErrorKind::Internal`](crate::error::ErrorKind::Internal) (HTTP 500)
    /// with Go's exact text, e.g. `invalid character 'o' in literal null (expecting 'u')`,
    /// `unexpected end of JSON input`,
    /// `json: cannot unmarshal number into Go value of type map[string]bool`.
    pub fn from_json(s: &str) -> Result<Filters> {
        if s.is_empty() {
            return Ok(Filters::new());
        }
        let bytes = s.as_bytes();
        check_valid(bytes).map_err(Error::internal)?;
        match decode_current(bytes) {
            Ok(fields) => Ok(Filters { fields }),
            Err(first) => match decode_legacy(bytes) {
                Ok(fields) => Ok(Filters { fields }),
                Err(_) => Err(Error::internal(first)),
            },
        }
    }

    /// Builds a filter set from the docker CLI's `--filter k=v` flags like
    /// docker/cli's `FilterOpt.Set`: an empty flag is ignored; the key is
    /// trimmed and lowercased, the value trimmed (split at the first `=`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`](crate::error::ErrorKind::InvalidArgument)
    /// `bad format of filter (expected name=value)` for a flag without `=`
    /// (the CLI wraps it as `invalid argument "<flag>" for "-f, --filter" flag: …`).
    pub fn from_cli_pairs<I: IntoIterator<Item = S>, S: AsRef<str>>(pairs: I) -> Result<Filters> {
        let mut filters = Filters::new();
        for pair in pairs {
            let pair = pair.as_ref();
            if pair.is_empty() {
                continue;
            }
            let Some((name, value)) = pair.split_once('=') else {
                return Err(Error::invalid("bad format of filter (expected name=value)"));
            };
            filters.add(&go_to_lower(name.trim()), value.trim());
        }
        Ok(filters)
    }

    /// Adds `value` (mapped to `true`) to the set of `key`.
    pub fn add(&mut self, key: &str, value: &str) {
        self.fields
            .entry(key.to_string())
            .or_default()
            .insert(value.to_string(), true);
    }

    /// Encodes as the docker CLI sends it: Go's `json.Marshal` of the
    /// object-of-bools form (keys sorted, HTML-safe escapes). An empty set
    /// encodes as `""` (the CLI then omits the query parameter).
    pub fn to_json(&self) -> String {
        if self.fields.is_empty() {
            return String::new();
        }
        let mut out = String::from("{");
        for (i, (key, values)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_go_json_string(&mut out, key);
            out.push_str(":{");
            for (j, (value, on)) in values.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                push_go_json_string(&mut out, value);
                out.push_str(if *on { ":true" } else { ":false" });
            }
            out.push('}');
        }
        out.push('}');
        out
    }

    /// True when no key is present.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// True when `key` is present (even with no values, as after `{"k":null}`).
    pub fn contains(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    /// All values of `key`, sorted, whether mapped to `true` or `false`
    /// (Go's `Args.Get`). Empty when the key is absent.
    pub fn values(&self, key: &str) -> Vec<&str> {
        self.fields
            .get(key)
            .map(|values| values.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Go's `Args.ExactMatch`: `value` is present for `key` **and mapped to
    /// `true`**, or `key` has no values at all (absent, `{"k":null}`,
    /// `{"k":[]}`, `{"k":{}}`) — Docker's vacuous "do not filter" case, which
    /// the `dangling` rules below inherit.
    pub fn exact_match(&self, key: &str, value: &str) -> bool {
        match self.fields.get(key) {
            None => true,
            Some(values) if values.is_empty() => true,
            Some(values) => values.get(value).copied().unwrap_or(false),
        }
    }

    /// Checks every key against `accepted` (Go's `Args.Validate`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`](crate::error::ErrorKind::InvalidArgument)
    /// `Invalid filter '<key>'` for the first unknown key (in sorted order).
    pub fn validate(&self, accepted: &[&str]) -> Result<()> {
        match self.fields.keys().find(|k| !accepted.contains(&k.as_str())) {
            Some(key) => Err(Error::invalid(format!("Invalid filter '{key}'"))),
            None => Ok(()),
        }
    }

    /// Docker's `invalidFilter{key, args.Get(key)}`:
    /// [`ErrorKind::InvalidArgument`](crate::error::ErrorKind::InvalidArgument)
    /// `Invalid filter '<key>=[<v1> <v2>]'` (Go slice style, values sorted).
    pub fn invalid_value(&self, key: &str) -> Error {
        Error::invalid(format!(
            "Invalid filter '{key}=[{}]'",
            self.values(key).join(" ")
        ))
    }

    /// Go's `Args.MatchKVList(key, labels)`: true when `key` has no values;
    /// false when the image has no labels (`None` or empty); otherwise every
    /// value (including ones mapped to `false`) must match: `k` → label `k`
    /// exists, `k=v` → label `k` has exactly value `v` (split at the first `=`).
    pub fn match_labels(&self, key: &str, labels: Option<&BTreeMap<String, String>>) -> bool {
        let Some(values) = self.fields.get(key).filter(|v| !v.is_empty()) else {
            return true;
        };
        let Some(labels) = labels.filter(|l| !l.is_empty()) else {
            return false;
        };
        values.keys().all(|value| match value.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
            None => labels.contains_key(value.as_str()),
        })
    }

    /// The prune label rule (dockerd's `matchLabels`) for an image that has a
    /// config: `label` must match and, when `label!` is present, the image must
    /// not match `label!` (a `label!` key with no values therefore excludes
    /// every image). Callers skip this for config-less images (delete-prune-filters §4.1 step 7.3).
    pub fn prune_labels_match(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        if !self.match_labels("label", labels) {
            return false;
        }
        !(self.contains("label!") && self.match_labels("label!", labels))
    }

    /// The image list's `dangling` rule (image-service §4.2 step 2):
    /// `None` when absent; `Some(true)` when `true` exact-matches (this
    /// includes a `dangling` key with no values, Go's vacuous `ExactMatch`);
    /// else `Some(false)` when `false` exact-matches.
    ///
    /// # Errors
    /// [`Filters::invalid_value`] for anything else (`1`/`0` are not accepted here).
    pub fn list_dangling(&self) -> Result<Option<bool>> {
        if !self.contains("dangling") {
            return Ok(None);
        }
        if self.exact_match("dangling", "true") {
            Ok(Some(true))
        } else if self.exact_match("dangling", "false") {
            Ok(Some(false))
        } else {
            Err(self.invalid_value("dangling"))
        }
    }

    /// Prune's `danglingOnly` (delete-prune-filters §4.1 step 3): true unless
    /// `false` or `0` exact-matches; with `dangling` present, `true` or `1`
    /// must otherwise exact-match. A `dangling` key with no values exact-matches
    /// `false` in Go, so it means *all* images (as dockerd 20.10 does).
    ///
    /// # Errors
    /// [`Filters::invalid_value`] when `dangling` holds none of the four values
    /// (e.g. `{"dangling":{"true":false}}` → `Invalid filter 'dangling=[true]'`).
    pub fn prune_dangling_only(&self) -> Result<bool> {
        if !self.contains("dangling") {
            return Ok(true);
        }
        if self.exact_match("dangling", "false") || self.exact_match("dangling", "0") {
            Ok(false)
        } else if self.exact_match("dangling", "true") || self.exact_match("dangling", "1") {
            Ok(true)
        } else {
            Err(self.invalid_value("dangling"))
        }
    }

    /// The single `until` value of a prune (dockerd's `getUntilFromPruneFilters`):
    /// `None` when the key is absent.
    ///
    /// # Errors
    /// [`ErrorKind::Internal`](crate::error::ErrorKind::Internal)
    /// `more than one until filter specified` for two or more values. A present
    /// `until` key with no values makes dockerd 20.10 panic (index out of
    /// range; the connection is dropped without a response); this returns
    /// Internal `runtime error: index out of range [0] with length 0` instead.
    pub fn single_until(&self) -> Result<Option<&str>> {
        if !self.contains("until") {
            return Ok(None);
        }
        match self.values("until").as_slice() {
            [] => Err(Error::internal(
                "runtime error: index out of range [0] with length 0",
            )),
            [one] => Ok(Some(one)),
            _ => Err(Error::internal("more than one until filter specified")),
        }
    }
}

/// Parses an `until` value (delete-prune-filters §3.5) relative to `now`
/// (Unix nanoseconds) in a zone `local_offset_secs` east of UTC; returns Unix
/// nanoseconds. Durations give `now - d` truncated to whole seconds; `0` is the
/// epoch; dates and times follow Docker's `GetTimestamp` layouts; plain
/// `seconds[.fraction]` is a Unix timestamp.
///
/// # Errors
/// [`ErrorKind::Internal`](crate::error::ErrorKind::Internal) with Go's text:
/// `failed to parse value as time or duration: "<value>"`, or a time parse
/// error such as `parsing time "2020-13-01": month out of range` when the
/// value contains `-`.
pub fn parse_until(value: &str, now_unix_nanos: i128, local_offset_secs: i32) -> Result<i128> {
    gotime::get_timestamp(value, now_unix_nanos, local_offset_secs).map_err(Error::internal)
}

/// Go's `time.ParseDuration` (units ns, us, µs, μs, ms, s, m, h; signs;
/// fractions): nanoseconds within `i64`, or Go's exact error text
/// (`time: invalid duration "x"`, `time: missing unit in duration "1"`,
/// `time: unknown unit "d" in duration "1d"`).
#[allow(dead_code)] // for `strata serve` and the events API
pub fn parse_go_duration(s: &str) -> std::result::Result<i128, String> {
    gotime::parse_duration(s)
}

/// Docker's API boolean query value (`httputils.BoolValue`): `""`, `0`, `no`,
/// `false`, `none` (case-insensitive, trimmed) are false; anything else is true.
#[allow(dead_code)] // for `strata serve`: Docker's boolean query values
pub fn query_bool(s: &str) -> bool {
    let s = go_to_lower(s.trim());
    !matches!(s.as_str(), "" | "0" | "no" | "false" | "none")
}

/// Go's `strings.ToLower`: per-character lowercase mapping without
/// context rules (no final sigma); U+0130 maps to a plain `i` as in Go.
fn go_to_lower(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '\u{130}' {
                'i'
            } else {
                c.to_lowercase().next().unwrap_or(c)
            }
        })
        .collect()
}

/// Appends `s` as Go's `json.Marshal` (Go 1.19, HTML escaping on) writes a string.
fn push_go_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------
// Go encoding/json syntax check (a port of scanner.go's state machine, so that
// every syntax error carries Go's exact message).

/// Go's `maxNestingDepth`.
const MAX_NESTING_DEPTH: usize = 10_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Parse {
    ObjectKey,
    ObjectValue,
    ArrayValue,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    BeginValueOrEmpty,
    BeginValue,
    BeginStringOrEmpty,
    BeginString,
    EndValue,
    EndTop,
    InString,
    InStringEsc,
    InStringEscU(u8),
    Neg,
    One,
    Zero,
    Dot,
    Dot0,
    E,
    ESign,
    E0,
    /// Inside a literal: the remaining bytes to expect and the literal's name.
    Literal(&'static [u8], &'static str),
    Error,
}

struct Scanner {
    state: State,
    stack: Vec<Parse>,
    end_top: bool,
    err: Option<String>,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Go's `quoteChar`: the byte as a character (Latin-1), quoted with `'`.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => "'\\''".to_string(),
        b'"' => "'\"'".to_string(),
        _ => {
            let mut s = String::from("'");
            gotime::push_escaped_rune(&mut s, char::from(c), '"');
            s.push('\'');
            s
        }
    }
}

impl Scanner {
    fn new() -> Scanner {
        Scanner {
            state: State::BeginValue,
            stack: Vec::new(),
            end_top: false,
            err: None,
        }
    }

    fn error(&mut self, c: u8, context: &str) {
        self.state = State::Error;
        self.err = Some(format!("invalid character {} {context}", quote_char(c)));
    }

    fn push(&mut self, c: u8, p: Parse) {
        self.stack.push(p);
        if self.stack.len() > MAX_NESTING_DEPTH {
            self.error(c, "exceeded max depth");
        }
    }

    fn pop(&mut self) {
        self.stack.pop();
        if self.stack.is_empty() {
            self.state = State::EndTop;
            self.end_top = true;
        } else {
            self.state = State::EndValue;
        }
    }

    fn begin_value(&mut self, c: u8) {
        if is_space(c) {
            return;
        }
        match c {
            b'{' => {
                self.state = State::BeginStringOrEmpty;
                self.push(c, Parse::ObjectKey);
            }
            b'[' => {
                self.state = State::BeginValueOrEmpty;
                self.push(c, Parse::ArrayValue);
            }
            b'"' => self.state = State::InString,
            b'-' => self.state = State::Neg,
            b'0' => self.state = State::Zero,
            b't' => self.state = State::Literal(b"rue", "true"),
            b'f' => self.state = State::Literal(b"alse", "false"),
            b'n' => self.state = State::Literal(b"ull", "null"),
            b'1'..=b'9' => self.state = State::One,
            _ => self.error(c, "looking for beginning of value"),
        }
    }

    fn begin_string(&mut self, c: u8) {
        if is_space(c) {
            return;
        }
        if c == b'"' {
            self.state = State::InString;
        } else {
            self.error(c, "looking for beginning of object key string");
        }
    }

    fn end_value(&mut self, c: u8) {
        let Some(&top) = self.stack.last() else {
            self.state = State::EndTop;
            self.end_top = true;
            self.end_top_step(c);
            return;
        };
        if is_space(c) {
            self.state = State::EndValue;
            return;
        }
        let n = self.stack.len() - 1;
        match top {
            Parse::ObjectKey => {
                if c == b':' {
                    self.stack[n] = Parse::ObjectValue;
                    self.state = State::BeginValue;
                } else {
                    self.error(c, "after object key");
                }
            }
            Parse::ObjectValue => match c {
                b',' => {
                    self.stack[n] = Parse::ObjectKey;
                    self.state = State::BeginString;
                }
                b'}' => self.pop(),
                _ => self.error(c, "after object key:value pair"),
            },
            Parse::ArrayValue => match c {
                b',' => self.state = State::BeginValue,
                b']' => self.pop(),
                _ => self.error(c, "after array element"),
            },
        }
    }

    fn end_top_step(&mut self, c: u8) {
        if !is_space(c) {
            self.error(c, "after top-level value");
        }
    }

    /// `state0`: after the integer part of a number.
    fn after_int(&mut self, c: u8) {
        match c {
            b'.' => self.state = State::Dot,
            b'e' | b'E' => self.state = State::E,
            _ => self.end_value(c),
        }
    }

    fn step(&mut self, c: u8) {
        match self.state {
            State::BeginValueOrEmpty => {
                if is_space(c) {
                    return;
                }
                if c == b']' {
                    self.end_value(c);
                } else {
                    self.begin_value(c);
                }
            }
            State::BeginValue => self.begin_value(c),
            State::BeginStringOrEmpty => {
                if is_space(c) {
                    return;
                }
                if c == b'}' {
                    if let Some(top) = self.stack.last_mut() {
                        *top = Parse::ObjectValue;
                    }
                    self.end_value(c);
                } else {
                    self.begin_string(c);
                }
            }
            State::BeginString => self.begin_string(c),
            State::EndValue => self.end_value(c),
            State::EndTop => self.end_top_step(c),
            State::InString => match c {
                b'"' => self.state = State::EndValue,
                b'\\' => self.state = State::InStringEsc,
                0..=0x1f => self.error(c, "in string literal"),
                _ => {}
            },
            State::InStringEsc => match c {
                b'b' | b'f' | b'n' | b'r' | b't' | b'\\' | b'/' | b'"' => {
                    self.state = State::InString;
                }
                b'u' => self.state = State::InStringEscU(0),
                _ => self.error(c, "in string escape code"),
            },
            State::InStringEscU(k) => {
                if c.is_ascii_hexdigit() {
                    self.state = if k == 3 {
                        State::InString
                    } else {
                        State::InStringEscU(k + 1)
                    };
                } else {
                    self.error(c, "in \\u hexadecimal character escape");
                }
            }
            State::Neg => match c {
                b'0' => self.state = State::Zero,
                b'1'..=b'9' => self.state = State::One,
                _ => self.error(c, "in numeric literal"),
            },
            State::One => {
                if !c.is_ascii_digit() {
                    self.after_int(c);
                }
            }
            State::Zero => self.after_int(c),
            State::Dot => {
                if c.is_ascii_digit() {
                    self.state = State::Dot0;
                } else {
                    self.error(c, "after decimal point in numeric literal");
                }
            }
            State::Dot0 => match c {
                b'0'..=b'9' => {}
                b'e' | b'E' => self.state = State::E,
                _ => self.end_value(c),
            },
            State::E => {
                if c == b'+' || c == b'-' {
                    self.state = State::ESign;
                } else {
                    self.exponent_sign(c);
                }
            }
            State::ESign => self.exponent_sign(c),
            State::E0 => {
                if !c.is_ascii_digit() {
                    self.end_value(c);
                }
            }
            State::Literal(rest, name) => {
                if let Some((&want, more)) = rest.split_first() {
                    if c == want {
                        self.state = if more.is_empty() {
                            State::EndValue
                        } else {
                            State::Literal(more, name)
                        };
                    } else {
                        let context =
                            format!("in literal {name} (expecting '{}')", char::from(want));
                        self.error(c, &context);
                    }
                }
            }
            State::Error => {}
        }
    }

    fn exponent_sign(&mut self, c: u8) {
        if c.is_ascii_digit() {
            self.state = State::E0;
        } else {
            self.error(c, "in exponent of numeric literal");
        }
    }
}

/// Go's `checkValid`: the syntax error Go's `json.Unmarshal` reports first.
fn check_valid(data: &[u8]) -> std::result::Result<(), String> {
    let mut scan = Scanner::new();
    for &c in data {
        scan.step(c);
        if let Some(err) = scan.err.take() {
            return Err(err);
        }
    }
    // eof()
    if scan.end_top {
        return Ok(());
    }
    scan.step(b' ');
    if let Some(err) = scan.err.take() {
        return Err(err);
    }
    if scan.end_top {
        return Ok(());
    }
    Err("unexpected end of JSON input".to_string())
}

// ---------------------------------------------------------------------------
// Typed decoding of syntactically valid JSON into the two Go shapes. Go reports
// the first type mismatch in document order; the shapes are at most three
// levels deep, so decoding stops at the first mismatch without recursion.

/// The JSON kinds as Go's `UnmarshalTypeError` names them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    fn go_name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "bool",
            Kind::Number => "number",
            Kind::String => "string",
            Kind::Array => "array",
            Kind::Object => "object",
        }
    }
}

fn type_error(kind: Kind, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go value of type {go_type}",
        kind.go_name()
    )
}

/// A cursor over input already accepted by [`check_valid`].
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn ws(&mut self) {
        while self.pos < self.data.len() && is_space(self.data[self.pos]) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> u8 {
        self.ws();
        self.data.get(self.pos).copied().unwrap_or(b' ')
    }

    fn kind(&mut self) -> Kind {
        match self.peek() {
            b'{' => Kind::Object,
            b'[' => Kind::Array,
            b'"' => Kind::String,
            b't' | b'f' => Kind::Bool,
            b'n' => Kind::Null,
            _ => Kind::Number,
        }
    }

    fn bump(&mut self) {
        self.pos += 1;
    }

    /// Consumes `true`/`false`/`null` and returns whether it was `true`.
    fn literal(&mut self) -> bool {
        let c = self.peek();
        self.pos += match c {
            b'f' => 5,
            _ => 4,
        };
        c == b't'
    }

    /// After `{` or `[` (consumed): true if the container closes right away
    /// (consumes the closer).
    fn closes(&mut self, closer: u8) -> bool {
        if self.peek() == closer {
            self.bump();
            true
        } else {
            false
        }
    }

    /// After a member: consumes `,` (returns true: more) or the closer.
    fn more(&mut self) -> bool {
        let c = self.peek();
        self.bump();
        c == b','
    }

    /// Consumes an object key and its colon.
    fn key(&mut self) -> String {
        let k = self.string();
        self.peek();
        self.bump(); // ':'
        k
    }

    /// Consumes a string literal and unquotes it like Go (invalid surrogate
    /// escapes become U+FFFD).
    fn string(&mut self) -> String {
        self.peek();
        self.bump(); // opening quote
        let mut out = String::new();
        let start = self.pos;
        let mut plain_from = start;
        while self.pos < self.data.len() {
            match self.data[self.pos] {
                b'"' => break,
                b'\\' => {
                    out.push_str(&self.lossy(plain_from));
                    self.pos += 1;
                    let esc = self.data.get(self.pos).copied().unwrap_or(b'"');
                    self.pos += 1;
                    match esc {
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()),
                        other => out.push(char::from(other)),
                    }
                    plain_from = self.pos;
                }
                _ => self.pos += 1,
            }
        }
        out.push_str(&self.lossy(plain_from));
        self.bump(); // closing quote
        out
    }

    /// The raw text from `from` to the cursor.
    fn lossy(&self, from: usize) -> String {
        let end = self.pos.min(self.data.len());
        String::from_utf8_lossy(self.data.get(from..end).unwrap_or_default()).into_owned()
    }

    /// Four hex digits at the cursor (after `\u`), consumed.
    fn hex4(&mut self) -> Option<u32> {
        let digits = self.data.get(self.pos..self.pos + 4)?;
        let text = std::str::from_utf8(digits).ok()?;
        let v = u32::from_str_radix(text, 16).ok()?;
        self.pos += 4;
        Some(v)
    }

    /// Decodes the rest of a `\u` escape, pairing surrogates like Go.
    fn unicode_escape(&mut self) -> char {
        let Some(first) = self.hex4() else {
            return '\u{fffd}';
        };
        if (0xd800..0xe000).contains(&first) {
            if (0xd800..0xdc00).contains(&first)
                && self.data.get(self.pos..self.pos + 2) == Some(b"\\u")
            {
                let save = self.pos;
                self.pos += 2;
                if let Some(second) = self.hex4()
                    && (0xdc00..0xe000).contains(&second)
                {
                    let c = 0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00);
                    return char::from_u32(c).unwrap_or('\u{fffd}');
                }
                self.pos = save;
            }
            return '\u{fffd}';
        }
        char::from_u32(first).unwrap_or('\u{fffd}')
    }
}

type Fields = BTreeMap<String, BTreeMap<String, bool>>;

/// Decodes into Go's `map[string]map[string]bool` (the current format).
fn decode_current(data: &[u8]) -> std::result::Result<Fields, String> {
    let mut cur = Cursor { data, pos: 0 };
    let mut fields = Fields::new();
    match cur.kind() {
        Kind::Null => return Ok(fields),
        Kind::Object => {}
        other => return Err(type_error(other, "map[string]map[string]bool")),
    }
    cur.bump();
    if cur.closes(b'}') {
        return Ok(fields);
    }
    loop {
        let key = cur.key();
        let mut values = BTreeMap::new();
        match cur.kind() {
            Kind::Null => {
                cur.literal();
            }
            Kind::Object => {
                cur.bump();
                if !cur.closes(b'}') {
                    loop {
                        let value = cur.key();
                        match cur.kind() {
                            Kind::Bool | Kind::Null => {
                                let on = cur.literal();
                                values.insert(value, on);
                            }
                            other => return Err(type_error(other, "bool")),
                        }
                        if !cur.more() {
                            break;
                        }
                    }
                }
            }
            other => return Err(type_error(other, "map[string]bool")),
        }
        fields.insert(key, values);
        if !cur.more() {
            return Ok(fields);
        }
    }
}

/// Decodes into Go's `map[string][]string` (the legacy format) and converts
/// it like Docker's `deprecatedArgs`.
fn decode_legacy(data: &[u8]) -> std::result::Result<Fields, String> {
    let mut cur = Cursor { data, pos: 0 };
    let mut fields = Fields::new();
    match cur.kind() {
        Kind::Null => return Ok(fields),
        Kind::Object => {}
        other => return Err(type_error(other, "map[string][]string")),
    }
    cur.bump();
    if cur.closes(b'}') {
        return Ok(fields);
    }
    loop {
        let key = cur.key();
        let mut values = BTreeMap::new();
        match cur.kind() {
            Kind::Null => {
                cur.literal();
            }
            Kind::Array => {
                cur.bump();
                if !cur.closes(b']') {
                    loop {
                        match cur.kind() {
                            Kind::String => {
                                values.insert(cur.string(), true);
                            }
                            Kind::Null => {
                                cur.literal();
                                values.insert(String::new(), true);
                            }
                            other => return Err(type_error(other, "string")),
                        }
                        if !cur.more() {
                            break;
                        }
                    }
                }
            }
            other => return Err(type_error(other, "[]string")),
        }
        fields.insert(key, values);
        if !cur.more() {
            return Ok(fields);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    type Want<T> = std::result::Result<T, &'static str>;
    type Labels<'a> = Option<&'a BTreeMap<String, String>>;

    fn decoded(s: &str) -> Filters {
        match Filters::from_json(s) {
            Ok(f) => f,
            Err(e) => panic!("{s:?} failed: {}", e.message()),
        }
    }

    fn filters(pairs: &[(&str, &str)]) -> Filters {
        let mut f = Filters::new();
        for (k, v) in pairs {
            f.add(k, v);
        }
        f
    }

    /// Every row was answered by dockerd 20.10.24 (`GET /images/json`).
    #[test]
    fn json_errors_match_dockerd() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "not json",
                "notjson",
                "invalid character 'o' in literal null (expecting 'u')",
            ),
            (
                "two words",
                "invalid json",
                "invalid character 'i' looking for beginning of value",
            ),
            (
                "inner number",
                r#"{"a":1}"#,
                "json: cannot unmarshal number into Go value of type map[string]bool",
            ),
            (
                "top number",
                "1",
                "json: cannot unmarshal number into Go value of type map[string]map[string]bool",
            ),
            (
                "top string",
                r#""x""#,
                "json: cannot unmarshal string into Go value of type map[string]map[string]bool",
            ),
            (
                "top bool",
                "true",
                "json: cannot unmarshal bool into Go value of type map[string]map[string]bool",
            ),
            (
                "top array",
                "[1]",
                "json: cannot unmarshal array into Go value of type map[string]map[string]bool",
            ),
            (
                "top empty array",
                "[]",
                "json: cannot unmarshal array into Go value of type map[string]map[string]bool",
            ),
            ("open brace", "{", "unexpected end of JSON input"),
            ("key only", r#"{"a""#, "unexpected end of JSON input"),
            ("key colon", r#"{"a":"#, "unexpected end of JSON input"),
            ("nested open", r#"{"a":{"#, "unexpected end of JSON input"),
            ("open string", r#""abc"#, "unexpected end of JSON input"),
            ("open arrays", "[[[", "unexpected end of JSON input"),
            ("spaces only", "  ", "unexpected end of JSON input"),
            (
                "deep number",
                r#"{"a":{"b":1}}"#,
                "json: cannot unmarshal number into Go value of type bool",
            ),
            (
                "deep string",
                r#"{"a":{"b":"x"}}"#,
                "json: cannot unmarshal string into Go value of type bool",
            ),
            (
                "deep array",
                r#"{"a":{"b":[]}}"#,
                "json: cannot unmarshal array into Go value of type bool",
            ),
            (
                "legacy numbers",
                r#"{"a":[1]}"#,
                "json: cannot unmarshal array into Go value of type map[string]bool",
            ),
            (
                "legacy nested",
                r#"{"a":[["x"]]}"#,
                "json: cannot unmarshal array into Go value of type map[string]bool",
            ),
            (
                "legacy objects",
                r#"{"a":[{}]}"#,
                "json: cannot unmarshal array into Go value of type map[string]bool",
            ),
            (
                "mixed formats",
                r#"{"a":["x"],"b":{"c":true}}"#,
                "json: cannot unmarshal array into Go value of type map[string]bool",
            ),
            (
                "string value",
                r#"{"a":"x"}"#,
                "json: cannot unmarshal string into Go value of type map[string]bool",
            ),
            (
                "surrogate string",
                r#"{"a":"\ud800"}"#,
                "json: cannot unmarshal string into Go value of type map[string]bool",
            ),
            (
                "second dup key bad",
                r#"{"a":{"b":true},"a":{"c":1}}"#,
                "json: cannot unmarshal number into Go value of type bool",
            ),
            (
                "first of two errors",
                r#"{"a":{"b":1,"c":"x"}}"#,
                "json: cannot unmarshal number into Go value of type bool",
            ),
            (
                "until objects with legacy label",
                r#"{"until":{"1h":false,"2h":false},"label":["nonexistent-xyz"]}"#,
                "json: cannot unmarshal array into Go value of type map[string]bool",
            ),
            (
                "trailing garbage",
                r#"{"a":{"b":true}} x"#,
                "invalid character 'x' after top-level value",
            ),
            (
                "short true",
                r#"{"a":tru}"#,
                "invalid character '}' in literal true (expecting 'e')",
            ),
            (
                "true at eof",
                "tru",
                "invalid character ' ' in literal true (expecting 'e')",
            ),
            (
                "tr at eof",
                r#"{"a":{"b":tr"#,
                "invalid character ' ' in literal true (expecting 'u')",
            ),
            (
                "null at eof",
                "nul",
                "invalid character ' ' in literal null (expecting 'l')",
            ),
            (
                "dot at eof",
                "1.",
                "invalid character ' ' after decimal point in numeric literal",
            ),
            (
                "minus at eof",
                "-",
                "invalid character ' ' in numeric literal",
            ),
            (
                "key without value",
                r#"{"a"}"#,
                "invalid character '}' after object key",
            ),
            (
                "trailing comma",
                r#"{"a":1,}"#,
                "invalid character '}' looking for beginning of object key string",
            ),
            (
                "single quotes",
                "{'a':1}",
                r"invalid character '\'' looking for beginning of object key string",
            ),
            (
                "bad exponent",
                r#"{"a":1e}"#,
                "invalid character '}' in exponent of numeric literal",
            ),
            (
                "bare minus",
                r#"{"a":-}"#,
                "invalid character '}' in numeric literal",
            ),
            (
                "leading zero",
                r#"{"a":01}"#,
                "invalid character '1' after object key:value pair",
            ),
            (
                "two dots",
                r#"{"a":1.5.3}"#,
                "invalid character '.' after object key:value pair",
            ),
            (
                "bad escape",
                r#"{"a":"\q"}"#,
                "invalid character 'q' in string escape code",
            ),
            (
                "bad unicode escape",
                r#"{"a":"\u12g"}"#,
                r"invalid character 'g' in \u hexadecimal character escape",
            ),
            (
                "control in string",
                "{\"a\u{1}\":1}",
                r"invalid character '\x01' in string literal",
            ),
            (
                "tab then junk",
                "{\t\"a\":x}",
                "invalid character 'x' looking for beginning of value",
            ),
            (
                "non-ascii value",
                "{\"a\":é}",
                "invalid character 'Ã' looking for beginning of value",
            ),
            (
                "nbsp key",
                "{\u{a0}}",
                "invalid character 'Â' looking for beginning of object key string",
            ),
            (
                "stray quote",
                r#"{"a":{"b":true}"}"#,
                r#"invalid character '"' after object key:value pair"#,
            ),
            (
                "array element",
                r#"{"until":["a"b"]}"#,
                "invalid character 'b' after array element",
            ),
        ];
        for (name, input, want) in cases {
            match Filters::from_json(input) {
                Ok(f) => panic!("case {name}: {input:?} decoded as {f:?}"),
                Err(e) => {
                    assert_eq!(e.message(), *want, "case {name}: {input:?}");
                    assert_eq!(e.kind(), ErrorKind::Internal, "case {name}");
                }
            }
        }
    }

    #[test]
    fn depth_limit_matches_go() {
        let deep = "[".repeat(10_001);
        let err = Filters::from_json(&deep)
            .err()
            .map(|e| e.message().to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid character '[' exceeded max depth")
        );
        let not_too_deep = "{\"a\":".repeat(10_000);
        let err = Filters::from_json(&not_too_deep)
            .err()
            .map(|e| e.message().to_string());
        assert_eq!(err.as_deref(), Some("unexpected end of JSON input"));
    }

    #[test]
    fn json_decodes_both_formats() {
        let cases: &[(&str, &str, Filters)] = &[
            ("empty string", "", Filters::new()),
            ("null", "null", Filters::new()),
            ("empty object", "{}", Filters::new()),
            (
                "current",
                r#"{"label":{"a=1":true,"b":true}}"#,
                filters(&[("label", "a=1"), ("label", "b")]),
            ),
            (
                "legacy",
                r#"{"label":["a=1","b"],"dangling":["true"]}"#,
                filters(&[("label", "a=1"), ("label", "b"), ("dangling", "true")]),
            ),
            (
                "legacy dup values",
                r#"{"a":["x","x"]}"#,
                filters(&[("a", "x")]),
            ),
            (
                "dup keys last wins current",
                r#"{"a":{"x":true},"a":{"y":true}}"#,
                filters(&[("a", "y")]),
            ),
            (
                "dup keys last wins legacy",
                r#"{"label":["x"],"label":["y"]}"#,
                filters(&[("label", "y")]),
            ),
            (
                "whitespace",
                " { \"a\" : [ \"x\" ] } \n",
                filters(&[("a", "x")]),
            ),
            (
                "escapes",
                r#"{"a\u00e9\n":["\ud83d\ude00\"\/"]}"#,
                filters(&[("aé\n", "😀\"/")]),
            ),
            (
                "lone surrogate",
                r#"{"a":["\udc00x"]}"#,
                filters(&[("a", "\u{fffd}x")]),
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(&decoded(input), want, "case {name}: {input:?}");
        }
    }

    #[test]
    fn json_nulls_are_go_zero_values() {
        let f = decoded(r#"{"dangling":null}"#);
        assert!(f.contains("dangling"));
        assert!(f.values("dangling").is_empty());
        let f = decoded(r#"{"a":{"b":null,"c":false,"d":true}}"#);
        assert_eq!(f.values("a"), vec!["b", "c", "d"]);
        assert!(!f.exact_match("a", "b"));
        assert!(!f.exact_match("a", "c"));
        assert!(f.exact_match("a", "d"));
        let f = decoded(r#"{"dangling":[null]}"#);
        assert_eq!(f.values("dangling"), vec![""]);
        let f = decoded(r#"{"a":[]}"#);
        assert!(f.contains("a") && f.values("a").is_empty());
    }

    #[test]
    fn cli_pairs() {
        let f = Filters::from_cli_pairs([" Dangling = true ", "label=a=b", "", "LABEL=c"]);
        let want = filters(&[("dangling", "true"), ("label", "a=b"), ("label", "c")]);
        assert_eq!(f.ok(), Some(want));
        let err = Filters::from_cli_pairs(["dangling"]).err();
        assert_eq!(
            err.map(|e| (e.kind(), e.message().to_string())),
            Some((
                ErrorKind::InvalidArgument,
                "bad format of filter (expected name=value)".to_string()
            ))
        );
        let f = Filters::from_cli_pairs(["İ=x"]);
        assert_eq!(f.ok(), Some(filters(&[("i", "x")])));
    }

    #[test]
    fn to_json_matches_go_marshal() {
        assert_eq!(Filters::new().to_json(), "");
        let f = filters(&[("label", "b"), ("label", "a=<&>"), ("dangling", "true")]);
        assert_eq!(
            f.to_json(),
            r#"{"dangling":{"true":true},"label":{"a=\u003c\u0026\u003e":true,"b":true}}"#
        );
        let f = decoded(r#"{"a":{"x\u0001\t":false}}"#);
        assert_eq!(f.to_json(), r#"{"a":{"x\u0001\t":false}}"#);
        assert_eq!(decoded(&f.to_json()), f);
    }

    #[test]
    fn validate_and_invalid_value() {
        let f = decoded(r#"{"Dangling":["true"]}"#);
        let err = f.validate(&["dangling", "label"]).err();
        assert_eq!(
            err.map(|e| (e.kind(), e.message().to_string())),
            Some((
                ErrorKind::InvalidArgument,
                "Invalid filter 'Dangling'".to_string()
            ))
        );
        assert!(decoded(r#"{"label":["x"]}"#).validate(&["label"]).is_ok());
        let f = decoded(r#"{"dangling":["maybe","x y"]}"#);
        assert_eq!(
            f.invalid_value("dangling").message(),
            "Invalid filter 'dangling=[maybe x y]'"
        );
        assert_eq!(
            f.invalid_value("dangling").kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            f.invalid_value("absent").message(),
            "Invalid filter 'absent=[]'"
        );
    }

    #[test]
    fn list_dangling_rules() {
        let cases: &[(&str, &str, Want<Option<bool>>)] = &[
            ("absent", "{}", Ok(None)),
            ("true", r#"{"dangling":["true"]}"#, Ok(Some(true))),
            ("false", r#"{"dangling":["false"]}"#, Ok(Some(false))),
            (
                "both: true wins",
                r#"{"dangling":["true","false"]}"#,
                Ok(Some(true)),
            ),
            (
                "no values is vacuous true",
                r#"{"dangling":[]}"#,
                Ok(Some(true)),
            ),
            (
                "null is vacuous true",
                r#"{"dangling":null}"#,
                Ok(Some(true)),
            ),
            (
                "empty object is vacuous true",
                r#"{"dangling":{}}"#,
                Ok(Some(true)),
            ),
            (
                "one not accepted",
                r#"{"dangling":["1"]}"#,
                Err("Invalid filter 'dangling=[1]'"),
            ),
            (
                "uppercase not accepted",
                r#"{"dangling":["TRUE"]}"#,
                Err("Invalid filter 'dangling=[TRUE]'"),
            ),
            (
                "mapped false",
                r#"{"dangling":{"true":false}}"#,
                Err("Invalid filter 'dangling=[true]'"),
            ),
            (
                "null value",
                r#"{"dangling":[null]}"#,
                Err("Invalid filter 'dangling=[]'"),
            ),
            (
                "maybe",
                r#"{"dangling":["maybe","x y"]}"#,
                Err("Invalid filter 'dangling=[maybe x y]'"),
            ),
        ];
        for (name, input, want) in cases {
            let got = decoded(input)
                .list_dangling()
                .map_err(|e| e.message().to_string());
            assert_eq!(got, want.map_err(str::to_string), "case {name}");
        }
    }

    #[test]
    fn prune_dangling_rules() {
        let cases: &[(&str, &str, Want<bool>)] = &[
            ("absent", "{}", Ok(true)),
            ("true", r#"{"dangling":["true"]}"#, Ok(true)),
            ("one", r#"{"dangling":["1"]}"#, Ok(true)),
            ("false", r#"{"dangling":["false"]}"#, Ok(false)),
            ("zero", r#"{"dangling":["0"]}"#, Ok(false)),
            ("false wins", r#"{"dangling":["true","0"]}"#, Ok(false)),
            ("no values means all", r#"{"dangling":[]}"#, Ok(false)),
            (
                "mapped false",
                r#"{"dangling":{"true":false}}"#,
                Err("Invalid filter 'dangling=[true]'"),
            ),
            (
                "maybe",
                r#"{"dangling":["maybe"]}"#,
                Err("Invalid filter 'dangling=[maybe]'"),
            ),
            (
                "two bad",
                r#"{"dangling":["maybe","1x"]}"#,
                Err("Invalid filter 'dangling=[1x maybe]'"),
            ),
        ];
        for (name, input, want) in cases {
            let got = decoded(input)
                .prune_dangling_only()
                .map_err(|e| e.message().to_string());
            assert_eq!(got, want.map_err(str::to_string), "case {name}");
        }
    }

    #[test]
    fn single_until_rules() {
        let cases: &[(&str, &str, Want<Option<&str>>)] = &[
            ("absent", "{}", Ok(None)),
            ("one", r#"{"until":["1h"]}"#, Ok(Some("1h"))),
            (
                "two",
                r#"{"until":["1h","2h"]}"#,
                Err("more than one until filter specified"),
            ),
            (
                "two mapped false",
                r#"{"until":{"1h":false,"2h":false}}"#,
                Err("more than one until filter specified"),
            ),
            (
                "none",
                r#"{"until":[]}"#,
                Err("runtime error: index out of range [0] with length 0"),
            ),
        ];
        for (name, input, want) in cases {
            let f = decoded(input);
            let got = f.single_until().map_err(|e| e.message().to_string());
            assert_eq!(got, want.map_err(str::to_string), "case {name}");
            if let Err(e) = f.single_until() {
                assert_eq!(e.kind(), ErrorKind::Internal, "case {name}");
            }
        }
    }

    #[test]
    fn label_matching() {
        let labels: BTreeMap<String, String> = [("a", "1"), ("b", ""), ("c", "x=y")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let empty = BTreeMap::new();
        let cases: &[(&str, &str, Labels, bool)] = &[
            ("no filter", "{}", None, true),
            ("key no values", r#"{"label":null}"#, None, true),
            ("key exists", r#"{"label":["a"]}"#, Some(&labels), true),
            ("key missing", r#"{"label":["z"]}"#, Some(&labels), false),
            ("value equal", r#"{"label":["a=1"]}"#, Some(&labels), true),
            (
                "value differs",
                r#"{"label":["a=2"]}"#,
                Some(&labels),
                false,
            ),
            ("empty value", r#"{"label":["b="]}"#, Some(&labels), true),
            (
                "split at first equals",
                r#"{"label":["c=x=y"]}"#,
                Some(&labels),
                true,
            ),
            ("anded", r#"{"label":["a","z"]}"#, Some(&labels), false),
            ("anded ok", r#"{"label":["a","b"]}"#, Some(&labels), true),
            (
                "false-mapped still required",
                r#"{"label":{"z":false}}"#,
                Some(&labels),
                false,
            ),
            ("no labels", r#"{"label":["a"]}"#, None, false),
            ("empty labels", r#"{"label":["a"]}"#, Some(&empty), false),
        ];
        for (name, input, labels, want) in cases {
            assert_eq!(
                decoded(input).match_labels("label", *labels),
                *want,
                "case {name}"
            );
        }
        let prune: &[(&str, &str, Labels, bool)] = &[
            ("nothing", "{}", Some(&labels), true),
            (
                "not all negatives match",
                r#"{"label!":["a","z"]}"#,
                Some(&labels),
                true,
            ),
            (
                "all negatives match",
                r#"{"label!":["a","b"]}"#,
                Some(&labels),
                false,
            ),
            ("negative without labels", r#"{"label!":["a"]}"#, None, true),
            (
                "negative key without values excludes",
                r#"{"label!":null}"#,
                Some(&labels),
                false,
            ),
            (
                "positive and negative",
                r#"{"label":["a"],"label!":["c=x"]}"#,
                Some(&labels),
                true,
            ),
            ("positive fails", r#"{"label":["z"]}"#, Some(&labels), false),
        ];
        for (name, input, labels, want) in prune {
            assert_eq!(
                decoded(input).prune_labels_match(*labels),
                *want,
                "case {name}"
            );
        }
    }

    #[test]
    fn query_bools() {
        let cases: &[(&str, bool)] = &[
            ("", false),
            ("0", false),
            ("no", false),
            ("NO", false),
            (" false ", false),
            ("None", false),
            ("1", true),
            ("true", true),
            ("yes", true),
            ("off", true),
            ("anything", true),
        ];
        for (input, want) in cases {
            assert_eq!(query_bool(input), *want, "case {input:?}");
        }
    }

    /// Rows answered by dockerd 20.10.24 (`POST /images/prune`, TZ=UTC).
    #[test]
    fn until_matches_dockerd() {
        let now = 1_700_000_000_000_000_000i128;
        let accepted = [
            "2020-01-01Z",
            "2020-01-01+01:00",
            "2020-01-01T10Z",
            "2020-01-01T10:00:00.123",
            "2020-01-01T10:00:00.123Z",
            "2020-01-01T10:00:00+25:00",
            "0000-01-01",
            "2020-01-01T10:00:00-01:00",
            "2020-01-01T1",
            "2020-01-01T10:00",
            "+5",
            "1.+5",
            "2020-01-01T10:00:00.5+01:00",
            "2020-01-01T10:00:00,5",
            "2020-02-29",
            "1h",
            "-1h",
            "2020-01-01T10:00:00Z",
            "2020-01-01T10:00+01:00",
            "2020-01-01T10+01:00",
            "+1h",
            "1µs",
            "1.h",
            "2020-01-01T10:00:00+-1:00",
            "2020-01-01T10:00:00,123Z",
            "2020-01-01T10:00:00,1234567891",
            "2562047h",
            "-9223372036854775808ns",
            "1.5",
            "1.0000000001",
            "-0",
            "+0",
            "00",
            "0.0",
            "9223372036854775808ns9223372036854775808ns",
            "0",
        ];
        for value in accepted {
            assert!(parse_until(value, now, 0).is_ok(), "{value:?} should parse");
        }
        let rejected: &[(&str, &str)] = &[
            ("x", "failed to parse value as time or duration: \"x\""),
            (
                "2020-13-01",
                "parsing time \"2020-13-01\": month out of range",
            ),
            (
                "2020-01-32",
                "parsing time \"2020-01-32\": day out of range",
            ),
            (
                "2020-02-30",
                "parsing time \"2020-02-30\": day out of range",
            ),
            (
                "2020-1-1",
                "parsing time \"2020-1-1\" as \"2006-01-02\": cannot parse \"1-1\" as \"01\"",
            ),
            (
                "2020-01-01T25",
                "parsing time \"2020-01-01T25\": hour out of range",
            ),
            (
                "2020-01-01T10:61",
                "parsing time \"2020-01-01T10:61\": minute out of range",
            ),
            (
                "2020-01-01T10:00:61",
                "parsing time \"2020-01-01T10:00:61\": second out of range",
            ),
            (
                "2020-01-01x",
                "parsing time \"2020-01-01x\": extra text: \"x\"",
            ),
            (
                "2020-01-01T",
                "parsing time \"2020-01-01T\" as \"2006-01-02T15\": cannot parse \"\" as \"15\"",
            ),
            (
                "2020-01-01T10:00:00.",
                "parsing time \"2020-01-01T10:00:00.\": extra text: \".\"",
            ),
            ("abc", "failed to parse value as time or duration: \"abc\""),
            (
                "x-y",
                "parsing time \"x-y\" as \"2006-01-02\": cannot parse \"x-y\" as \"2006\"",
            ),
            (
                "1.5.5",
                "failed to parse value as time or duration: \"1.5.5\"",
            ),
            (
                "12abc",
                "failed to parse value as time or duration: \"12abc\"",
            ),
            ("", "failed to parse value as time or duration: \"\""),
            (" 1", "failed to parse value as time or duration: \" 1\""),
            (
                "1h-",
                "parsing time \"1h-\" as \"2006-01-02\": cannot parse \"1h-\" as \"2006\"",
            ),
            (
                "-",
                "parsing time \"-\" as \"2006-01-02\": cannot parse \"-\" as \"2006\"",
            ),
            ("T", "failed to parse value as time or duration: \"T\""),
            ("é", "failed to parse value as time or duration: \"é\""),
            (
                "2020-01-01T10:00:00+0100",
                "parsing time \"2020-01-01T10:00:00+0100\" as \"2006-01-02T15:04Z07:00\": cannot parse \":00+0100\" as \"Z07:00\"",
            ),
            (
                "2020-01-01Tx",
                "parsing time \"2020-01-01Tx\" as \"2006-01-02T15\": cannot parse \"x\" as \"15\"",
            ),
            (
                "20-01-01",
                "parsing time \"20-01-01\" as \"2006-01-02\": cannot parse \"1-01\" as \"2006\"",
            ),
            (
                "2020/01/01",
                "failed to parse value as time or duration: \"2020/01/01\"",
            ),
            (
                "99999999999999999999",
                "failed to parse value as time or duration: \"99999999999999999999\"",
            ),
            ("1.x", "failed to parse value as time or duration: \"1.x\""),
            ("1.", "failed to parse value as time or duration: \"1.\""),
            (".5", "failed to parse value as time or duration: \".5\""),
            (
                "2020-01-01T10:00:00.1234567891",
                "parsing time \"2020-01-01T10:00:00.1234567891\": extra text: \"1\"",
            ),
            (
                "2020-01-01T10:00:00.12345678912",
                "parsing time \"2020-01-01T10:00:00.12345678912\": extra text: \"12\"",
            ),
            (
                "2020-01-01T10:00:00z",
                "parsing time \"2020-01-01T10:00:00z\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"z\" as \"Z07:00\"",
            ),
            (
                "2020-00-10",
                "parsing time \"2020-00-10\": month out of range",
            ),
            (
                "2020-01-00",
                "parsing time \"2020-01-00\": day out of range",
            ),
            (
                "2020-01-01-01",
                "parsing time \"2020-01-01-01\" as \"2006-01-02Z07:00\": cannot parse \"-01\" as \"Z07:00\"",
            ),
            ("1e3", "failed to parse value as time or duration: \"1e3\""),
            (
                "é-",
                "parsing time \"\\xc3\\xa9-\" as \"2006-01-02\": cannot parse \"\\xc3\\xa9-\" as \"2006\"",
            ),
            (
                "2020-01-01T10:5",
                "parsing time \"2020-01-01T10:5\" as \"2006-01-02T15:04\": cannot parse \"5\" as \"04\"",
            ),
            (
                "2020-01-01T10:00:5",
                "parsing time \"2020-01-01T10:00:5\" as \"2006-01-02T15:04:05\": cannot parse \"5\" as \"05\"",
            ),
            (
                "2020-01-01T10:00:00+01",
                "parsing time \"2020-01-01T10:00:00+01\" as \"2006-01-02T15:04Z07:00\": cannot parse \":00+01\" as \"Z07:00\"",
            ),
            (
                "2020-01-01T10:00:00Z+01:00",
                "parsing time \"2020-01-01T10:00:00Z+01:00\": extra text: \"+01:00\"",
            ),
            (
                "2020-01-01t10",
                "parsing time \"2020-01-01t10\": extra text: \"t10\"",
            ),
            ("Z", "failed to parse value as time or duration: \"Z\""),
            ("1Z", "failed to parse value as time or duration: \"1Z\""),
            (
                "1.5Z",
                "failed to parse value as time or duration: \"1.5Z\"",
            ),
            (
                "2019-02-29",
                "parsing time \"2019-02-29\": day out of range",
            ),
            (
                "1.5.5h",
                "failed to parse value as time or duration: \"1.5.5h\"",
            ),
            (
                "2020-01-01T10:00:00+01:00:00",
                "parsing time \"2020-01-01T10:00:00+01:00:00\": extra text: \":00\"",
            ),
            (
                "2020-01-01 10:00",
                "parsing time \"2020-01-01 10:00\": extra text: \" 10:00\"",
            ),
            (
                "2020-01-01T10:00:00.+01:00",
                "parsing time \"2020-01-01T10:00:00.+01:00\" as \"2006-01-02T15:04:05.999999999Z07:00\": cannot parse \".+01:00\" as \"Z07:00\"",
            ),
            (
                "2020-01-01T10:00:00.Z",
                "parsing time \"2020-01-01T10:00:00.Z\" as \"2006-01-02T15:04:05.999999999Z07:00\": cannot parse \".Z\" as \"Z07:00\"",
            ),
            (
                "02020-01-01",
                "parsing time \"02020-01-01\" as \"2006-01-02\": cannot parse \"0-01-01\" as \"-\"",
            ),
            (
                "2020-001-01",
                "parsing time \"2020-001-01\": month out of range",
            ),
            (
                "2020-01-011",
                "parsing time \"2020-01-011\": extra text: \"1\"",
            ),
            ("1d", "failed to parse value as time or duration: \"1d\""),
            ("1h1", "failed to parse value as time or duration: \"1h1\""),
            ("µs", "failed to parse value as time or duration: \"µs\""),
            (
                "1ms1",
                "failed to parse value as time or duration: \"1ms1\"",
            ),
            (".h", "failed to parse value as time or duration: \".h\""),
            (
                "2020-01-01T10:00:00+1x:00",
                "parsing time \"2020-01-01T10:00:00+1x:00\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"\" as \"Z07:00\"",
            ),
            (
                "2020-01-01T10:00:00+01-00",
                "parsing time \"2020-01-01T10:00:00+01-00\" as \"2006-01-02T15:04Z07:00\": cannot parse \":00+01-00\" as \"Z07:00\"",
            ),
            (
                "2020-01-01T10:00:00+01:0x",
                "parsing time \"2020-01-01T10:00:00+01:0x\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"\" as \"Z07:00\"",
            ),
            (
                "2020-01-01T10:00:60",
                "parsing time \"2020-01-01T10:00:60\": second out of range",
            ),
            (
                "2020-01-01T24",
                "parsing time \"2020-01-01T24\": hour out of range",
            ),
            (
                "2020-01-01T-1",
                "parsing time \"2020-01-01T-1\" as \"2006-01-02T15Z07:00\": cannot parse \"-1\" as \"15\"",
            ),
            (
                "+2020-01-01",
                "parsing time \"+2020-01-01\" as \"2006-01-02Z07:00\": cannot parse \"+2020-01-01\" as \"2006\"",
            ),
            (
                "9223372036854775808ns",
                "failed to parse value as time or duration: \"9223372036854775808ns\"",
            ),
            (
                "9999999999h",
                "failed to parse value as time or duration: \"9999999999h\"",
            ),
            (
                "2562048h",
                "failed to parse value as time or duration: \"2562048h\"",
            ),
            (
                "-2562048h",
                "parsing time \"-2562048h\" as \"2006-01-02\": cannot parse \"-2562048h\" as \"2006\"",
            ),
            (
                "-9223372036854775809ns",
                "parsing time \"-9223372036854775809ns\" as \"2006-01-02\": cannot parse \"-9223372036854775809ns\" as \"2006\"",
            ),
        ];
        for (value, want) in rejected {
            match parse_until(value, now, 0) {
                Ok(t) => panic!("{value:?} parsed as {t}"),
                Err(e) => {
                    assert_eq!(e.message(), *want, "case {value:?}");
                    assert_eq!(e.kind(), ErrorKind::Internal);
                }
            }
        }
    }

    #[test]
    fn until_values() {
        let now = 1_700_000_000_500_000_000i128;
        let s = |x: i128| x * 1_000_000_000;
        assert_eq!(
            parse_until("1h", now, 0).ok(),
            Some(s(1_700_000_000 - 3600))
        );
        assert_eq!(parse_until("0", now, 0).ok(), Some(0));
        assert_eq!(parse_until("0s", now, 0).ok(), Some(s(1_700_000_000)));
        assert_eq!(
            parse_until("2020-01-01", now, -3600).ok(),
            Some(s(1_577_840_400))
        );
        assert_eq!(
            parse_until("2020-01-01Z", now, -3600).ok(),
            Some(s(1_577_836_800))
        );
        assert_eq!(
            parse_until("1600000000.25", now, 0).ok(),
            Some(s(1_600_000_000) + 250_000_000)
        );
        assert_eq!(parse_go_duration("1.5h"), Ok(5_400_000_000_000));
    }
}
