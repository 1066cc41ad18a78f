//! Text rendering of the docker CLI 20.10, byte for byte.
//!
//! This module owns everything the `strata` command prints the way
//! `docker images`, `docker history`, `docker rmi` and `docker image prune`
//! of the docker CLI 20.10 print it: go-units' human sizes and durations
//! (with Go's `%.*g` number formatting), Go's `text/tabwriter` elastic
//! tabstops with the CLI's settings, the CLI's ID truncation and ellipsis,
//! and the default table layouts. It is pure: callers pass plain data and a
//! `now`, and get the exact text (including the trailing newline) back.
//!
//! What it is not: a Go template engine. Only the CLI's default formats
//! (`table`, `-q`, `--no-trunc`, `--digests`, `-H=false`) are rendered.
//!
//! One deliberate difference: when an image is tagged in several
//! repositories, docker CLI 20.10 orders its rows by Go map iteration, which
//! is random from one run to the next; here rows follow the order in which
//! each repository first appears in `RepoTags` (then `RepoDigests`).
// Some renderers (system df, binary sizes) serve commands that are not wired yet.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------------------
// Go's `%.*g`
// ---------------------------------------------------------------------------

/// The decimal digits of a finite, non-zero, positive `v` correctly rounded
/// to `nd` significant digits (exact ties to even, as Go's strconv does),
/// without trailing zeros, and the decimal point position `dp` (value =
/// 0.d1d2d3... × 10^dp), like Go's internal `decimal` after `Round`.
///
/// Rust's `{:.Ne}` is exactly rounded with ties to even, so it gives the
/// digits Go's `%.*g` starts from without expanding the whole value.
fn rounded_decimal(v: f64, nd: usize) -> (Vec<u8>, i32) {
    let s = format!("{:.*e}", nd.saturating_sub(1), v);
    let (mantissa, exponent) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let exp: i32 = exponent.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    (digits, exp + 1)
}

/// Go's `fmt.Sprintf("%.*g", precision, v)` for an f64: `strconv`'s `'g'`
/// format with an explicit precision (a precision of 0 means 1), so trailing
/// zeros are dropped, `%e` is used when the exponent is below -4 or at least
/// the precision, and exponents have at least two digits (`1e+03`).
/// Infinities print as `+Inf`/`-Inf` and NaN as `NaN`, as `fmt` does.
pub fn go_format_g(v: f64, precision: usize) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let mut out = String::new();
    if v.is_sign_negative() {
        out.push('-');
    }
    let prec = precision.max(1);
    let (digits, dp) = if v == 0.0 {
        (Vec::new(), 0)
    } else {
        rounded_decimal(v.abs(), prec)
    };
    let nd = digits.len();
    let mut eprec = prec as i64;
    if eprec > nd as i64 && nd as i64 >= dp as i64 {
        eprec = nd as i64;
    }
    let exp = i64::from(dp) - 1;
    if exp < -4 || exp >= eprec {
        let p = prec.min(nd);
        format_e(&mut out, &digits, dp, p.saturating_sub(1));
    } else {
        let p = if prec as i64 > i64::from(dp) {
            nd as i64
        } else {
            prec as i64
        };
        format_f(&mut out, &digits, dp, (p - i64::from(dp)).max(0) as usize);
    }
    out
}

/// `%e` with `decimals` fractional digits, Go style (`d.ddde±XX`).
fn format_e(out: &mut String, digits: &[u8], dp: i32, decimals: usize) {
    out.push(char::from(digits.first().copied().unwrap_or(b'0')));
    if decimals > 0 {
        out.push('.');
        for i in 1..=decimals {
            out.push(char::from(digits.get(i).copied().unwrap_or(b'0')));
        }
    }
    out.push('e');
    let exp = if digits.is_empty() {
        0
    } else {
        i64::from(dp) - 1
    };
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push('0');
    }
    out.push_str(&e.to_string());
}

/// `%f` with `decimals` fractional digits, Go style.
fn format_f(out: &mut String, digits: &[u8], dp: i32, decimals: usize) {
    if dp > 0 {
        let dp = dp as usize;
        let m = digits.len().min(dp);
        for &d in &digits[..m] {
            out.push(char::from(d));
        }
        for _ in m..dp {
            out.push('0');
        }
    } else {
        out.push('0');
    }
    if decimals > 0 {
        out.push('.');
        for i in 1..=decimals as i64 {
            let j = i64::from(dp) + i - 1;
            let ch = if j >= 0 && (j as usize) < digits.len() {
                digits[j as usize]
            } else {
                b'0'
            };
            out.push(char::from(ch));
        }
    }
}

// ---------------------------------------------------------------------------
// go-units
// ---------------------------------------------------------------------------

