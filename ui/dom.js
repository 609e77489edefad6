// Building the page: elements from tag, attributes and children; the
// banner. No state, no commands.

export const $ = (sel, root = document) => root.querySelector(sel);

/** An element: `on…` attributes are listeners, `dataset` sets data-*, true is a bare attribute. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value" && tag === "textarea") el.value = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c != null && c !== false) el.append(c.nodeType ? c : String(c));
  return el;
}

/** Shows one line at the top of the window (empty hides it). */
export function showBanner(text) {
  const b = $("#banner");
  b.textContent = text;
  b.hidden = !text;
}
