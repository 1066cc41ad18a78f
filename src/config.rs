//! Docker's image config model: types, Go-exact JSON reading and writing,
//! Go's time format, ChainIDs and the docker-archive v1 layer IDs.
//!
//! This module owns:
//!
//! * [`ImageConfig`] and its parts ([`ContainerConfig`], [`HealthConfig`],
//!   [`RootFs`], [`History`]) mirroring Docker 20.10's `image.Image` and
//!   `container.Config` (image-service.md §2.2).
//! * Reading a config with Go's `encoding/json` semantics
//!   ([`ImageConfig::from_json`], §2.4 steps 1–3): keys matched
//!   case-insensitively, unknown keys ignored, duplicate keys decoded in
//!   document order, `Cmd`/`Entrypoint`/`Shell` as a string or an array, and
//!   Go's error messages.
//! * Writing a config Docker builds itself ([`ImageConfig::to_docker_json`],
//!   §2.3) and the container-config objects of inspect
//!   ([`ContainerConfig::write_json`]).
//! * [`GoTime`]: Go's `time.Time` as Docker stores it (RFC 3339 with
//!   nanoseconds and the offset it was written with).
//! * [`v1_layers`] (formats.md §A.4, §D).
//!
//! Configs received from outside are stored verbatim elsewhere; this module
//! never needs to reproduce their bytes, only to read them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::digest::{chain_ids, sha256_digest};

/// The `docker_version` strata writes into configs it builds (import,
/// commit): the dockerd whose behaviour it reproduces.
pub const DOCKER_VERSION: &str = "20.10.24+dfsg1";
use crate::error::{Error, Result};
use crate::gojson::{self, Doc, NodeKind, ObjectWriter};

// ---------------------------------------------------------------------------
// Time.

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// Go's `time.Time` as Docker stores it: an instant plus the UTC offset it was
/// written with (so `…-07:00` is written back as `…-07:00`).
/// Ordering is by instant first (then offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoTime {
    /// Nanoseconds since the Unix epoch.
    nanos: i128,
    /// Seconds east of UTC.
    offset: i32,
}

impl Default for GoTime {
    fn default() -> GoTime {
        GoTime::zero()
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Proleptic Gregorian (year, month, day) of days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in(month: i64, year: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Go's `time.quote` (used in `ParseError` messages).
fn go_time_quote(s: &[u8]) -> String {
    let mut out = String::from("\"");
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if (0x20..0x80).contains(&b) {
            if b == b'"' || b == b'\\' {
                out.push('\\');
            }
            out.push(char::from(b));
            i += 1;
            continue;
        }
        // Non-ASCII or control: every byte of the sequence as \xNN.
        let width = if b < 0x80 {
            1
        } else {
            match std::str::from_utf8(&s[i..(i + 4).min(s.len())]) {
                Ok(t) => t.chars().next().map_or(1, char::len_utf8),
                Err(e) if e.valid_up_to() > 0 => std::str::from_utf8(&s[i..i + e.valid_up_to()])
                    .ok()
                    .and_then(|t| t.chars().next())
                    .map_or(1, char::len_utf8),
                Err(_) => 1,
            }
        };
        for &byte in &s[i..i + width] {
            out.push_str(&format!("\\x{byte:02x}"));
        }
        i += width;
    }
    out.push('"');
    out
}

/// Go's `time.ParseError`, rendered.
struct TimeParseError<'a> {
    layout: &'a str,
    value: &'a [u8],
    layout_elem: &'a str,
    value_elem: &'a [u8],
    message: String,
}

impl TimeParseError<'_> {
    fn into_error(self) -> Error {
        let text = if self.message.is_empty() {
            format!(
                "parsing time {} as {}: cannot parse {} as {}",
                go_time_quote(self.value),
                go_time_quote(self.layout.as_bytes()),
                go_time_quote(self.value_elem),
                go_time_quote(self.layout_elem.as_bytes())
            )
        } else {
            format!("parsing time {}{}", go_time_quote(self.value), self.message)
        };
        Error::invalid(text)
    }
}

fn is_digit(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(u8::is_ascii_digit)
}

/// Go's `getnum`: one or two digits (exactly two when `fixed`).
fn getnum(s: &[u8], fixed: bool) -> Option<(i64, &[u8])> {
    if !is_digit(s, 0) {
        return None;
    }
    if !is_digit(s, 1) {
        if fixed {
            return None;
        }
        return Some((i64::from(s[0] - b'0'), &s[1..]));
    }
    Some((
        i64::from(s[0] - b'0') * 10 + i64::from(s[1] - b'0'),
        &s[2..],
    ))
}

/// Parse with Go 1.19's `time.Parse(RFC3339, …)` rules; `quoted` adds the
/// surrounding `"` of `Time.UnmarshalJSON` to the layout (the raw JSON token
/// is parsed, escapes are not decoded).
fn parse_rfc3339(value: &[u8], quoted: bool) -> Result<GoTime> {
    const LAYOUT: &str = "2006-01-02T15:04:05Z07:00";
    const QLAYOUT: &str = "\"2006-01-02T15:04:05Z07:00\"";
    let layout = if quoted { QLAYOUT } else { LAYOUT };
    let fail = |layout_elem: &'static str, rest: &[u8]| {
        TimeParseError {
            layout,
            value,
            layout_elem,
            value_elem: rest,
            message: String::new(),
        }
        .into_error()
    };
    let range = |what: &str| {
        TimeParseError {
            layout,
            value,
            layout_elem: "",
            value_elem: b"",
            message: format!(": {what} out of range"),
        }
        .into_error()
    };
    let literal = |rest: &[u8], lit: &'static str| -> Result<usize> {
        if rest.starts_with(lit.as_bytes()) {
            Ok(lit.len())
        } else {
            Err(fail(lit, rest))
        }
    };
    let mut v = value;
    if quoted {
        v = &v[literal(v, "\"")?..];
    }
    // 2006
    if v.len() < 4 || !v[..4].iter().all(u8::is_ascii_digit) {
        return Err(fail("2006", v));
    }
    let year: i64 = v[..4]
        .iter()
        .fold(0, |acc, d| acc * 10 + i64::from(d - b'0'));
    v = &v[4..];
    v = &v[literal(v, "-")?..];
    // 01
    let (month, rest) = getnum(v, true).ok_or_else(|| fail("01", v))?;
    if !(1..=12).contains(&month) {
        return Err(range("month"));
    }
    v = rest;
    v = &v[literal(v, "-")?..];
    // 02
    let (day, rest) = getnum(v, true).ok_or_else(|| fail("02", v))?;
    v = rest;
    v = &v[literal(v, "T")?..];
    // 15 (Go accepts one digit here)
    let (hour, rest) = getnum(v, false).ok_or_else(|| fail("15", v))?;
    if hour >= 24 {
        return Err(range("hour"));
    }
    v = rest;
    v = &v[literal(v, ":")?..];
    // 04
    let (min, rest) = getnum(v, true).ok_or_else(|| fail("04", v))?;
    if min >= 60 {
        return Err(range("minute"));
    }
    v = rest;
    v = &v[literal(v, ":")?..];
    // 05 and an optional fraction
    let (sec, rest) = getnum(v, true).ok_or_else(|| fail("05", v))?;
    if sec >= 60 {
        return Err(range("second"));
    }
    v = rest;
    let mut nsec: i64 = 0;
    if v.len() >= 2 && (v[0] == b'.' || v[0] == b',') && is_digit(v, 1) {
        let mut n = 2;
        while is_digit(v, n) {
            n += 1;
        }
        let digits = &v[1..n.min(10)];
        nsec = digits
            .iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
        for _ in digits.len()..9 {
            nsec *= 10;
        }
        v = &v[n..];
    }
    // Z07:00
    let offset: i64 = if v.first() == Some(&b'Z') {
        v = &v[1..];
        0
    } else {
        if v.len() < 6 || v[3] != b':' {
            return Err(fail("Z07:00", v));
        }
        let hh = getnum(&v[1..3], true);
        let mm = getnum(&v[4..6], true);
        let (Some((hh, _)), Some((mm, _))) = (hh, mm) else {
            return Err(fail("Z07:00", v));
        };
        let off = (hh * 60 + mm) * 60;
        let off = match v[0] {
            b'+' => off,
            b'-' => -off,
            _ => return Err(fail("Z07:00", v)),
        };
        v = &v[6..];
        off
    };
    if quoted {
        v = &v[literal(v, "\"")?..];
    }
    if !v.is_empty() {
        return Err(TimeParseError {
            layout,
            value,
            layout_elem: "",
            value_elem: b"",
            message: format!(": extra text: {}", go_time_quote(v)),
        }
        .into_error());
    }
    if day < 1 || day > days_in(month, year) {
        return Err(range("day"));
    }
    let local_secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec;
    let utc_secs = local_secs - offset;
    Ok(GoTime {
        nanos: i128::from(utc_secs) * NANOS_PER_SEC + i128::from(nsec),
        // |offset| <= 99:99, fits easily.
        offset: i32::try_from(offset).unwrap_or(0),
    })
}

impl GoTime {
    /// Parse RFC 3339 / RFC 3339 with nanoseconds the way Go 1.19's
    /// `time.Parse(time.RFC3339, s)` (and so `Time.UnmarshalJSON`) does: `Z`
    /// or `±hh:mm`, an optional `.` or `,` fraction of any length (digits past
    /// the ninth ignored), one-digit hours accepted. Errors are
    /// InvalidArgument with Go's `parsing time …` message.
    pub fn parse(s: &str) -> Result<GoTime> {
        parse_rfc3339(s.as_bytes(), false)
    }

