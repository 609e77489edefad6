//! The built-in agent templates (`[agent] template = "…"`): how each image
//! is built, and what a new bottle of it starts with — its command, the
//! API host its credential goes to, and the optional presets a user ticks.
//!
//! The Debian templates share one start (`debian-base.Dockerfile`: the base
//! image as the `BASE` build argument, git and Node.js, a non-root `agent`
//! user, `/workspace`), so Docker's layer cache builds it once for all of
//! them. The agent's CLI is installed from npm under `/opt/agent` and run
//! through `agent-shim`, which wires it to the bottle's supervise MCP
//! server. `busybox` is built elsewhere (`images.rs`, `FROM scratch`).

/// The shared start of every Debian template's Dockerfile.
const DEBIAN_BASE: &str = include_str!("debian-base.Dockerfile");
/// Runs the agent's CLI wired to supervise (and, for Codex, signed in).
pub const AGENT_SHIM: &str = include_str!("agent-shim");
/// Claude Code's first-run state: onboarding done, the placeholder key approved.
const CLAUDE_JSON: &str = include_str!("claude.json");

/// The base image a Debian template is built on when the bottle names none:
/// Debian's official image, from the user's registry.
pub const DEFAULT_BASE: &str = "docker.io/library/debian:bookworm-slim";

/// A built-in template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    /// Its name in `agent.template`.
    pub name: &'static str,
    /// Its name for people.
    pub title: &'static str,
    /// One line on what it is.
    pub summary: &'static str,
    /// The Dockerfile after the Debian start; `None` for `busybox`.
    recipe: Option<&'static str>,
    /// What "Start agent" runs when the bottle file says nothing.
    pub command: &'static [&'static str],
    /// The ways to sign the agent in; the first is the default.
    pub credentials: &'static [Credential],
}

/// How an agent's API credential reaches its API: the secret the bottle
/// holds, the placeholder the agent sees, and the header the sidecar puts
/// the real value in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credential {
    /// `api-key` or `oauth` (`bottle new --auth`).
    pub id: &'static str,
    /// What the user pastes, for people.
    pub label: &'static str,
    /// The secret's name in the bottle file (`[secrets.<name>]`).
    pub secret: &'static str,
    /// The variable the agent reads it from (holding the placeholder).
    pub placeholder_env: &'static str,
    /// The API host it is sent to.
    pub host: &'static str,
    /// The header it goes in.
    pub header: &'static str,
    /// The header's value, `{secret}` standing for the secret.
    pub value: &'static str,
}

/// Every built-in template, in the order the app offers them.
pub const TEMPLATES: &[Template] = &[
    Template {
        name: "claude-code",
        title: "Claude Code",
        summary: "Anthropic's Claude Code CLI on Debian",
        recipe: Some(include_str!("claude-code.Dockerfile")),
        command: &["claude"],
        credentials: &[
            Credential {
                id: "api-key",
                label: "Anthropic API key",
                secret: "anthropic",
                placeholder_env: "ANTHROPIC_API_KEY",
                host: "api.anthropic.com",
                header: "x-api-key",
                value: "{secret}",
            },
            Credential {
                id: "oauth",
                label: "Claude Code OAuth token (claude setup-token)",
                secret: "anthropic-oauth",
                placeholder_env: "CLAUDE_CODE_OAUTH_TOKEN",
                host: "api.anthropic.com",
                header: "authorization",
                value: "Bearer {secret}",
            },
        ],
    },
    Template {
        name: "codex",
        title: "Codex",
        summary: "OpenAI's Codex CLI on Debian",
        recipe: Some(include_str!("codex.Dockerfile")),
        command: &["codex"],
        credentials: &[Credential {
            id: "api-key",
            label: "OpenAI API key",
            secret: "openai",
            placeholder_env: "OPENAI_API_KEY",
            host: "api.openai.com",
            header: "authorization",
            value: "Bearer {secret}",
        }],
    },
    Template {
        name: "dev",
        title: "Dev shell",
        summary: "Debian with git, curl, build tools and Python, for agents you install",
        recipe: Some(include_str!("dev.Dockerfile")),
        command: &["bash"],
        credentials: &[],
    },
    Template {
        name: "busybox",
        title: "Busybox",
        summary: "A tiny shell, built from this machine's busybox (no registry)",
        recipe: None,
        command: &[],
        credentials: &[],
    },
];

/// The template called `name`.
pub fn find(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

/// The names of every template, for error messages.
pub fn names() -> Vec<&'static str> {
    TEMPLATES.iter().map(|t| t.name).collect()
}

/// A file a template's build context holds: its name, text and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    /// Its name in the context.
    pub name: &'static str,
    /// Its contents.
    pub text: String,
    /// Its mode bits.
    pub mode: u32,
}

impl Template {
    /// Built on a Debian base (every template but `busybox`).
    pub fn is_debian(&self) -> bool {
        self.recipe.is_some()
    }

    /// The whole Dockerfile of a Debian template.
    pub fn dockerfile(&self) -> Option<String> {
        self.recipe.map(|r| format!("{DEBIAN_BASE}{r}"))
    }

