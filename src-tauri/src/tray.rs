//! The menu-bar icon and its menu: every bottle with its state, and per
//! bottle Launch / Stop / Open shell / Start agent / Show; then Open Bottlebar, New
//! bottle…, Quit. Rebuilt whenever states change.
//!
//! On Linux, tray clicks never arrive (only the menu works), and a missing
//! libayatana-appindicator3 makes the tray library panic: that is caught, and
//! the window stays open instead, saying why.

use crate::actions::{self, Action};
use crate::{terminal, AppState};
use bottlebar_core::ops::{BottleState, Listing};
use tauri::menu::{Menu, MenuBuilder, MenuItemBuilder, SubmenuBuilder};
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Emitter, Listener, Manager, Runtime};

const TRAY_ID: &str = "bottlebar-tray";

fn build_menu<R: Runtime>(app: &AppHandle<R>, listing: &Listing) -> tauri::Result<Menu<R>> {
    let mut menu = MenuBuilder::new(app);
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

/// Shows the window (at `route`, e.g. `#/bottle/demo`).
pub fn show<R: Runtime>(app: &AppHandle<R>, route: &str) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.set_focus();
        let _ = app.emit("navigate", route);
    }
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
        "shell" => {
            tauri::async_runtime::spawn(async move {
                if let Err(e) = terminal::open_shell(&app, &name).await {
                    crate::notify(&app, &format!("Cannot open a shell in {name}"), &e);
                }
            });
        }
        "agent" => {
            tauri::async_runtime::spawn(async move {
                if let Err(e) = terminal::start_agent(&app, &name).await {
                    crate::notify(&app, &format!("Cannot start the agent in {name}"), &e);
                }
            });
        }
        "show" => show(&app, &format!("#/bottle/{name}")),
        "open" => show(&app, "#/"),
        "new" => show(&app, "#/edit/"),
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
        let menu = build_menu(app, &app.state::<AppState>().listing.lock().unwrap())?;
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
        let handle = app.clone();
        app.listen("bottles-changed", move |_| rebuild(&handle));
    }
    *app.state::<AppState>().tray_problem.lock().unwrap() = problem;
}

/// Rebuilds the tray menu from the states of the last refresh.
fn rebuild<R: Runtime>(app: &AppHandle<R>) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    let menu = build_menu(app, &app.state::<AppState>().listing.lock().unwrap());
    if let Ok(menu) = menu {
        let _ = tray.set_menu(Some(menu));
    }
}