const DECIMAL_ABBRS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_ABBRS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// go-units' getSizeAndUnit: divide by `base` while the size is at least
/// `base` and a larger unit exists.
fn size_and_unit(mut size: f64, base: f64, abbrs: &[&'static str; 9]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < abbrs.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, abbrs[i])
}

/// go-units `HumanSizeWithPrecision`: decimal units (B, kB, MB, ... YB) and
/// `%.*g` of the scaled size, no space (`"61B"`, `"1.5kB"`, `"1e+03kB"`).
pub fn human_size_with_precision(size: f64, precision: usize) -> String {
    let (size, unit) = size_and_unit(size, 1000.0, &DECIMAL_ABBRS);
    format!("{}{}", go_format_g(size, precision), unit)
}

/// go-units `HumanSize`: [`human_size_with_precision`] with precision 4.
pub fn human_size(size: f64) -> String {
    human_size_with_precision(size, 4)
}

/// go-units `BytesSize`: binary units (B, KiB, MiB, ...) with `%.4g`.
pub fn bytes_size(size: f64) -> String {
    let (size, unit) = size_and_unit(size, 1024.0, &BINARY_ABBRS);
    format!("{}{}", go_format_g(size, 4), unit)
}

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const NANOS_PER_MINUTE: i64 = 60 * NANOS_PER_SECOND;
const NANOS_PER_HOUR: i64 = 60 * NANOS_PER_MINUTE;

/// Go's `Duration.Seconds/Minutes/Hours`: whole units plus the remainder as
/// a fraction, computed the way Go does (so rounding matches).
fn go_duration_in(nanos: i64, unit: i64) -> f64 {
    (nanos / unit) as f64 + (nanos % unit) as f64 / unit as f64
}

/// go-units `HumanDuration` of a Go `time.Duration` given in nanoseconds
/// (may be negative: anything under a second is "Less than a second").
pub fn human_duration_nanos(nanos: i64) -> String {
    let seconds = go_duration_in(nanos, NANOS_PER_SECOND) as i64;
    if seconds < 1 {
        return "Less than a second".to_string();
    }
    if seconds == 1 {
        return "1 second".to_string();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = go_duration_in(nanos, NANOS_PER_MINUTE) as i64;
    if minutes == 1 {
        return "About a minute".to_string();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (go_duration_in(nanos, NANOS_PER_HOUR) + 0.5) as i64;
    if hours == 1 {
        return "About an hour".to_string();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    let whole_hours = go_duration_in(nanos, NANOS_PER_HOUR) as i64;
    format!("{} years", whole_hours / 24 / 365)
}

/// go-units `HumanDuration` (e.g. "Less than a second", "3 seconds",
/// "About a minute", "2 hours", "3 weeks", "2 years"). Durations beyond Go's
/// `time.Duration` range (about 292 years) saturate as Go's `Time.Sub` does.
pub fn human_duration(d: Duration) -> String {
    human_duration_nanos(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Go's `now.Sub(time.Unix(created, 0))` in nanoseconds, saturated to the
/// `time.Duration` range.
fn since_nanos(now: SystemTime, created_unix: i64) -> i64 {
    let now_nanos: i128 = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    let diff = now_nanos - i128::from(created_unix) * i128::from(NANOS_PER_SECOND);
    diff.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The CLI's CREATED text: `HumanDuration(now - created) + " ago"`.
pub fn created_since(now: SystemTime, created_unix: i64) -> String {
    format!(
        "{} ago",
        human_duration_nanos(since_nanos(now, created_unix))
    )
}

// ---------------------------------------------------------------------------
// Go's text/tabwriter
// ---------------------------------------------------------------------------

/// A segment of text terminated by a tab or line break: its size in bytes,
/// width in characters, and whether a horizontal tab terminated it.
#[derive(Clone, Copy, Debug, Default)]
struct Cell {
    size: usize,
    width: usize,
    htab: bool,
}

/// Go's `text/tabwriter.Writer` with flags 0 (left-aligned, no HTML
/// filtering, no escapes): elastic tabstops where tab-terminated cells in
/// contiguous lines form a column, and the trailing cell of a line (text
/// after the last tab) belongs to no column. Output accumulates internally
/// and is returned by [`TabWriter::flush`].
#[derive(Debug)]
pub struct TabWriter {
    minwidth: usize,
    tabwidth: usize,
    padding: usize,
    padchar: u8,
    buf: Vec<u8>,
    cell: Cell,
    lines: Vec<Vec<Cell>>,
    widths: Vec<usize>,
    out: Vec<u8>,
}

impl TabWriter {
    /// A writer like Go's `tabwriter.NewWriter(out, minwidth, tabwidth,
    /// padding, padchar, 0)`. The docker CLI 20.10 uses `(10, 1, 3, b' ')`.
    pub fn new(minwidth: usize, tabwidth: usize, padding: usize, padchar: u8) -> Self {
        TabWriter {
            minwidth,
            tabwidth,
            padding,
            padchar,
            buf: Vec::new(),
            cell: Cell::default(),
            lines: vec![Vec::new()],
            widths: Vec::new(),
            out: Vec::new(),
        }
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.cell = Cell::default();
        self.lines.clear();
        self.lines.push(Vec::new());
        self.widths.clear();
    }

    /// Appends `text` (whose width is its character count) to the current cell.
    fn append(&mut self, text: &str) {
        self.buf.extend_from_slice(text.as_bytes());
        self.cell.size += text.len();
        self.cell.width += text.chars().count();
    }

    fn terminate_cell(&mut self, htab: bool) -> usize {
        self.cell.htab = htab;
        let cell = std::mem::take(&mut self.cell);
        match self.lines.last_mut() {
            Some(line) => {
                line.push(cell);
                line.len()
            }
            None => {
                self.lines.push(vec![cell]);
                1
            }
        }
    }

    /// Feeds text; `\t` and `\v` end cells, `\n` and `\f` end lines. A line
    /// holding a single cell, or a `\f`, flushes what is buffered (as Go does).
    pub fn write(&mut self, text: &str) {
        let mut start = 0;
        for (i, ch) in text.char_indices() {
            if matches!(ch, '\t' | '\x0b' | '\n' | '\x0c') {
                self.append(&text[start..i]);
                start = i + 1;
                let ncells = self.terminate_cell(ch == '\t');
                if ch == '\n' || ch == '\x0c' {
                    self.lines.push(Vec::new());
                    if ch == '\x0c' || ncells == 1 {
                        self.flush_internal();
                    }
                }
            }
        }
        self.append(&text[start..]);
    }

    /// Formats everything buffered and returns all output produced since the
    /// last call (including output of implicit flushes done by `write`).
    pub fn flush(&mut self) -> String {
        self.flush_internal();
        let out = std::mem::take(&mut self.out);
        match String::from_utf8(out) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    fn flush_internal(&mut self) {
        if self.cell.size > 0 {
            self.terminate_cell(false);
        }
        let nlines = self.lines.len();
        self.format(0, 0, nlines);
        self.reset();
    }

    fn write_padding(&mut self, textw: usize, cellw: usize) {
        if self.padchar == b'\t' {
            if self.tabwidth == 0 {
                return;
            }
            let cellw = cellw.div_ceil(self.tabwidth) * self.tabwidth;
            let n = cellw.saturating_sub(textw);
            let tabs = n.div_ceil(self.tabwidth);
            self.out.extend(std::iter::repeat_n(b'\t', tabs));
            return;
        }
        let n = cellw.saturating_sub(textw);
        self.out.extend(std::iter::repeat_n(self.padchar, n));
    }

    fn write_lines(&mut self, mut pos: usize, line0: usize, line1: usize) -> usize {
        for i in line0..line1 {
            let ncells = self.lines[i].len();
            for j in 0..ncells {
                let c = self.lines[i][j];
                if c.size > 0 {
                    self.out.extend_from_slice(&self.buf[pos..pos + c.size]);
                    pos += c.size;
                }
                if j < self.widths.len() {
                    let w = self.widths[j];
                    self.write_padding(c.width, w);
                }
            }
            if i + 1 == self.lines.len() {
                // Last buffered line: no newline, just any outstanding text.
                let end = (pos + self.cell.size).min(self.buf.len());
                self.out.extend_from_slice(&self.buf[pos..end]);
                pos = end;
            } else {
                self.out.push(b'\n');
            }
        }
        pos
    }

    fn format(&mut self, pos0: usize, mut line0: usize, line1: usize) -> usize {
        let mut pos = pos0;
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 < self.lines[this].len() {
                // This line has a cell in this column: a column block begins.
                pos = self.write_lines(pos, line0, this);
                line0 = this;
                let mut width = self.minwidth;
                while this < line1 {
                    let line = &self.lines[this];
                    if column + 1 < line.len() {
                        width = width.max(line[column].width + self.padding);
                        this += 1;
                    } else {
                        break;
                    }
                }
                self.widths.push(width);
                pos = self.format(pos, line0, this);
                self.widths.pop();
                line0 = this;
                // `this` now names a line without a cell in this column (or
                // is past the end): Go's loop increment skips it, and so
                // does the next round here.
                continue;
            }
            this += 1;
        }
        self.write_lines(pos, line0, line1)
    }
}

/// Renders lines of `\t`-separated cells with the docker CLI 20.10 table
/// settings (Go tabwriter, minwidth 10, tabwidth 1, padding 3, padchar ' ').
/// Each element is one line without its newline; the result ends with `\n`.
pub fn docker_table(lines: &[String]) -> String {
    let mut tw = TabWriter::new(10, 1, 3, b' ');
    for line in lines {
        tw.write(line);
        tw.write("\n");
    }
    tw.flush()
}

// ---------------------------------------------------------------------------
// IDs and ellipsis
// ---------------------------------------------------------------------------

/// moby `stringid.TruncateID`: drop everything up to the first `:` (the
/// algorithm), then keep at most 12 bytes. `"<missing>"` stays as it is.
pub fn truncate_id(id: &str) -> String {
    let id = match id.find(':') {
        Some(i) => &id[i + 1..],
        None => id,
    };
    let mut end = id.len().min(12);
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    id[..end].to_string()
}

/// East Asian Wide and Fullwidth code point ranges (assigned characters,
/// Unicode 14), as `golang.org/x/text/width` classifies them.
const WIDE_RANGES: &[(u32, u32)] = &[
    (0x1100, 0x115F),
    (0x231A, 0x231B),
    (0x2329, 0x232A),
    (0x23E9, 0x23EC),
    (0x23F0, 0x23F0),
    (0x23F3, 0x23F3),
    (0x25FD, 0x25FE),
    (0x2614, 0x2615),
    (0x2648, 0x2653),
    (0x267F, 0x267F),
    (0x2693, 0x2693),
    (0x26A1, 0x26A1),
    (0x26AA, 0x26AB),
    (0x26BD, 0x26BE),
    (0x26C4, 0x26C5),
    (0x26CE, 0x26CE),
    (0x26D4, 0x26D4),
    (0x26EA, 0x26EA),
    (0x26F2, 0x26F3),
    (0x26F5, 0x26F5),
    (0x26FA, 0x26FA),
    (0x26FD, 0x26FD),
    (0x2705, 0x2705),
    (0x270A, 0x270B),
    (0x2728, 0x2728),
    (0x274C, 0x274C),
    (0x274E, 0x274E),
    (0x2753, 0x2755),
    (0x2757, 0x2757),
    (0x2795, 0x2797),
    (0x27B0, 0x27B0),
    (0x27BF, 0x27BF),
    (0x2B1B, 0x2B1C),
    (0x2B50, 0x2B50),
    (0x2B55, 0x2B55),
    (0x2E80, 0x2E99),
    (0x2E9B, 0x2EF3),
    (0x2F00, 0x2FD5),
    (0x2FF0, 0x2FFB),
    (0x3000, 0x303E),
    (0x3041, 0x3096),
    (0x3099, 0x30FF),
    (0x3105, 0x312F),
    (0x3131, 0x318E),
    (0x3190, 0x31E3),
    (0x31F0, 0x321E),
    (0x3220, 0x3247),
    (0x3250, 0x4DBF),
    (0x4E00, 0xA48C),
    (0xA490, 0xA4C6),
    (0xA960, 0xA97C),
    (0xAC00, 0xD7A3),
    (0xF900, 0xFA6D),
    (0xFA70, 0xFAD9),
    (0xFE10, 0xFE19),
    (0xFE30, 0xFE52),
    (0xFE54, 0xFE66),
    (0xFE68, 0xFE6B),
    (0xFF01, 0xFF60),
    (0xFFE0, 0xFFE6),
    (0x16FE0, 0x16FE4),
    (0x16FF0, 0x16FF1),
    (0x17000, 0x187F7),
    (0x18800, 0x18CD5),
    (0x18D00, 0x18D08),
    (0x1AFF0, 0x1AFF3),
    (0x1AFF5, 0x1AFFB),
    (0x1AFFD, 0x1AFFE),
    (0x1B000, 0x1B122),
    (0x1B150, 0x1B152),
    (0x1B164, 0x1B167),
    (0x1B170, 0x1B2FB),
    (0x1F004, 0x1F004),
    (0x1F0CF, 0x1F0CF),
    (0x1F18E, 0x1F18E),
    (0x1F191, 0x1F19A),
    (0x1F200, 0x1F202),
    (0x1F210, 0x1F23B),
    (0x1F240, 0x1F248),
    (0x1F250, 0x1F251),
    (0x1F260, 0x1F265),
    (0x1F300, 0x1F320),
    (0x1F32D, 0x1F335),
    (0x1F337, 0x1F37C),
    (0x1F37E, 0x1F393),
    (0x1F3A0, 0x1F3CA),
    (0x1F3CF, 0x1F3D3),
    (0x1F3E0, 0x1F3F0),
    (0x1F3F4, 0x1F3F4),
    (0x1F3F8, 0x1F43E),
    (0x1F440, 0x1F440),
    (0x1F442, 0x1F4FC),
    (0x1F4FF, 0x1F53D),
    (0x1F54B, 0x1F54E),
    (0x1F550, 0x1F567),
    (0x1F57A, 0x1F57A),
    (0x1F595, 0x1F596),
    (0x1F5A4, 0x1F5A4),
    (0x1F5FB, 0x1F64F),
    (0x1F680, 0x1F6C5),
    (0x1F6CC, 0x1F6CC),
    (0x1F6D0, 0x1F6D2),
    (0x1F6D5, 0x1F6D7),
    (0x1F6DD, 0x1F6DF),
    (0x1F6EB, 0x1F6EC),
    (0x1F6F4, 0x1F6FC),
    (0x1F7E0, 0x1F7EB),
    (0x1F7F0, 0x1F7F0),
    (0x1F90C, 0x1F93A),
    (0x1F93C, 0x1F945),
    (0x1F947, 0x1F9FF),
    (0x1FA70, 0x1FA74),
    (0x1FA78, 0x1FA7C),
    (0x1FA80, 0x1FA86),
    (0x1FA90, 0x1FAAC),
    (0x1FAB0, 0x1FABA),
    (0x1FAC0, 0x1FAC5),
    (0x1FAD0, 0x1FAD9),
    (0x1FAE0, 0x1FAE7),
    (0x1FAF0, 0x1FAF6),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B738),
    (0x2B740, 0x2B81D),
    (0x2B820, 0x2CEA1),
    (0x2CEB0, 0x2EBE0),
    (0x2F800, 0x2FA1D),
    (0x30000, 0x3134A),
];

/// Display width of a character for the CLI's `Ellipsis`: 2 for East Asian
/// Wide and Fullwidth characters, 1 for everything else.
fn char_width(c: char) -> usize {
    let cp = u32::from(c);
    let wide = WIDE_RANGES
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok();
    if wide { 2 } else { 1 }
}

/// docker/cli `formatter.Ellipsis`: truncate `s` to fit `max_display_width`
/// columns (wide characters count 2) and append `…`. A width of 0 gives
/// `""`; a width of 1 gives the first character without ellipsis (and `""`
/// for an empty string, where the CLI would panic).
pub fn ellipsis(s: &str, max_display_width: usize) -> String {
    if max_display_width == 0 {
        return String::new();
    }
    let chars: Vec<char> = s.chars().collect();
    if max_display_width == 1 {
        return chars.first().map(|c| c.to_string()).unwrap_or_default();
    }
    if s.len() == chars.len() {
        // ASCII fast path: byte length is display width.
        if s.len() <= max_display_width {
            return s.to_string();
        }
        let mut out: String = chars[..max_display_width - 1].iter().collect();
        out.push('…');
        return out;
    }
    let mut display = Vec::with_capacity(chars.len());
    let mut total = 0;
    for &c in &chars {
        total += char_width(c);
        display.push(total);
    }
    if total <= max_display_width {
        return s.to_string();
    }
    let limit = max_display_width - 1;
    for i in 0..display.len() {
        if display[i] <= limit && display.get(i + 1).is_some_and(|&next| next > limit) {
            let mut out: String = chars[..=i].iter().collect();
            out.push('…');
            return out;
        }
    }
    s.to_string()
}

// ---------------------------------------------------------------------------
// References (docker/distribution `ParseNormalizedNamed` + `FamiliarName`)
// ---------------------------------------------------------------------------

/// A parsed image reference in familiar form.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FamiliarRef {
    /// `FamiliarName`: `docker.io/` and `library/` (official images) removed.
    name: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// `reference.ParseNormalizedNamed` followed by `FamiliarName`, `Tag` and
/// `Digest`; `None` where the CLI's parse fails (the row is then skipped).
fn parse_familiar(s: &str) -> Option<FamiliarRef> {
    match parse_simple_familiar(s) {
        Some(r) => Some(r),
        None => parse_familiar_by_grammar(s),
    }
}

/// Whether `c` is a path component of the grammar: `[a-z0-9]+` runs joined
/// by one `.`, one `_`, `__`, or any number of `-`.
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let ok = match &b[start..i] {
            b"." | b"_" | b"__" => true,
            sep => sep.iter().all(|&x| x == b'-'),
        };
        if !ok {
            return false;
        }
    }
    true
}

/// The common case without the regex: a Docker Hub name (no registry host,
/// no `library/` spelled out) with a tag and no digest, which is what a
/// listing mostly holds. `None` means "not that case" (the full grammar
/// decides), never "invalid".
fn parse_simple_familiar(s: &str) -> Option<FamiliarRef> {
    if s.contains('@') {
        return None;
    }
    let (name, tag) = s.rsplit_once(':')?;
    if tag.contains('/') || name.starts_with("library/") {
        return None;
    }
    // A first component before a `/` that looks like a host is a registry.
    if let Some((first, _)) = name.split_once('/')
        && (first.contains(['.', ':']) || first == "localhost")
    {
        return None;
    }
    let tb = tag.as_bytes();
    let tag_char = |x: &u8| x.is_ascii_alphanumeric() || *x == b'_';
    if tb.is_empty()
        || tb.len() > 128
        || !tag_char(&tb[0])
        || !tb[1..]
            .iter()
            .all(|x| tag_char(x) || *x == b'.' || *x == b'-')
    {
        return None;
    }
    // The normalized name is docker.io/[library/]name: at most 255 bytes.
    let library = if name.contains('/') { 0 } else { 8 };
    if "docker.io/".len() + library + name.len() > 255 || !name.split('/').all(is_path_component) {
        return None;
    }
    Some(FamiliarRef {
        name: name.to_string(),
        tag: Some(tag.to_string()),
        digest: None,
    })
}

/// [`parse_familiar`] by docker/distribution's grammar: the library's
/// `ParseNormalizedNamed`.
fn parse_familiar_by_grammar(s: &str) -> Option<FamiliarRef> {
    let r = strata::Reference::parse_normalized_named(s).ok()?;
    Some(FamiliarRef {
        name: r.familiar_name(),
        tag: r.tag().map(str::to_owned),
        digest: r.digest().map(str::to_owned),
    })
}

// ---------------------------------------------------------------------------
// docker images
// ---------------------------------------------------------------------------

/// One image of `GET /images/json` (the fields the CLI's default formats use).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSummary {
    /// `Id`, e.g. `sha256:17d9…` (truncated to 12 hex digits unless `--no-trunc`).
    pub id: String,
    /// `RepoTags`, familiar strings like `dev/chain:1` (`null` → empty).
    pub repo_tags: Vec<String>,
    /// `RepoDigests`, like `busybox@sha256:…` (`null` → empty).
    pub repo_digests: Vec<String>,
    /// `Created`, Unix seconds.
    pub created: i64,
    /// `Size` in bytes.
    pub size: i64,
}

/// The `docker images` flags that change the default output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImagesOptions {
    /// `-q`: only IDs, one per row (an ID repeats once per tag row).
    pub quiet: bool,
    /// `--no-trunc`: full `sha256:` IDs.
    pub no_trunc: bool,
    /// `--digests`: a DIGEST column, one row per digest of a tagged repository.
    pub digests: bool,
}

/// One row of the images table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ImageRow<'a> {
    image: &'a ImageSummary,
    repo: String,
    tag: String,
    digest: String,
}

/// The CLI's `isDangling`: no tags and no digests, or exactly the
/// `<none>:<none>` / `<none>@<none>` placeholders.
fn is_dangling(image: &ImageSummary) -> bool {
    if image.repo_tags.is_empty() && image.repo_digests.is_empty() {
        return true;
    }
    image.repo_tags.len() == 1
        && image.repo_tags[0] == "<none>:<none>"
        && image.repo_digests.len() == 1
        && image.repo_digests[0] == "<none>@<none>"
}

/// Groups values by key, keys in first-appearance order.
fn push_grouped(groups: &mut Vec<(String, Vec<String>)>, key: String, value: String) {
    match groups.iter_mut().find(|(k, _)| *k == key) {
        Some((_, values)) => values.push(value),
        None => groups.push((key, vec![value])),
    }
}

/// The CLI's `imageFormatTaggedAndDigest`: one row per (repository, tag),
/// multiplied by that repository's digests when digests are shown, then
/// rows for repositories that only have digests.
fn tagged_rows<'a>(image: &'a ImageSummary, show_digests: bool) -> Vec<ImageRow<'a>> {
    let mut repo_tags: Vec<(String, Vec<String>)> = Vec::new();
    let mut repo_digests: Vec<(String, Vec<String>)> = Vec::new();
    for s in &image.repo_tags {
        if let Some(FamiliarRef {
            name,
            tag: Some(tag),
            ..
        }) = parse_familiar(s)
        {
            push_grouped(&mut repo_tags, name, tag);
        }
    }
    for s in &image.repo_digests {
        if let Some(FamiliarRef {
            name,
            digest: Some(digest),
            ..
        }) = parse_familiar(s)
        {
            push_grouped(&mut repo_digests, name, digest);
        }
    }
    let mut rows = Vec::new();
    let row = |repo: &str, tag: &str, digest: &str| ImageRow {
        image,
        repo: repo.to_string(),
        tag: tag.to_string(),
        digest: digest.to_string(),
    };
    for (repo, tags) in &repo_tags {
        let mut digests = Vec::new();
        if let Some(i) = repo_digests.iter().position(|(k, _)| k == repo) {
            // Digests of a tagged repository never get rows of their own.
            digests = repo_digests.remove(i).1;
        }
        if !show_digests {
            digests.clear();
        }
        for tag in tags {
            if digests.is_empty() {
                rows.push(row(repo, tag, "<none>"));
            }
            for digest in &digests {
                rows.push(row(repo, tag, digest));
            }
        }
    }
    for (repo, digests) in &repo_digests {
        if show_digests {
            for digest in digests {
                rows.push(row(repo, "<none>", digest));
            }
        } else {
            rows.push(row(repo, "<none>", ""));
        }
    }
    rows
}

