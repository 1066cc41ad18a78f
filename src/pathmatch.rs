//! Go's `path.Match` shell-pattern matching, as built into dockerd 20.10
//! (Go 1.19 semantics).
//!
//! This module owns the pattern language used by the `reference` filter of
//! `GET /images/json` and similar places: `*` matches any run of non-`/`
//! bytes, `?` one non-`/` character, `[...]` a character class (ranges
//! `lo-hi`, `^` negation, `\` escapes) and `\c` the literal `c`. The pattern
//! must match the whole name.
//!
//! Malformed patterns (`[`, `[]a]`, `[a-b-c]`, a trailing `\`) yield
//! [`PatternError`]. As in Go since 1.16, a chunk that fails to match is
//! still parsed to its end and the rest of the pattern is checked before
//! answering "no", so `a[` against `x` is an error rather than `false` (Go
//! 1.15 and earlier said `false`). The matcher works on bytes and decodes
//! UTF-8 where Go does, so multi-byte characters behave exactly as in Go.

use std::fmt;

/// Go's `path.ErrBadPattern`: the pattern is malformed.
///
/// Its message is exactly `syntax error in pattern`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PatternError;

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("syntax error in pattern")
    }
}

impl std::error::Error for PatternError {}

/// Reports whether `name` matches the shell `pattern` (Go's `path.Match`).
///
/// Returns [`PatternError`] when the pattern is malformed and Go 1.19's
/// matcher would notice it for this `name` (see the module docs).
pub fn path_match(pattern: &str, name: &str) -> Result<bool, PatternError> {
    match_bytes(pattern.as_bytes(), name.as_bytes())
}

/// The Unicode replacement character Go's decoder yields for bad input.
const RUNE_ERROR: u32 = 0xFFFD;

fn match_bytes(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, PatternError> {
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing star matches the rest of the name unless it has a '/'.
            return Ok(!name.contains(&b'/'));
        }
        // Try the chunk at the current position. When it is the last chunk it
        // must consume the whole name, or the star may still find a match.
        if let Some(t) = match_chunk(chunk, name)?
            && (t.is_empty() || !pattern.is_empty())
        {
            name = t;
            continue;
        }
        if star {
            // Let the star swallow i+1 bytes, never a '/'.
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                if let Some(t) = match_chunk(chunk, &name[i + 1..])?
                    && (!pattern.is_empty() || t.is_empty())
                {
                    name = t;
                    continue 'pattern;
                }
                i += 1;
            }
        }
        // Before answering "no", check the rest of the pattern's syntax.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off the next chunk: leading stars (collapsed into `star`), then the
/// star-free text up to the next star outside a character class.
fn scan_chunk(pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    let mut pattern = pattern;
    while let Some((&b'*', rest)) = pattern.split_first() {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            // A trailing lone backslash is reported by match_chunk.
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => return (star, &pattern[..i], &pattern[i..]),
            _ => {}
        }
        i += 1;
    }
    (star, pattern, &[])
}

