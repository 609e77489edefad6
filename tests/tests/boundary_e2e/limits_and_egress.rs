//! Attack 13: limits, parsing and the egress side.

use super::*;

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
