// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    #[cfg(target_os = "linux")]
    {
        keep_software_gl_out();
        keep_memory_pressure_monitor_out();
    }
    bottlebar_app::run()
}

/// Where this machine has no GPU to draw with (no DRM render node), GTK's
/// OpenGL would be Mesa's software rasterizer, which GTK loads at start only
/// to choose its GL visuals (libepoxy → GLX → `swrast_dri` → LLVM): ~30 MiB
/// of an app idling in the menu bar, and WebKit would draw through it.
/// Without it WebKit draws on the CPU itself. A `GDK_GL` already set is the
/// user's choice and is kept. Set before GTK or any thread starts.
#[cfg(target_os = "linux")]
fn keep_software_gl_out() {
    if std::env::var_os("GDK_GL").is_some() {
        return;
    }
    let nodes = std::fs::read_dir("/dev/dri")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if gl_would_be_software(&nodes) {
        std::env::set_var("GDK_GL", "disable");
    }
}

/// WebKitGTK watches the system's memory from a thread of the app's own
/// (`PressureMonitor`) once a webview has existed, and keeps it for the
/// app's life: it reads `/proc` every few seconds, window or not — ~9 ms of
/// CPU a minute, a sixth of what the idle app may use (`docs/performance.md`).
/// What it is for, telling web processes to drop caches when the system
/// runs short, matters little to one small local page; without it each web
/// process leaves its own handler off too. A value already set is the
/// user's choice and is kept. Set before GTK or any thread starts.
#[cfg(target_os = "linux")]
fn keep_memory_pressure_monitor_out() {
    const MONITOR_OFF: &str = "WEBKIT_DISABLE_MEMORY_PRESSURE_MONITOR";
    if std::env::var_os(MONITOR_OFF).is_none() {
        std::env::set_var(MONITOR_OFF, "1");
    }
}

/// Would GL be software only, given the names in `/dev/dri`?
#[cfg(target_os = "linux")]
fn gl_would_be_software(dri_names: &[String]) -> bool {
    !dri_names.iter().any(|n| n.starts_with("renderD"))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::gl_would_be_software;

    #[test]
    fn gl_is_kept_only_where_a_render_node_is() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(gl_would_be_software(&names(&[])));
        assert!(gl_would_be_software(&names(&["card0", "by-path"])));
        assert!(!gl_would_be_software(&names(&["card0", "renderD128"])));
    }
}
