//! JSON the way Go 1.19's `encoding/json` reads and writes it.
//!
//! This module owns byte-level JSON compatibility with dockerd 20.10.24
//! (built with Go 1.19.8):
//!
//! * [`write_string`] / [`write_bytes_string`]: Go's string escaping, with or
//!   without HTML escaping (stored configs escape `<`, `>`, `&`; API
//!   responses do not).
//! * [`ObjectWriter`]: emit a compact object with keys in a fixed order (Go
//!   struct order), plus [`write_sorted_object`] for Go's map encoding (keys
//!   sorted byte-wise).
//! * [`parse`]: a syntax check and parse with Go's exact syntax error
//!   messages (`invalid character 'x' looking for beginning of value`,
//!   `unexpected end of JSON input`, ...). The result is a flat [`Doc`]
//!   (an arena of [`Node`]s that keeps object keys in document order,
//!   duplicates included, and each value's byte span), so that callers can
//!   apply Go's decoding rules (case-insensitive keys, last duplicate wins,
//!   `UnmarshalJSON` on raw bytes). Strings are decoded like Go: invalid
//!   UTF-8 bytes and unpaired surrogate escapes become U+FFFD.
//!
//! It is not a general JSON library: no serde integration, no pretty printing.

use crate::error::{Error, Result};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Write `s` as a JSON string literal (with the quotes) the way Go 1.19's
/// encoding/json does.
///
/// `html` = true escapes `<`, `>`, `&` as `\u003c`, `\u003e`, `\u0026` (stored
/// configs, v1 json files); false leaves them (API responses). Always: `\"`,
/// `\\`, `\n`, `\r`, `\t`, every other byte below 0x20 as `\u00xx` (lowercase
/// hex), U+2028/U+2029 as `\u2028`/`\u2029`. `/`, DEL and non-ASCII are
/// written as they are.
pub fn write_string(out: &mut Vec<u8>, s: &str, html: bool) {
    write_bytes_string(out, s.as_bytes(), html);
}

/// [`write_string`] for arbitrary bytes: each byte that is not part of valid
/// UTF-8 is written as the escape `\ufffd`, as Go does.
pub fn write_bytes_string(out: &mut Vec<u8>, s: &[u8], html: bool) {
    out.push(b'"');
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            match b {
                b'"' | b'\\' => {
                    out.push(b'\\');
                    out.push(b);
                }
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'<' | b'>' | b'&' if html => push_u00(out, b),
                0..=0x1f => push_u00(out, b),
                _ => out.push(b),
            }
            i += 1;
            continue;
        }
        let (c, size) = decode_rune(&s[i..]);
        match c {
            None => out.extend_from_slice(b"\\ufffd"),
            Some('\u{2028}') => out.extend_from_slice(b"\\u2028"),
            Some('\u{2029}') => out.extend_from_slice(b"\\u2029"),
            Some(_) => out.extend_from_slice(&s[i..i + size]),
        }
        i += size;
    }
    out.push(b'"');
}

fn push_u00(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(b"\\u00");
    out.push(HEX[usize::from(b >> 4)]);
    out.push(HEX[usize::from(b & 0xf)]);
}

/// Decode one UTF-8 sequence at the start of `s` the way Go's
/// `utf8.DecodeRune` does: `(None, 1)` for an invalid byte.
fn decode_rune(s: &[u8]) -> (Option<char>, usize) {
    let Some(&b0) = s.first() else {
        return (None, 0);
    };
    let len = match b0 {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return (None, 1),
    };
    if s.len() < len {
        return (None, 1);
    }
    match std::str::from_utf8(&s[..len]) {
        Ok(text) => (text.chars().next(), len),
        Err(_) => (None, 1),
    }
}

/// Convert bytes to a `String` the way Go's decoder treats string contents:
/// every byte that is not part of valid UTF-8 becomes one U+FFFD.
pub fn lossy_go(s: &[u8]) -> String {
    match std::str::from_utf8(s) {
        Ok(text) => text.to_owned(),
        Err(_) => {
            let mut out = String::with_capacity(s.len() + 8);
            let mut i = 0;
            while i < s.len() {
                let (c, size) = decode_rune(&s[i..]);
                out.push(c.unwrap_or('\u{fffd}'));
                i += size.max(1);
            }
            out
        }
    }
}

