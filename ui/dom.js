// Building the page: elements from tag, attributes and children; drawing a
// view again over itself (`morph`); the banner. No state, no commands.

export const $ = (sel, root = document) => root.querySelector(sel);

// An element's listeners, by event type: one shared dispatcher is what the
// element listens with, so `morph` can hand an element its replacement's.
const LISTENERS = Symbol("listeners");
function dispatch(e) {
  return e.currentTarget[LISTENERS]?.[e.type]?.(e);
}

/** An element: `on…` attributes are listeners, `dataset` sets data-*, true is a bare attribute. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) listen(el, k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value" && tag === "textarea") el.value = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c != null && c !== false) el.append(c.nodeType ? c : String(c));
  return el;
}

function listen(el, type, f) {
  (el[LISTENERS] ||= {})[type] = f;
  el.addEventListener(type, dispatch);
}

/**
 * Draws `next` (made by `h`) as the content of `container`, keeping every
 * element the two drawings share: a click under way (pressed before an
 * engine event redraws the page, released after), the focus and typed text
 * survive a redraw. A different view replaces the content outright.
 */
export function drawInto(container, next) {
  const current = container.firstElementChild;
  if (container.childNodes.length === 1 && current && sameElement(current, next)) morph(current, next);
  else container.replaceChildren(next);
}

/** Makes element `el` look and act like `next`, in place. */
export function morph(el, next) {
  morphAttributes(el, next);
  for (const type of new Set([...Object.keys(el[LISTENERS] || {}), ...Object.keys(next[LISTENERS] || {})])) {
    if (!next[LISTENERS]?.[type]) delete el[LISTENERS][type];
    else listen(el, type, next[LISTENERS][type]);
  }
  morphChildren(el, next);
}

// An element with an identity (id, data-id, data-name) is kept only for
// the element of the same identity, wherever it moved: a row never becomes
// another bottle's or another request's row, with its buttons and what was
// typed into it. Elements without one pair up by position and tag.
function identity(el) {
  const { id, dataset } = el;
  return id || dataset.id || dataset.name ? `${el.tagName}#${id}|${dataset.id}|${dataset.name}` : "";
}

function sameElement(a, b) {
  return a.tagName === b.tagName && identity(a) === identity(b) && a.type === b.type;
}

function morphChildren(el, next) {
  // Siblings may share an identity (a bottle's buttons): kept in order.
  const kept = new Map();
  for (const o of el.children) {
    const key = identity(o);
    if (key) kept.set(key, [...(kept.get(key) || []), o]);
  }
  let i = 0;
  for (const n of [...next.childNodes]) {
    const key = n.nodeType === Node.ELEMENT_NODE ? identity(n) : "";
    let o = key ? kept.get(key)?.shift() : el.childNodes[i];
    if (o && !key && !pairsByPosition(o, n)) o = undefined;
    const here = el.childNodes[i] || null;
    if (!o) el.insertBefore(n, here);
    else {
      if (o !== here) el.insertBefore(o, here);
      if (o.nodeType === Node.ELEMENT_NODE) morph(o, n);
      else if (o.nodeValue !== n.nodeValue) o.nodeValue = n.nodeValue;
    }
    i += 1;
  }
  while (el.childNodes.length > i) el.lastChild.remove();
}

function pairsByPosition(o, n) {
  if (o.nodeType !== n.nodeType) return false;
  return o.nodeType !== Node.ELEMENT_NODE || (!identity(o) && sameElement(o, n));
}

// Attributes follow the new drawing. A form control's live state (typed
// text, a ticked box, a chosen option) stays what the user made it unless
// the drawing itself changes it.
function morphAttributes(el, next) {
  const changed = [];
  for (const { name } of [...el.attributes]) if (!next.hasAttribute(name)) { el.removeAttribute(name); changed.push(name); }
  for (const { name, value } of next.attributes) if (el.getAttribute(name) !== value) { el.setAttribute(name, value); changed.push(name); }
  if (changed.includes("value") && "value" in el) el.value = el.getAttribute("value") ?? "";
  if (changed.includes("checked") && "checked" in el) el.checked = el.hasAttribute("checked");
  if (changed.includes("selected") && "selected" in el) el.selected = el.hasAttribute("selected");
}

/** Shows one line at the top of the window (empty hides it). */
export function showBanner(text) {
  const b = $("#banner");
  b.textContent = text;
  b.hidden = !text;
}
