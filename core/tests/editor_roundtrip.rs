//! The app's editor over a corpus of real-looking manifests
//! (`tests/manifests/editor/`: comments, every optional table, inline
//! styles, odd formatting, keys the form does not show). Each file is
//! opened, one field is changed, and it is saved: the lines that change are
//! exactly the edited key's, every other byte stays, and the manifest means
//! the same except for that one field. Files the form cannot read are never
//! overwritten.

use bottlebar_core::editor::{self, BottleForm, FormRule, OpenError};
use bottlebar_core::home::Home;
use bottlebar_core::manifest::{self, Manifest};
use std::fs;
use std::path::Path;

/// A home holding the corpus file `file` as bottle `name`, with the paths
/// the corpus refers to (`@FIXTURES@`).
fn home_with(file: &str) -> (tempfile::TempDir, Home, String) {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = tmp.path().join("fixtures");
    fs::create_dir_all(fixtures.join("work")).unwrap();
    fs::write(fixtures.join("gitconfig"), "[user]\n").unwrap();
    fs::write(fixtures.join("openai.key"), "sk-test\n").unwrap();
    fs::write(
        fixtures.join("corp-ca.pem"),
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let home = Home::at(tmp.path().join("home"));
    fs::create_dir_all(home.bottles_dir().join("agent")).unwrap();
    fs::write(
        home.bottles_dir().join("agent/Dockerfile"),
        "FROM scratch\n",
    )
    .unwrap();
    let text = fs::read_to_string(corpus().join(file))
        .unwrap()
        .replace("@FIXTURES@", &fixtures.display().to_string());
    let name = file.trim_end_matches(".toml").to_string();
    fs::write(home.bottles_dir().join(file), text).unwrap();
    (tmp, home, name)
}

fn corpus() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests/editor")
}

fn corpus_files() -> Vec<String> {
    let mut files: Vec<String> = fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "corpus too small: {files:?}");
    files
}

fn file_text(home: &Home, name: &str) -> String {
    fs::read_to_string(home.bottles_dir().join(format!("{name}.toml"))).unwrap()
}

/// Lines removed from `a` and added in `b` (a longest-common-subsequence diff).
fn diff(a: &str, b: &str) -> (Vec<String>, Vec<String>) {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut removed, mut added) = (0, 0, Vec::new(), Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            (i, j) = (i + 1, j + 1);
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            added.push(b[j].to_string());
            j += 1;
        } else {
            removed.push(a[i].to_string());
            i += 1;
        }
    }
    (removed, added)
}

/// One edit to a form, what it may change in the file, and what it means.
struct Edit {
    what: &'static str,
    /// Changes the form; false when it does not apply to this file.
    apply: fn(&mut BottleForm) -> bool,
    /// Every removed and added line must contain one of these.
    lines: &'static [&'static str],
    /// The same edit made on the parsed manifest.
    expect: fn(&mut Manifest),
}