/// Write a JSON array of strings; `None` is written as `null` (Go's nil
/// slice), `Some(&[])` as `[]`.
pub fn write_string_array(out: &mut Vec<u8>, items: Option<&[String]>, html: bool) {
    match items {
        None => out.extend_from_slice(b"null"),
        Some(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, item, html);
            }
            out.push(b']');
        }
    }
}

/// Write a Go map encoding: `{"key":<raw value>,...}` with keys sorted
/// byte-wise (Go's `map[string]T` order). The values must already be JSON.
pub fn write_sorted_object(out: &mut Vec<u8>, mut entries: Vec<(&str, Vec<u8>)>, html: bool) {
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut obj = ObjectWriter::new(out, html);
    for (key, value) in &entries {
        obj.raw(key, value);
    }
    obj.finish();
}

/// Builder for a compact JSON object whose keys come out in the order they
/// are added (Go struct order). Created with [`ObjectWriter::new`] (writes
/// `{`), closed with [`ObjectWriter::finish`] (writes `}`).
pub struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    html: bool,
}

impl<'a> ObjectWriter<'a> {
    /// Start an object in `out`; `html` selects HTML escaping of keys and
    /// string values written through this builder.
    pub fn new(out: &'a mut Vec<u8>, html: bool) -> ObjectWriter<'a> {
        out.push(b'{');
        ObjectWriter {
            out,
            first: true,
            html,
        }
    }

    /// Write the key (and the separator before it) and return the buffer so
    /// the caller writes exactly one JSON value next.
    pub fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_string(self.out, key, self.html);
        self.out.push(b':');
        self.out
    }

    /// `"key":"value"`.
    pub fn string(&mut self, key: &str, value: &str) {
        let html = self.html;
        let out = self.key(key);
        write_string(out, value, html);
    }

    /// `"key":"value"` unless `value` is empty (Go `omitempty`).
    pub fn string_omitempty(&mut self, key: &str, value: &str) {
        if !value.is_empty() {
            self.string(key, value);
        }
    }

    /// `"key":true|false`.
    pub fn bool(&mut self, key: &str, value: bool) {
        let out = self.key(key);
        out.extend_from_slice(if value { b"true" } else { b"false" });
    }

    /// `"key":<integer>`.
    pub fn int(&mut self, key: &str, value: i64) {
        let out = self.key(key);
        out.extend_from_slice(value.to_string().as_bytes());
    }

    /// `"key":[...]` of strings, `null` for `None`.
    pub fn string_array(&mut self, key: &str, value: Option<&[String]>) {
        let html = self.html;
        let out = self.key(key);
        write_string_array(out, value, html);
    }

    /// `"key":<raw>` where `raw` is already JSON.
    pub fn raw(&mut self, key: &str, raw: &[u8]) {
        let out = self.key(key);
        out.extend_from_slice(raw);
    }

    /// Close the object (`}`).
    pub fn finish(self) {
        self.out.push(b'}');
    }
}

// ---------------------------------------------------------------------------
// Parsing.

/// Go's maximum nesting depth of JSON values (`exceeded max depth`).
const MAX_DEPTH: usize = 10000;

/// What a [`Node`] is.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number; its text is the node's [`Doc::raw`] bytes.
    Number,
    /// A string, decoded as Go decodes it.
    String(String),
    /// An array: node indexes of the elements, in order.
    Array(Vec<usize>),
    /// An object: (decoded key, value node index), in document order,
    /// duplicates kept.
    Object(Vec<(String, usize)>),
}

/// One JSON value in a [`Doc`], with its byte span in the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub kind: NodeKind,
    /// Offset of the first byte of the value in the input.
    pub start: usize,
    /// Offset just past the last byte of the value in the input.
    pub end: usize,
}

/// A parsed JSON document: a flat arena of nodes (no recursion when it is
/// dropped, however deep the input). The root is node 0.
#[derive(Debug, Clone)]
pub struct Doc<'a> {
    src: &'a [u8],
    nodes: Vec<Node>,
}

impl<'a> Doc<'a> {
    /// Index of the root value.
    pub fn root(&self) -> usize {
        0
    }

    /// The node at `index`. Indexes come from this document ([`Doc::root`],
    /// [`NodeKind::Array`], [`NodeKind::Object`]); any other index panics.
    pub fn node(&self, index: usize) -> &Node {
        &self.nodes[index]
    }

