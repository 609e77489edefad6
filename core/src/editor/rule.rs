//! Adding one egress rule to a bottle's file ("Always allow" on a
//! supervise request), in place: a new `[[egress]]` entry after the last
//! one, everything else as written.

use super::{base_text, parse_document, write_with_backup};
use crate::home::Home;
use crate::manifest;
use crate::name::BottleName;
use bottlebar_policy::EgressRule;
use std::path::PathBuf;
use toml_edit::{Array, ArrayOfTables, InlineTable, Item, Table, Value};

/// Appends `rule` to bottle `name`'s egress rules, keeping the previous
/// file as `NAME.toml.bak`. The result must parse as a manifest, or
/// nothing is written.
pub fn add_rule(home: &Home, name: &BottleName, rule: &EgressRule) -> Result<PathBuf, String> {
    let (path, base) = base_text(home, name).map_err(|e| e.to_string())?;
    let text = base.ok_or_else(|| format!("no bottle named `{name}`"))?;
    let mut doc = parse_document(&path, &text).map_err(|e| e.to_string())?;
    let strings = |v: &[String]| Value::Array(v.iter().map(String::as_str).collect::<Array>());
    let mut t = Table::new();
    t.insert("host", toml_edit::value(rule.host.as_str()));
    if !rule.ports.is_empty() {
        let ports: Array = rule.ports.iter().map(|p| i64::from(*p)).collect();
        t.insert("ports", Item::Value(Value::Array(ports)));
    }
    if !rule.methods.is_empty() {
        t.insert("methods", Item::Value(strings(&rule.methods)));
    }
    if !rule.paths.is_empty() {
        t.insert("paths", Item::Value(strings(&rule.paths)));
    }
    let root = doc.as_table_mut();
    match root.get_mut("egress") {
        Some(Item::Value(Value::Array(a))) => {
            let mut inline: InlineTable = t.into_inline_table();
            inline.fmt();
            a.push(inline);
        }
        Some(Item::ArrayOfTables(a)) => a.push(t),
        Some(_) => {
            return Err(format!(
                "{}: `egress` is not a list of rules",
                path.display()
            ))
        }
        None => {
            let mut a = ArrayOfTables::new();
            a.push(t);
            root.insert("egress", Item::ArrayOfTables(a));
        }
    }
    let new_text = doc.to_string();
    manifest::parse(name, &path.display().to_string(), &new_text, home)
        .map_err(|e| e.to_string())?;
    write_with_backup(home, &path, &new_text)?;
    Ok(path)
}
