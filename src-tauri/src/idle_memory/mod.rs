//! What the app gives back once it idles in the menu bar with no window.
//!
//! Starting, and making and releasing a window, touch far more than an
//! idle menu-bar app runs again: pages of WebKit, GTK, Mesa and the app's
//! own code (read from their files: the loader's symbol look-ups, and the
//! kernel maps 64 KiB around each page it faults in), heap that the
//! released webview freed but the allocator kept, and — on Linux — the web
//! engine's network process, which WebKitGTK keeps for the app's lifetime
//! once a webview has existed (Tauri keeps its context there for that
//! reason: tauri-apps/tauri#14626). Left alone, all of it stays counted in
//! the app. So, a while after the app settles without a window
//! ([`SETTLE`]), it hands them back:
//!
//! 1. the idle network process is ended (`network_process`): the next
//!    webview starts a new one, as the first did;
//! 2. free heap goes back to the system (`malloc_trim`);
//! 3. the app lets go of the pages of its private read-only file mappings.
//!    Where that cannot lose anything — mappings with no page of their own
//!    (none written since mapped, resident or swapped out, as
//!    `/proc/self/pagemap` tells) of a file that can never be unmapped
//!    (the executable, or a library made `RTLD_NODELETE` first), so the
//!    range still holds that file when the advice runs — and where that is
//!    worth it (a file whose pages weigh [`WORTH_PAGES`] in the app), it
//!    drops them outright (`MADV_DONTNEED`): they leave the app, shared ones included
//!    (an X server running Mesa's LLVM shares its code), and stay in the
//!    page cache, reclaimable, so the next window maps them again from
//!    memory, not from disk. Everything else (fonts, caches, relocated
//!    tables) is paged out (`MADV_PAGEOUT`): advice that never changes
//!    what memory holds, whatever is mapped there when it runs — a clean
//!    page is read again from its file when next used, a dirty one is kept
//!    (no swap), never dropped.
//!
//! The cost is paid when the next window is made, which reads those pages
//! again and starts a network process (`docs/performance.md`). macOS
//! manages an idle app's pages and WebKit's processes itself: there this
//! does nothing.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
mod loader;
mod mappings;
#[cfg(target_os = "linux")]
mod network_process;

pub use mappings::{parse_maps, to_page_out, worth_dropping, Mapping, Pages, WORTH_PAGES};
use std::time::Duration;
use tauri::{AppHandle, Manager, Runtime};

/// How long the app must have had no window before it gives memory back:
/// long enough for the released webview's teardown and the first reads
/// after a start to finish, short against an idle afternoon.
pub const SETTLE: Duration = Duration::from_secs(10);

/// Gives memory back after [`SETTLE`] if no window exists by then (one
/// timer per release or start, never a poll).
pub fn give_back_when_settled<R: Runtime>(app: &AppHandle<R>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(SETTLE).await;
        // On the main thread, where windows are made: none can be made
        // between the look and the network process's end.
        let look = app.clone();
        let _ = app.run_on_main_thread(move || {
            if look.webview_windows().is_empty() {
                #[cfg(target_os = "linux")]
                network_process::end_idle();
                tauri::async_runtime::spawn_blocking(give_back);
            }
        });
    });
}

/// Returns free heap and file pages to the system (Linux; see the module's
/// steps 2 and 3). Safe to call at any time: nothing it does loses data.
pub fn give_back() {
    #[cfg(target_os = "linux")]
    {
        linux::give_back(loader::pin_owners);
    }
}
