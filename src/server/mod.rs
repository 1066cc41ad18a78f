//! `strata serve`: the Docker Engine API's image routes on a unix socket.
//! (Being built; see issue 5.)

use crate::error::{Error, Result};
use crate::service::ImageService;
use std::path::Path;

/// Serve the Engine API for `svc` on the unix socket `socket` until `shutdown` resolves.
pub async fn serve(
    _svc: ImageService,
    socket: &Path,
    _shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    Err(Error::internal(format!(
        "serving on {} is not implemented yet",
        socket.display()
    )))
}
