// New bottle from a template (#/new): pick the agent, the folder it works
// in, paste its key (kept in the OS keychain, never in the file), tick the
// hosts it may also reach, Save & Launch. "Own Dockerfile" opens the full
// editor (#/edit/).

import { api, pickFolder } from "../api.js";
import { $, h, showBanner } from "../dom.js";
import { suggestName } from "../logic.js";
import { store } from "../store.js";
import { act } from "./actions.js";

export function newBottleView() {
  const c = store.newBottle;
  if (!c) return h("p", { class: "muted" }, "Loading…");
  const draft = (c.draft ||= { template: "claude-code", workspace: "", name: "", nameEdited: false, auth: "", key: "", presets: [], githubToken: "", supervise: true });
  const template = () => c.templates.find((t) => t.name === draft.template);
  const error = (field) => h("div", { class: "field-error", dataset: { for: field } });
  const setWorkspace = (folder) => {
    draft.workspace = folder;
    $("#n-workspace").value = folder;
    if (!draft.nameEdited) {
      draft.name = suggestName(folder, c.taken);
      $("#n-name").value = draft.name;
    }
  };
  const keyPart = () => {
    const t = template();
    if (!t?.credentials.length) return h("p", { class: "muted", id: "n-nokey" }, "This template signs in to nothing; no key needed.");
    if (!t.credentials.some(([id]) => id === draft.auth)) draft.auth = t.credentials[0][0];
    return h("div", { id: "n-keypart" },
      t.credentials.length > 1
        ? h("div", { class: "row", role: "radiogroup", "aria-label": "Sign in with" },
            t.credentials.map(([id, label]) => h("label", {}, h("input", { type: "radio", name: "auth", value: id, checked: draft.auth === id, onchange: () => { draft.auth = id; redrawKey(); } }), ` ${label}`)))
        : null,
      h("label", { for: "n-key" }, t.credentials.find(([id]) => id === draft.auth)[1]),
      h("input", { id: "n-key", type: "password", autocomplete: "off", value: draft.key, oninput: (e) => { draft.key = e.target.value; } }),
      h("p", { class: "muted" }, "Kept in the OS keychain, never in the bottle's file; the agent sees only a placeholder, and the sidecar puts the real key on the wire."),
      error("key"),
    );
  };
  const redrawKey = () => $("#n-keypart, #n-nokey")?.replaceWith(keyPart());
  const save = async (e) => {
    e.preventDefault();
    for (const el of document.querySelectorAll("#new-bottle .field-error")) el.textContent = "";
    const t = template();
    try {
      await api.createBottle({
        name: draft.name, template: draft.template, workspace: draft.workspace,
        auth: t.credentials.length ? draft.auth : null, key: t.credentials.length ? draft.key : null,
        presets: draft.presets, supervise: draft.supervise,
        github_token: draft.presets.includes("github") && draft.githubToken ? draft.githubToken : null,
      });
    } catch (err) {
      const field = err?.field || "form";
      ($(`#new-bottle .field-error[data-for="${field}"]`) || $(`#new-bottle .field-error[data-for="form"]`)).textContent = err?.message || String(err);
      ($(`#n-${field}`))?.focus();
      return;
    }
    const name = draft.name;
    store.newBottle = null;
    showBanner(`Made ${name}; launching it (the first build of a template takes a minute or two).`);
    location.hash = `#/bottle/${encodeURIComponent(name)}`;
    act("launch", name);
  };
  return h("form", { class: "card", id: "new-bottle", onsubmit: save },
    h("h2", {}, "New bottle"),
    h("div", { class: "templates", role: "radiogroup", "aria-label": "Agent" },
      c.templates.map((t) => h("label", { class: `template${draft.template === t.name ? " chosen" : ""}`, dataset: { template: t.name } },
        h("input", { type: "radio", name: "template", value: t.name, checked: draft.template === t.name, onchange: () => { draft.template = t.name; for (const el of document.querySelectorAll(".template")) el.classList.toggle("chosen", el.dataset.template === t.name); redrawKey(); } }),
        h("strong", {}, t.title), h("span", { class: "muted" }, t.summary))),
      h("a", { class: "template", href: "#/edit/", id: "n-own" }, h("strong", {}, "Own Dockerfile"), h("span", { class: "muted" }, "Every setting, in the full editor")),
    ),
    error("template"),
    h("label", { for: "n-workspace" }, "Workspace folder (the agent works here, at /workspace)"),
    h("div", { class: "row" },
      h("input", { id: "n-workspace", value: draft.workspace, oninput: (e) => setWorkspace(e.target.value) }),
      h("button", { onclick: async (e) => { e.preventDefault(); const f = await pickFolder(); if (f) setWorkspace(f); } }, "Choose…")),
    error("workspace"),
    h("label", { for: "n-name" }, "Name"),
    h("input", { id: "n-name", value: draft.name, oninput: (e) => { draft.name = e.target.value; draft.nameEdited = true; } }),
    error("name"),
    keyPart(),
    h("h3", {}, "Also allow"),
    h("div", { class: "row presets" }, c.presets.map((p) => h("label", { title: p.hosts.join(", ") },
      h("input", { type: "checkbox", value: p.name, checked: draft.presets.includes(p.name), onchange: (e) => { draft.presets = e.target.checked ? [...draft.presets, p.name] : draft.presets.filter((x) => x !== p.name); const t = $("#n-github-token-row"); if (t && p.name === "github") t.hidden = !e.target.checked; } }), ` ${p.title}`))),
    c.presets.filter((p) => p.token).map((p) => h("div", { id: `n-${p.name}-token-row`, hidden: !draft.presets.includes(p.name) },
      h("label", { for: `n-${p.name}-token` }, p.token),
      h("input", { id: `n-${p.name}-token`, type: "password", autocomplete: "off", value: draft.githubToken, oninput: (e) => { draft.githubToken = e.target.value; } }))),
    error("preset"),
    h("label", {}, h("input", { type: "checkbox", id: "n-supervise", checked: draft.supervise, onchange: (e) => { draft.supervise = e.target.checked; } }), " Let the agent ask for other hosts (you answer; see Requests)"),
    error("form"),
    h("div", { class: "row" }, h("span", { class: "spacer" }), h("button", { type: "submit", class: "primary", id: "n-save" }, "Save & Launch")),
  );
}
