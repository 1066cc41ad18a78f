//! strata: a container image store with Docker 20.10's image semantics on an
//! event-sourced core.
//!
//! Every mutation is an event appended to a log in a redb database; the
//! tables that answer queries are a fold of that log, written only by the
//! projection's `apply`. Hence the invariant `tables == replay(log)`, which
//! [`audit::verify`] checks.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> strata::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let svc = strata::ImageService::open(dir.path())?;
//! // A docker-archive written by dockerd 20.10 (`docker save dev/chain:1`).
//! let archive = std::fs::File::open("tests/fixtures/dockerd/chain-tagged.tar")?;
//! let report = svc.load_image(archive, true).await?;
//! assert_eq!(report.lines, ["Loaded image: dev/chain:1"]);
//!
//! svc.tag_image("dev/chain:1", "dev/chain", "2").await?;
//! let listed = svc.images(strata::Filters::new(), false, false).await?;
//! assert_eq!(listed[0].repo_tags.as_deref(), Some(&["dev/chain:1".to_string(), "dev/chain:2".to_string()][..]));
//!
//! let removed = svc.image_delete("dev/chain:2", false, true).await?;
//! assert_eq!(removed, [strata::DeleteItem::Untagged("dev/chain:2".into())]);
//!
//! // Every change is in the audit log, and the tables equal its replay.
//! assert!(strata::audit::verify(svc.store())?.is_ok());
//! # Ok(()) }
//! ```
//!
//! What strata is not (yet): a container runtime. Container records exist
//! only so that Docker's delete and prune conflict rules can be exercised.

#![forbid(unsafe_code)]

pub mod adopt;
pub mod archive;
pub mod audit;
mod changes;
mod config;
mod content;
mod crash;
pub mod diff;
mod digest;
pub mod distribution;
mod error;
mod event;
mod filters;
pub mod fsck;
pub mod gc;
mod gojson;
mod gotime;
mod layer;
mod lease;
mod log;
#[path = "../migrations/mod.rs"]
mod migrations;
mod pathmatch;
mod projection;
mod reference;
pub mod rootfs;
pub mod server;
mod service;
mod store;

pub use config::{ContainerConfig, GoTime, ImageConfig};
pub use content::ContentStore;
pub use error::{Error, ErrorKind, Result};
pub use event::{Actor, Envelope, EventBody, ImageSource};
pub use filters::Filters;
pub use lease::Lease;
pub use log::{ChainBreak, LogHead};
pub use projection::{ImageRow, LayerRow};
pub use reference::{ParseError, Reference};
pub use service::{
    ContainerInfo, ContainerStore, ContainerUse, DeleteItem, HistoryItem, ImageInspect,
    ImageService, ImageSummary, ImportOptions, PruneReport,
};
pub use store::{Store, Writer};

/// Entry points for the fuzz targets under `fuzz/` (not a stable API).
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::config::ImageConfig;
    pub use crate::event::Envelope;
    pub use crate::filters::{Filters, parse_until};
    pub use crate::layer::{escapes_root, scan_tar};
    pub use crate::pathmatch::path_match;
    pub use crate::reference::{Reference, parse_any_reference, validate_digest};

    pub use crate::crash::passed as crash_points_passed;

    /// Go's JSON syntax check with Go's error texts.
    pub fn go_json_parse(bytes: &[u8]) -> Result<(), crate::Error> {
        crate::gojson::parse(bytes).map(|_| ())
    }
}
