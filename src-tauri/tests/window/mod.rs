//! What the window tests share: starting the app under WebKitWebDriver, and
//! finding, reading, clicking and photographing what it shows.

#![allow(dead_code)] // each test binary uses its own share of these

pub use bottlebar_e2e::webdriver::{self, Driver};
use fantoccini::{Client, Locator};
use serde_json::json;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub mod notifications;

/// The real app on `home` (Docker backend; its self-tests probe this
/// process's fake internet), driven through WebKitWebDriver: the WebDriver
/// session and the driver (killed when dropped).
pub async fn open_app(home: &Path) -> (Client, Driver) {
    open_app_with(home, &[]).await
}

/// [`open_app`] with more environment for the app (a session bus, …).
pub async fn open_app_with(home: &Path, env: &[(&str, &str)]) -> (Client, Driver) {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "the window test needs a display: run it under xvfb-run (scripts/test does)"
    );
    assert!(
        docker(&["version"]).status.success(),
        "the window test needs Docker (scripts/setup starts it)"
    );
    let sidecar = sidecar_bin();
    let targets = &bottlebar_e2e::fake_internet().targets_file;
    let mut app_env: Vec<(&str, &OsStr)> = vec![
        ("BOTTLEBAR_HOME", home.as_os_str()),
        ("BOTTLEBAR_SIDECAR_BIN", sidecar.as_os_str()),
        ("BOTTLEBAR_BACKEND", OsStr::new("docker")),
        // The launch's self-test probes this test's own fake internet.
        ("BOTTLEBAR_TEST_RUN", OsStr::new("1")),
        ("BOTTLEBAR_SELFTEST_TARGETS", targets.as_os_str()),
    ];
    app_env.extend(env.iter().map(|(k, v)| (*k, OsStr::new(v))));
    let mut driver = webdriver::webkit_driver(app_env).unwrap();
    let c = driver
        .session(webdriver::launch_capabilities(&app_binary(), &[]))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    (c, driver)
}

/// A new WebDriver session on the app already running as `app` (its
/// process id): WebKit ends an automation session when the web engine's
/// network process it began with ends, which the idle app makes it do
/// (`idle_memory`), so a window made after that is driven through a
/// session attached afresh (`bottlebar_e2e::webdriver`).
pub async fn attach_to_app(app: u32) -> bottlebar_e2e::webdriver::Attached {
    let inspector = bottlebar_e2e::webdriver::inspector_of(app).unwrap();
    bottlebar_e2e::webdriver::attach(&inspector).await.unwrap()
}

/// The app the window tests drive: this build's, or the one named by
/// `BOTTLEBAR_TEST_APP` (to time the build people get, `app-release`).
fn app_binary() -> PathBuf {
    std::env::var_os("BOTTLEBAR_TEST_APP")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_bottlebar").into())
}