/// The zero `time.Time` as Unix seconds: the only `Created` value for which
/// the CLI prints `N/A`.
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// `docker images` output of docker CLI 20.10 with the default format:
/// a REPOSITORY, TAG, [DIGEST,] IMAGE ID, CREATED, SIZE table (sizes as
/// `HumanSizeWithPrecision(size, 3)`), or with `quiet` one ID per row.
/// Images are rendered in the given order (the daemon's order).
pub fn render_images(images: &[ImageSummary], opts: &ImagesOptions, now: SystemTime) -> String {
    let mut rows = Vec::new();
    for image in images {
        if is_dangling(image) {
            rows.push(ImageRow {
                image,
                repo: "<none>".to_string(),
                tag: "<none>".to_string(),
                digest: "<none>".to_string(),
            });
        } else {
            rows.extend(tagged_rows(image, opts.digests));
        }
    }
    let id = |image: &ImageSummary| {
        if opts.no_trunc {
            image.id.clone()
        } else {
            truncate_id(&image.id)
        }
    };
    if opts.quiet {
        return rows.iter().map(|r| format!("{}\n", id(r.image))).collect();
    }
    let mut text = if opts.digests {
        "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tCREATED\tSIZE\n".to_string()
    } else {
        "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\n".to_string()
    };
    for r in &rows {
        let created = if r.image.created == GO_ZERO_TIME_UNIX {
            "N/A".to_string()
        } else {
            created_since(now, r.image.created)
        };
        let size = human_size_with_precision(r.image.size as f64, 3);
        text.push_str(&r.repo);
        text.push('\t');
        text.push_str(&r.tag);
        text.push('\t');
        if opts.digests {
            text.push_str(&r.digest);
            text.push('\t');
        }
        text.push_str(&format!("{}\t{created}\t{size}\n", id(r.image)));
    }
    let mut tw = TabWriter::new(10, 1, 3, b' ');
    tw.write(&text);
    tw.flush()
}

