// The terminal view (#/terminal/NAME[/ID]): a bottle's sessions as tabs,
// each an xterm.js terminal fed by the app. Sessions live in the app, so
// this view only attaches to them: after a reload it attaches again and
// the app replays each session's scrollback.
//
// The terminals themselves are kept here across redraws (the rest of the
// window is redrawn from the store on events; a terminal never is).

import { api, newChannel } from "../api.js";
import { h, showBanner } from "../dom.js";
import { ackNow, endedText, fontSizeOf, openableLink, stepFontSize, tabLabels } from "../logic.js";

/**
 * xterm.js, its add-ons (~420 KB of script) and its stylesheet, loaded with
 * the first terminal shown rather than with the window, which then shows
 * its state sooner whenever it is made.
 */
let xterm = null;
function loadXterm() {
  xterm ||= Promise.all([
    loadStylesheet("vendor/xterm/xterm.css"),
    import("../vendor/xterm/xterm.js"),
    import("../vendor/xterm/addon-fit.js"),
    import("../vendor/xterm/addon-search.js"),
    import("../vendor/xterm/addon-unicode11.js"),
    import("../vendor/xterm/addon-web-links.js"),
  ]).then(([, x, fit, search, unicode, links]) => ({
    Terminal: x.Terminal,
    FitAddon: fit.FitAddon,
    SearchAddon: search.SearchAddon,
    Unicode11Addon: unicode.Unicode11Addon,
    WebLinksAddon: links.WebLinksAddon,
  }));
  return xterm;
}

/** Adds the stylesheet at `href` to the page; settles once it has loaded. */
function loadStylesheet(href) {
  return new Promise((resolve, reject) => {
    const link = Object.assign(document.createElement("link"), { rel: "stylesheet", href });
    link.onload = resolve;
    link.onerror = () => reject(new Error(`the stylesheet ${href} could not be loaded`));
    document.head.append(link);
  });
}

/** Every session the app has (from `terminal_list` and `terminals-changed`). */
let sessions = [];
/** The terminals drawn so far, by session id. */
const terms = new Map();
/** The session each bottle's view shows. */
const current = {};

const FONT_KEY = "bottlebar.terminal.fontSize";
const FONT_FAMILY = "ui-monospace, Menlo, 'DejaVu Sans Mono', monospace";
let fontSize = fontSizeOf(localStorage.getItem(FONT_KEY));

/** Takes the app's list of sessions (and redraws the tabs of the view on screen). */
export function setSessions(list) {
  sessions = list;
  const view = document.getElementById("terminal");
  if (view) drawTabs(view.dataset.name);
}

/** Bottle `name`'s sessions. */
export function sessionsOf(name) {
  return sessions.filter((s) => s.bottle === name);
}

/** Loads the sessions (on navigation). */
export async function loadSessions() {
  setSessions(await api.termList());
}

/** Opens a session of `kind` on bottle `name` and shows it. */
export async function openSession(name, kind) {
  const size = lastSize();
  const s = await api.termOpen(name, kind, size.cols, size.rows);
  sessions = [...sessions.filter((x) => x.id !== s.id), s];
  location.hash = `#/terminal/${encodeURIComponent(name)}/${s.id}`;
}

/** The view of bottle `name`, showing session `id` (or its newest). */
export function terminalView(name, id) {
  const mine = sessions.filter((s) => s.bottle === name);
  const shown = mine.find((s) => s.id === Number(id)) || mine.find((s) => s.id === current[name]) || mine[mine.length - 1];
  if (shown) current[name] = shown.id;
  const view = h("section", { id: "terminal", class: "card", dataset: { name } },
    h("div", { class: "row" },
      h("h2", {}, h("a", { href: `#/bottle/${encodeURIComponent(name)}` }, name)),
      h("span", { class: "spacer" }),
      h("button", { id: "term-new-shell", onclick: () => openSession(name, "shell").catch(showError) }, "New shell"),
      h("button", { id: "term-new-agent", onclick: () => openSession(name, "agent").catch(showError) }, "Start agent"),
      h("button", { id: "term-external", title: "Open a shell in your own terminal app", onclick: () => api.openInTerminal(name).catch(showError) }, "Open in Terminal"),
    ),
    h("ul", { class: "tabs", id: "term-tabs", role: "tablist" }),
    h("div", { id: "term-bars" }),
    h("div", { id: "term-host" }),
    h("p", { id: "term-status", class: "muted", hidden: true }),
  );
  if (!shown) {
    view.querySelector("#term-host").append(h("p", { class: "muted", id: "term-none" }, "No terminal on this bottle yet: open a shell or start its agent."));
  }
  // Drawn into the page first: xterm.js measures its cells on the page.
  queueMicrotask(() => {
    drawTabs(name);
    if (!shown) return;
    loadXterm().then((x) => {
      // Still the session this view shows (the user may have moved on).
      if (document.querySelector("#terminal")?.dataset.name === name && current[name] === shown.id) show(shown, x);
    }).catch(showError);
  });
  return view;
}

