//! The agent templates end to end on Docker: `bottle new` writes the
//! bottle, the template is built on a Debian base made on this machine
//! (`scripts/make-debian-base`, no registry), and the real Claude Code and
//! Codex CLIs run a whole turn inside the bottle against the project's own
//! upstream, which stands in for their APIs under the real host names
//! (pinned with `[hosts]`; nothing is looked up or contacted outside).
//!
//! What each shows: the CLI runs as a non-root user that can write the
//! workspace; its request reaches the API with the real key in the right
//! header, put there by the sidecar; the agent's environment, files and
//! `/proc` hold only the placeholder; telemetry is refused; the agent is
//! wired to the supervise MCP server; started interactively on a terminal
//! (as the app's agent tab starts it), it goes straight to its prompt — no
//! sign-in, no onboarding, no trust question.

use bottlebar_e2e::testkit::model_api::REPLY;
use bottlebar_e2e::*;
use serde_json::Value;

const ANTHROPIC: &str = "api.anthropic.com";
const TELEMETRY: &str = "statsig.anthropic.com";
const OPENAI: &str = "api.openai.com";

/// A template's bottle, launched, with the fake API on its egress network.
struct AgentBottle {
    upstream: TlsUpstream,
    h: Harness,
    name: String,
    _workspace: tempfile::TempDir,
    _ca: tempfile::TempDir,
}

impl AgentBottle {
    /// `bottle new NAME --template TEMPLATE` with the key read from
    /// `key_var` at launch, then `bottle up`, then the fake API for `hosts`.
    fn launch(name: &str, template: &str, key_var: &str, key: &str, hosts: &[&str]) -> Self {
        Self::launch_with(name, template, (key_var, key), &[], hosts)
    }

    /// [`Self::launch`] with more `bottle new` arguments: (flag, value, and
    /// when not empty, the value of the variable `value` names).
    fn launch_with(
        name: &str,
        template: &str,
        (key_var, key): (&str, &str),
        extra: &[(&str, &str, &str)],
        hosts: &[&str],
    ) -> Self {
        let mut h = Harness::new();
        h.env.push((key_var.into(), key.into()));
        let workspace = tempfile::tempdir().unwrap();
        // The agent is uid 1000; the harness runs as root here.
        std::fs::set_permissions(
            workspace.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let ws = workspace.path().display().to_string();
        let base = debian_base();
        let mut args = vec![
            "new",
            name,
            "--template",
            template,
            "--workspace",
            &ws,
            "--base",
            &base,
            "--key-env",
            key_var,
        ];
        for (flag, value, var_value) in extra {
            args.extend([*flag, *value]);
            if !var_value.is_empty() {
                h.env.push((value.to_string(), var_value.to_string()));
            }
        }
        h.bottle(&args).expect_ok("bottle new");
        // A CA that stays the same across runs stands in for the public
        // PKI, so the image (which trusts `tls.extra_roots`) stays cached.
        let (ca, _) = agents_suite_ca();
        let ca_dir = tempfile::tempdir().unwrap();
        let ca_path = ca_dir.path().join("ca.pem");
        std::fs::write(&ca_path, &ca.cert_pem).unwrap();
        let roots: Vec<String> = std::iter::once(ca_path)
            .chain(machine_roots())
            .map(|p| format!("{:?}", p.display().to_string()))
            .collect();
        let file = h.home.path().join("bottles").join(format!("{name}.toml"));
        let mut manifest = std::fs::read_to_string(&file).unwrap();
        manifest.push_str(&format!("\n[tls]\nextra_roots = [{}]\n", roots.join(", ")));
        h.write_bottle(name, &manifest);
        h.up(name)
            .0
            .expect_ok("launching (the first build takes minutes)");
        let upstream = TlsUpstream::start(
            &format!("bottlebar-test-{name}-upstream"),
            &format!("bottlebar-{name}-egress"),
            hosts,
            "agents-suite-upstream",
            &ca,
        );
        let pins: Vec<(&str, &str)> = hosts.iter().map(|n| (*n, upstream.ip.as_str())).collect();
        h.pin_hosts(name, &manifest, &pins, || true);
        AgentBottle {
            upstream,
            h,
            name: name.into(),
            _workspace: workspace,
            _ca: ca_dir,
        }
    }

    fn sh(&self, script: &str) -> Run {
        self.h.agent_sh(&self.name, script)
    }

    /// The requests the fake APIs logged.
    fn api_requests(&self) -> Vec<Value> {
        docker(&["logs", &self.upstream.name])
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["model_api"].is_string())
            .collect()
    }