    /// The input bytes of the value at `index`, exactly as written.
    pub fn raw(&self, index: usize) -> &'a [u8] {
        let n = &self.nodes[index];
        &self.src[n.start..n.end]
    }

    /// Go's name for the JSON kind of the value at `index`, as used in
    /// `UnmarshalTypeError` messages (`string`, `number`, `bool`, `array`,
    /// `object`, `null`).
    pub fn kind_name(&self, index: usize) -> &'static str {
        match self.nodes[index].kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "bool",
            NodeKind::Number => "number",
            NodeKind::String(_) => "string",
            NodeKind::Array(_) => "array",
            NodeKind::Object(_) => "object",
        }
    }
}

/// Go's `quoteChar`: how the scanner names an offending byte.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => "'\\''".to_owned(),
        b'"' => "'\"'".to_owned(),
        b'\\' => "'\\\\'".to_owned(),
        0x07 => "'\\a'".to_owned(),
        0x08 => "'\\b'".to_owned(),
        0x0c => "'\\f'".to_owned(),
        b'\n' => "'\\n'".to_owned(),
        b'\r' => "'\\r'".to_owned(),
        b'\t' => "'\\t'".to_owned(),
        0x0b => "'\\v'".to_owned(),
        0x00..=0x1f | 0x7f => format!("'\\x{c:02x}'"),
        0x80..=0xa0 | 0xad => format!("'\\u{c:04x}'"),
        0x20..=0x7e => format!("'{}'", char::from(c)),
        _ => format!("'{}'", char::from(c)),
    }
}

fn syntax(c: u8, context: &str) -> Error {
    Error::invalid(format!("invalid character {} {context}", quote_char(c)))
}

fn eof() -> Error {
    Error::invalid("unexpected end of JSON input")
}

enum Frame {
    Array(usize),
    Object(usize, String),
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
}

