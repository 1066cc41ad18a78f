//! Request URLs: percent-decoding, query values (engine-api.md §2.5).

/// Decode `%XX` escapes (and `+` as space when `plus`); invalid escapes stay
/// as they are. Invalid UTF-8 is replaced.
pub fn percent_decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                // Two hex digits exactly (Go's `ishex`): `from_str_radix`
                // alone would also take a sign, as in `%+F`.
                let (hi, lo) = (b[i + 1], b[i + 2]);
                if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() {
                    let digit = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                    out.push(digit(hi) << 4 | digit(lo));
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded query parameters, in order, repeated keys kept.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parse a raw query string.
    pub fn parse(raw: Option<&str>) -> Query {
        let Some(raw) = raw else {
            return Query::default();
        };
        Query(
            raw.split(['&', ';'])
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k, true), percent_decode(v, true))
                })
                .collect(),
        )
    }

    /// The first value of `key` (Go's `Form.Get`), or "".
    pub fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Whether `key` is present at all.
    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Docker's `BoolValue`: `""`, `0`, `no`, `false`, `none` are false.
    pub fn bool(&self, key: &str) -> bool {
        crate::filters::query_bool(self.get(key))
    }

    /// Docker's `BoolValueOrDefault`: `default` when the key is absent.
    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        if self.has(key) {
            self.bool(key)
        } else {
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        let q = Query::parse(Some(
            "names=small%3A1&names=base%3A1&repo=127.0.0.1%3A5055%2Ftest&m=a+b&x=%zz&e",
        ));
        assert_eq!(q.all("names"), ["small:1", "base:1"]);
        assert_eq!(q.get("repo"), "127.0.0.1:5055/test");
        assert_eq!(q.get("m"), "a b");
        assert_eq!(q.get("x"), "%zz");
        assert!(q.has("e"));
        assert_eq!(q.get("nope"), "");
        assert_eq!(percent_decode("a+b%2", false), "a+b%2");
        // Found by the engine_request fuzz target: a sign is not a hex digit.
        assert_eq!(percent_decode("%+F", false), "%+F");
        assert_eq!(percent_decode("%+41%41", false), "%+41A");
        assert_eq!(percent_decode("%-1%fF", false), "%-1\u{fffd}");
    }

    #[test]
    fn bools() {
        let q = Query::parse(Some("a=1&b=0&c=&d=None&e=yes"));
        let got: Vec<bool> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|k| q.bool(k))
            .collect();
        assert_eq!(got, [true, false, false, false, true]);
        assert!(q.bool_or("quiet", true));
        assert!(!q.bool_or("b", true));
    }
}