    /// Go's `Format(time.RFC3339Nano)`: fraction without trailing zeros and
    /// dropped when zero; `Z` for a zero offset, else `±hh:mm`.
    pub fn to_rfc3339_nano(&self) -> String {
        let local = self.nanos + i128::from(self.offset) * NANOS_PER_SEC;
        let secs = local.div_euclid(NANOS_PER_SEC);
        let frac = local.rem_euclid(NANOS_PER_SEC);
        let days = i64::try_from(secs.div_euclid(86_400)).unwrap_or(0);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let mut out = String::with_capacity(36);
        if y < 0 {
            out.push_str(&format!("-{:04}", -y));
        } else {
            out.push_str(&format!("{y:04}"));
        }
        out.push_str(&format!(
            "-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        ));
        if frac != 0 {
            let digits = format!("{frac:09}");
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
        if self.offset == 0 {
            out.push('Z');
        } else {
            let zone = self.offset / 60;
            let (sign, zone) = if zone < 0 { ('-', -zone) } else { ('+', zone) };
            out.push_str(&format!("{sign}{:02}:{:02}", zone / 60, zone % 60));
        }
        out
    }

    /// Seconds since the Unix epoch (floor).
    pub fn unix_seconds(&self) -> i64 {
        i64::try_from(self.nanos.div_euclid(NANOS_PER_SEC)).unwrap_or(i64::MIN)
    }

    /// Nanoseconds since the Unix epoch.
    pub fn unix_nanos(&self) -> i128 {
        self.nanos
    }

    /// The UTC offset (seconds east) the time is written with.
    pub fn offset_seconds(&self) -> i32 {
        self.offset
    }

    /// Go's zero time, `0001-01-01T00:00:00Z`.
    pub fn zero() -> GoTime {
        GoTime {
            nanos: i128::from(days_from_civil(1, 1, 1)) * 86_400 * NANOS_PER_SEC,
            offset: 0,
        }
    }

    /// Whether this is Go's zero time (`Time.IsZero`).
    pub fn is_zero(&self) -> bool {
        self.nanos == GoTime::zero().nanos
    }

    /// The instant `n` nanoseconds after the Unix epoch, in UTC.
    pub fn from_unix_nanos_utc(n: i128) -> GoTime {
        GoTime {
            nanos: n,
            offset: 0,
        }
    }

    /// The instant `n` nanoseconds after the Unix epoch, written with the
    /// UTC offset `offset_seconds` (seconds east of UTC).
    pub fn from_unix_nanos_with_offset(n: i128, offset_seconds: i32) -> GoTime {
        GoTime {
            nanos: n,
            offset: offset_seconds,
        }
    }

    /// The current time in UTC.
    pub fn now_utc() -> GoTime {
        let nanos = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(0),
            Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(0),
        };
        GoTime::from_unix_nanos_utc(nanos)
    }

    /// Append the JSON string (`"…"`) Go's `Time.MarshalJSON` writes.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'"');
        out.extend_from_slice(self.to_rfc3339_nano().as_bytes());
        out.push(b'"');
    }
}

// ---------------------------------------------------------------------------
// The model.

/// `container.HealthConfig`: keys `Test`, `Interval`, `Timeout`,
/// `StartPeriod`, `Retries`, each omitted when zero/empty. Durations are
/// integer nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthConfig {
    /// `Test`: `[]` inherit, `["NONE"]`, `["CMD", …]`, `["CMD-SHELL", cmd]`.
    pub test: Vec<String>,
    /// `Interval` in nanoseconds.
    pub interval: i64,
    /// `Timeout` in nanoseconds.
    pub timeout: i64,
    /// `StartPeriod` in nanoseconds.
    pub start_period: i64,
    /// `Retries`.
    pub retries: i64,
}

impl HealthConfig {
    /// The object in Go struct order with Go's omission rules.
    pub fn write_json(&self, out: &mut Vec<u8>, html: bool) {
        let mut o = ObjectWriter::new(out, html);
        if !self.test.is_empty() {
            o.string_array("Test", Some(&self.test));
        }
        for (key, value) in [
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("Retries", self.retries),
        ] {
            if value != 0 {
                o.int(key, value);
            }
        }
        o.finish();
    }
}

/// `container.Config` (used for both `config` and `container_config`), fields
/// in Go struct order. `None` lists/maps are written as `null`; empty ones
/// as `[]` / `{}` (except the `omitempty` ones, see
/// [`ContainerConfig::write_json`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerConfig {
    /// `Hostname`.
    pub hostname: String,
    /// `Domainname`.
    pub domainname: String,
    /// `User`.
    pub user: String,
    /// `AttachStdin`.
    pub attach_stdin: bool,
    /// `AttachStdout`.
    pub attach_stdout: bool,
    /// `AttachStderr`.
    pub attach_stderr: bool,
    /// `ExposedPorts` (`"80/tcp"` → `{}`); omitted when empty.
    pub exposed_ports: Option<BTreeSet<String>>,
    /// `Tty`.
    pub tty: bool,
    /// `OpenStdin`.
    pub open_stdin: bool,
    /// `StdinOnce`.
    pub stdin_once: bool,
    /// `Env`.
    pub env: Option<Vec<String>>,
    /// `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `Healthcheck`; omitted when `None`.
    pub healthcheck: Option<HealthConfig>,
    /// `ArgsEscaped`; omitted when false.
    pub args_escaped: bool,
    /// `Image`.
    pub image: String,
    /// `Volumes` (`"/data"` → `{}`).
    pub volumes: Option<BTreeSet<String>>,
    /// `WorkingDir`.
    pub working_dir: String,
    /// `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `NetworkDisabled`; omitted when false.
    pub network_disabled: bool,
    /// `MacAddress`; omitted when empty.
    pub mac_address: String,
    /// `OnBuild`.
    pub on_build: Option<Vec<String>>,
    /// `Labels`.
    pub labels: Option<BTreeMap<String, String>>,
    /// `StopSignal`; omitted when empty.
    pub stop_signal: String,
    /// `StopTimeout` (seconds); omitted when `None`, written even if 0.
    pub stop_timeout: Option<i64>,
    /// `Shell`; omitted when `None` or empty.
    pub shell: Option<Vec<String>>,
}

fn write_set(out: &mut Vec<u8>, set: Option<&BTreeSet<String>>, html: bool) {
    match set {
        None => out.extend_from_slice(b"null"),
        Some(set) => {
            let mut o = ObjectWriter::new(out, html);
            for key in set {
                o.raw(key, b"{}");
            }
            o.finish();
        }
    }
}

impl ContainerConfig {
    /// Whether the JSON object `bytes` has a key that Go would decode into a
    /// `container.Config` field (keys fold as Go folds them). dockerd's
    /// commit body embeds `*container.Config`, which is allocated only when
    /// such a key is present: `{}` means no config at all.
    pub(crate) fn json_sets_a_field(bytes: &[u8]) -> bool {
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
            .map(|m| m.keys().any(|k| field_index(CONFIG_FIELDS, k).is_some()))
            .unwrap_or(false)
    }

    /// Decode a container config object with the same Go semantics as
    /// [`ImageConfig::from_json`] (case-insensitive keys, string-or-array
    /// `Cmd`/`Entrypoint`/`Shell`, unknown keys ignored).
    pub fn from_json(bytes: &[u8]) -> Result<ContainerConfig> {
        let doc = gojson::parse(bytes)?;
        let mut cc = ContainerConfig::default();
        let mut dec = Dec {
            doc: &doc,
            saved: None,
            st: "",
            fields: Vec::new(),
        };
        let root = doc.root();
        match &doc.node(root).kind {
            NodeKind::Object(_) => dec.container_config(root, &mut cc)?,
            NodeKind::Null => {}
            _ => dec.type_err(root, "container.Config"),
        }
        if let Some(e) = dec.saved {
            return Err(e);
        }
        Ok(cc)
    }

    /// The object in Go struct order (image-service.md §2.2 rules: which keys
    /// are omitted when empty, `null` vs `[]` / `{}`), compact; `html` as for
    /// [`gojson::write_string`].
    pub fn write_json(&self, out: &mut Vec<u8>, html: bool) {
        let mut o = ObjectWriter::new(out, html);
        o.string("Hostname", &self.hostname);
        o.string("Domainname", &self.domainname);
        o.string("User", &self.user);
        o.bool("AttachStdin", self.attach_stdin);
        o.bool("AttachStdout", self.attach_stdout);
        o.bool("AttachStderr", self.attach_stderr);
        if let Some(ports) = self.exposed_ports.as_ref().filter(|p| !p.is_empty()) {
            write_set(o.key("ExposedPorts"), Some(ports), html);
        }
        o.bool("Tty", self.tty);
        o.bool("OpenStdin", self.open_stdin);
        o.bool("StdinOnce", self.stdin_once);
        o.string_array("Env", self.env.as_deref());
        o.string_array("Cmd", self.cmd.as_deref());
        if let Some(health) = &self.healthcheck {
            health.write_json(o.key("Healthcheck"), html);
        }
        if self.args_escaped {
            o.bool("ArgsEscaped", true);
        }
        o.string("Image", &self.image);
        write_set(o.key("Volumes"), self.volumes.as_ref(), html);
        o.string("WorkingDir", &self.working_dir);
        o.string_array("Entrypoint", self.entrypoint.as_deref());
        if self.network_disabled {
            o.bool("NetworkDisabled", true);
        }
        o.string_omitempty("MacAddress", &self.mac_address);
        o.string_array("OnBuild", self.on_build.as_deref());
        match &self.labels {
            None => o.raw("Labels", b"null"),
            Some(labels) => {
                let out = o.key("Labels");
                let mut l = ObjectWriter::new(out, html);
                for (k, v) in labels {
                    l.string(k, v);
                }
                l.finish();
            }
        }
        o.string_omitempty("StopSignal", &self.stop_signal);
        if let Some(t) = self.stop_timeout {
            o.int("StopTimeout", t);
        }
        if let Some(shell) = self.shell.as_ref().filter(|s| !s.is_empty()) {
            o.string_array("Shell", Some(shell));
        }
        o.finish();
    }

