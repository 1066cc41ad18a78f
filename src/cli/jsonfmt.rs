//! Go's `json.Indent`: re-indent JSON bytes without touching string escapes,
//! as the docker CLI does for `inspect`.

/// Indent `src` (valid compact or spaced JSON) with `indent` per level.
pub fn indent(src: &[u8], indent: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut need_indent = false;
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        for _ in 0..depth {
            out.extend_from_slice(indent.as_bytes());
        }
    };
    for &c in src {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            continue;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        if need_indent && c != b']' && c != b'}' {
            need_indent = false;
            depth += 1;
            newline(&mut out, depth);
        }
        match c {
            b'"' => {
                in_string = true;
                out.push(c);
            }
            b'{' | b'[' => {
                out.push(c);
                need_indent = true;
            }
            b',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            b':' => {
                out.push(c);
                out.push(b' ');
            }
            b'}' | b']' => {
                if need_indent {
                    // Empty object or array stays compact.
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::indent;

    #[test]
    fn like_go() {
        let got = indent(
            br#"[{"a":[],"b":{},"c":[1,2],"d":"x\"y","e":null}]"#,
            "    ",
        );
        let want = "[\n    {\n        \"a\": [],\n        \"b\": {},\n        \"c\": [\n            1,\n            2\n        ],\n        \"d\": \"x\\\"y\",\n        \"e\": null\n    }\n]";
        assert_eq!(String::from_utf8(got).unwrap(), want);
    }
}