    /// The files its Dockerfile copies, `extra_roots` (PEM text, possibly
    /// empty) among them.
    pub fn context_files(&self, extra_roots: &str) -> Vec<ContextFile> {
        let file = |name: &'static str, text: String, mode: u32| ContextFile { name, text, mode };
        let mut files = vec![file("extra-roots.crt", extra_roots.to_string(), 0o644)];
        if matches!(self.name, "claude-code" | "codex") {
            files.push(file("agent-shim", AGENT_SHIM.into(), 0o755));
        }
        if self.name == "claude-code" {
            files.push(file("claude.json", CLAUDE_JSON.into(), 0o644));
        }
        files
    }

    /// The credential `id`, or the default one when `id` is `None`.
    pub fn credential(&self, id: Option<&str>) -> Option<&'static Credential> {
        match id {
            None => self.credentials.first(),
            Some(id) => self.credentials.iter().find(|c| c.id == id),
        }
    }
}

/// An optional set of hosts a user ticks for a new bottle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// Its name (`bottle new --preset`).
    pub name: &'static str,
    /// For people.
    pub title: &'static str,
    /// The hosts it allows (HTTPS).
    pub hosts: &'static [&'static str],
    /// An optional token the sidecar puts on some of them.
    pub token: Option<PresetToken>,
}

/// A preset's optional token: kept as secret `secret`, injected on `hosts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresetToken {
    /// The secret's name in the bottle file.
    pub secret: &'static str,
    /// What it is, for people.
    pub label: &'static str,
    /// The variable `bottle new` takes it from.
    pub env: &'static str,
    /// Where it goes: host, header, value (`{secret}`), HTTP Basic user.
    pub injects: &'static [(
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
    )],
}

/// The presets on offer.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "github",
        title: "GitHub (git over HTTPS, API)",
        hosts: &[
            "github.com",
            "api.github.com",
            "codeload.github.com",
            "objects.githubusercontent.com",
            "raw.githubusercontent.com",
        ],
        // git over HTTPS takes a token as Basic `x-access-token:TOKEN`; the
        // API as a bearer token. Without one: public repositories only.
        token: Some(PresetToken {
            secret: "github",
            label: "GitHub token (optional; without one, public repositories only)",
            env: "GITHUB_TOKEN",
            injects: &[
                (
                    "github.com",
                    "authorization",
                    "Basic {secret}",
                    Some("x-access-token"),
                ),
                ("api.github.com", "authorization", "Bearer {secret}", None),
            ],
        }),
    },
    Preset {
        name: "npm",
        title: "npm registry",
        hosts: &["registry.npmjs.org"],
        token: None,
    },
    Preset {
        name: "pypi",
        title: "PyPI",
        hosts: &["pypi.org", "files.pythonhosted.org"],
        token: None,
    },
    Preset {
        name: "crates",
        title: "crates.io",
        hosts: &["crates.io", "index.crates.io", "static.crates.io"],
        token: None,
    },
];

/// The preset called `name`.
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_debian_template_starts_from_the_shared_base_and_ends_as_the_agent() {
        for t in TEMPLATES.iter().filter(|t| t.is_debian()) {
            let d = t.dockerfile().unwrap();
            assert!(d.starts_with(DEBIAN_BASE), "{}", t.name);
            assert!(d.contains("FROM ${BASE}"), "{}", t.name);
            let last_user = d.lines().rev().find(|l| l.starts_with("USER ")).unwrap();
            assert_eq!(
                last_user, "USER agent",
                "{}: runs as the non-root user",
                t.name
            );
            assert!(d.trim_end().ends_with("WORKDIR /workspace"), "{}", t.name);
            for f in t.context_files("") {
                assert!(
                    d.contains(&format!("COPY {}", f.name)) || d.contains(&format!(" {} ", f.name)),
                    "{}: {} is copied",
                    t.name,
                    f.name
                );
            }
        }
        assert!(!find("busybox").unwrap().is_debian());
    }

    #[test]
    fn claude_code_approves_exactly_its_placeholder() {
        // Claude Code remembers an approved API key by its last 20 characters.
        let c = find("claude-code").unwrap().credential(None).unwrap();
        let placeholder = format!("bottlebar-placeholder-{}", c.secret);
        let tail = &placeholder[placeholder.len() - 20..];
        assert!(CLAUDE_JSON.contains(&format!("\"{tail}\"")), "{tail}");
    }

    #[test]
    fn credentials_and_presets_are_found_by_name() {
        let claude = find("claude-code").unwrap();
        assert_eq!(
            claude.credential(Some("oauth")).unwrap().header,
            "authorization"
        );
        assert_eq!(claude.credential(None).unwrap().header, "x-api-key");
        assert!(claude.credential(Some("sso")).is_none());
        assert_eq!(find("codex").unwrap().command, ["codex"]);
        assert!(preset("pypi")
            .unwrap()
            .hosts
            .contains(&"files.pythonhosted.org"));
        assert!(preset("cran").is_none());
    }
}
