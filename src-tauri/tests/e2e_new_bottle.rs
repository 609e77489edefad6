//! New bottle from the Claude Code template in the real window (Xvfb,
//! WebKitWebDriver, real Docker): a workspace folder and a key → the saved
//! file is the template's, the key is in the keychain and not in the file
//! → Save & Launch builds the image (on the Debian base made on this
//! machine, `settings.toml` `[new_bottles]`) and reaches ready; *Start
//! agent* then opens Claude Code in the window's terminal, at its prompt.

mod window;

use bottlebar_core::name::BottleName;
use bottlebar_e2e::{Harness, Upstream};
use serde_json::json;
use std::time::{Duration, Instant};
use window::*;

const KEY: &str = "sk-ant-api03-window-test-key-5d2c8e";

#[tokio::test(flavor = "multi_thread")]
async fn a_claude_code_bottle_from_the_template_with_its_key_in_the_keychain() {
    let h = Harness::new();
    let home = &h.home;
    let base = bottlebar_e2e::debian_base();
    // This machine's own CAs (a network that inspects TLS): npm needs them.
    let roots: Vec<String> = bottlebar_e2e::machine_roots()
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    std::fs::write(
        home.path().join("settings.toml"),
        format!(
            "[new_bottles]\nbase = {base:?}\nextra_roots = [{}]\n",
            roots.join(", ")
        ),
    )
    .unwrap();
    let parent = tempfile::tempdir().unwrap();
    // Named so that scripts/test sweeps what a failed run leaves (`e2e-*`).
    let workspace = parent.path().join("E2E Window New");
    std::fs::create_dir(&workspace).unwrap();
    std::fs::set_permissions(
        &workspace,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let name = "e2e-window-new";
    for n in [
        format!("bottlebar-{name}-agent"),
        format!("bottlebar-{name}-sidecar"),
    ] {
        docker(&["rm", "-f", &n]);
    }
    for n in [
        format!("bottlebar-{name}-internal"),
        format!("bottlebar-{name}-egress"),
    ] {
        docker(&["network", "rm", &n]);
    }

    // Its image is built in this test (from cached layers where they exist),
    // so the window shows a build.
    let images = docker(&[
        "images",
        "-q",
        "--filter",
        &format!("label=bottlebar.bottle={name}"),
    ]);
    for id in String::from_utf8_lossy(&images.stdout).split_whitespace() {
        docker(&["rmi", "-f", id]);
    }

    let (c, _driver) = open_app(home.path()).await;
    let _ = c.set_window_size(820, 1300).await;
    wait_css(&c, "#bottles", 30).await;
    click(&c, "#nav-new").await;
    wait_css(
        &c,
        "#new-bottle label.template.chosen[data-template='claude-code']",
        10,
    )
    .await;
    let ws = wait_css(&c, "#n-workspace", 5).await;
    ws.send_keys(&workspace.display().to_string())
        .await
        .unwrap();
    let suggested = c
        .execute("return document.querySelector('#n-name').value", vec![])
        .await
        .unwrap();
    assert_eq!(suggested, json!(name), "the name comes from the folder");
    wait_css(&c, "#n-key", 5)
        .await
        .send_keys(KEY)
        .await
        .unwrap();
    click(&c, "#new-bottle input[value='npm']").await;
    shot_of(&c, "new-bottle", "#new-bottle").await;
    click(&c, "#n-save").await;

    // The file is the template's; the key is in the keychain, not the file.
    let file = home.path().join(format!("bottles/{name}.toml"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !file.exists() {
        assert!(Instant::now() < deadline, "no bottle file");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = std::fs::read_to_string(&file).unwrap();
    for needle in [
        "template = \"claude-code\"",
        "keychain = true",
        "placeholder_env = \"ANTHROPIC_API_KEY\"",
        "host = \"api.anthropic.com\"",
        "host = \"registry.npmjs.org\"",
        "supervise = true",
        &format!("base = {base:?}"),
        &format!("host = {:?}", workspace.display().to_string()),
    ] {
        assert!(text.contains(needle), "no `{needle}` in\n{text}");
    }
    assert!(!text.contains(KEY), "the key is in the file");
    let bottle = BottleName::parse(name).unwrap();
    assert_eq!(
        bottlebar_core::keychain::read(&bottle, "anthropic")
            .unwrap()
            .as_deref(),
        Some(KEY),
        "the key is in the keychain"
    );

    // Save & Launch: the bottle's page follows the build to ready.
    wait_css(&c, &format!("#detail[data-name='{name}']"), 20).await;
    wait_css(&c, "#timeline li.step[data-step='build-agent-image']", 30).await;
    wait_css(&c, "#timeline-status.ready", 600).await;
    // The build's output was streamed into the timeline, line by line (it
    // stays there, in the step's closed details, once the step is done).
    let streamed = c
        .execute(
            "return document.querySelector(\"#timeline li.step[data-step='build-agent-image'] pre.step-output\")?.textContent || ''",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        streamed
            .as_str()
            .is_some_and(|log| log.contains("Step ") && log.contains("Successfully built")),
        "no build output in the timeline: {streamed}"
    );
    shot(&c, "new-bottle-launched").await;
    let version = docker(&[
        "exec",
        &format!("bottlebar-{name}-agent"),
        "claude",
        "--version",
    ]);
    assert!(
        String::from_utf8_lossy(&version.stdout).contains("Claude Code"),
        "{version:?}"
    );
    // Claude Code talks to its API as soon as it starts: every host the
    // bottle allows is pinned to this test's own upstream first, so nothing
    // is looked up or contacted outside the machine.
    let upstream = Upstream::start(
        &format!("bottlebar-test-{name}-upstream"),
        &format!("bottlebar-{name}-egress"),
        "new-bottle-upstream",
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let allowed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("host = \"")?.strip_suffix('"'))
        .filter(|host| !host.starts_with('/'))
        .collect();
    assert!(allowed.contains(&"api.anthropic.com"), "{allowed:?}");
    let pins: Vec<(&str, &str)> = allowed
        .iter()
        .map(|host| (*host, upstream.ip.as_str()))
        .collect();
    h.pin_hosts(name, &text, &pins, || true);

    // Start agent: a tab in the window's terminal, straight at Claude
    // Code's prompt (no sign-in, no onboarding, no trust question).
    click(
        &c,
        &format!("button[data-action='agent'][data-name='{name}']:not([disabled])"),
    )
    .await;
    wait_css(
        &c,
        "#term-tabs li[data-kind='agent'][aria-selected='true']",
        20,
    )
    .await;
    wait_row(&c, "Claude Code's prompt", 60, |r| {
        r.contains("for shortcuts")
    })
    .await;
    let rows = screen(&c).await.join("\n");
    for asked in [
        "Select login method",
        "trust this folder",
        "Choose the text style",
    ] {
        assert!(!rows.contains(asked), "it asked `{asked}`:\n{rows}");
    }
    shot_of(&c, "terminal-claude", "#terminal").await;
    let _ = invoke(&c, "stop_bottle", json!({ "name": name })).await;
    let _ = bottlebar_core::keychain::delete(&bottle, "anthropic");
    c.close().await.unwrap();
}
