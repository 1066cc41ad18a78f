//! `ImportImage`: a rootfs tarball becomes a one-layer image (image-service.md §5.2).

use super::ImageService;
use super::lookup::{self, TagPath};
use crate::config::{ContainerConfig, GoTime, History, ImageConfig, RootFs};
use crate::error::{Error, ErrorKind, Result};
use crate::event::ImageSource;
use crate::reference::Reference;

/// Options of [`ImageService::import_image`] beyond Docker's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportOptions {
    /// The creation time; `None` = now, in UTC (Docker's behaviour). Fixing it
    /// makes the image ID reproducible.
    pub created: Option<GoTime>,
    /// What the default message names: `Imported from <source_name>`; `-` for
    /// a request body or stdin (also what `docker import FILE` sends), else the URL.
    pub source_name: String,
    /// `os` of the config (Docker: the platform's OS, default the host's).
    pub os: String,
    /// `architecture` of the config (Docker: the host's).
    pub architecture: String,
}

impl Default for ImportOptions {
    fn default() -> ImportOptions {
        ImportOptions {
            created: None,
            source_name: "-".to_string(),
            os: "linux".to_string(),
            architecture: "amd64".to_string(),
        }
    }
}

/// §5.2 step 2: the reference to tag, if a repository was given.
fn import_reference(repository: Option<&str>, tag: Option<&str>) -> Result<Option<Reference>> {
    let Some(repository) = repository.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let mut r =
        Reference::parse_normalized_named(repository).map_err(|e| Error::invalid(e.message()))?;
    if r.digest().is_some() {
        return Err(Error::invalid("cannot import digest reference"));
    }
    if let Some(tag) = tag.filter(|t| !t.is_empty()) {
        r = r.with_tag(tag).map_err(|e| Error::invalid(e.message()))?;
    }
    Ok(Some(r))
}

/// The config bytes of an imported image (§5.2 step 7, serialised per §2.3).
pub(crate) fn import_config(
    config: ContainerConfig,
    diff_id: &str,
    message: &str,
    created: GoTime,
    options: &ImportOptions,
) -> Vec<u8> {
    ImageConfig {
        comment: message.to_string(),
        created,
        docker_version: crate::config::DOCKER_VERSION.to_string(),
        config: Some(config),
        architecture: options.architecture.clone(),
        os: options.os.clone(),
        rootfs: Some(RootFs {
            fs_type: "layers".to_string(),
            diff_ids: vec![diff_id.to_string()],
        }),
        history: vec![History {
            created,
            comment: message.to_string(),
            ..History::default()
        }],
        ..ImageConfig::default()
    }
    .to_docker_json()
}

/// Docker reports a layer that is not a tar as the failed `ApplyLayer` child.
fn layer_error(e: Error) -> Error {
    if e.kind() == ErrorKind::InvalidArgument && e.message().starts_with("layer: invalid tar") {
        return Error::internal(
            "ApplyLayer exit status 1 stdout:  stderr: archive/tar: invalid tar header",
        );
    }
    e
}

impl ImageService {
    /// `ImportImage`: register `src` (a rootfs tar, possibly gzip/bzip2/xz
    /// compressed) as a new parentless layer, build an image config around
    /// it with `changes` applied to an empty container config, create the
    /// image and, when `repository` is given, tag it (`repository` may carry
    /// a tag; a non-empty `tag` replaces it). Returns the image ID.
    ///
    /// Errors (InvalidArgument unless said): the repository's parse error
    /// (`invalid reference format: repository name must be lowercase`),
    /// `cannot import digest reference`, `invalid tag format`, any change
    /// error (`run is not a valid change command`, …), a layer that is not a
    /// tar (Internal, `ApplyLayer exit status 1 stdout:  stderr: archive/tar:
    /// invalid tar header`). Nothing is recorded when an error is returned.
    pub async fn import_image(
        &self,
        src: impl std::io::Read + Send + 'static,
        repository: Option<&str>,
        tag: Option<&str>,
        message: Option<&str>,
        changes: &[String],
        options: ImportOptions,
    ) -> Result<String> {
        let reference = import_reference(repository, tag)?;
        if options.os != "linux" {
            return Err(Error::invalid("operating system is not supported"));
        }
        let config = crate::changes::build_from_config(&ContainerConfig::default(), changes)?;
        let message = match message.filter(|m| !m.is_empty()) {
            Some(m) => m.to_string(),
            None => format!("Imported from {}", options.source_name),
        };
        self.blocking(move |s| {
            let layer = crate::layer::ingest_layer(s.store().content(), src, "layer")
                .map_err(layer_error)?;
            let created = options.created.unwrap_or_else(GoTime::now_utc);
            let bytes = import_config(config, &layer.diff_id, &message, created, &options);
            s.store().write(&s.actor, |w| {
                crate::layer::register_layers(w, std::slice::from_ref(&layer))?;
                let id = super::create_image_in(w, bytes, None, ImageSource::Import)?;
                if let Some(r) = &reference {
                    lookup::add_tag(w, r, &id, TagPath::UserTag)?;
                }
                Ok(id)
            })
        })
        .await
    }
}
