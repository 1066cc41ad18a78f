//! strata: a container image store with Docker 20.10's image semantics on an
//! event-sourced core.

mod error;

pub use error::{Error, ErrorKind, Result};
