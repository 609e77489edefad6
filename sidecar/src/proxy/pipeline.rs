//! Layer 4: every request, however it arrived (absolute form, or inside a
//! tunnel), through the same stages:
//!
//! 1. [`Proxy::prepare`]: the checks, in order (each in [`super::checks`]),
//!    then the credential injected and the body wrapped for scanning;
//! 2. the upstream exchange (pooled connections, TLS verified, resolved
//!    addresses checked);
//! 3. the response cleaned of held secrets ([`super::response`]).
//!
//! Any stage may stop the request ([`Stop`]); [`Proxy::stop`] turns that
//! into the agent's answer and an audit line.

use super::checks::{self, DECODABLE_ENCODINGS};
use super::reply::{refusal, text, RespBody, Stop};
use super::request_body::{BodyReport, ScannedBody};
use super::response::{prepare_head, ResponseBody};
use super::{Origin, Proxy};
use crate::audit::{now_rfc3339, Entry};
use crate::config::Snapshot;
use crate::dlp::{Depth, Mode, StreamScanner};
use crate::upstream::{Destination, Framing, Pool, ReqBody, UpstreamError};
use bottlebar_policy::supervise::Scope;
use bottlebar_policy::{decide, Decision, DenyReason, DlpAction, Request as PolicyRequest};
use bottlebar_policy::{ReasonCode, Verdict};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::http::uri::PathAndQuery;
use hyper::{Request, Response, StatusCode, Uri, Version};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// A request that passed every check, ready to send.
struct Prepared {
    parts: Parts,
    body: ReqBody,
    report: Arc<BodyReport>,
}

