//! Registry operations of [`ImageService`]: `PullImage`, `PushImage`,
//! `SearchRegistryForImages` (spec: distribution.md). The protocol lives in
//! [`crate::distribution`]; a pull ends in one store write.

use super::ImageService;
use crate::distribution::{
    Auth, Progress, PullOptions, PullReport, PushOptions, PushReport, SearchResult,
};
use crate::error::Result;
use crate::filters::Filters;
use tokio::sync::mpsc::UnboundedSender;

impl ImageService {
    /// `PullImage`: pull `reference` (`name:tag`, `name@digest`, or a bare
    /// name for all its tags) for `platform` (`os[/arch[/variant]]`).
    pub async fn pull_image(
        &self,
        reference: &str,
        platform: Option<&str>,
        auth: Option<Auth>,
        progress: Option<UnboundedSender<Progress>>,
    ) -> Result<PullReport> {
        let opts = PullOptions {
            platform: platform.map(str::to_string),
            auth,
            progress,
            ..PullOptions::default()
        };
        self.pull_image_with(reference, opts).await
    }

    /// [`ImageService::pull_image`] with every option.
    pub async fn pull_image_with(&self, reference: &str, opts: PullOptions) -> Result<PullReport> {
        crate::distribution::pull::pull(self, &self.actor, reference, opts).await
    }

    /// `PushImage`: push one tag, or every tag of a bare repository name.
    pub async fn push_image(
        &self,
        reference: &str,
        auth: Option<Auth>,
        progress: Option<UnboundedSender<Progress>>,
    ) -> Result<PushReport> {
        let opts = PushOptions {
            auth,
            progress,
            ..PushOptions::default()
        };
        self.push_image_with(reference, opts).await
    }

    /// [`ImageService::push_image`] with every option.
    pub async fn push_image_with(&self, reference: &str, opts: PushOptions) -> Result<PushReport> {
        crate::distribution::push::push(self, &self.actor, reference, opts).await
    }

    /// `SearchRegistryForImages`: the v1 search of the index `term` names.
    pub async fn search_registry_for_images(
        &self,
        term: &str,
        limit: Option<i64>,
        filters: &Filters,
        auth: Option<Auth>,
    ) -> Result<Vec<SearchResult>> {
        self.search_registry_for_images_with(
            term,
            limit,
            filters,
            auth,
            &crate::distribution::RegistryOptions::default(),
        )
        .await
    }

    /// [`ImageService::search_registry_for_images`] with explicit registry
    /// settings (insecure registries, certificates).
    pub async fn search_registry_for_images_with(
        &self,
        term: &str,
        limit: Option<i64>,
        filters: &Filters,
        auth: Option<Auth>,
        registry: &crate::distribution::RegistryOptions,
    ) -> Result<Vec<SearchResult>> {
        crate::distribution::search::search_with(term, limit, filters, auth, registry).await
    }
}
