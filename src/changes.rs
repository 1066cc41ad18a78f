//! Docker 20.10's `dockerfile.BuildFromConfig`: `changes` (Dockerfile lines,
//! as given to `docker import -c` and `docker commit -c`) applied to a
//! container config (image-service.md §5.4).
//!
//! The stages, and so which error wins, are Docker's:
//!
//! 1. the lines are joined with `\n` and parsed as a Dockerfile (buildkit's
//!    parser as vendored in moby 20.10: parser directives, comments, line
//!    continuations, JSON or shell forms, `KEY=value` words, flags);
//! 2. every instruction must be one of `CMD`, `ENTRYPOINT`, `HEALTHCHECK`,
//!    `ENV`, `EXPOSE`, `LABEL`, `ONBUILD`, `USER`, `VOLUME`, `WORKDIR`
//!    (`<instr> is not a valid change command`, lowercased);
//! 3. each instruction is checked (argument counts, flags, healthcheck
//!    options, `ONBUILD` triggers);
//! 4. each is dispatched in order onto the config, with `$var` expansion
//!    from the config's current `Env` (`ENV`, `LABEL`, `WORKDIR`, `USER`,
//!    `VOLUME` words; `EXPOSE` words may split into several ports).
//!
//! Every error is InvalidArgument (HTTP 400) with Docker's text.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{ContainerConfig, HealthConfig};
use crate::error::{Error, Result};
use crate::reference::go_quote;

/// `container.MinimumDuration`: 1ms.
const MINIMUM_DURATION: i64 = 1_000_000;

fn invalid(msg: impl std::fmt::Display) -> Error {
    Error::invalid(msg)
}

/// Apply `changes` to a copy of `config` (`BuildFromConfig`). No changes:
/// the config unchanged.
pub(crate) fn build_from_config(
    config: &ContainerConfig,
    changes: &[String],
) -> Result<ContainerConfig> {
    let parsed = Changes::parse(changes)?;
    let mut out = config.clone();
    parsed.apply(&mut out)?;
    Ok(out)
}

/// Parsed and checked changes (stages 1–3), ready to be applied.
#[derive(Clone, Debug, Default)]
pub(crate) struct Changes {
    escape: char,
    commands: Vec<Command>,
}

#[derive(Clone, Debug)]
enum Command {
    Cmd(CmdLine),
    Entrypoint(CmdLine),
    Healthcheck(HealthConfig),
    Env(Vec<(String, String)>),
    Expose(Vec<String>),
    Label(Vec<(String, String)>),
    Onbuild(String),
    User(String),
    Volume(Vec<String>),
    Workdir(String),
}

#[derive(Clone, Debug)]
struct CmdLine {
    args: Vec<String>,
    prepend_shell: bool,
}

impl Changes {
    /// Stages 1–3. An empty list parses to nothing (and applies nothing).
    pub(crate) fn parse(changes: &[String]) -> Result<Changes> {
        if changes.is_empty() {
            return Ok(Changes {
                escape: '\\',
                commands: Vec::new(),
            });
        }
        let (nodes, escape) = parse_dockerfile(&changes.join("\n")).map_err(invalid)?;
        for n in &nodes {
            if !matches!(
                n.value.as_str(),
                "cmd"
                    | "entrypoint"
                    | "healthcheck"
                    | "env"
                    | "expose"
                    | "label"
                    | "onbuild"
                    | "user"
                    | "volume"
                    | "workdir"
            ) {
                return Err(invalid(format!(
                    "{} is not a valid change command",
                    n.value
                )));
            }
        }
        let mut commands = Vec::with_capacity(nodes.len());
        for n in &nodes {
            commands.push(parse_instruction(n).map_err(invalid)?);
        }
        Ok(Changes { escape, commands })
    }