/// Parse `src` with Go's syntax rules and error messages (errors are
/// [`ErrorKind::InvalidArgument`](crate::error::ErrorKind) with Go's text,
/// e.g. `invalid character '}' looking for beginning of value`).
pub fn parse(src: &[u8]) -> Result<Doc<'_>> {
    let mut p = Parser {
        src,
        pos: 0,
        nodes: Vec::new(),
    };
    p.run()?;
    Ok(Doc {
        src,
        nodes: p.nodes,
    })
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.src.len() && is_ws(self.src[self.pos]) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn push(&mut self, kind: NodeKind, start: usize) -> usize {
        self.nodes.push(Node {
            kind,
            start,
            end: self.pos,
        });
        self.nodes.len() - 1
    }

    fn run(&mut self) -> Result<()> {
        let mut stack: Vec<Frame> = Vec::new();
        'value: loop {
            // Expecting the beginning of a value.
            self.skip_ws();
            let start = self.pos;
            let c = self.peek().ok_or_else(eof)?;
            let mut done = match c {
                b'{' | b'[' => {
                    if stack.len() + 1 > MAX_DEPTH {
                        return Err(syntax(c, "exceeded max depth"));
                    }
                    self.pos += 1;
                    self.skip_ws();
                    let next = self.peek().ok_or_else(eof)?;
                    if c == b'{' {
                        let node = self.push(NodeKind::Object(Vec::new()), start);
                        if next == b'}' {
                            self.pos += 1;
                            self.nodes[node].end = self.pos;
                            node
                        } else if next == b'"' {
                            let key = self.key()?;
                            stack.push(Frame::Object(node, key));
                            continue 'value;
                        } else {
                            return Err(syntax(next, "looking for beginning of object key string"));
                        }
                    } else {
                        let node = self.push(NodeKind::Array(Vec::new()), start);
                        if next == b']' {
                            self.pos += 1;
                            self.nodes[node].end = self.pos;
                            node
                        } else {
                            stack.push(Frame::Array(node));
                            continue 'value;
                        }
                    }
                }
                b'"' => {
                    let s = self.string()?;
                    self.push(NodeKind::String(s), start)
                }
                b'-' | b'0'..=b'9' => {
                    self.number()?;
                    self.push(NodeKind::Number, start)
                }
                b't' => {
                    self.literal(b"true")?;
                    self.push(NodeKind::Bool(true), start)
                }
                b'f' => {
                    self.literal(b"false")?;
                    self.push(NodeKind::Bool(false), start)
                }
                b'n' => {
                    self.literal(b"null")?;
                    self.push(NodeKind::Null, start)
                }
                _ => return Err(syntax(c, "looking for beginning of value")),
            };
            // A value is complete: attach it to its container and close
            // containers as far as the input says.
            loop {
                match stack.last_mut() {
                    None => {
                        self.skip_ws();
                        if let Some(c) = self.peek() {
                            return Err(syntax(c, "after top-level value"));
                        }
                        return Ok(());
                    }
                    Some(Frame::Array(a)) => {
                        let a = *a;
                        if let NodeKind::Array(items) = &mut self.nodes[a].kind {
                            items.push(done);
                        }
                        self.skip_ws();
                        match self.peek() {
                            None => return Err(eof()),
                            Some(b',') => {
                                self.pos += 1;
                                continue 'value;
                            }
                            Some(b']') => {
                                self.pos += 1;
                                self.nodes[a].end = self.pos;
                                stack.pop();
                                done = a;
                            }
                            Some(c) => return Err(syntax(c, "after array element")),
                        }
                    }
                    Some(Frame::Object(o, key)) => {
                        let o = *o;
                        let key = std::mem::take(key);
                        if let NodeKind::Object(members) = &mut self.nodes[o].kind {
                            members.push((key, done));
                        }
                        self.skip_ws();
                        match self.peek() {
                            None => return Err(eof()),
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_ws();
                                match self.peek() {
                                    None => return Err(eof()),
                                    Some(b'"') => {
                                        let key = self.key()?;
                                        if let Some(Frame::Object(_, k)) = stack.last_mut() {
                                            *k = key;
                                        }
                                        continue 'value;
                                    }
                                    Some(c) => {
                                        return Err(syntax(
                                            c,
                                            "looking for beginning of object key string",
                                        ));
                                    }
                                }
                            }
                            Some(b'}') => {
                                self.pos += 1;
                                self.nodes[o].end = self.pos;
                                stack.pop();
                                done = o;
                            }
                            Some(c) => return Err(syntax(c, "after object key:value pair")),
                        }
                    }
                }
            }
        }
    }

    /// An object key and the `:` after it.
    fn key(&mut self) -> Result<String> {
        let key = self.string()?;
        self.skip_ws();
        match self.peek() {
            None => Err(eof()),
            Some(b':') => {
                self.pos += 1;
                Ok(key)
            }
            Some(c) => Err(syntax(c, "after object key")),
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<()> {
        let name = std::str::from_utf8(word).unwrap_or("");
        self.pos += 1;
        for &want in &word[1..] {
            match self.peek() {
                None => return Err(eof()),
                Some(c) if c == want => self.pos += 1,
                Some(c) => {
                    return Err(syntax(
                        c,
                        &format!("in literal {name} (expecting {})", quote_char(want)),
                    ));
                }
            }
        }
        Ok(())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn number(&mut self) -> Result<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
            match self.peek() {
                None => return Err(eof()),
                Some(b'0'..=b'9') => {}
                Some(c) => return Err(syntax(c, "in numeric literal")),
            }
        }
        if self.peek() == Some(b'0') {
            self.pos += 1;
        } else {
            self.digits();
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            match self.peek() {
                None => return Err(eof()),
                Some(b'0'..=b'9') => self.digits(),
                Some(c) => return Err(syntax(c, "after decimal point in numeric literal")),
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            match self.peek() {
                None => return Err(eof()),
                Some(b'0'..=b'9') => self.digits(),
                Some(c) => return Err(syntax(c, "in exponent of numeric literal")),
            }
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            let c = self.peek().ok_or_else(eof)?;
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(syntax(c, "in \\u hexadecimal character escape")),
            };
            v = v * 16 + u32::from(d);
            self.pos += 1;
        }
        Ok(v)
    }

    /// A string starting at the opening quote; decoded like Go's `unquote`.
    fn string(&mut self) -> Result<String> {
        self.pos += 1;
        // Most strings have no escapes and are valid UTF-8: copy them whole.
        let rest = &self.src[self.pos..];
        if let Some(n) = rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
            && rest[n] == b'"'
            && let Ok(s) = std::str::from_utf8(&rest[..n])
        {
            self.pos += n + 1;
            return Ok(s.to_string());
        }
        let mut raw: Vec<u8> = Vec::new();
        let mut out = String::new();
        loop {
            let c = self.peek().ok_or_else(eof)?;
            match c {
                b'"' => {
                    self.pos += 1;
                    out.push_str(&lossy_go(&raw));
                    return Ok(out);
                }
                b'\\' => {
                    out.push_str(&lossy_go(&raw));
                    raw.clear();
                    self.pos += 1;
                    let e = self.peek().ok_or_else(eof)?;
                    self.pos += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let u = self.hex4()?;
                            out.push(self.surrogate_tail(u)?);
                        }
                        _ => return Err(syntax(e, "in string escape code")),
                    }
                }
                0..=0x1f => return Err(syntax(c, "in string literal")),
                _ => {
                    raw.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// Combine a `\u` escape with a following low surrogate escape the way
    /// Go does; unpaired surrogates become U+FFFD (and a following escape
    /// that does not pair is decoded on its own).
    fn surrogate_tail(&mut self, u: u32) -> Result<char> {
        if !(0xd800..0xe000).contains(&u) {
            return Ok(char::from_u32(u).unwrap_or('\u{fffd}'));
        }
        if u < 0xdc00
            && self.src.get(self.pos) == Some(&b'\\')
            && self.src.get(self.pos + 1) == Some(&b'u')
        {
            // Peek at the next escape; Go only consumes it when it pairs.
            let save = self.pos;
            self.pos += 2;
            let lo = self.hex4()?;
            if (0xdc00..0xe000).contains(&lo) {
                let c = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                return Ok(char::from_u32(c).unwrap_or('\u{fffd}'));
            }
            self.pos = save;
        }
        Ok('\u{fffd}')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_string_table() {
        let cases: &[(&str, &str, bool, &str)] = &[
            ("plain", "abc", true, r#""abc""#),
            ("quote and backslash", "a\"b\\c", true, r#""a\"b\\c""#),
            ("newline cr tab", "a\nb\rc\td", true, r#""a\nb\rc\td""#),
            (
                "backspace formfeed",
                "\u{8}\u{c}",
                true,
                r#""\u0008\u000c""#,
            ),
            ("nul and 0x1f", "\u{0}\u{1f}", false, r#""\u0000\u001f""#),
            ("html on", "a<b>&c", true, r#""a\u003cb\u003e\u0026c""#),
            ("html off", "a<b>&c", false, r#""a<b>&c""#),
            ("slash and del", "/\u{7f}", true, "\"/\u{7f}\""),
            ("non-ascii kept", "héllo ☃ 😀", true, "\"héllo ☃ 😀\""),
            (
                "line separators",
                "\u{2028}\u{2029}",
                false,
                r#""\u2028\u2029""#,
            ),
            (
                "replacement char kept raw",
                "\u{fffd}",
                true,
                "\"\u{fffd}\"",
            ),
            (
                "docker example",
                "echo hi > /x",
                true,
                r#""echo hi \u003e /x""#,
            ),
            ("author", "me <me@x>", true, r#""me \u003cme@x\u003e""#),
        ];
        for (name, input, html, want) in cases {
            let mut out = Vec::new();
            write_string(&mut out, input, *html);
            assert_eq!(String::from_utf8_lossy(&out), *want, "case {name}");
        }
    }

    #[test]
    fn write_bytes_invalid_utf8() {
        let cases: &[(&str, &[u8], &str)] = &[
            ("lone continuation", b"a\x80b", r#""a\ufffdb""#),
            (
                "truncated 4-byte",
                b"\xf0\x9f\x98",
                r#""\ufffd\ufffd\ufffd""#,
            ),
            ("overlong", b"\xc0\xaf", r#""\ufffd\ufffd""#),
            (
                "surrogate encoded",
                b"\xed\xa0\x80",
                r#""\ufffd\ufffd\ufffd""#,
            ),
            ("valid", "é".as_bytes(), "\"é\""),
        ];
        for (name, input, want) in cases {
            let mut out = Vec::new();
            write_bytes_string(&mut out, input, true);
            assert_eq!(String::from_utf8_lossy(&out), *want, "case {name}");
        }
    }

    #[test]
    fn syntax_errors_match_go() {
        let cases: &[(&str, &str, &str)] = &[
            ("empty", "", "unexpected end of JSON input"),
            ("spaces", "  ", "unexpected end of JSON input"),
            (
                "word",
                "invalid json",
                "invalid character 'i' looking for beginning of value",
            ),
            ("nul literal", "nul", "unexpected end of JSON input"),
            (
                "bad null",
                "nol",
                "invalid character 'o' in literal null (expecting 'u')",
            ),
            (
                "bad true",
                "trUe",
                "invalid character 'U' in literal true (expecting 'u')",
            ),
            (
                "bad false",
                "fals3",
                "invalid character '3' in literal false (expecting 'e')",
            ),
            (
                "trailing",
                "{} x",
                "invalid character 'x' after top-level value",
            ),
            (
                "leading zero",
                "01",
                "invalid character '1' after top-level value",
            ),
            ("minus", "-x", "invalid character 'x' in numeric literal"),
            (
                "decimal",
                "1.x",
                "invalid character 'x' after decimal point in numeric literal",
            ),
            ("exponent", "1e+", "unexpected end of JSON input"),
            (
                "exponent char",
                "1ex",
                "invalid character 'x' in exponent of numeric literal",
            ),
            (
                "object key",
                "{1:2}",
                "invalid character '1' looking for beginning of object key string",
            ),
            (
                "trailing comma obj",
                r#"{"a":1,}"#,
                "invalid character '}' looking for beginning of object key string",
            ),
            (
                "no colon",
                r#"{"a" 1}"#,
                "invalid character '1' after object key",
            ),
            (
                "after pair",
                r#"{"a":1 "b":2}"#,
                "invalid character '\"' after object key:value pair",
            ),
            (
                "after element",
                "[1 2]",
                "invalid character '2' after array element",
            ),
            (
                "trailing comma arr",
                "[1,]",
                "invalid character ']' looking for beginning of value",
            ),
            (
                "ctrl in string",
                "\"a\nb\"",
                "invalid character '\\n' in string literal",
            ),
            (
                "bad escape",
                r#""\x""#,
                "invalid character 'x' in string escape code",
            ),
            (
                "bad hex",
                r#""\u12g4""#,
                "invalid character 'g' in \\u hexadecimal character escape",
            ),
            ("unterminated", r#"{"a":"b"#, "unexpected end of JSON input"),
            (
                "single quote",
                "'",
                "invalid character '\\'' looking for beginning of value",
            ),
            (
                "high byte",
                "\u{e9}",
                "invalid character 'Ã' looking for beginning of value",
            ),
            (
                "del",
                "\u{7f}",
                "invalid character '\\x7f' looking for beginning of value",
            ),
        ];
        for (name, input, want) in cases {
            let err = parse(input.as_bytes()).expect_err(name);
            assert_eq!(err.message(), *want, "case {name}");
            assert_eq!(
                err.kind(),
                crate::error::ErrorKind::InvalidArgument,
                "case {name}"
            );
        }
    }

    #[test]
    fn max_depth() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        let err = parse(deep.as_bytes()).expect_err("too deep");
        assert_eq!(err.message(), "invalid character '[' exceeded max depth");
    }

    #[test]
    fn parse_structure_and_strings() {
        let src =
            br#" {"a": [1, -2.5e3, true, null], "a": "x\u00e9\ud83d\ude00\ud800z\/", "b": {}} "#;
        let doc = parse(src).expect("valid");
        let NodeKind::Object(members) = &doc.node(doc.root()).kind else {
            panic!("root is not an object");
        };
        let keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "a", "b"]);
        assert_eq!(doc.raw(members[0].1), b"[1, -2.5e3, true, null]");
        let NodeKind::Array(items) = &doc.node(members[0].1).kind else {
            panic!("not an array");
        };
        assert_eq!(doc.raw(items[1]), b"-2.5e3");
        assert_eq!(doc.kind_name(items[2]), "bool");
        assert_eq!(
            doc.node(members[1].1).kind,
            NodeKind::String("xé😀\u{fffd}z/".to_owned())
        );
        assert_eq!(doc.raw(doc.root()), &src[1..src.len() - 1]);
    }

    #[test]
    fn invalid_utf8_in_string_becomes_replacement_per_byte() {
        let doc = parse(b"\"a\xf0\x9f\x98b\"").expect("valid");
        assert_eq!(
            doc.node(0).kind,
            NodeKind::String("a\u{fffd}\u{fffd}\u{fffd}b".to_owned())
        );
    }

    #[test]
    fn object_writer_and_sorted_object() {
        let mut out = Vec::new();
        let mut o = ObjectWriter::new(&mut out, true);
        o.string("b", "<");
        o.string_omitempty("skip", "");
        o.bool("a", true);
        o.int("n", -3);
        o.string_array("l", None);
        o.string_array("m", Some(&[]));
        o.finish();
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"b":"\u003c","a":true,"n":-3,"l":null,"m":[]}"#
        );
        let mut out = Vec::new();
        write_sorted_object(
            &mut out,
            vec![
                ("b", b"1".to_vec()),
                ("Size", b"2".to_vec()),
                ("a", b"3".to_vec()),
            ],
            true,
        );
        assert_eq!(String::from_utf8_lossy(&out), r#"{"Size":2,"a":3,"b":1}"#);
    }
}
