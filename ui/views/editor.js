// The bottle editor (#/edit/NAME, #/edit/ for a new one) and the text
// editor (#/text/NAME). The form edits the file in place (the core keeps
// what the form does not show); a file the form cannot read opens as text.

import { api, pickFolder } from "../api.js";
import { $, h, showBanner } from "../dom.js";
import { store } from "../store.js";

export function editorView() {
  const ed = store.editor;
  if (ed.error) return openError(ed.name, ed.error);
  if (ed.text) return textEditor(ed.name, ed.text.text, ed.text.revision, null);
  return formEditor(ed.name, ed.form);
}

/** Why a bottle cannot be opened in the form; a broken file opens as text. */
function openError(name, e) {
  if (e?.kind === "unparseable") {
    const where = `${e.path}:${e.line}:${e.column}`;
    return textEditor(name, e.text, e.revision,
      h("p", { class: "field-error", id: "parse-error" }, `This file is not valid TOML, so the form cannot show it without losing what it holds. ${where}: ${e.message}`));
  }
  const message = typeof e === "object" && e ? e.message || (e.kind === "not_found" ? `No bottle named ${e.name} (expected ${e.path}).` : JSON.stringify(e)) : String(e);
  return h("p", { class: "field-error" }, message);
}

function textEditor(name, text, revision, note) {
  const save = async (ev) => {
    ev.preventDefault();
    const error = $(".field-error[data-for='form']");
    error.textContent = "";
    try {
      const path = await api.saveBottleText(name, $("#f-text").value, revision);
      showBanner(`Saved ${path}`);
      location.hash = `#/bottle/${encodeURIComponent(name)}`;
    } catch (errs) {
      error.textContent = (Array.isArray(errs) ? errs : [{ message: String(errs) }]).map((e) => e.message).join("\n");
    }
  };
  return h("form", { class: "card", id: "text-editor", onsubmit: save },
    h("h2", {}, `Edit ${name} as text`),
    note,
    h("p", { class: "muted" }, "The file is checked as the CLI reads it before it is saved; the previous version is kept as ", h("span", { class: "mono" }, `${name}.toml.bak`), "."),
    h("textarea", { id: "f-text", class: "mono", rows: 24, spellcheck: "false", "aria-label": "Bottle file", value: text }),
    h("div", { class: "field-error", dataset: { for: "form" } }),
    h("div", { class: "row" }, h("span", { class: "spacer" }), h("button", { type: "submit", class: "primary", id: "save" }, "Save")),
  );
}

function rowList(form, key, blank, cls, fields, id) {
  const wrap = h("div", { id });
  const draw = () => {
    wrap.replaceChildren(
      h("div", { class: `grid ${cls}` },
        form[key].map((item, i) => [
          fields.map(([f, label, type, disabled]) => type === "checkbox"
            ? h("label", {}, h("input", { type: "checkbox", checked: item[f], onchange: (e) => { item[f] = e.target.checked; } }), ` ${label}`)
            : h("input", { placeholder: disabled?.(item) || label, "aria-label": label, value: item[f] || "", disabled: !!disabled?.(item), dataset: { field: `${id}-${i}` }, oninput: (e) => { item[f] = e.target.value; } })),
          h("button", { "aria-label": "Remove", onclick: (e) => { e.preventDefault(); form[key].splice(i, 1); draw(); } }, "×"),
        ]),
      ),
      h("button", { onclick: (e) => { e.preventDefault(); form[key].push({ ...blank }); draw(); } }, "Add"),
    );
  };
  draw();
  return wrap;
}

/** Where an error goes: the field's own error line, else the form's. */
function showErrors(errs) {
  for (const el of document.querySelectorAll(".field-error")) el.textContent = "";
  for (const err of Array.isArray(errs) ? errs : [{ field: "form", key: "", message: String(errs) }]) {
    const field = err.field || "form";
    const target = $(`.field-error[data-for="${field.replace(/-\d+$/, "")}"]`) || $(`.field-error[data-for="form"]`);
    target.textContent = `${err.key ? err.key + ": " : ""}${err.message}`;
    ($(`[data-field="${field}"]`) || $(`#f-${field}`))?.focus();
  }
}