// ---------------------------------------------------------------------------
// docker history
// ---------------------------------------------------------------------------

/// One item of `GET /images/{name}/history`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryItem {
    /// `Id`: an image ID or `<missing>`.
    pub id: String,
    /// `Created`, Unix seconds.
    pub created: i64,
    /// `CreatedBy`.
    pub created_by: String,
    /// `Size` in bytes.
    pub size: i64,
    /// `Comment`.
    pub comment: String,
}

/// The `docker history` flags that change the default output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryOptions {
    /// `-q`: only IDs.
    pub quiet: bool,
    /// `--no-trunc`: full IDs and full CREATED BY.
    pub no_trunc: bool,
    /// `-H` (default true): human sizes and relative times; when false,
    /// a CREATED AT column in RFC 3339 and sizes in bytes.
    pub human: bool,
    /// Offset of the local time zone from UTC in seconds, for CREATED AT
    /// (the CLI prints local time; 0 prints `Z`).
    pub utc_offset_secs: i32,
}

impl Default for HistoryOptions {
    fn default() -> Self {
        HistoryOptions {
            quiet: false,
            no_trunc: false,
            human: true,
            utc_offset_secs: 0,
        }
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Go's `time.Unix(secs, 0).Format(time.RFC3339)` in a zone `offset`
/// seconds east of UTC (`Z` for UTC).
pub fn format_rfc3339(secs: i64, offset: i32) -> String {
    let local = secs + i64::from(offset);
    let days = local.div_euclid(86_400);
    let tod = local.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let zone = if offset == 0 {
        "Z".to_string()
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.unsigned_abs();
        format!("{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60)
    };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{zone}",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    )
}

/// `docker history` output of docker CLI 20.10 with the default format:
/// IMAGE, CREATED (or CREATED AT), CREATED BY (tabs turned into spaces,
/// ellipsized to 45 columns unless `--no-trunc`), SIZE, COMMENT; or with
/// `quiet` one ID per item.
pub fn render_history(items: &[HistoryItem], opts: &HistoryOptions, now: SystemTime) -> String {
    let id = |item: &HistoryItem| {
        if opts.no_trunc {
            item.id.clone()
        } else {
            truncate_id(&item.id)
        }
    };
    if opts.quiet {
        return items.iter().map(|i| format!("{}\n", id(i))).collect();
    }
    let mut text = if opts.human {
        "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT\n".to_string()
    } else {
        "IMAGE\tCREATED AT\tCREATED BY\tSIZE\tCOMMENT\n".to_string()
    };
    for item in items {
        let created = if opts.human {
            created_since(now, item.created)
        } else {
            format_rfc3339(item.created, opts.utc_offset_secs)
        };
        let created_by = item.created_by.replace('\t', " ");
        let created_by = if opts.no_trunc {
            created_by
        } else {
            ellipsis(&created_by, 45)
        };
        let size = if opts.human {
            human_size_with_precision(item.size as f64, 3)
        } else {
            item.size.to_string()
        };
        text.push_str(&format!(
            "{}\t{created}\t{created_by}\t{size}\t{}\n",
            id(item),
            item.comment
        ));
    }
    let mut tw = TabWriter::new(10, 1, 3, b' ');
    tw.write(&text);
    tw.flush()
}

// ---------------------------------------------------------------------------
// docker rmi / docker image prune
// ---------------------------------------------------------------------------

/// One item of an image delete or prune response (`ImageDeleteResponseItem`):
/// exactly one of the two fields is normally set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDeleteItem {
    /// `Untagged`: the reference removed.
    pub untagged: String,
    /// `Deleted`: the image ID removed.
    pub deleted: String,
}

/// `docker rmi` standard output for one image's response: `Deleted: <id>`
/// when `deleted` is set, otherwise `Untagged: <ref>`, one per line.
pub fn render_rmi(items: &[ImageDeleteItem]) -> String {
    items
        .iter()
        .map(|d| {
            if d.deleted.is_empty() {
                format!("Untagged: {}\n", d.untagged)
            } else {
                format!("Deleted: {}\n", d.deleted)
            }
        })
        .collect()
}

/// What the daemon answered for one name given to `docker rmi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RmiResult {
    /// The delete succeeded with these items.
    Removed(Vec<ImageDeleteItem>),
    /// HTTP 404: the CLI prints `Error: No such image: <name as given>`.
    NotFound {
        /// The name as given on the command line.
        name: String,
    },
    /// Any other error: the CLI prints `Error response from daemon: <message>`.
    Failed {
        /// The daemon's error message.
        message: String,
    },
}

/// Everything one `docker rmi` run prints, and its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RmiReport {
    /// Standard output: [`render_rmi`] of each successful name, in order.
    pub stdout: String,
    /// Standard error: the error messages joined by newlines, plus a newline.
    pub stderr: String,
    /// 1 when some name failed, unless `--force` was given and every failure
    /// was "not found" (then 0, with the messages still on stderr).
    pub exit_code: i32,
}

