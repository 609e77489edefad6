//! The pipeline's checks on a request head, one concern each. Every check
//! returns `Err` with the reason the request is refused.

use super::Origin;
use crate::config::Snapshot;
use crate::dlp::decode::BodyDecoder;
use crate::dlp::Scanner;
use bottlebar_policy::{normalize_host, DenyReason, DlpAction, EgressRule};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::Uri;

/// Secrets in what names the destination (the method, the host, a TLS
/// server name): these reach DNS and the audit log and cannot be masked,
/// so any finding refuses the request whatever its rule says. Checked
/// before the name is looked up or decided on.
pub fn check_destination(method: &str, host: &str, snap: &Snapshot) -> Result<(), DenyReason> {
    // Labels joined too, so hex split across labels reads whole. NUL
    // separates the parts (it ends every run a view decodes).
    let text = format!("{method}\0{host}\0{}", host.replace('.', ""));
    match snap.scanner.first_deep(text.as_bytes()) {
        Some(f) => Err(DenyReason::SecretDetected {
            kind: f.kind,
            location: "destination (method or host name)".into(),
            rule: None,
        }),
        None => Ok(()),
    }
}

/// Inside a tunnel, the request must name the tunnel's host (`Host` in
/// HTTP/1, `:authority` in HTTP/2); outside, `Host` must match the URL.
pub fn check_fronting(parts: &Parts, origin: &Origin) -> Result<(), DenyReason> {
    let uri_host = parts
        .uri
        .authority()
        .map(|a| normalize_host(a.host().trim_start_matches('[').trim_end_matches(']')));
    let header_host = parts
        .headers
        .get(header::HOST)
        .map(|h| h.to_str().map(host_of_header).unwrap_or_default());
    for (what, named) in [("URL", uri_host), ("Host header", header_host)] {
        if let Some(named) = named {
            if named != origin.host {
                let inside = if origin.tunneled {
                    format!("the tunnel to `{}`", origin.host)
                } else {
                    format!("the request for `{}`", origin.host)
                };
                return Err(DenyReason::Fronting {
                    detail: format!("the {what} names `{named}` inside {inside}"),
                });
            }
        }
    }
    Ok(())
}

/// A placeholder the agent was given may only travel to the rule that replaces it.
pub fn check_placeholders(
    parts: &Parts,
    snap: &Snapshot,
    rule: &EgressRule,
) -> Result<(), DenyReason> {
    let uri = parts.uri.to_string();
    for s in &snap.secrets {
        let Some(p) = s.placeholder.as_deref().filter(|p| !p.is_empty()) else {
            continue;
        };
        let present = uri.contains(p)
            || parts
                .headers
                .values()
                .any(|v| v.as_bytes().windows(p.len()).any(|w| w == p.as_bytes()));
        let injected_here = rule.inject.as_ref().is_some_and(|i| i.secret == s.name);
        if present && !injected_here {
            return Err(DenyReason::Placeholder {
                secret: s.name.clone(),
            });
        }
    }
    Ok(())
}

/// Scans the head: path, query, header names and values. Direct findings
/// in the path, query and header values are masked in place when the rule
/// redacts; anything else (a header name, or a secret visible only once
/// decoded, or split across headers) refuses the request. Returns how many
/// findings were masked.
pub fn scan_head(
    parts: &mut Parts,
    snap: &Snapshot,
    rule: &EgressRule,
    rule_index: usize,
) -> Result<usize, DenyReason> {
    let scanner = &snap.scanner;
    let detected = |kind: String, location: String| DenyReason::SecretDetected {
        kind,
        location,
        rule: Some(rule_index),
    };
    let redact = rule.dlp == DlpAction::Redact;
    let mut redacted =
        redact_uri(parts, scanner, redact).map_err(|(kind, loc)| detected(kind, loc))?;
    if let Some(name) = parts
        .headers
        .keys()
        .find(|n| scanner.first(n.as_str().as_bytes()).is_some())
    {
        let kind = scanner
            .first(name.as_str().as_bytes())
            .map(|f| f.kind)
            .unwrap_or_default();
        return Err(detected(kind, "header name".into()));
    }
    redacted += redact_header_values(&mut parts.headers, scanner, redact)
        .map_err(|(kind, name)| detected(kind, format!("header `{name}`")))?;
    // Then the whole head as one text, decoded every way, and with the
    // header values joined, so nothing encoded or split passes. NUL
    // separates the parts (it ends every run a view decodes).
    let mut text = format!("{}\0{}", parts.method, parts.uri).into_bytes();
    let mut joined = Vec::new();
    for (name, value) in &parts.headers {
        text.push(0);
        text.extend_from_slice(name.as_str().as_bytes());
        text.push(0);
        text.extend_from_slice(value.as_bytes());
        joined.extend_from_slice(value.as_bytes());
    }
    for data in [&text, &joined] {
        if let Some(f) = scanner.first_deep(data) {
            return Err(detected(f.kind, "request head".into()));
        }
    }
    Ok(redacted)
}

