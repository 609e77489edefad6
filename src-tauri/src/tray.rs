//! The menu-bar icon and its menu: the supervise requests waiting for an
//! answer (each with Allow once / Allow for 1 hour / Always allow / Deny),
//! every bottle with its state, and per bottle Launch / Stop / Open shell /
//! Start agent / Show; then Open Bottlebar, New bottle…, Quit. Rebuilt
//! whenever states or requests change; the icon's title and tooltip carry
//! the number of requests waiting.
//!
//! On Linux, tray clicks never arrive (only the menu works), and a missing
//! libayatana-appindicator3 makes the tray library panic: that is caught, and
//! the window stays open instead, saying why.

use crate::actions::{self, Action};
use crate::{external_terminal, requests, show_window as show, terminals, AppState};
use bottlebar_core::ops::{BottleState, Listing, TerminalCommand};
use bottlebar_core::runner::pty::CellSize;
use bottlebar_core::supervise::Request;
use tauri::menu::{Menu, MenuBuilder, MenuItemBuilder, SubmenuBuilder};
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Listener, Manager, Runtime};

const TRAY_ID: &str = "bottlebar-tray";

/// The answers a pending request's submenu offers: menu id word and label.
const ANSWERS: [(&str, &str); 4] = [
    ("once", "Allow once"),
    ("hour", "Allow for 1 hour"),
    ("always", "Always allow (adds the rule)"),
    ("deny", "Deny"),
];

fn build_menu<R: Runtime>(
    app: &AppHandle<R>,
    listing: &Listing,
    requests: &[Request],
) -> tauri::Result<Menu<R>> {
    let mut menu = MenuBuilder::new(app);
    let pending: Vec<&Request> = requests.iter().filter(|r| r.pending).collect();
    if !pending.is_empty() {
        menu = menu.item(
            &MenuItemBuilder::with_id("requests", format!("Requests waiting: {}", pending.len()))
                .build(app)?,
        );
        for r in pending {
            let mut sub = SubmenuBuilder::new(app, format!("  {}", requests::title(r))).item(
                &MenuItemBuilder::new(format!("“{}”", requests::short_reason(&r.proposal.reason)))
                    .enabled(false)
                    .build(app)?,
            );
            for (word, label) in ANSWERS {
                sub = sub.item(
                    &MenuItemBuilder::with_id(
                        format!("req:{word}:{}:{}", r.proposal.bottle, r.proposal.id),
                        label,
                    )
                    .build(app)?,
                );
            }
            menu = menu.item(&sub.build()?);
        }
        menu = menu.separator();
    }
    for b in &listing.bottles {
        let running = b.state == BottleState::Running;
        let sub = SubmenuBuilder::new(app, format!("{} — {}", b.name, b.state.label()))
            .item(
                &MenuItemBuilder::with_id(format!("launch:{}", b.name), "Launch")
                    .enabled(!running)
                    .build(app)?,
            )
            .item(
                &MenuItemBuilder::with_id(format!("stop:{}", b.name), "Stop")
                    .enabled(b.state != BottleState::NotLaunched)
                    .build(app)?,
            )
            .item(
                &MenuItemBuilder::with_id(format!("shell:{}", b.name), "Open shell")
                    .enabled(running)
                    .build(app)?,
            )
            .item(
                &MenuItemBuilder::with_id(format!("agent:{}", b.name), "Start agent")
                    .enabled(running)
                    .build(app)?,
            )
            .item(
                &MenuItemBuilder::with_id(format!("external:{}", b.name), "Open in Terminal")
                    .enabled(running)
                    .build(app)?,
            )
            .item(&MenuItemBuilder::with_id(format!("show:{}", b.name), "Show").build(app)?)
            .build()?;
        menu = menu.item(&sub);
    }
    menu.separator()
        .item(&MenuItemBuilder::with_id("open", "Open Bottlebar").build(app)?)
        .item(&MenuItemBuilder::with_id("new", "New bottle…").build(app)?)
        .separator()
        .item(&MenuItemBuilder::with_id("quit", "Quit").build(app)?)
        .build()
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let (action, name) = id.split_once(':').unwrap_or((id, ""));
    let (app, name) = (app.clone(), name.to_string());
    match action {
        "launch" => {
            show(&app, &format!("#/bottle/{name}"));
            tauri::async_runtime::spawn(async move {
                let _ = actions::run(&app, Action::Launch, &name).await;
            });
        }
        "stop" => {
            tauri::async_runtime::spawn(async move {
                let _ = actions::run(&app, Action::Stop, &name).await;
            });
        }
        "shell" | "agent" => {
            let kind = if action == "shell" {
                TerminalCommand::Shell
            } else {
                TerminalCommand::Agent
            };
            tauri::async_runtime::spawn(async move {
                match terminals::open(&app, &name, kind, CellSize::DEFAULT).await {
                    Ok(s) => show(&app, &format!("#/terminal/{name}/{}", s.id)),
                    Err(e) => crate::notify(
                        &app,
                        &format!("Cannot open a terminal in {name}"),
                        &e,
                        &format!("#/bottle/{name}"),
                    ),
                }
            });
        }
        "external" => {
            tauri::async_runtime::spawn(async move {
                if let Err(e) = external_terminal::open_shell(&app, &name).await {
                    crate::notify(
                        &app,
                        &format!("Cannot open a terminal on {name}"),
                        &e,
                        &format!("#/bottle/{name}"),
                    );
                }
            });
        }
        "req" => {
            // `req:ANSWER:BOTTLE:ID`
            let mut parts = name.splitn(3, ':');
            let (Some(word), Some(bottle), Some(id)) = (parts.next(), parts.next(), parts.next())
            else {
                return;
            };
            requests::answer_in_background(&app, word, bottle.to_string(), id.to_string());
        }
        "requests" => show(&app, "#/requests"),
        "show" => show(&app, &format!("#/bottle/{name}")),
        "open" => show(&app, "#/"),
        "new" => show(&app, "#/new"),
        "quit" => app.exit(0),
        _ => {}
    }
}

