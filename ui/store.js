// What the window shows, and loading it. Views read the store and never
// load anything: data is loaded when the route changes or an event says it
// changed, never because something re-rendered.

import { api } from "./api.js";
import { emptyTimeline, noActivity, reduceTimeline } from "./logic.js";

export const store = {
  info: null,
  listing: { bottles: [], problems: [] },
  listingAt: 0, // when `listing` was read (grants' seconds_left count from then)
  timelines: {}, // bottle → launch timeline
  activity: {}, // bottle → { entries: the newest audit entries, earlier: whether the log has more }
  failures: {}, // bottle → last launch failure, or null
  filter: { text: "", decision: "all" },
  busy: new Set(),
  doctor: null, // the settings report, loaded on opening Settings
  editor: null, // { form } or { error } or { text }, loaded on opening the editor
  newBottle: null, // New bottle's choices and draft, loaded on opening it
  requests: [], // supervise requests of every bottle (core/src/supervise.rs Request)
  requestsAt: 0, // when `requests` was read (its seconds_left count from then)
};

export const bottle = (name) => store.listing.bottles.find((b) => b.name === name);

/** The states as the app last read them (at once), then read afresh (announced as `bottles-changed`). */
export async function loadKnownListing() {
  const { listing, age_ms: age } = await api.knownBottles();
  store.listing = listing;
  store.listingAt = Date.now() - age;
  if (age > 0) api.listBottles().catch(() => {});
}

export async function loadActivity(name) {
  store.activity[name] = await api.audit(name, 500).catch(() => noActivity());
}

export async function loadFailure(name) {
  store.failures[name] = await api.lastFailure(name).catch(() => null);
}

export async function loadNewBottle() {
  if (!store.newBottle) store.newBottle = await api.newBottleChoices();
}

export async function loadRequests() {
  setRequests(await api.listRequests().catch(() => store.requests));
}

/** Keeps the requests read just now. */
export function setRequests(requests) {
  store.requests = requests;
  store.requestsAt = Date.now();
}

export async function loadDoctor() {
  store.doctor = await api.doctor().catch((e) => ({ error: String(e) }));
}

/** The editor for `name` ("" for a new bottle): its form, or why the form cannot show it. */
export async function loadEditor(name) {
  try {
    store.editor = { name, form: await api.loadBottle(name) };
  } catch (error) {
    store.editor = { name, error };
  }
}

/** The text editor for `name`. */
export async function loadText(name) {
  try {
    store.editor = { name, text: await api.loadBottleText(name) };
  } catch (error) {
    store.editor = { name, error };
  }
}

export function applyEvent(name, event) {
  store.timelines[name] = reduceTimeline(store.timelines[name] || emptyTimeline(), event);
}
