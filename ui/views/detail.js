// A bottle's page (#/bottle/NAME): facts, the last failure, the launch
// timeline, isolation, keep-alive and egress activity.

import { $, h, morph, showBanner } from "../dom.js";
import { activityWhy, countdown, diagnostics, emptyTimeline, filterActivity, formatDuration, formatUptime, isolation, keepalive, noActivity, scopeText, uptimeAt } from "../logic.js";
import { bottle, store } from "../store.js";
import { act, actions, rebuildButton } from "./actions.js";

export function detailView(name) {
  const b = bottle(name) || { name, state: "not_launched", state_label: "Not launched", backend: "" };
  return h("div", { id: "detail", dataset: { name } },
    h("section", { class: "card" },
      h("div", { class: "row" }, h("h2", {}, name), h("span", { class: `badge ${b.state}`, id: "detail-state" }, b.state_label), h("span", { class: "spacer" }), actions(b), rebuildButton(b), h("button", { dataset: { action: "external", name }, disabled: b.state !== "running", title: "Open a shell in your own terminal app", onclick: () => act("external", name) }, "Open in Terminal"), h("a", { href: `#/edit/${encodeURIComponent(name)}` }, "Edit")),
      h("dl", { class: "facts" },
        h("dt", {}, "Backend"), h("dd", {}, b.backend || "–"),
        h("dt", {}, "Uptime"), h("dd", {}, formatUptime(uptimeAt(b.uptime_secs, store.listingAt, Date.now()))),
        h("dt", {}, "Sidecar IP"), h("dd", { class: "mono", id: "sidecar-ip" }, b.sidecar_ip || "–"),
        h("dt", {}, "Manifest"), h("dd", { class: "mono" }, b.manifest || "–"),
      ),
    ),
    failureCard(name, b),
    timelineCard(name),
    isolationCard(b),
    grantsCard(b),
    keepaliveCard(b),
    activityCard(name),
  );
}

function failureCard(name, b) {
  const f = store.failures[name];
  if (!f) return null;
  return h("section", { class: "card failure", id: "failure" },
    h("h2", {}, "Launch failed"),
    h("dl", { class: "facts" },
      h("dt", {}, "Step"), h("dd", { id: "failure-step", class: "mono" }, f.step || "(before the plan ran)"),
      f.command ? [h("dt", {}, "Command"), h("dd", {}, h("details", {}, h("summary", {}, "show"), h("pre", { class: "mono", id: "failure-command" }, f.command)))] : null,
    ),
    h("pre", { class: "mono", id: "failure-stderr" }, f.stderr_tail || f.message),
    h("div", { class: "row" },
      h("button", { id: "copy-diagnostics", onclick: async () => { await navigator.clipboard?.writeText(diagnostics(f, b)).catch(() => {}); showBanner("Diagnostics copied."); } }, "Copy diagnostics"),
      h("button", { class: "primary", id: "retry", onclick: () => act("launch", name) }, "Retry"),
    ),
  );
}

function timelineCard(name) {
  const t = store.timelines[name] || emptyTimeline();
  if (t.status === "idle") return h("section", { class: "card", id: "timeline-card" }, h("h2", {}, "Launch"), h("p", { class: "muted", id: "timeline-status" }, "No launch in this session."));
  const marks = { pending: "○", running: "◐", finished: "✓", skipped: "–", failed: "✗" };
  const statusText = { running: "Launching…", ready: `Ready — sidecar ${t.sidecarIp || ""} ${t.durationMs ? `(${formatDuration(t.durationMs)})` : ""}`, failed: "Failed; rolled back", leak: "Isolation leak; stopped" }[t.status] || t.status;
  return h("section", { class: "card", id: "timeline-card" },
    h("div", { class: "row" }, h("h2", {}, "Launch"), h("span", { class: "spacer" }), h("span", { id: "timeline-status", class: t.status }, statusText)),
    h("ol", { class: "timeline", id: "timeline" },
      t.steps.map((s) => h("li", { class: `step ${s.state}`, dataset: { step: s.id } },
        h("span", { class: "mark", "aria-hidden": "true" }, marks[s.state] || "·"),
        h("details", { open: s.state === "running" && s.output?.length ? true : null },
          h("summary", {}, s.title, s.attempt ? ` (attempt ${s.attempt})` : "", s.durationMs != null ? h("span", { class: "muted" }, `  ${formatDuration(s.durationMs)}`) : "", s.reason ? h("span", { class: "muted" }, `  ${s.reason}`) : ""),
          s.command ? h("pre", { class: "mono" }, s.command) : null,
          s.output?.length ? h("pre", { class: "mono step-output", dataset: { step: s.id } }, s.output.slice(-40).join("\n")) : null,
          s.stderr ? h("pre", { class: "mono" }, s.stderr) : null,
        ))),
    ),
    t.notes.map((n) => h("p", { class: "muted" }, n)),
  );
}

