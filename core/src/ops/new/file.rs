//! A new bottle's file from a template: the agent, the workspace, the API
//! credential (kept in the keychain, an environment variable or a file —
//! never in the file itself), the API host with the credential injected by
//! the sidecar, the presets the user ticked, and supervise. Written as
//! plain, commented TOML the user can read and edit; checked by the same
//! parser as every bottle file before anything is written.

use crate::home::Home;
use crate::manifest::{self, ManifestError};
use crate::name::BottleName;
use crate::templates::{find, names, preset, Credential, Template, PRESETS};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What the user chose for a new bottle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBottle {
    /// The bottle's name.
    pub name: String,
    /// The template's name.
    pub template: String,
    /// The folder mounted at `/workspace` (absolute).
    pub workspace: PathBuf,
    /// The credential (`api-key`, `oauth`); the template's default if `None`.
    pub auth: Option<String>,
    /// Where the credential's value is read from at launch.
    pub key_source: KeySource,
    /// Preset names (`github`, `npm`, `pypi`, `crates`).
    pub presets: Vec<String>,
    /// Where the GitHub preset's token comes from; `None`: no token.
    pub github_token: Option<KeySource>,
    /// The base image of a Debian template, if not the default.
    pub base: Option<String>,
    /// CA certificates the bottle trusts beyond the public ones
    /// (`tls.extra_roots`; while building, too).
    pub extra_roots: Vec<PathBuf>,
    /// Offer the agent the supervise MCP server.
    pub supervise: bool,
}

/// Where a new bottle's credential is read from at launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The OS keychain (`bottle new` and the app store it there).
    Keychain,
    /// An environment variable of the launching process.
    Env(String),
    /// A file (absolute path).
    File(PathBuf),
}