const EDITS: &[Edit] = &[
    Edit {
        what: "description",
        apply: |f| {
            f.description = "changed by the form".into();
            true
        },
        lines: &["description"],
        expect: |m| m.description = Some("changed by the form".into()),
    },
    Edit {
        what: "the first rule's host",
        apply: |f| match f.egress.first_mut() {
            Some(r) => {
                r.host = "new.example.org".into();
                true
            }
            None => false,
        },
        lines: &["host", "new.example.org"],
        expect: |m| m.egress[0].host = "new.example.org".into(),
    },
    Edit {
        what: "the first rule's methods",
        apply: |f| match f.egress.first_mut() {
            Some(r) => {
                r.methods = "GET, PUT".into();
                true
            }
            None => false,
        },
        lines: &["methods", "GET", "POST", "HEAD", "]", "PUT"],
        expect: |m| m.egress[0].methods = vec!["GET".into(), "PUT".into()],
    },
    Edit {
        what: "an env value",
        apply: |f| match f.env.first_mut() {
            Some(e) => {
                e.value = "edited".into();
                true
            }
            None => false,
        },
        lines: &["edited", "EDITOR =", "PATH", "A="],
        expect: |m| {
            let k = m.env.keys().next().unwrap().clone();
            m.env.insert(k, "edited".into());
        },
    },
    Edit {
        what: "a new rule",
        apply: |f| {
            f.egress.push(FormRule {
                host: "added.example.net".into(),
                methods: "GET".into(),
                ..Default::default()
            });
            true
        },
        lines: &["egress", "added.example.net", "methods", "GET", ""],
        expect: |m| {
            m.egress.push(bottlebar_policy::EgressRule {
                host: "added.example.net".into(),
                ports: vec![],
                methods: vec!["GET".into()],
                paths: vec![],
                inject: None,
                dlp: Default::default(),
            });
        },
    },
    Edit {
        what: "the agent command",
        apply: |f| {
            f.agent_command = "agent --fast".into();
            true
        },
        lines: &["command", "agent", "--fast"],
        expect: |m| m.agent_command = vec!["agent".into(), "--fast".into()],
    },
];

#[test]
fn saving_an_unchanged_form_leaves_the_file_alone() {
    for file in corpus_files() {
        let (_tmp, home, name) = home_with(&file);
        let before = file_text(&home, &name);
        let form = editor::open(&home, &name).unwrap_or_else(|e| panic!("{file}: {e}"));
        editor::save(&home, &form).unwrap_or_else(|e| panic!("{file}: {e:?}"));
        assert_eq!(file_text(&home, &name), before, "{file}");
        assert!(
            !home.bottles_dir().join(format!("{name}.toml.bak")).exists(),
            "{file}: nothing to back up when nothing changed"
        );
    }
}