/// Matches a star-free chunk against the start of `s`.
///
/// `Ok(Some(rest))` on a match, `Ok(None)` on a mismatch. After a mismatch
/// the chunk is still parsed to the end so that syntax errors in it surface.
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<Option<&'a [u8]>, PatternError> {
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c {
            b'[' => {
                let mut r = 0u32;
                if !failed {
                    let (rune, n) = decode_rune(s);
                    r = rune;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let mut negated = false;
                if let Some((&b'^', rest)) = chunk.split_first() {
                    negated = true;
                    chunk = rest;
                }
                let mut matched = false;
                let mut ranges = 0usize;
                loop {
                    if ranges > 0
                        && let Some((&b']', rest)) = chunk.split_first()
                    {
                        chunk = rest;
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if let Some((&b'-', rest)) = chunk.split_first() {
                        let (h, rest) = get_esc(rest)?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(PatternError);
                    }
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    if failed { Ok(None) } else { Ok(Some(s)) }
}

/// Reads one possibly escaped character of a character class.
fn get_esc(chunk: &[u8]) -> Result<(u32, &[u8]), PatternError> {
    let mut chunk = match chunk.first() {
        None | Some(b'-') | Some(b']') => return Err(PatternError),
        Some(_) => chunk,
    };
    if chunk[0] == b'\\' {
        chunk = &chunk[1..];
        if chunk.is_empty() {
            return Err(PatternError);
        }
    }
    let (r, n) = decode_rune(chunk);
    if r == RUNE_ERROR && n == 1 {
        return Err(PatternError);
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(PatternError);
    }
    Ok((r, rest))
}

/// Go's `utf8.DecodeRune`: the first character of `s` and its length in
/// bytes; `(U+FFFD, 1)` for an invalid sequence and `(U+FFFD, 0)` for empty.
fn decode_rune(s: &[u8]) -> (u32, usize) {
    let Some(&first) = s.first() else {
        return (RUNE_ERROR, 0);
    };
    let width = match first {
        0x00..=0x7F => return (u32::from(first), 1),
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return (RUNE_ERROR, 1),
    };
    match s.get(..width).map(std::str::from_utf8) {
        Some(Ok(text)) => match text.chars().next() {
            Some(ch) => (u32::from(ch), width),
            None => (RUNE_ERROR, 1),
        },
        _ => (RUNE_ERROR, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (case name, pattern, name, expected result)
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Result<bool, PatternError>,
    );

    const BAD: Result<bool, PatternError> = Err(PatternError);

    /// The cases of Go's path/match_test.go, plus extra ones.
    const CASES: &[Case] = &[
        ("literal", "abc", "abc", Ok(true)),
        ("star_all", "*", "abc", Ok(true)),
        ("star_suffix", "*c", "abc", Ok(true)),
        ("star_empty_tail", "a*", "a", Ok(true)),
        ("star_tail", "a*", "abc", Ok(true)),
        ("star_no_slash", "a*", "ab/c", Ok(false)),
        ("star_then_dir", "a*/b", "abc/b", Ok(true)),
        ("star_not_across_dir", "a*/b", "a/c/b", Ok(false)),
        ("many_stars", "a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
        (
            "many_stars_padding",
            "a*b*c*d*e*/f",
            "axbxcxdxexxx/f",
            Ok(true),
        ),
        (
            "many_stars_extra_dir",
            "a*b*c*d*e*/f",
            "axbxcxdxe/xxx/f",
            Ok(false),
        ),
        (
            "many_stars_long_tail",
            "a*b*c*d*e*/f",
            "axbxcxdxexxx/fff",
            Ok(false),
        ),
        (
            "star_question_backtrack",
            "a*b?c*x",
            "abxbbxdbxebxczzx",
            Ok(true),
        ),
        (
            "star_question_mismatch",
            "a*b?c*x",
            "abxbbxdbxebxczzy",
            Ok(false),
        ),
        ("class_single", "ab[c]", "abc", Ok(true)),
        ("class_range", "ab[b-d]", "abc", Ok(true)),
        ("class_range_miss", "ab[e-g]", "abc", Ok(false)),
        ("class_negated", "ab[^c]", "abc", Ok(false)),
        ("class_negated_range", "ab[^b-d]", "abc", Ok(false)),
        ("class_negated_range_miss", "ab[^e-g]", "abc", Ok(true)),
        ("escaped_star", "a\\*b", "a*b", Ok(true)),
        ("escaped_star_literal_only", "a\\*b", "ab", Ok(false)),
        ("question_multibyte", "a?b", "a\u{263A}b", Ok(true)),
        ("negated_class_multibyte", "a[^a]b", "a\u{263A}b", Ok(true)),
        ("questions_count_runes", "a???b", "a\u{263A}b", Ok(false)),
        (
            "negated_classes_count_runes",
            "a[^a][^a][^a]b",
            "a\u{263A}b",
            Ok(false),
        ),
        ("unicode_range", "[a-\u{3B6}]*", "\u{3B1}", Ok(true)),
        ("unicode_range_miss", "*[a-\u{3B6}]", "A", Ok(false)),
        ("question_not_slash", "a?b", "a/b", Ok(false)),
        ("star_not_slash", "a*b", "a/b", Ok(false)),
        ("class_escaped_bracket", "[\\]a]", "]", Ok(true)),
        ("class_escaped_dash", "[\\-]", "-", Ok(true)),
        ("class_x_escaped_dash_x", "[x\\-]", "x", Ok(true)),
        ("class_x_escaped_dash_dash", "[x\\-]", "-", Ok(true)),
        ("class_x_escaped_dash_miss", "[x\\-]", "z", Ok(false)),
        ("class_escaped_dash_x_x", "[\\-x]", "x", Ok(true)),
        ("class_escaped_dash_x_dash", "[\\-x]", "-", Ok(true)),
        ("class_escaped_dash_x_miss", "[\\-x]", "a", Ok(false)),
        ("bad_empty_class_bracket", "[]a]", "]", BAD),
        ("bad_lone_dash", "[-]", "-", BAD),
        ("bad_trailing_dash_x", "[x-]", "x", BAD),
        ("bad_trailing_dash_dash", "[x-]", "-", BAD),
        ("bad_trailing_dash_z", "[x-]", "z", BAD),
        ("bad_leading_dash_x", "[-x]", "x", BAD),
        ("bad_leading_dash_dash", "[-x]", "-", BAD),
        ("bad_leading_dash_a", "[-x]", "a", BAD),
        ("bad_lone_backslash", "\\", "a", BAD),
        ("bad_double_range", "[a-b-c]", "a", BAD),
        ("bad_open_class", "[", "a", BAD),
        ("bad_open_negated", "[^", "a", BAD),
        ("bad_open_negated_chars", "[^bc", "a", BAD),
        ("bad_open_after_literal", "a[", "a", BAD),
        ("bad_open_after_literal_longer", "a[", "ab", BAD),
        ("bad_open_after_mismatch", "a[", "x", BAD),
        ("bad_open_after_dir", "a/b[", "x", BAD),
        ("star_last_chunk_exhausts", "*x", "xxx", Ok(true)),
        // Extra cases pinning when errors are (not) reported.
        ("empty_pattern_empty_name", "", "", Ok(true)),
        ("empty_pattern_name", "", "a", Ok(false)),
        ("trailing_star_hides_nothing", "a*", "", Ok(false)),
        ("bad_after_star_reported", "*[", "a", BAD),
        ("bad_in_later_chunk_after_mismatch", "x*[", "a", BAD),
        ("bad_in_later_chunk_after_match", "a*b\\", "ab", BAD),
        ("trailing_star_skips_validation", "[a]*", "a", Ok(true)),
        ("question_on_empty", "?", "", Ok(false)),
        ("class_on_empty_still_validated", "a[", "", BAD),
        ("literal_multibyte", "\u{263A}", "\u{263A}", Ok(true)),
        ("star_multibyte_tail", "*\u{263A}", "ab\u{263A}", Ok(true)),
        ("escaped_literal", "\\a", "a", Ok(true)),
        ("class_escaped_range_bounds", "[\\a-\\c]", "b", Ok(true)),
        ("reference_like", "busybox:*", "busybox:latest", Ok(true)),
        ("reference_like_dir", "*", "library/busybox", Ok(false)),
    ];

    #[test]
    fn go_match_table() {
        for (case, pattern, name, want) in CASES {
            let got = path_match(pattern, name);
            assert_eq!(got, *want, "case {case}: path_match({pattern:?}, {name:?})");
        }
    }

    #[test]
    fn error_message() {
        assert_eq!(PatternError.to_string(), "syntax error in pattern");
    }

    #[test]
    fn decode_rune_like_go() {
        let cases: &[(&str, &[u8], (u32, usize))] = &[
            ("empty", b"", (RUNE_ERROR, 0)),
            ("ascii", b"a", (0x61, 1)),
            ("two_bytes", "\u{3B1}".as_bytes(), (0x3B1, 2)),
            ("three_bytes", "\u{263A}".as_bytes(), (0x263A, 3)),
            ("four_bytes", "\u{1F600}".as_bytes(), (0x1F600, 4)),
            ("continuation", b"\x80a", (RUNE_ERROR, 1)),
            ("truncated", b"\xE2\x98", (RUNE_ERROR, 1)),
            ("overlong", b"\xC0\x80", (RUNE_ERROR, 1)),
            ("surrogate", b"\xED\xA0\x80", (RUNE_ERROR, 1)),
        ];
        for (case, input, want) in cases {
            assert_eq!(decode_rune(input), *want, "case {case}");
        }
    }
}