/// Why a new bottle's file was not written.
#[derive(Debug, thiserror::Error)]
pub enum NewBottleError {
    /// A choice is not valid; names the choice.
    #[error("{field}: {message}")]
    Invalid {
        /// `name`, `template`, `workspace`, `auth`, `preset`, `base`.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The generated file did not pass the parser (a bug, or a base that
    /// is not an image reference).
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The credential is to go to the keychain, but none was given.
    #[error("key: the {label} is needed (it goes to the OS keychain, never into the file)")]
    MissingKey {
        /// What the key is, for people.
        label: &'static str,
    },
    /// The keychain refused the key.
    #[error("key: {0}")]
    Keychain(#[from] crate::keychain::KeychainError),
    /// The file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The bottle file.
        path: PathBuf,
        /// The OS's reason.
        source: std::io::Error,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> NewBottleError {
    NewBottleError::Invalid {
        field,
        message: message.into(),
    }
}

/// `s` as a TOML string.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The text of a new bottle's file for `choice` in `home`, checked by the
/// manifest parser; and the credential it needs, if any. Writes nothing.
pub fn new_bottle_file(
    home: &Home,
    choice: &NewBottle,
) -> Result<(String, Option<&'static Credential>), NewBottleError> {
    let name = BottleName::parse(&choice.name).map_err(|e| invalid("name", e.to_string()))?;
    if home.bottle_file(&name).exists() {
        return Err(invalid(
            "name",
            format!(
                "a bottle `{name}` exists already ({}); choose another name",
                home.bottle_file(&name).display()
            ),
        ));
    }
    let template = find(&choice.template).ok_or_else(|| {
        invalid(
            "template",
            format!(
                "unknown template `{}`; built-in templates: {}",
                choice.template,
                names().join(", ")
            ),
        )
    })?;
    check_workspace(&choice.workspace)?;
    let credential = match (template.credentials.is_empty(), choice.auth.as_deref()) {
        (true, None) => None,
        (true, Some(a)) => {
            return Err(invalid(
                "auth",
                format!(
                    "the `{}` template signs in to nothing; drop `{a}`",
                    template.name
                ),
            ))
        }
        (false, auth) => Some(template.credential(auth).ok_or_else(|| {
            let ids: Vec<&str> = template.credentials.iter().map(|c| c.id).collect();
            invalid(
                "auth",
                format!(
                    "`{}` is not a way to sign in to {}; one of: {}",
                    auth.unwrap_or_default(),
                    template.title,
                    ids.join(", ")
                ),
            )
        })?),
    };
    if choice.github_token.is_some() && !choice.presets.iter().any(|p| p == "github") {
        return Err(invalid(
            "preset",
            "a GitHub token goes with the `github` preset",
        ));
    }
    for p in &choice.presets {
        if preset(p).is_none() {
            let all: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
            return Err(invalid(
                "preset",
                format!("unknown preset `{p}`; presets: {}", all.join(", ")),
            ));
        }
    }
    if choice.base.is_some() && !template.is_debian() {
        return Err(invalid(
            "base",
            format!("the `{}` template has no base image", template.name),
        ));
    }
    let text = render(template, credential, choice);
    manifest::parse(
        &name,
        &home.bottle_file(&name).display().to_string(),
        &text,
        home,
    )?;
    Ok((text, credential))
}

fn check_workspace(dir: &Path) -> Result<(), NewBottleError> {
    if !dir.is_absolute() {
        return Err(invalid(
            "workspace",
            format!("`{}` is not an absolute path", dir.display()),
        ));
    }
    if !dir.is_dir() {
        return Err(invalid(
            "workspace",
            format!("`{}` is not a folder", dir.display()),
        ));
    }
    Ok(())
}

/// A secret's source, as its table's key.
fn write_source(t: &mut String, source: &KeySource) {
    let _ = match source {
        KeySource::Keychain => writeln!(t, "keychain = true"),
        KeySource::Env(var) => writeln!(t, "env = {}", quoted(var)),
        KeySource::File(path) => writeln!(t, "file = {}", quoted(&path.display().to_string())),
    };
}

fn render(template: &Template, credential: Option<&Credential>, c: &NewBottle) -> String {
    let mut t = String::new();
    let folder = c
        .workspace
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| c.workspace.display().to_string());
    let _ = writeln!(
        t,
        "# Made by `bottle new` from the `{}` template ({}).",
        template.name, template.summary
    );
    let _ = writeln!(
        t,
        "description = {}",
        quoted(&format!("{} on {folder}", template.title))
    );
    if c.supervise {
        let _ = writeln!(
            t,
            "# The agent may ask for more hosts; you answer (docs/supervise.md)."
        );
        let _ = writeln!(t, "supervise = true");
    }
    let _ = writeln!(t, "\n[agent]\ntemplate = {}", quoted(template.name));
    if let Some(base) = &c.base {
        let _ = writeln!(t, "base = {}", quoted(base));
    }
    if !template.command.is_empty() {
        let cmd: Vec<String> = template.command.iter().map(|a| quoted(a)).collect();
        let _ = writeln!(t, "command = [{}]", cmd.join(", "));
    }
    let _ = writeln!(
        t,
        "\n[[mounts]]\nhost = {}\ncontainer = \"/workspace\"",
        quoted(&c.workspace.display().to_string())
    );
    if let Some(cred) = credential {
        let _ = writeln!(
            t,
            "\n# The {}: never in this file, and never in the agent, which sees only\n# a placeholder in {}; the sidecar puts the real value on the wire.",
            cred.label, cred.placeholder_env
        );
        let _ = writeln!(t, "[secrets.{}]", cred.secret);
        write_source(&mut t, &c.key_source);
        let _ = writeln!(t, "placeholder_env = {}", quoted(cred.placeholder_env));
        let _ = writeln!(
            t,
            "\n# {}'s API: the only host it needs. Telemetry and error reports are not\n# listed, so they are refused.\n[[egress]]\nhost = {}\ninject = {{ header = {}, secret = {}, value = {} }}",
            template.title,
            quoted(cred.host),
            quoted(cred.header),
            quoted(cred.secret),
            quoted(cred.value)
        );
    }
    for p in c.presets.iter().filter_map(|p| preset(p)) {
        let token = p
            .token
            .filter(|_| p.name == "github" && c.github_token.is_some());
        if let (Some(tok), Some(source)) = (token, &c.github_token) {
            let _ = writeln!(
                t,
                "\n# The {}: never in this file or the agent.\n[secrets.{}]",
                tok.label, tok.secret
            );
            write_source(&mut t, source);
        }
        let _ = writeln!(t, "\n# Preset: {}.", p.title);
        for host in p.hosts {
            let _ = writeln!(t, "[[egress]]\nhost = {}\nports = [443]", quoted(host));
            let inject = token.and_then(|tok| {
                tok.injects
                    .iter()
                    .find(|i| i.0 == *host)
                    .map(|i| (tok.secret, i))
            });
            if let Some((secret, (_, header, value, user))) = inject {
                let user = user
                    .map(|u| format!(", basic_user = {}", quoted(u)))
                    .unwrap_or_default();
                let _ = writeln!(
                    t,
                    "inject = {{ header = {}, secret = {}, value = {}{user} }}",
                    quoted(header),
                    quoted(secret),
                    quoted(value)
                );
            }
        }
    }
    if !c.extra_roots.is_empty() {
        let roots: Vec<String> = c
            .extra_roots
            .iter()
            .map(|p| quoted(&p.display().to_string()))
            .collect();
        let _ = writeln!(t, "\n# CAs trusted beyond the public ones (a network that inspects TLS).\n[tls]\nextra_roots = [{}]", roots.join(", "));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::AgentImage;

    fn choice(workspace: &Path) -> NewBottle {
        NewBottle {
            name: "work".into(),
            template: "claude-code".into(),
            workspace: workspace.to_path_buf(),
            auth: None,
            key_source: KeySource::Keychain,
            presets: vec!["npm".into(), "github".into()],
            github_token: None,
            base: Some("bottlebar-local/debian:bookworm".into()),
            extra_roots: vec![],
            supervise: true,
        }
    }

    #[test]
    fn a_claude_code_bottle_injects_its_key_and_allows_only_what_was_ticked() {
        let home_dir = tempfile::tempdir().unwrap();
        let home = Home::at(home_dir.path());
        let ws = tempfile::tempdir().unwrap();
        let (text, cred) = new_bottle_file(&home, &choice(ws.path())).unwrap();
        assert_eq!(cred.unwrap().placeholder_env, "ANTHROPIC_API_KEY");
        let name = BottleName::parse("work").unwrap();
        let m = manifest::parse(&name, "work.toml", &text, &home).unwrap();
        assert_eq!(
            m.agent,
            AgentImage::Template {
                name: "claude-code".into(),
                base: Some("bottlebar-local/debian:bookworm".into())
            }
        );
        assert_eq!(m.agent_command, ["claude"]);
        assert!(m.supervise);
        let hosts: Vec<&str> = m.egress.iter().map(|r| r.host.as_str()).collect();
        assert_eq!(hosts[0], "api.anthropic.com");
        assert!(hosts.contains(&"registry.npmjs.org") && hosts.contains(&"github.com"));
        assert!(!hosts
            .iter()
            .any(|h| h.contains("statsig") || h.contains("sentry")));
        let inject = m.egress[0].inject.as_ref().unwrap();
        assert_eq!(
            (inject.header.as_str(), inject.secret.as_str()),
            ("x-api-key", "anthropic")
        );
        assert!(text.contains("keychain = true") && !text.contains("sk-"));
    }

    #[test]
    fn bad_choices_name_what_was_wrong_and_write_nothing() {
        let home_dir = tempfile::tempdir().unwrap();
        let home = Home::at(home_dir.path());
        let ws = tempfile::tempdir().unwrap();
        type Change = Box<dyn Fn(&mut NewBottle)>;
        let cases: Vec<(Change, &str, &str)> = vec![
            (Box::new(|c| c.name = "Bad Name".into()), "name", "Bad Name"),
            (
                Box::new(|c| c.template = "cursor".into()),
                "template",
                "cursor",
            ),
            (
                Box::new(|c| c.workspace = "relative".into()),
                "workspace",
                "absolute",
            ),
            (
                Box::new(|c| c.workspace = "/nonexistent/x".into()),
                "workspace",
                "not a folder",
            ),
            (
                Box::new(|c| c.auth = Some("sso".into())),
                "auth",
                "api-key, oauth",
            ),
            (
                Box::new(|c| c.presets.push("cran".into())),
                "preset",
                "cran",
            ),
            (
                Box::new(|c| {
                    c.template = "busybox".into();
                    c.auth = None;
                }),
                "base",
                "no base",
            ),
        ];
        for (change, field, needle) in cases {
            let mut c = choice(ws.path());
            change(&mut c);
            match new_bottle_file(&home, &c) {
                Err(NewBottleError::Invalid { field: f, message }) => {
                    assert_eq!(f, field, "{message}");
                    assert!(message.contains(needle), "{field}: {message}");
                }
                other => panic!("{field}: {other:?}"),
            }
        }
        let mut c = choice(ws.path());
        c.base = Some("not an image!".into());
        assert!(matches!(
            new_bottle_file(&home, &c),
            Err(NewBottleError::Manifest(_))
        ));
        assert!(
            std::fs::read_dir(home.bottles_dir())
                .map(|d| d.count())
                .unwrap_or(0)
                == 0
        );
    }

    #[test]
    fn the_github_preset_puts_its_token_on_git_and_the_api() {
        let home_dir = tempfile::tempdir().unwrap();
        let home = Home::at(home_dir.path());
        let ws = tempfile::tempdir().unwrap();
        let mut c = choice(ws.path());
        c.github_token = Some(KeySource::Env("GITHUB_TOKEN".into()));
        let (text, _) = new_bottle_file(&home, &c).unwrap();
        let name = BottleName::parse("work").unwrap();
        let m = manifest::parse(&name, "work.toml", &text, &home).unwrap();
        let rule = |h: &str| m.egress.iter().find(|r| r.host == h).unwrap();
        let git = rule("github.com").inject.as_ref().unwrap();
        assert_eq!(
            (git.value.as_str(), git.basic_user.as_deref()),
            ("Basic {secret}", Some("x-access-token"))
        );
        assert_eq!(
            rule("api.github.com").inject.as_ref().unwrap().value,
            "Bearer {secret}"
        );
        assert!(rule("codeload.github.com").inject.is_none());
        assert!(
            text.contains("[secrets.github]\nenv = \"GITHUB_TOKEN\""),
            "{text}"
        );
        c.presets = vec![];
        assert!(matches!(
            new_bottle_file(&home, &c),
            Err(NewBottleError::Invalid {
                field: "preset",
                ..
            })
        ));
    }

    #[test]
    fn codex_uses_a_bearer_token_and_dev_signs_in_to_nothing() {
        let home_dir = tempfile::tempdir().unwrap();
        let home = Home::at(home_dir.path());
        let ws = tempfile::tempdir().unwrap();
        let mut c = choice(ws.path());
        c.template = "codex".into();
        c.key_source = KeySource::Env("OPENAI_API_KEY".into());
        let (text, cred) = new_bottle_file(&home, &c).unwrap();
        assert_eq!(cred.unwrap().value, "Bearer {secret}");
        assert!(text.contains("env = \"OPENAI_API_KEY\""));
        c.template = "dev".into();
        let (text, cred) = new_bottle_file(&home, &c).unwrap();
        assert!(cred.is_none() && !text.contains("[secrets"));
    }
}
