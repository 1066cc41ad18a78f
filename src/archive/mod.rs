//! Image archives: docker-archive load and save (formats.md part A), OCI
//! image layouts (part B).

mod legacy;
mod load;
mod oci;
mod save;
mod tar_writer;

pub use load::{LoadReport, load};
pub use oci::{Platform, save_oci};
pub use save::save;
