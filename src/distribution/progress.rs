//! Typed progress messages: Docker's JSON message stream (spec §8) as values.

use serde_json::json;

/// One progress message of a pull or push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A line without id: `Digest: …`, `Status: …`, `The push refers to
    /// repository […]`, `<tag>: digest: … size: N`.
    Status(String),
    /// A message about one item (a layer, or the tag being pulled):
    /// `Pulling fs layer`, `Waiting`, `Download complete`, `Pushed`, …
    Item {
        /// Docker's id: 12 hex of the blob digest (pull) or DiffID (push),
        /// or the tag for `Pulling from`.
        id: String,
        /// The status text.
        status: String,
    },
    /// Byte progress of an item (`Downloading`, `Extracting`, `Pushing`).
    Bytes {
        /// As for [`Progress::Item`].
        id: String,
        /// The action.
        action: String,
        /// Bytes done.
        current: u64,
        /// Bytes expected (0 when unknown).
        total: u64,
    },
    /// The aux message after each pushed tag.
    PushResult {
        /// The tag.
        tag: String,
        /// The manifest digest.
        digest: String,
        /// The manifest size in bytes.
        size: u64,
    },
}

impl Progress {
    pub(crate) fn item(id: impl Into<String>, status: impl Into<String>) -> Progress {
        Progress::Item {
            id: id.into(),
            status: status.into(),
        }
    }

    /// The Engine API JSON message (without the trailing `\r\n`).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Progress::Status(s) => json!({ "status": s }),
            Progress::Item { id, status } if status.starts_with("Pulling from ") => {
                json!({ "status": status, "id": id })
            }
            Progress::Item { id, status } => {
                json!({ "status": status, "progressDetail": {}, "id": id })
            }
            Progress::Bytes {
                id,
                action,
                current,
                total,
            } => json!({
                "status": action,
                "progressDetail": { "current": current, "total": total },
                "id": id,
            }),
            Progress::PushResult { tag, digest, size } => json!({
                "progressDetail": {},
                "aux": { "Tag": tag, "Digest": digest, "Size": size },
            }),
        }
    }

    /// The line Docker's CLI prints for this message when not on a terminal
    /// (`None` for byte progress and aux messages, which it does not print).
    pub fn plain_line(&self) -> Option<String> {
        match self {
            Progress::Status(s) => Some(s.clone()),
            Progress::Item { id, status } => Some(format!("{id}: {status}")),
            Progress::Bytes { .. } | Progress::PushResult { .. } => None,
        }
    }
}
