//! A manifest's TOML document, read into the form. Nothing is lost by
//! reading: what the form does not show stays in the document, and
//! [`kept`] lists it so the window can say it is kept as written.

use super::form::{BottleForm, FormEnv, FormMount, FormRule, FormSecret, WORKSPACE_TARGET};
use crate::manifest::schema;
use toml_edit::{DocumentMut, Item, TableLike};

/// The form for a bottle named `name` whose file reads as `doc`.
pub fn form(name: &str, doc: &DocumentMut, revision: String) -> BottleForm {
    let root = doc.as_table();
    let agent = root.get("agent").and_then(Item::as_table_like);
    let mut form = BottleForm {
        name: name.into(),
        description: text(root.get("description")),
        template: agent.map(|a| text(a.get("template"))).unwrap_or_default(),
        dockerfile: agent.map(|a| text(a.get("dockerfile"))).unwrap_or_default(),
        agent_command: agent.map(|a| command(a.get("command"))).unwrap_or_default(),
        revision,
        kept: kept(doc),
        ..Default::default()
    };
    for (i, m) in entries(root.get("mounts")).into_iter().enumerate() {
        let (host, container) = (text(m.get("host")), text(m.get("container")));
        let readonly = m.get("readonly").and_then(Item::as_bool).unwrap_or(false);
        if container == WORKSPACE_TARGET && !readonly && form.workspace_origin.is_none() {
            form.workspace = host;
            form.workspace_origin = Some(i);
        } else {
            form.mounts.push(FormMount {
                host,
                container,
                readonly,
                origin: Some(i),
            });
        }
    }
    for (i, r) in entries(root.get("egress")).into_iter().enumerate() {
        let inject = r.get("inject").and_then(Item::as_table_like);
        form.egress.push(FormRule {
            host: text(r.get("host")),
            methods: words(r.get("methods"), ", "),
            paths: words(r.get("paths"), ", "),
            inject_secret: inject.map(|i| text(i.get("secret"))).unwrap_or_default(),
            inject_header: inject.map(|i| text(i.get("header"))).unwrap_or_default(),
            origin: Some(i),
        });
    }
    if let Some(env) = root.get("env").and_then(Item::as_table_like) {
        form.env = env
            .iter()
            .map(|(k, v)| FormEnv {
                key: k.to_string(),
                value: text(Some(v)),
                origin: Some(k.to_string()),
            })
            .collect();
    }
    if let Some(secrets) = root.get("secrets").and_then(Item::as_table_like) {
        form.secrets = secrets
            .iter()
            .map(|(k, v)| {
                let s = v.as_table_like();
                FormSecret {
                    name: k.to_string(),
                    placeholder_env: s
                        .map(|s| text(s.get("placeholder_env")))
                        .unwrap_or_default(),
                    value: String::new(),
                    source: s.map(source).unwrap_or_default(),
                    origin: Some(k.to_string()),
                }
            })
            .collect();
    }
    form
}

/// The tables of an array of tables (`[[mounts]]`) or of an inline array
/// (`mounts = [{ … }]`), in order.
pub fn entries(item: Option<&Item>) -> Vec<&dyn TableLike> {
    match item {
        Some(Item::ArrayOfTables(a)) => a.iter().map(|t| t as &dyn TableLike).collect(),
        Some(Item::Value(toml_edit::Value::Array(a))) => a
            .iter()
            .filter_map(|v| v.as_inline_table().map(|t| t as &dyn TableLike))
            .collect(),
        _ => Vec::new(),
    }
}

fn text(item: Option<&Item>) -> String {
    item.and_then(Item::as_str).unwrap_or_default().to_string()
}

/// `agent.command` as shell words, quoted where an argument needs it.
fn command(item: Option<&Item>) -> String {
    let args: Vec<&str> = item
        .and_then(Item::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    shlex::try_join(args.iter().copied()).unwrap_or_else(|_| args.join(" "))
}

fn words(item: Option<&Item>, sep: &str) -> String {
    item.and_then(Item::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(sep)
        })
        .unwrap_or_default()
}

/// Where a secret's value comes from, as people read it.
fn source(s: &dyn TableLike) -> String {
    if let Some(e) = s.get("env").and_then(Item::as_str) {
        format!("env {e}")
    } else if let Some(f) = s.get("file").and_then(Item::as_str) {
        format!("file {f}")
    } else {
        "keychain".into()
    }
}

/// Every key the file sets that the form does not own, as a dotted path
/// (`backend`, `egress[0].ports`, `hosts.api.test`), in file order.
pub fn kept(doc: &DocumentMut) -> Vec<String> {
    let mut out = Vec::new();
    walk(doc.as_table(), "", "", &mut out);
    out
}

/// `path` is the key as written (`egress[0]`); `shape` is the same with
/// indices and free names generalised (`egress[]`, `hosts.*`), as the
/// schema names keys.
fn walk(t: &dyn TableLike, path: &str, shape: &str, out: &mut Vec<String>) {
    for (k, item) in t.iter() {
        let join = |base: &str, k: &str| {
            if base.is_empty() {
                k.to_string()
            } else {
                format!("{base}.{k}")
            }
        };
        let (p, s) = (join(path, k), join(shape, k));
        let s_any = join(shape, "*");
        let shape = if schema::is_known(&s) { s } else { s_any };
        if schema::form_owns(&shape) {
            continue;
        }
        let list = entries(Some(item));
        if !list.is_empty() && schema::is_list(&shape) {
            for (i, e) in list.into_iter().enumerate() {
                walk(e, &format!("{p}[{i}]"), &format!("{shape}[]"), out);
            }
        } else if let (Some(sub), true) = (item.as_table_like(), schema::is_table(&shape)) {
            walk(sub, &p, &shape, out);
        } else {
            out.push(p);
        }
    }
}
