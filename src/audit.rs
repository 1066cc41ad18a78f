//! The audit trail: readable records of the event log, queries over it
//! (`log`, `blame`), `verify`, and JSON-lines `export`/`import`.

use crate::config::GoTime;
use crate::digest::{chain_id, sha256_digest};
use crate::error::{Error, Result};
use crate::event::{Actor, Envelope, EventBody};
use crate::reference::{AnyReference, parse_any_reference};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};

/// One event as `strata audit log` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Record {
    /// Sequence number.
    pub seq: u64,
    /// Commit time, RFC3339 with nanoseconds, UTC.
    pub time: String,
    /// Who asked.
    pub actor: String,
    /// Event kind (`image-created`, `reference-added`, ...).
    pub kind: &'static str,
    /// The image the event concerns, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The reference, layer or container the event concerns, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

fn rfc3339(nanos: i64) -> String {
    GoTime::from_unix_nanos_utc(nanos as i128).to_rfc3339_nano()
}

/// The image and the other subject (reference, layer, container) an event concerns.
fn subjects(body: &EventBody) -> (Option<String>, Option<String>) {
    match body {
        EventBody::LayerRegistered {
            diff_id, parent, ..
        } => (None, Some(chain_id(parent.as_deref(), diff_id))),
        EventBody::LayerReleased { chain_id } => (None, Some(chain_id.clone())),
        EventBody::ImageCreated { config, .. } => (Some(sha256_digest(config)), None),
        EventBody::ImageDeleted { id } => (Some(id.clone()), None),
        EventBody::ReferenceAdded {
            reference, image, ..
        }
        | EventBody::ReferenceRemoved { reference, image } => {
            (Some(image.clone()), Some(reference.clone()))
        }
        EventBody::ContainerCreated { id, image, .. } => (Some(image.clone()), Some(id.clone())),
        EventBody::ContainerRemoved { id } => (None, Some(id.clone())),
        EventBody::ImageParentSet { id, parent } => (Some(id.clone()), Some(parent.clone())),
        EventBody::ContainerConfigured { id, .. } => (None, Some(id.clone())),
        EventBody::DistributionMetadataAdded {
            digest, repository, ..
        }
        | EventBody::DistributionMetadataRemoved {
            digest, repository, ..
        } => (None, Some(format!("{repository}@{digest}"))),
        EventBody::ImagePushed {
            image,
            digest,
            repository,
            ..
        } => (Some(image.clone()), Some(format!("{repository}@{digest}"))),
        EventBody::ImagePulled { reference, image } => (
            (!image.is_empty()).then(|| image.clone()),
            Some(reference.clone()),
        ),
        EventBody::BlobsCollected { blobs, bytes } => {
            (None, Some(format!("{} blobs, {bytes} bytes", blobs.len())))
        }
    }
}

impl From<&Envelope> for Record {
    fn from(env: &Envelope) -> Record {
        let (image, subject) = subjects(&env.body);
        Record {
            seq: env.seq,
            time: rfc3339(env.time_unix_nanos),
            actor: env.actor.describe(),
            kind: env.body.kind(),
            image,
            subject,
        }
    }
}

impl Record {
    /// One tab-separated line: seq, time, actor, kind, image, subject.
    pub fn line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            self.seq,
            self.time,
            self.actor,
            self.kind,
            self.image.as_deref().unwrap_or("-"),
            self.subject.as_deref().unwrap_or("-")
        )
    }
}

/// Which events `strata audit log` shows. Empty fields match everything.
#[derive(Clone, Debug, Default)]
pub struct LogQuery {
    /// Image ID or ID prefix (with or without `sha256:`).
    pub image: Option<String>,
    /// A reference as the user writes it (`busybox`, `foo:1`); normalized.
    pub reference: Option<String>,
    /// Substring of the actor description (user, uid, client).
    pub actor: Option<String>,
    /// Event kind, e.g. `reference-removed`.
    pub kind: Option<String>,
    /// Only events at or after this time (unix nanoseconds).
    pub since: Option<i64>,
    /// Only events at or before this time (unix nanoseconds).
    pub until: Option<i64>,
    /// Smallest sequence number.
    pub from_seq: Option<u64>,
    /// Largest sequence number.
    pub to_seq: Option<u64>,
}

/// Parse a time given on the command line: RFC 3339, or unix seconds
/// (with an optional fraction).
pub fn parse_time(s: &str) -> Result<i64> {
    if let Ok(t) = GoTime::parse(s) {
        return Ok(t.unix_nanos() as i64);
    }
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let bad = || Error::invalid(format!("invalid time {s:?}: use RFC 3339 or unix seconds"));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let mut nanos = 0i64;
    if !frac.is_empty() {
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        nanos = format!("{frac:0<9}").parse().map_err(|_| bad())?;
    }
    Ok(secs * 1_000_000_000 + nanos)
}

fn canonical(reference: &str) -> Result<String> {
    match parse_any_reference(reference).map_err(|e| Error::invalid(e.message()))? {
        AnyReference::Digest(d) => Ok(d),
        AnyReference::Named(r) => Ok(if r.digest().is_some() {
            r.favor_digest()
        } else {
            r.tag_name_only()
        }
        .canonical_string()),
    }
}

fn all_events(store: &Store) -> Result<Vec<Envelope>> {
    let head = store.head()?;
    store.events(1, head.next_seq.saturating_sub(1))
}