/// Masks (or refuses) secrets in the path and query.
fn redact_uri(
    parts: &mut Parts,
    scanner: &Scanner,
    redact: bool,
) -> Result<usize, (String, String)> {
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let mut new_path = path.clone();
    let mut new_query = query.clone();
    let mut redacted = 0;
    for (location, value) in [("path", Some(&mut new_path)), ("query", new_query.as_mut())] {
        let Some(value) = value else { continue };
        if let Some(f) = scanner.first(value.as_bytes()) {
            if !redact {
                return Err((f.kind, location.into()));
            }
            let mut bytes = std::mem::take(value).into_bytes();
            redacted += scanner.redact(&mut bytes);
            *value = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    if new_path != path || new_query != query {
        let pq = match &new_query {
            Some(q) => format!("{new_path}?{q}"),
            None => new_path,
        };
        let mut uri = parts.uri.clone().into_parts();
        uri.path_and_query = pq.parse().ok();
        parts.uri = Uri::from_parts(uri).unwrap_or_else(|_| parts.uri.clone());
    }
    Ok(redacted)
}

/// Masks (or refuses) secrets in header values; `Err` names the kind and header.
pub fn redact_header_values(
    headers: &mut HeaderMap,
    scanner: &Scanner,
    redact: bool,
) -> Result<usize, (String, HeaderName)> {
    // Most heads hold nothing: say so without copying a name or a value.
    if !headers.values().any(|v| scanner.is_match(v.as_bytes())) {
        return Ok(0);
    }
    let mut redacted = 0;
    let names: Vec<HeaderName> = headers.keys().cloned().collect();
    for name in names {
        let values: Vec<HeaderValue> = headers.get_all(&name).iter().cloned().collect();
        let mut changed = false;
        let mut out = Vec::with_capacity(values.len());
        for v in values {
            let found = scanner.find_all(v.as_bytes());
            if found.is_empty() {
                out.push(v);
                continue;
            }
            if !redact {
                return Err((found[0].kind.clone(), name));
            }
            let mut bytes = v.as_bytes().to_vec();
            redacted += scanner.redact(&mut bytes);
            out.push(HeaderValue::from_bytes(&bytes).unwrap_or(v));
            changed = true;
        }
        if changed {
            headers.remove(&name);
            for v in out {
                headers.append(name.clone(), v);
            }
        }
    }
    Ok(redacted)
}

/// The body's `Content-Encoding`, as a decoder (`None` when not encoded);
/// an encoding that cannot be undone refuses the request.
pub fn body_decoder(headers: &HeaderMap) -> Result<Option<BodyDecoder>, DenyReason> {
    let value = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect::<Vec<_>>()
        .join(",");
    BodyDecoder::for_header(&value).map_err(|e| DenyReason::Uninspectable {
        detail: format!("the request body's {e}"),
    })
}

/// Puts the rule's credential into the request; refused if the secret is
/// not held or cannot be a header value.
pub fn inject(
    parts: &mut Parts,
    snap: &Snapshot,
    rule: &EgressRule,
) -> Result<Option<String>, String> {
    let Some(inj) = &rule.inject else {
        return Ok(None);
    };
    let Some(secret) = snap.secret(&inj.secret) else {
        return Err(format!("secret `{}` is not held", inj.secret));
    };
    let mut v = HeaderValue::from_str(&inj.render(&secret.value))
        .map_err(|_| format!("secret `{}` cannot be sent in a header", inj.secret))?;
    v.set_sensitive(true);
    parts.headers.insert(
        HeaderName::from_bytes(inj.header.as_bytes()).expect("validated header name"),
        v,
    );
    Ok(Some(inj.secret.clone()))
}

/// The host part of a `Host` header value (`name`, `name:port`, `[v6]:port`).
pub fn host_of_header(value: &str) -> String {
    let v = value.trim();
    let host = if let Some(rest) = v.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        v.rsplit_once(':').map(|(h, _)| h).unwrap_or(v)
    };
    normalize_host(host)
}

/// Removes the headers that describe one hop, not the message (RFC 9110 §7.6.1),
/// including any the `Connection` header names and the proxy's own credentials.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most heads hold none: one pass over the names present, where the
    // removals below look up nine names each (~1 % of the proxy's CPU).
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Whether `name` is one of [`HOP_BY_HOP`].
fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name)
}

/// The headers that describe one hop, named once (a `&str` name is parsed
/// again on every use; a `const` array would be made again on every use).
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("keep-alive"),
];

/// Encodings the proxy can undo, offered upstream in place of whatever the
/// agent asked for, so every response can be scanned.
pub const DECODABLE_ENCODINGS: &str = "gzip, deflate, br";

/// Whether the request asks for DNS-over-HTTPS by media type.
pub fn declares_doh(headers: &HeaderMap) -> bool {
    [header::CONTENT_TYPE, header::ACCEPT].iter().any(|h| {
        headers
            .get_all(h)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                bottlebar_policy::DOH_MEDIA_TYPES
                    .iter()
                    .any(|m| v.to_ascii_lowercase().contains(m))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_parsing() {
        assert_eq!(host_of_header("Example.com"), "example.com");
        assert_eq!(host_of_header("example.com:8080"), "example.com");
        assert_eq!(host_of_header("[::1]:443"), "::1");
        assert_eq!(host_of_header("example.com."), "example.com");
    }

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "close, x-private".parse().unwrap());
        h.insert("x-private", "1".parse().unwrap());
        h.insert(header::PROXY_AUTHORIZATION, "Basic x".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
        // Each alone is found, the two named from text among them.
        for name in ["proxy-connection", "keep-alive", "te", "upgrade"] {
            let mut h = HeaderMap::new();
            h.insert(HeaderName::from_static(name), "1".parse().unwrap());
            h.insert("x-kept", "1".parse().unwrap());
            strip_hop_by_hop(&mut h);
            assert!(!h.contains_key(name) && h.contains_key("x-kept"), "{name}");
        }
    }
}