    /// Stage 4: dispatch every instruction onto `cfg`, in order.
    pub(crate) fn apply(&self, cfg: &mut ContainerConfig) -> Result<()> {
        let mut cmd_set = false;
        for c in &self.commands {
            dispatch(cfg, c, self.escape, &mut cmd_set).map_err(invalid)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Stage 1: the Dockerfile parser.

#[derive(Clone, Debug, Default)]
struct Node {
    /// Lowercased instruction.
    value: String,
    /// The whole (joined) line.
    original: String,
    flags: Vec<String>,
    /// Go's `nodeArgs`: for `ONBUILD`, the sub-instruction and its line.
    args: Vec<String>,
    json: bool,
}

struct Directives {
    escape: char,
    seen: bool,
    complete: bool,
}

impl Directives {
    fn possible_directive(&mut self, line: &str) -> std::result::Result<(), String> {
        if self.complete {
            return Ok(());
        }
        // ^#[ \t]*escape[ \t]*=[ \t]*(?P<escapechar>.).*$ on the lowercased line.
        let lower = line.to_lowercase();
        if let Some(c) = escape_directive(&lower) {
            if self.seen {
                return Err("only one escape parser directive can be used".into());
            }
            self.seen = true;
            if c != '`' && c != '\\' {
                return Err(format!("invalid escape token '{c}' does not match ` or \\"));
            }
            self.escape = c;
            return Ok(());
        }
        self.complete = true;
        Ok(())
    }
}

fn escape_directive(line: &str) -> Option<char> {
    let rest = line.strip_prefix('#')?;
    let rest = rest.trim_start_matches([' ', '\t']);
    let rest = rest.strip_prefix("escape")?;
    let rest = rest.trim_start_matches([' ', '\t']);
    let rest = rest.strip_prefix('=')?;
    let rest = rest.trim_start_matches([' ', '\t']);
    let c = rest.chars().next()?;
    if rest.contains('\n') {
        return None;
    }
    Some(c)
}

fn trim_left_space(s: &str) -> &str {
    s.trim_start_matches(char::is_whitespace)
}

fn is_comment(line: &str) -> bool {
    trim_left_space(line).starts_with('#')
}

fn trim_comments(s: &str) -> &str {
    if is_comment(s) { "" } else { s }
}

fn process_line<'a>(
    d: &mut Directives,
    token: &'a str,
    strip_left: bool,
) -> std::result::Result<&'a str, String> {
    let token = if strip_left {
        trim_left_space(token)
    } else {
        token
    };
    d.possible_directive(token)?;
    Ok(trim_comments(token))
}

/// `<escape>[ \t]*$` removed: (line, is end of line).
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    if let Some(rest) = trimmed.strip_suffix(escape) {
        return (rest.to_string(), false);
    }
    (line.to_string(), true)
}

/// bufio.Scanner's ScanLines: split on `\n`, drop one trailing `\r`, no
/// final empty line.
fn scan_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    if text.ends_with('\n') || text.is_empty() {
        lines.pop();
    }
    lines
        .into_iter()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

fn parse_dockerfile(text: &str) -> std::result::Result<(Vec<Node>, char), String> {
    let mut d = Directives {
        escape: '\\',
        seen: false,
        complete: false,
    };
    let lines = scan_lines(text);
    let mut nodes = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let mut raw = lines[i];
        if i == 0 {
            raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        }
        i += 1;
        let first = process_line(&mut d, raw, true)?;
        let (mut line, mut eol) = trim_continuation(first, d.escape);
        if eol && line.is_empty() {
            continue;
        }
        while !eol && i < lines.len() {
            let raw = lines[i];
            i += 1;
            let b = process_line(&mut d, raw, false)?;
            if is_comment(raw) {
                continue;
            }
            if trim_comments(trim_left_space(b)).is_empty() {
                continue;
            }
            let (more, e) = trim_continuation(b, d.escape);
            line.push_str(&more);
            eol = e;
        }
        nodes.push(node_from_line(&line, &d)?);
    }
    if nodes.is_empty() {
        return Err("file with no instructions".into());
    }
    Ok((nodes, d.escape))
}

fn is_token_ws(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

fn node_from_line(line: &str, d: &Directives) -> std::result::Result<Node, String> {
    let trimmed = line.trim_matches(char::is_whitespace);
    let (cmd, rest) = match trimmed.find(is_token_ws) {
        Some(i) => (
            &trimmed[..i],
            Some(trimmed[i..].trim_start_matches(is_token_ws)),
        ),
        None => (trimmed, None),
    };
    let cmd = cmd.to_lowercase();
    let (args, flags) = match rest {
        Some(r) => extract_builder_flags(r),
        None => (String::new(), Vec::new()),
    };
    let args = args.trim_matches(char::is_whitespace).to_string();
    let (args, json) = match cmd.as_str() {
        "add" | "copy" | "run" | "cmd" | "entrypoint" | "shell" => parse_maybe_json(&args)?,
        "env" | "label" => (parse_name_val(&args, &cmd.to_uppercase(), d.escape)?, false),
        "expose" | "from" => (whitespace_delimited(&args), false),
        "volume" => parse_maybe_json_to_list(&args)?,
        "healthcheck" => parse_health_config(&args)?,
        "maintainer" | "stopsignal" | "user" | "workdir" => {
            (if args.is_empty() { vec![] } else { vec![args] }, false)
        }
        "onbuild" => {
            if args.is_empty() {
                (vec![], false)
            } else {
                let sub = node_from_line(&args, d)?;
                (vec![sub.value, sub.original], false)
            }
        }
        _ => (vec![], false),
    };
    Ok(Node {
        value: cmd,
        original: line.to_string(),
        flags,
        args,
        json,
    })
}

/// Go's `unicode.IsSpace(rune(b))` of a single byte.
fn is_space_byte(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0x85 | 0xa0)
}