/// The events matching `q`, in order.
pub fn query(store: &Store, q: &LogQuery) -> Result<Vec<Record>> {
    let reference = q.reference.as_deref().map(canonical).transpose()?;
    let image = q.image.as_deref().map(|i| {
        if i.starts_with("sha256:") {
            i.to_string()
        } else {
            format!("sha256:{i}")
        }
    });
    let head = store.head()?;
    let from = q.from_seq.unwrap_or(1).max(1);
    let to = q
        .to_seq
        .unwrap_or(u64::MAX)
        .min(head.next_seq.saturating_sub(1));
    let mut out = Vec::new();
    for env in store.events(from, to)? {
        let (img, subject) = subjects(&env.body);
        if let Some(i) = &image
            && !img.as_deref().is_some_and(|x| x.starts_with(i.as_str()))
        {
            continue;
        }
        if let Some(r) = &reference
            && subject.as_deref() != Some(r.as_str())
        {
            continue;
        }
        if let Some(k) = &q.kind
            && env.body.kind() != k
        {
            continue;
        }
        if let Some(a) = &q.actor
            && !env.actor.describe().contains(a.as_str())
        {
            continue;
        }
        if q.since.is_some_and(|s| env.time_unix_nanos < s)
            || q.until.is_some_and(|u| env.time_unix_nanos > u)
        {
            continue;
        }
        out.push(Record::from(&env));
    }
    Ok(out)
}

/// Every event that touched `name`: a reference (every image it ever
/// pointed at is followed too) or an image ID / ID prefix.
pub fn blame(store: &Store, name: &str) -> Result<Vec<Record>> {
    let events = all_events(store)?;
    let mut images: Vec<String> = Vec::new();
    let mut reference: Option<String> = None;
    let looks_like_id = {
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        !hex.is_empty()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if looks_like_id {
        let prefix = if name.starts_with("sha256:") {
            name.to_string()
        } else {
            format!("sha256:{name}")
        };
        for env in &events {
            if let (Some(img), _) = subjects(&env.body)
                && img.starts_with(&prefix)
                && !images.contains(&img)
            {
                images.push(img);
            }
        }
    }
    if images.is_empty() {
        let r = canonical(name)?;
        for env in &events {
            if let EventBody::ReferenceAdded {
                reference: x,
                image,
                ..
            } = &env.body
                && *x == r
                && !images.contains(image)
            {
                images.push(image.clone());
            }
        }
        reference = Some(r);
    }
    if images.is_empty() {
        return Err(Error::not_found(format!("no event ever touched {name}")));
    }
    Ok(events
        .iter()
        .filter(|env| {
            let (img, subject) = subjects(&env.body);
            let by_ref = reference.is_some() && subject == reference;
            let by_image = reference.is_none() && img.is_some_and(|i| images.contains(&i));
            let created_or_deleted =
                matches!(
                    env.body,
                    EventBody::ImageCreated { .. } | EventBody::ImageDeleted { .. }
                ) && subjects(&env.body).0.is_some_and(|i| images.contains(&i));
            by_ref || by_image || created_or_deleted
        })
        .map(Record::from)
        .collect())
}

/// Verify a store: the hash chain, that the tables equal a fresh replay of
/// the log, and that every layer blob the tables name exists and hashes to
/// its name. `Ok(Ok(n))` with the number of events, or `Ok(Err(description))`
/// naming the first problem (starting `event <seq>:` when it is in the log).
pub fn verify(store: &Store) -> Result<std::result::Result<u64, String>> {
    let n = match store.verify_chain()? {
        Ok(n) => n,
        Err(b) => return Ok(Err(format!("event {}: {}", b.seq, b.reason))),
    };
    if let Some(diff) = store.verify_replay()? {
        return Ok(Err(diff));
    }
    let layers = store.read(|t| t.layers())?;
    for (chain, layer) in layers {
        if !store.content().contains(&layer.diff_id) {
            return Ok(Err(format!(
                "layer {chain}: blob {} is missing",
                layer.diff_id
            )));
        }
        if let Some(got) = store.content().check(&layer.diff_id)? {
            return Ok(Err(format!(
                "layer {chain}: blob {} is damaged: its content hashes to {got}",
                layer.diff_id
            )));
        }
    }
    Ok(Ok(n))
}

/// One line of `strata audit export`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exported {
    /// Sequence number in the exporting store.
    pub seq: u64,
    /// Commit time, unix nanoseconds.
    pub time_unix_nanos: i64,
    /// Who asked.
    pub actor: Actor,
    /// What happened.
    pub body: EventBody,
}

/// Write the whole log as JSON lines.
pub fn export(store: &Store, mut out: impl Write) -> Result<u64> {
    let mut n = 0;
    for env in all_events(store)? {
        let line = Exported {
            seq: env.seq,
            time_unix_nanos: env.time_unix_nanos,
            actor: env.actor,
            body: env.body,
        };
        serde_json::to_writer(&mut out, &line).map_err(|e| Error::internal(e.to_string()))?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

/// Read JSON lines written by [`export`] and append them to the empty
/// `store`, re-validated and re-chained, in one transaction. Layer blobs are
/// taken from `blobs_from` (another store's root) when given.
pub fn import(
    store: &Store,
    input: impl BufRead,
    blobs_from: Option<&std::path::Path>,
) -> Result<u64> {
    let source = blobs_from.map(crate::content::ContentStore::at);
    let mut events = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let e: Exported = serde_json::from_str(&line)
            .map_err(|err| Error::invalid(format!("line {}: {err}", i + 1)))?;
        if let (Some(src), EventBody::LayerRegistered { diff_id, .. }) = (&source, &e.body)
            && !store.content().contains(diff_id)
        {
            src.link_into(store.content(), diff_id)
                .map_err(|err| err.context(format!("line {}", i + 1)))?;
        }
        events.push((e.time_unix_nanos, e.actor, e.body));
    }
    store.import_events(events)
}
