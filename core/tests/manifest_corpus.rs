//! Every manifest in `tests/manifests/bad/` must be rejected with the error its
//! first line names (`# expect: <text>`), and the error must name the file.
//! Good manifests must load.

use bottlebar_core::home::Home;
use bottlebar_core::manifest::{self, AgentImage, LoadError};
use std::fs;
use std::path::Path;

fn home_with(name: &str, text: &str) -> (tempfile::TempDir, Home) {
    let tmp = tempfile::tempdir().unwrap();
    let home = Home::at(tmp.path());
    fs::create_dir_all(home.bottles_dir()).unwrap();
    fs::write(home.bottles_dir().join(format!("{name}.toml")), text).unwrap();
    (tmp, home)
}

#[test]
fn every_bad_manifest_is_rejected_with_its_expected_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests/bad");
    let mut checked = 0;
    let mut failures = Vec::new();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let text = fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{name}: first line must be `# expect: ...`"));
        let (_tmp, home) = home_with(&name, &text);
        match manifest::load(&home, &name) {
            Ok(_) => failures.push(format!(
                "{name}: accepted, expected error containing {expect:?}"
            )),
            Err(e) => {
                let msg = e.to_string();
                let file =
                    home.bottle_file(&bottlebar_core::name::BottleName::parse(&name).unwrap());
                if !msg.starts_with(&file.display().to_string()) {
                    failures.push(format!(
                        "{name}: error does not start with the file path: {msg}"
                    ));
                } else if !msg.contains(expect) {
                    failures.push(format!("{name}: expected {expect:?} in:\n    {msg}"));
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 30, "corpus too small: {checked}");
    assert!(
        failures.is_empty(),
        "{} of {checked} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_complete_manifest_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    fs::create_dir(&work).unwrap();
    let gitconfig = tmp.path().join("gitconfig");
    fs::write(&gitconfig, "[user]\n").unwrap();
    let home = Home::at(tmp.path().join("home"));
    fs::create_dir_all(home.bottles_dir().join("agent")).unwrap();
    fs::write(
        home.bottles_dir().join("agent/Dockerfile"),
        "FROM scratch\n",
    )
    .unwrap();
    let text = format!(
        r#"
description = "full"
backend = "docker"
supervise = true

[agent]
dockerfile = "agent/Dockerfile"

[[mounts]]
host = "{work}"
container = "/workspace"

[[mounts]]
host = "{gitconfig}"
container = "/home/agent/.gitconfig"
readonly = true

[env]
EDITOR = "vi"

[[egress]]
host = "api.example.com"
ports = [443]
methods = ["GET", "POST"]
paths = ["/v1/"]

[resources]
cpus = 2
memory = "4g"
"#,
        work = work.display(),
        gitconfig = gitconfig.display()
    );
    fs::write(home.bottles_dir().join("full.toml"), text).unwrap();
    let m = manifest::load(&home, "full").unwrap();
    assert_eq!(m.backend, Some(manifest::BackendKind::Docker));
    assert!(m.supervise);
    assert_eq!(m.mounts.len(), 2);
    assert!(!m.mounts[0].is_file && m.mounts[1].is_file && m.mounts[1].readonly);
    assert_eq!(m.resources.memory_mib, Some(4096));
    assert!(
        matches!(m.agent, AgentImage::Dockerfile { ref context, .. } if context.ends_with("agent"))
    );
    assert_eq!(m.egress[0].paths, vec!["/v1/"]);
}

#[test]
fn bottles_load_only_from_the_bottles_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let home = Home::at(tmp.path().join("home"));
    // A manifest in the current directory or elsewhere is never read.
    fs::write(
        tmp.path().join("evil.toml"),
        "[agent]\ntemplate = \"busybox\"\n",
    )
    .unwrap();
    assert!(matches!(
        manifest::load(&home, "evil"),
        Err(LoadError::NotFound { .. })
    ));
    // Names that would escape the directory are not names.
    for bad in ["../evil", "/tmp/evil", "evil.toml", "Evil"] {
        assert!(
            matches!(manifest::load(&home, bad), Err(LoadError::Name(_))),
            "{bad}"
        );
    }
}

#[test]
fn bad_file_names_are_reported_by_listing() {
    let (_tmp, home) = home_with("Bad_Name", "[agent]\ntemplate = \"busybox\"\n");
    let (names, problems) = manifest::list_names(&home);
    assert_eq!(
        names.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
        vec!["demo"]
    );
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("Bad_Name.toml"), "{problems:?}");
}

#[test]
fn a_user_demo_file_overrides_the_built_in_demo() {
    let (_tmp, home) = home_with(
        "demo",
        "description = \"mine\"\n[agent]\ntemplate = \"busybox\"\n",
    );
    let m = manifest::load(&home, "demo").unwrap();
    assert_eq!(m.description.as_deref(), Some("mine"));
    assert!(m.egress.is_empty());
}
