//! Image archives: docker-archive load and save (formats.md part A).

mod load;
mod save;
mod tar_writer;

pub use load::{LoadReport, load};
pub use save::save;
