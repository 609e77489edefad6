// A bottle's buttons (launch, rebuild, stop, shell, agent, verify) and what they do.
// Shell and agent open a tab in the window's terminal view.

import { api } from "../api.js";
import { h, showBanner } from "../dom.js";
import { emptyTimeline } from "../logic.js";
import { redraw } from "../refresh.js";
import { loadFailure, store } from "../store.js";
import { openSession, sessionsOf } from "./terminal.js";

const run = {
  launch: async (name) => {
    location.hash = `#/bottle/${encodeURIComponent(name)}`;
    store.timelines[name] = emptyTimeline();
    await api.launch(name);
  },
  rebuild: async (name) => {
    location.hash = `#/bottle/${encodeURIComponent(name)}`;
    store.timelines[name] = emptyTimeline();
    await api.rebuild(name);
  },
  stop: (name) => api.stop(name),
  verify: async (name) => showBanner(`${name}: ${(await api.verify(name)).summary}`),
  shell: (name) => openSession(name, "shell"),
  agent: (name) => openSession(name, "agent"),
  external: (name) => api.openInTerminal(name),
};

/** Runs a bottle action; the button shows busy meanwhile. */
export async function act(action, name) {
  store.busy.add(name);
  redraw();
  try {
    await run[action](name);
  } catch (e) {
    // The failure card has the details; the banner says what happened.
    const first = String(e).split("\n")[0];
    showBanner({ launch: `Launching ${name} failed; the details are below.`, rebuild: `Rebuilding ${name} failed; the details are below.`, verify: `${name}: isolation leak — stopped; the details are below.` }[action] || first);
  } finally {
    store.busy.delete(name);
    if (action === "launch" || action === "rebuild" || action === "verify") await loadFailure(name);
    redraw();
  }
}

/** "Rebuild": the agent's image afresh (a template's CLI at its newest release), then relaunch. */
export function rebuildButton(b) {
  return h("button", { dataset: { action: "rebuild", name: b.name }, disabled: store.busy.has(b.name) || b.state === "unknown", title: "Build the agent's image afresh (a template fetches its CLI's newest release) and relaunch", onclick: () => act("rebuild", b.name) }, "Rebuild");
}

/** The action buttons for bottle `b`. */
export function actions(b) {
  const busy = store.busy.has(b.name);
  const running = b.state === "running";
  const terms = sessionsOf(b.name).length;
  const btn = (action, label, enabled, primary) =>
    h("button", { class: primary ? "primary" : null, dataset: { action, name: b.name }, disabled: !enabled || busy, onclick: () => act(action, b.name) }, label);
  return h("div", { class: "row" },
    btn("launch", b.state === "partial" || b.state === "isolation_leak" ? "Relaunch" : "Launch", !running, true),
    btn("stop", "Stop", b.state !== "not_launched"),
    btn("shell", "Open shell", running),
    btn("agent", "Start agent", running),
    terms ? h("a", { class: "terminals", href: `#/terminal/${encodeURIComponent(b.name)}` }, `Terminals (${terms})`) : null,
  );
}
