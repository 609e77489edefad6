use super::*;

fn path(class: LeakClass, p: &str, outcome: Outcome) -> PathResult {
    PathResult {
        class,
        path: p.into(),
        outcome,
        detail: "x".into(),
        ms: 1500,
    }
}

fn report(paths: Vec<PathResult>, proxy_ok: bool) -> ProbeReport {
    ProbeReport {
        paths,
        proxy_ok,
        proxy_detail: "proxy at 10.0.0.2:3128 answered".into(),
        elapsed_ms: 1500,
        gateways: vec![],
    }
}

#[test]
fn judges_leaks_accepted_classes_and_the_proxy_path() {
    let blocked = path(LeakClass::OutsideIpv4, "tcp 10.9.9.9:443", Outcome::Blocked);
    let host = path(LeakClass::Host, "tcp 10.0.0.1:22", Outcome::Refused);
    let r = report(vec![blocked.clone()], true);
    assert_eq!(judge(&r, &[]), Verdict::Isolated { accepted: vec![] });
    let r = report(vec![blocked.clone(), host.clone()], true);
    let v = judge(&r, &[]);
    assert_eq!(
        v,
        Verdict::Leak {
            leaks: vec![host.clone()]
        }
    );
    assert!(v.summary().contains("tcp 10.0.0.1:22"), "{}", v.summary());
    assert!(!v.is_ready());
    // Accepting the class makes it ready, and says what was accepted.
    let v = judge(&r, &[LeakClass::Host]);
    assert!(v.is_ready());
    assert!(v.summary().contains("accepted"), "{}", v.summary());
    // Accepting another class does not.
    assert!(!judge(&r, &[LeakClass::Dns]).is_ready());
    // No proxy: not ready, even when nothing leaked.
    let v = judge(&report(vec![blocked], false), &[]);
    assert!(matches!(v, Verdict::NoProxy { .. }));
}

#[test]
fn targets_leave_out_the_bottles_own_proxy() {
    let outside = OutsideTargets {
        outside: vec!["10.9.9.9:443".parse().unwrap()],
        resolvers: vec!["10.9.9.9".parse().unwrap()],
        dns_name: "outside.test".into(),
        host_ports: None,
    };
    let sidecar: IpAddr = "10.0.0.2".parse().unwrap();
    let t = targets(
        outside,
        sidecar,
        vec!["10.1.0.2".parse().unwrap()],
        vec![sidecar, "192.168.1.5".parse().unwrap()],
    );
    assert_eq!(t.host_addrs, vec!["192.168.1.5".parse::<IpAddr>().unwrap()]);
    assert_eq!(t.proxy, "10.0.0.2:3128".parse().unwrap());
    assert_eq!(t.host_ports, HOST_SERVICE_PORTS);
}

/// Issue 10.5: a fake probe (nothing tried, instant "isolated") is not believed.
#[test]
fn a_report_missing_paths_or_too_fast_is_untrusted() {
    let outside = OutsideTargets {
        outside: vec!["10.9.9.9:443".parse().unwrap()],
        resolvers: vec!["10.9.9.53".parse().unwrap()],
        dns_name: "outside.test".into(),
        host_ports: Some(vec![22]),
    };
    let t = targets(
        outside,
        "10.0.0.2".parse().unwrap(),
        vec![],
        vec!["192.168.1.5".parse().unwrap()],
    );
    let timed_out = |class, p: &str, ms| PathResult {
        class,
        path: p.into(),
        outcome: Outcome::Blocked,
        detail: "timed out".into(),
        ms,
    };
    let full = |ms| ProbeReport {
        paths: vec![
            timed_out(LeakClass::OutsideIpv4, "tcp 10.9.9.9:443", ms),
            timed_out(LeakClass::Dns, "udp 10.9.9.53:53 outside.test", ms),
            timed_out(LeakClass::Dns, "tcp 10.9.9.53:53 outside.test", ms),
            timed_out(LeakClass::Host, "tcp 192.168.1.5:22", ms),
        ],
        proxy_ok: true,
        proxy_detail: "ok".into(),
        elapsed_ms: ms,
        gateways: vec![],
    };
    assert_eq!(implausible(&full(1500), &t, 1600), None);
    // What `mv /.bottlebar /.x` and a fake script gave: nothing tried, 1 ms.
    let fake = ProbeReport {
        paths: vec![],
        proxy_ok: true,
        proxy_detail: "ok".into(),
        elapsed_ms: 1,
        gateways: vec![],
    };
    assert!(implausible(&fake, &t, 3).unwrap().contains("missing"));
    assert!(implausible(&full(2), &t, 5)
        .unwrap()
        .contains("under the 1500 ms"));
    assert!(implausible(&full(1500), &t, 20)
        .unwrap()
        .contains("ran for 20 ms"));
    // A host path is local: 100 ms is its whole wait; an outside one that
    // timed out then is not believed.
    let mut mixed = full(1500);
    mixed.paths[3].ms = 100;
    assert_eq!(implausible(&mixed, &t, 1600), None);
    mixed.paths[3].ms = 20;
    assert!(implausible(&mixed, &t, 1600)
        .unwrap()
        .contains("tcp 192.168.1.5:22 reports a timeout after 20 ms, under the 100 ms"));
    let mut early = full(1500);
    early.paths[0].ms = 150;
    assert!(implausible(&early, &t, 1600)
        .unwrap()
        .contains("tcp 10.9.9.9:443 reports a timeout after 150 ms, under the 1500 ms"));
    let mut odd = full(1500);
    odd.paths
        .push(timed_out(LeakClass::Host, "tcp nowhere", 1500));
    assert!(implausible(&odd, &t, 1600)
        .unwrap()
        .contains("not a path the probe tries"));
    let v = Verdict::Untrusted { detail: "x".into() };
    assert!(!v.is_ready());
}

#[test]
fn host_addresses_exclude_loopback_and_link_local() {
    for a in host_addresses() {
        assert!(!a.is_loopback(), "{a}");
    }
}