/// Creates the tray icon, or records why there is none.
pub fn install<R: Runtime>(app: &AppHandle<R>) {
    if std::env::var_os("BOTTLEBAR_NO_TRAY").is_some() {
        *app.state::<AppState>().tray_problem.lock().unwrap() =
            Some("the tray is disabled (BOTTLEBAR_NO_TRAY)".into());
        return;
    }
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> tauri::Result<()> {
        let state = app.state::<AppState>();
        let menu = build_menu(
            app,
            &state.listing.lock().unwrap(),
            &state.requests.lock().unwrap(),
        )?;
        let icon =
            tauri::image::Image::from_bytes(include_bytes!("../../icons/tray-template@2x.png"))?;
        TrayIconBuilder::with_id(TRAY_ID)
            .icon(icon)
            .icon_as_template(true)
            .tooltip("Bottlebar")
            .menu(&menu)
            .show_menu_on_left_click(false)
            .on_menu_event(|app, event| on_menu(app, event.id().as_ref()))
            .on_tray_icon_event(|tray, event| {
                // macOS/Windows: a left click toggles the window under the icon.
                tauri_plugin_positioner::on_tray_event(tray.app_handle(), &event);
                if let TrayIconEvent::Click {
                    button: MouseButton::Left,
                    button_state: MouseButtonState::Up,
                    ..
                } = event
                {
                    if let Some(w) = tray.app_handle().get_webview_window("main") {
                        if w.is_visible().unwrap_or(false) {
                            let _ = w.hide();
                        } else {
                            use tauri_plugin_positioner::{Position, WindowExt};
                            let _ = w.move_window_constrained(Position::TrayBottomCenter);
                            let _ = w.show();
                            let _ = w.set_focus();
                        }
                    }
                }
            })
            .build(app)?;
        Ok(())
    }));
    let problem = match built {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("the menu-bar icon could not be created: {e}")),
        Err(_) => Some("the menu-bar icon is unavailable on this desktop (libayatana-appindicator3 is missing)".into()),
    };
    if let Some(p) = &problem {
        eprintln!("bottlebar: {p}; showing the window instead");
        show(app, "#/");
    } else {
        // The menu follows the states: rebuilt whenever they are refreshed.
        for event in ["bottles-changed", "requests-changed"] {
            let handle = app.clone();
            app.listen(event, move |_| rebuild(&handle));
        }
    }
    *app.state::<AppState>().tray_problem.lock().unwrap() = problem;
}

/// Rebuilds the tray menu from the states of the last refresh.
fn rebuild<R: Runtime>(app: &AppHandle<R>) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    let state = app.state::<AppState>();
    let requests = state.requests.lock().unwrap().clone();
    let menu = build_menu(app, &state.listing.lock().unwrap(), &requests);
    if let Ok(menu) = menu {
        let _ = tray.set_menu(Some(menu));
    }
    let waiting = requests.iter().filter(|r| r.pending).count();
    let _ = tray.set_title((waiting > 0).then(|| waiting.to_string()));
    let _ = tray.set_tooltip(Some(match waiting {
        0 => "Bottlebar".to_string(),
        n => format!("Bottlebar — {n} request(s) waiting"),
    }));
}