/// Leading `--flag` words (buildkit's `extractBuilderFlags`).
fn extract_builder_flags(line: &str) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let b = line.as_bytes();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word: Vec<u8> = Vec::new();
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut pos = 0;
    let to_s = |w: &[u8]| String::from_utf8_lossy(w).into_owned();
    while pos <= b.len() {
        let ch = if pos < b.len() { b[pos] } else { 0 };
        if phase == Phase::Spaces {
            if pos == b.len() {
                break;
            }
            if is_space_byte(ch) {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == b.len() || b[pos + 1] != b'-' {
                return (to_s(&b[pos..]), words);
            }
            phase = Phase::Word;
        }
        if pos == b.len() {
            if word != b"--" && (blank_ok || !word.is_empty()) {
                words.push(to_s(&word));
            }
            break;
        }
        if phase == Phase::Word {
            if is_space_byte(ch) {
                phase = Phase::Spaces;
                if word == b"--" {
                    return (to_s(&b[pos..]), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(to_s(&word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            let mut c = ch;
            if c == b'\\' {
                if pos + 1 == b.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                c = b[pos];
            }
            word.push(c);
            pos += 1;
            continue;
        }
        // In a quote.
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        let mut c = ch;
        if c == b'\\' {
            if pos + 1 == b.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            c = b[pos];
        }
        word.push(c);
        pos += 1;
    }
    (String::new(), words)
}

const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

enum JsonForm {
    Strings(Vec<String>),
    NotStrings,
    Invalid,
}

/// Go's `json.NewDecoder(rest).Decode(&[]interface{})`: the first JSON
/// value only (trailing text ignored).
fn parse_json_array(rest: &str) -> JsonForm {
    let rest = rest.trim_start_matches(char::is_whitespace);
    if !rest.starts_with('[') {
        return JsonForm::Invalid;
    }
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
    match stream.next() {
        Some(Ok(serde_json::Value::Array(items))) => {
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                match it {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return JsonForm::NotStrings,
                }
            }
            JsonForm::Strings(out)
        }
        _ => JsonForm::Invalid,
    }
}

fn parse_maybe_json(rest: &str) -> std::result::Result<(Vec<String>, bool), String> {
    if rest.is_empty() {
        return Ok((vec![], false));
    }
    match parse_json_array(rest) {
        JsonForm::Strings(v) => Ok((v, true)),
        JsonForm::NotStrings => Err(NOT_STRING_ARRAY.into()),
        JsonForm::Invalid => Ok((vec![rest.to_string()], false)),
    }
}

fn parse_maybe_json_to_list(rest: &str) -> std::result::Result<(Vec<String>, bool), String> {
    match parse_json_array(rest) {
        JsonForm::Strings(v) => Ok((v, true)),
        JsonForm::NotStrings => Err(NOT_STRING_ARRAY.into()),
        JsonForm::Invalid => Ok((whitespace_delimited(rest), false)),
    }
}

fn whitespace_delimited(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return vec![];
    }
    rest.split(is_token_ws)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_health_config(rest: &str) -> std::result::Result<(Vec<String>, bool), String> {
    let b = rest.as_bytes();
    let is_space = is_space_byte;
    let mut sep = 0;
    while sep < b.len() && !is_space(b[sep]) {
        sep += 1;
    }
    let mut next = sep;
    while next < b.len() && is_space(b[next]) {
        next += 1;
    }
    if sep == 0 {
        return Ok((vec![], false));
    }
    // Go looks at single bytes as runes, so a byte of a multi-byte character
    // (0x85, 0xA0) counts as a space and the split may fall inside the
    // character; the halves are then not UTF-8 (found by fuzzing).
    let (more, json) = parse_maybe_json(&String::from_utf8_lossy(&b[next..]))?;
    let mut args = vec![String::from_utf8_lossy(&b[..sep]).into_owned()];
    args.extend(more);
    Ok((args, json))
}

/// buildkit's `parseWords`: words split on whitespace, quotes kept.
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= chars.len() {
        let mut ch = if pos < chars.len() { chars[pos] } else { '\0' };
        if phase == Phase::Spaces {
            if pos == chars.len() {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if pos == chars.len() {
            if blank_ok || !word.is_empty() {
                words.push(word.clone());
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                word.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        // In a quote.
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            word.push(ch);
            ch = chars[pos];
        }
        word.push(ch);
        pos += 1;
    }
    words
}

fn parse_name_val(rest: &str, key: &str, escape: char) -> std::result::Result<Vec<String>, String> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Ok(vec![]);
    }
    if !words[0].contains('=') {
        let Some(i) = rest.find(is_token_ws) else {
            return Err(format!("{key} must have two arguments"));
        };
        let value = rest[i..].trim_start_matches(is_token_ws);
        return Ok(vec![rest[..i].to_string(), value.to_string()]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                go_quote(&w)
            ));
        };
        out.push(k.to_string());
        out.push(v.to_string());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Stage 3: instructions.

/// buildkit's `BFlags` with string flags only.
struct Flags<'a> {
    args: &'a [String],
    defined: &'a [&'a str],
}

impl Flags<'_> {
    fn parse(&self) -> std::result::Result<BTreeMap<String, String>, String> {
        let mut used = BTreeMap::new();
        for arg in self.args {
            let Some(a) = arg.strip_prefix("--") else {
                return Err(format!("Arg should start with -- : {arg}"));
            };
            if a.is_empty() {
                return Ok(used);
            }
            let (name, value) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (a, None),
            };
            if !self.defined.contains(&name) {
                return Err(format!("Unknown flag: {name}"));
            }
            if used.contains_key(name) {
                return Err(format!("Duplicate flag specified: {name}"));
            }
            let Some(value) = value else {
                return Err(format!("Missing a value on flag: {name}"));
            };
            used.insert(name.to_string(), value.to_string());
        }
        Ok(used)
    }
}

