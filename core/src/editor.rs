//! The bottle editor's model: a form (what the app's "New / edit bottle"
//! window shows) to and from the same TOML the CLI reads. Saving validates
//! with the manifest parser, so the form gets exactly the CLI's errors, each
//! naming the manifest key it belongs to; secrets typed into the form go to
//! the OS keychain, never into the file.

use crate::home::Home;
use crate::manifest::{self, ManifestError};
use crate::name::BottleName;
use crate::state::write_private;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The container path of the workspace folder chosen in the form.
pub const WORKSPACE_TARGET: &str = "/workspace";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BottleForm {
    pub name: String,
    pub description: String,
    /// A built-in template (`busybox`), or empty when `dockerfile` is used.
    pub template: String,
    pub dockerfile: String,
    /// The agent program "Start agent" runs, as words (`claude --verbose`).
    pub agent_command: String,
    /// A host folder mounted read-write at `/workspace`.
    pub workspace: String,
    pub mounts: Vec<FormMount>,
    pub egress: Vec<FormRule>,
    pub env: Vec<FormEnv>,
    pub secrets: Vec<FormSecret>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FormMount {
    pub host: String,
    pub container: String,
    pub readonly: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FormRule {
    pub host: String,
    /// Comma-separated, e.g. `GET, POST`.
    pub methods: String,
    /// Comma-separated path prefixes.
    pub paths: String,
    /// Inject this secret as `Authorization: Bearer …` when set.
    pub inject_secret: String,
    /// Header to inject into (default `authorization`, value `Bearer {secret}`).
    pub inject_header: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FormEnv {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FormSecret {
    pub name: String,
    pub placeholder_env: String,
    /// A new value to store in the keychain; empty keeps the stored one.
    pub value: String,
}

/// Why a form could not be saved, for the field named by `key`
/// (a manifest key such as `egress[1].host`, or `name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub key: String,
    pub message: String,
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

/// The manifest for a form, as TOML.
pub fn to_toml(form: &BottleForm) -> String {
    use toml::{Table, Value};
    let mut t = Table::new();
    if !form.description.trim().is_empty() {
        t.insert(
            "description".into(),
            Value::String(form.description.trim().into()),
        );
    }
    let mut agent = Table::new();
    if !form.dockerfile.trim().is_empty() {
        agent.insert(
            "dockerfile".into(),
            Value::String(form.dockerfile.trim().into()),
        );
    } else {
        let template = if form.template.trim().is_empty() {
            "busybox"
        } else {
            form.template.trim()
        };
        agent.insert("template".into(), Value::String(template.into()));
    }
    let command: Vec<Value> = form
        .agent_command
        .split_whitespace()
        .map(|w| Value::String(w.into()))
        .collect();
    if !command.is_empty() {
        agent.insert("command".into(), Value::Array(command));
    }
    t.insert("agent".into(), Value::Table(agent));
    let mut mounts = Vec::new();
    if !form.workspace.trim().is_empty() {
        let mut m = Table::new();
        m.insert("host".into(), Value::String(form.workspace.trim().into()));
        m.insert("container".into(), Value::String(WORKSPACE_TARGET.into()));
        mounts.push(Value::Table(m));
    }
    for fm in form
        .mounts
        .iter()
        .filter(|m| !m.host.trim().is_empty() || !m.container.trim().is_empty())
    {
        let mut m = Table::new();
        m.insert("host".into(), Value::String(fm.host.trim().into()));
        m.insert(
            "container".into(),
            Value::String(fm.container.trim().into()),
        );
        if fm.readonly {
            m.insert("readonly".into(), Value::Boolean(true));
        }
        mounts.push(Value::Table(m));
    }
    if !mounts.is_empty() {
        t.insert("mounts".into(), Value::Array(mounts));
    }
    let env: Table = form
        .env
        .iter()
        .filter(|e| !e.key.trim().is_empty())
        .map(|e| (e.key.trim().to_string(), Value::String(e.value.clone())))
        .collect();
    if !env.is_empty() {
        t.insert("env".into(), Value::Table(env));
    }
    let mut secrets = Table::new();
    for s in form.secrets.iter().filter(|s| !s.name.trim().is_empty()) {
        let mut e = Table::new();
        e.insert("keychain".into(), Value::Boolean(true));
        if !s.placeholder_env.trim().is_empty() {
            e.insert(
                "placeholder_env".into(),
                Value::String(s.placeholder_env.trim().into()),
            );
        }
        secrets.insert(s.name.trim().into(), Value::Table(e));
    }
    if !secrets.is_empty() {
        t.insert("secrets".into(), Value::Table(secrets));
    }
    let rules: Vec<Value> = form
        .egress
        .iter()
        .filter(|r| !r.host.trim().is_empty())
        .map(|r| {
            let mut e = Table::new();
            e.insert("host".into(), Value::String(r.host.trim().into()));
            let methods = list(&r.methods);
            if !methods.is_empty() {
                e.insert(
                    "methods".into(),
                    Value::Array(methods.into_iter().map(Value::String).collect()),
                );
            }
            let paths = list(&r.paths);
            if !paths.is_empty() {
                e.insert(
                    "paths".into(),
                    Value::Array(paths.into_iter().map(Value::String).collect()),
                );
            }
            if !r.inject_secret.trim().is_empty() {
                let mut inj = Table::new();
                let header = if r.inject_header.trim().is_empty() {
                    "authorization"
                } else {
                    r.inject_header.trim()
                };
                inj.insert("header".into(), Value::String(header.into()));
                inj.insert(
                    "secret".into(),
                    Value::String(r.inject_secret.trim().into()),
                );
                if header.eq_ignore_ascii_case("authorization") {
                    inj.insert("value".into(), Value::String("Bearer {secret}".into()));
                }
                e.insert("inject".into(), Value::Table(inj));
            }
            Value::Table(e)
        })
        .collect();
    if !rules.is_empty() {
        t.insert("egress".into(), Value::Array(rules));
    }
    format!(
        "# Written by the Bottlebar app; the CLI reads it too (docs/manifest.md).\n{}",
        toml::to_string(&t).expect("a table serializes")
    )
}

/// A form for an existing manifest, filled from its text (read leniently:
/// what the form cannot show is left out, and saving rewrites the file).
pub fn from_toml(name: &str, text: &str) -> BottleForm {
    let t: toml::Table = text.parse().unwrap_or_default();
    let s = |v: Option<&toml::Value>| v.and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let strs = |v: Option<&toml::Value>| {
        v.and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let mut form = BottleForm {
        name: name.into(),
        description: s(t.get("description")),
        ..Default::default()
    };
    if let Some(agent) = t.get("agent").and_then(|a| a.as_table()) {
        form.template = s(agent.get("template"));
        form.dockerfile = s(agent.get("dockerfile"));
        form.agent_command = agent
            .get("command")
            .and_then(|c| c.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
    }
    for m in t
        .get("mounts")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_table())
    {
        let (host, container) = (s(m.get("host")), s(m.get("container")));
        if container == WORKSPACE_TARGET && form.workspace.is_empty() {
            form.workspace = host;
        } else {
            form.mounts.push(FormMount {
                host,
                container,
                readonly: m.get("readonly").and_then(|r| r.as_bool()).unwrap_or(false),
            });
        }
    }
    if let Some(env) = t.get("env").and_then(|e| e.as_table()) {
        form.env = env
            .iter()
            .map(|(k, v)| FormEnv {
                key: k.clone(),
                value: v.as_str().unwrap_or_default().into(),
            })
            .collect();
    }
    if let Some(secrets) = t.get("secrets").and_then(|e| e.as_table()) {
        form.secrets = secrets
            .iter()
            .map(|(k, v)| FormSecret {
                name: k.clone(),
                placeholder_env: s(v.get("placeholder_env")),
                value: String::new(),
            })
            .collect();
    }
    for r in t
        .get("egress")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_table())
    {
        let inject = r.get("inject").and_then(|i| i.as_table());
        form.egress.push(FormRule {
            host: s(r.get("host")),
            methods: strs(r.get("methods")),
            paths: strs(r.get("paths")),
            inject_secret: inject.map(|i| s(i.get("secret"))).unwrap_or_default(),
            inject_header: inject.map(|i| s(i.get("header"))).unwrap_or_default(),
        });
    }
    form
}

/// Validates the form as the CLI would and, if it passes, stores any new
/// secret values in the keychain and writes the manifest (atomically).
pub fn save(home: &Home, form: &BottleForm) -> Result<PathBuf, Vec<FieldError>> {
    let name = BottleName::parse(form.name.trim()).map_err(|e| {
        vec![FieldError {
            key: "name".into(),
            message: e.to_string(),
        }]
    })?;
    let text = to_toml(form);
    let path = home.bottle_file(&name);
    let base = home.bottles_dir();
    if let Err(ManifestError { key, message, .. }) =
        manifest::parse(&name, &path.display().to_string(), &text, home)
    {
        return Err(vec![FieldError { key, message }]);
    }
    for s in form
        .secrets
        .iter()
        .filter(|s| !s.name.trim().is_empty() && !s.value.is_empty())
    {
        crate::keychain::store(&name, s.name.trim(), &s.value).map_err(|e| {
            vec![FieldError {
                key: format!("secrets.{}", s.name.trim()),
                message: e.to_string(),
            }]
        })?;
    }
    std::fs::create_dir_all(&base).map_err(|e| {
        vec![FieldError {
            key: String::new(),
            message: format!("creating {}: {e}", base.display()),
        }]
    })?;
    write_private(&path, text.as_bytes(), 0o600).map_err(|e| {
        vec![FieldError {
            key: String::new(),
            message: e.to_string(),
        }]
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> BottleForm {
        BottleForm {
            name: "work".into(),
            description: "my agent".into(),
            template: "busybox".into(),
            agent_command: "claude --verbose".into(),
            workspace: "/usr/share".into(),
            mounts: vec![FormMount {
                host: "/etc".into(),
                container: "/host-etc".into(),
                readonly: true,
            }],
            egress: vec![FormRule {
                host: "api.example.com".into(),
                methods: "GET, POST".into(),
                paths: "/v1/".into(),
                inject_secret: "api".into(),
                inject_header: "authorization".into(),
            }],
            env: vec![FormEnv {
                key: "EDITOR".into(),
                value: "vi".into(),
            }],
            secrets: vec![FormSecret {
                name: "api".into(),
                placeholder_env: "API_KEY".into(),
                value: String::new(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_form_round_trips_through_toml_the_cli_accepts() {
        let f = form();
        let text = to_toml(&f);
        let name = BottleName::parse("work").unwrap();
        let m = manifest::parse(&name, "work.toml", &text, &Home::at("/nonexistent-home")).unwrap();
        assert_eq!(m.mounts[0].container, WORKSPACE_TARGET);
        assert_eq!(m.agent_command, vec!["claude", "--verbose"]);
        assert_eq!(m.egress[0].methods, vec!["GET", "POST"]);
        assert_eq!(m.egress[0].inject.as_ref().unwrap().render("x"), "Bearer x");
        assert!(matches!(
            m.secrets[0].source,
            manifest::SecretSource::Keychain
        ));
        assert_eq!(from_toml("work", &text), f);
    }

    #[test]
    fn saving_reports_the_cli_error_for_the_field_and_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(tmp.path());
        let mut f = form();
        f.egress[0].host = "Not A Host".into();
        let errs = save(&home, &f).unwrap_err();
        assert_eq!(errs[0].key, "egress[0]", "{errs:?}");
        assert!(
            errs[0].message.contains("not a valid host name"),
            "{errs:?}"
        );
        f.egress[0].host = "api.example.com".into();
        f.name = "Bad Name".into();
        assert_eq!(save(&home, &f).unwrap_err()[0].key, "name");
        assert!(
            !home.bottles_dir().exists()
                || std::fs::read_dir(home.bottles_dir())
                    .unwrap()
                    .next()
                    .is_none()
        );
        f.name = "work".into();
        let path = save(&home, &f).unwrap();
        assert_eq!(
            manifest::load(&home, "work")
                .unwrap()
                .description
                .as_deref(),
            Some("my agent")
        );
        assert!(std::fs::read_to_string(path)
            .unwrap()
            .starts_with("# Written by the Bottlebar app"));
    }
}
