//! Pull, push, login and search against OCI distribution (registry v2)
//! servers, as Docker 20.10 does them (spec: distribution.md).
//!
//! - [`client`]: endpoints, the HTTP client, ping, the auth handshake
//!   (Bearer tokens, Basic, anonymous) and registry error bodies.
//! - [`pull`]: manifests (schema2, OCI, lists/indexes), layer download
//!   (concurrent, retried, decompressed and hashed while streaming), and the
//!   one store write that makes the image appear.
//! - [`push`]: existence checks, cross-repository mounts, gzip-while-streaming
//!   uploads and the schema2 manifest.
//! - [`search`]: the v1 search API.
//! - [`metadata`]: Docker's v2 metadata (DiffID ↔ blob digest per repository).
//! - [`progress`]: the typed progress messages sent over a channel.
//! - [`tls`]: insecure registries, certificates and the TLS client.
//! - [`credentials`]: the docker CLI config file and credential helpers.
//!
//! The library never prints: progress goes to an optional
//! `tokio::sync::mpsc::UnboundedSender<Progress>`.

pub mod client;
pub mod credentials;
mod gzip;
pub mod metadata;
pub mod progress;
pub mod pull;
pub mod push;
pub mod search;
pub mod tls;

pub use client::{Auth, LoginReport, login, login_with};
pub use progress::Progress;
pub use pull::{PullOptions, PullReport};
pub use push::{PushOptions, PushReport, PushedTag};
pub use search::SearchResult;
pub use tls::RegistryOptions;

/// Where progress messages go (none when the caller did not ask).
pub type ProgressSender = Option<tokio::sync::mpsc::UnboundedSender<Progress>>;

pub(crate) fn send(tx: &ProgressSender, p: Progress) {
    if let Some(tx) = tx {
        let _ = tx.send(p);
    }
}

/// The first 12 hex characters of a digest (Docker's progress ids).
pub(crate) fn short(digest: &str) -> String {
    let hex = crate::digest::hex_part(digest);
    hex[..hex.len().min(12)].to_string()
}
