// The window: routes (#/, #/bottle/NAME, #/edit/NAME, #/settings), rendering,
// and the wiring to the app's commands and events. Logic lives in logic.js.

import { stateLabel, formatUptime, formatDuration, keepalive, isolation, emptyTimeline, reduceTimeline, counters, filterActivity, fieldForKey, diagnostics } from "./logic.js";

const tauri = window.__TAURI__;
const invoke = (cmd, args) => tauri.core.invoke(cmd, args);
const listen = (ev, f) => tauri.event.listen(ev, (e) => f(e.payload));

const state = {
  listing: { bottles: [], problems: [] },
  timelines: {}, // bottle → timeline
  activity: {}, // bottle → audit entries
  filter: { text: "", decision: "all" },
  busy: new Set(),
};

const $ = (sel, root = document) => root.querySelector(sel);
const view = () => $("#view");

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c != null && c !== false) el.append(c.nodeType ? c : String(c));
  return el;
}

function route() {
  const hash = location.hash || "#/";
  const [, kind, name] = hash.match(/^#\/(bottle|edit|settings)?\/?(.*)$/) || [];
  return { kind: kind || "list", name: decodeURIComponent(name || "") };
}

function bottle(name) {
  return state.listing.bottles.find((b) => b.name === name);
}

async function act(action, name) {
  state.busy.add(name);
  render();
  try {
    if (action === "launch") {
      location.hash = `#/bottle/${encodeURIComponent(name)}`;
      state.timelines[name] = emptyTimeline();
      await invoke("launch_bottle", { name });
    } else if (action === "stop") {
      await invoke("stop_bottle", { name });
    } else if (action === "verify") {
      const r = await invoke("verify_bottle", { name });
      showBanner(`${name}: ${r.summary}`);
    } else if (action === "shell") {
      await invoke("open_shell", { name });
    } else if (action === "agent") {
      await invoke("start_agent", { name });
    }
  } catch (e) {
    // The failure view has the details; the banner says what happened.
    showBanner(action === "launch" ? `Launching ${name} failed; the details are below.` : action === "verify" ? `${name}: isolation leak — stopped; the details are below.` : String(e).split("\n")[0]);
  } finally {
    state.busy.delete(name);
    render();
  }
}

function actions(b) {
  const busy = state.busy.has(b.name);
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

function renderList() {
  const now = Date.now();
  const cards = state.listing.bottles.map((b) => {
    const c = counters(state.activity[b.name] || [], now);
    return h("section", { class: "card bottle", dataset: { name: b.name, state: b.state } },
      h("div", { class: "row" },
        h("a", { href: `#/bottle/${encodeURIComponent(b.name)}`, class: "name" }, h("strong", {}, b.name)),
        h("span", { class: `badge ${b.state}` }, stateLabel(b.state)),
        h("span", { class: "muted" }, b.backend),
        h("span", { class: "spacer" }),
        actions(b),
      ),
      h("dl", { class: "facts" },
        h("dt", {}, "Uptime"), h("dd", {}, formatUptime(b.uptime_secs)),
        h("dt", {}, "Sidecar IP"), h("dd", { class: "mono" }, b.sidecar_ip || "–"),
        h("dt", {}, "Egress (last hour)"), h("dd", { class: "egress-counters" }, `${c.allowed} allowed, ${c.denied} denied`),
        b.problem ? [h("dt", {}, "Problem"), h("dd", {}, b.problem)] : null,
      ),
    );
  });
  const problems = state.listing.problems.map((p) => h("p", { class: "field-error" }, p));
  return h("div", { id: "bottles" }, cards.length ? cards : h("p", { class: "muted" }, "No bottles yet."), problems);
}

function renderTimeline(name) {
  const t = state.timelines[name] || emptyTimeline();
  if (t.status === "idle") return h("section", { class: "card", id: "timeline-card" }, h("h2", {}, "Launch"), h("p", { class: "muted", id: "timeline-status" }, "No launch in this session."));
  const marks = { pending: "○", running: "◐", finished: "✓", skipped: "–", failed: "✗" };
  const statusText = { running: "Launching…", ready: `Ready — sidecar ${t.sidecarIp || ""} ${t.durationMs ? `(${formatDuration(t.durationMs)})` : ""}`, failed: "Failed; rolled back", leak: "Isolation leak; stopped" }[t.status] || t.status;
  return h("section", { class: "card", id: "timeline-card" },
    h("div", { class: "row" }, h("h2", {}, "Launch"), h("span", { class: "spacer" }), h("span", { id: "timeline-status", class: t.status }, statusText)),
    h("ol", { class: "timeline", id: "timeline" },
      t.steps.map((s) => h("li", { class: `step ${s.state}`, dataset: { step: s.id } },
        h("span", { class: "mark", "aria-hidden": "true" }, marks[s.state] || "·"),
        h("details", {},
          h("summary", {}, s.title, s.attempt ? ` (attempt ${s.attempt})` : "", s.durationMs != null ? h("span", { class: "muted" }, `  ${formatDuration(s.durationMs)}`) : "", s.reason ? h("span", { class: "muted" }, `  ${s.reason}`) : ""),
          s.command ? h("pre", { class: "mono" }, s.command) : null,
          s.stderr ? h("pre", { class: "mono" }, s.stderr) : null,
        ))),
    ),
    t.notes.map((n) => h("p", { class: "muted" }, n)),
  );
}

function renderIsolation(b) {
  const i = isolation(b);
  const running = b.state === "running";
  return h("section", { class: "card", id: "isolation", dataset: { status: i.status } },
    h("div", { class: "row" }, h("h2", {}, "Isolation"), h("span", { class: "spacer" }),
      h("span", { class: `badge ${i.status === "isolated" ? "running" : i.status === "leak" ? "isolation_leak" : "partial"}`, id: "isolation-status" }, i.title)),
    i.at ? h("p", {}, "Last self-test ", h("span", { class: "mono", id: "isolation-at" }, i.at)) : null,
    h("p", { class: "muted", id: "isolation-summary" }, i.sentence),
    h("button", { id: "verify", disabled: !running || state.busy.has(b.name), onclick: () => act("verify", b.name) }, "Verify now"),
  );
}

function renderKeepalive(b) {
  const k = keepalive(b);
  return h("section", { class: "card", id: "keepalive", dataset: { status: k.status } },
    h("div", { class: "row" }, h("h2", {}, "Keep-alive"), h("span", { class: "spacer" }), h("span", { class: `badge ${k.status === "alive" ? "running" : "partial"}` }, k.title)),
    k.since ? h("p", {}, "Alive since ", h("span", { class: "mono" }, k.since)) : null,
    h("p", { class: "muted" }, k.sentence),
    k.status === "dead" ? h("button", { class: "primary", onclick: () => act("launch", b.name) }, "Relaunch") : null,
  );
}

async function renderFailure(name) {
  const f = await invoke("last_failure", { name });
  if (!f) return null;
  const b = bottle(name);
  return h("section", { class: "card failure", id: "failure" },
    h("h2", {}, "Launch failed"),
    h("dl", { class: "facts" },
      h("dt", {}, "Step"), h("dd", { id: "failure-step", class: "mono" }, f.step || "(before the plan ran)"),
      f.command ? [h("dt", {}, "Command"), h("dd", {}, h("details", {}, h("summary", {}, "show"), h("pre", { class: "mono", id: "failure-command" }, f.command)))] : null,
    ),
    f.stderr_tail ? h("pre", { class: "mono", id: "failure-stderr" }, f.stderr_tail) : h("pre", { class: "mono", id: "failure-stderr" }, f.message),
    h("div", { class: "row" },
      h("button", { id: "copy-diagnostics", onclick: async () => { await navigator.clipboard?.writeText(diagnostics(f, b)).catch(() => {}); showBanner("Diagnostics copied."); } }, "Copy diagnostics"),
      h("button", { class: "primary", id: "retry", onclick: () => act("launch", name) }, "Retry"),
    ),
  );
}

function renderActivity(name) {
  const rows = filterActivity(state.activity[name] || [], state.filter).slice(-200).reverse();
  return h("section", { class: "card", id: "activity" },
    h("div", { class: "row" },
      h("h2", {}, "Egress activity"), h("span", { class: "spacer" }),
      h("input", { id: "activity-filter", placeholder: "Filter host, path, rule…", value: state.filter.text, "aria-label": "Filter activity", oninput: (e) => { state.filter.text = e.target.value; rerenderActivity(name); } }),
      h("select", { id: "activity-decision", "aria-label": "Decision", onchange: (e) => { state.filter.decision = e.target.value; rerenderActivity(name); } },
        ["all", "allow", "deny"].map((d) => h("option", { value: d, selected: state.filter.decision === d }, d === "all" ? "All" : d === "allow" ? "Allowed" : "Denied"))),
    ),
    rows.length
      ? h("table", {},
          h("thead", {}, h("tr", {}, ["Time", "", "Method", "Host", "Path", "Rule", "Why"].map((c) => h("th", {}, c)))),
          h("tbody", {}, rows.map((e) => h("tr", { class: "entry" },
            h("td", { class: "mono" }, (e.time || "").slice(11, 19)),
            h("td", { class: e.decision }, e.decision),
            h("td", {}, e.method), h("td", {}, e.host), h("td", { class: "mono" }, e.path),
            h("td", {}, e.rule == null ? "" : `#${e.rule}`), h("td", {}, e.reason || (e.injected ? `injected ${e.injected}` : "")),
          ))))
      : h("p", { class: "muted" }, "No requests yet."),
  );
}

function rerenderActivity(name) {
  const old = $("#activity");
  if (!old) return;
  const focused = document.activeElement?.id;
  old.replaceWith(renderActivity(name));
  if (focused) $(`#${focused}`)?.focus();
}

async function renderDetail(name) {
  const b = bottle(name) || { name, state: "not_launched", backend: "" };
  const failure = await renderFailure(name);
  return h("div", { id: "detail", dataset: { name } },
    h("section", { class: "card" },
      h("div", { class: "row" }, h("h2", {}, name), h("span", { class: `badge ${b.state}`, id: "detail-state" }, stateLabel(b.state)), h("span", { class: "spacer" }), actions(b), h("a", { href: `#/edit/${encodeURIComponent(name)}` }, "Edit")),
      h("dl", { class: "facts" },
        h("dt", {}, "Backend"), h("dd", {}, b.backend || "–"),
        h("dt", {}, "Uptime"), h("dd", {}, formatUptime(b.uptime_secs)),
        h("dt", {}, "Sidecar IP"), h("dd", { class: "mono", id: "sidecar-ip" }, b.sidecar_ip || "–"),
        h("dt", {}, "Manifest"), h("dd", { class: "mono" }, b.manifest || "–"),
      ),
    ),
    failure,
    renderTimeline(name),
    renderIsolation(b),
    renderKeepalive(b),
    renderActivity(name),
  );
}

// ---- editor -------------------------------------------------------------

function rowList(form, key, blank, cls, fields, id) {
  const wrap = h("div", { id });
  const draw = () => {
    wrap.replaceChildren(
      h("div", { class: `grid ${cls}` },
        form[key].map((item, i) => [
          fields.map(([f, label, type]) => type === "checkbox"
            ? h("label", {}, h("input", { type: "checkbox", checked: item[f], onchange: (e) => { item[f] = e.target.checked; } }), ` ${label}`)
            : h("input", { placeholder: label, "aria-label": label, value: item[f] || "", dataset: { field: `${id}-${i}` }, oninput: (e) => { item[f] = e.target.value; } })),
          h("button", { "aria-label": "Remove", onclick: (e) => { e.preventDefault(); form[key].splice(i, 1); draw(); } }, "×"),
        ]),
      ),
      h("button", { onclick: (e) => { e.preventDefault(); form[key].push({ ...blank }); draw(); } }, "Add"),
    );
  };
  draw();
  return wrap;
}

async function renderEditor(name) {
  const form = await invoke("load_bottle", { name });
  const input = (key, label, attrs = {}) => [h("label", { for: `f-${key}` }, label), h("input", { id: `f-${key}`, value: form[key] || "", oninput: (e) => { form[key] = e.target.value; }, ...attrs }), h("div", { class: "field-error", dataset: { for: key } })];
  const errorsFor = (field) => $(`.field-error[data-for="${field}"]`);
  const save = async (e) => {
    e.preventDefault();
    for (const el of document.querySelectorAll(".field-error")) el.textContent = "";
    try {
      const path = await invoke("save_bottle", { form });
      showBanner(`Saved ${path}`);
      location.hash = `#/bottle/${encodeURIComponent(form.name)}`;
    } catch (errs) {
      for (const err of Array.isArray(errs) ? errs : [{ key: "", message: String(errs) }]) {
        const field = fieldForKey(err.key, form);
        const target = errorsFor(field.replace(/-\d+$/, "")) || errorsFor("form");
        target.textContent = `${err.key ? err.key + ": " : ""}${err.message}`;
        $(`[data-field="${field}"]`)?.focus();
      }
    }
  };
  const pick = async () => {
    const dialog = tauri.dialog;
    if (dialog?.open) {
      const folder = await dialog.open({ directory: true });
      if (folder) { form.workspace = folder; $("#f-workspace").value = folder; }
    } else {
      $("#f-workspace").focus();
    }
  };
  return h("form", { class: "card", id: "editor", onsubmit: save },
    h("h2", {}, name ? `Edit ${name}` : "New bottle"),
    input("name", "Name (lowercase letters, digits, -)", { readonly: name ? true : null, required: true }),
    input("description", "Description"),
    input("template", "Agent template (busybox), or leave empty and give a Dockerfile"),
    input("dockerfile", "Dockerfile (relative to the bottles folder)"),
    input("agent_command", "Agent command, for Start agent (e.g. claude)"),
    h("label", { for: "f-workspace" }, "Workspace folder (mounted at /workspace)"),
    h("div", { class: "row" }, h("input", { id: "f-workspace", value: form.workspace || "", oninput: (e) => { form.workspace = e.target.value; } }), h("button", { onclick: (e) => { e.preventDefault(); pick(); } }, "Choose…")),
    h("div", { class: "field-error", dataset: { for: "workspace" } }),
    h("h3", {}, "Extra mounts"), rowList(form, "mounts", { host: "", container: "", readonly: true }, "", [["host", "Host path"], ["container", "Container path"], ["readonly", "read-only", "checkbox"]], "mount"),
    h("div", { class: "field-error", dataset: { for: "mount" } }),
    h("h3", {}, "Egress rules"), rowList(form, "egress", { host: "", methods: "", paths: "", inject_secret: "" }, "rules", [["host", "Host (or *.domain)"], ["methods", "Methods"], ["paths", "Path prefixes"], ["inject_secret", "Inject secret"]], "egress"),
    h("div", { class: "field-error", dataset: { for: "egress" } }),
    h("h3", {}, "Environment"), rowList(form, "env", { key: "", value: "" }, "env", [["key", "Name"], ["value", "Value"]], "env"),
    h("div", { class: "field-error", dataset: { for: "env" } }),
    h("h3", {}, "Secrets (stored in the OS keychain, never in the file)"), rowList(form, "secrets", { name: "", placeholder_env: "", value: "" }, "secrets", [["name", "Name"], ["placeholder_env", "Placeholder variable"], ["value", "New value"]], "secrets"),
    h("div", { class: "field-error", dataset: { for: "secrets" } }),
    h("div", { class: "field-error", dataset: { for: "form" } }),
    h("div", { class: "row" }, h("span", { class: "spacer" }), h("button", { type: "submit", class: "primary", id: "save" }, "Save")),
  );
}

// ---- settings -------------------------------------------------------------

async function renderSettings() {
  const d = await invoke("doctor");
  const info = await invoke("app_info");
  return h("div", { id: "settings" },
    h("section", { class: "card" },
      h("h2", {}, "Backend"),
      h("p", {}, h("strong", { id: "default-backend" }, d.default_backend), " — ", d.reason),
      d.engines.map((e) => h("div", { class: "card engine", dataset: { kind: e.kind } },
        h("div", { class: "row" }, h("strong", {}, e.kind), h("span", { class: `badge ${e.running && !e.problem ? "running" : "partial"}` }, e.running && !e.problem ? "ready" : "not ready")),
        h("dl", { class: "facts" },
          h("dt", {}, "Program"), h("dd", { class: "mono" }, e.program || "not found"),
          h("dt", {}, "Client"), h("dd", {}, e.client_version || "–"),
          h("dt", {}, "Engine"), h("dd", {}, e.server_version || "–"),
          e.sandbox ? [h("dt", {}, "Agent sandbox"), h("dd", { class: "sandbox" }, e.sandbox)] : null,
          e.problem ? [h("dt", {}, "Problem"), h("dd", {}, e.problem)] : null,
          e.fix ? [h("dt", {}, "Fix"), h("dd", {}, e.fix)] : null,
        ),
        e.kind === "apple" && e.program && !e.running ? h("button", { class: "primary", onclick: async () => { showBanner((await invoke("fix_engine")).join("; ") || "nothing to do"); render(); } }, "Start the container service") : null,
      )),
      h("p", {}, "Sidecar binary: ", h("span", { class: "mono" }, d.sidecar.Ok || d.sidecar.Err)),
      h("p", {}, "Secrets store: ", h("span", { id: "secrets-store" }, d.secrets_store)),
    ),
    h("section", { class: "card" }, h("h2", {}, "About"), h("p", {}, `Bottlebar ${info.version} — bottles in `, h("span", { class: "mono" }, info.home))),
  );
}

// ---- plumbing -------------------------------------------------------------

function showBanner(text) {
  const b = $("#banner");
  b.textContent = text;
  b.hidden = !text;
}

let rendering = Promise.resolve();
function render() {
  rendering = rendering.then(renderNow, renderNow);
  return rendering;
}

async function renderNow() {
  const r = route();
  for (const a of document.querySelectorAll("nav a")) a.removeAttribute("aria-current");
  const current = { list: "#nav-bottles", edit: "#nav-new", settings: "#nav-settings", bottle: "#nav-bottles" }[r.kind];
  $(current)?.setAttribute("aria-current", "page");
  let content;
  try {
    if (r.kind === "bottle") content = await renderDetail(r.name);
    else if (r.kind === "edit") content = await renderEditor(r.name);
    else if (r.kind === "settings") content = await renderSettings();
    else content = renderList();
  } catch (e) {
    content = h("p", { class: "field-error" }, String(e));
  }
  // Keep the editor's typing state: only re-render it on navigation.
  if (r.kind === "edit" && $("#editor") && !renderNow.navigated) return;
  renderNow.navigated = false;
  view().replaceChildren(content);
}

async function loadActivity(name) {
  try {
    state.activity[name] = await invoke("audit", { name, limit: 500 });
  } catch {
    state.activity[name] = [];
  }
}

async function onRoute() {
  renderNow.navigated = true;
  const r = route();
  if (r.kind === "bottle") {
    await loadActivity(r.name);
    invoke("follow_audit", { name: r.name });
  }
  await render();
  view().focus();
}

async function main() {
  const info = await invoke("app_info");
  if (info.tray_problem) showBanner(`No menu-bar icon: ${info.tray_problem}. Close this window to quit.`);
  await listen("bottles-changed", (listing) => { state.listing = listing; if (route().kind !== "edit") render(); });
  await listen("bottle-event", ({ bottle: name, event }) => {
    state.timelines[name] = reduceTimeline(state.timelines[name] || emptyTimeline(), event);
    const r = route();
    if (r.kind === "bottle" && r.name === name) render();
  });
  await listen("audit-entry", ({ bottle: name, entry }) => {
    (state.activity[name] ||= []).push(entry);
    if (route().kind === "bottle" && route().name === name) rerenderActivity(name);
  });
  await listen("navigate", (hash) => { location.hash = hash; });
  window.addEventListener("hashchange", onRoute);
  state.listing = await invoke("list_bottles");
  await Promise.all(state.listing.bottles.filter((b) => b.state === "running").map((b) => loadActivity(b.name)));
  await onRoute();
}

main();