    /// [`ContainerConfig::write_json`] into a new buffer.
    pub fn to_json(&self, html: bool) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_json(&mut out, html);
        out
    }
}

/// `image.RootFS`: `{"type":…,"diff_ids":[…]}` (`diff_ids` omitted when
/// empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RootFs {
    /// `type`, `layers` in practice.
    pub fs_type: String,
    /// `diff_ids`, bottom layer first.
    pub diff_ids: Vec<String>,
}

impl RootFs {
    /// The object in Go struct order.
    pub fn write_json(&self, out: &mut Vec<u8>, html: bool) {
        let mut o = ObjectWriter::new(out, html);
        o.string("type", &self.fs_type);
        if !self.diff_ids.is_empty() {
            o.string_array("diff_ids", Some(&self.diff_ids));
        }
        o.finish();
    }
}

/// One `history` entry: keys `created` (always), `author`, `created_by`,
/// `comment`, `empty_layer` (each omitted when empty/false).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// `created` (Go zero time when absent).
    pub created: GoTime,
    /// `author`.
    pub author: String,
    /// `created_by`.
    pub created_by: String,
    /// `comment`.
    pub comment: String,
    /// `empty_layer`: this step added no DiffID.
    pub empty_layer: bool,
}

impl History {
    /// The object in Go struct order.
    pub fn write_json(&self, out: &mut Vec<u8>, html: bool) {
        let mut o = ObjectWriter::new(out, html);
        self.created.write_json(o.key("created"));
        o.string_omitempty("author", &self.author);
        o.string_omitempty("created_by", &self.created_by);
        o.string_omitempty("comment", &self.comment);
        if self.empty_layer {
            o.bool("empty_layer", true);
        }
        o.finish();
    }
}

/// Docker 20.10's `image.Image` (the embedded `V1Image` fields plus
/// `parent`, `rootfs`, `history`, `os.version`, `os.features`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `id` (legacy v1 id; never set by 20.10 itself).
    pub id: String,
    /// `parent` (legacy; not the parent metadata).
    pub parent: String,
    /// `comment`.
    pub comment: String,
    /// `created`.
    pub created: GoTime,
    /// `container`.
    pub container: String,
    /// `container_config` (always written).
    pub container_config: ContainerConfig,
    /// `docker_version`.
    pub docker_version: String,
    /// `author`.
    pub author: String,
    /// `config`.
    pub config: Option<ContainerConfig>,
    /// `architecture`.
    pub architecture: String,
    /// `variant`.
    pub variant: String,
    /// `os`.
    pub os: String,
    /// `Size` (legacy, capital S).
    pub size: i64,
    /// `rootfs` (required by [`ImageConfig::from_json`]).
    pub rootfs: Option<RootFs>,
    /// `history`.
    pub history: Vec<History>,
    /// `os.version`.
    pub os_version: String,
    /// `os.features`.
    pub os_features: Vec<String>,
}

/// The legacy `image.V1Image` fields written to docker-archive `json` files
/// and hashed into v1 IDs.
struct V1Image<'a> {
    comment: &'a str,
    created: GoTime,
    container: &'a str,
    container_config: &'a ContainerConfig,
    docker_version: &'a str,
    author: &'a str,
    config: Option<&'a ContainerConfig>,
    architecture: &'a str,
    variant: &'a str,
    os: &'a str,
    size: i64,
}

impl V1Image<'_> {
    /// (key, JSON value) of the present fields after `id` and `parent`, in
    /// struct order, HTML-escaped.
    fn fields(&self) -> Vec<(&'static str, Vec<u8>)> {
        let mut f: Vec<(&'static str, Vec<u8>)> = Vec::new();
        let s = |v: &str| {
            let mut out = Vec::new();
            gojson::write_string(&mut out, v, true);
            out
        };
        if !self.comment.is_empty() {
            f.push(("comment", s(self.comment)));
        }
        let mut created = Vec::new();
        self.created.write_json(&mut created);
        f.push(("created", created));
        if !self.container.is_empty() {
            f.push(("container", s(self.container)));
        }
        f.push(("container_config", self.container_config.to_json(true)));
        if !self.docker_version.is_empty() {
            f.push(("docker_version", s(self.docker_version)));
        }
        if !self.author.is_empty() {
            f.push(("author", s(self.author)));
        }
        if let Some(config) = self.config {
            f.push(("config", config.to_json(true)));
        }
        for (key, value) in [
            ("architecture", self.architecture),
            ("variant", self.variant),
            ("os", self.os),
        ] {
            if !value.is_empty() {
                f.push((key, s(value)));
            }
        }
        if self.size != 0 {
            f.push(("Size", self.size.to_string().into_bytes()));
        }
        f
    }
}

impl ImageConfig {
    /// Read a config with Go's `image.NewFromJSON` semantics (§2.4 steps 1–3):
    /// keys matched case-insensitively, unknown keys ignored, duplicate keys
    /// applied in document order, `Cmd`/`Entrypoint`/`Shell` as a string or
    /// an array of strings.
    ///
    /// Errors (all InvalidArgument): Go's JSON syntax messages (`invalid
    /// character …`, `unexpected end of JSON input`), Go's type errors (`json:
    /// cannot unmarshal number into Go struct field Config.config.Hostname of
    /// type string`), time errors (`parsing time …`), `invalid image JSON, no
    /// RootFS key`, `too many non-empty layers in History section`.
    pub fn from_json(bytes: &[u8]) -> Result<ImageConfig> {
        ImageConfig::decode(bytes)
    }

    fn decode(bytes: &[u8]) -> Result<ImageConfig> {
        let doc = gojson::parse(bytes)?;
        let mut img = ImageConfig::default();
        let mut dec = Dec {
            doc: &doc,
            saved: None,
            st: "",
            fields: Vec::new(),
        };
        let root = doc.root();
        let result = match &doc.node(root).kind {
            NodeKind::Object(_) => dec.image(root, &mut img),
            NodeKind::Null => Ok(()),
            _ => {
                dec.type_err(root, "image.Image");
                Ok(())
            }
        };
        result?;
        if let Some(e) = dec.saved {
            return Err(e);
        }
        let Some(rootfs) = &img.rootfs else {
            return Err(Error::invalid("invalid image JSON, no RootFS key"));
        };
        let non_empty = img.history.iter().filter(|h| !h.empty_layer).count();
        if non_empty > rootfs.diff_ids.len() {
            return Err(Error::invalid(
                "too many non-empty layers in History section",
            ));
        }
        Ok(img)
    }

    /// Docker's §2.3 serialisation of a config it builds itself (import,
    /// commit, squash): Go struct encoding re-encoded with the top-level keys
    /// sorted byte-wise (`Size` first), nested objects in struct order, HTML
    /// escaping, no trailing newline. The image ID is the sha256 of these
    /// bytes.
    pub fn to_docker_json(&self) -> Vec<u8> {
        let mut entries: Vec<(&str, Vec<u8>)> = Vec::new();
        let s = |v: &str| {
            let mut out = Vec::new();
            gojson::write_string(&mut out, v, true);
            out
        };
        if !self.id.is_empty() {
            entries.push(("id", s(&self.id)));
        }
        if !self.parent.is_empty() {
            entries.push(("parent", s(&self.parent)));
        }
        let v1 = self.v1_image(self.created);
        entries.extend(v1.fields());
        if let Some(rootfs) = &self.rootfs {
            let mut out = Vec::new();
            rootfs.write_json(&mut out, true);
            entries.push(("rootfs", out));
        }
        if !self.history.is_empty() {
            let mut out = vec![b'['];
            for (i, h) in self.history.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                h.write_json(&mut out, true);
            }
            out.push(b']');
            entries.push(("history", out));
        }
        if !self.os_version.is_empty() {
            entries.push(("os.version", s(&self.os_version)));
        }
        if !self.os_features.is_empty() {
            let mut out = Vec::new();
            gojson::write_string_array(&mut out, Some(&self.os_features), true);
            entries.push(("os.features", out));
        }
        let mut out = Vec::new();
        gojson::write_sorted_object(&mut out, entries, true);
        out
    }

    /// The DiffIDs of `rootfs` (empty when there is none).
    pub fn diff_ids(&self) -> &[String] {
        self.rootfs.as_ref().map_or(&[], |r| &r.diff_ids)
    }

    /// ChainID of each DiffID prefix.
    pub fn chain_ids(&self) -> Vec<String> {
        chain_ids(self.diff_ids())
    }

    /// Inspect's `Comment`: the top-level `comment`, else the `comment` of
    /// the last history entry, else `""`.
    pub fn inspect_comment(&self) -> &str {
        if !self.comment.is_empty() {
            return &self.comment;
        }
        self.history.last().map_or("", |h| h.comment.as_str())
    }

    fn v1_image(&self, created: GoTime) -> V1Image<'_> {
        V1Image {
            comment: &self.comment,
            created,
            container: &self.container,
            container_config: &self.container_config,
            docker_version: &self.docker_version,
            author: &self.author,
            config: self.config.as_ref(),
            architecture: &self.architecture,
            variant: &self.variant,
            os: &self.os,
            size: self.size,
        }
    }
}

