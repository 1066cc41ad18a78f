//! JSON the way dockerd writes it: Go's `json.Encoder` (compact, one `\n`
//! after each value), with HTML escaping off for API responses and on for
//! the JSON message streams of load/pull/push (engine-api.md §2.2, §2.4).

use serde::Serialize;

/// `value` as Go's `json.Encoder` with `SetEscapeHTML(false)` writes it,
/// trailing newline included.
pub fn encode(value: &impl Serialize) -> Vec<u8> {
    let mut out = go_fixup(&serde_json::to_vec(value).unwrap_or_default(), false);
    out.push(b'\n');
    out
}

/// `value` as Go's `json.Marshal` writes it (HTML escaped), no newline.
pub fn marshal_html(value: &impl Serialize) -> Vec<u8> {
    go_fixup(&serde_json::to_vec(value).unwrap_or_default(), true)
}

/// Rewrite serde_json's compact output into Go's escaping: `\b` and `\f`
/// become `\u0008`/`\u000c`, U+2028/U+2029 are escaped, and with `html`
/// `<`, `>`, `&` become `\u003c`, `\u003e`, `\u0026`. These characters can
/// only occur inside string literals, so a byte scan that tracks escapes
/// is exact.
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
