//! Go's time and quoting semantics, as Docker 20.10 (built with Go 1.19) applies them.
//!
//! This module owns the exact ports needed to reproduce dockerd's answers for
//! `until` filters: `time.ParseDuration`, the subset of `time.Parse` used by
//! Docker's `GetTimestamp` layouts (Go 1.19 behaviour, including its error
//! texts), Docker's `GetTimestamp`/`ParseTimestamps` pair, and the two quoting
//! styles that appear in those messages (`time`'s private `quote` and
//! `strconv.Quote`, i.e. `fmt`'s `%q`).
//!
//! It is not a general Go time library: only the layout elements Docker uses
//! (`2006`, `01`, `02`, `15`, `04`, `05`, `.999999999`, `Z07:00`) are known.
//! All instants are Unix nanoseconds as `i128`.

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// `time.ParseDuration` of Go 1.19: the duration in nanoseconds (always within
/// `i64`), or Go's exact error text (`time: invalid duration "x"`,
/// `time: missing unit in duration "1"`, `time: unknown unit "d" in duration "1d"`).
pub fn parse_duration(orig: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {}", quote(orig.as_bytes()));
    let mut s = orig.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut d: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let before = s.len();
        let (mut v, rest) = leading_int(s).ok_or_else(invalid)?;
        s = rest;
        let pre = before != s.len();
        let mut post = false;
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let before = s.len();
            let (x, sc, rest) = leading_fraction(s);
            f = x;
            scale = sc;
            s = rest;
            post = before != s.len();
        }
        if !pre && !post {
            return Err(invalid());
        }
        let i = s
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if i == 0 {
            return Err(format!(
                "time: missing unit in duration {}",
                quote(orig.as_bytes())
            ));
        }
        let (u, rest) = s.split_at(i);
        s = rest;
        let unit: u64 = match u {
            b"ns" => 1,
            b"us" => 1_000,
            // U+00B5 micro sign and U+03BC Greek mu.
            b"\xc2\xb5s" | b"\xce\xbcs" => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    quote(u),
                    quote(orig.as_bytes())
                ));
            }
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            // Go: v += uint64(float64(f) * (float64(unit) / scale))
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        // Go adds in uint64 and wraps silently before this check.
        d = d.wrapping_add(v);
        if d > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok(-i128::from(d));
    }
    if d > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(i128::from(d))
}

/// Go's `time.leadingInt`: the leading decimal digits (none is fine) and the
/// rest; `None` on overflow past 2^63.
fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if x > (1u64 << 63) / 10 {
            return None;
        }
        x = x * 10 + u64::from(s[i] - b'0');
        if x > 1u64 << 63 {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

/// Go's `time.leadingFraction`: digits after the period, their scale, the rest.
fn leading_fraction(s: &[u8]) -> (u64, f64, &[u8]) {
    let mut x: u64 = 0;
    let mut scale = 1.0f64;
    let mut overflow = false;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if !overflow {
            if x > ((1u64 << 63) - 1) / 10 {
                overflow = true;
            } else {
                let y = x * 10 + u64::from(s[i] - b'0');
                if y > 1u64 << 63 {
                    overflow = true;
                } else {
                    x = y;
                    scale *= 10.0;
                }
            }
        }
        i += 1;
    }
    (x, scale, &s[i..])
}

/// The layout elements of Go's time package that Docker's layouts use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Std {
    LongYear,
    ZeroMonth,
    ZeroDay,
    Hour,
    ZeroMinute,
    ZeroSecond,
    FracSecond9,
    Iso8601ColonTz,
}

/// Splits `layout` like Go's `nextStdChunk` (for the elements in [`Std`]):
/// literal prefix, element (if any), the element's text, the rest.
fn next_std_chunk(layout: &str) -> (&str, Option<Std>, &str, &str) {
    const TOKENS: [(&str, Std); 8] = [
        ("2006", Std::LongYear),
        ("Z07:00", Std::Iso8601ColonTz),
        (".999999999", Std::FracSecond9),
        ("01", Std::ZeroMonth),
        ("02", Std::ZeroDay),
        ("15", Std::Hour),
        ("04", Std::ZeroMinute),
        ("05", Std::ZeroSecond),
    ];
    for (i, _) in layout.char_indices() {
        let (head, rest) = layout.split_at(i);
        for (tok, std) in TOKENS {
            if let Some(after) = rest.strip_prefix(tok) {
                return (head, Some(std), tok, after);
            }
        }
    }
    (layout, None, "", "")
}