/// formats.md §A.4: the v1 layer directories of a `docker save` of the image
/// `config`, bottom first: (v1 ID hex = directory name, bytes of the
/// `<v1id>/json` file). `chain_ids` must be the ChainIDs of the config's
/// DiffIDs (one per layer); the result has one entry per chain ID.
pub fn v1_layers(config: &ImageConfig, chain_ids: &[String]) -> Vec<(String, Vec<u8>)> {
    let zero_cc = ContainerConfig::default();
    let mut out = Vec::with_capacity(chain_ids.len());
    let mut parent = String::new();
    for (i, chain) in chain_ids.iter().enumerate() {
        let top = i + 1 == chain_ids.len();
        let v1 = if top {
            config.v1_image(config.created)
        } else {
            V1Image {
                comment: "",
                created: GoTime::from_unix_nanos_utc(0),
                container: "",
                container_config: &zero_cc,
                docker_version: "",
                author: "",
                config: None,
                architecture: "",
                variant: "",
                os: "",
                size: 0,
            }
        };
        // The ID input: the V1Image without `id`, plus layer_id and parent,
        // re-encoded as a map (sorted keys).
        let mut entries = v1.fields();
        let mut layer_id = Vec::new();
        gojson::write_string(&mut layer_id, chain, true);
        entries.push(("layer_id", layer_id));
        if !parent.is_empty() {
            let mut p = Vec::new();
            gojson::write_string(&mut p, &format!("sha256:{parent}"), true);
            entries.push(("parent", p));
        }
        let mut id_input = Vec::new();
        gojson::write_sorted_object(&mut id_input, entries, true);
        let v1_id = crate::digest::hex_part(&sha256_digest(&id_input)).to_string();

        // The written json: id, parent (hex), the fields, `os` of the image.
        let written = V1Image {
            os: &config.os,
            ..v1
        };
        let mut json = Vec::new();
        let mut o = ObjectWriter::new(&mut json, true);
        o.string("id", &v1_id);
        o.string_omitempty("parent", &parent);
        for (key, value) in written.fields() {
            o.raw(key, &value);
        }
        o.finish();
        out.push((v1_id.clone(), json));
        parent = v1_id;
    }
    out
}

// ---------------------------------------------------------------------------
// Decoding with Go's rules.

/// Go's case-insensitive key match (`bytes.EqualFold` restricted to what can
/// equal an ASCII field name: ASCII letters fold, and U+212A KELVIN SIGN and
/// U+017F LATIN SMALL LETTER LONG S fold to `k` and `s`).
fn fold_eq(name: &str, key: &str) -> bool {
    let mut key_chars = key.chars();
    for n in name.bytes() {
        let Some(k) = key_chars.next() else {
            return false;
        };
        let ok = if k.is_ascii() {
            (k as u8).eq_ignore_ascii_case(&n)
        } else {
            (k == '\u{212a}' && n.eq_ignore_ascii_case(&b'k'))
                || (k == '\u{17f}' && n.eq_ignore_ascii_case(&b's'))
        };
        if !ok {
            return false;
        }
    }
    key_chars.next().is_none()
}

/// Index into `names` of the field a JSON key selects, if any.
fn field_index(names: &[&str], key: &str) -> Option<usize> {
    names
        .iter()
        .position(|n| *n == key)
        .or_else(|| names.iter().position(|n| fold_eq(n, key)))
}

/// Decoder state: Go's "saved error" (first type error, decoding goes on)
/// and error context (innermost struct name and the field path).
struct Dec<'d, 'a> {
    doc: &'d Doc<'a>,
    saved: Option<Error>,
    st: &'static str,
    fields: Vec<&'static str>,
}

const IMAGE_FIELDS: &[&str] = &[
    "id",
    "comment",
    "created",
    "container",
    "container_config",
    "docker_version",
    "author",
    "config",
    "architecture",
    "variant",
    "os",
    "Size",
    "parent",
    "rootfs",
    "history",
    "os.version",
    "os.features",
];

const CONFIG_FIELDS: &[&str] = &[
    "Hostname",
    "Domainname",
    "User",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ExposedPorts",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Image",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "NetworkDisabled",
    "MacAddress",
    "OnBuild",
    "Labels",
    "StopSignal",
    "StopTimeout",
    "Shell",
];

const HEALTH_FIELDS: &[&str] = &["Test", "Interval", "Timeout", "StartPeriod", "Retries"];
const ROOTFS_FIELDS: &[&str] = &["type", "diff_ids"];
const HISTORY_FIELDS: &[&str] = &["created", "author", "created_by", "comment", "empty_layer"];

impl Dec<'_, '_> {
    fn type_err_value(&mut self, value: &str, go_type: &str) {
        if self.saved.is_some() {
            return;
        }
        let msg = if self.st.is_empty() && self.fields.is_empty() {
            format!("json: cannot unmarshal {value} into Go value of type {go_type}")
        } else {
            format!(
                "json: cannot unmarshal {value} into Go struct field {}.{} of type {go_type}",
                self.st,
                self.fields.join(".")
            )
        };
        self.saved = Some(Error::invalid(msg));
    }

    fn type_err(&mut self, node: usize, go_type: &str) {
        let kind = self.doc.kind_name(node);
        self.type_err_value(kind, go_type);
    }

    /// An error returned by an `UnmarshalJSON` method (aborts decoding),
    /// with Go's error context applied.
    fn abort(&self, value: &str, go_type: &str) -> Error {
        if self.st.is_empty() && self.fields.is_empty() {
            Error::invalid(format!(
                "json: cannot unmarshal {value} into Go value of type {go_type}"
            ))
        } else {
            Error::invalid(format!(
                "json: cannot unmarshal {value} into Go struct field {}.{} of type {go_type}",
                self.st,
                self.fields.join(".")
            ))
        }
    }

    fn members(&self, node: usize) -> Vec<(String, usize)> {
        match &self.doc.node(node).kind {
            NodeKind::Object(m) => m.clone(),
            _ => Vec::new(),
        }
    }