pub fn free_port() -> u16 {
    bottlebar_e2e::free_port().unwrap()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

pub fn sidecar_bin() -> PathBuf {
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

pub fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Saves a screenshot of the element `css`: the window's picture cut to
/// the element's box.
pub async fn shot_of(c: &Client, name: &str, css: &str) {
    wait_css(c, css, 10).await;
    let rect = c
        .execute(
            "const el = document.querySelector(arguments[0]); el.scrollIntoView(); \
             const r = el.getBoundingClientRect(), s = window.devicePixelRatio || 1; \
             return [r.left * s, r.top * s, r.width * s, r.height * s].map(Math.round);",
            vec![json!(css)],
        )
        .await
        .unwrap();
    let at = |i: usize| rect[i].as_u64().unwrap_or(0) as u32;
    let png = window_png(c).await.expect("a picture of the window");
    let cut = crop_png(&png, (at(0), at(1), at(2), at(3))).unwrap_or(png);
    std::fs::write(screenshots_dir().join(format!("{name}.png")), cut).unwrap();
}

/// The window as the X server shows it (`xwd`, turned into a PNG by
/// netpbm), cut to the window's box; `None` with why when it cannot be had.
/// Not WebDriver's screenshot: that never returns once WebKit draws
/// without GL, which the app chooses where GL could only be software (see
/// `src/main.rs`); and its element screenshots come back black under Xvfb.
pub async fn window_png(c: &Client) -> Result<Vec<u8>, String> {
    let (x, y, w, h) = c
        .get_window_rect()
        .await
        .map_err(|e| format!("the window's box: {e}"))?;
    let out = Command::new("bash")
        .args([
            "-c",
            "set -o pipefail; xwd -root -silent | xwdtopnm 2>/dev/null | pnmtopng",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("bash: {e}"))?;
    if !out.status.success() || out.stdout.is_empty() {
        return Err(format!(
            "xwd | xwdtopnm | pnmtopng failed (x11-apps and netpbm; scripts/setup installs them): {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    crop_png(&out.stdout, (clamp(x), clamp(y), clamp(w), clamp(h)))
        .ok_or_else(|| "the window is outside the screen".to_string())
}

/// `png` cut to the box `(x, y, width, height)` (clamped to the image).
fn crop_png(png: &[u8], (x, y, w, h): (u32, u32, u32, u32)) -> Option<Vec<u8>> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .ok()?;
    let mut buf = vec![0; reader.output_buffer_size()?];
    let info = reader.next_frame(&mut buf).ok()?;
    let bpp = info.color_type.samples() * (info.bit_depth as usize).div_ceil(8);
    let (x, y) = (x.min(info.width), y.min(info.height));
    let (w, h) = (w.min(info.width - x), h.min(info.height - y));
    if w == 0 || h == 0 {
        return None;
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(info.color_type);
        enc.set_depth(info.bit_depth);
        let mut writer = enc.write_header().ok()?;
        let mut data = Vec::with_capacity((w * h) as usize * bpp);
        for row in y..y + h {
            let start = row as usize * info.line_size + x as usize * bpp;
            data.extend_from_slice(&buf[start..start + w as usize * bpp]);
        }
        writer.write_image_data(&data).ok()?;
    }
    Some(out)
}

pub fn screenshots_dir() -> PathBuf {
    let dir = std::env::var_os("BOTTLEBAR_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn shot(c: &Client, name: &str) {
    let png = window_png(c).await.expect("a picture of the window");
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
}

/// Waits for `css` to match. Polls rather than using WebDriver's wait: the
/// window re-renders on state changes, and a stale match is just a retry.
pub async fn wait_css(c: &Client, css: &str, secs: u64) -> fantoccini::elements::Element {
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
    if let Ok(png) = window_png(c).await {
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
pub async fn text(c: &Client, css: &str) -> String {
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

/// Clicks `css` once it is enabled (a click on a disabled button is
/// silently lost), finding it again if a re-render made it stale.
pub async fn click(c: &Client, css: &str) {
    let mut last = String::from("never found");
    for _ in 0..100 {
        match c.find(Locator::Css(css)).await {
            Ok(el) => match el.is_enabled().await {
                Ok(true) => match el.click().await {
                    Ok(()) => return,
                    Err(e) => last = format!("{e:?}"),
                },
                Ok(false) => last = String::from("disabled"),
                Err(e) => last = format!("{e:?}"),
            },
            Err(e) => last = format!("{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("clicking {css}: {last}")
}

/// Goes to `route` (`#/requests`) in the window.
pub async fn go(c: &Client, route: &str) {
    let url = c.current_url().await.unwrap();
    let base = url.as_str().split('#').next().unwrap();
    c.goto(&format!("{base}{route}")).await.unwrap();
}

pub async fn invoke(c: &Client, cmd: &str, args: serde_json::Value) -> serde_json::Value {
    c.execute_async("const [cmd, args, done] = arguments; window.__TAURI__.core.invoke(cmd, args).then(done, (e) => done({ error: String(e) }));", vec![json!(cmd), args]).await.unwrap()
}

/// The terminal's screen as the user sees it: one string per row.
pub async fn screen(c: &Client) -> Vec<String> {
    let rows = c
        .execute(
            "return Array.from(document.querySelectorAll('#term-host .xterm-rows > div'), (d) => d.textContent);",
            vec![],
        )
        .await
        .unwrap_or(json!([]));
    rows.as_array()
        .into_iter()
        .flatten()
        .map(|r| r.as_str().unwrap_or("").trim_end().to_string())
        .collect()
}

/// Waits until a row of the terminal's screen satisfies `want`; the row.
pub async fn wait_row(c: &Client, what: &str, secs: u64, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let rows = screen(c).await;
        if let Some(r) = rows.iter().find(|r| want(r)) {
            return r.clone();
        }
        if Instant::now() > deadline {
            shot(c, "e2e-terminal-timeout").await;
            panic!(
                "no {what} on the terminal after {secs} s:\n{}",
                rows.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Waits up to `secs` for the page to see the desktop's style as dark
/// (`dark`) or light: what `prefers-color-scheme` says, which the page's
/// colours follow (`ui/style.css`).
pub async fn wait_style(c: &Client, dark: bool, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let now = c
            .execute(
                "return window.matchMedia('(prefers-color-scheme: dark)').matches;",
                vec![],
            )
            .await
            .unwrap_or_default();
        if now == json!(dark) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the page's style is not {} after {secs} s: prefers dark = {now}",
            if dark { "dark" } else { "light" }
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Gives bottle `name` of `home` the audit history of a busy week: its
/// five rotated files (the most the sidecar keeps) of 10 MB each, entries
/// a week old. What the window reads of it is the newest entries only.
pub fn fill_audit_history(home: &Path, name: &str) {
    let dir = home.join("state").join(name).join("audit");
    std::fs::create_dir_all(&dir).unwrap();
    for file in 1..=5 {
        let mut text = String::with_capacity(10 << 20);
        let mut n = 0;
        while text.len() < 10 << 20 {
            n += 1;
            let entry = json!({
                "time": format!("2026-11-30T12:{:02}:{:02}.000Z", n / 60 % 60, n % 60),
                "decision": "allow", "method": "GET", "scheme": "https",
                "host": format!("registry-{file}.bottlebar.test"), "port": 443,
                "path": format!("/packages/{n}/-/package-{n}.tgz"), "status": 200, "rule": 1,
            });
            text.push_str(&entry.to_string());
            text.push('\n');
        }
        std::fs::write(dir.join(format!("egress.jsonl.{file}")), text).unwrap();
    }
}