function showError(e) {
  showBanner(String(e).split("\n")[0]);
}

/** The tabs of bottle `name`'s sessions. */
function drawTabs(name) {
  const list = document.getElementById("term-tabs");
  if (!list) return;
  const mine = sessions.filter((s) => s.bottle === name);
  const labels = tabLabels(mine);
  list.replaceChildren(...mine.map((s, i) => h("li", { role: "tab", class: s.ended ? "tab ended" : "tab", dataset: { id: s.id, kind: s.kind }, "aria-selected": s.id === current[name] ? "true" : "false", title: s.command },
    h("a", { href: `#/terminal/${encodeURIComponent(name)}/${s.id}` }, labels[i], s.ended ? " (ended)" : ""),
    h("button", { class: "close", title: "Close this terminal", "aria-label": `Close ${labels[i]}`, onclick: () => closeSession(s) }, "×"),
  )));
  const s = mine.find((x) => x.id === current[name]);
  const status = document.getElementById("term-status");
  if (status) {
    const text = s && endedText(s.ended);
    status.textContent = text || "";
    status.hidden = !text;
  }
}

async function closeSession(s) {
  await api.termClose(s.id).catch(showError);
  terms.get(s.id)?.dispose();
  terms.delete(s.id);
  sessions = sessions.filter((x) => x.id !== s.id);
  if (current[s.bottle] === s.id) delete current[s.bottle];
  const target = `#/terminal/${encodeURIComponent(s.bottle)}`;
  if (location.hash === target) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = target;
}

/** Puts session `s`'s terminal in the view (making it with xterm.js `x` and attaching it the first time). */
function show(s, x) {
  const host = document.getElementById("term-host");
  if (!host) return;
  const t = terms.get(s.id) || makeTerm(s, x);
  host.replaceChildren(t.el);
  t.fit();
  t.term.focus();
}

/**
 * The size a new session starts at, before its view measures itself: the
 * newest terminal's, else an estimate from the window that errs small (a
 * program drawn narrower than its view just redraws wider on the resize
 * that follows; drawn wider, its first screen would wrap).
 */
function lastSize() {
  const t = [...terms.values()].pop();
  if (t) return { cols: t.term.cols, rows: t.term.rows };
  const view = document.getElementById("view");
  const ctx = document.createElement("canvas").getContext("2d");
  ctx.font = `${fontSize}px ${FONT_FAMILY}`;
  const cell = { w: ctx.measureText("W".repeat(40)).width / 40 || fontSize * 0.6, h: fontSize * 1.2 };
  // The card's padding and the tabs above the terminal.
  const cols = Math.floor(((view?.clientWidth || 800) - 60) / cell.w) - 6;
  const rows = Math.floor((window.innerHeight - 200) / cell.h) - 1;
  return { cols: Math.max(20, cols), rows: Math.max(5, rows) };
}

/** A terminal for session `s` (made with xterm.js `x`), attached to its output. */
function makeTerm(s, x) {
  const { Terminal, FitAddon, SearchAddon, Unicode11Addon, WebLinksAddon } = x;
  const el = h("div", { class: "term", dataset: { id: s.id } });
  const term = new Terminal({
    fontSize,
    fontFamily: FONT_FAMILY,
    scrollback: 5000,
    cursorBlink: true,
    allowProposedApi: true,
    // OSC 8 hyperlinks: shown, then opened only on the user's word.
    // Every scheme reaches `offerLink`, which refuses all but web and mail links, saying so.
    linkHandler: { activate: (_e, uri) => offerLink(uri), allowNonHttpProtocols: true },
  });
  const fit = new FitAddon();
  const search = new SearchAddon();
  term.loadAddon(fit);
  term.loadAddon(search);
  term.loadAddon(new WebLinksAddon((_e, uri) => offerLink(uri)));
  term.loadAddon(new Unicode11Addon());
  term.unicode.activeVersion = "11";
  term.open(el);

  // Offsets in the session's output: received, drawn, acknowledged.
  const t = { id: s.id, el, term, search, offset: 0, drawn: 0, acked: 0, ackTimer: null };
  t.fit = () => {
    if (!el.isConnected || !el.clientWidth) return;
    try { fit.fit(); } catch { /* not measurable yet */ }
  };
  t.dispose = () => term.dispose();

  term.onData((text) => api.termInput(s.id, text).catch(showError));
  term.onBinary((bin) => api.termInputBytes(s.id, Array.from(bin, (c) => c.charCodeAt(0) & 255)).catch(showError));
  term.onResize(({ cols, rows }) => api.termResize(s.id, cols, rows).catch(() => {}));
  term.attachCustomKeyEventHandler((e) => keys(e, t));
  new ResizeObserver(() => t.fit()).observe(el);

  const channel = newChannel();
  channel.onmessage = (m) => receive(t, m);
  api.termAttach(s.id, channel).catch(showError);
  terms.set(s.id, t);
  return t;
}