impl Proxy {
    /// Every request, however it arrived.
    pub(super) async fn pipeline(
        self: Arc<Self>,
        req: Request<Incoming>,
        origin: Origin,
        pool: Arc<Pool>,
    ) -> Response<RespBody> {
        let started = Instant::now();
        let agent_version = req.version();
        let (parts, body) = req.into_parts();
        let snap = self.held_snapshot(&parts, &origin).await;
        let mut entry = self.audit_entry(&parts, &origin, &snap);
        let prepared = match self.prepare(parts, body, &origin, &snap, &mut entry) {
            Ok(p) => p,
            Err(stop) => return self.stop(entry, stop, started),
        };
        let response = match self
            .send(prepared.parts, prepared.body, &origin, &snap, &pool)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                entry.bytes_up = prepared.report.bytes_up.load(Ordering::Relaxed);
                let stop = match prepared.report.blocked() {
                    // The upstream failed because the body was stopped: a refusal.
                    Some(why) => Stop::Deny(DenyReason::SecretDetected {
                        kind: why
                            .trim_start_matches("the request body carries ")
                            .to_string(),
                        location: "body".into(),
                        rule: entry.rule.map(|r| r - 1),
                    }),
                    None => Stop::Upstream(e),
                };
                return self.stop(entry, stop, started);
            }
        };
        let (mut rparts, rbody) = response.into_parts();
        let decoder = match prepare_head(&mut rparts, &snap) {
            Ok((decoder, masked)) => {
                entry.redacted_in_response += masked;
                decoder
            }
            Err(why) => {
                let reason = DenyReason::Uninspectable { detail: why };
                return self.stop(entry, Stop::Deny(reason), started);
            }
        };
        self.allowed.fetch_add(1, Ordering::Relaxed);
        rparts.version = agent_version;
        entry.decision = Verdict::Allow;
        entry.status = rparts.status.as_u16();
        let body = ResponseBody::new(
            rbody,
            decoder,
            &snap,
            entry,
            started,
            prepared.report,
            self.audit.clone(),
        );
        Response::from_parts(rparts, body.boxed())
    }

    /// The rules this request is decided by (after holding it, where the
    /// bottle holds requests for unlisted hosts).
    async fn held_snapshot(&self, parts: &Parts, origin: &Origin) -> Arc<Snapshot> {
        let snap = self.live.current();
        let method = parts.method.as_str();
        let request = PolicyRequest::Http {
            method,
            host: &origin.host,
            port: origin.port,
            path: parts.uri.path(),
            doh_media: checks::declares_doh(&parts.headers),
            tls: origin.upstream_tls,
        };
        // The proposal's scope and words are made only for a request that is
        // held: every allowed request went through a format and a scan of its
        // path for them before (~1.5 % of the proxy's CPU at 8 connections).
        let describe = || {
            let scope = Scope {
                host: origin.host.clone(),
                port: origin.port,
                methods: vec![method.to_string()],
                paths: Vec::new(),
            };
            let (path, _) = snap.scanner.redact_str(parts.uri.path());
            let what = format!(
                "{method} {}://{}{path}",
                origin.scheme(),
                origin.authority()
            );
            (scope, what)
        };
        self.hold_unlisted(snap.clone(), request, describe).await
    }

    /// The audit line's start: what was asked for, with any secret masked.
    fn audit_entry(&self, parts: &Parts, origin: &Origin, snap: &Snapshot) -> Entry {
        let redact = |s: &str| snap.scanner.redact_str(s).0;
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        self.entry(
            &redact(parts.method.as_str()),
            origin.scheme(),
            &redact(&origin.host),
            origin.port,
            &redact(path),
        )
    }

    /// The checks, in order; then the credential and the scanned body.
    fn prepare(
        &self,
        mut parts: Parts,
        body: Incoming,
        origin: &Origin,
        snap: &Arc<Snapshot>,
        entry: &mut Entry,
    ) -> Result<Prepared, Stop> {
        if let Some(err) = &snap.error {
            return Err(Stop::Closed(err.clone()));
        }
        checks::check_fronting(&parts, origin)?;
        origin.passed.check(&parts.method, &origin.host, snap)?;
        let rule_index = match decide(
            &snap.rules,
            PolicyRequest::Http {
                method: parts.method.as_str(),
                host: &origin.host,
                port: origin.port,
                path: parts.uri.path(),
                doh_media: checks::declares_doh(&parts.headers),
                tls: origin.upstream_tls,
            },
        ) {
            Decision::Allow { rule } => rule,
            Decision::Deny(reason) => return Err(reason.into()),
        };
        entry.rule = Some(rule_index + 1);
        if !self.use_grant(snap, rule_index, entry) {
            return Err(DenyReason::HostNotAllowed {
                host: origin.host.clone(),
            }
            .into());
        }
        let rule = &snap.rules[rule_index];
        checks::strip_hop_by_hop(&mut parts.headers);
        if let Some(inj) = &rule.inject {
            parts.headers.remove(inj.header.as_str());
        }
        checks::check_placeholders(&parts, snap, rule)?;
        entry.redacted = checks::scan_head(&mut parts, snap, rule, rule_index)?;
        let decoder = checks::body_decoder(&parts.headers)?;
        if decoder.is_some() {
            // Sent on decoded: what was scanned is what leaves.
            parts.headers.remove(header::CONTENT_ENCODING);
            parts.headers.remove(header::CONTENT_LENGTH);
        }
        if !snap.reflection.is_empty() {
            // Only encodings the response scan can undo.
            parts.headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static(DECODABLE_ENCODINGS),
            );
        }
        entry.injected = checks::inject(&mut parts, snap, rule).map_err(Stop::Closed)?;
        let mode = match rule.dlp {
            DlpAction::Block => Mode::Block,
            DlpAction::Redact => Mode::Redact,
        };
        let report = Arc::new(BodyReport::default());
        let scanner = StreamScanner::new(snap.scanner.clone(), mode, Depth::Views);
        let body = ScannedBody::new(body, decoder, scanner, report.clone()).boxed();
        Ok(Prepared {
            parts,
            body,
            report,
        })
    }

    /// Sends the request upstream, framed for whichever HTTP version the
    /// pooled connection speaks.
    async fn send(
        &self,
        parts: Parts,
        body: ReqBody,
        origin: &Origin,
        snap: &Snapshot,
        pool: &Pool,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let dest = Destination {
            host: origin.host.clone(),
            port: origin.port,
            tls: origin.upstream_tls,
            pinned: snap.hosts.get(&origin.host).copied(),
        };
        // A clone of the parsed path shares its bytes: nothing is parsed again.
        let path_and_query = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let authority = origin.authority();
        let scheme = origin.scheme();
        let build = move |framing: Framing| {
            let mut p = parts;
            match framing {
                Framing::H1 => {
                    p.version = Version::HTTP_11;
                    p.uri = Uri::from(path_and_query);
                    p.headers.insert(
                        header::HOST,
                        HeaderValue::from_str(&authority).expect("host is a valid header value"),
                    );
                }
                Framing::H2 => {
                    p.version = Version::HTTP_2;
                    p.uri = format!("{scheme}://{authority}{path_and_query}")
                        .parse()
                        .unwrap_or_else(|_| Uri::from_static("/"));
                    p.headers.remove(header::HOST);
                }
            }
            Request::from_parts(p, body)
        };
        pool.send(&self.upstream, &dest, &snap.addresses, build)
            .await
    }

    /// Ends a request that did not reach (or failed at) its upstream: the
    /// agent's answer, and the audit line.
    pub(super) fn stop(
        &self,
        mut entry: Entry,
        stop: Stop,
        started: Instant,
    ) -> Response<RespBody> {
        let (status, code, message) = match stop {
            Stop::Upstream(UpstreamError::PrivateAddress { host, detail }) => {
                return self.stop(
                    entry,
                    Stop::Deny(DenyReason::PrivateAddress { host, detail }),
                    started,
                )
            }
            Stop::Deny(reason) => {
                self.denied.fetch_add(1, Ordering::Relaxed);
                self.note_denial(&entry, &reason);
                entry.decision = Verdict::Deny;
                if entry.rule.is_none() {
                    entry.rule = reason.rule().map(|r| r + 1);
                }
                (reason.status(), reason.code(), reason.to_string())
            }
            Stop::Closed(why) => {
                self.denied.fetch_add(1, Ordering::Relaxed);
                entry.decision = Verdict::Deny;
                let message = format!("egress is closed until the sidecar has valid rules: {why}");
                (403, ReasonCode::RulesUnreadable, message)
            }
            Stop::Upstream(error) => {
                tracing::info!(host = entry.host, "upstream failure: {error}");
                entry.decision = Verdict::Allow;
                let code = match error {
                    UpstreamError::TlsVerify { .. } => ReasonCode::UpstreamTlsVerify,
                    _ => ReasonCode::UpstreamFailed,
                };
                let message = format!("Bottlebar: upstream failure: {error}\n");
                entry.reason = Some(code);
                entry.detail = Some(error.to_string());
                self.finish(entry, 502, started);
                return text(StatusCode::BAD_GATEWAY, &message);
            }
        };
        entry.reason = Some(code);
        entry.detail = Some(message.clone());
        self.finish(entry, status, started);
        refusal(&self.bottle, status, code.as_str(), &message)
    }

    fn finish(&self, mut entry: Entry, status: u16, started: Instant) {
        entry.status = status;
        entry.time = now_rfc3339();
        entry.duration_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            method = entry.method,
            host = entry.host,
            port = entry.port,
            status,
            reason = entry.reason.map_or("", ReasonCode::as_str),
            "{}",
            entry.decision.as_str()
        );
        self.audit.record(&entry);
    }
}
