//! The audit trail: readable records of the event log, and `verify`.

use crate::error::Result;
use crate::event::{Envelope, EventBody};
use crate::store::Store;
use serde::Serialize;

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
    crate::config::GoTime::from_unix_nanos_utc(nanos as i128).to_rfc3339_nano()
}

impl From<&Envelope> for Record {
    fn from(env: &Envelope) -> Record {
        let (image, subject) = match &env.body {
            EventBody::LayerRegistered {
                diff_id, parent, ..
            } => (
                None,
                Some(crate::digest::chain_id(parent.as_deref(), diff_id)),
            ),
            EventBody::LayerReleased { chain_id } => (None, Some(chain_id.clone())),
            EventBody::ImageCreated { config, .. } => {
                (Some(crate::digest::sha256_digest(config)), None)
            }
            EventBody::ImageDeleted { id } => (Some(id.clone()), None),
            EventBody::ReferenceAdded {
                reference, image, ..
            }
            | EventBody::ReferenceRemoved { reference, image } => {
                (Some(image.clone()), Some(reference.clone()))
            }
            EventBody::ContainerCreated { id, image, .. } => {
                (Some(image.clone()), Some(id.clone()))
            }
            EventBody::ContainerRemoved { id } => (None, Some(id.clone())),
            EventBody::ImageParentSet { id, parent } => (Some(id.clone()), Some(parent.clone())),
        };
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

/// Verify a store: the hash chain, that the tables equal a fresh replay of
/// the log, and that every layer blob the tables name exists. `Ok(Ok(n))`
/// with the number of events, or `Ok(Err(description))` naming the first
/// problem (with its sequence number when it is in the log).
pub fn verify(store: &Store) -> Result<std::result::Result<u64, String>> {
    let n = match store.verify_chain()? {
        Ok(n) => n,
        Err(b) => return Ok(Err(format!("event {}: {}", b.seq, b.reason))),
    };
    if let Some(diff) = store.verify_replay()? {
        return Ok(Err(diff));
    }
    let missing = store.read(|t| {
        for (chain, layer) in t.layers()? {
            if !store.content().contains(&layer.diff_id) {
                return Ok(Some(format!(
                    "layer {chain}: blob {} is missing",
                    layer.diff_id
                )));
            }
        }
        Ok(None)
    })?;
    if let Some(m) = missing {
        return Ok(Err(m));
    }
    Ok(Ok(n))
}
