//! Attack 11: packets around the proxy (raw frames, a sniffer, a forwarding
//! router for the control), with the test kit's own helper containers.

use super::*;

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
