//! The real app window under Xvfb, driven through WebKitWebDriver, on the
//! real Docker Engine: launch the demo bottle from
//! the window, watch the timeline reach ready, see the keep-alive and the
//! egress activity, see an agent killed outside the app noticed, stop it; then a launch made to fail shows the failure
//! view and records a notification. Screenshots of each view are written to
//! `$BOTTLEBAR_SCREENSHOTS` (scripts/test: docs/screenshots).
//!
//! Needs DISPLAY (scripts/test runs it under xvfb-run), WebKitWebDriver and
//! Docker; without them it fails rather than pass by not running.

mod window;

use fantoccini::Locator;
use serde_json::json;
use std::time::{Duration, Instant};
use window::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_window_launches_watches_stops_and_reports_failure() {
    let home = tempfile::tempdir().unwrap();
    // Nothing of an earlier run may be left under the demo's names.
    for n in ["bottlebar-demo-agent", "bottlebar-demo-sidecar"] {
        docker(&["rm", "-f", n]);
    }
    for n in ["bottlebar-demo-internal", "bottlebar-demo-egress"] {
        docker(&["network", "rm", n]);
    }

    let (c, _driver) = open_app(home.path()).await;

    // Tall enough that every view fits in one screenshot.
    let _ = c.set_window_size(820, 1300).await;

    // The bottle list.
    wait_css(&c, "#bottles .bottle[data-name='demo']", 30).await;
    shot(&c, "bottles").await;

    // The window is made when it opens (at start here, as from the menu
    // bar later), and its page says how long it took to show its state.
    let shown = wait_css(&c, "html[data-shown-in-ms]", 10)
        .await
        .attr("data-shown-in-ms")
        .await
        .unwrap()
        .unwrap_or_default();
    let shown: u64 = shown.parse().expect("a number of milliseconds");
    println!("the window showed its state {shown} ms after it was made");
    assert!(shown < 5_000, "{shown} ms from made to shown");

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
    // "Verify now" reruns it on the running bottle (`click` waits for the
    // button to be enabled: the launch call can return after its events).
    click(&c, "#verify").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let banner = text(&c, "#banner").await;
        if banner.contains("isolated") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Verify now never reported; the banner says {banner:?}"
        );
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

    // The list follows every running bottle's activity live too: a request
    // made while it shows is counted there without the window reading again.
    go(&c, "#/").await;
    let counters = "#bottles .bottle[data-name='demo'] .egress-counters";
    let denied = |t: &str| {
        t.split(", ")
            .nth(1)?
            .strip_suffix(" denied")?
            .parse::<u32>()
            .ok()
    };
    let before = denied(&text(&c, counters).await).expect("counters shown");
    assert!(before >= 1, "the denied request is counted");
    // Made a while after `docker exec` starts, which is an engine event
    // (the app reads the states again then, and the list is drawn anew):
    // only the entry itself can draw the new count.
    let later = "sleep 3; wget -q -O - http://example.org/again; sleep 60";
    let out = docker(&["exec", "-d", "bottlebar-demo-agent", "sh", "-c", later]);
    assert!(out.status.success(), "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while denied(&text(&c, counters).await) != Some(before + 1) {
        let now = text(&c, counters).await;
        assert!(
            Instant::now() < deadline,
            "the list never counted it: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    go(&c, "#/bottle/demo").await;
    wait_css(&c, "#activity tr.entry", 10).await;

    // An engine event redraws the page over itself: the elements it keeps
    // are the same elements, so a click under way (pressed before the
    // redraw, released after) still lands, and the focus stays put.
    let agent = c
        .find(Locator::Css("#detail button[data-action='agent']"))
        .await
        .unwrap();
    c.execute(
        "document.querySelector('#detail-state').dataset.drawnBefore = '1'; document.querySelector('#activity-filter').focus();",
        vec![],
    )
    .await
    .unwrap();
    invoke(&c, "list_bottles", json!({})).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while c
        .find(Locator::Css("#detail-state[data-drawn-before]"))
        .await
        .is_ok()
    {
        assert!(Instant::now() < deadline, "bottles-changed never redrew");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        agent.is_enabled().await.map_err(|e| format!("{e:?}")),
        Ok(true),
        "the redraw replaced the Start agent button"
    );
    let focused = c
        .execute("return document.activeElement.id", vec![])
        .await
        .unwrap();
    assert_eq!(
        focused,
        json!("activity-filter"),
        "the redraw took the focus"
    );

    // The agent stopped outside the app: the engine's event stream (the
    // app polls nothing on Docker) wakes it, the page redraws, and the
    // user is told.
    let running = text(&c, "#detail-state").await;
    assert!(docker(&["kill", "bottlebar-demo-agent"]).status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let notes = invoke(&c, "notifications", json!({})).await;
        let told = notes
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["title"] == "Bottle demo stopped unexpectedly");
        if told && text(&c, "#detail-state").await != running {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "an agent killed outside the app was never noticed: {notes}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

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
    go(&c, "#/edit/").await;
    let name = wait_css(&c, "#f-name", 10).await;
    name.send_keys("Bad Name").await.unwrap();
    click(&c, "#save").await;
    wait_css(&c, ".field-error[data-for='name']:not(:empty)", 10).await;
    assert!(text(&c, ".field-error[data-for='name']")
        .await
        .contains("Bad Name"));
    shot(&c, "editor").await;

    // Settings: the backend in use and why.
    go(&c, "#/settings").await;
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
