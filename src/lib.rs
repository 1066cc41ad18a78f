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
mod kv;
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
mod stream_hash;

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
    ContainerInfo, ContainerStore, ContainerUse, DeleteItem, DfContainer, DiskUsage, HistoryItem,
    ImageInspect, ImageService, ImageSummary, ImportOptions, PruneReport,
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

    pub use crate::distribution::client::{Auth, Challenge, Fail, parse_challenge, query_escape};
    pub use crate::rootfs::{ApplyOptions, apply_layer, remove_tree};
    pub use crate::server::query::{Query, percent_decode};
    pub use crate::server::registry::parse_platform;
    pub use crate::server::router::{Route, compare_versions, route, split_version};

    /// A manifest list / OCI index body as pull parses it (`None`: it does
    /// not parse), and the index of the entry `select_platform` picks for
    /// `platform` (`usize::MAX` if the pick is not an entry of the list).
    pub fn select_manifest(
        body: &[u8],
        platform: Option<&str>,
    ) -> Option<Result<usize, crate::Error>> {
        use crate::distribution::pull::{ManifestList, select_platform};
        let list: ManifestList = serde_json::from_slice(body).ok()?;
        let picked = select_platform(&list.manifests, platform);
        Some(picked.map(|d| {
            list.manifests
                .iter()
                .position(|x| std::ptr::eq(x, d))
                .unwrap_or(usize::MAX)
        }))
    }

    /// Pull's platform normalisation: `(os, arch, variant)`.
    pub fn normalize_platform(os: &str, arch: &str, variant: &str) -> (String, String, String) {
        crate::distribution::pull::normalize_platform(os, arch, variant)
    }

    /// An image manifest body of media type `mt` checked as pull checks it
    /// before fetching anything: the config digest.
    pub fn check_manifest(mt: &str, body: &[u8]) -> Result<String, crate::Error> {
        use crate::distribution::pull::{ImageManifest, check_media_types, is_schema1};
        if is_schema1(mt) {
            return Err(crate::Error::internal("invalid manifest: not schema2"));
        }
        let m: ImageManifest = serde_json::from_slice(body)
            .map_err(|e| crate::Error::internal(format!("invalid manifest: {e}")))?;
        check_media_types(mt, &m)?;
        crate::reference::validate_digest(&m.config.digest)
            .map_err(|e| crate::Error::internal(e.message()))?;
        Ok(m.config.digest)
    }

    /// A registry error body (Go's `parseHTTPErrorResponse`).
    pub fn parse_registry_error(status: u16, body: &[u8]) -> Result<Fail, String> {
        crate::distribution::client::parse_error_body(status, body)
    }

    /// `BuildFromConfig`: the `changes` parameter applied to `config`.
    pub fn build_from_config(
        config: &crate::ContainerConfig,
        changes: &[String],
    ) -> Result<crate::ContainerConfig, crate::Error> {
        crate::changes::build_from_config(config, changes)
    }

    /// The router's view of a request line: the API version in the decoded
    /// path and the route (`None` when `method` is not a valid method).
    pub fn route_request(method: &[u8], path: &str) -> Option<(Option<String>, Option<Route>)> {
        let method = hyper::Method::from_bytes(method).ok()?;
        let decoded = percent_decode(path, false);
        let (version, rest) = split_version(&decoded);
        Some((version.map(str::to_string), route(&method, rest)))
    }
}