fn no_flags(n: &Node) -> std::result::Result<(), String> {
    Flags {
        args: &n.flags,
        defined: &[],
    }
    .parse()
    .map(|_| ())
}

fn parse_kvps(args: &[String], name: &str) -> std::result::Result<Vec<(String, String)>, String> {
    if args.is_empty() {
        return Err(format!("{name} requires at least one argument"));
    }
    if !args.len().is_multiple_of(2) {
        return Err(format!("Bad input to {name}, too many arguments"));
    }
    let mut out = Vec::new();
    for pair in args.chunks(2) {
        if pair[0].is_empty() {
            return Err(format!("{name} names can not be blank"));
        }
        out.push((pair[0].clone(), pair[1].clone()));
    }
    Ok(out)
}

fn shell_dependant(n: &Node) -> CmdLine {
    let args = if n.args.is_empty() {
        vec![]
    } else if n.json {
        n.args.clone()
    } else {
        vec![n.args.join(" ")]
    };
    CmdLine {
        args,
        prepend_shell: !n.json,
    }
}

fn parse_instruction(n: &Node) -> std::result::Result<Command, String> {
    Ok(match n.value.as_str() {
        "env" => {
            no_flags(n)?;
            Command::Env(parse_kvps(&n.args, "ENV")?)
        }
        "label" => {
            no_flags(n)?;
            Command::Label(parse_kvps(&n.args, "LABEL")?)
        }
        "cmd" => {
            no_flags(n)?;
            Command::Cmd(shell_dependant(n))
        }
        "entrypoint" => {
            no_flags(n)?;
            Command::Entrypoint(shell_dependant(n))
        }
        "expose" => {
            if n.args.is_empty() {
                return Err("EXPOSE requires at least one argument".into());
            }
            no_flags(n)?;
            let mut ports = n.args.clone();
            ports.sort();
            Command::Expose(ports)
        }
        "user" | "workdir" => {
            let upper = n.value.to_uppercase();
            if n.args.len() != 1 {
                return Err(format!("{upper} requires exactly one argument"));
            }
            no_flags(n)?;
            if n.value == "user" {
                Command::User(n.args[0].clone())
            } else {
                Command::Workdir(n.args[0].clone())
            }
        }
        "volume" => {
            if n.args.is_empty() {
                return Err("VOLUME requires at least one argument".into());
            }
            no_flags(n)?;
            let mut vols = Vec::new();
            for v in &n.args {
                let v = v.trim_matches(char::is_whitespace);
                if v.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                vols.push(v.to_string());
            }
            Command::Volume(vols)
        }
        "onbuild" => {
            if n.args.is_empty() {
                return Err("ONBUILD requires at least one argument".into());
            }
            no_flags(n)?;
            let trigger = n.args[0].trim_matches(char::is_whitespace).to_uppercase();
            match trigger.as_str() {
                "ONBUILD" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into());
                }
                "MAINTAINER" | "FROM" => {
                    return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"));
                }
                _ => {}
            }
            Command::Onbuild(strip_onbuild(&n.original).to_string())
        }
        "healthcheck" => Command::Healthcheck(parse_healthcheck(n)?),
        other => return Err(format!("{other} is not a valid change command")),
    })
}

