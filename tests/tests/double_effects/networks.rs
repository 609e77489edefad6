//! Networks, DNS and published ports, as the reference has them.

use super::*;

#[test]
fn networks_dns_and_ports_are_apples() {
    engine();
    let d = Double::new("1.2.2");
    let (nat, host_only) = (unique("eg"), unique("int"));
    d.run(&["network", "create", &nat]).expect_ok("nat network");
    d.run(&["network", "create", "--internal", &host_only])
        .expect_ok("host-only network");
    let gw = |n: &str| -> String {
        let v: Value = serde_json::from_str(&d.run(&["network", "inspect", n]).stdout).unwrap();
        v[0]["status"]["ipv4Gateway"].as_str().unwrap().to_string()
    };
    documented("with several `--network` flags, eth0 is the first one and only it gets the");
    // The host-only network first, although Docker would sort it after the NAT one.
    let c = Running::start(
        &d,
        "order",
        &[
            "--network",
            &host_only,
            "--network",
            &format!("{nat},mtu=1500"),
        ],
    );
    let routes = c.sh("ip route");
    assert_eq!(routes.matches("default").count(), 1, "{routes}");
    assert!(
        routes.contains(&format!("default via {} dev eth0", gw(&host_only))),
        "{routes}"
    );
    let status = c.inspect()["status"].clone();
    let eth0_ip = status["networks"][0]["ipv4Address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(
        c.sh("ip -4 addr show eth0").contains(&eth0_ip),
        "eth0 is {host_only}"
    );
    documented("`mtu=` in 0.11.0 (range 1280–65535, default 1280)");
    assert_eq!(
        c.sh("cat /sys/class/net/eth0/mtu /sys/class/net/eth1/mtu")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["1280", "1500"]
    );
    // resolv.conf: the first network's gateway when no --dns is given.
    assert_eq!(
        c.sh("cat /etc/resolv.conf"),
        format!("nameserver {}\n", gw(&host_only))
    );
    assert_eq!(
        c.sh("cat /proc/sys/net/ipv4/ip_forward").trim(),
        "0",
        "a VM kernel's default"
    );
    documented("`--dns`: the container's resolv.conf holds only the given servers.");
    let r = run_sh(
        &d,
        &[
            "--network",
            &nat,
            "--dns",
            "192.0.2.53",
            "--dns",
            "192.0.2.54",
            "--dns-domain",
            "corp.test",
            "--dns-search",
            "a.test",
            "--dns-option",
            "ndots:2",
        ],
        "cat /etc/resolv.conf",
    );
    assert_eq!(r.stdout, "nameserver 192.0.2.53\nnameserver 192.0.2.54\ndomain corp.test\nsearch a.test\noptions ndots:2\n");
    assert_eq!(run_sh(&d, &["--no-dns"], "cat /etc/resolv.conf").stdout, "");
    documented("Combining `--no-dns` with any of those is a ValidationError.");
    d.fails(
        &["run", "--no-dns", "--dns", "1.2.3.4", image(&d), "true"],
        64,
        "--no-dns cannot be combined",
    );
    // mac=, none, default.
    let r = run_sh(
        &d,
        &["--network", &format!("{nat},mac=f2:00:00:00:00:01")],
        "cat /sys/class/net/eth0/address",
    );
    assert_eq!(r.stdout.trim(), "f2:00:00:00:00:01");
    documented("`--network none` (0.6.0+) must be the only `--network`");
    assert_eq!(
        run_sh(&d, &["--network", "none"], "ls /sys/class/net")
            .stdout
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["lo"]
    );
    d.fails(
        &[
            "run",
            "--network",
            "none",
            "--network",
            &nat,
            image(&d),
            "true",
        ],
        1,
        "--network none cannot be combined",
    );
    documented("Without `--network`, a container gets one attachment to `default`.");
    let dflt = Running::start(&d, "dflt", &[]);
    assert_eq!(
        dflt.inspect()["status"]["networks"][0]["network"],
        "default"
    );
    assert!(d
        .run(&["network", "ls", "-q"])
        .stdout
        .lines()
        .any(|l| l == "default"));
    // -p publishes to the host.
    documented("`-p/--publish [host-ip:]host-port:container-port[/tcp|udp]`");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let web = Running::start(
        &d,
        "pub",
        &["--network", &nat, "-p", &format!("127.0.0.1:{port}:7000")],
    );
    web.d
        .run(&[
            "exec",
            "-d",
            &web.id,
            "sh",
            "-c",
            "echo published | nc -l -p 7000",
        ])
        .expect_ok("listener");
    let got = (0..30).find_map(|_| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        let mut buf = String::new();
        std::io::Read::read_to_string(&mut s, &mut buf).ok()?;
        buf.contains("published").then_some(buf)
    });
    assert!(got.is_some(), "the published port reaches the container");
    assert_eq!(
        web.inspect()["configuration"]["publishedPorts"][0]["hostPort"],
        port
    );
    drop((c, dflt, web));
    d.run(&["network", "delete", &nat, &host_only])
        .expect_ok("cleanup");
}