    /// Decode the object `node` into a struct named `st` with fields
    /// `names`, calling `field(dec, index, value_node)` per known key.
    fn object<T>(
        &mut self,
        node: usize,
        st: &'static str,
        names: &'static [&'static str],
        target: &mut T,
        mut field: impl FnMut(&mut Self, usize, usize, &mut T) -> Result<()>,
    ) -> Result<()> {
        for (key, value) in self.members(node) {
            let Some(i) = field_index(names, &key) else {
                continue;
            };
            let saved_st = self.st;
            self.st = st;
            self.fields.push(names[i]);
            field(self, i, value, target)?;
            self.fields.pop();
            self.st = saved_st;
        }
        Ok(())
    }

    fn string(&mut self, node: usize, target: &mut String, go_type: &str) {
        match &self.doc.node(node).kind {
            NodeKind::String(s) => target.clone_from(s),
            NodeKind::Null => {}
            _ => self.type_err(node, go_type),
        }
    }

    fn boolean(&mut self, node: usize, target: &mut bool) {
        match &self.doc.node(node).kind {
            NodeKind::Bool(b) => *target = *b,
            NodeKind::Null => {}
            _ => self.type_err(node, "bool"),
        }
    }

    fn int(&mut self, node: usize, target: &mut i64, go_type: &str) {
        match &self.doc.node(node).kind {
            NodeKind::Number => {
                let raw = gojson::lossy_go(self.doc.raw(node));
                match raw.parse::<i64>() {
                    Ok(n) => *target = n,
                    Err(_) => self.type_err_value(&format!("number {raw}"), go_type),
                }
            }
            NodeKind::Null => {}
            _ => self.type_err(node, go_type),
        }
    }

    fn opt_int(&mut self, node: usize, target: &mut Option<i64>) {
        if self.doc.node(node).kind == NodeKind::Null {
            *target = None;
            return;
        }
        let slot = target.get_or_insert(0);
        self.int(node, slot, "int");
    }

    /// A Go slice of strings (reused like Go reuses the existing slice).
    fn string_list(
        &mut self,
        node: usize,
        target: &mut Option<Vec<String>>,
        go_type: &str,
        elem_type: &str,
    ) {
        match &self.doc.node(node).kind {
            NodeKind::Null => *target = None,
            NodeKind::Array(items) => {
                let items = items.clone();
                let list = target.get_or_insert_with(Vec::new);
                list.truncate(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    if i >= list.len() {
                        list.push(String::new());
                    }
                    self.string(item, &mut list[i], elem_type);
                }
            }
            _ => self.type_err(node, go_type),
        }
    }

    /// A plain `[]string` field that Go leaves nil only when absent: `null`
    /// clears it, which is the same as empty for an omitempty slice.
    fn vec_list(&mut self, node: usize, target: &mut Vec<String>, go_type: &str, elem: &str) {
        let mut tmp = Some(std::mem::take(target));
        self.string_list(node, &mut tmp, go_type, elem);
        *target = tmp.unwrap_or_default();
    }

    /// `strslice.StrSlice.UnmarshalJSON`: an array of strings or one string.
    fn strslice(&mut self, node: usize, target: &mut Option<Vec<String>>) -> Result<()> {
        match &self.doc.node(node).kind {
            NodeKind::Null => *target = None,
            NodeKind::String(s) => *target = Some(vec![s.clone()]),
            NodeKind::Array(items) => {
                let mut list = Vec::with_capacity(items.len());
                for &item in items {
                    match &self.doc.node(item).kind {
                        NodeKind::String(s) => list.push(s.clone()),
                        NodeKind::Null => list.push(String::new()),
                        _ => return Err(self.abort("array", "string")),
                    }
                }
                *target = Some(list);
            }
            _ => return Err(self.abort(self.doc.kind_name(node), "string")),
        }
        Ok(())
    }

    /// `map[string]struct{}` style sets (`Volumes`, `ExposedPorts`).
    fn set(&mut self, node: usize, target: &mut Option<BTreeSet<String>>, go_type: &str) {
        match &self.doc.node(node).kind {
            NodeKind::Null => *target = None,
            NodeKind::Object(members) => {
                let members = members.clone();
                let set = target.get_or_insert_with(BTreeSet::new);
                for (key, value) in members {
                    match self.doc.node(value).kind {
                        NodeKind::Object(_) | NodeKind::Null => {}
                        _ => self.type_err(value, "struct {}"),
                    }
                    set.insert(key);
                }
            }
            _ => self.type_err(node, go_type),
        }
    }

    fn labels(&mut self, node: usize, target: &mut Option<BTreeMap<String, String>>) {
        match &self.doc.node(node).kind {
            NodeKind::Null => *target = None,
            NodeKind::Object(members) => {
                let members = members.clone();
                let map = target.get_or_insert_with(BTreeMap::new);
                for (key, value) in members {
                    let mut s = String::new();
                    self.string(value, &mut s, "string");
                    map.insert(key, s);
                }
            }
            _ => self.type_err(node, "map[string]string"),
        }
    }

    /// `time.Time.UnmarshalJSON` on the raw token (Go 1.19: `null` is a
    /// no-op, anything else is parsed as `"RFC3339"`).
    fn time(&mut self, node: usize, target: &mut GoTime) -> Result<()> {
        let raw = self.doc.raw(node);
        if raw == b"null" {
            return Ok(());
        }
        *target = parse_rfc3339(raw, true)?;
        Ok(())
    }

    /// A non-pointer struct field: objects merge into it, `null` is a no-op,
    /// anything else is a type error.
    fn is_struct_value(&mut self, node: usize, go_type: &str) -> bool {
        match self.doc.node(node).kind {
            NodeKind::Object(_) => true,
            NodeKind::Null => false,
            _ => {
                self.type_err(node, go_type);
                false
            }
        }
    }

    fn image(&mut self, node: usize, img: &mut ImageConfig) -> Result<()> {
        self.object(node, "Image", IMAGE_FIELDS, img, |d, i, v, img| {
            match i {
                0 => d.string(v, &mut img.id, "string"),
                1 => d.string(v, &mut img.comment, "string"),
                2 => d.time(v, &mut img.created)?,
                3 => d.string(v, &mut img.container, "string"),
                4 => {
                    if d.is_struct_value(v, "container.Config") {
                        d.container_config(v, &mut img.container_config)?;
                    }
                }
                5 => d.string(v, &mut img.docker_version, "string"),
                6 => d.string(v, &mut img.author, "string"),
                7 => d.opt_container_config(v, &mut img.config)?,
                8 => d.string(v, &mut img.architecture, "string"),
                9 => d.string(v, &mut img.variant, "string"),
                10 => d.string(v, &mut img.os, "string"),
                11 => d.int(v, &mut img.size, "int64"),
                12 => d.string(v, &mut img.parent, "image.ID"),
                13 => d.rootfs(v, &mut img.rootfs),
                14 => d.history(v, &mut img.history)?,
                15 => d.string(v, &mut img.os_version, "string"),
                _ => d.vec_list(v, &mut img.os_features, "[]string", "string"),
            }
            Ok(())
        })
    }

    fn opt_container_config(
        &mut self,
        node: usize,
        target: &mut Option<ContainerConfig>,
    ) -> Result<()> {
        if self.doc.node(node).kind == NodeKind::Null {
            *target = None;
            return Ok(());
        }
        let cc = target.get_or_insert_with(ContainerConfig::default);
        if self.is_struct_value(node, "container.Config") {
            self.container_config(node, cc)?;
        }
        Ok(())
    }

    fn container_config(&mut self, node: usize, cc: &mut ContainerConfig) -> Result<()> {
        self.object(node, "Config", CONFIG_FIELDS, cc, |d, i, v, cc| {
            match i {
                0 => d.string(v, &mut cc.hostname, "string"),
                1 => d.string(v, &mut cc.domainname, "string"),
                2 => d.string(v, &mut cc.user, "string"),
                3 => d.boolean(v, &mut cc.attach_stdin),
                4 => d.boolean(v, &mut cc.attach_stdout),
                5 => d.boolean(v, &mut cc.attach_stderr),
                6 => d.set(v, &mut cc.exposed_ports, "nat.PortSet"),
                7 => d.boolean(v, &mut cc.tty),
                8 => d.boolean(v, &mut cc.open_stdin),
                9 => d.boolean(v, &mut cc.stdin_once),
                10 => d.string_list(v, &mut cc.env, "[]string", "string"),
                11 => d.strslice(v, &mut cc.cmd)?,
                12 => d.healthcheck(v, &mut cc.healthcheck),
                13 => d.boolean(v, &mut cc.args_escaped),
                14 => d.string(v, &mut cc.image, "string"),
                15 => d.set(v, &mut cc.volumes, "map[string]struct {}"),
                16 => d.string(v, &mut cc.working_dir, "string"),
                17 => d.strslice(v, &mut cc.entrypoint)?,
                18 => d.boolean(v, &mut cc.network_disabled),
                19 => d.string(v, &mut cc.mac_address, "string"),
                20 => d.string_list(v, &mut cc.on_build, "[]string", "string"),
                21 => d.labels(v, &mut cc.labels),
                22 => d.string(v, &mut cc.stop_signal, "string"),
                23 => d.opt_int(v, &mut cc.stop_timeout),
                _ => d.strslice(v, &mut cc.shell)?,
            }
            Ok(())
        })
    }

    fn healthcheck(&mut self, node: usize, target: &mut Option<HealthConfig>) {
        if self.doc.node(node).kind == NodeKind::Null {
            *target = None;
            return;
        }
        let hc = target.get_or_insert_with(HealthConfig::default);
        if !self.is_struct_value(node, "container.HealthConfig") {
            return;
        }
        // No field of HealthConfig aborts decoding.
        let _ = self.object(node, "HealthConfig", HEALTH_FIELDS, hc, |d, i, v, hc| {
            match i {
                0 => d.vec_list(v, &mut hc.test, "[]string", "string"),
                1 => d.int(v, &mut hc.interval, "time.Duration"),
                2 => d.int(v, &mut hc.timeout, "time.Duration"),
                3 => d.int(v, &mut hc.start_period, "time.Duration"),
                _ => d.int(v, &mut hc.retries, "int"),
            }
            Ok(())
        });
    }

    fn rootfs(&mut self, node: usize, target: &mut Option<RootFs>) {
        if self.doc.node(node).kind == NodeKind::Null {
            *target = None;
            return;
        }
        let rootfs = target.get_or_insert_with(RootFs::default);
        if !self.is_struct_value(node, "image.RootFS") {
            return;
        }
        let _ = self.object(node, "RootFS", ROOTFS_FIELDS, rootfs, |d, i, v, r| {
            match i {
                0 => d.string(v, &mut r.fs_type, "string"),
                _ => d.vec_list(v, &mut r.diff_ids, "[]layer.DiffID", "layer.DiffID"),
            }
            Ok(())
        });
    }

    fn history(&mut self, node: usize, target: &mut Vec<History>) -> Result<()> {
        let items = match &self.doc.node(node).kind {
            NodeKind::Null => {
                target.clear();
                return Ok(());
            }
            NodeKind::Array(items) => items.clone(),
            _ => {
                self.type_err(node, "[]image.History");
                return Ok(());
            }
        };
        target.truncate(items.len());
        for (i, item) in items.into_iter().enumerate() {
            if i >= target.len() {
                target.push(History::default());
            }
            if self.is_struct_value(item, "image.History") {
                self.object(
                    item,
                    "History",
                    HISTORY_FIELDS,
                    &mut target[i],
                    |d, f, v, h| {
                        match f {
                            0 => d.time(v, &mut h.created)?,
                            1 => d.string(v, &mut h.author, "string"),
                            2 => d.string(v, &mut h.created_by, "string"),
                            3 => d.string(v, &mut h.comment, "string"),
                            _ => d.boolean(v, &mut h.empty_layer),
                        }
                        Ok(())
                    },
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::collections::BTreeMap;
    use std::io::Read;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dockerd");

    /// Regular files of a fixture archive by path.
    fn archive(name: &str) -> BTreeMap<String, Vec<u8>> {
        let file = std::fs::File::open(format!("{FIXTURES}/{name}")).expect("open fixture");
        let mut ar = tar::Archive::new(file);
        let mut out = BTreeMap::new();
        for entry in ar.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry.path().expect("path").to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("read");
            out.insert(path, data);
        }
        out
    }

    /// (config file name, layer dir names) of each manifest item.
    fn manifest(files: &BTreeMap<String, Vec<u8>>) -> Vec<(String, Vec<String>)> {
        let raw = &files["manifest.json"];
        let doc = gojson::parse(raw).expect("manifest parses");
        let NodeKind::Array(items) = &doc.node(doc.root()).kind else {
            panic!("manifest is not an array");
        };
        let mut out = Vec::new();
        for &item in items {
            let NodeKind::Object(members) = &doc.node(item).kind else {
                panic!("item is not an object");
            };
            let mut config = String::new();
            let mut layers = Vec::new();
            for (key, value) in members {
                match (key.as_str(), &doc.node(*value).kind) {
                    ("Config", NodeKind::String(s)) => config = s.clone(),
                    ("Layers", NodeKind::Array(ls)) => {
                        for l in ls {
                            let NodeKind::String(s) = &doc.node(*l).kind else {
                                panic!("layer not a string");
                            };
                            layers.push(s.trim_end_matches("/layer.tar").to_owned());
                        }
                    }
                    _ => {}
                }
            }
            out.push((config, layers));
        }
        out
    }

    /// Go's `json.Compact` (for comparing with indented CLI output).
    fn compact(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut in_str, mut esc) = (false, false);
        for &b in raw {
            if in_str {
                out.push(b);
                if esc {
                    esc = false;
                } else if b == b'\\' {
                    esc = true;
                } else if b == b'"' {
                    in_str = false;
                }
            } else if !matches!(b, b' ' | b'\n' | b'\t' | b'\r') {
                if b == b'"' {
                    in_str = true;
                }
                out.push(b);
            }
        }
        out
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn chain_ids_match_spec_examples() {
        let cases: &[(&str, &[&str], &[&str])] = &[(
            "formats D",
            &[
                "sha256:f702e6d48e704fd465186fdabefee94aab518a197cbb3b2837f1c482340f31a7",
                "sha256:c25f37d16ec01690ba61b2f157e462a4408da60020efcf69df938f6dcb294d43",
                "sha256:c79becc34dee0eb9d866cb3348237d5fc3ccd6b01bf355c4b597890e3b0da0d1",
                "sha256:9ca2cc1a77a20b2e2dfd5805f988c41f8b59ed924d103c13e9fd7a6e1647afac",
            ],
            &[
                "sha256:f702e6d48e704fd465186fdabefee94aab518a197cbb3b2837f1c482340f31a7",
                "sha256:d4fe00292cd1262bc09d6301b703acb10a797e61bbebfd22acd94c1dedd0199d",
                "sha256:8bf772818f44f21ffd0e237ef8ed3e59d7bf9d19ec96772dca00e2c18641f391",
                "sha256:c59201b71c6c69affd30071385257b7723e92d25a426590cb41b8ef79d31f829",
            ],
        )];
        for (name, diffs, want) in cases {
            let diffs: Vec<String> = diffs.iter().map(|s| s.to_string()).collect();
            let got = chain_ids(&diffs);
            assert_eq!(got.len(), diffs.len(), "case {name}");
            assert_eq!(got[0], diffs[0], "case {name}");
            if !want.is_empty() {
                assert_eq!(got, *want, "case {name}");
            }
        }
        assert!(chain_ids::<String>(&[]).is_empty());
    }

    #[test]
    fn docker_built_fixture_configs_round_trip_byte_exact() {
        // Every config in every fixture was written by dockerd itself
        // (import, commit, classic builder steps), so all must round-trip.
        let mut seen = 0;
        for name in [
            "imported.tar",
            "committed.tar",
            "chain-tagged.tar",
            "chain-all.tar",
        ] {
            let files = archive(name);
            for (config_name, _) in manifest(&files) {
                let raw = &files[&config_name];
                let id = format!("sha256:{}", config_name.trim_end_matches(".json"));
                assert_eq!(sha256_digest(raw), id, "{name} {config_name}");
                let img = ImageConfig::from_json(raw).expect("config parses");
                assert_eq!(
                    text(&img.to_docker_json()),
                    text(raw),
                    "{name} {config_name}"
                );
                seen += 1;
            }
        }
        assert_eq!(seen, 1 + 1 + 1 + 6);
    }

    #[test]
    fn fixture_v1_layer_ids_and_json_files() {
        for name in [
            "imported.tar",
            "committed.tar",
            "chain-tagged.tar",
            "chain-all.tar",
        ] {
            let files = archive(name);
            for (config_name, layers) in manifest(&files) {
                let img = ImageConfig::from_json(&files[&config_name]).expect("parses");
                let v1 = v1_layers(&img, &img.chain_ids());
                let ids: Vec<&str> = v1.iter().map(|(id, _)| id.as_str()).collect();
                assert_eq!(ids, layers, "{name} {config_name}");
                for (id, json) in &v1 {
                    let want = &files[&format!("{id}/json")];
                    assert_eq!(text(json), text(want), "{name} {id}/json");
                }
            }
        }
    }

    #[test]
    fn spec_worked_examples_round_trip() {
        let examples = [
            r#"{"architecture":"amd64","comment":"my msg","config":{"Hostname":"","Domainname":"","User":"nobody","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"ExposedPorts":{"8080/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=1","B=2"],"Cmd":["/bin/sh"],"Image":"","Volumes":{"/data":{}},"WorkingDir":"/rel","Entrypoint":["/bin/sh","-c","echo"],"OnBuild":null,"Labels":{"l1":"x"}},"container_config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"created":"2026-11-28T20:30:37.816213621Z","docker_version":"20.10.24+dfsg1","history":[{"created":"2026-11-28T20:30:37.816213621Z","comment":"my msg"}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:a66b1a3b7f8b5c33d42ae47c27c95bd2ec7134b936f3a993279249f393bc8bd5"]}}"#,
            r#"{"architecture":"amd64","author":"me \u003cme@x\u003e","config":{"Hostname":"45229a6ddfab","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"ExposedPorts":{"443/udp":{},"80/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=1"],"Cmd":["/bin/sh","-c","echo hi"],"Image":"busybox","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"k":"v"}},"container":"45229a6ddfabe9f44497caa3959fd367c0d2ff8dad8ded3ab9786cfef3cd3418","container_config":{"Hostname":"45229a6ddfab","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["sh","-c","echo a\u003e/y"],"Image":"busybox","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{}},"created":"2026-11-28T20:29:01.217083725Z","docker_version":"20.10.24+dfsg1","history":[{"created":"2026-11-28T20:28:04.251482374Z","comment":"Imported from -"},{"created":"2026-11-28T20:29:01.217083725Z","author":"me \u003cme@x\u003e","created_by":"sh -c echo a\u003e/y","comment":"hello \u0026 bye","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:49af577b7c2dab143d41099d5ce448353cbe0ecd3d6b33547b45cbd336c73cc8"]}}"#,
        ];
        for (i, raw) in examples.iter().enumerate() {
            let img = ImageConfig::from_json(raw.as_bytes()).expect("parses");
            assert_eq!(text(&img.to_docker_json()), *raw, "example {i}");
        }
        let img = ImageConfig::from_json(examples[1].as_bytes()).expect("parses");
        assert_eq!(img.author, "me <me@x>");
        assert_eq!(img.history[1].comment, "hello & bye");
        assert_eq!(img.inspect_comment(), "hello & bye");
        assert_eq!(
            text(&img.container_config.to_json(false)),
            r#"{"Hostname":"45229a6ddfab","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["sh","-c","echo a>/y"],"Image":"busybox","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{}}"#
        );
    }

    #[test]
    fn inspect_fixture_config_objects() {
        for (inspect, archive_name) in [
            ("dev_imported_1.inspect.json", "imported.tar"),
            ("dev_committed_1.inspect.json", "committed.tar"),
            ("dev_chain_1.inspect.json", "chain-tagged.tar"),
        ] {
            let raw = std::fs::read(format!("{FIXTURES}/{inspect}")).expect("read inspect");
            let doc = gojson::parse(&raw).expect("inspect parses");
            let NodeKind::Array(items) = &doc.node(doc.root()).kind else {
                panic!("not an array");
            };
            let NodeKind::Object(members) = &doc.node(items[0]).kind else {
                panic!("not an object");
            };
            let get = |k: &str| {
                members
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| *v)
                    .expect("key present")
            };
            let files = archive(archive_name);
            let (config_name, _) = manifest(&files).remove(0);
            let img = ImageConfig::from_json(&files[&config_name]).expect("parses");
            assert_eq!(
                text(&img.container_config.to_json(false)),
                text(&compact(doc.raw(get("ContainerConfig")))),
                "{inspect} ContainerConfig"
            );
            let config = img.config.as_ref().expect("config present");
            assert_eq!(
                text(&config.to_json(false)),
                text(&compact(doc.raw(get("Config")))),
                "{inspect} Config"
            );
            let created = format!("\"{}\"", img.created.to_rfc3339_nano());
            assert_eq!(created.as_bytes(), doc.raw(get("Created")), "{inspect}");
            let NodeKind::String(comment) = &doc.node(get("Comment")).kind else {
                panic!("comment not a string");
            };
            assert_eq!(img.inspect_comment(), comment, "{inspect}");
        }
    }

    #[test]
    fn go_time_parse_and_format() {
        // (name, input, rfc3339nano output, unix seconds)
        let ok: &[(&str, &str, &str, i64)] = &[
            (
                "utc nanos",
                "2026-11-28T20:30:37.816213621Z",
                "2026-11-28T20:30:37.816213621Z",
                1_795_897_837,
            ),
            (
                "trailing zeros dropped",
                "2026-11-28T21:39:37.004648270Z",
                "2026-11-28T21:39:37.00464827Z",
                1_795_901_977,
            ),
            (
                "zero fraction dropped",
                "1970-01-01T00:00:00.000Z",
                "1970-01-01T00:00:00Z",
                0,
            ),
            (
                "offset kept",
                "2013-06-13T14:03:50.821769-07:00",
                "2013-06-13T14:03:50.821769-07:00",
                1_371_157_430,
            ),
            (
                "positive offset",
                "2000-01-01T00:00:00+05:30",
                "2000-01-01T00:00:00+05:30",
                946_665_000,
            ),
            (
                "plus zero is Z",
                "2000-01-01T00:00:00+00:00",
                "2000-01-01T00:00:00Z",
                946_684_800,
            ),
            (
                "comma fraction",
                "2000-01-01T00:00:00,5Z",
                "2000-01-01T00:00:00.5Z",
                946_684_800,
            ),
            (
                "more than nine digits truncated",
                "2000-01-01T00:00:00.1234567899Z",
                "2000-01-01T00:00:00.123456789Z",
                946_684_800,
            ),
            (
                "one digit hour",
                "2000-01-01T5:00:00Z",
                "2000-01-01T05:00:00Z",
                946_702_800,
            ),
            (
                "leap day",
                "2024-02-29T23:59:59Z",
                "2024-02-29T23:59:59Z",
                1_709_251_199,
            ),
            (
                "go zero",
                "0001-01-01T00:00:00Z",
                "0001-01-01T00:00:00Z",
                -62_135_596_800,
            ),
            (
                "year zero",
                "0000-01-01T00:00:00Z",
                "0000-01-01T00:00:00Z",
                -62_167_219_200,
            ),
            (
                "before epoch",
                "1969-12-31T23:59:59.5Z",
                "1969-12-31T23:59:59.5Z",
                -1,
            ),
        ];
        for (name, input, want, secs) in ok {
            let t = GoTime::parse(input).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(t.to_rfc3339_nano(), *want, "case {name}");
            assert_eq!(t.unix_seconds(), *secs, "case {name}");
        }
        let bad: &[(&str, &str, &str)] = &[
            (
                "empty",
                "",
                r#"parsing time "" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "2006""#,
            ),
            (
                "no zone",
                "2000-01-01T00:00:00",
                r#"parsing time "2000-01-01T00:00:00" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "Z07:00""#,
            ),
            (
                "month 13",
                "2000-13-01T00:00:00Z",
                r#"parsing time "2000-13-01T00:00:00Z": month out of range"#,
            ),
            (
                "feb 30",
                "2001-02-29T00:00:00Z",
                r#"parsing time "2001-02-29T00:00:00Z": day out of range"#,
            ),
            (
                "hour 24",
                "2000-01-01T24:00:00Z",
                r#"parsing time "2000-01-01T24:00:00Z": hour out of range"#,
            ),
            (
                "second 60",
                "2000-01-01T00:00:60Z",
                r#"parsing time "2000-01-01T00:00:60Z": second out of range"#,
            ),
            (
                "space separator",
                "2000-01-01 00:00:00Z",
                r#"parsing time "2000-01-01 00:00:00Z" as "2006-01-02T15:04:05Z07:00": cannot parse " 00:00:00Z" as "T""#,
            ),
            (
                "extra text",
                "2000-01-01T00:00:00Zx",
                r#"parsing time "2000-01-01T00:00:00Zx": extra text: "x""#,
            ),
            (
                "one digit month",
                "2000-1-01T00:00:00Z",
                r#"parsing time "2000-1-01T00:00:00Z" as "2006-01-02T15:04:05Z07:00": cannot parse "1-01T00:00:00Z" as "01""#,
            ),
            (
                "short offset",
                "2000-01-01T00:00:00+0100",
                r#"parsing time "2000-01-01T00:00:00+0100" as "2006-01-02T15:04:05Z07:00": cannot parse "+0100" as "Z07:00""#,
            ),
        ];
        for (name, input, want) in bad {
            let err = GoTime::parse(input).expect_err(name);
            assert_eq!(err.message(), *want, "case {name}");
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "case {name}");
        }
        assert_eq!(GoTime::zero().to_rfc3339_nano(), "0001-01-01T00:00:00Z");
        assert!(GoTime::zero().is_zero());
        assert_eq!(GoTime::default(), GoTime::zero());
        let t = GoTime::from_unix_nanos_utc(1_500_000_000_123_000_000);
        assert_eq!(t.to_rfc3339_nano(), "2017-07-14T02:40:00.123Z");
        assert_eq!(t.unix_nanos(), 1_500_000_000_123_000_000);
        let t = GoTime::from_unix_nanos_with_offset(0, 3600);
        assert_eq!(t.to_rfc3339_nano(), "1970-01-01T01:00:00+01:00");
        assert!(GoTime::now_utc().unix_seconds() > 1_700_000_000);
    }

    const MIN: &str = r#""rootfs":{"type":"layers"}"#;

    fn cfg(body: &str) -> Result<ImageConfig> {
        ImageConfig::from_json(body.as_bytes())
    }

    #[test]
    fn from_json_rejects() {
        let cases: &[(&str, String, &str)] = &[
            ("no rootfs", "{}".into(), "invalid image JSON, no RootFS key"),
            ("rootfs null", r#"{"rootfs":null}"#.into(), "invalid image JSON, no RootFS key"),
            ("top-level null", "null".into(), "invalid image JSON, no RootFS key"),
            (
                "too many non-empty layers",
                r#"{"rootfs":{"type":"layers","diff_ids":["sha256:a"]},"history":[{},{"empty_layer":false}]}"#.into(),
                "too many non-empty layers in History section",
            ),
            ("syntax", "{".into(), "unexpected end of JSON input"),
            ("syntax char", "{]".into(), "invalid character ']' looking for beginning of object key string"),
            (
                "top-level array",
                "[]".into(),
                "json: cannot unmarshal array into Go value of type image.Image",
            ),
            (
                "string field number",
                format!(r#"{{{MIN},"config":{{"Hostname":5}}}}"#),
                "json: cannot unmarshal number into Go struct field Config.config.Hostname of type string",
            ),
            (
                "size float",
                format!(r#"{{{MIN},"Size":1.5}}"#),
                "json: cannot unmarshal number 1.5 into Go struct field Image.Size of type int64",
            ),
            (
                "config array",
                format!(r#"{{{MIN},"config":[]}}"#),
                "json: cannot unmarshal array into Go struct field Image.config of type container.Config",
            ),
            (
                "env string",
                format!(r#"{{{MIN},"container_config":{{"Env":"A=1"}}}}"#),
                "json: cannot unmarshal string into Go struct field Config.container_config.Env of type []string",
            ),
            (
                "cmd number aborts",
                format!(r#"{{"Size":1.5,{MIN},"config":{{"Cmd":5}}}}"#),
                "json: cannot unmarshal number into Go struct field Config.config.Cmd of type string",
            ),
            (
                "cmd mixed array",
                format!(r#"{{{MIN},"config":{{"Cmd":["a",1]}}}}"#),
                "json: cannot unmarshal array into Go struct field Config.config.Cmd of type string",
            ),
            (
                "history bool",
                format!(r#"{{{MIN},"history":[{{"empty_layer":"yes"}}]}}"#),
                "json: cannot unmarshal string into Go struct field History.history.empty_layer of type bool",
            ),
            (
                "stop timeout string",
                format!(r#"{{{MIN},"config":{{"StopTimeout":"1"}}}}"#),
                "json: cannot unmarshal string into Go struct field Config.config.StopTimeout of type int",
            ),
            (
                "duration float",
                format!(r#"{{{MIN},"config":{{"Healthcheck":{{"Interval":1e9}}}}}}"#),
                "json: cannot unmarshal number 1e9 into Go struct field HealthConfig.config.Healthcheck.Interval of type time.Duration",
            ),
            (
                "diff id number",
                r#"{"rootfs":{"type":"layers","diff_ids":[1]}}"#.into(),
                "json: cannot unmarshal number into Go struct field RootFS.rootfs.diff_ids of type layer.DiffID",
            ),
            (
                "created number",
                format!(r#"{{{MIN},"created":5}}"#),
                r#"parsing time "5" as "\"2006-01-02T15:04:05Z07:00\"": cannot parse "5" as "\"""#,
            ),
            (
                "created escaped",
                format!(r#"{{{MIN},"created":"\u0032000-01-01T00:00:00Z"}}"#),
                r#"parsing time "\"\\u0032000-01-01T00:00:00Z\"" as "\"2006-01-02T15:04:05Z07:00\"": cannot parse "\\u0032000-01-01T00:00:00Z\"" as "2006""#,
            ),
            (
                "history created bad",
                format!(r#"{{{MIN},"history":[{{"created":"2000-01-01"}}]}}"#),
                r#"parsing time "\"2000-01-01\"" as "\"2006-01-02T15:04:05Z07:00\"": cannot parse "\"" as "T""#,
            ),
        ];
        for (name, input, want) in cases {
            let err = cfg(input).expect_err(name);
            assert_eq!(err.message(), *want, "case {name}");
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "case {name}");
        }
    }

    type Check = fn(&ImageConfig) -> bool;

    #[test]
    fn from_json_accepts_go_style() {
        // Case-insensitive keys, Kelvin sign and long s folding.
        let img = cfg(r#"{"rootFS":{"TYPE":"layers","Diff_IDs":["sha256:a"]},"ARCHITECTURE":"arm64","ſize":7,"OS":"linux","Config":{"cmd":"echo hi","ENTRYPOINT":["a","b"],"shell":"sh","WorKingDir":"/w"}}"#)
            .expect("parses");
        let rootfs = img.rootfs.as_ref().expect("rootfs");
        assert_eq!(rootfs.fs_type, "layers");
        assert_eq!(rootfs.diff_ids, ["sha256:a"]);
        assert_eq!(img.architecture, "arm64");
        assert_eq!(img.size, 7);
        let c = img.config.as_ref().expect("config");
        assert_eq!(c.cmd.as_deref(), Some(&["echo hi".to_string()][..]));
        assert_eq!(
            c.entrypoint.as_deref(),
            Some(&["a".to_string(), "b".to_string()][..])
        );
        assert_eq!(c.shell.as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(c.working_dir, "/w");

        let table: &[(&str, String, Check)] = &[
            ("unknown keys ignored", format!(r#"{{{MIN},"bogus":[1,{{}}],"layer_id":"x"}}"#), |i| i.config.is_none()),
            ("last duplicate wins", format!(r#"{{{MIN},"os":"a","OS":"b"}}"#), |i| i.os == "b"),
            ("null leaves string", format!(r#"{{{MIN},"os":"a","os":null}}"#), |i| i.os == "a"),
            ("null clears config", format!(r#"{{{MIN},"config":{{}},"config":null}}"#), |i| i.config.is_none()),
            ("duplicate objects merge", format!(r#"{{{MIN},"config":{{"User":"u"}},"config":{{"Image":"i"}}}}"#), |i| {
                i.config.as_ref().is_some_and(|c| c.user == "u" && c.image == "i")
            }),
            ("maps merge", format!(r#"{{{MIN},"config":{{"Labels":{{"a":"1"}},"Labels":{{"b":"2"}}}}}}"#), |i| {
                i.config.as_ref().and_then(|c| c.labels.as_ref()).is_some_and(|l| l.len() == 2)
            }),
            ("empty cmd array kept", format!(r#"{{{MIN},"config":{{"Cmd":[]}}}}"#), |i| {
                i.config.as_ref().is_some_and(|c| c.cmd == Some(Vec::new()))
            }),
            ("cmd null element", format!(r#"{{{MIN},"config":{{"Cmd":["a",null]}}}}"#), |i| {
                i.config.as_ref().is_some_and(|c| c.cmd == Some(vec!["a".into(), String::new()]))
            }),
            ("history empty layers counted", r#"{"rootfs":{"type":"layers","diff_ids":["sha256:a"]},"history":[{},{"empty_layer":true},{"empty_layer":true}]}"#.into(), |i| i.history.len() == 3),
            ("parent is legacy field", format!(r#"{{{MIN},"parent":"sha256:p","id":"x"}}"#), |i| i.parent == "sha256:p" && i.id == "x"),
            ("null created keeps zero", format!(r#"{{{MIN},"created":null}}"#), |i| i.created.is_zero()),
            ("stop timeout zero", format!(r#"{{{MIN},"config":{{"StopTimeout":0}}}}"#), |i| {
                i.config.as_ref().is_some_and(|c| c.stop_timeout == Some(0))
            }),
            ("volumes set", format!(r#"{{{MIN},"config":{{"Volumes":{{"/b":{{}},"/a":null}}}}}}"#), |i| {
                i.config.as_ref().and_then(|c| c.volumes.as_ref()).is_some_and(|v| v.len() == 2)
            }),
            ("no history non-empty ok", r#"{"rootfs":{"type":"layers"},"history":[{"empty_layer":true}]}"#.into(), |i| i.history[0].empty_layer),
        ];
        for (name, input, check) in table {
            let img = cfg(input).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(check(&img), "case {name}: {img:?}");
        }
    }

    #[test]
    fn container_config_write_json_rules() {
        let zero = ContainerConfig::default();
        assert_eq!(
            text(&zero.to_json(true)),
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#
        );
        let full = ContainerConfig {
            hostname: "h".into(),
            exposed_ports: Some(["80/tcp".to_string(), "443/udp".to_string()].into()),
            env: Some(Vec::new()),
            cmd: Some(vec!["a<b".into()]),
            healthcheck: Some(HealthConfig {
                test: vec!["CMD".into(), "true".into()],
                interval: 1_000_000_000,
                timeout: 0,
                start_period: 5,
                retries: 3,
            }),
            args_escaped: true,
            volumes: Some(BTreeSet::new()),
            entrypoint: Some(Vec::new()),
            network_disabled: true,
            mac_address: "02:42".into(),
            on_build: Some(vec!["RUN x".into()]),
            labels: Some(
                [
                    ("b".to_string(), "&".to_string()),
                    ("a".to_string(), String::new()),
                ]
                .into(),
            ),
            stop_signal: "SIGTERM".into(),
            stop_timeout: Some(0),
            shell: Some(vec!["sh".into()]),
            ..ContainerConfig::default()
        };
        assert_eq!(
            text(&full.to_json(false)),
            r#"{"Hostname":"h","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"ExposedPorts":{"443/udp":{},"80/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":[],"Cmd":["a<b"],"Healthcheck":{"Test":["CMD","true"],"Interval":1000000000,"StartPeriod":5,"Retries":3},"ArgsEscaped":true,"Image":"","Volumes":{},"WorkingDir":"","Entrypoint":[],"NetworkDisabled":true,"MacAddress":"02:42","OnBuild":["RUN x"],"Labels":{"a":"","b":"&"},"StopSignal":"SIGTERM","StopTimeout":0,"Shell":["sh"]}"#
        );
        let html = text(&full.to_json(true));
        assert!(html.contains(r#""Cmd":["a\u003cb"]"#), "{html}");
        assert!(html.contains(r#""b":"\u0026""#), "{html}");
        // omitempty: empty ExposedPorts / Shell, empty Healthcheck object.
        let sparse = ContainerConfig {
            exposed_ports: Some(BTreeSet::new()),
            shell: Some(Vec::new()),
            healthcheck: Some(HealthConfig::default()),
            ..ContainerConfig::default()
        };
        let got = text(&sparse.to_json(true));
        assert!(!got.contains("ExposedPorts"), "{got}");
        assert!(!got.contains("Shell"), "{got}");
        assert!(
            got.contains(r#""Cmd":null,"Healthcheck":{},"Image""#),
            "{got}"
        );
        // Round trip through the reader.
        let mut body = br#"{"rootfs":{"type":"layers"},"config":"#.to_vec();
        full.write_json(&mut body, true);
        body.push(b'}');
        let img = ImageConfig::from_json(&body).expect("parses");
        assert_eq!(img.config.as_ref(), Some(&full));
    }

    #[test]
    fn to_docker_json_key_order() {
        let img = ImageConfig {
            id: "i".into(),
            parent: "sha256:p".into(),
            size: 3,
            variant: "v8".into(),
            os_version: "10".into(),
            os_features: vec!["f".into()],
            rootfs: Some(RootFs {
                fs_type: "layers".into(),
                diff_ids: Vec::new(),
            }),
            ..ImageConfig::default()
        };
        let zero = text(&ContainerConfig::default().to_json(true));
        assert_eq!(
            text(&img.to_docker_json()),
            format!(
                r#"{{"Size":3,"container_config":{zero},"created":"0001-01-01T00:00:00Z","id":"i","os.features":["f"],"os.version":"10","parent":"sha256:p","rootfs":{{"type":"layers"}},"variant":"v8"}}"#
            )
        );
    }

    #[test]
    fn v1_layers_single_and_size() {
        // One layer: the top layer has no parent key; Size and os are part of
        // the hashed V1Image; the written json carries id first.
        let img = cfg(r#"{"rootfs":{"type":"layers","diff_ids":["sha256:a"]},"os":"linux","Size":5,"created":"2000-01-01T00:00:00Z","parent":"sha256:ignored"}"#)
            .expect("parses");
        let v1 = v1_layers(&img, &img.chain_ids());
        assert_eq!(v1.len(), 1);
        let zero = text(&ContainerConfig::default().to_json(true));
        let input = format!(
            r#"{{"Size":5,"container_config":{zero},"created":"2000-01-01T00:00:00Z","layer_id":"sha256:a","os":"linux"}}"#
        );
        assert_eq!(v1[0].0, sha256_digest(input.as_bytes())["sha256:".len()..]);
        assert_eq!(
            text(&v1[0].1),
            format!(
                r#"{{"id":"{}","created":"2000-01-01T00:00:00Z","container_config":{zero},"os":"linux","Size":5}}"#,
                v1[0].0
            )
        );
        assert!(v1_layers(&img, &[]).is_empty());
    }
}