/// `(?i)^\s*ONBUILD\s*` removed (Go's `\s` is `[\t\n\f\r ]`).
fn strip_onbuild(original: &str) -> &str {
    let is_s = |c: char| matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ');
    let rest = original.trim_start_matches(is_s);
    match rest.get(..7) {
        Some(head) if head.eq_ignore_ascii_case("onbuild") => rest[7..].trim_start_matches(is_s),
        _ => original,
    }
}

fn parse_healthcheck(n: &Node) -> std::result::Result<HealthConfig, String> {
    if n.args.is_empty() {
        return Err("HEALTHCHECK requires at least one argument".into());
    }
    let typ = n.args[0].to_uppercase();
    let args = &n.args[1..];
    if typ == "NONE" {
        if !args.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(HealthConfig {
            test: vec![typ],
            ..HealthConfig::default()
        });
    }
    let flags = Flags {
        args: &n.flags,
        defined: &["interval", "timeout", "start-period", "retries"],
    }
    .parse()?;
    let mut hc = HealthConfig::default();
    if typ != "CMD" {
        return Err(format!(
            "Unknown type {} in HEALTHCHECK (try CMD)",
            go_quote(&typ)
        ));
    }
    let cmd: Vec<String> = if args.is_empty() {
        vec![]
    } else if n.json {
        args.to_vec()
    } else {
        vec![args.join(" ")]
    };
    if cmd.is_empty() {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    hc.test = vec![if n.json { "CMD" } else { "CMD-SHELL" }.to_string()];
    hc.test.extend(cmd);
    let get = |k: &str| flags.get(k).map(String::as_str).unwrap_or("");
    hc.interval = parse_opt_interval("interval", get("interval"))?;
    hc.timeout = parse_opt_interval("timeout", get("timeout"))?;
    hc.start_period = parse_opt_interval("start-period", get("start-period"))?;
    let retries = get("retries");
    if !retries.is_empty() {
        let r = parse_int32(retries)?;
        if r < 1 {
            return Err(format!("--retries must be at least 1 (not {r})"));
        }
        hc.retries = r;
    }
    Ok(hc)
}

fn parse_opt_interval(name: &str, s: &str) -> std::result::Result<i64, String> {
    if s.is_empty() {
        return Ok(0);
    }
    let d = i64::try_from(crate::gotime::parse_duration(s)?).unwrap_or(i64::MAX);
    if d < MINIMUM_DURATION {
        return Err(format!(
            "Interval {} cannot be less than 1ms",
            go_quote(name)
        ));
    }
    Ok(d)
}

/// `strconv.ParseInt(s, 10, 32)`.
fn parse_int32(s: &str) -> std::result::Result<i64, String> {
    let err = |why: &str| format!("strconv.ParseInt: parsing {}: {why}", go_quote(s));
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("invalid syntax"));
    }
    let mut v: u64 = 0;
    for b in digits.bytes() {
        v = v.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    let limit: u64 = if neg { 1 << 31 } else { (1 << 31) - 1 };
    if v > limit {
        return Err(err("value out of range"));
    }
    let v = i64::try_from(v).unwrap_or(i64::MAX);
    Ok(if neg { -v } else { v })
}

// ---------------------------------------------------------------------------
// Stage 4: dispatch.

