//! Who a request comes from: the socket peer's uid and the client's
//! User-Agent, recorded on every event the request causes.

use crate::event::Actor;
use hyper::HeaderMap;
use hyper::header::USER_AGENT;

/// The actor of a request from peer `uid` with `headers`.
pub fn request_actor(uid: Option<u32>, headers: &HeaderMap) -> Actor {
    Actor {
        uid,
        user: None,
        client: headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_from_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(
            request_actor(Some(7), &h),
            Actor {
                uid: Some(7),
                user: None,
                client: None
            }
        );
        h.insert(
            USER_AGENT,
            "Docker-Client/20.10.24+dfsg1 (linux)".parse().unwrap(),
        );
        assert_eq!(
            request_actor(None, &h).client.as_deref(),
            Some("Docker-Client/20.10.24+dfsg1 (linux)")
        );
    }
}
