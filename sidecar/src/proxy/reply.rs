//! What the proxy answers itself, and why a request stops.

use crate::upstream::{BoxError, UpstreamError};
use bottlebar_policy::DenyReason;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

/// The body type of every response to the agent.
pub type RespBody = BoxBody<Bytes, BoxError>;

/// Why a request stops before (or instead of) reaching its upstream.
#[derive(Debug)]
pub enum Stop {
    /// A policy refusal: 403 (400 for a malformed request), with the reason.
    Deny(DenyReason),
    /// Egress is closed: the rules could not be taken.
    Closed(String),
    /// The upstream could not be reached or answered badly: 502.
    Upstream(UpstreamError),
}

impl From<DenyReason> for Stop {
    fn from(r: DenyReason) -> Self {
        Stop::Deny(r)
    }
}

/// An empty body.
pub fn empty() -> RespBody {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

/// A plain-text response.
pub fn text(status: StatusCode, body: &str) -> Response<RespBody> {
    let mut resp = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// A JSON response.
pub fn json(status: StatusCode, value: serde_json::Value) -> Response<RespBody> {
    let mut resp = text(status, &format!("{value}\n"));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The refusal the agent reads: status, a sentence, and the reason's code
/// in `x-bottlebar-deny`.
pub fn refusal(bottle: &str, status: u16, code: &str, message: &str) -> Response<RespBody> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    let what = if status == StatusCode::BAD_REQUEST {
        "request refused"
    } else {
        "egress denied"
    };
    let mut resp = text(
        status,
        &format!("Bottlebar: {what} for bottle `{bottle}`: {message}\n"),
    );
    if let Ok(v) = HeaderValue::from_str(code) {
        resp.headers_mut().insert("x-bottlebar-deny", v);
    }
    resp
}