/// docker CLI 20.10's `rmi` for the daemon's answers to each name, in order.
pub fn render_rmi_command(results: &[RmiResult], force: bool) -> RmiReport {
    let mut stdout = String::new();
    let mut errors = Vec::new();
    let mut fatal = false;
    for result in results {
        match result {
            RmiResult::Removed(items) => stdout.push_str(&render_rmi(items)),
            RmiResult::NotFound { name } => errors.push(format!("Error: No such image: {name}")),
            RmiResult::Failed { message } => {
                fatal = true;
                errors.push(format!("Error response from daemon: {message}"));
            }
        }
    }
    let stderr = if errors.is_empty() {
        String::new()
    } else {
        format!("{}\n", errors.join("\n"))
    };
    let exit_code = i32::from(!errors.is_empty() && (!force || fatal));
    RmiReport {
        stdout,
        stderr,
        exit_code,
    }
}

/// The confirmation prompt `docker image prune` prints without `--force`
/// (no newline: the answer is read on the same line; only `y`/`Y` proceeds).
pub fn image_prune_prompt(all: bool) -> &'static str {
    if all {
        "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue? [y/N] "
    } else {
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
    }
}

/// `docker image prune` output: when something was deleted, `Deleted
/// Images:` then `untagged: <ref>` / `deleted: <id>` lines and a blank line;
/// always `Total reclaimed space: <HumanSize>`. As in the CLI, the reclaimed
/// space counts only when the list is non-empty.
pub fn render_image_prune(deleted: &[ImageDeleteItem], space_reclaimed: u64) -> String {
    let mut out = String::new();
    let mut reclaimed = 0;
    if !deleted.is_empty() {
        out.push_str("Deleted Images:\n");
        for d in deleted {
            if d.untagged.is_empty() {
                out.push_str(&format!("deleted: {}\n", d.deleted));
            } else {
                out.push_str(&format!("untagged: {}\n", d.untagged));
            }
        }
        out.push('\n');
        reclaimed = space_reclaimed;
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(reclaimed as f64)
    ));
    out
}

// ---------------------------------------------------------------------------
// docker system df
// ---------------------------------------------------------------------------

/// An image of `GET /system/df` (the fields the summary uses).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DfImage {
    /// `Containers`: how many containers use it (-1 when not computed).
    pub containers: i64,
    /// `VirtualSize` (-1 when not computed).
    pub virtual_size: i64,
    /// `SharedSize` (-1 when not computed).
    pub shared_size: i64,
}

/// A container of `GET /system/df`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DfContainer {
    /// `State`, e.g. `running`, `exited`.
    pub state: String,
    /// `SizeRw`.
    pub size_rw: i64,
}

/// A volume of `GET /system/df`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DfVolume {
    /// `UsageData.RefCount`.
    pub ref_count: i64,
    /// `UsageData.Size` (-1 when unknown).
    pub size: i64,
}

/// A build cache record of `GET /system/df`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DfBuildCache {
    /// `InUse`.
    pub in_use: bool,
    /// `Shared`.
    pub shared: bool,
    /// `Size`.
    pub size: i64,
}

/// The body of `GET /system/df`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// `LayersSize`: bytes used by all layers.
    pub layers_size: i64,
    /// `Images`.
    pub images: Vec<DfImage>,
    /// `Containers`.
    pub containers: Vec<DfContainer>,
    /// `Volumes`.
    pub volumes: Vec<DfVolume>,
    /// `BuildCache`.
    pub build_cache: Vec<DfBuildCache>,
}

/// `HumanSize(reclaimable)` followed by ` (P%)` when the total is positive
/// (Go integer division, truncating toward zero).
fn reclaimable_text(reclaimable: i64, total: i64) -> String {
    let size = human_size(reclaimable as f64);
    if total > 0 {
        format!(
            "{size} ({}%)",
            reclaimable
                .saturating_mul(100)
                .checked_div(total)
                .unwrap_or(0)
        )
    } else {
        size
    }
}