/// Go 1.19 `time.ParseError` text.
fn parse_error(layout: &str, value: &[u8], layout_elem: &str, value_elem: &[u8]) -> String {
    format!(
        "parsing time {} as {}: cannot parse {} as {}",
        quote(value),
        quote(layout.as_bytes()),
        quote(value_elem),
        quote(layout_elem.as_bytes())
    )
}

/// Go 1.19 `time.ParseError` text with a message (`: month out of range`).
fn parse_error_msg(value: &[u8], message: &str) -> String {
    format!("parsing time {}{}", quote(value), message)
}

/// Go's `time.getnum`: one or two digits (exactly two when `fixed`).
fn getnum(s: &[u8], fixed: bool) -> Option<(i64, &[u8])> {
    let digit = |i: usize| s.get(i).is_some_and(u8::is_ascii_digit);
    if !digit(0) {
        return None;
    }
    if !digit(1) {
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

/// Go's `time.atoi`: optional sign, then only digits (empty is zero).
fn time_atoi(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (x, rest) = leading_int(digits)?;
    if !rest.is_empty() {
        return None;
    }
    let x = i64::try_from(x).ok()?;
    Some(if neg { -x } else { x })
}

/// Go 1.19 `parseNanoseconds`: `value` starts with the separator; `nbytes`
/// counts it plus the digits.
fn parse_nanoseconds(value: &[u8], nbytes: usize) -> Result<i64, Option<&'static str>> {
    if !matches!(value.first(), Some(b'.' | b',')) {
        return Err(None);
    }
    let nbytes = nbytes.min(10);
    let mut ns = time_atoi(&value[1..nbytes]).ok_or(None)?;
    if !(0..1_000_000_000).contains(&ns) {
        return Err(Some("fractional second"));
    }
    for _ in 0..(10 - nbytes) {
        ns *= 10;
    }
    Ok(ns)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in(month: i64, year: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1..=12).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Go 1.19 `time.Parse` / `time.ParseInLocation` restricted to the layout
/// elements in [`Std`]. `default_offset` is the fixed zone offset used when
/// the value names no zone (0 = UTC for `Parse`, the daemon's local offset
/// for `ParseInLocation` with `FixedZone(now.Zone())`). Returns Unix nanoseconds.
pub fn parse_time(layout: &str, value: &str, default_offset: i32) -> Result<i128, String> {
    let avalue = value.as_bytes();
    let mut value = avalue;
    let mut layout_rest = layout;
    let (mut year, mut month, mut day) = (0i64, -1i64, -1i64);
    let (mut hour, mut min, mut sec, mut nsec) = (0i64, 0i64, 0i64, 0i64);
    let mut utc = false;
    let mut zone_offset: Option<i64> = None;
    loop {
        let (prefix, std, stdstr, suffix) = next_std_chunk(layout_rest);
        for &p in prefix.as_bytes() {
            if value.first() != Some(&p) {
                return Err(parse_error(layout, avalue, prefix, value));
            }
            value = &value[1..];
        }
        let Some(std) = std else {
            if !value.is_empty() {
                return Err(parse_error_msg(
                    avalue,
                    &format!(": extra text: {}", quote(value)),
                ));
            }
            break;
        };
        layout_rest = suffix;
        let mut range_err: Option<&str> = None;
        let mut bad = false;
        match std {
            Std::LongYear => {
                if value.len() < 4 || !value[0].is_ascii_digit() {
                    bad = true;
                } else {
                    let p = &value[..4];
                    value = &value[4..];
                    match time_atoi(p) {
                        Some(y) => year = y,
                        None => bad = true,
                    }
                }
            }
            Std::ZeroMonth => match getnum(value, true) {
                Some((m, rest)) => {
                    month = m;
                    value = rest;
                    if !(1..=12).contains(&m) {
                        range_err = Some("month");
                    }
                }
                None => bad = true,
            },
            Std::ZeroDay => match getnum(value, true) {
                Some((d, rest)) => {
                    day = d;
                    value = rest;
                }
                None => bad = true,
            },
            Std::Hour => {
                match getnum(value, false) {
                    Some((h, rest)) => {
                        hour = h;
                        value = rest;
                    }
                    None => bad = true,
                }
                if !(0..24).contains(&hour) {
                    range_err = Some("hour");
                }
            }
            Std::ZeroMinute => {
                match getnum(value, true) {
                    Some((m, rest)) => {
                        min = m;
                        value = rest;
                    }
                    None => bad = true,
                }
                if !(0..60).contains(&min) {
                    range_err = Some("minute");
                }
            }
            Std::ZeroSecond => match getnum(value, true) {
                None => bad = true,
                Some((s, rest)) => {
                    sec = s;
                    value = rest;
                    if !(0..60).contains(&sec) {
                        range_err = Some("second");
                    } else if value.len() >= 2
                        && matches!(value[0], b'.' | b',')
                        && value[1].is_ascii_digit()
                        && next_std_chunk(layout_rest).1 != Some(Std::FracSecond9)
                    {
                        // A fractional second the layout does not ask for.
                        let mut n = 2;
                        while n < value.len() && value[n].is_ascii_digit() {
                            n += 1;
                        }
                        match parse_nanoseconds(value, n) {
                            Ok(ns) => nsec = ns,
                            Err(Some(r)) => range_err = Some(r),
                            Err(None) => bad = true,
                        }
                        value = &value[n..];
                    }
                }
            },
            Std::FracSecond9 => {
                if value.len() >= 2 && matches!(value[0], b'.' | b',') && value[1].is_ascii_digit()
                {
                    let mut i = 0;
                    while i < 9 && i + 1 < value.len() && value[i + 1].is_ascii_digit() {
                        i += 1;
                    }
                    match parse_nanoseconds(value, 1 + i) {
                        Ok(ns) => nsec = ns,
                        Err(Some(r)) => range_err = Some(r),
                        Err(None) => bad = true,
                    }
                    value = &value[1 + i..];
                }
            }
            Std::Iso8601ColonTz => {
                if value.first() == Some(&b'Z') {
                    value = &value[1..];
                    utc = true;
                } else if value.len() < 6 || value[3] != b':' {
                    bad = true;
                } else {
                    let (sign, hh, mm) = (value[0], &value[1..3], &value[4..6]);
                    value = &value[6..];
                    match (time_atoi(hh), time_atoi(mm)) {
                        (Some(h), Some(m)) => {
                            let off = (h * 60 + m) * 60;
                            match sign {
                                b'+' => zone_offset = Some(off),
                                b'-' => zone_offset = Some(-off),
                                _ => bad = true,
                            }
                        }
                        _ => bad = true,
                    }
                }
            }
        }
        if let Some(what) = range_err {
            return Err(parse_error_msg(avalue, &format!(": {what} out of range")));
        }
        if bad {
            return Err(parse_error(layout, avalue, stdstr, value));
        }
    }
    if month < 0 {
        month = 1;
    }
    if day < 0 {
        day = 1;
    }
    if day < 1 || day > days_in(month, year) {
        return Err(parse_error_msg(avalue, ": day out of range"));
    }
    let offset = if utc {
        0
    } else {
        zone_offset.unwrap_or(i64::from(default_offset))
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec - offset;
    Ok(i128::from(secs) * NANOS_PER_SEC + i128::from(nsec))
}

/// Docker's `timetypes.GetTimestamp` followed by `ParseTimestamps(ts, 0)` and
/// `time.Unix`: the instant (Unix nanoseconds) an `until`/`since` value names,
/// relative to `now_unix_nanos` in a zone `local_offset_secs` east of UTC.
/// Errors are Go's exact texts.
pub fn get_timestamp(
    value: &str,
    now_unix_nanos: i128,
    local_offset_secs: i32,
) -> Result<i128, String> {
    if value != "0"
        && let Ok(d) = parse_duration(value)
    {
        // reference.Add(-d).Unix(): Go's -d wraps for the minimum duration.
        let neg = if d == i128::from(i64::MIN) { d } else { -d };
        let secs = (now_unix_nanos + neg).div_euclid(NANOS_PER_SEC);
        return Ok(secs * NANOS_PER_SEC);
    }
    let in_location = !value.contains(['z', 'Z', '+']) && value.matches('-').count() != 3;
    let layout = if value.contains('.') {
        if in_location {
            "2006-01-02T15:04:05.999999999"
        } else {
            "2006-01-02T15:04:05.999999999Z07:00"
        }
    } else if value.contains('T') {
        let mut tcolons = value.matches(':').count();
        if !in_location && !value.contains(['z', 'Z']) && tcolons > 0 {
            tcolons -= 1;
        }
        match (in_location, tcolons) {
            (true, 0) => "2006-01-02T15",
            (true, 1) => "2006-01-02T15:04",
            (true, _) => "2006-01-02T15:04:05",
            (false, 0) => "2006-01-02T15Z07:00",
            (false, 1) => "2006-01-02T15:04Z07:00",
            (false, _) => "2006-01-02T15:04:05Z07:00",
        }
    } else if in_location {
        "2006-01-02"
    } else {
        "2006-01-02Z07:00"
    };
    let offset = if in_location { local_offset_secs } else { 0 };
    match parse_time(layout, value, offset) {
        Ok(t) => Ok(t),
        Err(e) if value.contains('-') => Err(e),
        Err(_) => match parse_unix_timestamp(value) {
            Some((s, ns)) => Ok(i128::from(s) * NANOS_PER_SEC + i128::from(ns)),
            None => Err(format!(
                "failed to parse value as time or duration: {}",
                strconv_quote(value)
            )),
        },
    }
}

/// Docker's `parseTimestamp`: `seconds[.fraction]`, the fraction scaled by its
/// length with Go's float arithmetic (`int64(float64(n) * math.Pow(10, 9-len))`).
fn parse_unix_timestamp(value: &str) -> Option<(i64, i64)> {
    let (s, n) = match value.split_once('.') {
        Some((s, n)) => (s, Some(n)),
        None => (value, None),
    };
    let sec = go_parse_int(s)?;
    let Some(n) = n else {
        return Some((sec, 0));
    };
    let nsec = go_parse_int(n)?;
    let exp = 9 - i64::try_from(n.len()).ok()?;
    let nsec = (nsec as f64 * go_pow10(exp)) as i64;
    Some((sec, nsec))
}

/// `strconv.ParseInt(s, 10, 64)`: optional sign, decimal digits, in range.
fn go_parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// Go's pure-Go `math.Pow(10, y)` for integral `y` (repeated squaring on the
/// mantissa, reciprocal for negative `y`), so results round exactly as Go's.
fn go_pow10(y: i64) -> f64 {
    if y == 0 {
        return 1.0;
    }
    if y == 1 {
        return 10.0;
    }
    // frexp(10) = 0.625 * 2^4
    let (mut x1, mut xe) = (0.625f64, 4i64);
    let (mut a1, mut ae) = (1.0f64, 0i64);
    let mut i = y.unsigned_abs();
    while i != 0 {
        if !(-(1 << 12)..=(1 << 12)).contains(&xe) {
            ae += xe;
            break;
        }
        if i & 1 == 1 {
            a1 *= x1;
            ae += xe;
        }
        x1 *= x1;
        xe <<= 1;
        if x1 < 0.5 {
            x1 += x1;
            xe -= 1;
        }
        i >>= 1;
    }
    if y < 0 {
        a1 = 1.0 / a1;
        ae = -ae;
    }
    ldexp(a1, ae)
}

/// `a * 2^e` in steps that stay exact for normal results.
fn ldexp(mut a: f64, mut e: i64) -> f64 {
    while e > 0 {
        let step = e.min(1000);
        a *= 2f64.powi(step as i32);
        e -= step;
    }
    while e < 0 {
        let step = e.max(-1000);
        a *= 2f64.powi(step as i32);
        e -= step;
    }
    a
}

/// Go 1.19 `time.quote`: double quotes, `"` and `\` backslashed, every byte
/// of a non-ASCII or control character (and of invalid UTF-8) as `\xNN`.
pub fn quote(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            if b < b' ' {
                out.push_str(&format!("\\x{b:02x}"));
            } else {
                if b == b'"' || b == b'\\' {
                    out.push('\\');
                }
                out.push(char::from(b));
            }
            i += 1;
            continue;
        }
        // A multi-byte character: escape all its bytes; invalid bytes one by one.
        let width = utf8_width(&s[i..]).unwrap_or(1);
        for &byte in &s[i..i + width] {
            out.push_str(&format!("\\x{byte:02x}"));
        }
        i += width;
    }
    out.push('"');
    out
}

/// Length of the valid UTF-8 sequence at the start of `s`, if it is one.
fn utf8_width(s: &[u8]) -> Option<usize> {
    let n = match s.first()? {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    let head = s.get(..n)?;
    std::str::from_utf8(head).ok().map(|_| n)
}

/// `strconv.Quote` (Go's `%q`): Go escapes for quotes, backslash and
/// non-printable characters; printable Unicode is kept.
pub fn strconv_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped_rune(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// `strconv.appendEscapedRune` for one character.
pub(crate) fn push_escaped_rune(out: &mut String, c: char, quote: char) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if go_is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Approximates Go's `strconv.IsPrint`: letters, marks, numbers, punctuation,
/// symbols and the ASCII space. Exact for U+0000..U+00FF; above that, control,
/// format, private-use, non-character and non-ASCII space characters are
/// treated as non-printable (unassigned code points are not detected).
fn go_is_print(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    if u <= 0xa0 || u == 0xad {
        return false;
    }
    if c.is_whitespace() || c.is_control() {
        return false;
    }
    let format = matches!(u,
        0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2 | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f
        | 0xfeff | 0xfff9..=0xfffb | 0x110bd | 0x110cd | 0x13430..=0x1343f
        | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f);
    let private = matches!(u, 0xe000..=0xf8ff | 0xf0000..=0x10ffff);
    let nonchar = matches!(u, 0xfdd0..=0xfdef) || (u & 0xfffe) == 0xfffe;
    !(format || private || nonchar)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Want = Result<i128, &'static str>;

    const NOW: i128 = 1_700_000_000_123_456_789; // 2023-11-14T22:13:20.123456789Z

    fn secs(s: i64) -> i128 {
        i128::from(s) * NANOS_PER_SEC
    }

    #[test]
    fn durations_parse_like_go() {
        let cases: &[(&str, &str, Want)] = &[
            ("zero", "0", Ok(0)),
            ("signed zero", "-0", Ok(0)),
            ("plus zero", "+0", Ok(0)),
            ("seconds", "90s", Ok(90_000_000_000)),
            ("minutes", "10m", Ok(600_000_000_000)),
            ("fraction of hour", "1.5h", Ok(5_400_000_000_000)),
            ("negative", "-1h", Ok(-3_600_000_000_000)),
            ("plus sign", "+1h", Ok(3_600_000_000_000)),
            ("compound", "2h45m30.5s", Ok(9_930_500_000_000)),
            ("micro sign", "1µs", Ok(1_000)),
            ("greek mu", "1μs", Ok(1_000)),
            ("us", "3us", Ok(3_000)),
            ("ns", "7ns", Ok(7)),
            ("ms", "7ms", Ok(7_000_000)),
            ("trailing period", "1.h", Ok(3_600_000_000_000)),
            ("leading period", ".5s", Ok(500_000_000)),
            ("max", "2562047h", Ok(9_223_369_200_000_000_000)),
            (
                "min",
                "-9223372036854775808ns",
                Ok(-9_223_372_036_854_775_808),
            ),
            (
                "over max",
                "2562048h",
                Err("time: invalid duration \"2562048h\""),
            ),
            (
                "over max ns",
                "9223372036854775808ns",
                Err("time: invalid duration \"9223372036854775808ns\""),
            ),
            (
                "below min",
                "-9223372036854775809ns",
                Err("time: invalid duration \"-9223372036854775809ns\""),
            ),
            ("empty", "", Err("time: invalid duration \"\"")),
            ("sign only", "-", Err("time: invalid duration \"-\"")),
            ("no number", "h", Err("time: invalid duration \"h\"")),
            ("period only", ".h", Err("time: invalid duration \".h\"")),
            ("no unit", "1", Err("time: missing unit in duration \"1\"")),
            (
                "double zero",
                "00",
                Err("time: missing unit in duration \"00\""),
            ),
            (
                "unit then digit",
                "1h1",
                Err("time: missing unit in duration \"1h1\""),
            ),
            (
                "unknown unit",
                "1d",
                Err("time: unknown unit \"d\" in duration \"1d\""),
            ),
            (
                "unknown unit utf8",
                "1é",
                Err("time: unknown unit \"\\xc3\\xa9\" in duration \"1\\xc3\\xa9\""),
            ),
            (
                "two periods",
                "1.5.5h",
                Err("time: missing unit in duration \"1.5.5h\""),
            ),
            ("space", " 1s", Err("time: invalid duration \" 1s\"")),
            (
                "go wraps the sum",
                "9223372036854775808ns9223372036854775808ns",
                Ok(0),
            ),
        ];
        for (name, input, want) in cases {
            let got = parse_duration(input);
            assert_eq!(got, want.map_err(str::to_string), "case {name}: {input:?}");
        }
    }

    #[test]
    fn times_parse_like_go_1_19() {
        let cases: &[(&str, &str, &str, i32, Want)] = &[
            (
                "date local",
                "2006-01-02",
                "2020-01-01",
                3600,
                Ok(secs(1_577_833_200)),
            ),
            (
                "date utc",
                "2006-01-02",
                "2020-01-01",
                0,
                Ok(secs(1_577_836_800)),
            ),
            (
                "date Z",
                "2006-01-02Z07:00",
                "2020-01-01Z",
                3600,
                Ok(secs(1_577_836_800)),
            ),
            (
                "date offset",
                "2006-01-02Z07:00",
                "2020-01-01+01:00",
                0,
                Ok(secs(1_577_833_200)),
            ),
            (
                "hour only",
                "2006-01-02T15",
                "2020-01-01T1",
                0,
                Ok(secs(1_577_840_400)),
            ),
            (
                "nanos",
                "2006-01-02T15:04:05.999999999Z07:00",
                "2020-01-01T00:00:00.5-01:00",
                0,
                Ok(secs(1_577_840_400) + 500_000_000),
            ),
            (
                "comma frac without layout",
                "2006-01-02T15:04:05",
                "2020-01-01T00:00:00,1234567891",
                0,
                Ok(secs(1_577_836_800) + 123_456_789),
            ),
            (
                "offset out of range accepted",
                "2006-01-02T15:04:05Z07:00",
                "2020-01-01T00:00:00+25:00",
                0,
                Ok(secs(1_577_836_800 - 90_000)),
            ),
            (
                "signed offset hour",
                "2006-01-02T15:04:05Z07:00",
                "2020-01-01T00:00:00+-1:00",
                0,
                Ok(secs(1_577_836_800 + 3600)),
            ),
            (
                "year zero",
                "2006-01-02",
                "0000-01-01",
                0,
                Ok(secs(-62_167_219_200)),
            ),
            (
                "leap day",
                "2006-01-02",
                "2020-02-29",
                0,
                Ok(secs(1_582_934_400)),
            ),
            (
                "month range",
                "2006-01-02",
                "2020-13-01",
                0,
                Err("parsing time \"2020-13-01\": month out of range"),
            ),
            (
                "month zero",
                "2006-01-02",
                "2020-00-10",
                0,
                Err("parsing time \"2020-00-10\": month out of range"),
            ),
            (
                "day range",
                "2006-01-02",
                "2020-01-32",
                0,
                Err("parsing time \"2020-01-32\": day out of range"),
            ),
            (
                "day zero",
                "2006-01-02",
                "2020-01-00",
                0,
                Err("parsing time \"2020-01-00\": day out of range"),
            ),
            (
                "no leap",
                "2006-01-02",
                "2019-02-29",
                0,
                Err("parsing time \"2019-02-29\": day out of range"),
            ),
            (
                "hour range",
                "2006-01-02T15",
                "2020-01-01T24",
                0,
                Err("parsing time \"2020-01-01T24\": hour out of range"),
            ),
            (
                "minute range",
                "2006-01-02T15:04",
                "2020-01-01T10:61",
                0,
                Err("parsing time \"2020-01-01T10:61\": minute out of range"),
            ),
            (
                "second range",
                "2006-01-02T15:04:05",
                "2020-01-01T10:00:60",
                0,
                Err("parsing time \"2020-01-01T10:00:60\": second out of range"),
            ),
            (
                "one digit month",
                "2006-01-02",
                "2020-1-1",
                0,
                Err("parsing time \"2020-1-1\" as \"2006-01-02\": cannot parse \"1-1\" as \"01\""),
            ),
            (
                "short year reports advanced value",
                "2006-01-02",
                "20-01-01",
                0,
                Err(
                    "parsing time \"20-01-01\" as \"2006-01-02\": cannot parse \"1-01\" as \"2006\"",
                ),
            ),
            (
                "prefix mismatch",
                "2006-01-02",
                "02020-01-01",
                0,
                Err(
                    "parsing time \"02020-01-01\" as \"2006-01-02\": cannot parse \"0-01-01\" as \"-\"",
                ),
            ),
            (
                "extra text",
                "2006-01-02",
                "2020-01-01x",
                0,
                Err("parsing time \"2020-01-01x\": extra text: \"x\""),
            ),
            (
                "empty hour",
                "2006-01-02T15",
                "2020-01-01T",
                0,
                Err(
                    "parsing time \"2020-01-01T\" as \"2006-01-02T15\": cannot parse \"\" as \"15\"",
                ),
            ),
            (
                "ten frac digits",
                "2006-01-02T15:04:05.999999999",
                "2020-01-01T10:00:00.1234567891",
                0,
                Err("parsing time \"2020-01-01T10:00:00.1234567891\": extra text: \"1\""),
            ),
            (
                "lower z",
                "2006-01-02T15:04:05Z07:00",
                "2020-01-01T10:00:00z",
                0,
                Err(
                    "parsing time \"2020-01-01T10:00:00z\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"z\" as \"Z07:00\"",
                ),
            ),
            (
                "bad offset digits",
                "2006-01-02T15:04:05Z07:00",
                "2020-01-01T10:00:00+1x:00",
                0,
                Err(
                    "parsing time \"2020-01-01T10:00:00+1x:00\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"\" as \"Z07:00\"",
                ),
            ),
            (
                "dot then zone",
                "2006-01-02T15:04:05.999999999Z07:00",
                "2020-01-01T10:00:00.Z",
                0,
                Err(
                    "parsing time \"2020-01-01T10:00:00.Z\" as \"2006-01-02T15:04:05.999999999Z07:00\": cannot parse \".Z\" as \"Z07:00\"",
                ),
            ),
            (
                "non-ascii value",
                "2006-01-02",
                "é-",
                0,
                Err(
                    "parsing time \"\\xc3\\xa9-\" as \"2006-01-02\": cannot parse \"\\xc3\\xa9-\" as \"2006\"",
                ),
            ),
        ];
        for (name, layout, value, off, want) in cases {
            let got = parse_time(layout, value, *off);
            assert_eq!(got, want.map_err(str::to_string), "case {name}: {value:?}");
        }
    }

    #[test]
    fn get_timestamp_picks_layouts_like_docker() {
        let cases: &[(&str, &str, i32, Want)] = &[
            ("duration", "1h", 0, Ok(secs(1_700_000_000 - 3600))),
            (
                "negative duration",
                "-1h",
                0,
                Ok(secs(1_700_000_000 + 3600)),
            ),
            ("zero duration spelled 0s", "0s", 0, Ok(secs(1_700_000_000))),
            ("literal zero is epoch", "0", 0, Ok(0)),
            ("double zero is epoch", "00", 0, Ok(0)),
            ("unix seconds", "1600000000", 0, Ok(secs(1_600_000_000))),
            ("unix fraction", "1.5", 0, Ok(secs(1) + 500_000_000)),
            ("unix long fraction", "1.0000000001", 0, Ok(secs(1))),
            ("unix plus", "+5", 0, Ok(secs(5))),
            ("unix plus fraction", "1.+5", 0, Ok(secs(1) + 50_000_000)),
            (
                "local date",
                "2020-01-01",
                7200,
                Ok(secs(1_577_836_800 - 7200)),
            ),
            (
                "local minutes",
                "2020-01-01T10:00",
                0,
                Ok(secs(1_577_872_800)),
            ),
            (
                "local nanos",
                "2020-01-01T10:00:00.123",
                0,
                Ok(secs(1_577_872_800) + 123_000_000),
            ),
            (
                "zoned hours",
                "2020-01-01T10+01:00",
                3600 * 5,
                Ok(secs(1_577_869_200)),
            ),
            (
                "three dashes zoned",
                "2020-01-01T10:00:00-01:00",
                3600 * 5,
                Ok(secs(1_577_876_400)),
            ),
            (
                "x",
                "x",
                0,
                Err("failed to parse value as time or duration: \"x\""),
            ),
            (
                "empty",
                "",
                0,
                Err("failed to parse value as time or duration: \"\""),
            ),
            (
                "space",
                " 1",
                0,
                Err("failed to parse value as time or duration: \" 1\""),
            ),
            (
                "unicode kept",
                "é",
                0,
                Err("failed to parse value as time or duration: \"é\""),
            ),
            (
                "control escaped",
                "\u{1}",
                0,
                Err("failed to parse value as time or duration: \"\\x01\""),
            ),
            (
                "too big",
                "99999999999999999999",
                0,
                Err("failed to parse value as time or duration: \"99999999999999999999\""),
            ),
            (
                "bare period",
                "1.",
                0,
                Err("failed to parse value as time or duration: \"1.\""),
            ),
            (
                "no seconds",
                ".5",
                0,
                Err("failed to parse value as time or duration: \".5\""),
            ),
            (
                "slash date",
                "2020/01/01",
                0,
                Err("failed to parse value as time or duration: \"2020/01/01\""),
            ),
            (
                "days",
                "1d",
                0,
                Err("failed to parse value as time or duration: \"1d\""),
            ),
            (
                "dash makes it a date",
                "1h-",
                0,
                Err("parsing time \"1h-\" as \"2006-01-02\": cannot parse \"1h-\" as \"2006\""),
            ),
            (
                "negative overflow is a date",
                "-2562048h",
                0,
                Err(
                    "parsing time \"-2562048h\" as \"2006-01-02\": cannot parse \"-2562048h\" as \"2006\"",
                ),
            ),
            (
                "month",
                "2020-13-01",
                0,
                Err("parsing time \"2020-13-01\": month out of range"),
            ),
            (
                "offset without colon",
                "2020-01-01T10:00:00+0100",
                0,
                Err(
                    "parsing time \"2020-01-01T10:00:00+0100\" as \"2006-01-02T15:04Z07:00\": cannot parse \":00+0100\" as \"Z07:00\"",
                ),
            ),
            (
                "four dashes",
                "2020-01-01-01",
                0,
                Err(
                    "parsing time \"2020-01-01-01\" as \"2006-01-02Z07:00\": cannot parse \"-01\" as \"Z07:00\"",
                ),
            ),
            (
                "zoned T negative hour",
                "2020-01-01T-1",
                0,
                Err(
                    "parsing time \"2020-01-01T-1\" as \"2006-01-02T15Z07:00\": cannot parse \"-1\" as \"15\"",
                ),
            ),
            (
                "lowercase t",
                "2020-01-01t10",
                0,
                Err("parsing time \"2020-01-01t10\": extra text: \"t10\""),
            ),
            (
                "space time",
                "2020-01-01 10:00",
                0,
                Err("parsing time \"2020-01-01 10:00\": extra text: \" 10:00\""),
            ),
            (
                "Z then offset",
                "2020-01-01T10:00:00Z+01:00",
                0,
                Err("parsing time \"2020-01-01T10:00:00Z+01:00\": extra text: \"+01:00\""),
            ),
            (
                "plus date",
                "+2020-01-01",
                0,
                Err(
                    "parsing time \"+2020-01-01\" as \"2006-01-02Z07:00\": cannot parse \"+2020-01-01\" as \"2006\"",
                ),
            ),
        ];
        for (name, value, off, want) in cases {
            let got = get_timestamp(value, NOW, *off);
            assert_eq!(got, want.map_err(str::to_string), "case {name}: {value:?}");
        }
    }

    #[test]
    fn duration_result_is_floored_to_seconds_before_epoch() {
        assert_eq!(get_timestamp("1500ms", 1_000_000_000, 0), Ok(secs(-1)));
        assert_eq!(
            get_timestamp("-9223372036854775808ns", 0, 0),
            Ok(i128::from(i64::MIN).div_euclid(NANOS_PER_SEC) * NANOS_PER_SEC)
        );
    }

    #[test]
    fn go_pow10_matches_exact_powers() {
        assert_eq!(go_pow10(0), 1.0);
        assert_eq!(go_pow10(8), 1e8);
        assert_eq!(go_pow10(22), 1e22);
        assert_eq!(go_pow10(-1), 0.1);
        assert_eq!(go_pow10(-10), 1.0 / 1e10);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote(b"\x01\xff"), "\"\\x01\\xff\"");
        assert_eq!(quote("µ".as_bytes()), "\"\\xc2\\xb5\"");
        assert_eq!(
            strconv_quote("a\"\\\n\t\u{7f}\u{80}\u{a0}é\u{200b}😀"),
            "\"a\\\"\\\\\\n\\t\\x7f\\u0080\\u00a0é\\u200b😀\""
        );
    }
}
