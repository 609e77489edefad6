//! Every key a manifest may hold, and who edits it: the app's form, or only
//! the file (the form keeps those as written). The app's editor reads this
//! table to know what it may change; a test compares it with the parser's
//! own structures, so a key the parser learns cannot be forgotten here.
//!
//! Keys are written as shapes: `egress[]` for any entry of a list,
//! `env.*` for any name in a table of free names.

/// What a key is, and who edits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A value the app's form shows and writes.
    Form,
    /// A value only the file sets; the form keeps it as written.
    File,
    /// A table whose keys are listed separately.
    Table,
    /// A list of tables whose keys are listed separately (`name[].key`).
    List,
}

/// The manifest's keys (`docs/manifest.md` describes each).
pub const KEYS: &[(&str, Key)] = &[
    ("description", Key::Form),
    ("backend", Key::File),
    ("agent", Key::Table),
    ("agent.template", Key::Form),
    ("agent.dockerfile", Key::Form),
    ("agent.context", Key::File),
    ("agent.base", Key::File),
    ("agent.command", Key::Form),
    ("mounts", Key::List),
    ("mounts[].host", Key::Form),
    ("mounts[].container", Key::Form),
    ("mounts[].readonly", Key::Form),
    ("env", Key::Table),
    ("env.*", Key::Form),
    ("egress", Key::List),
    ("egress[].host", Key::Form),
    ("egress[].ports", Key::File),
    ("egress[].methods", Key::Form),
    ("egress[].paths", Key::Form),
    ("egress[].inject", Key::Table),
    ("egress[].inject.header", Key::Form),
    ("egress[].inject.secret", Key::Form),
    ("egress[].inject.value", Key::File),
    ("egress[].inject.allow_wildcard", Key::File),
    ("egress[].inject.basic_user", Key::File),
    ("egress[].dlp", Key::File),
    ("secrets", Key::Table),
    ("secrets.*", Key::Table),
    ("secrets.*.env", Key::File),
    ("secrets.*.file", Key::File),
    ("secrets.*.keychain", Key::Form),
    ("secrets.*.placeholder_env", Key::Form),
    ("tls", Key::Table),
    ("tls.extra_roots", Key::File),
    ("dns", Key::File),
    ("hosts", Key::File),
    ("git_gate", Key::File),
    ("supervise", Key::File),
    ("resources", Key::Table),
    ("resources.cpus", Key::File),
    ("resources.memory", Key::File),
    ("isolation", Key::Table),
    ("isolation.accept_leaks", Key::File),
    ("isolation.gvisor", Key::File),
    ("allow_private_ranges", Key::File),
];

fn kind(shape: &str) -> Option<Key> {
    KEYS.iter().find(|(k, _)| *k == shape).map(|(_, v)| *v)
}

/// Whether `shape` is a manifest key.
pub fn is_known(shape: &str) -> bool {
    kind(shape).is_some()
}

/// Whether the app's form writes `shape`.
pub fn form_owns(shape: &str) -> bool {
    kind(shape) == Some(Key::Form)
}

/// Whether `shape` is a list of tables.
pub fn is_list(shape: &str) -> bool {
    kind(shape) == Some(Key::List)
}

/// Whether `shape` is a table of further keys.
pub fn is_table(shape: &str) -> bool {
    kind(shape) == Some(Key::Table)
}

#[cfg(test)]
mod tests {
    use super::super::raw::*;
    use super::*;
    use serde::de::{self, Deserialize, Visitor};

    /// The field names serde's derive gives a structure (what
    /// `deny_unknown_fields` accepts), read through a deserializer that
    /// stops at the struct.
    fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
        struct Catch(Option<&'static [&'static str]>);
        impl<'de> de::Deserializer<'de> for &mut Catch {
            type Error = de::value::Error;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
                Err(de::Error::custom("not a struct"))
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                self.0 = Some(fields);
                Err(de::Error::custom("caught"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
                bytes byte_buf option unit unit_struct newtype_struct seq tuple
                tuple_struct map enum identifier ignored_any
            }
        }
        let mut c = Catch(None);
        let _ = T::deserialize(&mut c);
        c.0.expect("a struct")
    }

    #[test]
    fn the_schema_lists_exactly_the_keys_the_parser_reads() {
        let mut parser: Vec<String> = Vec::new();
        let mut add = |prefix: &str, names: &[&str]| {
            parser.extend(names.iter().map(|n| format!("{prefix}{n}")));
        };
        add("", fields::<RawManifest>());
        add("agent.", fields::<RawAgent>());
        add("mounts[].", fields::<RawMount>());
        add("egress[].", fields::<bottlebar_policy::EgressRule>());
        add("egress[].inject.", fields::<bottlebar_policy::Inject>());
        add("secrets.*.", fields::<RawSecret>());
        add("tls.", fields::<RawTls>());
        add("resources.", fields::<RawResources>());
        add("isolation.", fields::<RawIsolation>());
        // Tables of free names: any name is a key.
        parser.extend(["env.*".to_string(), "secrets.*".to_string()]);
        parser.sort();
        let mut schema: Vec<String> = KEYS.iter().map(|(k, _)| k.to_string()).collect();
        schema.sort();
        assert_eq!(
            schema, parser,
            "manifest::schema::KEYS and the parser disagree; give every key a place"
        );
    }

    #[test]
    fn the_form_owns_what_the_editor_writes_and_nothing_it_cannot_show() {
        for k in [
            "description",
            "agent.command",
            "egress[].inject.secret",
            "env.*",
        ] {
            assert!(form_owns(k), "{k}");
        }
        for k in [
            "backend",
            "dns",
            "hosts",
            "egress[].ports",
            "egress[].inject.value",
            "secrets.*.env",
        ] {
            assert!(!form_owns(k) && is_known(k), "{k}");
        }
        assert!(is_list("egress") && is_table("egress[].inject") && !is_known("nope"));
    }
}