/// `docker system df` output of docker CLI 20.10 (not verbose): a TYPE,
/// TOTAL, ACTIVE, SIZE, RECLAIMABLE table with rows Images, Containers,
/// Local Volumes and Build Cache.
pub fn render_system_df(du: &DiskUsage) -> String {
    let mut text = String::from("TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE\n");
    let mut row = |kind: &str, total: usize, active: usize, size: String, reclaimable: String| {
        text.push_str(&format!(
            "{kind}\t{total}\t{active}\t{size}\t{reclaimable}\n"
        ));
    };

    let images_active = du.images.iter().filter(|i| i.containers > 0).count();
    let images_used: i64 = du
        .images
        .iter()
        .filter(|i| i.containers != 0 && i.virtual_size != -1 && i.shared_size != -1)
        .map(|i| i.virtual_size - i.shared_size)
        .sum();
    row(
        "Images",
        du.images.len(),
        images_active,
        human_size(du.layers_size as f64),
        reclaimable_text(du.layers_size - images_used, du.layers_size),
    );

    let is_active = |c: &DfContainer| {
        ["running", "paused", "restarting"]
            .iter()
            .any(|s| c.state.contains(s))
    };
    let containers_total: i64 = du.containers.iter().map(|c| c.size_rw).sum();
    let containers_reclaimable: i64 = du
        .containers
        .iter()
        .filter(|c| !is_active(c))
        .map(|c| c.size_rw)
        .sum();
    row(
        "Containers",
        du.containers.len(),
        du.containers.iter().filter(|c| is_active(c)).count(),
        human_size(containers_total as f64),
        reclaimable_text(containers_reclaimable, containers_total),
    );

    let sized = || du.volumes.iter().filter(|v| v.size != -1);
    let volumes_total: i64 = sized().map(|v| v.size).sum();
    let volumes_reclaimable: i64 = sized().filter(|v| v.ref_count == 0).map(|v| v.size).sum();
    row(
        "Local Volumes",
        du.volumes.len(),
        du.volumes.iter().filter(|v| v.ref_count > 0).count(),
        human_size(volumes_total as f64),
        reclaimable_text(volumes_reclaimable, volumes_total),
    );

    let builder_size: i64 = du
        .build_cache
        .iter()
        .filter(|b| !b.shared)
        .map(|b| b.size)
        .sum();
    let in_use: i64 = du
        .build_cache
        .iter()
        .filter(|b| b.in_use && !b.shared)
        .map(|b| b.size)
        .sum();
    row(
        "Build Cache",
        du.build_cache.len(),
        du.build_cache.iter().filter(|b| b.in_use).count(),
        human_size(builder_size as f64),
        human_size((builder_size - in_use) as f64),
    );

    let mut tw = TabWriter::new(10, 1, 3, b' ');
    tw.write(&text);
    tw.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::path::PathBuf;

    /// Go's digits the slow, obviously exact way: the full decimal
    /// expansion (at most 767 significant digits), then Go's `decimal.Round`
    /// (round half to even only on an exact tie).
    fn exact_rounded_decimal(v: f64, nd: usize) -> (Vec<u8>, i32) {
        let s = format!("{:.800e}", v);
        let (mantissa, exponent) = s.split_once('e').unwrap();
        let mut dp: i32 = exponent.parse::<i32>().unwrap() + 1;
        let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
        while digits.last() == Some(&b'0') {
            digits.pop();
        }
        if digits.len() > nd {
            let up = if digits[nd] == b'5' && nd + 1 == digits.len() {
                nd > 0 && (digits[nd - 1] - b'0') % 2 == 1
            } else {
                digits[nd] >= b'5'
            };
            digits.truncate(nd);
            if up {
                match digits.iter().rposition(|&d| d < b'9') {
                    Some(i) => {
                        digits[i] += 1;
                        digits.truncate(i + 1);
                    }
                    None => {
                        digits = vec![b'1'];
                        dp += 1;
                    }
                }
            }
            while digits.last() == Some(&b'0') {
                digits.pop();
            }
        }
        (digits, dp)
    }

    proptest::proptest! {
        #[test]
        fn rounded_decimal_matches_the_exact_expansion(
            bits in proptest::num::u64::ANY,
            small in 0u64..100_000_000_000,
            half in 0u32..4096,
            nd in 1usize..=17,
        ) {
            let values = [
                f64::from_bits(bits).abs(),
                small as f64,
                // Exact ties at low precision: k + 0.5, k/8 and the like.
                f64::from(half) / 8.0,
                small as f64 / 1000.0,
            ];
            for v in values {
                if v.is_finite() && v != 0.0 {
                    proptest::prop_assert_eq!(
                        rounded_decimal(v, nd),
                        exact_rounded_decimal(v, nd),
                        "{} to {} digits", v, nd
                    );
                }
            }
        }
    }

    proptest::proptest! {
        /// The fast path agrees with the grammar wherever it answers, and
        /// answers for the plain Docker Hub tags a listing is made of.
        #[test]
        fn simple_familiar_agrees_with_the_grammar(
            s in "([a-z0-9._-]{1,12}/){0,2}[a-zA-Z0-9._-]{1,12}(:[a-zA-Z0-9_.-]{0,12})?(@sha256:[0-9a-f]{64})?",
            ok in "[a-z0-9]{1,6}((-{1,3}|_|__)[a-z0-9]{1,6}){0,2}(/[a-z0-9]{1,6}([._-][a-z0-9]{1,4})?){0,2}:[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}",
        ) {
            if let Some(fast) = parse_simple_familiar(&s) {
                proptest::prop_assert_eq!(Some(fast), parse_familiar_by_grammar(&s), "{}", s);
            }
            let fast = parse_simple_familiar(&ok);
            proptest::prop_assert!(fast.is_some(), "{}", ok);
            proptest::prop_assert_eq!(fast, parse_familiar_by_grammar(&ok), "{}", ok);
        }
    }

    #[test]
    fn simple_familiar_leaves_the_rest_to_the_grammar() {
        for s in [
            "localhost/x:1",
            "reg.io/x:1",
            "reg:5000/x:1",
            "library/busybox:1",
            "busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "busybox",
            "Busybox:1",
            "a--b_.c:1",
            "a___b:1",
            "-a:1",
            "a:.1",
        ] {
            assert_eq!(parse_simple_familiar(s), None, "{s}");
        }
        let long = format!("{}:1", "a".repeat(238));
        assert_eq!(parse_simple_familiar(&long), None);
        assert_eq!(parse_familiar_by_grammar(&long), None);
        let fits = format!("{}:1", "a".repeat(237));
        assert!(parse_simple_familiar(&fits).is_some());
        assert_eq!(
            parse_simple_familiar(&fits),
            parse_familiar_by_grammar(&fits)
        );
    }

    #[test]
    fn go_format_g_cases() {
        let cases: &[(&str, f64, usize, &str)] = &[
            ("zero", 0.0, 3, "0"),
            ("negative zero", -0.0, 3, "-0"),
            ("integer fits", 61.0, 3, "61"),
            ("integer at precision", 999.0, 3, "999"),
            ("rounds to 1e+03", 999.5, 3, "1e+03"),
            ("exact tie rounds to even (down)", 1.125, 3, "1.12"),
            ("exact tie rounds to even (up)", 1.375, 3, "1.38"),
            ("just below tie", 999.4999, 3, "999"),
            ("fraction", 1.5, 3, "1.5"),
            ("trailing zeros dropped", 1.10, 4, "1.1"),
            ("precision 4", 123.456, 4, "123.5"),
            ("small uses f", 0.0001234, 3, "0.000123"),
            ("smaller uses e", 0.00001234, 3, "1.23e-05"),
            ("large e", 1.5e300, 3, "1.5e+300"),
            ("precision 0 means 1", 25.0, 0, "2e+01"),
            ("precision 1", 7.0, 1, "7"),
            ("negative", -1234.5, 3, "-1.23e+03"),
            ("100 stays f", 100.0, 3, "100"),
            ("1000 goes e", 1000.0, 3, "1e+03"),
            ("e with decimals", 123456.0, 3, "1.23e+05"),
            ("many digits", 0.1, 17, "0.10000000000000001"),
            ("inf", f64::INFINITY, 3, "+Inf"),
            ("-inf", f64::NEG_INFINITY, 3, "-Inf"),
            ("nan", f64::NAN, 3, "NaN"),
        ];
        for (name, v, p, want) in cases {
            assert_eq!(go_format_g(*v, *p), *want, "case {name}");
        }
    }

    #[test]
    fn human_size_cases() {
        let cases: &[(&str, f64, usize, &str)] = &[
            ("zero", 0.0, 4, "0B"),
            ("bytes", 999.0, 4, "999B"),
            ("one kB", 1000.0, 4, "1kB"),
            ("kB precision 4", 1234.0, 4, "1.234kB"),
            ("MB", 123456789.0, 4, "123.5MB"),
            ("1e+03kB", 999500.0, 3, "1e+03kB"),
            ("precision 3", 1234567.0, 3, "1.23MB"),
            ("YB caps", 1e30, 4, "1e+06YB"),
            ("negative stays B", -5.0, 4, "-5B"),
        ];
        for (name, v, p, want) in cases {
            assert_eq!(human_size_with_precision(*v, *p), *want, "case {name}");
        }
        assert_eq!(human_size(2746000.0), "2.746MB");
        let binary: &[(&str, f64, &str)] = &[
            ("bytes", 1023.0, "1023B"),
            ("KiB", 1024.0, "1KiB"),
            ("MiB", 1048576.0 * 1.5, "1.5MiB"),
            ("GiB rounding", 1073741824.0 * 1023.99, "1024GiB"),
            ("TiB rounding", 1024.0_f64.powi(4) * 1023.99, "1024TiB"),
            ("PiB", 1024.0_f64.powi(5) * 10.0, "10PiB"),
        ];
        for (name, v, want) in binary {
            assert_eq!(bytes_size(*v), *want, "case {name}");
        }
    }

    #[test]
    fn human_duration_cases() {
        let s = NANOS_PER_SECOND;
        let h = NANOS_PER_HOUR;
        let cases: &[(&str, i64, &str)] = &[
            ("negative", -5 * s, "Less than a second"),
            ("zero", 0, "Less than a second"),
            ("just under a second", s - 1, "Less than a second"),
            ("one second", s, "1 second"),
            ("seconds", 59 * s + s / 2, "59 seconds"),
            ("a minute", 60 * s, "About a minute"),
            ("almost two minutes", 119 * s, "About a minute"),
            ("minutes", 59 * 60 * s + 59 * s, "59 minutes"),
            ("an hour", h, "About an hour"),
            ("an hour and 29", h + 29 * 60 * s, "About an hour"),
            ("rounds to 2 hours", h + 30 * 60 * s, "2 hours"),
            ("47 hours", 47 * h, "47 hours"),
            ("47.5 hours is 2 days", 47 * h + h / 2, "2 days"),
            ("13 days", 13 * 24 * h, "13 days"),
            ("2 weeks", 14 * 24 * h, "2 weeks"),
            ("8 weeks", 59 * 24 * h, "8 weeks"),
            ("2 months", 60 * 24 * h, "2 months"),
            ("24 months", 729 * 24 * h, "24 months"),
            ("2 years", 730 * 24 * h, "2 years"),
            ("max", i64::MAX, "292 years"),
        ];
        for (name, n, want) in cases {
            assert_eq!(human_duration_nanos(*n), *want, "case {name}");
        }
        assert_eq!(human_duration(Duration::from_secs(3)), "3 seconds");
        assert_eq!(human_duration(Duration::MAX), "292 years");
    }

    #[test]
    fn tabwriter_cases() {
        let cases: &[(&str, &str, &str)] = &[
            ("empty", "", ""),
            ("no tabs", "abc\n", "abc\n"),
            (
                "trailing cell not a column",
                "a\tb\naaaa\tbb\n",
                "a      b\naaaa   bb\n",
            ),
            ("minwidth applies", "a\tb\n", "a      b\n"),
            ("empty trailing cell pads column", "ab\t\n", "ab     \n"),
            ("no final newline", "a\tb", "a      b"),
            // Go's doc example: b and c are in different column blocks.
            (
                "column blocks",
                "aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n",
                "aaaa   bbb    d\naa     b      dd\na      \naa     cccc   eee\n",
            ),
            (
                "single-cell line splits blocks",
                "a\tb\n\nccccc\td\n",
                "a      b\n\nccccc   d\n",
            ),
            (
                "unicode counts runes",
                "é\tx\nab\ty\n",
                "é      x\nab     y\n",
            ),
        ];
        for (name, input, want) in cases {
            let mut tw = TabWriter::new(7, 1, 3, b' ');
            tw.write(input);
            assert_eq!(tw.flush(), *want, "case {name}");
        }
        // Split writes give the same result as one write.
        let mut tw = TabWriter::new(7, 1, 3, b' ');
        for piece in ["aa", "aa\tb", "bb\td\na", "a\tb\td", "d\n"] {
            tw.write(piece);
        }
        assert_eq!(tw.flush(), "aaaa   bbb    d\naa     b      dd\n");
        // Tab padding rounds cells up to tab stops.
        let mut tw = TabWriter::new(0, 8, 1, b'\t');
        tw.write("a\tb\nabcdefgh\tc\n");
        assert_eq!(tw.flush(), "a\t\tb\nabcdefgh\tc\n");
    }

    #[test]
    fn docker_table_uses_cli_settings() {
        let lines = vec!["REPOSITORY\tTAG".to_string(), "a\t1".to_string()];
        assert_eq!(docker_table(&lines), "REPOSITORY   TAG\na            1\n");
    }

    #[test]
    fn truncate_id_cases() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "sha256",
                "sha256:17d9e0c043f938644efebd9f8d4b4fae42cfd1b0",
                "17d9e0c043f9",
            ),
            ("no algorithm", "17d9e0c043f938644efebd9f", "17d9e0c043f9"),
            ("missing", "<missing>", "<missing>"),
            ("short", "sha256:abc", "abc"),
            ("empty", "", ""),
        ];
        for (name, id, want) in cases {
            assert_eq!(truncate_id(id), *want, "case {name}");
        }
    }

    #[test]
    fn ellipsis_cases() {
        let cases: &[(&str, &str, usize, &str)] = &[
            ("zero width", "abc", 0, ""),
            ("width one", "abc", 1, "a"),
            ("width one empty", "", 1, ""),
            ("ascii fits", "abc", 3, "abc"),
            ("ascii cut", "abcd", 3, "ab…"),
            ("wide fits", "日本語", 6, "日本語"),
            ("wide cut", "日本語", 5, "日本…"),
            ("wide cut odd", "日本語x", 6, "日本…"),
            ("wide first char too wide", "日本", 2, "日本"),
            ("narrow non-ascii", "cafés", 4, "caf…"),
        ];
        for (name, s, w, want) in cases {
            assert_eq!(ellipsis(s, *w), *want, "case {name}");
        }
    }

    #[test]
    fn parse_familiar_cases() {
        let d = format!("sha256:{}", "a1".repeat(32));
        /// (familiar name, tag, has a digest), or None when the parse fails.
        type Want = Option<(&'static str, Option<&'static str>, bool)>;
        let cases: Vec<(&str, String, Want)> = vec![
            (
                "tagged",
                "dev/chain:1".into(),
                Some(("dev/chain", Some("1"), false)),
            ),
            (
                "official full",
                "docker.io/library/nginx:1".into(),
                Some(("nginx", Some("1"), false)),
            ),
            (
                "index host",
                "index.docker.io/foo/bar:2".into(),
                Some(("foo/bar", Some("2"), false)),
            ),
            (
                "registry port",
                "localhost:5000/x:y".into(),
                Some(("localhost:5000/x", Some("y"), false)),
            ),
            (
                "digest",
                format!("busybox@{d}"),
                Some(("busybox", None, true)),
            ),
            (
                "name only",
                "onlyname".into(),
                Some(("onlyname", None, false)),
            ),
            ("uppercase", "Bad:1".into(), None),
            ("placeholder", "<none>:<none>".into(), None),
            ("bad digest", "a@sha256:abc".into(), None),
            ("hex id", "a1".repeat(32), None),
        ];
        for (name, input, want) in cases {
            let got = parse_familiar(&input);
            match want {
                None => assert_eq!(got, None, "case {name}"),
                Some((n, tag, has_digest)) => {
                    let got = got.unwrap_or_else(|| panic!("case {name}: no parse"));
                    assert_eq!(got.name, n, "case {name}");
                    assert_eq!(got.tag.as_deref(), tag, "case {name}");
                    assert_eq!(got.digest.is_some(), has_digest, "case {name}");
                }
            }
        }
    }

    #[test]
    fn rfc3339_cases() {
        let cases: &[(&str, i64, i32, &str)] = &[
            ("epoch", 0, 0, "1970-01-01T00:00:00Z"),
            ("fixture", 1795901980, 0, "2026-11-28T21:39:40Z"),
            ("east", 0, 3600 + 1800, "1970-01-01T01:30:00+01:30"),
            ("west", 0, -7200, "1969-12-31T22:00:00-02:00"),
            ("leap day", 951782400, 0, "2000-02-29T00:00:00Z"),
        ];
        for (name, secs, off, want) in cases {
            assert_eq!(format_rfc3339(*secs, *off), *want, "case {name}");
        }
    }

    #[test]
    fn prune_and_rmi_text() {
        let items = vec![
            ImageDeleteItem {
                untagged: "a:1".into(),
                deleted: String::new(),
            },
            ImageDeleteItem {
                untagged: String::new(),
                deleted: "sha256:x".into(),
            },
        ];
        assert_eq!(render_rmi(&items), "Untagged: a:1\nDeleted: sha256:x\n");
        assert_eq!(
            render_image_prune(&items, 1500),
            "Deleted Images:\nuntagged: a:1\ndeleted: sha256:x\n\nTotal reclaimed space: 1.5kB\n"
        );
        assert_eq!(render_image_prune(&[], 1500), "Total reclaimed space: 0B\n");
        let report = render_rmi_command(
            &[
                RmiResult::NotFound { name: "x".into() },
                RmiResult::Removed(items.clone()),
            ],
            true,
        );
        assert_eq!(report.exit_code, 0);
        assert_eq!(report.stderr, "Error: No such image: x\n");
        let report = render_rmi_command(
            &[RmiResult::Failed {
                message: "m".into(),
            }],
            true,
        );
        assert_eq!(report.exit_code, 1);
        assert_eq!(report.stderr, "Error response from daemon: m\n");
        let report = render_rmi_command(&[RmiResult::Removed(items)], false);
        assert_eq!((report.exit_code, report.stderr.as_str()), (0, ""));
    }

    // ---- comparisons with outputs recorded from the real docker CLI 20.10 ----

    /// The recorded cases: in strata at tests/fixtures/cli20, in the scratch
    /// crate at testdata.
    fn fixture_dir() -> PathBuf {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        for dir in [root.join("tests/fixtures/cli20"), root.join("testdata")] {
            if dir.join("cli").is_dir() {
                return dir;
            }
        }
        panic!("no CLI 20.10 fixtures found under {}", root.display());
    }

    fn strings(v: &Value) -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn text(v: &Value) -> String {
        v.as_str().unwrap_or_default().to_string()
    }

    /// Renders one recorded case with this module: (stdout, stderr, exit code).
    fn render_case(case: &Value) -> (String, String, i32) {
        let args = strings(&case["args"]);
        let flags: Vec<&str> = args
            .iter()
            .map(String::as_str)
            .filter(|a| a.starts_with('-'))
            .collect();
        let names: Vec<&str> = args[1..]
            .iter()
            .map(String::as_str)
            .filter(|a| !a.starts_with('-'))
            .collect();
        let has = |f: &str| flags.contains(&f);
        // The CLI's clock read between now and now + 1 s (see capture.py).
        let now =
            UNIX_EPOCH + Duration::from_millis(case["now"].as_u64().unwrap_or(0) * 1000 + 300);
        let responses = &case["responses"];
        match args[0].as_str() {
            "images" => {
                let body = responses["GET /images/json"]["body"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let images: Vec<ImageSummary> = body
                    .iter()
                    .map(|i| ImageSummary {
                        id: text(&i["Id"]),
                        repo_tags: strings(&i["RepoTags"]),
                        repo_digests: strings(&i["RepoDigests"]),
                        created: i["Created"].as_i64().unwrap_or(0),
                        size: i["Size"].as_i64().unwrap_or(0),
                    })
                    .collect();
                let opts = ImagesOptions {
                    quiet: has("-q"),
                    no_trunc: has("--no-trunc"),
                    digests: has("--digests"),
                };
                (render_images(&images, &opts, now), String::new(), 0)
            }
            "history" => {
                let key = format!("GET /images/{}/history", names[0]);
                let body = responses[key.as_str()]["body"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let items: Vec<HistoryItem> = body
                    .iter()
                    .map(|h| HistoryItem {
                        id: text(&h["Id"]),
                        created: h["Created"].as_i64().unwrap_or(0),
                        created_by: text(&h["CreatedBy"]),
                        size: h["Size"].as_i64().unwrap_or(0),
                        comment: text(&h["Comment"]),
                    })
                    .collect();
                let opts = HistoryOptions {
                    quiet: has("-q"),
                    no_trunc: has("--no-trunc"),
                    human: !has("-H=false"),
                    utc_offset_secs: 0,
                };
                (render_history(&items, &opts, now), String::new(), 0)
            }
            "rmi" => {
                let results: Vec<RmiResult> = names
                    .iter()
                    .map(|name| {
                        let r = &responses[format!("DELETE /images/{name}").as_str()];
                        match r["status"].as_i64().unwrap_or(200) {
                            200 => RmiResult::Removed(delete_items(&r["body"])),
                            404 => RmiResult::NotFound {
                                name: name.to_string(),
                            },
                            _ => RmiResult::Failed {
                                message: text(&r["body"]["message"]),
                            },
                        }
                    })
                    .collect();
                let report = render_rmi_command(&results, has("-f"));
                (report.stdout, report.stderr, report.exit_code)
            }
            "image" if args[1] == "prune" => {
                let mut out = String::new();
                let mut confirmed = true;
                if !has("-f") {
                    out.push_str(image_prune_prompt(has("-a")));
                    let answer = text(&case["stdin"]);
                    confirmed = answer.lines().next().unwrap_or("").to_lowercase() == "y";
                }
                let body = &responses["POST /images/prune"]["body"];
                if confirmed {
                    let items = delete_items(&body["ImagesDeleted"]);
                    out.push_str(&render_image_prune(
                        &items,
                        body["SpaceReclaimed"].as_u64().unwrap_or(0),
                    ));
                } else {
                    out.push_str(&render_image_prune(&[], 0));
                }
                (out, String::new(), 0)
            }
            "system" if args[1] == "df" => {
                let body = &responses["GET /system/df"]["body"];
                let list = |k: &str| body[k].as_array().cloned().unwrap_or_default();
                let du = DiskUsage {
                    layers_size: body["LayersSize"].as_i64().unwrap_or(0),
                    images: list("Images")
                        .iter()
                        .map(|i| DfImage {
                            containers: i["Containers"].as_i64().unwrap_or(0),
                            virtual_size: i["VirtualSize"].as_i64().unwrap_or(0),
                            shared_size: i["SharedSize"].as_i64().unwrap_or(0),
                        })
                        .collect(),
                    containers: list("Containers")
                        .iter()
                        .map(|c| DfContainer {
                            state: text(&c["State"]),
                            size_rw: c["SizeRw"].as_i64().unwrap_or(0),
                        })
                        .collect(),
                    volumes: list("Volumes")
                        .iter()
                        .map(|v| DfVolume {
                            ref_count: v["UsageData"]["RefCount"].as_i64().unwrap_or(0),
                            size: v["UsageData"]["Size"].as_i64().unwrap_or(0),
                        })
                        .collect(),
                    build_cache: list("BuildCache")
                        .iter()
                        .map(|b| DfBuildCache {
                            in_use: b["InUse"].as_bool().unwrap_or(false),
                            shared: b["Shared"].as_bool().unwrap_or(false),
                            size: b["Size"].as_i64().unwrap_or(0),
                        })
                        .collect(),
                };
                (render_system_df(&du), String::new(), 0)
            }
            other => panic!("unknown command {other}"),
        }
    }

    fn delete_items(v: &Value) -> Vec<ImageDeleteItem> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|d| ImageDeleteItem {
                        untagged: text(&d["Untagged"]),
                        deleted: text(&d["Deleted"]),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether some image in the case has tags in several repositories, so
    /// that docker's row order (Go map iteration) was random.
    fn random_row_order(case: &Value) -> bool {
        let body = case["responses"]["GET /images/json"]["body"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        body.iter().any(|i| {
            let mut repos: Vec<String> = strings(&i["RepoTags"])
                .iter()
                .map(|t| {
                    t.rsplit_once(':')
                        .map(|(r, _)| r.to_string())
                        .unwrap_or_default()
                })
                .collect();
            repos.sort();
            repos.dedup();
            repos.len() > 1
        })
    }

    #[test]
    fn matches_recorded_cli_20_10_output() {
        let dir = fixture_dir().join("cli");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("read fixture dir")
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".json"))
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        assert!(
            names.len() >= 20,
            "expected the recorded cases, found {names:?}"
        );
        for name in names {
            let read = |ext: &str| {
                std::fs::read_to_string(dir.join(format!("{name}.{ext}"))).expect("fixture")
            };
            let case: Value = serde_json::from_str(&read("json")).expect("case json");
            let (stdout, stderr, rc) = render_case(&case);
            let (want_out, want_err) = (read("stdout"), read("stderr"));
            if random_row_order(&case) {
                // Same header and widths, rows in any order.
                let sorted = |s: &str| {
                    let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
                    lines[1..].sort();
                    lines
                };
                assert_eq!(sorted(&stdout), sorted(&want_out), "case {name}");
            } else {
                assert_eq!(stdout, want_out, "case {name}: stdout");
            }
            assert_eq!(stderr, want_err, "case {name}: stderr");
            assert_eq!(
                i64::from(rc),
                case["rc"].as_i64().unwrap_or(-1),
                "case {name}: exit code"
            );
        }
    }
}