#[test]
fn one_changed_field_changes_only_its_lines_and_its_meaning() {
    let mut checked = 0;
    for file in corpus_files() {
        for edit in EDITS {
            let (_tmp, home, name) = home_with(&file);
            let before = file_text(&home, &name);
            let mut expected = manifest::load(&home, &name).unwrap();
            let mut form = editor::open(&home, &name).unwrap();
            if !(edit.apply)(&mut form) {
                continue;
            }
            let ctx = format!("{file}, {}", edit.what);
            editor::save(&home, &form).unwrap_or_else(|e| panic!("{ctx}: {e:?}"));
            let after = file_text(&home, &name);
            let (removed, added) = diff(&before, &after);
            assert!(
                !added.is_empty() || !removed.is_empty(),
                "{ctx}: nothing changed"
            );
            for l in removed.iter().chain(&added) {
                assert!(
                    edit.lines.iter().any(|k| l.contains(k)),
                    "{ctx}: unexpected line changed: {l:?}\n--- before\n{before}\n--- after\n{after}"
                );
            }
            let mut got = manifest::load(&home, &name).unwrap();
            (edit.expect)(&mut expected);
            got.source = expected.source.clone();
            assert_eq!(got, expected, "{ctx}:\n{after}");
            // The previous version is kept.
            let bak = home.bottles_dir().join(format!("{name}.toml.bak"));
            assert_eq!(fs::read_to_string(bak).unwrap(), before, "{ctx}");
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} edits applied");
}

#[test]
fn removing_renaming_and_adding_keep_everything_else() {
    let (_tmp, home, name) = home_with("claude-code.toml");
    let before = file_text(&home, &name);
    let mut form = editor::open(&home, &name).unwrap();
    assert_eq!(form.workspace_origin, Some(0));
    // Drop the gitconfig mount, rename a secret (and the rule using it),
    // drop an env var, add one.
    form.mounts.clear();
    let s = form
        .secrets
        .iter_mut()
        .find(|s| s.name == "anthropic")
        .unwrap();
    s.name = "claude".into();
    form.egress[0].inject_secret = "claude".into();
    form.env.retain(|e| e.key != "LANG");
    form.env.push(editor::FormEnv {
        key: "NEW_VAR".into(),
        value: "1".into(),
        origin: None,
    });
    editor::save(&home, &form).unwrap();
    let after = file_text(&home, &name);
    for kept in [
        "# Claude Code on my main project.",
        "description = \"Claude Code, main repo\"   # shown in the menu",
        "dockerfile = \"agent/Dockerfile\"   # built from the bottles folder",
        "EDITOR = \"vi\"      # for git commit",
        "env = \"GITHUB_TOKEN\"   # from my shell",
        "# The model API, with the key injected.",
        "inject = { header = \"x-api-key\", secret = \"claude\", value = \"{secret}\" }",
        "dns = [\"192.0.2.53\"]   # the corp resolver",
        "\"git.corp.test\" = \"192.0.2.10\"",
        "accept_leaks = [\"host\"]",
        "gvisor = false",
    ] {
        assert!(after.contains(kept), "lost {kept:?}:\n{after}");
    }
    assert!(
        !after.contains("gitconfig") && !after.contains("LANG"),
        "{after}"
    );
    assert!(
        after.contains("[secrets.claude]") && !after.contains("[secrets.anthropic]"),
        "{after}"
    );
    let m = manifest::load(&home, &name).unwrap();
    assert_eq!(m.mounts.len(), 1);
    assert_eq!(m.env.get("NEW_VAR").map(String::as_str), Some("1"));
    let claude = m.secrets.iter().find(|s| s.name == "claude").unwrap();
    assert_eq!(claude.placeholder_env.as_deref(), Some("ANTHROPIC_API_KEY"));
    assert_eq!(m.egress[0].ports, vec![443]);
    assert_ne!(before, after);
}

#[test]
fn the_form_says_what_it_keeps_as_written() {
    let (_tmp, home, name) = home_with("claude-code.toml");
    let form = editor::open(&home, &name).unwrap();
    for k in [
        "backend",
        "supervise",
        "git_gate",
        "dns",
        "egress[0].ports",
        "egress[0].inject.value",
        "egress[1].dlp",
        "secrets.github.env",
        "tls.extra_roots",
        "hosts",
        "resources.cpus",
        "isolation.gvisor",
    ] {
        assert!(
            form.kept.contains(&k.to_string()),
            "{k} not in {:?}",
            form.kept
        );
    }
    assert!(!form
        .kept
        .iter()
        .any(|k| k.starts_with("env") || k == "description"));
    let s = form.secrets.iter().find(|s| s.name == "github").unwrap();
    assert_eq!(s.source, "env GITHUB_TOKEN");
}

#[test]
fn an_unparseable_file_is_refused_and_never_overwritten() {
    let (_tmp, home, name) = home_with("minimal.toml");
    let path = home.bottles_dir().join(format!("{name}.toml"));
    let broken = "# mine\n[agent]\ntemplate = \"busybox\nnext = 1\n";
    fs::write(&path, broken).unwrap();
    match editor::open(&home, &name) {
        Err(OpenError::Unparseable {
            line, column, text, ..
        }) => {
            assert_eq!(line, 3, "{column}");
            assert_eq!(text, broken);
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    // A form sent anyway (stale, or forged) is refused, and the file stays.
    let form = BottleForm {
        name: name.clone(),
        template: "busybox".into(),
        revision: "0000000000000000".into(),
        ..Default::default()
    };
    let errs = editor::save(&home, &form).unwrap_err();
    assert_eq!(errs[0].field, "form", "{errs:?}");
    assert_eq!(fs::read_to_string(&path).unwrap(), broken);
    assert!(!home.bottles_dir().join(format!("{name}.toml.bak")).exists());
    // The text editor can fix it: invalid text is refused, valid text saved.
    let t = editor::open_text(&home, &name).unwrap();
    let errs = editor::save_text(&home, &name, "[agent\n", &t.revision).unwrap_err();
    assert!(errs[0].message.contains(":1:"), "{errs:?}");
    assert_eq!(fs::read_to_string(&path).unwrap(), broken);
    let fixed = "# mine\n[agent]\ntemplate = \"busybox\"\n";
    editor::save_text(&home, &name, fixed, &t.revision).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), fixed);
}

#[test]
fn a_file_changed_since_opening_is_not_overwritten() {
    let (_tmp, home, name) = home_with("codex.toml");
    let mut form = editor::open(&home, &name).unwrap();
    let path = home.bottles_dir().join(format!("{name}.toml"));
    let edited_by_hand = file_text(&home, &name).replace("\"Codex\"", "\"Codex (hand)\"");
    fs::write(&path, &edited_by_hand).unwrap();
    form.description = "from the form".into();
    let errs = editor::save(&home, &form).unwrap_err();
    assert!(errs[0].message.contains("changed on disk"), "{errs:?}");
    assert_eq!(fs::read_to_string(&path).unwrap(), edited_by_hand);
    // "New bottle" with the name of an existing one.
    let new = BottleForm {
        name: name.clone(),
        template: "busybox".into(),
        ..Default::default()
    };
    let errs = editor::save(&home, &new).unwrap_err();
    assert_eq!(errs[0].field, "name");
    assert_eq!(fs::read_to_string(&path).unwrap(), edited_by_hand);
}

#[test]
fn errors_point_at_the_form_field_and_write_nothing() {
    let (_tmp, home, name) = home_with("claude-code.toml");
    let before = file_text(&home, &name);
    let form = editor::open(&home, &name).unwrap();
    type Change = Box<dyn Fn(&mut BottleForm)>;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|f| f.egress[1].host = "Not A Host".into()),
            "egress-1",
        ),
        (
            Box::new(|f| f.workspace = "relative/path".into()),
            "workspace",
        ),
        (
            Box::new(|f| f.mounts[0].container = "/etc/bottlebar".into()),
            "mount-0",
        ),
        (Box::new(|f| f.env[1].key = "1BAD".into()), "env-1"),
        (
            Box::new(|f| f.secrets[0].name = "Bad Name".into()),
            "secrets-0",
        ),
        (
            Box::new(|f| f.dockerfile = "missing/Dockerfile".into()),
            "dockerfile",
        ),
        (
            Box::new(|f| f.agent_command = "sh -c 'unclosed".into()),
            "agent_command",
        ),
        (Box::new(|f| f.env.push(f.env[0].clone())), "env-2"),
        // A value for a secret that comes from an env var.
        (Box::new(|f| f.secrets[1].value = "x".into()), "secrets-1"),
    ];
    for (change, field) in cases {
        let mut f = form.clone();
        change(&mut f);
        let errs = editor::save(&home, &f).expect_err(field);
        assert_eq!(errs[0].field, field, "{errs:?}");
        assert_eq!(file_text(&home, &name), before);
    }
}

#[test]
fn a_new_bottle_and_the_built_in_demo_are_written_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let home = Home::at(tmp.path());
    let mut form = editor::open(&home, "").unwrap();
    form.name = "fresh".into();
    form.egress.push(FormRule {
        host: "api.example.com".into(),
        inject_secret: "api".into(),
        ..Default::default()
    });
    form.secrets.push(editor::FormSecret {
        name: "api".into(),
        placeholder_env: "API_KEY".into(),
        ..Default::default()
    });
    editor::save(&home, &form).unwrap();
    let m = manifest::load(&home, "fresh").unwrap();
    assert_eq!(m.egress[0].inject.as_ref().unwrap().render("x"), "Bearer x");
    assert!(file_text(&home, "fresh").starts_with("# Written by the Bottlebar app"));
    // The demo has no file: editing it writes the built-in text, edited.
    let mut demo = editor::open(&home, "demo").unwrap();
    demo.description = "my demo".into();
    editor::save(&home, &demo).unwrap();
    let text = file_text(&home, "demo");
    assert!(text.starts_with("# The built-in demo bottle"), "{text}");
    assert!(text.contains("description = \"my demo\""));
}
