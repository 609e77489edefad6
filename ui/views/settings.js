// Settings (#/settings): the engines, the backend in use and why, the
// sidecar and secrets store, from one doctor report (loaded on opening
// Settings or on Refresh, never on redraw).

import { api } from "../api.js";
import { h, showBanner } from "../dom.js";
import { redraw } from "../refresh.js";
import { loadDoctor, store } from "../store.js";

export function settingsView() {
  const d = store.doctor;
  const info = store.info;
  const refresh = async () => { await loadDoctor(); redraw(); };
  if (!d) return h("p", { class: "muted" }, "Checking the engines…");
  if (d.error) return h("p", { class: "field-error" }, d.error);
  return h("div", { id: "settings" },
    h("section", { class: "card" },
      h("div", { class: "row" }, h("h2", {}, "Backend"), h("span", { class: "spacer" }), h("button", { id: "refresh-doctor", onclick: refresh }, "Check again")),
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
        e.kind === "apple" && e.program && !e.running ? h("button", { class: "primary", onclick: async () => { showBanner((await api.fixEngine()).join("; ") || "nothing to do"); await refresh(); } }, "Start the container service") : null,
      )),
      h("p", {}, "Sidecar binary: ", h("span", { class: `mono ${d.sidecar.ok ? "" : "field-error"}` }, d.sidecar.detail)),
      h("p", {}, "Secrets store: ", h("span", { id: "secrets-store" }, d.secrets_store)),
    ),
    info ? h("section", { class: "card" }, h("h2", {}, "About"), h("p", {}, `Bottlebar ${info.version} — bottles in `, h("span", { class: "mono" }, info.home))) : null,
  );
}