function isolationCard(b) {
  const i = isolation(b);
  const running = b.state === "running";
  return h("section", { class: "card", id: "isolation", dataset: { status: i.status } },
    h("div", { class: "row" }, h("h2", {}, "Isolation"), h("span", { class: "spacer" }),
      h("span", { class: `badge ${i.status === "isolated" ? "running" : i.status === "leak" ? "isolation_leak" : "partial"}`, id: "isolation-status" }, i.title)),
    i.at ? h("p", {}, "Last self-test ", h("span", { class: "mono", id: "isolation-at" }, i.at)) : null,
    h("p", { class: "muted", id: "isolation-summary" }, i.sentence),
    h("button", { id: "verify", disabled: !running || store.busy.has(b.name), onclick: () => act("verify", b.name) }, "Verify now"),
  );
}

/** The supervise grants in force (answers to the agent's requests), with their time left. */
function grantsCard(b) {
  if (!b.grants?.length) return null;
  const elapsed = (Date.now() - store.listingAt) / 1000;
  return h("section", { class: "card", id: "grants" },
    h("div", { class: "row" }, h("h2", {}, "Grants in force"), h("span", { class: "spacer" }), h("a", { href: "#/requests" }, "Requests")),
    h("ul", {}, b.grants.map((g) => h("li", { class: "grant", dataset: { id: g.proposal } },
      h("span", { class: "mono" }, `${g.scope.host}:${g.scope.port}`), " ", scopeText(g.scope), " — ",
      h("span", { class: "muted" }, g.once ? "once, unused" : g.seconds_left == null ? "always (in the bottle's file)" : `${countdown(Math.max(0, g.seconds_left - elapsed))} left`)))),
  );
}

function keepaliveCard(b) {
  const k = keepalive(b);
  return h("section", { class: "card", id: "keepalive", dataset: { status: k.status } },
    h("div", { class: "row" }, h("h2", {}, "Keep-alive"), h("span", { class: "spacer" }), h("span", { class: `badge ${k.status === "alive" ? "running" : "partial"}` }, k.title)),
    k.since ? h("p", {}, "Alive since ", h("span", { class: "mono" }, k.since)) : null,
    h("p", { class: "muted" }, k.sentence),
    k.status === "dead" ? h("button", { class: "primary", onclick: () => act("launch", b.name) }, "Relaunch") : null,
  );
}

function activityCard(name) {
  const activity = store.activity[name] || noActivity();
  const rows = filterActivity(activity.entries, store.filter).slice(-200).reverse();
  return h("section", { class: "card", id: "activity" },
    h("div", { class: "row" },
      h("h2", {}, "Egress activity"), h("span", { class: "spacer" }),
      h("input", { id: "activity-filter", placeholder: "Filter host, path, rule…", value: store.filter.text, "aria-label": "Filter activity", oninput: (e) => { store.filter.text = e.target.value; redrawActivity(name); } }),
      h("select", { id: "activity-decision", "aria-label": "Decision", onchange: (e) => { store.filter.decision = e.target.value; redrawActivity(name); } },
        ["all", "allow", "deny"].map((d) => h("option", { value: d, selected: store.filter.decision === d }, d === "all" ? "All" : d === "allow" ? "Allowed" : "Denied"))),
    ),
    rows.length
      ? h("table", {},
          h("thead", {}, h("tr", {}, ["Time", "", "Method", "Host", "Path", "Rule", "Why"].map((c) => h("th", {}, c)))),
          h("tbody", {}, rows.map((e) => h("tr", { class: "entry" },
            h("td", { class: "mono" }, (e.time || "").slice(11, 19)),
            h("td", { class: e.decision }, e.decision),
            h("td", {}, e.method), h("td", {}, e.host), h("td", { class: "mono" }, e.path),
            h("td", {}, e.rule == null ? "" : `#${e.rule}`), h("td", {}, activityWhy(e)),
          ))))
      : activity.problem
        ? h("p", { class: "field-error" }, activity.problem)
        : h("p", { class: "muted" }, "No requests yet."),
  );
}

/** Redraws only the activity card (new entries, filter typing) over itself, keeping focus. */
export function redrawActivity(name) {
  const old = $("#activity");
  if (old) morph(old, activityCard(name));
}