/**
 * Output from the app: bytes to draw — an ArrayBuffer, or base64 text on
 * Linux (src-tauri/src/terminals.rs says why) — or a note (`from`, `ended`).
 */
function receive(t, m) {
  const bytes = typeof m === "string" ? fromBase64(m) : m instanceof ArrayBuffer || Array.isArray(m) ? new Uint8Array(m) : null;
  if (bytes) {
    const upto = (t.offset += bytes.length);
    t.term.write(bytes, () => acknowledge(t, upto));
  } else if (m && typeof m.from === "number") {
    if (t.offset && m.from > t.offset) t.term.write(`\r\n\x1b[2m[… ${m.from - t.offset} bytes of output skipped …]\x1b[0m\r\n`);
    t.offset = m.from;
    t.acked = Math.max(t.acked, m.from);
  } else if (m && m.ended) {
    t.term.write(`\r\n\x1b[2m[${endedText(m.ended)}]\x1b[0m\r\n`);
    loadSessions().catch(() => {});
  }
}

function fromBase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

/** Tells the app what has been drawn: at once when far behind, else once a frame. */
function acknowledge(t, upto) {
  t.drawn = Math.max(t.drawn, upto);
  const send = () => {
    t.ackTimer = null;
    if (t.drawn > t.acked) {
      t.acked = t.drawn;
      api.termAck(t.id, t.drawn).catch(() => {});
    }
  };
  if (ackNow(t.drawn, t.acked)) send();
  else t.ackTimer ||= setTimeout(send, 16);
}

/** The view's own keys: font size, search, copy and paste. False: xterm.js does not see the key. */
function keys(e, t) {
  if (e.type !== "keydown") return true;
  const mod = e.metaKey || (e.ctrlKey && e.shiftKey);
  if (!mod) return true;
  const key = e.key.toLowerCase();
  const step = { "=": 1, "+": 1, "-": -1, "_": -1, "0": 0, ")": 0 }[key];
  if (step !== undefined) {
    setFontSize(stepFontSize(fontSize, step));
    return false;
  }
  if (key === "f") { openSearch(t); return false; }
  if (key === "c" && t.term.hasSelection()) { navigator.clipboard?.writeText(t.term.getSelection()); return false; }
  if (key === "v") { navigator.clipboard?.readText().then((text) => t.term.paste(text)).catch(() => {}); return false; }
  return true;
}

function setFontSize(size) {
  fontSize = size;
  localStorage.setItem(FONT_KEY, String(size));
  for (const t of terms.values()) {
    t.term.options.fontSize = size;
    t.fit();
  }
}

/** The search bar over the current terminal (Enter: next, Shift+Enter: previous, Escape: close). */
function openSearch(t) {
  const bars = document.getElementById("term-bars");
  if (!bars) return;
  const input = h("input", { type: "search", id: "term-search", placeholder: "Find in terminal", "aria-label": "Find in terminal" });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") (e.shiftKey ? t.search.findPrevious : t.search.findNext).call(t.search, input.value);
    if (e.key === "Escape") { bars.replaceChildren(); t.search.clearDecorations(); t.term.focus(); }
  });
  bars.replaceChildren(h("div", { class: "row bar" }, input));
  input.focus();
}

/** A link the agent printed: shown in full, opened in the browser only if the user says so. */
function offerLink(uri) {
  const bars = document.getElementById("term-bars");
  const url = openableLink(uri);
  if (!bars) return;
  if (!url) {
    bars.replaceChildren(h("div", { class: "row bar", id: "term-link" }, h("span", {}, "Not opening a link of this kind: "), h("code", {}, String(uri).slice(0, 200)), h("button", { onclick: () => bars.replaceChildren() }, "Dismiss")));
    return;
  }
  bars.replaceChildren(h("div", { class: "row bar", id: "term-link" },
    h("span", {}, "Open in your browser? "),
    h("code", { id: "term-link-url" }, url),
    h("span", { class: "spacer" }),
    h("button", { class: "primary", id: "term-link-open", onclick: () => { bars.replaceChildren(); api.openLink(url).catch(showError); } }, "Open"),
    h("button", { onclick: () => bars.replaceChildren() }, "Cancel"),
  ));
}
