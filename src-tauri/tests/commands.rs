//! The command layer under Tauri's mock runtime: no window, no engine.
//! Docker is pointed at a path that does not exist, so every answer here is
//! the same on any machine.

use bottlebar_app::configure;
use bottlebar_core::home::Home;
use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{
    get_ipc_response, mock_builder, mock_context, noop_assets, MockRuntime, INVOKE_KEY,
};
use tauri::webview::InvokeRequest;
use tauri::{Listener, Manager, WebviewWindow};

struct App {
    _app: tauri::App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
    home: tempfile::TempDir,
}

fn app() -> App {
    // No engine for these tests (set before any thread reads the environment).
    std::env::set_var("BOTTLEBAR_DOCKER", "/nonexistent/docker");
    std::env::set_var("BOTTLEBAR_BACKEND", "docker");
    let home = tempfile::tempdir().unwrap();
    let app = configure(mock_builder(), Home::at(home.path()))
        .build(mock_context(noop_assets()))
        .unwrap();
    let window = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    App {
        _app: app,
        window,
        home,
    }
}

fn call(w: &WebviewWindow<MockRuntime>, cmd: &str, body: Value) -> Result<Value, Value> {
    get_ipc_response(
        w,
        InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: InvokeBody::Json(body),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|r| r.deserialize::<Value>().unwrap())
}

