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
            origin: None,
        }],
        egress: vec![FormRule {
            host: "api.example.com".into(),
            methods: "GET, POST".into(),
            paths: "/v1/".into(),
            inject_secret: "api".into(),
            inject_header: "authorization".into(),
            origin: None,
        }],
        env: vec![FormEnv {
            key: "EDITOR".into(),
            value: "vi".into(),
            origin: None,
        }],
        secrets: vec![FormSecret {
            name: "api".into(),
            placeholder_env: "API_KEY".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn a_new_form_is_written_as_toml_the_cli_accepts_and_reads_back_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let home = Home::at(tmp.path());
    save(&home, &form()).unwrap();
    let m = manifest::load(&home, "work").unwrap();
    assert_eq!(m.mounts[0].container, WORKSPACE_TARGET);
    assert_eq!(m.agent_command, vec!["claude", "--verbose"]);
    assert_eq!(m.egress[0].methods, vec!["GET", "POST"]);
    assert_eq!(m.egress[0].inject.as_ref().unwrap().render("x"), "Bearer x");
    assert!(matches!(
        m.secrets[0].source,
        manifest::SecretSource::Keychain
    ));
    let back = open(&home, "work").unwrap();
    let mut expected = form();
    expected.workspace_origin = Some(0);
    expected.mounts[0].origin = Some(1);
    expected.egress[0].origin = Some(0);
    expected.env[0].origin = Some("EDITOR".into());
    expected.secrets[0].origin = Some("api".into());
    expected.secrets[0].source = "keychain".into();
    expected.revision = back.revision.clone();
    expected.kept = vec!["egress[0].inject.value".into()];
    assert_eq!(back, expected);
}

#[test]
fn saving_reports_the_cli_error_for_the_field_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let home = Home::at(tmp.path());
    let mut f = form();
    f.egress[0].host = "Not A Host".into();
    let errs = save(&home, &f).unwrap_err();
    assert_eq!(
        (errs[0].field.as_str(), errs[0].key.as_str()),
        ("egress-0", "egress[0]"),
        "{errs:?}"
    );
    assert!(
        errs[0].message.contains("not a valid host name"),
        "{errs:?}"
    );
    f.egress[0].host = "api.example.com".into();
    f.name = "Bad Name".into();
    assert_eq!(save(&home, &f).unwrap_err()[0].field, "name");
    let files = std::fs::read_dir(home.bottles_dir())
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(files, 0);
}

#[test]
fn manifest_keys_map_to_the_rows_they_were_written_from() {
    let layout = Layout {
        mounts: vec!["mount-1".into(), "workspace".into(), "mount-0".into()],
        egress: vec!["egress-2".into(), "egress-0".into()],
        env: vec![("PATH".into(), "env-3".into())],
        secrets: vec![("api".into(), "secrets-1".into())],
    };
    for (key, field) in [
        ("name", "name"),
        ("description", "description"),
        ("agent", "dockerfile"),
        ("agent.template", "template"),
        ("agent.context", "dockerfile"),
        ("agent.command[2]", "agent_command"),
        ("mounts[1].host", "workspace"),
        ("mounts[2]", "mount-0"),
        ("mounts[9].host", "form"),
        ("egress[1].inject.secret", "egress-0"),
        ("env.PATH", "env-3"),
        ("secrets.api.placeholder_env", "secrets-1"),
        ("dns[0]", "form"),
        ("", "form"),
    ] {
        assert_eq!(field_for_key(key, &layout), field, "{key}");
    }
}
