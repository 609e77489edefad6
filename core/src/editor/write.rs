//! The form, written into a manifest's TOML document in place: only the
//! keys the form owns change, and a key whose value did not change is not
//! touched at all, so comments, order, formatting and every key the form
//! does not show stay byte for byte. List entries are matched to the file
//! by their `origin`.

use super::form::{list, BottleForm, FieldError, FormMount, FormRule, WORKSPACE_TARGET};
use super::read::entries;
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, TableLike, Value};

/// Which form field each entry of the written file came from, for
/// pointing a manifest error at the field.
#[derive(Debug, Default)]
pub struct Layout {
    /// By index in the written `mounts`: `workspace` or `mount-N`.
    pub mounts: Vec<String>,
    /// By index in the written `egress`: `egress-N`.
    pub egress: Vec<String>,
    /// By variable name: `env-N`.
    pub env: Vec<(String, String)>,
    /// By secret name: `secrets-N`.
    pub secrets: Vec<(String, String)>,
}

/// Writes `form` into `doc`; the layout says where each entry went.
pub fn apply(doc: &mut DocumentMut, form: &BottleForm) -> Result<Layout, FieldError> {
    let root = doc.as_table_mut();
    let mut layout = Layout::default();
    set_or_remove(root, "description", form.description.trim());
    agent(root, form)?;
    layout.mounts = mounts(root, form)?;
    layout.egress = egress(root, &form.egress)?;
    layout.env = env(root, form);
    layout.secrets = secrets(root, form);
    Ok(layout)
}

fn agent(root: &mut Table, form: &BottleForm) -> Result<(), FieldError> {
    let command = shlex::split(&form.agent_command).ok_or_else(|| FieldError {
        field: "agent_command".into(),
        key: "agent.command".into(),
        message: "a quote is not closed".into(),
    })?;
    let agent = root
        .entry("agent")
        .or_insert_with(|| Item::Table(Table::new()));
    let Some(agent) = agent.as_table_like_mut() else {
        return Ok(());
    };
    if form.dockerfile.trim().is_empty() {
        let template = Some(form.template.trim()).filter(|t| !t.is_empty());
        set(agent, "template", template.unwrap_or("busybox"));
        agent.remove("dockerfile");
        // `context` goes with `dockerfile`.
        agent.remove("context");
    } else {
        set(agent, "dockerfile", form.dockerfile.trim());
        agent.remove("template");
    }
    set_list(agent, "command", &command);
    Ok(())
}

/// One entry of a list the form edits: where it was in the file, and how
/// to write it.
struct Wanted<'a, T> {
    origin: Option<usize>,
    field: String,
    entry: &'a T,
}

enum MountEntry<'a> {
    Workspace(&'a str),
    Other(&'a FormMount),
}

fn mounts(root: &mut Table, form: &BottleForm) -> Result<Vec<String>, FieldError> {
    let mut wanted: Vec<Wanted<MountEntry>> = Vec::new();
    let workspace = MountEntry::Workspace(form.workspace.trim());
    let others: Vec<MountEntry> = form.mounts.iter().map(MountEntry::Other).collect();
    if !form.workspace.trim().is_empty() {
        wanted.push(Wanted {
            origin: form.workspace_origin,
            field: "workspace".into(),
            entry: &workspace,
        });
    }
    for (i, (m, entry)) in form.mounts.iter().zip(&others).enumerate() {
        if !m.host.trim().is_empty() || !m.container.trim().is_empty() {
            wanted.push(Wanted {
                origin: m.origin,
                field: format!("mount-{i}"),
                entry,
            });
        }
    }
    rewrite_list(root, "mounts", wanted, |t, m| match m {
        MountEntry::Workspace(host) => {
            set(t, "host", *host);
            set(t, "container", WORKSPACE_TARGET);
        }
        MountEntry::Other(m) => {
            set(t, "host", m.host.trim());
            set(t, "container", m.container.trim());
            // An explicit `readonly = false` stays; a missing one is not added.
            if m.readonly || t.contains_key("readonly") {
                set(t, "readonly", m.readonly);
            }
        }
    })
}

fn egress(root: &mut Table, rules: &[FormRule]) -> Result<Vec<String>, FieldError> {
    let wanted = rules
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.host.trim().is_empty())
        .map(|(i, r)| Wanted {
            origin: r.origin,
            field: format!("egress-{i}"),
            entry: r,
        })
        .collect();
    rewrite_list(root, "egress", wanted, |t, r| {
        set(t, "host", r.host.trim());
        set_list(t, "methods", &list(&r.methods));
        set_list(t, "paths", &list(&r.paths));
        inject(t, r);
    })
}

