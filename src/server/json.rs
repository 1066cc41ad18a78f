//! JSON the way dockerd writes it: Go's `json.Encoder` (compact, one `\n`
//! after each value), with HTML escaping off for API responses and on for
//! the JSON message streams of load/pull/push (engine-api.md §2.2, §2.4).

use serde::Serialize;

/// `value` as Go's `json.Encoder` with `SetEscapeHTML(false)` writes it,
/// trailing newline included.
pub fn encode(value: &impl Serialize) -> Vec<u8> {
    let mut out = to_go_json(value, false);
    out.push(b'\n');
    out
}

/// `value` as Go's `json.Marshal` writes it (HTML escaped), no newline.
pub fn marshal_html(value: &impl Serialize) -> Vec<u8> {
    to_go_json(value, true)
}

/// Compact JSON with Go's escaping, written in one pass (see [`GoFormatter`]).
fn to_go_json(value: &impl Serialize, html: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter { html });
    match value.serialize(&mut ser) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

/// serde_json's compact output with Go's escaping: `\b` and `\f` become
/// `\u0008`/`\u000c`, U+2028/U+2029 are escaped, and with `html` `<`, `>`,
/// `&` become `\u003c`, `\u003e`, `\u0026`.
struct GoFormatter {
    html: bool,
}

impl GoFormatter {
    /// Go's escape for the character starting at `b[i]`, if it needs one
    /// that serde_json does not write.
    fn escape_at(&self, b: &[u8], i: usize) -> Option<&'static [u8]> {
        match b[i] {
            b'<' if self.html => Some(b"\\u003c"),
            b'>' if self.html => Some(b"\\u003e"),
            b'&' if self.html => Some(b"\\u0026"),
            0xE2 if b.get(i + 1) == Some(&0x80) => match b.get(i + 2) {
                Some(0xA8) => Some(b"\\u2028"),
                Some(0xA9) => Some(b"\\u2029"),
                _ => None,
            },
            _ => None,
        }
    }
}

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let b = fragment.as_bytes();
        let mut start = 0;
        for i in 0..b.len() {
            if i < start {
                continue;
            }
            if let Some(esc) = self.escape_at(b, i) {
                w.write_all(&b[start..i])?;
                w.write_all(esc)?;
                start = i + if b[i] == 0xE2 { 3 } else { 1 };
            }
        }
        w.write_all(&b[start..])
    }

    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        use serde_json::ser::{CharEscape, CompactFormatter};
        match escape {
            CharEscape::Backspace => w.write_all(b"\\u0008"),
            CharEscape::FormFeed => w.write_all(b"\\u000c"),
            other => CompactFormatter.write_char_escape(w, other),
        }
    }

    /// Embedded JSON (a config kept verbatim) gets the same escaping.
    fn write_raw_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        w.write_all(&go_fixup(fragment.as_bytes(), self.html))
    }
}

/// Rewrite serde_json's compact output into Go's escaping (for embedded raw
/// JSON; see [`GoFormatter`]). These characters can only occur inside
/// string literals, so a byte scan that tracks escapes is exact.
fn go_fixup(src: &[u8], html: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len());
    let mut i = 0;
    while i < src.len() {
        let b = src[i];
        match b {
            b'\\' if i + 1 < src.len() => {
                match src[i + 1] {
                    b'b' => out.extend_from_slice(b"\\u0008"),
                    b'f' => out.extend_from_slice(b"\\u000c"),
                    other => {
                        out.push(b'\\');
                        out.push(other);
                    }
                }
                i += 2;
                continue;
            }
            b'<' if html => out.extend_from_slice(b"\\u003c"),
            b'>' if html => out.extend_from_slice(b"\\u003e"),
            b'&' if html => out.extend_from_slice(b"\\u0026"),
            0xE2 if i + 2 < src.len()
                && src[i + 1] == 0x80
                && (src[i + 2] == 0xA8 || src[i + 2] == 0xA9) =>
            {
                out.extend_from_slice(if src[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 3;
                continue;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

/// One message of a JSON message stream (`pkg/jsonmessage.JSONMessage`),
/// the fields strata emits.
#[derive(Serialize, Default)]
pub struct JsonMessage {
    /// Raw text (`Loaded image: x\n`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// A status line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Error detail.
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    /// Error text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `{"message": …}` of an in-stream error.
#[derive(Serialize)]
pub struct ErrorDetail {
    /// The error text.
    pub message: String,
}

impl JsonMessage {
    /// `{"stream":"<text>"}`.
    pub fn stream(text: String) -> JsonMessage {
        JsonMessage {
            stream: Some(text),
            ..Default::default()
        }
    }

    /// `{"errorDetail":{"message":X},"error":X}`.
    pub fn error(message: &str) -> JsonMessage {
        JsonMessage {
            error_detail: Some(ErrorDetail {
                message: message.to_string(),
            }),
            error: Some(message.to_string()),
            ..Default::default()
        }
    }

    /// The message as it goes on the wire: HTML-escaped JSON plus `\r\n`.
    pub fn to_line(&self) -> Vec<u8> {
        let mut out = marshal_html(self);
        out.extend_from_slice(b"\r\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The one-pass formatter writes what rewriting serde_json's output
        /// byte by byte writes, keys, strings and embedded raw JSON alike.
        #[test]
        fn formatter_matches_the_rewrite(
            key in "[a-z<&\u{2028}]{0,4}",
            text in "(.|[<>&\u{8}\u{c}\u{2028}\u{2029}\\\\\"\u{e2}])*",
            html in proptest::bool::ANY,
        ) {
            let raw = serde_json::value::RawValue::from_string(serde_json::to_string(&text).unwrap()).unwrap();
            let value = serde_json::json!({ key.clone(): [text.clone(), {"n": 1}] });
            for got in [to_go_json(&value, html), to_go_json(&raw, html)] {
                let want = if got.starts_with(b"{") {
                    go_fixup(&serde_json::to_vec(&value).unwrap(), html)
                } else {
                    go_fixup(&serde_json::to_vec(&raw).unwrap(), html)
                };
                proptest::prop_assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(want).unwrap());
            }
        }
    }

    #[test]
    fn go_escaping() {
        let cases: &[(&str, bool, &str)] = &[
            ("a&b<c>", false, "\"a&b<c>\""),
            ("a&b<c>", true, "\"a\\u0026b\\u003cc\\u003e\""),
            ("\u{8}\u{c}\u{1}", false, "\"\\u0008\\u000c\\u0001\""),
            ("\\b", false, "\"\\\\b\""),
            ("x\u{2028}y\u{2029}", false, "\"x\\u2028y\\u2029\""),
            ("é\n", false, "\"é\\n\""),
        ];
        for (input, html, want) in cases {
            let got = if *html {
                marshal_html(input)
            } else {
                let mut v = encode(input);
                v.pop();
                v
            };
            assert_eq!(String::from_utf8(got).unwrap(), *want, "{input:?}");
        }
    }

    #[test]
    fn messages() {
        assert_eq!(
            JsonMessage::stream("Loaded image: a:1\n".into()).to_line(),
            b"{\"stream\":\"Loaded image: a:1\\n\"}\r\n"
        );
        assert_eq!(
            JsonMessage::error("bad <x>").to_line(),
            b"{\"errorDetail\":{\"message\":\"bad \\u003cx\\u003e\"},\"error\":\"bad \\u003cx\\u003e\"}\r\n"
        );
    }
}
