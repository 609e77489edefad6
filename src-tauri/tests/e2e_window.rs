//! The real app window under Xvfb, driven through tauri-driver and
//! WebKitWebDriver, on the real Docker Engine: launch the demo bottle from
//! the window, watch the timeline reach ready, see the keep-alive and the
//! egress activity, stop it; then a launch made to fail shows the failure
//! view and records a notification. Screenshots of each view are written to
//! `$BOTTLEBAR_SCREENSHOTS` (scripts/test: docs/screenshots).
//!
//! Needs DISPLAY (scripts/test runs it under xvfb-run), `tauri-driver` and
//! Docker; without them it fails rather than pass by not running.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn sidecar_bin() -> PathBuf {
    let p = std::env::var_os("BOTTLEBAR_SIDECAR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("x86_64-unknown-linux-gnu/release/bottlebar-sidecar"));
    assert!(
        p.is_file(),
        "static sidecar not found at {} (scripts/build-sidecar)",
        p.display()
    );
    p
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Saves a screenshot of the element `css` (the view may be taller than the window).
async fn shot_of(c: &Client, name: &str, css: &str) {
    let el = wait_css(c, css, 10).await;
    match el.screenshot().await {
        Ok(png) => std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap(),
        Err(_) => shot(c, name).await,
    }
}

fn screenshots_dir() -> PathBuf {
    let dir = std::env::var_os("BOTTLEBAR_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
}

/// Waits for `css` to match. Polls rather than using WebDriver's wait: the
/// window re-renders on state changes, and a stale match is just a retry.
async fn wait_css(c: &Client, css: &str, secs: u64) -> fantoccini::elements::Element {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(el) = c.find(Locator::Css(css)).await {
            return el;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // What the window showed instead, for whoever reads the failure.
    let path = target_dir().join("e2e-window-timeout.png");
    if let Ok(png) = c.screenshot().await {
        let _ = std::fs::write(&path, png);
    }
    let text = match c.find(Locator::Css("body")).await {
        Ok(b) => b.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    panic!(
        "waiting {secs} s for {css}\nscreenshot: {}\npage text:\n{text}",
        path.display()
    )
}

/// The text of `css`. The window re-renders when states change, so an
/// element can go stale between finding and reading it: find it again.
async fn text(c: &Client, css: &str) -> String {
    let mut last = None;
    for _ in 0..20 {
        match c.find(Locator::Css(css)).await {
            Ok(el) => match el.text().await {
                Ok(t) => return t,
                Err(e) => last = Some(e),
            },
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("reading {css}: {last:?}")
}

/// Clicks `css`, finding it again if a re-render made it stale.
async fn click(c: &Client, css: &str) {
    let mut last = None;
    for _ in 0..20 {
        match c.find(Locator::Css(css)).await {
            Ok(el) => match el.click().await {
                Ok(()) => return,
                Err(e) => last = Some(e),
            },
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("clicking {css}: {last:?}")
}

async fn invoke(c: &Client, cmd: &str, args: serde_json::Value) -> serde_json::Value {
    c.execute_async("const [cmd, args, done] = arguments; window.__TAURI__.core.invoke(cmd, args).then(done, (e) => done({ error: String(e) }));", vec![json!(cmd), args]).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_window_launches_watches_stops_and_reports_failure() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "the window test needs a display: run it under xvfb-run (scripts/test does)"
    );
    assert!(
        docker(&["version"]).status.success(),
        "the window test needs Docker (scripts/setup starts it)"
    );
    let home = tempfile::tempdir().unwrap();
    // Nothing of an earlier run may be left under the demo's names.
    for n in ["bottlebar-demo-agent", "bottlebar-demo-sidecar"] {
        docker(&["rm", "-f", n]);
    }
    for n in ["bottlebar-demo-internal", "bottlebar-demo-egress"] {
        docker(&["network", "rm", n]);
    }

    let port = free_port();
    let native = free_port();
    let driver = Command::new("tauri-driver")
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .env("BOTTLEBAR_HOME", home.path())
        .env("BOTTLEBAR_SIDECAR_BIN", sidecar_bin())
        .env("BOTTLEBAR_BACKEND", "docker")
        // The launch's self-test probes this test's own fake internet.
        .env("BOTTLEBAR_TEST_RUN", "1")
        .env(
            "BOTTLEBAR_SELFTEST_TARGETS",
            &bottlebar_e2e::fake_internet().targets_file,
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "tauri-driver (cargo install tauri-driver --version ^2 --locked; scripts/test does)",
        );
    let _driver = Killed(driver);

    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("wry"));
    caps.insert(
        "tauri:options".into(),
        json!({ "application": env!("CARGO_BIN_EXE_bottlebar") }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let c = loop {
        match ClientBuilder::native()
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("no WebDriver session: {e}"),
        }
    };

    // Tall enough that every view fits in one screenshot.
    let _ = c.set_window_size(820, 1300).await;

    // The bottle list.
    wait_css(&c, "#bottles .bottle[data-name='demo']", 30).await;
    shot(&c, "bottles").await;

    // Launch from the window; the timeline reaches ready.
    c.find(Locator::Css(
        "button[data-action='launch'][data-name='demo']",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    wait_css(&c, "#timeline-status.ready", 180).await;
    assert!(text(&c, "#timeline-status").await.starts_with("Ready"));
    let steps = c.find_all(Locator::Css("#timeline li.step")).await.unwrap();
    assert!(steps.len() >= 8, "{} steps", steps.len());
    wait_css(&c, "#keepalive[data-status='alive']", 30).await;
    // The self-test ran as the last step, and the isolation panel says when.
    wait_css(&c, "#timeline li.step.finished[data-step='self-test']", 5).await;
    wait_css(&c, "#isolation[data-status='isolated']", 10).await;
    assert!(text(&c, "#isolation-at").await.starts_with("20"));
    shot(&c, "launch").await;
    // "Verify now" reruns it on the running bottle.
    click(&c, "#verify").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !text(&c, "#banner").await.contains("isolated") {
        assert!(Instant::now() < deadline, "Verify now never reported");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Egress activity: a denied request from the agent shows up live.
    let out = docker(&[
        "exec",
        "bottlebar-demo-agent",
        "wget",
        "-q",
        "-O",
        "-",
        "http://example.org/",
    ]);
    assert!(!out.status.success());
    wait_css(&c, "#activity tr.entry", 20).await;
    let row = text(&c, "#activity tr.entry").await;
    assert!(row.contains("example.org") && row.contains("deny"), "{row}");
    shot_of(&c, "activity", "#activity").await;

    // Stop.
    click(&c, "#detail button[data-action='stop']").await;
    wait_css(&c, "#detail-state", 5).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while text(&c, "#detail-state").await != "Not launched" {
        assert!(Instant::now() < deadline, "the bottle never stopped");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // A launch made to fail: another container holds the sidecar's name
    // (made from the demo's own agent image: nothing is pulled).
    let images = docker(&[
        "images",
        "-q",
        "--filter",
        "label=bottlebar.bottle=demo",
        "--filter",
        "label=bottlebar.role=agent",
    ]);
    let image = String::from_utf8_lossy(&images.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        docker(&[
            "create",
            "--name",
            "bottlebar-demo-sidecar",
            "--label",
            "bottlebar-test=1",
            // Containers inherit their image's labels; this one must not
            // pass for a resource of the demo.
            "--label",
            "bottlebar.bottle=e2e-squatter",
            &image,
            "sh"
        ])
        .status
        .success(),
        "creating the squatter from {image:?}"
    );
    click(&c, "#detail button[data-action='launch']").await;
    wait_css(&c, "#failure", 120).await;
    assert_eq!(text(&c, "#failure-step").await, "create-sidecar");
    assert!(text(&c, "#failure-stderr").await.contains("already in use"));
    shot_of(&c, "failure", "#failure").await;
    let notes = invoke(&c, "notifications", json!({})).await;
    assert!(
        notes
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["title"] == "Bottle demo failed to launch"
                && n["body"].as_str().unwrap().contains("create-sidecar")),
        "{notes}"
    );
    docker(&["rm", "-f", "bottlebar-demo-sidecar"]);

    // The editor shows the core's errors next to the fields.
    c.goto(&format!(
        "{}#/edit/",
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .split('#')
            .next()
            .unwrap()
    ))
    .await
    .unwrap();
    let name = wait_css(&c, "#f-name", 10).await;
    name.send_keys("Bad Name").await.unwrap();
    click(&c, "#save").await;
    wait_css(&c, ".field-error[data-for='name']:not(:empty)", 10).await;
    assert!(text(&c, ".field-error[data-for='name']")
        .await
        .contains("Bad Name"));
    shot(&c, "editor").await;

    // Settings: the backend in use and why.
    c.goto(&format!(
        "{}#/settings",
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .split('#')
            .next()
            .unwrap()
    ))
    .await
    .unwrap();
    wait_css(&c, "#settings .engine[data-kind='docker']", 20).await;
    assert_eq!(text(&c, "#default-backend").await, "docker");
    // The window's secrets store is the one the tests run with.
    if std::env::var_os("BOTTLEBAR_EXPECT_SECRET_SERVICE").is_some() {
        assert!(text(&c, "#secrets-store")
            .await
            .starts_with("Secret Service"));
    }
    shot(&c, "settings").await;

    let _ = invoke(&c, "stop_bottle", json!({ "name": "demo" })).await;
    c.close().await.unwrap();
}
