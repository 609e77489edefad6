//! The escape suites' shared fixture: a bottle attacked from inside its
//! agent, with the project's own upstream on its egress network standing in
//! for the internet (HTTP, HTTPS, DNS on 53, a fake SSH server on 22),
//! reached by pinned addresses only.

use crate::testkit::pki::TestCa;
use crate::*;
use serde_json::Value;

/// The real credential: in the harness's environment only.
pub const SECRET: &str = "sk-escape-real-credential-5e1f9a3c7b2d";
pub const ALLOWED: &str = "allowed.bottlebar.test";
pub const DENIED: &str = "denied.bottlebar.test";
pub const DOH: &str = "dns.google";
pub const GIT: &str = "git.bottlebar.test";
/// Allowed by a wildcard rule (`*.wild.bottlebar.test`).
pub const WILD: &str = "doh.wild.bottlebar.test";
/// A name some attacks allow with a path rule (pinned like the others).
pub const PATHS: &str = "paths.bottlebar.test";

/// Fields drop in order: the upstream leaves the bottle's egress network
/// before the harness takes the bottle down.
pub struct Fixture {
    /// The fake internet on the bottle's egress network.
    pub upstream: TlsUpstream,
    /// The harness (a private Bottlebar home) the bottle lives in.
    pub h: Harness,
    /// The bottle's name.
    pub name: String,
    /// Its bottle file as written (with the host pins).
    pub manifest: String,
    /// What the upstream answers with: a response holding it is the upstream's.
    pub token: String,
    _kit: tempfile::TempDir,
    _agent_context: Option<tempfile::TempDir>,
}

impl Fixture {
    pub fn agent(&self) -> String {
        format!("bottlebar-{}-agent", self.name)
    }

    pub fn egress(&self) -> String {
        format!("bottlebar-{}-egress", self.name)
    }

    pub fn sh(&self, script: &str) -> Run {
        self.h.agent_sh(&self.name, script)
    }

    /// The test kit's `fetch` from the agent, through its proxy.
    pub fn fetch(&self, args: &str) -> Value {
        let r = self.sh(&format!("/opt/testkit/bottlebar-testkit fetch {args}"));
        serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "fetch {args}: {e}\nstdout: {}\nstderr: {}",
                r.stdout, r.stderr
            )
        })
    }
}

pub fn status(v: &Value) -> u64 {
    v["status"].as_u64().unwrap_or(0)
}

/// Refused by the sidecar: a 403 it signed, or (for a TLS name that
/// differs from the tunnel's) the handshake cut before any byte reached the
/// upstream. Never a 2xx.
pub fn refused(v: &Value) -> bool {
    denied_by_sidecar(v) || (v["status"].is_null() && v["error"].is_string())
}

/// The reason code the sidecar gave a refusal (its `x-bottlebar-deny`
/// header), or `""` when it gave none.
pub fn deny_code(v: &Value) -> String {
    v["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h[0] == "x-bottlebar-deny")
        .and_then(|h| h[1].as_str())
        .unwrap_or("")
        .to_string()
}

pub fn denied_by_sidecar(v: &Value) -> bool {
    status(v) == 403
        && v["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|h| h[0] == "x-bottlebar-deny")
}

/// A bottle whose only allowed host is `allowed.bottlebar.test` (with a
/// credential injected), and the upstream on its egress network standing
/// in for every outside host.
pub fn fixture(name: &str) -> Fixture {
    fixture_with(name, "template = \"busybox\"", None, "")
}

/// [`fixture`] with another `[agent]` section (and the build context it
/// names, kept until the fixture is dropped), and `extra` manifest text
/// (more `[[egress]]` rules, top-level keys go before `[agent]`: none here).
pub fn fixture_with(
    name: &str,
    agent: &str,
    context: Option<tempfile::TempDir>,
    extra: &str,
) -> Fixture {
    let mut h = Harness::new();
    h.env
        .push(("BOTTLEBAR_ESCAPE_API_KEY".into(), SECRET.into()));
    let kit = tempfile::tempdir().unwrap();
    std::fs::copy(testkit_bin(), kit.path().join("bottlebar-testkit")).unwrap();
    let ca = TestCa::new("Bottlebar escape-suite Internet CA");
    let ca_path = kit.path().join("internet-ca.pem");
    std::fs::write(&ca_path, &ca.cert_pem).unwrap();
    let manifest = format!(
        r#"[agent]
{agent}

[[mounts]]
host = "{kit}"
container = "/opt/testkit"
readonly = true

[secrets.api]
env = "BOTTLEBAR_ESCAPE_API_KEY"
placeholder_env = "API_KEY"

[tls]
extra_roots = ["{ca}"]

[[egress]]
host = "{ALLOWED}"
inject = {{ header = "authorization", secret = "api", value = "Bearer {{secret}}" }}

[[egress]]
host = "*.wild.bottlebar.test"
{extra}"#,
        kit = kit.path().display(),
        ca = ca_path.display()
    );
    h.write_bottle(name, &manifest);
    h.up(name).0.expect_ok("launching the escape bottle");
    let names = [ALLOWED, DENIED, DOH, GIT, WILD, PATHS];
    let tok = token(name);
    let upstream = TlsUpstream::start(
        &format!("bottlebar-test-{name}-upstream"),
        &format!("bottlebar-{name}-egress"),
        &names,
        &tok,
        &ca,
    );
    let ip = upstream.ip.clone();
    let pins: Vec<(&str, &str)> = names.iter().map(|n| (*n, ip.as_str())).collect();
    let mut f = Fixture {
        h,
        name: name.to_string(),
        manifest: String::new(),
        token: tok,
        upstream,
        _kit: kit,
        _agent_context: context,
    };
    f.manifest = f.h.pin_hosts(name, &manifest, &pins, || {
        status(&f.fetch(&format!("https://{ALLOWED}/"))) == 200
    });
    f
}

/// `nc` from the agent: did a TCP connection open?
pub fn tcp_opens(f: &Fixture, ip: &str, port: u16) -> bool {
    f.sh(&format!("nc -w 2 {ip} {port} </dev/null && echo OPENED"))
        .stdout
        .contains("OPENED")
}

/// The same from a throwaway container on `network` (a control).
pub fn tcp_opens_from(network: &str, ip: &str, port: u16) -> bool {
    engine()
        .run_on(
            network,
            &format!("nc -w 2 {ip} {port} </dev/null && echo OPENED"),
        )
        .stdout
        .contains("OPENED")
}