#[test]
fn the_listing_shows_the_demo_and_says_why_the_engine_is_unknown() {
    let a = app();
    let listing = call(&a.window, "list_bottles", json!({})).unwrap();
    let demo = listing["bottles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "demo")
        .unwrap()
        .clone();
    assert_eq!(demo["state"], "unknown");
    assert!(
        demo["problem"]
            .as_str()
            .unwrap()
            .contains("docker not found"),
        "{demo}"
    );
}

#[test]
fn a_window_made_afresh_gets_the_states_already_read_with_their_age() {
    let a = app();
    // Never read yet: read now.
    let first = call(&a.window, "known_bottles", json!({})).unwrap();
    assert_eq!(first["age_ms"], 0);
    assert!(first["listing"]["bottles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["name"] == "demo"));
    // A bottle file added since is not in what was read, until a refresh.
    std::fs::create_dir_all(a.home.path().join("bottles")).unwrap();
    std::fs::write(
        a.home.path().join("bottles/later.toml"),
        "[agent]\ntemplate = \"busybox\"\n",
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let known = call(&a.window, "known_bottles", json!({})).unwrap();
    assert!(known["age_ms"].as_u64().unwrap() >= 20, "{known}");
    let names = |l: &Value| -> Vec<String> {
        l["bottles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!names(&known["listing"]).contains(&"later".to_string()));
    let listing = call(&a.window, "list_bottles", json!({})).unwrap();
    assert!(names(&listing).contains(&"later".to_string()));
    let known = call(&a.window, "known_bottles", json!({})).unwrap();
    assert!(names(&known["listing"]).contains(&"later".to_string()));
}

#[test]
fn a_failed_launch_is_recorded_and_notified() {
    let a = app();
    let failures = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = failures.clone();
    a.window.listen_any("bottles-changed", move |e| {
        seen.lock().unwrap().push(e.payload().to_string())
    });
    let err = call(&a.window, "launch_bottle", json!({ "name": "demo" })).unwrap_err();
    assert!(err.as_str().unwrap().contains("docker not found"), "{err}");
    let record = call(&a.window, "last_failure", json!({ "name": "demo" })).unwrap();
    assert_eq!(record["bottle"], "demo");
    assert!(record["message"]
        .as_str()
        .unwrap()
        .contains("docker not found"));
    let notes = call(&a.window, "notifications", json!({})).unwrap();
    assert_eq!(notes[0]["title"], "Bottle demo failed to launch");
    assert!(
        !failures.lock().unwrap().is_empty(),
        "the window is told states may have changed"
    );
    assert!(call(&a.window, "last_failure", json!({ "name": "other" }))
        .unwrap()
        .is_null());
}

#[test]
fn the_editor_loads_the_demo_and_saves_with_field_errors() {
    let a = app();
    let demo = call(&a.window, "load_bottle", json!({ "name": "demo" })).unwrap();
    assert_eq!(demo["template"], "busybox");
    assert_eq!(demo["egress"][0]["host"], "example.com");
    let mut form = call(&a.window, "load_bottle", json!({ "name": "" })).unwrap();
    assert_eq!(form["template"], "busybox");

    form["name"] = json!("mine");
    form["egress"] = json!([{ "host": "Not a host" }]);
    let errs = call(&a.window, "save_bottle", json!({ "form": form })).unwrap_err();
    assert_eq!(errs[0]["key"], "egress[0]");
    assert_eq!(errs[0]["field"], "egress-0");
    form["egress"][0]["host"] = json!("example.com");
    let saved = call(&a.window, "save_bottle", json!({ "form": form })).unwrap();
    assert!(
        saved.as_str().unwrap().ends_with("bottles/mine.toml"),
        "{saved}"
    );
    let again = call(&a.window, "load_bottle", json!({ "name": "mine" })).unwrap();
    assert_eq!(again["egress"][0]["host"], "example.com");
    assert_eq!(again["egress"][0]["origin"], 0);
    assert!(call(&a.window, "load_bottle", json!({ "name": "Bad Name" })).is_err());

    // A broken file opens as text, with the error's position.
    let text = call(&a.window, "load_bottle_text", json!({ "name": "mine" })).unwrap();
    let broken = "[agent\n";
    std::fs::write(saved.as_str().unwrap(), broken).unwrap();
    let err = call(&a.window, "load_bottle", json!({ "name": "mine" })).unwrap_err();
    assert_eq!(
        (err["kind"].as_str(), err["line"].as_u64()),
        (Some("unparseable"), Some(1)),
        "{err}"
    );
    assert_eq!(err["text"], broken);
    // Saving the text needs the revision it was opened at.
    let stale = call(
        &a.window,
        "save_bottle_text",
        json!({ "name": "mine", "text": text["text"], "revision": text["revision"] }),
    )
    .unwrap_err();
    assert!(
        stale[0]["message"]
            .as_str()
            .unwrap()
            .contains("changed on disk"),
        "{stale}"
    );
    call(
        &a.window,
        "save_bottle_text",
        json!({ "name": "mine", "text": text["text"], "revision": err["revision"] }),
    )
    .unwrap();
    assert!(call(&a.window, "load_bottle", json!({ "name": "mine" })).is_ok());
}

#[test]
fn doctor_and_info_answer_without_an_engine() {
    let a = app();
    let d = call(&a.window, "doctor", json!({})).unwrap();
    assert_eq!(d["default_backend"], "docker");
    let docker = d["engines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "docker")
        .unwrap()
        .clone();
    assert_eq!(docker["running"], false);
    assert!(
        docker["fix"].as_str().unwrap().contains("install Docker"),
        "{docker}"
    );
    let info = call(&a.window, "app_info", json!({})).unwrap();
    assert!(info["home"].as_str().unwrap().len() > 1);
    assert!(call(&a.window, "no_such_command", json!({})).is_err());
}

#[test]
fn terminal_commands_run_exec_in_the_users_terminal() {
    let argv: Vec<String> = [
        "docker",
        "exec",
        "--interactive",
        "--tty",
        "bottlebar-demo-agent",
        "sh",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (program, args) = bottlebar_app::external_terminal::terminal_command(&argv);
    if cfg!(target_os = "macos") {
        assert_eq!(program, "osascript");
        assert!(args[1].contains("docker exec --interactive --tty bottlebar-demo-agent sh"));
    } else {
        assert!(!program.is_empty());
        assert_eq!(args[0], "-e");
        assert_eq!(&args[1..], argv.as_slice());
    }
}

#[test]
fn an_agent_terminal_needs_an_agent_command_and_a_shell_a_running_bottle() {
    let a = app();
    let open = |kind: &str| {
        call(
            &a.window,
            "terminal_open",
            json!({ "bottle": "demo", "kind": kind, "cols": 80, "rows": 24 }),
        )
        .unwrap_err()
    };
    let err = open("agent");
    assert!(
        err.as_str().unwrap().contains("has no agent command"),
        "{err}"
    );
    // No engine here: the error names the bottle and what is missing.
    let err = open("shell");
    assert!(
        err.as_str()
            .unwrap()
            .contains("bottle `demo`: docker not found"),
        "{err}"
    );
    let err = open("root");
    assert!(err.as_str().unwrap().contains("root"), "{err}");
    assert_eq!(
        call(&a.window, "terminal_list", json!({})).unwrap(),
        json!([])
    );
}

#[test]
fn terminal_commands_name_a_missing_session() {
    let a = app();
    for (cmd, args) in [
        ("terminal_input", json!({ "id": 7, "text": "ls\r" })),
        (
            "terminal_resize",
            json!({ "id": 7, "cols": 80, "rows": 24 }),
        ),
        ("terminal_close", json!({ "id": 7 })),
    ] {
        let err = call(&a.window, cmd, args).unwrap_err();
        assert!(
            err.as_str().unwrap().contains("no terminal 7"),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn only_web_and_mail_links_open() {
    let a = app();
    for url in [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "smb://host/share",
        "x",
    ] {
        let err = call(&a.window, "open_link", json!({ "url": url })).unwrap_err();
        assert!(
            err.as_str().unwrap().contains("only web and mail"),
            "{url}: {err}"
        );
    }
}

#[test]
fn requests_are_listed_notified_once_and_a_failed_answer_changes_nothing() {
    let a = app();
    let dir = a.home.path().join("state/demo/requests");
    std::fs::create_dir_all(&dir).unwrap();
    let later = "2999-01-01T00:00:00Z";
    let proposal = json!({
        "id": "p-0000000000001", "bottle": "demo", "created": "2026-12-01T00:00:00Z",
        "expires": later, "origin": "tool", "status": "pending",
        "scope": { "host": "pkg.example.com", "port": 443, "methods": [], "paths": [] },
        "reason": "<b>index</b>",
    });
    std::fs::write(dir.join("p-0000000000001.json"), proposal.to_string()).unwrap();

    let listed = call(&a.window, "list_requests", json!({})).unwrap();
    assert_eq!(listed[0]["pending"], true, "{listed}");
    assert_eq!(listed[0]["proposal"]["reason"], "<b>index</b>");
    call(&a.window, "list_requests", json!({})).unwrap();
    let notes = call(&a.window, "notifications", json!({})).unwrap();
    let ours: Vec<&Value> = notes
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["title"] == "demo asks for pkg.example.com:443")
        .collect();
    assert_eq!(ours.len(), 1, "one notification per request: {notes}");
    assert!(!ours[0]["body"].as_str().unwrap().contains('<'));

    let args = |answer: &str| json!({ "name": "demo", "id": "p-0000000000001", "answer": answer });
    let bad = call(&a.window, "answer_request", args("maybe")).unwrap_err();
    assert!(
        bad.as_str().unwrap().contains("`maybe` is not an answer"),
        "{bad}"
    );
    // No engine here: the sidecar cannot take the answer, so none is kept.
    let refused = call(&a.window, "answer_request", args("once")).unwrap_err();
    assert!(refused.as_str().unwrap().contains("docker"), "{refused}");
    let after = call(&a.window, "list_requests", json!({})).unwrap();
    assert_eq!(after[0]["pending"], true);
    assert!(after[0]["decision"].is_null());
    assert!(!a.home.path().join("state/demo/decisions").exists());
}

/// The app on `home`, with the main window configured but not made (as
/// after `--hidden`, or once it is closed), and no engine.
fn app_with_a_window_configured(home: &std::path::Path) -> tauri::App<tauri::test::MockRuntime> {
    std::env::set_var("BOTTLEBAR_DOCKER", "/nonexistent/docker");
    let mut context = mock_context(noop_assets());
    context
        .config_mut()
        .app
        .windows
        .push(tauri::utils::config::WindowConfig {
            label: "main".into(),
            ..Default::default()
        });
    configure(mock_builder(), Home::at(home))
        .build(context)
        .unwrap()
}

#[test]
fn a_closed_window_is_made_afresh_and_opens_where_it_was_asked() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with_a_window_configured(home.path());
    // No window (closed and released, or `--hidden`).
    assert!(app.get_webview_window("main").is_none());
    // The tray or a notification asks for it: made from the configuration.
    bottlebar_app::show_window(app.handle(), "#/requests");
    let again = app
        .get_webview_window("main")
        .expect("the window made afresh");
    let info = call(&again, "app_info", json!({})).unwrap();
    assert_eq!(info["open_at"], "#/requests", "{info}");
    let info = call(&again, "app_info", json!({})).unwrap();
    assert!(info["open_at"].is_null(), "taken once: {info}");
}

#[test]
fn a_hidden_window_is_released_later_unless_shown_again() {
    let home = tempfile::tempdir().unwrap();
    let app = app_with_a_window_configured(home.path());
    bottlebar_app::show_window(app.handle(), "#/");
    let w = app.get_webview_window("main").unwrap();
    let state = app.state::<bottlebar_app::AppState>();
    let pending = || state.release_hidden.lock().unwrap().is_some();

    // Hidden: its release is set, once (hiding again replaces it).
    bottlebar_app::window::hide_window(&w.as_ref().window(), std::time::Duration::from_secs(60));
    assert!(pending(), "hiding sets the release");
    bottlebar_app::window::hide_window(&w.as_ref().window(), std::time::Duration::from_secs(60));
    assert!(pending());
    // Shown again before it: the release is called off.
    bottlebar_app::show_window(app.handle(), "#/requests");
    assert!(!pending(), "showing calls the release off");
    assert!(app.get_webview_window("main").is_some());
}

#[test]
fn the_running_bottles_logs_are_followed_each_entry_once() {
    let a = app();
    let home = Home::at(a.home.path());
    let log = |name: &str| {
        let name = bottlebar_core::name::BottleName::parse(name).unwrap();
        let dir = bottlebar_core::state::StateDirs::new(home.state_dir(&name)).audit;
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("egress.jsonl")
    };
    let write = |path: &std::path::Path, host: &str| {
        use std::io::Write;
        let line = json!({"time": "2026-12-08T00:00:00Z", "decision": "allow", "method": "GET",
            "scheme": "https", "host": host, "port": 443, "path": "/", "status": 200});
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap();
        writeln!(f, "{line}").unwrap();
    };
    let (log_a, log_b) = (log("a"), log("b"));
    for host in ["a0", "a1", "a2"] {
        write(&log_a, host);
    }
    write(&log_b, "b0");
    let (sent, seen) = std::sync::mpsc::channel();
    a.window.listen_any("audit-entry", move |e| {
        let v: Value = serde_json::from_str(e.payload()).unwrap();
        let _ = sent.send(format!(
            "{}:{}",
            v["bottle"].as_str().unwrap(),
            v["entry"]["host"].as_str().unwrap()
        ));
    });
    let arrived = |want: &[&str]| {
        let got: Vec<String> = want
            .iter()
            .map(|w| {
                seen.recv_timeout(std::time::Duration::from_secs(10))
                    .unwrap_or_else(|_| panic!("{w} never came"))
            })
            .collect();
        assert_eq!(got, want);
    };
    let hosts = |tail: &Value| -> Vec<String> {
        tail["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["host"].as_str().unwrap().to_string())
            .collect()
    };
    let follow = |names: Value, read: Value| {
        call(
            &a.window,
            "follow_audits",
            json!({ "names": names, "read": read, "limit": 2 }),
        )
    };

    // `a`: its newest two, then what its sidecar writes after them.
    let tails = follow(json!(["a"]), json!(["a"])).unwrap();
    assert_eq!(hosts(&tails["a"]), ["a1", "a2"]);
    assert_eq!(tails["a"]["earlier"], true);
    write(&log_a, "a3");
    arrived(&["a:a3"]);

    // `b` starts: only it is read; `a` goes on being followed.
    let tails = follow(json!(["a", "b"]), json!(["b"])).unwrap();
    assert_eq!(tails.as_object().unwrap().keys().collect::<Vec<_>>(), ["b"]);
    assert_eq!(
        (hosts(&tails["b"]), &tails["b"]["earlier"]),
        (vec!["b0".to_string()], &json!(false))
    );
    write(&log_b, "b1");
    arrived(&["b:b1"]);

    // A name that is no bottle's changes nothing.
    let err = follow(json!(["b", "../etc"]), json!([])).unwrap_err();
    assert!(err.as_str().unwrap().contains("../etc"), "{err}");
    // `a` stops: no longer followed, `b` still is.
    assert!(follow(json!(["b"]), json!([]))
        .unwrap()
        .as_object()
        .unwrap()
        .is_empty());
    write(&log_a, "a4");
    write(&log_b, "b2");
    arrived(&["b:b2"]);
    assert!(
        seen.recv_timeout(std::time::Duration::from_millis(500))
            .is_err(),
        "`a` is not followed"
    );

    // Asked to read `b` afresh: from its newest entries on, again.
    let tails = follow(json!(["b"]), json!(["b"])).unwrap();
    assert_eq!(hosts(&tails["b"]), ["b1", "b2"]);
    write(&log_b, "b3");
    arrived(&["b:b3"]);
}
