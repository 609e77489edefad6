//! The terminal view in the real app window (Xvfb, WebKitWebDriver, real
//! Docker bottle): a shell tab computes `$((6*7))`; the bottle's terminal
//! follows the window's size; a reload of the page (the window's webview
//! made afresh) finds the tab and its scrollback again, since sessions live
//! in the app; a flood of output leaves the window answering clicks and the
//! app's memory bounded; an agent tab runs `agent.command`; a session that
//! exits says how, and stopping the bottle ends its sessions with a message.
//! Throughput and memory figures go to `$CARGO_TARGET_DIR/perf-results/`
//! (docs/performance.md quotes them); the agent tab's screenshot goes to the
//! README.

mod window;

use bottlebar_e2e::{procs, Harness};
use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::{Client, Locator};
use serde_json::json;
use std::time::{Duration, Instant};
use window::*;

const NAME: &str = "e2e-win-term";

/// Types `keys` into the terminal shown (then Enter).
async fn type_line(c: &Client, keys: &str) {
    let input = c
        .find(Locator::Css("#term-host .xterm-helper-textarea"))
        .await
        .expect("the terminal's input");
    input.send_keys(&format!("{keys}\u{E007}")).await.unwrap();
}

/// Clicks the first character of `text` on the terminal's screen as a
/// user would: the pointer moved there, pressed, released.
async fn click_text(c: &Client, text: &str) {
    let at = c
        .execute(
            "const [text] = arguments;
             const walk = document.createTreeWalker(document.querySelector('#term-host .xterm-rows'), NodeFilter.SHOW_TEXT);
             for (let n = walk.nextNode(); n; n = walk.nextNode()) {
               const i = n.textContent.indexOf(text);
               if (i < 0) continue;
               const range = document.createRange();
               range.setStart(n, i); range.setEnd(n, i + 1);
               const r = range.getBoundingClientRect();
               return [r.left + r.width / 2, r.top + r.height / 2];
             }
             return null;",
            vec![json!(text)],
        )
        .await
        .unwrap();
    let xy = at
        .as_array()
        .unwrap_or_else(|| panic!("`{text}` is not on the screen"));
    let (x, y) = (xy[0].as_f64().unwrap(), xy[1].as_f64().unwrap());
    // From the page's corner first: a pointer already there (a click
    // again) moves nowhere, so the terminal would see no hover over the
    // link — and a resize since the last hover has forgotten it.
    let mouse = MouseActions::new("mouse".into())
        .then(PointerAction::MoveTo {
            duration: None,
            x: 1.0,
            y: 1.0,
        })
        .then(PointerAction::MoveTo {
            duration: None,
            x,
            y,
        })
        .then(PointerAction::Pause {
            duration: Duration::from_millis(200),
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    c.perform_actions(mouse).await.unwrap();
}

/// Clicks a link the terminal shows until `bar` (what the click offers)
/// appears. A click can land while the terminal is still re-flowing after the
/// bar above it closed, on a cell the link no longer covers; the user would
/// click again, and so does the test, a bounded number of times.
async fn click_link(c: &Client, text: &str, bar: &str) {
    for attempt in 0..5 {
        if attempt > 0 {
            eprintln!("a click on `{text}` offered nothing; clicking again");
        }
        click_text(c, text).await;
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if c.find(Locator::Css(bar)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    wait_css(c, bar, 1).await;
}

/// Ctrl+Shift+`key` in the terminal (⌘`key` on a Mac).
async fn chord(c: &Client, key: &str) {
    let input = c
        .find(Locator::Css("#term-host .xterm-helper-textarea"))
        .await
        .unwrap();
    input
        .send_keys(&format!("\u{E009}\u{E008}{key}\u{E000}"))
        .await
        .unwrap();
}

/// The terminal's font size, as drawn.
async fn font_size(c: &Client) -> serde_json::Value {
    c.execute(
        "return getComputedStyle(document.querySelector('#term-host .xterm-rows')).fontSize;",
        vec![],
    )
    .await
    .unwrap()
}

/// The terminal's size as the bottle sees it (`stty size`): rows, columns.
async fn stty_size(c: &Client, tag: &str) -> (u32, u32) {
    type_line(c, &format!("echo {tag} $(stty size)")).await;
    let row = wait_row(c, "stty size", 15, |r| {
        r.starts_with(tag) && r.split(' ').count() == 3
    })
    .await;
    let n: Vec<u32> = row.split(' ').skip(1).map(|n| n.parse().unwrap()).collect();
    (n[0], n[1])
}

/// The memory (PSS, KiB) of the app and every process under it (its
/// webview's WebKit processes).
fn app_pss_kib() -> u64 {
    let (app, webview) = app_and_webview_pss_kib();
    app + webview
}

/// The memory (PSS, KiB) of the app's own process, and of the processes
/// under it.
fn app_and_webview_pss_kib() -> (u64, u64) {
    let app = std::fs::canonicalize(env!("CARGO_BIN_EXE_bottlebar")).unwrap();
    let roots: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|pid: &u32| {
            std::fs::read_link(format!("/proc/{pid}/exe")).ok() == Some(app.clone())
        })
        .collect();
    assert_eq!(roots.len(), 1, "one app process: {roots:?}");
    let tree = procs::tree(roots[0]);
    (
        procs::pss_kib(tree[0]),
        tree[1..].iter().map(|p| procs::pss_kib(*p)).sum(),
    )
}

/// Seconds for the same 7.9 MB through `docker exec -t` into a
/// pseudo-terminal (`script`) that discards it.
fn engine_exec_secs() -> f64 {
    let start = Instant::now();
    let out = std::process::Command::new("script")
        .args([
            "-qc",
            &format!("docker exec -t bottlebar-{NAME}-agent sh -c 'seq 1 1000000'"),
            "/dev/null",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux)");
    let secs = start.elapsed().as_secs_f64();
    assert!(out.stdout.len() >= 7_888_897, "{} bytes", out.stdout.len());
    secs
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_tab_talks_to_the_bottle_survives_a_reload_and_a_flood() {
    let h = Harness::new();
    let manifest = "[agent]\ntemplate = \"busybox\"\ncommand = [\"sh\", \"-c\", \"echo agent-says-hello; exec sh\"]\n";
    h.write_bottle(NAME, manifest);
    h.up(NAME).0.expect_ok("launching the bottle");

    let (c, _driver) = open_app(h.home.path()).await;
    let _ = c.set_window_size(900, 700).await;
    go(&c, &format!("#/bottle/{NAME}")).await;
    click(
        &c,
        &format!("button[data-action='shell'][data-name='{NAME}']:not([disabled])"),
    )
    .await;
    wait_css(&c, "#term-host .xterm-rows", 20).await;
    let url = c.current_url().await.unwrap();
    let route = format!("#{}", url.fragment().unwrap());
    assert!(route.starts_with(&format!("#/terminal/{NAME}/")), "{route}");

    // A shell that answers.
    type_line(&c, "echo $((6*7))").await;
    wait_row(&c, "42", 20, |r| r == "42").await;

    // The bottle's terminal follows the window.
    let before = stty_size(&c, "size-a").await;
    c.set_window_size(1200, 1000).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = stty_size(
            &c,
            &format!("size-{}", Instant::now().elapsed().as_nanos() % 1000),
        )
        .await;
        if now != before || Instant::now() > deadline {
            break now;
        }
    };
    assert!(
        after.0 > before.0 && after.1 > before.1,
        "rows and columns grow with the window: {before:?} → {after:?}"
    );

    // The page made afresh (as when the window's webview is released and
    // re-created): the tab is there, with its scrollback.
    c.refresh().await.unwrap();
    wait_css(&c, "#term-tabs li[data-kind='shell']", 20).await;
    go(&c, &route).await;
    wait_row(&c, "the scrollback's 42", 20, |r| r == "42").await;

    // What the agent prints cannot open anything by itself: a link is shown
    // in full and opened only on the user's word; a link to a file or a
    // script is not offered at all.
    type_line(&c, "clear; echo see https://bottlebar.invalid/docs/page; printf '\\033]8;;file:///etc/passwd\\033\\\\click-me-file\\033]8;;\\033\\\\\\n'").await;
    wait_row(&c, "the printed links", 20, |r| r == "click-me-file").await;
    assert!(
        c.find(Locator::Css("#term-link")).await.is_err(),
        "nothing offered unasked"
    );
    click_link(&c, "https://bottlebar.invalid", "#term-link-url").await;
    assert_eq!(
        text(&c, "#term-link-url").await,
        "https://bottlebar.invalid/docs/page"
    );
    click(&c, "#term-link button:not(.primary)").await; // Cancel: nothing opened
    let closed_by = Instant::now() + Duration::from_secs(5);
    while c.find(Locator::Css("#term-link")).await.is_ok() {
        assert!(Instant::now() < closed_by, "Cancel closes the bar");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    click_link(&c, "click-me-file", "#term-link").await;
    let refused = text(&c, "#term-link").await;
    assert!(
        refused.contains("Not opening") && refused.contains("file:///etc/passwd"),
        "{refused}"
    );
    assert!(
        c.find(Locator::Css("#term-link-open")).await.is_err(),
        "{refused}"
    );
    click(&c, "#term-link button").await;

    // A flood: the window keeps answering, memory stays bounded (a second
    // flood adds next to nothing to what the first one left).
    let pss_before = app_pss_kib();
    type_line(&c, "yes | head -n 200000; echo flood-$((40+2))-done").await;
    // A click on "Requests", timed in the page: from the click to the
    // Requests view drawn.
    let answered_ms = c
        .execute_async(
            "const done = arguments[0]; const t0 = performance.now();
             const drawn = () => document.querySelector('#requests') ? done(performance.now() - t0) : requestAnimationFrame(drawn);
             document.querySelector('#nav-requests').click();
             requestAnimationFrame(drawn);",
            vec![],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    let answered = Duration::from_millis(answered_ms as u64);
    println!("a click answered in {answered:?} during the flood");
    assert!(
        answered < Duration::from_secs(1),
        "a click took {answered:?} during the flood"
    );
    go(&c, &route).await;
    wait_row(&c, "the flood's end", 60, |r| r == "flood-42-done").await;
    let (app_flood, webview_flood) = app_and_webview_pss_kib();
    // Then three floods ten times as large: the app's own memory stays
    // where it was (the scrollback is bounded, and so is what is in flight
    // to the window); the webview's swings by ±150 MiB with its garbage
    // collector, so its least reading is compared. An idle page allocates
    // nothing, so nothing makes its collector run: when the least reading
    // is over the bound, the page is made to allocate (and drop) a while,
    // which makes it collect, and is read again for a while. Memory a
    // collection gives back was not kept; memory that stays over is.
    let mut after = vec![];
    for i in 0..3 {
        type_line(
            &c,
            &format!("yes | head -n 2000000; echo big-flood-{i}-done"),
        )
        .await;
        let done = format!("big-flood-{i}-done");
        wait_row(&c, "a big flood's end", 60, |r| r == done).await;
        after.push(app_and_webview_pss_kib());
    }
    let app_flood2 = after.iter().map(|a| a.0).max().unwrap();
    let bound = webview_flood + 128 * 1024;
    let mut webview_flood2 = after.iter().map(|a| a.1).min().unwrap();
    let idle_until = Instant::now() + Duration::from_secs(15);
    while webview_flood2 >= bound && Instant::now() < idle_until {
        c.execute(
            "for (let i = 0; i < 32; i++) new Array(1 << 19).fill(i); return 0;",
            vec![],
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        webview_flood2 = webview_flood2.min(app_and_webview_pss_kib().1);
    }
    println!("the webview: {webview_flood} KiB after the flood, {after:?} after the big ones, least {webview_flood2} KiB");
    assert!(
        app_flood2 < app_flood + 16 * 1024,
        "the app grows with the output: {app_flood} KiB after 0.6 MB, {after:?} KiB after 6 MB more each"
    );
    assert!(
        webview_flood2 < bound,
        "the webview grows with the output: {webview_flood} KiB, then {after:?}, at least {webview_flood2} KiB idle since"
    );
    let (pss_flood, pss_flood2) = (app_flood + webview_flood, app_flood2 + webview_flood2);

    // Throughput: ~7.9 MB (seq's 6.9 MB, each newline sent as CR LF) from
    // the bottle to the drawn terminal, beside the same through the
    // engine's own `exec -t` into a pseudo-terminal that draws nothing
    // (the ceiling: the engine's copy of a terminal's output).
    type_line(&c, "clear").await;
    let start = Instant::now();
    type_line(&c, "seq 1 1000000; echo tput-done").await;
    wait_row(&c, "the throughput run's end", 120, |r| r == "tput-done").await;
    let secs = start.elapsed().as_secs_f64();
    let mb_per_s = 7_888_897.0 / secs / 1e6;
    let engine_secs = engine_exec_secs();

    // Search (Ctrl+Shift+F; ⌘F on a Mac) finds and selects; the font grows
    // with Ctrl+Shift+= (⌘+) and comes back with Ctrl+Shift+0 (⌘0).
    chord(&c, "f").await;
    let search = wait_css(&c, "#term-search", 5).await;
    search.send_keys("tput-done\u{E007}").await.unwrap();
    wait_css(&c, "#term-host .xterm-selection div", 5).await;
    search.send_keys("\u{E00C}").await.unwrap(); // Escape closes it
    let normal = font_size(&c).await;
    chord(&c, "=").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while font_size(&c).await == normal {
        assert!(Instant::now() < deadline, "the font stays at {normal}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    chord(&c, "0").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while font_size(&c).await != normal {
        assert!(
            Instant::now() < deadline,
            "the font does not come back to {normal}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let engine_mb_per_s = 7_888_897.0 / engine_secs / 1e6;

    // An agent tab runs the bottle's agent command.
    click(&c, "#term-new-agent").await;
    wait_css(
        &c,
        "#term-tabs li[data-kind='agent'][aria-selected='true']",
        20,
    )
    .await;
    wait_row(&c, "the agent's greeting", 20, |r| r == "agent-says-hello").await;
    // Two busy tabs: the agent's output drawn, the shell's kept.
    let agent_route = format!("#{}", c.current_url().await.unwrap().fragment().unwrap());
    go(&c, &route).await;
    type_line(
        &c,
        "for i in 1 2 3 4 5; do seq 1 200000; done; echo busy-a-done",
    )
    .await;
    go(&c, &agent_route).await;
    wait_css(
        &c,
        "#term-tabs li[data-kind='agent'][aria-selected='true']",
        10,
    )
    .await;
    type_line(
        &c,
        "for i in 1 2 3 4 5; do seq 1 200000; done; echo busy-b-done",
    )
    .await;
    let mut pss_busy = 0;
    for _ in 0..10 {
        pss_busy = pss_busy.max(app_pss_kib());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    wait_row(&c, "the agent tab's end", 120, |r| r == "busy-b-done").await;
    type_line(
        &c,
        "clear; echo 'agent tab: the bottle'\"'\"'s agent.command, in the window'",
    )
    .await;
    wait_row(&c, "the caption", 10, |r| r.starts_with("agent tab")).await;
    shot_of(&c, "terminal", "#terminal").await;

    // A session that exits says how.
    go(&c, &route).await;
    wait_row(&c, "the shell tab's busy end", 120, |r| r == "busy-a-done").await;
    type_line(&c, "exit 3").await;
    wait_css(&c, "#term-tabs li.ended[data-kind='shell']", 20).await;
    wait_css(&c, "#term-status:not([hidden])", 10).await;
    assert_eq!(text(&c, "#term-status").await, "Exited with status 3");

    // Stopping the bottle ends its sessions, saying so.
    go(&c, &agent_route).await;
    h.bottle(&["down", NAME]).expect_ok("stopping the bottle");
    wait_css(&c, "#term-tabs li.ended[data-kind='agent']", 30).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = text(&c, "#term-status").await;
        if status == "Ended: the bottle stopped" {
            break;
        }
        assert!(Instant::now() < deadline, "the agent tab says: {status}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let figures = json!({
        "throughput_mb_per_s": (mb_per_s * 10.0).round() / 10.0,
        "throughput_bytes": 7_888_897,
        "throughput_secs": (secs * 100.0).round() / 100.0,
        "click_during_flood_ms": answered.as_millis() as u64,
        "pss_before_flood_mib": pss_before / 1024,
        "pss_after_flood_mib": pss_flood / 1024,
        "pss_after_big_floods_mib": pss_flood2 / 1024,
        "app_pss_after_flood_mib": app_flood / 1024,
        "app_pss_after_big_floods_mib": app_flood2 / 1024,
        "engine_exec_mb_per_s": (engine_mb_per_s * 10.0).round() / 10.0,
        "pss_two_busy_tabs_mib": pss_busy / 1024,
    });
    eprintln!("terminal figures: {figures}");
    let dir = target_dir().join("perf-results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("terminal.json"), figures.to_string()).unwrap();
    c.close().await.unwrap();
}
