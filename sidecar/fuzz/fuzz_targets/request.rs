//! Whatever bytes an agent sends on a connection to the proxy: the proxy
//! must answer or close, never panic or hang. The input runs through the real
//! connection handling (HTTP/1 parsing, CONNECT, interception sniffing,
//! fronting checks, rules, placeholder and secret scanning).
//!
//! Only loopback is ever dialled: the rules allow `localhost` (resolved from
//! /etc/hosts) and `127.0.0.1`, on a port where nothing listens.

#![no_main]

use bottlebar_sidecar::config::Live;
use bottlebar_sidecar::proxy::Proxy;
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    proxy: Arc<Proxy>,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let p = |f: &str| dir.path().join(f).display().to_string();
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "fuzz CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(p("ca.crt"), cert.pem()).unwrap();
        std::fs::write(p("ca.key"), key.serialize_pem()).unwrap();
        std::fs::write(p("secrets.json"), r#"{"secrets":[{"name":"k","value":"fuzz-secret-0123456789","placeholder":"bottlebar-placeholder-k"}]}"#).unwrap();
        let config = format!(
            r#"{{"bottle":"fuzz","listen":"127.0.0.1:0","audit_file":null,
                "ca_cert_file":"{}","ca_key_file":"{}","secrets_file":"{}",
                "rules":[
                  {{"host":"localhost","ports":[9],"methods":["GET","POST"],"paths":["/a"],
                    "inject":{{"header":"authorization","secret":"k","value":"Bearer {{secret}}"}}}},
                  {{"host":"127.0.0.1","ports":[9, 80, 443],"dlp":"redact"}}
                ]}}"#,
            p("ca.crt"),
            p("ca.key"),
            p("secrets.json")
        );
        std::fs::write(p("sidecar.json"), config).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let proxy = runtime.block_on(async {
            let live = Arc::new(Live::load(&dir.path().join("sidecar.json"), vec![]).unwrap());
            Arc::new(Proxy::new(live).unwrap())
        });
        Fixture { runtime, proxy, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    f.runtime.block_on(async {
        let (mut agent, proxy_end) = tokio::io::duplex(1 << 16);
        let local: SocketAddr = "127.0.0.1:3128".parse().unwrap();
        let peer: SocketAddr = "127.0.0.2:40000".parse().unwrap();
        let task = tokio::spawn(f.proxy.clone().serve_connection(proxy_end, Some(local), peer));
        let _ = agent.write_all(data).await;
        let _ = agent.shutdown().await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_millis(200), agent.read_to_end(&mut out)).await;
        drop(agent);
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    });
});
