//! `strata migrate from-docker`: the service entry point (see [`crate::adopt`]).

use super::ImageService;
use crate::adopt::AdoptReport;
use crate::error::Result;
use std::path::PathBuf;

impl ImageService {
    /// Adopt the images, layers and references of the dockerd 20.10 data
    /// root `root` (e.g. `/var/lib/docker`, read only) as one write. `driver`
    /// is `vfs` or `overlay2`; `None` picks the only driver with an image
    /// store under `root/image`. Every layer is reassembled from the driver's
    /// directory and its tar-split file and must hash to its DiffID, else
    /// nothing is recorded.
    pub async fn adopt_docker_root(
        &self,
        root: PathBuf,
        driver: Option<String>,
    ) -> Result<AdoptReport> {
        self.blocking(move |s| crate::adopt::adopt(s.store(), &s.actor, &root, driver.as_deref()))
            .await
    }
}