/// `inject`: the form owns `secret` and `header`; `value` and
/// `allow_wildcard` stay as written (a new injection into `authorization`
/// gets `Bearer {secret}`).
fn inject(rule: &mut dyn TableLike, r: &FormRule) {
    let secret = r.inject_secret.trim();
    if secret.is_empty() {
        rule.remove("inject");
        return;
    }
    let header = Some(r.inject_header.trim()).filter(|h| !h.is_empty());
    if let Some(inj) = rule.get_mut("inject").and_then(Item::as_table_like_mut) {
        set(inj, "secret", secret);
        if let Some(h) = header {
            set(inj, "header", h);
        }
        return;
    }
    let header = header.unwrap_or("authorization");
    let mut inj = InlineTable::new();
    inj.insert("header", header.into());
    inj.insert("secret", secret.into());
    if header.eq_ignore_ascii_case("authorization") {
        inj.insert("value", "Bearer {secret}".into());
    }
    rule.insert("inject", Item::Value(Value::InlineTable(inj)));
}

/// Rewrites the list `key` (`[[key]]` tables or an inline array) to hold
/// `wanted`: entries from the file (by origin, in file order, each edited
/// in place) and then new ones. Returns each written entry's field.
fn rewrite_list<T>(
    root: &mut Table,
    key: &str,
    mut wanted: Vec<Wanted<T>>,
    write: impl Fn(&mut dyn TableLike, &T),
) -> Result<Vec<String>, FieldError> {
    let count = entries(root.get(key)).len();
    if let Some(w) = wanted.iter().find(|w| w.origin.is_some_and(|o| o >= count)) {
        return Err(FieldError {
            field: w.field.clone(),
            key: key.into(),
            message: "this entry is no longer in the file; reopen the bottle".into(),
        });
    }
    // File entries keep their order; new ones follow, except a new
    // workspace, which goes first.
    wanted.sort_by_key(|w| match w.origin {
        Some(o) => o as isize,
        None if w.field == "workspace" => -1,
        None => isize::MAX,
    });
    let fields = wanted.iter().map(|w| w.field.clone()).collect();
    if wanted.is_empty() {
        root.remove(key);
        return Ok(fields);
    }
    match root.get_mut(key) {
        Some(Item::Value(Value::Array(old))) => {
            let mut new = Array::new();
            // A new entry is laid out like the file's last one (on its own
            // line, say); an entry that gained or lost keys is re-spaced.
            let layout = old.iter().last().map(|v| fresh_line(v.decor()));
            for w in &wanted {
                let (mut t, decor) = match w.origin.and_then(|o| old.get(o)) {
                    Some(Value::InlineTable(t)) => (t.clone(), t.decor().clone()),
                    _ => (InlineTable::new(), layout.clone().unwrap_or_default()),
                };
                let keys = key_names(&t);
                write(&mut t, w.entry);
                if key_names(&t) != keys {
                    t.fmt();
                }
                let mut v = Value::InlineTable(t);
                *v.decor_mut() = decor;
                new.push_formatted(v);
            }
            *new.decor_mut() = old.decor().clone();
            new.set_trailing(old.trailing().clone());
            new.set_trailing_comma(old.trailing_comma());
            *old = new;
        }
        existing => {
            let old = existing
                .and_then(|i| i.as_array_of_tables())
                .cloned()
                .unwrap_or_default();
            let mut new = ArrayOfTables::new();
            for w in &wanted {
                let mut t = w
                    .origin
                    .and_then(|o| old.get(o))
                    .cloned()
                    .unwrap_or_default();
                write(&mut t, w.entry);
                new.push(t);
            }
            root.insert(key, Item::ArrayOfTables(new));
        }
    }
    Ok(fields)
}

fn env(root: &mut Table, form: &BottleForm) -> Vec<(String, String)> {
    let rows: Vec<(usize, &str, &str, Option<&str>)> = form
        .env
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.key.trim().is_empty())
        .map(|(i, e)| (i, e.key.trim(), e.value.as_str(), e.origin.as_deref()))
        .collect();
    let fields = rows
        .iter()
        .map(|(i, k, _, _)| (k.to_string(), format!("env-{i}")))
        .collect();
    let Some(table) = table_for(root, "env", !rows.is_empty(), false) else {
        return fields;
    };
    let before = key_names(table);
    // Variables removed in the form, or renamed, leave the file first.
    let keep: Vec<&str> = rows
        .iter()
        .filter(|r| r.3 == Some(r.1))
        .map(|r| r.1)
        .collect();
    let gone: Vec<String> = table
        .iter()
        .map(|(k, _)| k.to_string())
        .filter(|k| !keep.contains(&k.as_str()))
        .collect();
    for k in gone {
        table.remove(&k);
    }
    for (_, key, value, _) in &rows {
        set(table, key, *value);
    }
    respace_if_reshaped(root, "env", &before);
    fields
}

