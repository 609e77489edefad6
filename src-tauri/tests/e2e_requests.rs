//! The Requests view in the real app window (Xvfb, WebKitWebDriver, real
//! Docker bottle): an agent asks the supervise MCP server for a host; the
//! app raises a notification with the four answers as buttons (received by
//! a freedesktop notification server of the test's own) and shows the
//! request, the agent's markup as text; "Allow once" in the window lets the
//! agent's request through, once; a click on the next notification opens
//! the Requests view and its "Allow for 1 hour" button answers it; the
//! page follows the desktop's light/dark style (a portal of the test's
//! own), with the window open and into a window made again; ⌘W
//! closes the window and releases its web engine, the app then gives back
//! a quarter of its memory or more and ends WebKit's network process (no
//! process is left under it) and no thread of it wakes on a timer, and the next notification's click
//! makes the window afresh with the request shown. The
//! screenshot of the view goes to the README.
//!
//! The host the agent asks for is pinned to the project's own upstream on
//! the bottle's egress network; nothing else is contacted.

mod window;

use bottlebar_e2e::desktop_portal::{scheme, DesktopPortal, Version};
use bottlebar_e2e::{engine, testkit_bin, Harness, Upstream};
use fantoccini::Locator;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use window::*;

const NAME: &str = "e2e-win-req";
const HOST: &str = "pkg.bottlebar.test";
const REASON: &str = "<img src=x onerror=\"document.title='owned'\"><b>need the package index</b>";

/// How often each thread of process `app` woke since `before` (a
/// `thread_wakeups` reading), by name, busiest first.
fn wakeups_by_thread(app: u32, before: &std::collections::HashMap<u32, u64>) -> Vec<(String, u64)> {
    let mut woken: Vec<(String, u64)> = bottlebar_e2e::procs::thread_wakeups(&[app])
        .into_iter()
        .map(|(tid, now)| {
            let name =
                std::fs::read_to_string(format!("/proc/{app}/task/{tid}/comm")).unwrap_or_default();
            let since = now - before.get(&tid).copied().unwrap_or(0);
            (format!("{} ({tid})", name.trim_end()), since)
        })
        .collect();
    woken.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    woken
}

/// Fetches `http://HOST/` from the agent through its proxy: the status.
fn agent_fetch() -> u64 {
    let r = engine().exec(
        &format!("bottlebar-{NAME}-agent"),
        &[
            "/opt/testkit/bottlebar-testkit",
            "fetch",
            &format!("http://{HOST}/"),
        ],
    );
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap_or(Value::Null);
    v["status"].as_u64().unwrap_or(0)
}

/// `request_egress` with `args`, from the agent (the test kit's MCP client).
fn ask(args: Value) -> bottlebar_e2e::Run {
    engine().exec(
        &format!("bottlebar-{NAME}-agent"),
        &[
            "/opt/testkit/bottlebar-testkit",
            "mcp",
            "call",
            "request_egress",
            "--args",
            &args.to_string(),
        ],
    )
}