fn dispatch(
    cfg: &mut ContainerConfig,
    c: &Command,
    escape: char,
    cmd_set: &mut bool,
) -> std::result::Result<(), String> {
    let env = cfg.env.clone().unwrap_or_default();
    let word = |w: &str| process_word(w, &env, escape);
    match c {
        Command::Env(kvs) => {
            let mut expanded = Vec::with_capacity(kvs.len());
            for (k, v) in kvs {
                expanded.push((word(k)?, word(v)?));
            }
            let list = cfg.env.get_or_insert_with(Vec::new);
            for (k, v) in expanded {
                let new_var = format!("{k}={v}");
                match list
                    .iter_mut()
                    .find(|e| e.split('=').next().unwrap_or("") == k)
                {
                    Some(slot) => *slot = new_var,
                    None => list.push(new_var),
                }
            }
        }
        Command::Label(kvs) => {
            let mut expanded = Vec::with_capacity(kvs.len());
            for (k, v) in kvs {
                expanded.push((word(k)?, word(v)?));
            }
            let labels = cfg.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in expanded {
                labels.insert(k, v);
            }
        }
        Command::Workdir(p) => {
            let p = word(p)?;
            cfg.working_dir = normalize_workdir(&cfg.working_dir, &p)?;
        }
        Command::User(u) => cfg.user = word(u)?,
        Command::Volume(vols) => {
            let mut expanded = Vec::with_capacity(vols.len());
            for v in vols {
                expanded.push(word(v)?);
            }
            let set = cfg.volumes.get_or_insert_with(BTreeSet::new);
            for v in expanded {
                if v.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                set.insert(v);
            }
        }
        Command::Onbuild(expr) => cfg.on_build.get_or_insert_with(Vec::new).push(expr.clone()),
        Command::Cmd(line) => {
            cfg.cmd = Some(resolve_cmd_line(line, cfg));
            cfg.args_escaped = false;
            if !line.args.is_empty() {
                *cmd_set = true;
            }
        }
        Command::Entrypoint(line) => {
            cfg.entrypoint = if line.args.is_empty() {
                None
            } else {
                Some(resolve_cmd_line(line, cfg))
            };
            cfg.args_escaped = false;
            if !*cmd_set {
                cfg.cmd = None;
            }
        }
        Command::Healthcheck(h) => cfg.healthcheck = Some(h.clone()),
        Command::Expose(ports) => {
            let mut all = Vec::new();
            for p in ports {
                all.extend(process_words(p, &env, escape)?);
            }
            let mut found = Vec::new();
            for p in &all {
                found.extend(parse_port_spec(p)?);
            }
            let set = cfg.exposed_ports.get_or_insert_with(BTreeSet::new);
            set.extend(found);
        }
    }
    Ok(())
}

fn resolve_cmd_line(line: &CmdLine, cfg: &ContainerConfig) -> Vec<String> {
    if line.prepend_shell {
        let mut out = match cfg.shell.as_ref().filter(|s| !s.is_empty()) {
            Some(s) => s.clone(),
            None => vec!["/bin/sh".to_string(), "-c".to_string()],
        };
        out.extend(line.args.iter().cloned());
        out
    } else {
        line.args.clone()
    }
}

fn normalize_workdir(current: &str, requested: &str) -> std::result::Result<String, String> {
    if requested.is_empty() {
        return Err("cannot normalize nothing".into());
    }
    if requested.starts_with('/') {
        return Ok(requested.to_string());
    }
    let joined = [current, requested]
        .iter()
        .filter(|s| !s.is_empty())
        .fold(String::from("/"), |acc, s| format!("{acc}/{s}"));
    Ok(go_clean(&joined))
}

/// Go's `path.Clean` for absolute paths.
fn go_clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

// --- The shell lexer (buildkit `shell.Lex`, SkipUnsetEnv off).

struct ShellWord<'a> {
    chars: Vec<char>,
    pos: usize,
    env: &'a [String],
    escape: char,
}