fn secrets(root: &mut Table, form: &BottleForm) -> Vec<(String, String)> {
    let rows: Vec<(usize, &super::form::FormSecret)> = form
        .secrets
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.name.trim().is_empty())
        .collect();
    let fields = rows
        .iter()
        .map(|(i, s)| (s.name.trim().to_string(), format!("secrets-{i}")))
        .collect();
    let Some(table) = table_for(root, "secrets", !rows.is_empty(), true) else {
        return fields;
    };
    let before = key_names(table);
    // Entries the form no longer has leave; renamed ones move, keeping
    // their contents; the others are edited where they are.
    let kept: Vec<&str> = rows
        .iter()
        .filter_map(|(_, s)| s.origin.as_deref())
        .collect();
    let gone: Vec<String> = table
        .iter()
        .map(|(k, _)| k.to_string())
        .filter(|k| !kept.contains(&k.as_str()))
        .collect();
    for k in gone {
        table.remove(&k);
    }
    let mut moved: Vec<(String, Item)> = Vec::new();
    for (_, s) in &rows {
        let name = s.name.trim();
        match s.origin.as_deref() {
            Some(o) if o != name => {
                if let Some(item) = table.remove(o) {
                    moved.push((name.to_string(), item));
                }
            }
            Some(_) => {}
            None => {
                let mut t = Table::new();
                t.insert("keychain", toml_edit::value(true));
                moved.push((name.to_string(), Item::Table(t)));
            }
        }
    }
    for (name, item) in moved {
        table.insert(&name, item);
    }
    for (_, s) in &rows {
        if let Some(t) = table
            .get_mut(s.name.trim())
            .and_then(Item::as_table_like_mut)
        {
            set_or_remove(t, "placeholder_env", s.placeholder_env.trim());
        }
    }
    respace_if_reshaped(root, "secrets", &before);
    fields
}

/// Spacing for a new array entry after one decorated as `d`: its line
/// break and indentation, without any comment it carried.
fn fresh_line(d: &toml_edit::Decor) -> toml_edit::Decor {
    let prefix = d.prefix().and_then(|p| p.as_str()).unwrap_or("");
    let prefix = match prefix.rfind('\n') {
        Some(i) => format!("\n{}", &prefix[i + 1..]),
        None if prefix.trim().is_empty() => prefix.to_string(),
        None => " ".into(),
    };
    toml_edit::Decor::new(prefix, "")
}

/// The keys of a table, in order.
fn key_names(t: &dyn TableLike) -> Vec<String> {
    t.iter().map(|(k, _)| k.to_string()).collect()
}

/// After editing the table `key`: removes it when empty, and re-spaces it
/// when it is an inline table whose keys changed (toml_edit would
/// otherwise glue a new key to the old spacing).
fn respace_if_reshaped(root: &mut Table, key: &str, before: &[String]) {
    match root.get_mut(key) {
        Some(item) if item.as_table_like().is_some_and(|t| t.is_empty()) => {
            root.remove(key);
        }
        Some(Item::Value(Value::InlineTable(t))) if key_names(t) != before => t.fmt(),
        _ => {}
    }
}

/// The table `key` in `root`, created when `create` (as `[key]`, or only
/// as the parent of `[key.name]` tables when `implicit`).
fn table_for<'a>(
    root: &'a mut Table,
    key: &str,
    create: bool,
    implicit: bool,
) -> Option<&'a mut dyn TableLike> {
    if !root.contains_key(key) {
        if !create {
            return None;
        }
        let mut t = Table::new();
        t.set_implicit(implicit);
        root.insert(key, Item::Table(t));
    }
    root.get_mut(key).and_then(Item::as_table_like_mut)
}

/// Sets `key` to `new`, unless it already holds that value; a changed
/// value keeps the old one's surrounding whitespace and comments.
fn set(t: &mut dyn TableLike, key: &str, new: impl Into<Value>) {
    let new: Value = new.into();
    match t.get_mut(key) {
        Some(Item::Value(old)) => {
            if same(old, &new) {
                return;
            }
            let decor = old.decor().clone();
            *old = new;
            *old.decor_mut() = decor;
        }
        _ => {
            t.insert(key, Item::Value(new));
        }
    }
}

/// Sets a string, or removes the key when the form's value is empty.
fn set_or_remove(t: &mut dyn TableLike, key: &str, new: &str) {
    if new.is_empty() {
        t.remove(key);
    } else {
        set(t, key, new);
    }
}

/// Sets a string array, or removes the key when the form's list is empty.
fn set_list(t: &mut dyn TableLike, key: &str, items: &[String]) {
    if items.is_empty() {
        t.remove(key);
    } else {
        set(
            t,
            key,
            Value::Array(items.iter().map(String::as_str).collect()),
        );
    }
}

/// The same TOML value, whatever its formatting.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.value() == y.value(),
        (Value::Boolean(x), Value::Boolean(y)) => x.value() == y.value(),
        (Value::Integer(x), Value::Integer(y)) => x.value() == y.value(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| same(a, b))
        }
        _ => false,
    }
}