/// Asks for `host` with `reason`, waiting a second only: the request is
/// left pending.
fn ask_and_leave_pending(host: &str, reason: &str) {
    let asked = ask(json!({ "host": host, "port": 80, "reason": reason, "wait_seconds": 1 }));
    assert!(
        asked.stdout.contains("pending"),
        "{}{}",
        asked.stdout,
        asked.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_is_notified_shown_as_text_and_approved_from_the_window() {
    // A supervised bottle with the test kit, launched by the CLI.
    let h = Harness::new();
    let kit = tempfile::tempdir().unwrap();
    std::fs::copy(testkit_bin(), kit.path().join("bottlebar-testkit")).unwrap();
    let manifest = format!(
        "supervise = true\n\n[agent]\ntemplate = \"busybox\"\n\n[[mounts]]\nhost = \"{}\"\ncontainer = \"/opt/testkit\"\nreadonly = true\n",
        kit.path().display()
    );
    h.write_bottle(NAME, &manifest);
    h.up(NAME).0.expect_ok("launching the supervised bottle");
    let token = "window-requests-upstream";
    let upstream = Upstream::start(
        &format!("bottlebar-test-{NAME}-upstream"),
        &format!("bottlebar-{NAME}-egress"),
        token,
    );
    h.pin_hosts(NAME, &manifest, &[(HOST, upstream.ip.as_str())], || true);
    assert_eq!(agent_fetch(), 403, "not allowed before anyone answers");

    // The desktop, on a bus of the test's own: a notification server, and
    // the portal whose light/dark setting the app follows (dark to start).
    let bus = notifications::Notifications::start();
    let portal = DesktopPortal::serve(bus.bus(), scheme::DARK, Version::Two);
    let (c, driver) =
        open_app_with(h.home.path(), &[("DBUS_SESSION_BUS_ADDRESS", &bus.address)]).await;
    let _ = c.set_window_size(820, 1000).await;
    wait_css(&c, &format!("#bottles .bottle[data-name='{NAME}']"), 30).await;
    // The page takes the desktop's style, and follows it when it changes.
    wait_style(&c, true, 10).await;
    portal.set_scheme(scheme::LIGHT);
    wait_style(&c, false, 10).await;

    // The agent asks, and waits for the answer.
    let asking = std::thread::spawn(|| {
        ask(
            json!({ "host": HOST, "port": 80, "methods": ["GET"], "paths": ["/"], "reason": REASON }),
        )
    });

    // A notification, recorded, names the bottle and the host.
    let deadline = Instant::now() + Duration::from_secs(20);
    let note = loop {
        let notes = invoke(&c, "notifications", json!({})).await;
        if let Some(n) = notes
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["title"] == format!("{NAME} asks for {HOST}:80"))
        {
            break n.clone();
        }
        assert!(Instant::now() < deadline, "no notification: {notes}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let body = note["body"].as_str().unwrap();
    assert!(body.contains("need the package index"), "{body}");
    assert!(body.starts_with("GET · /\n"), "the scope: {body}");
    assert!(
        !body.contains('<'),
        "markup reaches the notification: {body}"
    );
    assert_eq!(note["buttons"], json!(["once", "hour", "always", "deny"]));
    assert_eq!(note["opens"], "#/requests");
    // What the desktop received: the buttons and a click target.
    let title = format!("{NAME} asks for {HOST}:80");
    let first = bus.wait_for(&title, 0, 10).await;
    assert_eq!(
        first.actions,
        [
            "once",
            "Allow once",
            "hour",
            "Allow for 1 hour",
            "always",
            "Always allow",
            "deny",
            "Deny",
            "default",
            ""
        ],
        "{first:?}"
    );
    assert!(!first.body.contains('<'), "{first:?}");
    // The navigation counts it.
    wait_css(&c, "#requests-count:not([hidden])", 10).await;
    assert_eq!(text(&c, "#requests-count").await, "1");

    // The Requests view: the request, its countdown, the reason as text.
    go(&c, "#/requests").await;
    let card = format!("article.request[data-bottle='{NAME}']");
    wait_css(&c, &card, 20).await;
    assert_eq!(
        text(&c, &format!("{card} .host")).await,
        format!("{HOST}:80")
    );
    assert_eq!(text(&c, &format!("{card} blockquote.reason")).await, REASON);
    assert!(
        c.find_all(Locator::Css("#requests img, #requests blockquote b"))
            .await
            .unwrap()
            .is_empty(),
        "the agent's markup became markup"
    );
    assert_ne!(c.title().await.unwrap(), "owned");
    let left = text(&c, &format!("{card} .countdown")).await;
    assert!(left.ends_with('s'), "a countdown: {left}");
    shot_of(&c, "requests", "#requests").await;

    // Allow once, from the window: the agent hears it and gets through once.
    click(&c, &format!("{card} button[data-answer='once']")).await;
    let reply = asking.join().unwrap();
    let reply: Value = serde_json::from_str(reply.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {}{}", reply.stdout, reply.stderr));
    assert_eq!(reply["value"]["status"], "approved", "{reply:#}");
    assert_eq!(agent_fetch(), 200, "the approved request goes");
    assert_eq!(agent_fetch(), 403, "once means once");
    // History: who answered.
    wait_css(&c, "#history tr.past", 10).await;
    assert_eq!(
        text(&c, "#history tr.past td.outcome").await,
        "Allowed once by app"
    );
    wait_css(&c, "#no-pending", 10).await;

    // The next request is answered from its notification: a click on it
    // opens the Requests view; its "Allow for 1 hour" button answers.
    go(&c, &format!("#/bottle/{NAME}")).await;
    ask_and_leave_pending(HOST, "again");
    let second = bus.wait_for(&title, first.id, 20).await;
    assert_eq!(second.keys(), ["once", "hour", "always", "deny", "default"]);
    bus.click(second.id, "default");
    wait_css(&c, &card, 20).await;
    let url = c.current_url().await.unwrap();
    assert_eq!(url.fragment(), Some("/requests"), "{url}");
    bus.click(second.id, "hour");
    wait_css(&c, "#no-pending", 10).await;
    assert_eq!(agent_fetch(), 200);
    assert_eq!(agent_fetch(), 200, "for an hour, not once");
    go(&c, &format!("#/bottle/{NAME}")).await;
    wait_css(&c, "#grants li.grant", 20).await;
    let grant = text(&c, "#grants li.grant").await;
    assert!(
        grant.contains(HOST) && (grant.contains("1h 00m left") || grant.contains("59m")),
        "{grant}"
    );

    // A note typed to the agent survives the view being redrawn when
    // another request arrives, stays with its own request, and goes with
    // "Deny".
    go(&c, "#/requests").await;
    let denied = std::thread::spawn(|| {
        ask(json!({ "host": "first.bottlebar.test", "port": 80, "reason": "first" }))
    });
    wait_css(&c, &card, 20).await;
    let note = "use the mirror instead";
    wait_css(&c, &format!("{card} input.note"), 5)
        .await
        .send_keys(note)
        .await
        .unwrap();
    ask_and_leave_pending("second.bottlebar.test", "second");
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.find_all(Locator::Css(&card)).await.unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "the second request never showed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let typed = c
        .execute(
            "return Array.from(document.querySelectorAll('article.request'), (a) => [a.querySelector('.reason').textContent, a.querySelector('input.note').value]);",
            vec![],
        )
        .await
        .unwrap();
    let typed: Vec<(String, String)> = serde_json::from_value(typed).unwrap();
    assert!(
        typed.contains(&("first".into(), note.into()))
            && typed.contains(&("second".into(), String::new())),
        "the note moved or was lost: {typed:?}"
    );
    let first_id = c
        .execute(
            "return Array.from(document.querySelectorAll('article.request')).find((a) => a.querySelector('.reason').textContent === 'first').dataset.id;",
            vec![],
        )
        .await
        .unwrap();
    let first_id = first_id.as_str().unwrap().to_string();
    click(
        &c,
        &format!("article.request[data-id='{first_id}'] button[data-answer='deny']"),
    )
    .await;
    let reply = denied.join().unwrap();
    let reply: Value = serde_json::from_str(reply.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {}{}", reply.stdout, reply.stderr));
    assert_eq!(reply["value"]["status"], "denied", "{reply:#}");
    assert_eq!(reply["value"]["note"], note, "{reply:#}");

    // ⌘W closes the window, and it is released with its web engine: no
    // WebKit web process of the app's is left.
    let web_processes = || bottlebar_e2e::procs::web_processes(driver.process.0.id());
    assert!(web_processes() > 0, "the open window has a web process");
    // (The window may be gone before the keys are let go: that answer is
    // no failure.)
    let _ = c
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("\u{E03D}w")
        .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while web_processes() > 0 {
        assert!(
            Instant::now() < deadline,
            "the closed window's web process is still there"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Left without a window, the app gives back what the window and its
    // start left behind (`idle_memory`, once settled), WebKit's idle
    // network process included; the window is then made again from there.
    let app =
        bottlebar_e2e::procs::named(driver.process.0.id(), "bottlebar").expect("the app's process");
    let app_and_children = || bottlebar_e2e::procs::tree(app);
    let pss = || -> u64 {
        app_and_children()
            .into_iter()
            .map(bottlebar_e2e::procs::pss_kib)
            .sum()
    };
    let closed_kib = pss();
    let closed_processes = app_and_children().len();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    while pss() * 4 > closed_kib * 3 || app_and_children().len() > 1 {
        assert!(
            Instant::now() < deadline,
            "the app without a window gave nothing back in 30 s: PSS {} KiB in {} processes, {closed_kib} KiB in {closed_processes} when closed",
            pss(),
            app_and_children().len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Settled: what the give-back left.
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "the app without a window gave back memory: PSS {} MiB in {closed_processes} processes → {} MiB in {} after {:.1} s",
        closed_kib / 1024,
        pss() / 1024,
        app_and_children().len(),
        started.elapsed().as_secs_f64()
    );
    // Nothing of the web engine's keeps running in the app without a
    // window: WebKit's memory-pressure thread, which reads `/proc` every
    // few seconds for the app's life once a webview has existed, is never
    // started (`main.rs`).
    let thread_names: Vec<String> = std::fs::read_dir(format!("/proc/{app}/task"))
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|name| name.trim_end().to_string())
        .collect();
    assert!(
        !thread_names.iter().any(|n| n == "PressureMonitor"),
        "WebKit's memory-pressure thread runs in the idle app: {thread_names:?}"
    );
    // Nor does anything wake it on a timer: no thread of it is seen waiting
    // with a deadline every time it is seen waiting and woken twice in the
    // 15 s (tao's light/dark watcher polled the bus every 5 s, a pool
    // thread of zbus's every 0.5 s; the end of a pending request's wait,
    // minutes away, is one deadline). Nor do another home's bottles: a container of another home's
    // is made and removed three times (the other suites running beside
    // this one do as much) and no thread wakes ten times in the 15 s (the
    // display and the desktop's bus may wake the main loop now and then).
    let quiet = Duration::from_secs(15);
    let before = bottlebar_e2e::procs::thread_wakeups(&[app]);
    let looks = 10;
    let timers = {
        let before = before.clone();
        tokio::task::spawn_blocking(move || {
            bottlebar_e2e::testkit::waits::timer_threads(app, looks, quiet / looks as u32, &before)
        })
    };
    let image = bottlebar_e2e::docker(&[
        "inspect",
        "--format",
        "{{.Config.Image}}",
        &format!("bottlebar-{NAME}-sidecar"),
    ])
    .expect_ok("the sidecar's image")
    .stdout;
    for round in 0..3 {
        let foreign = format!("bottlebar-test-foreign-{}-{round}", std::process::id());
        bottlebar_e2e::docker(&[
            "create",
            "--name",
            &foreign,
            "--label",
            "bottlebar.bottle=foreign",
            "--label",
            "bottlebar.home=another-home",
            image.trim(),
        ])
        .expect_ok("another home's container");
        bottlebar_e2e::docker(&["rm", &foreign]).expect_ok("removing it");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let timers = timers.await.unwrap();
    let woken = wakeups_by_thread(app, &before);
    println!("the idle app's threads woke over {quiet:?}: {woken:?}");
    assert!(
        timers.is_empty(),
        "threads of the idle app wait on a timer: {timers:?} (woken: {woken:?})"
    );
    assert!(
        woken.iter().all(|(_, n)| *n < 10),
        "the idle app woke for another home's bottles: {woken:?} in {quiet:?}"
    );
    // The next request's notification, clicked, makes the window afresh
    // at the Requests view, which shows the request pending (read from the
    // core: nothing was kept in the page).
    // The desktop turns dark while the app has no window: the window made
    // again is dark.
    portal.set_scheme(scheme::DARK);
    // The bottle has a busy week behind it (50 MB of audit log): the window
    // made again shows as soon all the same.
    fill_audit_history(h.home.path(), NAME);
    ask_and_leave_pending("third.bottlebar.test", "third");
    let third = bus
        .wait_for(
            &format!("{NAME} asks for third.bottlebar.test:80"),
            second.id,
            20,
        )
        .await;
    bus.click(third.id, "default");
    // The first session ended with the network process: the window made
    // again is driven through a session attached afresh, once the window
    // has had time to show (attaching meanwhile would slow what is timed).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attached = attach_to_app(app).await;
    let c = &attached.client;
    let deadline = Instant::now() + Duration::from_secs(20);
    let window = loop {
        if let Some(w) = c.windows().await.unwrap_or_default().into_iter().next() {
            break w;
        }
        assert!(Instant::now() < deadline, "no window came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    c.switch_to_window(window).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reasons = c
            .execute(
                "return Array.from(document.querySelectorAll('article.request .reason'), (e) => e.textContent);",
                vec![],
            )
            .await
            .unwrap_or_default();
        if reasons
            .as_array()
            .is_some_and(|r| r.contains(&json!("third")))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the window made again never showed the request: {reasons}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = c.current_url().await.unwrap();
    assert_eq!(url.fragment(), Some("/requests"), "{url}");
    wait_style(c, true, 5).await;
    let shown: u64 = wait_css(c, "html[data-shown-in-ms]", 10)
        .await
        .attr("data-shown-in-ms")
        .await
        .unwrap()
        .unwrap_or_default()
        .parse()
        .expect("a number of milliseconds");
    let timeline = c
        .execute(
            "return document.documentElement.dataset.timeline || '';",
            vec![],
        )
        .await
        .unwrap_or_default();
    println!(
        "the window made again showed its state {shown} ms after it was made (ms from made: {})",
        timeline.as_str().unwrap_or("")
    );
    assert!(shown < 5_000, "{shown} ms from made again to shown");
    c.clone().close().await.unwrap();
    drop(upstream);
}
