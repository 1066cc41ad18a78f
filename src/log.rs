//! The event log: an append-only redb table `seq → envelope bytes`, plus the
//! head (next sequence number and hash of the last envelope) in the `meta`
//! table, so that altering or dropping even the newest event is detectable.

use crate::error::{Error, Result};
use crate::event::Envelope;
use redb::{ReadableTable, TableDefinition};

/// `seq → postcard(Envelope)`.
pub(crate) const EVENTS: TableDefinition<'static, u64, &'static [u8]> =
    TableDefinition::new("events");
/// Store metadata: schema version, log head.
pub(crate) const META: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("meta");

const HEAD_KEY: &str = "log_head";

/// Where the log ends: the next sequence number and the hash of the last envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogHead {
    /// Sequence number the next event gets (1 for an empty log).
    pub next_seq: u64,
    /// blake3 of the last envelope's bytes (zeros for an empty log).
    pub last_hash: [u8; 32],
}

impl LogHead {
    /// The head of an empty log.
    pub const EMPTY: LogHead = LogHead {
        next_seq: 1,
        last_hash: [0; 32],
    };
}

/// Read the recorded head.
pub(crate) fn read_head<M: ReadableTable<&'static str, &'static [u8]>>(
    meta: &M,
) -> Result<LogHead> {
    match meta.get(HEAD_KEY)? {
        None => Ok(LogHead::EMPTY),
        Some(v) => match postcard::take_from_bytes::<LogHead>(v.value()) {
            Ok((h, [])) => Ok(h),
            _ => Err(Error::corrupt("undecodable log head")),
        },
    }
}

/// Record the head (only the store's write path calls this).
pub(crate) fn write_head(
    meta: &mut redb::Table<'_, &'static str, &'static [u8]>,
    head: &LogHead,
) -> Result<()> {
    let bytes = postcard::to_allocvec(head).map_err(|e| Error::internal(e.to_string()))?;
    meta.insert(HEAD_KEY, bytes.as_slice())?;
    Ok(())
}

/// Every envelope with `from <= seq <= to`, decoded, in order.
pub(crate) fn scan<T: ReadableTable<u64, &'static [u8]>>(
    events: &T,
    from: u64,
    to: u64,
) -> Result<Vec<Envelope>> {
    let mut out = Vec::new();
    if from > to {
        return Ok(out);
    }
    for item in events.range(from..=to)? {
        let (k, v) = item?;
        let env =
            Envelope::decode(v.value()).map_err(|e| e.context(format!("event {}", k.value())))?;
        out.push(env);
    }
    Ok(out)
}

/// The first problem found in the hash chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBreak {
    /// The sequence number of the event that is damaged, missing or out of place.
    pub seq: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// Check the chain: dense sequence numbers from 1, decodable envelopes whose
/// `seq` matches their key, each `prev_hash` equal to the previous envelope's
/// hash, and the recorded head equal to the last envelope. Returns the
/// number of events.
pub(crate) fn verify_chain<T: ReadableTable<u64, &'static [u8]>>(
    events: &T,
    head: &LogHead,
) -> Result<std::result::Result<u64, ChainBreak>> {
    let mut expected_seq = 1u64;
    let mut prev_hash = [0u8; 32];
    let mut prev_bytes_hash_of: Option<u64> = None;
    for item in events.iter()? {
        let (k, v) = item?;
        let key = k.value();
        if key != expected_seq {
            return Ok(Err(ChainBreak {
                seq: expected_seq,
                reason: format!("event {expected_seq} is missing (next is {key})"),
            }));
        }
        let env = match Envelope::decode(v.value()) {
            Ok(env) => env,
            Err(e) => {
                return Ok(Err(ChainBreak {
                    seq: key,
                    reason: format!("event {key} is damaged: {e}"),
                }));
            }
        };
        if env.seq != key {
            return Ok(Err(ChainBreak {
                seq: key,
                reason: format!("event {key} claims sequence number {}", env.seq),
            }));
        }
        if env.prev_hash != prev_hash {
            // Either the previous event's bytes changed, or this event's
            // recorded prev_hash did. If this event's own hash still matches
            // what its successor (or the head) recorded, the previous one changed.
            let own = Envelope::hash_bytes(v.value());
            let recorded_by_next = match events.get(key + 1)? {
                Some(next) => Envelope::decode(next.value()).ok().map(|n| n.prev_hash),
                None => Some(head.last_hash),
            };
            let seq = match prev_bytes_hash_of {
                Some(prev) if recorded_by_next == Some(own) => prev,
                _ => key,
            };
            return Ok(Err(ChainBreak {
                seq,
                reason: format!(
                    "event {seq} was altered: the hash chain breaks between events {} and {key}",
                    key - 1
                ),
            }));
        }
        prev_hash = Envelope::hash_bytes(v.value());
        prev_bytes_hash_of = Some(key);
        expected_seq += 1;
    }
    if head.next_seq != expected_seq {
        return Ok(Err(ChainBreak {
            seq: expected_seq.min(head.next_seq),
            reason: format!(
                "the log ends at event {} but the head records {}",
                expected_seq - 1,
                head.next_seq - 1
            ),
        }));
    }
    if head.last_hash != prev_hash {
        let seq = expected_seq - 1;
        return Ok(Err(ChainBreak {
            seq,
            reason: format!("event {seq} was altered: its hash no longer matches the log head"),
        }));
    }
    Ok(Ok(expected_seq - 1))
}
