// A bottle's buttons (launch, stop, shell, agent, verify) and what they do.

import { api } from "../api.js";
import { h, showBanner } from "../dom.js";
import { emptyTimeline } from "../logic.js";
import { redraw } from "../refresh.js";
import { loadFailure, store } from "../store.js";

const run = {
  launch: async (name) => {
    location.hash = `#/bottle/${encodeURIComponent(name)}`;
    store.timelines[name] = emptyTimeline();
    await api.launch(name);
  },
  stop: (name) => api.stop(name),
  verify: async (name) => showBanner(`${name}: ${(await api.verify(name)).summary}`),
  shell: (name) => api.openShell(name),
  agent: (name) => api.startAgent(name),
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
    showBanner({ launch: `Launching ${name} failed; the details are below.`, verify: `${name}: isolation leak — stopped; the details are below.` }[action] || first);
  } finally {
    store.busy.delete(name);
    if (action === "launch" || action === "verify") await loadFailure(name);
    redraw();
  }
}

/** The action buttons for bottle `b`. */
export function actions(b) {
  const busy = store.busy.has(b.name);
  const running = b.state === "running";
  const btn = (action, label, enabled, primary) =>
    h("button", { class: primary ? "primary" : null, dataset: { action, name: b.name }, disabled: !enabled || busy, onclick: () => act(action, b.name) }, label);
  return h("div", { class: "row" },
    btn("launch", b.state === "partial" || b.state === "isolation_leak" ? "Relaunch" : "Launch", !running, true),
    btn("stop", "Stop", b.state !== "not_launched"),
    btn("shell", "Open shell", running),
    btn("agent", "Start agent", running),
  );
}
