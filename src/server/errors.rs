//! API errors: `{"message":"<text>"}` with the status of the error's kind
//! (engine-api.md §2.3).

use super::Body;
use super::json;
use crate::error::Error;
use hyper::{Response, StatusCode, header};

/// An error as the API reports it: a status and Docker's message.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The message (exact Docker text where Docker has one).
    pub message: String,
}

impl ApiError {
    /// An error with an explicit status.
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }

    /// 501 for routes whose service strata does not have yet.
    pub fn not_implemented(route: &str) -> ApiError {
        ApiError::new(501, format!("not implemented in strata yet: {route}"))
    }

    /// The JSON error response (`plain` = the text/plain form of API ≤ 1.23).
    pub fn into_response(self, plain: bool) -> Response<Body> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (ctype, body) = if plain {
            (
                "text/plain; charset=utf-8",
                format!("{}\n", self.message).into_bytes(),
            )
        } else {
            (
                "application/json",
                json::encode(&serde_json::json!({ "message": self.message })),
            )
        };
        let mut resp = Response::new(super::full(body));
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(ctype),
        );
        resp
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        ApiError::new(e.kind().http_status(), e.message())
    }
}

/// `Result` of a route handler.
pub type ApiResult<T> = std::result::Result<T, ApiError>;
