//! The one error type of strata.
//!
//! Every fallible call returns [`Error`]: an opaque value with a [`ErrorKind`]
//! (which maps to an HTTP status the way Docker's error categories do) and a
//! message. Messages are Docker's exact text wherever Docker has one, because
//! clients (and tests) compare them.

use std::fmt;

/// What went wrong, coarsely: decides the HTTP status and the CLI exit path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The named thing does not exist (HTTP 404).
    NotFound,
    /// The request conflicts with the store's state (HTTP 409).
    Conflict,
    /// The caller's input is invalid (HTTP 400).
    InvalidArgument,
    /// Docker's "uncategorised" errors: HTTP 500. Some client mistakes land
    /// here on purpose because Docker reports them that way.
    Internal,
    /// Stored data failed verification (HTTP 500).
    Corrupt,
    /// An operating-system I/O error (HTTP 500).
    Io,
    /// A service the call depends on is not reachable (HTTP 503).
    Unavailable,
}

impl ErrorKind {
    /// The HTTP status Docker's API returns for an error of this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::InvalidArgument => 400,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal | ErrorKind::Corrupt | ErrorKind::Io => 500,
        }
    }
}

/// An error with a kind and a message naming what was wrong.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// `Result<T, strata::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl fmt::Display) -> Error {
        Error {
            kind,
            message: message.to_string(),
        }
    }
    /// A [`ErrorKind::NotFound`] error.
    pub fn not_found(message: impl fmt::Display) -> Error {
        Error::new(ErrorKind::NotFound, message)
    }
    /// A [`ErrorKind::Conflict`] error.
    pub fn conflict(message: impl fmt::Display) -> Error {
        Error::new(ErrorKind::Conflict, message)
    }
    /// A [`ErrorKind::InvalidArgument`] error.
    pub fn invalid(message: impl fmt::Display) -> Error {
        Error::new(ErrorKind::InvalidArgument, message)
    }
    /// A [`ErrorKind::Internal`] (uncategorised, HTTP 500) error.
    pub fn internal(message: impl fmt::Display) -> Error {
        Error::new(ErrorKind::Internal, message)
    }
    /// A [`ErrorKind::Corrupt`] error.
    pub fn corrupt(message: impl fmt::Display) -> Error {
        Error::new(ErrorKind::Corrupt, message)
    }
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The message, exactly as Docker would print it where Docker has one.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The same error with `prefix: ` in front of its message, kind kept.
    pub fn context(self, prefix: impl fmt::Display) -> Error {
        Error {
            kind: self.kind,
            message: format!("{prefix}: {}", self.message),
        }
    }
    /// The same message with another kind.
    pub fn with_kind(self, kind: ErrorKind) -> Error {
        Error { kind, ..self }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, e)
    }
}

impl From<redb::Error> for Error {
    fn from(e: redb::Error) -> Error {
        Error::new(ErrorKind::Io, format!("store database: {e}"))
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::from(redb::Error::from(e))
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
