// The bottle list (#/).

import { h } from "../dom.js";
import { counters, countersText, formatUptime, noActivity, uptimeAt } from "../logic.js";
import { store } from "../store.js";
import { actions } from "./actions.js";

export function listView() {
  const now = Date.now();
  const cards = store.listing.bottles.map((b) => {
    const activity = store.activity[b.name] || noActivity();
    const c = counters(activity, now);
    return h("section", { class: "card bottle", dataset: { name: b.name, state: b.state } },
      h("div", { class: "row" },
        h("a", { href: `#/bottle/${encodeURIComponent(b.name)}`, class: "name" }, h("strong", {}, b.name)),
        h("span", { class: `badge ${b.state}` }, b.state_label),
        h("span", { class: "muted" }, b.backend),
        h("span", { class: "spacer" }),
        actions(b),
      ),
      h("dl", { class: "facts" },
        h("dt", {}, "Uptime"), h("dd", {}, formatUptime(uptimeAt(b.uptime_secs, store.listingAt, now))),
        h("dt", {}, "Sidecar IP"), h("dd", { class: "mono" }, b.sidecar_ip || "–"),
        h("dt", {}, "Egress (last hour)"), h("dd", { class: "egress-counters" }, activity.problem ? "audit log unreadable" : countersText(c)),
        b.problem ? [h("dt", {}, "Problem"), h("dd", {}, b.problem)] : null,
      ),
    );
  });
  const problems = store.listing.problems.map((p) => h("p", { class: "field-error" }, p));
  return h("div", { id: "bottles" }, cards.length ? cards : h("p", { class: "muted" }, "No bottles yet."), problems);
}
