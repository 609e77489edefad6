// The window: routes (#/, #/bottle/NAME, #/edit/NAME, #/text/NAME,
// #/new, #/requests, #/settings, #/terminal/NAME[/ID]), drawing the current view from the store, and wiring the
// app's events to the store. Commands are in api.js, data in store.js,
// views in views/, logic (tested with node) in logic.js.

import { api, on } from "./api.js";
import { $, drawInto, showBanner } from "./dom.js";
import { onRedraw } from "./refresh.js";
import { applyEvent, entryArrived, followRunning, loadActivity, loadDoctor, loadEditor, loadFailure, loadKnownListing, loadNewBottle, loadRequests, loadText, setRequests, store } from "./store.js";
import { redrawActivity, detailView } from "./views/detail.js";
import { editorView } from "./views/editor.js";
import { listView } from "./views/list.js";
import { newBottleView } from "./views/new.js";
import { requestsView } from "./views/requests.js";
import { settingsView } from "./views/settings.js";
import { loadSessions, setSessions, terminalView } from "./views/terminal.js";

function route() {
  const hash = location.hash || "#/";
  const [, kind, rest] = hash.match(/^#\/(bottle|edit|text|new|requests|settings|terminal)?\/?(.*)$/) || [];
  const [name, id] = kind === "terminal" ? (rest || "").split("/") : [rest];
  return { kind: kind || "list", name: decodeURIComponent(name || ""), id };
}

/** Draws the current view from the store. The editors are drawn only on navigation, so typing survives events. */
function redraw({ navigated = false } = {}) {
  const r = route();
  // The editors keep what is typed; a terminal is never redrawn (its tabs follow `terminals-changed`).
  if ((r.kind === "edit" || r.kind === "text" || r.kind === "new" || r.kind === "terminal") && !navigated) return;
  for (const a of document.querySelectorAll("nav a")) a.removeAttribute("aria-current");
  const current = { list: "#nav-bottles", bottle: "#nav-bottles", edit: "#nav-new", new: "#nav-new", text: "#nav-bottles", terminal: "#nav-bottles", requests: "#nav-requests", settings: "#nav-settings" }[r.kind];
  $(current)?.setAttribute("aria-current", "page");
  const view = { bottle: () => detailView(r.name), edit: editorView, text: editorView, new: newBottleView, requests: requestsView, settings: settingsView, list: listView, terminal: () => terminalView(r.name, r.id) }[r.kind];
  // Arriving draws the view afresh; an event draws it over itself, so the
  // elements it keeps keep a click under way, the focus and typed text.
  if (navigated) $("#view").replaceChildren(view());
  else drawInto($("#view"), view());
  // A build's output follows its newest line.
  for (const pre of document.querySelectorAll("pre.step-output")) pre.scrollTop = pre.scrollHeight;
  drawRequestCount();
}

/** Draws the audit entries that arrived: the list's counters, or the
 * shown bottle's activity. */
function redrawEntries() {
  const r = route();
  if (r.kind === "list") redraw();
  else if (r.kind === "bottle") redrawActivity(r.name);
}

/** The number of requests waiting, beside "Requests" in the navigation. */
function drawRequestCount() {
  const n = store.requests.filter((r) => r.pending).length;
  const badge = $("#requests-count");
  badge.textContent = n ? String(n) : "";
  badge.hidden = !n;
}

/** Loads what the new route shows, then draws it (`fresh`: what the window
 * read at its start is not read again). */
async function onRoute({ fresh = false } = {}) {
  const r = route();
  if (r.kind === "bottle") {
    // A running bottle's activity is followed; another's is read afresh.
    await Promise.all([store.followed.has(r.name) || loadActivity(r.name), loadFailure(r.name)]);
  } else if (r.kind === "edit") {
    await loadEditor(r.name);
  } else if (r.kind === "text") {
    await loadText(r.name);
  } else if (r.kind === "new") {
    await loadNewBottle();
  } else if (r.kind === "requests") {
    // Drawn at once from what the app last announced (`requests-changed`),
    // so a click answers even while a terminal floods the IPC; then read afresh.
    redraw({ navigated: true });
    if (!fresh) await loadRequests();
  } else if (r.kind === "terminal") {
    if (!fresh) await loadSessions();
  } else if (r.kind === "settings") {
    store.doctor = null;
    redraw({ navigated: true });
    await loadDoctor();
  }
  redraw({ navigated: true });
  $("#view").focus();
}

async function main() {
  const marks = [["script", Date.now()]];
  onRedraw(() => redraw());
  // The app's events are listened to (each a round trip to the app, all at
  // once) while its settings are read; its state only after, so nothing
  // announced in between is missed.
  const listening = listen();
  store.info = await api.appInfo();
  // A window made afresh for a route (the tray, a notification) opens there.
  if (store.info.open_at) location.hash = store.info.open_at;
  if (store.info.tray_problem) showBanner(`No menu-bar icon: ${store.info.tray_problem}. Close this window to quit.`);
  window.addEventListener("hashchange", () => onRoute());
  // What ages (uptimes, the last hour's counters, grants' time left) is
  // drawn again when the user comes back to the window: nothing ticks
  // while it is left alone.
  window.addEventListener("focus", () => redraw());
  document.addEventListener("visibilitychange", () => { if (!document.hidden) redraw(); });
  // ⌘W (and ⌥⌘W, "close all") closes the window, as in any Mac window;
  // seen before a terminal would take it.
  window.addEventListener("keydown", (e) => {
    if (e.metaKey && !e.ctrlKey && e.code === "KeyW") {
      e.preventDefault();
      api.closeWindow();
    }
  }, true);
  await listening;
  marks.push(["listening", Date.now()]);
  // What the app knows already, all read at once (the running bottles'
  // activity, followed from then on, as soon as the listing names them):
  // the window shows it at once.
  const listingAndActivity = loadKnownListing().then(followRunning);
  await Promise.all([listingAndActivity, loadRequests(), loadSessions()]);
  marks.push(["state", Date.now()]);
  await onRoute({ fresh: true });
  marks.push(["shown", Date.now()]);
  // How long the window took, from being made to showing its state, and
  // when each stage ended (the window tests print them; docs/performance.md
  // reports them).
  const made = store.info.window_made_ms;
  if (made) {
    const root = document.documentElement;
    root.dataset.timeline = [["navigation", performance.timeOrigin], ...marks]
      .map(([what, at]) => `${what} ${Math.round(at - made)}`).join(", ");
    root.dataset.shownInMs = String(Date.now() - made);
  }
}

/** Listens to the app's events (all at once): the store and the view follow them. */
function listen() {
  let outputRedraw = null;
  let activityRedraw = null;
  return Promise.all([
    on("bottles-changed", (listing) => {
      store.listing = listing;
      store.listingAt = Date.now();
      // A bottle that started is followed (its activity read), one that
      // stopped no longer.
      const r = route();
      Promise.all([followRunning(), r.kind === "bottle" && loadFailure(r.name)]).then(() => redraw());
    }),
    on("bottle-event", ({ bottle: name, event }) => {
      applyEvent(name, event);
      const r = route();
      if (r.kind !== "bottle" || r.name !== name) return;
      // A build's output comes line by line: drawn at most five times a second.
      if (event.event === "step_output") outputRedraw ||= setTimeout(() => { outputRedraw = null; redraw(); }, 200);
      else redraw();
    }),
    on("audit-entry", ({ bottle: name, entry }) => {
      entryArrived(name, entry);
      const r = route();
      // A busy agent's requests come many a second: drawn at most five
      // times a second, in the list (every running bottle's counters) or
      // in the bottle's own activity.
      const shown = r.kind === "list" || (r.kind === "bottle" && r.name === name);
      if (shown) activityRedraw ||= setTimeout(() => { activityRedraw = null; redrawEntries(); }, 200);
    }),
    on("requests-changed", (requests) => {
      setRequests(requests);
      if (route().kind === "requests") redraw();
      else drawRequestCount();
    }),
    on("terminals-changed", setSessions),
    on("navigate", (hash) => { location.hash = hash; }),
  ]);
}

main().catch((e) => showBanner(String(e)));
