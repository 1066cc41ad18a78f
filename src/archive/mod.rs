//! Image archives: docker-archive load and save (formats.md part A).

mod load;
mod save;
mod tar_writer;

pub(crate) use load::register_layers;
pub use load::{LoadReport, load};
pub use save::save;