function formEditor(name, form) {
  const input = (key, label, attrs = {}) => [h("label", { for: `f-${key}` }, label), h("input", { id: `f-${key}`, value: form[key] || "", oninput: (e) => { form[key] = e.target.value; }, ...attrs }), h("div", { class: "field-error", dataset: { for: key } })];
  const save = async (e) => {
    e.preventDefault();
    try {
      const path = await api.saveBottle(form);
      showBanner(`Saved ${path}`);
      location.hash = `#/bottle/${encodeURIComponent(form.name)}`;
    } catch (errs) {
      showErrors(errs);
    }
  };
  const pick = async () => {
    const folder = await pickFolder();
    if (folder) { form.workspace = folder; $("#f-workspace").value = folder; } else $("#f-workspace").focus();
  };
  const fromElsewhere = (s) => (s.origin && s.source && s.source !== "keychain" ? `from ${s.source}` : null);
  return h("form", { class: "card", id: "editor", onsubmit: save },
    h("div", { class: "row" }, h("h2", {}, name ? `Edit ${name}` : "New bottle"), h("span", { class: "spacer" }),
      name ? h("a", { href: `#/text/${encodeURIComponent(name)}`, id: "edit-as-text" }, "Edit as text") : null),
    form.kept?.length ? h("p", { class: "muted", id: "kept" }, "Also in this file, kept as written: ", h("span", { class: "mono" }, form.kept.join(", "))) : null,
    input("name", "Name (lowercase letters, digits, -)", { readonly: name ? true : null, required: true }),
    input("description", "Description"),
    input("template", "Agent template (busybox), or leave empty and give a Dockerfile"),
    input("dockerfile", "Dockerfile (relative to the bottles folder)"),
    input("agent_command", "Agent command, for Start agent (e.g. claude, or sh -c '…')"),
    h("label", { for: "f-workspace" }, "Workspace folder (mounted at /workspace)"),
    h("div", { class: "row" }, h("input", { id: "f-workspace", value: form.workspace || "", oninput: (e) => { form.workspace = e.target.value; } }), h("button", { onclick: (e) => { e.preventDefault(); pick(); } }, "Choose…")),
    h("div", { class: "field-error", dataset: { for: "workspace" } }),
    h("h3", {}, "Extra mounts"), rowList(form, "mounts", { host: "", container: "", readonly: true }, "", [["host", "Host path"], ["container", "Container path"], ["readonly", "read-only", "checkbox"]], "mount"),
    h("div", { class: "field-error", dataset: { for: "mount" } }),
    h("h3", {}, "Egress rules"), rowList(form, "egress", { host: "", methods: "", paths: "", inject_secret: "" }, "rules", [["host", "Host (or *.domain)"], ["methods", "Methods"], ["paths", "Path prefixes"], ["inject_secret", "Inject secret"]], "egress"),
    h("div", { class: "field-error", dataset: { for: "egress" } }),
    h("h3", {}, "Environment"), rowList(form, "env", { key: "", value: "" }, "env", [["key", "Name"], ["value", "Value"]], "env"),
    h("div", { class: "field-error", dataset: { for: "env" } }),
    h("h3", {}, "Secrets (stored in the OS keychain, never in the file)"), rowList(form, "secrets", { name: "", placeholder_env: "", value: "" }, "secrets", [["name", "Name"], ["placeholder_env", "Placeholder variable"], ["value", "New value", "text", fromElsewhere]], "secrets"),
    h("div", { class: "field-error", dataset: { for: "secrets" } }),
    h("div", { class: "field-error", dataset: { for: "form" } }),
    h("div", { class: "row" }, h("span", { class: "spacer" }), h("button", { type: "submit", class: "primary", id: "save" }, "Save")),
  );
}