    /// Runs `script` (the agent's CLI taking one turn) and checks it printed
    /// the stand-in model's reply; the requests that reached `api_path`.
    fn turn(&self, script: &str, api_path: &str) -> Vec<Value> {
        let turn = self.sh(&format!("timeout 120 {script} 2>&1"));
        assert!(
            turn.stdout.contains(REPLY),
            "{script}: {}{}",
            turn.stdout,
            turn.stderr
        );
        let asked: Vec<Value> = self
            .api_requests()
            .into_iter()
            .filter(|r| r["model_api"] == api_path)
            .collect();
        assert!(!asked.is_empty(), "{api_path} was never asked");
        asked
    }

    /// Starts the agent's own command on a terminal as the app's *Start
    /// agent* does (`ops::terminal_argv`, a core terminal session), waits
    /// until its screen shows `ready`, and returns the screen's text.
    /// Compared without white space: TUIs draw spaces as cursor moves.
    fn first_screen(&self, ready: &str) -> String {
        use bottlebar_core::ops::{terminal_argv, TerminalCommand};
        use bottlebar_core::runner::{pty::CellSize, ProcessRunner};
        let home = bottlebar_core::home::Home::at(self.h.home.path());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let argv = rt
            .block_on(terminal_argv(
                &home,
                &self.name,
                TerminalCommand::Agent,
                &ProcessRunner,
            ))
            .expect("the agent's terminal command");
        let sessions = bottlebar_core::terminal::Sessions::default();
        let size = CellSize {
            cols: 120,
            rows: 40,
        };
        let s = sessions
            .open(&self.name, TerminalCommand::Agent, &argv, size)
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut answered = 0;
        loop {
            let raw = s.read(0, usize::MAX).bytes;
            // What a terminal answers (xterm.js does in the app): the
            // queries TUIs send at start, in the order they were sent.
            let asked = terminal_queries(&raw);
            for answer in &asked[answered.min(asked.len())..] {
                let _ = s.type_in(answer.to_vec());
            }
            answered = asked.len();
            let screen = plain_text(&raw);
            let squeezed: String = screen.chars().filter(|c| !c.is_whitespace()).collect();
            if squeezed.contains(&ready.replace(' ', "")) {
                sessions.end_all("seen");
                return screen;
            }
            if std::time::Instant::now() > deadline || s.info().ended.is_some() {
                sessions.end_all("test over");
                let keep = target_dir().join(format!("first-screen-{}.txt", self.name));
                let _ = std::fs::write(&keep, &raw);
                let tail: String = screen
                    .chars()
                    .rev()
                    .take(3000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                let paths: Vec<String> = self
                    .api_requests()
                    .iter()
                    .map(|r| format!("{} {}", r["model_api"], r["path"]))
                    .collect();
                panic!(
                    "`{ready}` never showed (all of it: {}); the API was asked {paths:?}; the screen ends:\n{tail}",
                    keep.display()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }

    /// The agent is not root, and owns its workspace.
    fn check_user_and_workspace(&self) {
        let id = self.sh("id -u; id -un; pwd").expect_ok("id");
        let lines: Vec<&str> = id.stdout.lines().collect();
        assert_ne!(lines[0], "0", "the agent runs as root");
        assert_eq!(lines[1], "agent");
        assert_eq!(lines[2], "/workspace");
        self.sh("echo written > /workspace/by-the-agent && cat /workspace/by-the-agent")
            .expect_ok("the workspace is writable by the agent");
    }

    /// Nothing the agent can read holds `key`: its environment, its files,
    /// any process's environment or command line.
    fn check_key_is_nowhere_in_the_agent(&self, key: &str, placeholder_env: Option<&str>) {
        if let Some(var) = placeholder_env {
            let env = self.sh(&format!("printf %s \"${var}\"")).stdout;
            assert!(env.starts_with("bottlebar-placeholder-"), "{var}={env}");
        }
        // The key arrives on stdin, so no command line in the agent holds it.
        let found = docker_stdin(
            &[
                "exec", "-i", &format!("bottlebar-{}-agent", self.name), "sh", "-c",
                "grep -rlF -f - /proc/[0-9]*/environ /proc/[0-9]*/cmdline /home /workspace /etc /tmp /opt 2>/dev/null; true",
            ],
            key.as_bytes(),
        );
        assert_eq!(
            found.stdout.trim(),
            "",
            "the real key is readable in the agent"
        );
    }

    /// `git` through the proxy to `host`: refused by the sidecar (403).
    fn check_refused(&self, host: &str) {
        let r = self.sh(&format!("git ls-remote https://{host}/x 2>&1"));
        assert!(r.stdout.contains("403"), "{host}: {}", r.stdout);
        let logs = self
            .h
            .bottle(&["logs", &self.name])
            .expect_ok("bottle logs")
            .stdout;
        assert!(
            logs.lines()
                .any(|l| l.contains("DENY") && l.contains(host) && l.contains("host_not_allowed")),
            "{logs}"
        );
    }
}

/// `screen` shows none of `questions` (compared without white space, as
/// [`AgentBottle::first_screen`] does).
fn assert_asks_none(screen: &str, questions: &[&str]) {
    let squeeze = |t: &str| -> String { t.chars().filter(|c| !c.is_whitespace()).collect() };
    let shown = squeeze(screen);
    for q in questions {
        assert!(!shown.contains(&squeeze(q)), "it asked `{q}`:\n{screen}");
    }
}

/// The answers a terminal gives to the queries in `output`, in order:
/// where the cursor is, what the terminal is (VT220-ish), a mode's state,
/// the colours.
fn terminal_queries(output: &[u8]) -> Vec<&'static [u8]> {
    const ANSWERS: [(&[u8], &[u8]); 5] = [
        (b"\x1b[6n", b"\x1b[1;1R"),
        (b"\x1b[c", b"\x1b[?62;22c"),
        (b"\x1b[?1007$p", b"\x1b[?1007;2$y"),
        (b"\x1b]10;?\x1b\\", b"\x1b]10;rgb:ffff/ffff/ffff\x1b\\"),
        (b"\x1b]11;?\x1b\\", b"\x1b]11;rgb:0000/0000/0000\x1b\\"),
    ];
    let mut found = vec![];
    for i in 0..output.len() {
        for (query, answer) in ANSWERS {
            if output[i..].starts_with(query) {
                found.push(answer);
            }
        }
    }
    found
}

/// A terminal's output as text: escape sequences out (a cursor move right
/// becomes a space, as it looks on screen).
fn plain_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\x1b', Some('[')) => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    last = c;
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
                if last == 'C' {
                    out.push(' ');
                }
            }
            ('\x1b', Some(']')) => {
                while let Some(c) = chars.next() {
                    if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            ('\x1b', _) => {
                chars.next();
            }
            (c, _) if c.is_control() && c != '\n' => {}
            (c, _) => out.push(c),
        }
    }
    out
}

#[test]
fn claude_code_runs_a_turn_with_the_key_only_on_the_wire() {
    let key = "sk-ant-api03-bottlebar-e2e-real-key-4b9d1f27c6";
    let b = AgentBottle::launch(
        "e2e-claude",
        "claude-code",
        "BOTTLEBAR_E2E_ANTHROPIC_KEY",
        key,
        &[ANTHROPIC, TELEMETRY],
    );
    let version = b.sh("claude --version").expect_ok("claude --version");
    assert!(version.stdout.contains("Claude Code"), "{}", version.stdout);
    b.check_user_and_workspace();

    let asked = b.turn("claude -p 'Say hello.'", "/v1/messages");
    for r in &asked {
        assert_eq!(
            r["headers"]["x-api-key"], key,
            "the real key, in x-api-key: {r}"
        );
        assert!(r["headers"]["authorization"].is_null(), "{r}");
    }
    b.check_key_is_nowhere_in_the_agent(key, Some("ANTHROPIC_API_KEY"));
    b.check_refused(TELEMETRY);
    // Wired to supervise: the shim registered the server for this address.
    let mcp = b.sh("cat ~/.claude.json").expect_ok("claude.json").stdout;
    let url = b.sh("printf %s \"$MCP_SUPERVISE_URL\"").stdout;
    assert!(mcp.contains("\"bottlebar\"") && mcp.contains(&url), "{mcp}");

    // Started interactively, as the app's agent tab does: straight to its
    // prompt, no sign-in, no onboarding.
    let screen = b.first_screen("for shortcuts");
    assert_asks_none(
        &screen,
        &[
            "Select login method",
            "trust this folder",
            "Choose the text style",
            "Do you want to use this API key",
        ],
    );
}

#[test]
fn claude_code_signs_in_with_an_oauth_token_as_a_bearer() {
    let token = "sk-ant-oat01-bottlebar-e2e-oauth-token-7e4f";
    let b = AgentBottle::launch_with(
        "e2e-claude-oauth",
        "claude-code",
        ("BOTTLEBAR_E2E_CLAUDE_OAUTH", token),
        &[("--auth", "oauth", "")],
        &[ANTHROPIC],
    );
    let asked = b.turn("claude -p 'Say hello.'", "/v1/messages");
    for r in &asked {
        assert_eq!(
            r["headers"]["authorization"],
            format!("Bearer {token}"),
            "{r}"
        );
        assert!(r["headers"]["x-api-key"].is_null(), "{r}");
    }
    b.check_key_is_nowhere_in_the_agent(token, Some("CLAUDE_CODE_OAUTH_TOKEN"));
}

#[test]
fn codex_runs_a_turn_with_the_key_only_on_the_wire() {
    let key = "sk-proj-bottlebar-e2e-real-key-8c2e7a915d";
    let b = AgentBottle::launch(
        "e2e-codex",
        "codex",
        "BOTTLEBAR_E2E_OPENAI_KEY",
        key,
        &[OPENAI, "chatgpt.com"],
    );
    let version = b.sh("codex --version").expect_ok("codex --version");
    assert!(version.stdout.contains("codex"), "{}", version.stdout);
    b.check_user_and_workspace();

    let asked = b.turn(
        "codex exec --skip-git-repo-check 'Say hello.'",
        "/v1/responses",
    );
    for r in &asked {
        assert_eq!(
            r["headers"]["authorization"],
            format!("Bearer {key}"),
            "the real key, as a bearer token: {r}"
        );
    }
    b.check_key_is_nowhere_in_the_agent(key, Some("OPENAI_API_KEY"));
    b.check_refused("chatgpt.com");
    let config = b
        .sh("cat ~/.codex/config.toml")
        .expect_ok("codex config")
        .stdout;
    assert!(config.contains("bottlebar"), "{config}");

    // Started interactively, as the app's agent tab does: straight to its
    // prompt, signed in with the placeholder key, no trust question.
    let screen = b.first_screen("Ask Codex to do anything");
    assert_asks_none(
        &screen,
        &[
            "Sign in with ChatGPT",
            "Provide your own API key",
            "trust the contents",
            "allow Codex to work",
        ],
    );
}

#[test]
fn the_dev_template_has_build_tools_and_github_gets_its_token_on_the_wire() {
    let token = "ghp_bottlebarE2eRealToken0a1b2c3d4e5f";
    let b = AgentBottle::launch_with(
        "e2e-dev",
        "dev",
        ("BOTTLEBAR_E2E_UNUSED", "unused"),
        &[
            ("--preset", "github", ""),
            ("--github-token-env", "BOTTLEBAR_E2E_GITHUB_TOKEN", token),
        ],
        &["github.com", "api.github.com"],
    );
    let tools = b
        .sh("id -un && git --version && cc --version | head -1 && python3 --version && curl --version | head -1")
        .expect_ok("the dev tools");
    assert!(tools.stdout.starts_with("agent\n"), "{}", tools.stdout);
    b.check_user_and_workspace();
    // What reached the upstream, by digest: the sidecar masks the token
    // where a response reflects it.
    let seen = |url: &str| -> Value {
        let r = b.sh(&format!("curl -s {url}")).expect_ok(url);
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{url}: {e}: {}", r.stdout))
    };
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
    let git = seen("https://github.com/echo");
    assert_eq!(
        git["header_sha256"]["authorization"][0],
        bottlebar_e2e::testkit::server::sha256_hex(format!("Basic {basic}").as_bytes()),
        "git over HTTPS: Basic x-access-token: {git}"
    );
    let api = seen("https://api.github.com/echo");
    assert_eq!(
        api["header_sha256"]["authorization"][0],
        bottlebar_e2e::testkit::server::sha256_hex(format!("Bearer {token}").as_bytes()),
        "the API: a bearer token: {api}"
    );
    assert!(
        !git.to_string().contains(token) && !git.to_string().contains(&basic),
        "reflected unmasked: {git}"
    );
    b.check_key_is_nowhere_in_the_agent(token, None);
}