#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() && self.in_word {
            if !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else if !ch.is_whitespace() {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn get_words(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
        }
        self.words
    }
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get_env(&self, name: &str) -> Option<String> {
        // BuildEnvs: the last entry for a key wins.
        let mut found = None;
        for e in self.env {
            let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
            if k == name {
                found = Some(v.to_string());
            }
        }
        found
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
    ) -> std::result::Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.get_words()));
            }
            match ch {
                '\'' | '"' | '$' => {
                    let tmp = match ch {
                        '\'' => self.process_single_quote()?,
                        '"' => self.process_double_quote()?,
                        _ => self.process_dollar()?,
                    };
                    result.push_str(&tmp);
                    if ch == '$' {
                        words.add_string(&tmp);
                    } else {
                        words.add_raw_string(&tmp);
                    }
                }
                _ => {
                    let mut ch = self.next().unwrap_or('\0');
                    if ch == self.escape {
                        match self.next() {
                            None => break,
                            Some(c) => ch = c,
                        }
                        words.add_raw_char(ch);
                    } else {
                        words.add_char(ch);
                    }
                    result.push(ch);
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.get_words()))
    }

    fn process_single_quote(&mut self) -> std::result::Result<String, String> {
        self.next();
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    );
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> std::result::Result<String, String> {
        self.next();
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    );
                }
                Some('"') => {
                    self.next();
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.process_dollar()?),
                Some(_) => {
                    let mut ch = self.next().unwrap_or('\0');
                    if ch == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn process_dollar(&mut self) -> std::result::Result<String, String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.get_env(&name).unwrap_or_default());
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.process_name();
        match self.next() {
            Some('}') => Ok(self.get_env(&name).unwrap_or_default()),
            Some(':') => {
                let modifier = self.next();
                let word = match self.process_stop_on(Some('}')) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '}'".into());
                        }
                        return Err(e);
                    }
                };
                let value = self.get_env(&name);
                match modifier {
                    Some('+') => {
                        let v = value.unwrap_or_default();
                        Ok(if v.is_empty() { v } else { word })
                    }
                    Some('-') => {
                        let v = value.unwrap_or_default();
                        Ok(if v.is_empty() { word } else { v })
                    }
                    Some('?') => match value {
                        None => Err(format!(
                            "{name}: {}",
                            if word.is_empty() {
                                "is not allowed to be unset"
                            } else {
                                &word
                            }
                        )),
                        Some(v) if v.is_empty() => Err(format!(
                            "{name}: {}",
                            if word.is_empty() {
                                "is not allowed to be empty"
                            } else {
                                &word
                            }
                        )),
                        Some(v) => Ok(v),
                    },
                    m => Err(format!(
                        "unsupported modifier ({}) in substitution",
                        m.map(String::from).unwrap_or_default()
                    )),
                }
            }
            _ => Err("missing ':' in substitution".into()),
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_numeric() {
                while let Some(c) = self.peek().filter(|c| c.is_numeric()) {
                    name.push(c);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphabetic() && !ch.is_numeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }
}

fn lex(
    word: &str,
    env: &[String],
    escape: char,
) -> std::result::Result<(String, Vec<String>), String> {
    let mut sw = ShellWord {
        chars: word.chars().collect(),
        pos: 0,
        env,
        escape,
    };
    sw.process_stop_on(None)
        .map_err(|e| format!("failed to process {}: {e}", go_quote(word)))
}

/// `ProcessWord`: one word, quotes removed, variables substituted.
fn process_word(word: &str, env: &[String], escape: char) -> std::result::Result<String, String> {
    lex(word, env, escape).map(|(w, _)| w)
}

/// `ProcessWords`: like [`process_word`], split into words.
fn process_words(
    word: &str,
    env: &[String],
    escape: char,
) -> std::result::Result<Vec<String>, String> {
    lex(word, env, escape).map(|(_, ws)| ws)
}

// --- EXPOSE: go-connections `nat.ParsePortSpec`, container side only.

fn parse_port_range(ports: &str) -> Option<(u64, u64)> {
    let p16 = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse::<u16>().ok().map(u64::from)
    };
    if ports.is_empty() {
        return None;
    }
    if !ports.contains('-') {
        let v = p16(ports)?;
        return Some((v, v));
    }
    let mut parts = ports.split('-');
    let start = p16(parts.next().unwrap_or(""))?;
    let end = p16(parts.next().unwrap_or(""))?;
    if end < start {
        return None;
    }
    Some((start, end))
}

