//! Search (spec §10): the v1 `/v1/search` API of an index, with the
//! daemon-side filters.

use super::client::{Auth, Fail, Url, empty, query_escape, read_body};
use super::tls::{RegistryOptions, Transport};
use crate::error::{Error, Result};
use crate::filters::Filters;
use base64::Engine as _;
use hyper::Method;
use serde::{Deserialize, Serialize};

/// One search result, serialized in Docker's field order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    /// Stars.
    #[serde(default)]
    pub star_count: i64,
    /// Official image.
    #[serde(default)]
    pub is_official: bool,
    /// Repository name.
    #[serde(default)]
    pub name: String,
    /// Automated build.
    #[serde(default)]
    pub is_automated: bool,
    /// Description.
    #[serde(default)]
    pub description: String,
}

#[derive(Deserialize)]
struct SearchResults {
    #[serde(default)]
    results: Vec<SearchResult>,
}

fn bool_filter(filters: &Filters, key: &str) -> Result<Option<bool>> {
    if !filters.contains(key) {
        return Ok(None);
    }
    match filters.values(key).as_slice() {
        ["true"] => Ok(Some(true)),
        ["false"] => Ok(Some(false)),
        _ => Err(filters.invalid_value(key)),
    }
}

/// `SearchRegistryForImages(term, limit, filters, auth)`: the results array
/// of `GET /images/search`, under Docker's default registry settings.
pub async fn search(
    term: &str,
    limit: Option<i64>,
    filters: &Filters,
    auth: Option<Auth>,
) -> Result<Vec<SearchResult>> {
    search_with(term, limit, filters, auth, &RegistryOptions::default()).await
}

/// [`search`] with explicit registry settings: a private index is pinged
/// over https (verified unless it is insecure), then, for an insecure
/// index only, over plain http (Docker's `newV1Endpoint`).
pub async fn search_with(
    term: &str,
    limit: Option<i64>,
    filters: &Filters,
    auth: Option<Auth>,
    opts: &RegistryOptions,
) -> Result<Vec<SearchResult>> {
    filters.validate(&["is-automated", "is-official", "stars"])?;
    let automated = bool_filter(filters, "is-automated")?;
    let official = bool_filter(filters, "is-official")?;
    let mut stars: Option<i64> = None;
    for v in filters.values("stars") {
        let n: i64 = v
            .parse()
            .map_err(|_| Error::invalid(format!("Invalid filter 'stars={v}'")))?;
        stars = Some(stars.map_or(n, |s| s.max(n)));
    }
    let limit = limit.unwrap_or(25);
    if !(1..=100).contains(&limit) {
        return Err(Error::invalid(format!(
            "Limit {limit} is outside the range of [1, 100]"
        )));
    }
    if term.contains("://") {
        return Err(Error::invalid(format!(
            "invalid repository name: repository name ({term}) should not have a scheme"
        )));
    }
    let (index, remote) = match term.split_once('/') {
        Some((h, rest)) if h.contains('.') || h.contains(':') || h == "localhost" => {
            (h.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), term.to_string()),
    };
    let official_index = matches!(index.as_str(), "docker.io" | "index.docker.io");
    let remote = if official_index {
        remote
            .strip_prefix("library/")
            .unwrap_or(&remote)
            .to_string()
    } else {
        remote
    };
    let (base, transport) = if official_index {
        (
            Url::parse("https://index.docker.io/v1/")?,
            Transport::default(),
        )
    } else {
        v1_endpoint(&index, opts).await?
    };
    let url = Url {
        path: format!("{}search?q={}&n={limit}", base.path, query_escape(&remote)),
        ..base.clone()
    };
    let mut headers = vec![("X-Docker-Token".to_string(), "true".to_string())];
    if let Some(a) = auth.map(Auth::normalized)
        && !a.username.is_empty()
        && !a.password.is_empty()
    {
        let raw = format!("{}:{}", a.username, a.password);
        headers.push((
            "Authorization".into(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ),
        ));
    }
    let (status, body) = get(&url, &headers, &transport)
        .await
        .map_err(Error::internal)?;
    if status != 200 {
        return Err(Error::internal(format!("Unexpected status code {status}")));
    }
    let parsed: SearchResults = serde_json::from_slice(&body)
        .map_err(|e| Error::internal(format!("error decoding search results: {e}")))?;
    Ok(parsed
        .results
        .into_iter()
        .filter(|r| automated.is_none_or(|a| a == r.is_automated))
        .filter(|r| official.is_none_or(|o| o == r.is_official))
        .filter(|r| stars.is_none_or(|s| r.star_count >= s))
        .collect())
}

/// Docker's `newV1Endpoint` for a private index: `GET <endpoint>_ping`
/// over https (any answer will do), then over http if the index is
/// insecure. The endpoint (`<scheme>://<index>/v1/`) and how to speak to it.
async fn v1_endpoint(index: &str, opts: &RegistryOptions) -> Result<(Url, Transport)> {
    let endpoints = opts.endpoints(index).map_err(Fail::into_error)?;
    let v1 = |u: &Url| Url {
        path: "/v1/".into(),
        ..u.clone()
    };
    let mut https_err = None;
    for ep in endpoints {
        let base = v1(&ep.url);
        let ping = base.join("_ping")?;
        match get(&ping, &[], &ep.transport).await {
            Ok(_) => return Ok((base, ep.transport)),
            Err(e) => match https_err.take() {
                None if !opts.is_insecure(index) => {
                    return Err(Error::internal(format!(
                        "invalid registry endpoint {base}: {e}. If this private registry supports only HTTP or HTTPS \
                         with an unknown CA certificate, please add `--insecure-registry {index}` to the daemon's \
                         arguments. In the case of HTTPS, if you have access to the registry's CA certificate, no \
                         need for the flag; simply place the CA certificate at /etc/docker/certs.d/{index}/ca.crt"
                    )));
                }
                None => https_err = Some(e),
                Some(first) => {
                    return Err(Error::internal(format!(
                        "invalid registry endpoint \"{base}\". HTTPS attempt: {first}. HTTP attempt: {e}"
                    )));
                }
            },
        }
    }
    Err(Error::internal(format!("no endpoint for {index}")))
}

async fn get(
    url: &Url,
    headers: &[(String, String)],
    transport: &Transport,
) -> std::result::Result<(u16, Vec<u8>), String> {
    let sess_less = super::client::Session::plain_with(url.clone(), transport.clone());
    let resp = sess_less
        .send(Method::GET, url.clone(), headers.to_vec(), empty())
        .await
        .map_err(|f| f.message)?;
    let status = resp.status().as_u16();
    let body = read_body(resp, 16 << 20).await.map_err(|f| f.message)?;
    Ok((status, body.to_vec()))
}
