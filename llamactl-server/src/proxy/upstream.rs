//! Where a forwarded request goes: the backend's address with the request's path and query
//! (without `api_key`, the manager's credential).
//!
//! The URI is put together from its parts instead of formatted and parsed again: the
//! backend's `host:port` is made once per address, and a path and query without `api_key` (the
//! usual case) is shared with the incoming request, not copied.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use axum::http::Uri;
use axum::http::uri::{Authority, PathAndQuery, Scheme};
use llamactl_core::backend::Listen;

/// The `host:port` of every backend address requests went to.
#[derive(Debug, Default)]
pub struct Authorities {
    /// By port, then host: a lookup needs no key of its own.
    by_port: RwLock<HashMap<u16, Vec<(String, Authority)>>>,
}

impl Authorities {
    /// The authority requests to `listen` are sent to (as in [`Listen::base_url`]).
    pub fn of(&self, listen: &Listen) -> Result<Authority, axum::http::uri::InvalidUri> {
        let known = self.by_port.read().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, authority)) =
            known.get(&listen.port).and_then(|hosts| hosts.iter().find(|(h, _)| *h == listen.host))
        {
            return Ok(authority.clone());
        }
        drop(known);
        let base = listen.base_url();
        let authority = Authority::try_from(base.strip_prefix("http://").unwrap_or(&base))?;
        let mut known = self.by_port.write().unwrap_or_else(PoisonError::into_inner);
        let hosts = known.entry(listen.port).or_default();
        if !hosts.iter().any(|(h, _)| *h == listen.host) {
            hosts.push((listen.host.clone(), authority.clone()));
        }
        Ok(authority)
    }
}

/// `uri`'s path and query at `authority` over plain HTTP, without `api_key` in the query.
pub fn upstream_uri(authority: Authority, uri: &Uri) -> Result<Uri, String> {
    let path_and_query = match uri.path_and_query() {
        None => PathAndQuery::from_static("/"),
        Some(original) => match strip_api_key(original.as_str()) {
            None => original.clone(),
            Some(kept) => PathAndQuery::try_from(kept).map_err(|e| e.to_string())?,
        },
    };
    let mut parts = axum::http::uri::Parts::default();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(authority);
    parts.path_and_query = Some(path_and_query);
    Uri::from_parts(parts).map_err(|e| e.to_string())
}

/// The request's path and query without `api_key`, or `None` if it has none (nothing to
/// change).
pub fn strip_api_key(path_and_query: &str) -> Option<String> {
    let (path, query) = path_and_query.split_once('?')?;
    let is_key = |pair: &&str| *pair == "api_key" || pair.starts_with("api_key=");
    if !query.split('&').any(|pair| is_key(&pair)) {
        return None;
    }
    let kept: Vec<&str> = query.split('&').filter(|pair| !is_key(pair)).collect();
    Some(if kept.is_empty() { path.to_owned() } else { format!("{path}?{}", kept.join("&")) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(path_and_query: &str) -> String {
        strip_api_key(path_and_query).unwrap_or_else(|| path_and_query.to_owned())
    }

    #[test]
    fn api_key_is_removed_from_the_query_and_nothing_else() {
        assert_eq!(strip("/v1/x?api_key=secret"), "/v1/x");
        assert_eq!(strip("/v1/x?a=1&api_key=secret&b=2"), "/v1/x?a=1&b=2");
        assert_eq!(strip("/v1/x?api_keys=1"), "/v1/x?api_keys=1");
        assert_eq!(strip("/v1/x"), "/v1/x");
        assert_eq!(strip_api_key("/v1/x?a=1"), None);
    }

    #[test]
    fn the_uri_is_the_one_formatting_and_parsing_gave() {
        let authorities = Authorities::default();
        for (host, port) in [("127.0.0.1", 8080), ("0.0.0.0", 8080), ("::", 9000), ("::1", 9000), ("10.0.0.2", 1)] {
            let listen = Listen { host: host.into(), port };
            for original in ["/v1/chat/completions", "/v1/x?a=1&api_key=k&b=%20", "/?api_key", "/a%2Fb?q=1"] {
                let uri: Uri = original.parse().unwrap();
                let expected: Uri = format!("{}{}", listen.base_url(), strip(original)).parse().unwrap();
                let made = upstream_uri(authorities.of(&listen).unwrap(), &uri).unwrap();
                assert_eq!(made, expected);
                assert_eq!(made.to_string(), expected.to_string());
            }
        }
        // Asked again: the same authority, from the cache.
        let listen = Listen { host: "127.0.0.1".into(), port: 8080 };
        assert_eq!(authorities.of(&listen).unwrap().as_str(), "127.0.0.1:8080");
        assert_eq!(authorities.by_port.read().unwrap()[&8080].len(), 2, "one entry per host");
        // An absolute-form request target keeps only its path and query.
        let uri: Uri = "http://manager:1/v1/x?y=2".parse().unwrap();
        assert_eq!(upstream_uri(authorities.of(&listen).unwrap(), &uri).unwrap(), "http://127.0.0.1:8080/v1/x?y=2");
    }
}