/// Go's `net.SplitHostPort(raw + ":")`, host part only.
fn split_host(raw_ip: &str) -> std::result::Result<String, String> {
    let hp = format!("{raw_ip}:");
    let err = |why: &str| format!("Invalid ip address {raw_ip}: address {hp}: {why}");
    let i = hp.rfind(':').unwrap_or(0);
    let (host, j, k) = if hp.starts_with('[') {
        let Some(end) = hp.find(']') else {
            return Err(err("missing ']' in address"));
        };
        if end + 1 == hp.len() {
            return Err(err("missing port in address"));
        } else if end + 1 != i {
            if hp.as_bytes()[end + 1] == b':' {
                return Err(err("too many colons in address"));
            }
            return Err(err("missing port in address"));
        }
        (hp[1..end].to_string(), 1, end + 1)
    } else {
        let host = &hp[..i];
        if host.contains(':') {
            return Err(err("too many colons in address"));
        }
        (host.to_string(), 0, 0)
    };
    if hp[j..].contains('[') {
        return Err(err("unexpected '[' in address"));
    }
    if hp[k..].contains(']') {
        return Err(err("unexpected ']' in address"));
    }
    Ok(host)
}

fn parse_port_spec(raw: &str) -> std::result::Result<Vec<String>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1];
    let (raw_ip, host_port) = match n {
        1 => (String::new(), ""),
        2 => (String::new(), parts[0]),
        3 => (parts[0].to_string(), parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2]),
    };
    // SplitProtoPort
    let (proto, container) = {
        let pp: Vec<&str> = container.split('/').collect();
        if container.is_empty() || pp[0].is_empty() {
            ("", "")
        } else if pp.len() == 1 {
            ("tcp", container)
        } else if pp[1].is_empty() {
            ("tcp", pp[0])
        } else {
            (pp[1], pp[0])
        }
    };
    let ip = split_host(&raw_ip)?;
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("Invalid ip address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("No port specified: {raw}<empty>"));
    }
    let Some((start, end)) = parse_port_range(container) else {
        return Err(format!("Invalid containerPort: {container}"));
    };
    if !host_port.is_empty() {
        let Some((hs, he)) = parse_port_range(host_port) else {
            return Err(format!("Invalid hostPort: {host_port}"));
        };
        if end - start != he - hs && end != start {
            return Err(format!(
                "Invalid ranges specified for container and host Ports: {container} and {host_port}"
            ));
        }
    }
    let lower = proto.to_lowercase();
    if !matches!(lower.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("Invalid proto: {proto}"));
    }
    Ok((start..=end).map(|p| format!("{p}/{lower}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_config_split_inside_a_character_does_not_panic() {
        // 'Ϡ' is CF A0, and Go takes the byte A0 alone as a space.
        let (args, json) = parse_health_config("\u{3e0}x CMD").unwrap();
        assert_eq!(args, ["\u{fffd}", "x CMD"]);
        assert!(!json);
    }

    #[test]
    fn durations() {
        for (s, want) in [
            ("5s", Ok(5_000_000_000)),
            ("1m30s", Ok(90_000_000_000)),
            ("1.5h", Ok(5_400_000_000_000)),
            ("2h45m0.5s", Ok(9_900_500_000_000)),
            ("-1s", Ok(-1_000_000_000)),
            ("0", Ok(0)),
            ("100\u{b5}s", Ok(100_000)),
            ("abc", Err(r#"time: invalid duration "abc""#)),
            ("5", Err(r#"time: missing unit in duration "5""#)),
            ("5x", Err(r#"time: unknown unit "x" in duration "5x""#)),
            ("", Err(r#"time: invalid duration """#)),
            (".s", Err(r#"time: invalid duration ".s""#)),
        ] {
            assert_eq!(
                crate::gotime::parse_duration(s).map(|d| d as i64),
                want.map_err(String::from),
                "{s}"
            );
        }
    }

    #[test]
    fn ports() {
        assert_eq!(
            parse_port_spec("8000-8002/udp").unwrap(),
            ["8000/udp", "8001/udp", "8002/udp"]
        );
        assert_eq!(parse_port_spec("[::1]:1:2").unwrap(), ["2/tcp"]);
        assert_eq!(
            parse_port_spec("9-1").unwrap_err(),
            "Invalid containerPort: 9-1"
        );
    }

    #[test]
    fn words_and_lexer() {
        assert_eq!(
            parse_words(r#"a="b c" d\ e"#, '\\'),
            [r#"a="b c""#, r"d\ e"]
        );
        let env = vec!["P=90 91".to_string()];
        assert_eq!(process_words("$P", &env, '\\').unwrap(), ["90", "91"]);
        assert_eq!(process_word("'$P'", &env, '\\').unwrap(), "$P");
    }
}
