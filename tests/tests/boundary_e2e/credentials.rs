//! Attack 9: credentials in the clear, reflected back to the agent, or spread.

use super::*;

#[test]
fn attack_9_credentials_in_the_clear_reflected_or_spread() {
    let f = fixture("e2e-esc9");
    let mut a = Attack::new(
        9,
        "Credential injection over plain HTTP, reflected back, or spread by a wildcard",
    );
    let real = sha256_hex(format!("Bearer {SECRET}").as_bytes());
    // Controls: the credential is injected upstream, and the upstream echoes
    // the request's headers back (so a reflection would reach the agent).
    let ok = f.fetch(&format!("-H 'X-Probe: visible-123' https://{ALLOWED}/echo"));
    let echoed: Value = serde_json::from_str(ok["body"].as_str().unwrap_or("")).unwrap_or_default();
    a.control(
        echoed["header_sha256"]["authorization"] == serde_json::json!([real]),
        "the upstream receives the real credential over verified TLS",
    );
    a.control(
        echoed["headers"]["x-probe"] == serde_json::json!(["visible-123"]),
        "the upstream echoes request headers back",
    );
    for (what, args) in [
        ("HTTP/1.1", format!("https://{ALLOWED}/echo")),
        ("HTTP/2", format!("--http2 https://{ALLOWED}/echo")),
        (
            "gzip-compressed",
            format!("'https://{ALLOWED}/echo?gzip=1'"),
        ),
        (
            "HTTP/2 and gzip",
            format!("--http2 'https://{ALLOWED}/echo?gzip=1'"),
        ),
    ] {
        let v = f.fetch(&args);
        a.blocked(
            status(&v) == 200 && !v.to_string().contains(SECRET),
            format!("the echoed credential read back by the agent ({what}, body and headers)"),
        );
    }
    let trace = f.fetch(&format!("-X TRACE https://{ALLOWED}/echo"));
    a.blocked(
        denied_with(&trace, "trace_refused"),
        "TRACE to the injecting host",
    );
    // Plain HTTP, absolute form: refused, the credential never sent.
    let plain = f.fetch(&format!("http://{ALLOWED}/echo"));
    a.blocked(
        denied_with(&plain, "injection_needs_tls") && !plain.to_string().contains(&real),
        "the credential over plain HTTP (absolute-form http://)",
    );
    // A tunnel to port 80 whose first bytes are plain HTTP.
    let tunnel80 = raw_to_proxy(
        &f,
        &format!("CONNECT {ALLOWED}:80 HTTP/1.1\\r\\n\\r\\nGET /echo HTTP/1.1\\r\\nHost: {ALLOWED}\\r\\nConnection: close\\r\\n\\r\\n"),
    );
    a.blocked(
        tunnel80.contains("injection_needs_tls") && !tunnel80.contains(&real),
        "the credential through CONNECT :80 with plain HTTP inside",
    );
    // A tunnel to port 443 whose first bytes are plain HTTP: the port
    // decides, so the upstream leg is TLS and the credential is never in
    // the clear (the upstream's digest shows it arrived, over TLS).
    let tunnel443 = raw_to_proxy(
        &f,
        &format!("CONNECT {ALLOWED}:443 HTTP/1.1\\r\\n\\r\\nGET /echo HTTP/1.1\\r\\nHost: {ALLOWED}\\r\\nConnection: close\\r\\n\\r\\n"),
    );
    a.control(
        tunnel443.contains(&f.token),
        "a plain request inside CONNECT :443 reaches the upstream",
    );
    a.blocked(
        tunnel443.contains(&real) && !tunnel443.contains(SECRET),
        "the credential in the clear through CONNECT :443 with plain HTTP inside",
    );
    // `inject` on a wildcard rule: refused before anything exists.
    let h = Harness::new();
    h.write_bottle(
        "e2e-esc9w",
        "[agent]\ntemplate = \"busybox\"\n[secrets.api]\nenv = \"BOTTLEBAR_ESCAPE_API_KEY\"\n[[egress]]\nhost = \"*.wild.bottlebar.test\"\ninject = { header = \"authorization\", secret = \"api\" }\n",
    );
    let r = h.bottle(&["up", "e2e-esc9w"]);
    a.blocked(
        !r.ok()
            && r.stderr
                .contains("would send the credential to every subdomain")
            && labelled("e2e-esc9w") == (vec![], vec![]),
        "a manifest injecting a credential on a `*.` rule",
    );
    a.finish();
}
