// What the window shows, and loading it. Views read the store and never
// load anything: data is loaded when the route changes or an event says it
// changed, never because something re-rendered.

import { api } from "./api.js";
import { addEntry, emptyTimeline, followedActivity, noActivity, reduceTimeline } from "./logic.js";

export const store = {
  info: null,
  listing: { bottles: [], problems: [] },
  listingAt: 0, // when `listing` was read (grants' seconds_left count from then)
  timelines: {}, // bottle → launch timeline
  activity: {}, // bottle → { entries: the newest audit entries, earlier: whether the log has more, problem }
  followed: new Set(), // the running bottles, whose new audit entries the app sends as they are written
  arriving: {}, // bottle → entries sent while its newest ones were still being read
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

/** A bottle's newest audit entries, read once (one that is not running). */
export async function loadActivity(name) {
  store.activity[name] = await api.audit(name, 500).catch((e) => ({ ...noActivity(), problem: String(e) }));
}

/** Follows the running bottles' audit logs, and only theirs: each one
 * followed anew has its newest entries read with it; every entry written
 * after them arrives as an event ([`entryArrived`]), so the counters stay
 * live and exact without anything polling. */
export async function followRunning() {
  const names = store.listing.bottles.filter((b) => b.state === "running").map((b) => b.name);
  const fresh = names.filter((n) => !store.followed.has(n));
  if (!fresh.length && names.length === store.followed.size) return;
  store.followed = new Set(names);
  for (const n of fresh) store.arriving[n] = [];
  let tails;
  try {
    tails = await api.followAudits(names, fresh, 500);
  } catch (e) {
    // Nothing changed in the app: every running bottle is read afresh
    // with the next states.
    store.followed = new Set();
    tails = Object.fromEntries(fresh.map((n) => [n, { problem: String(e) }]));
  }
  // The app answers for every bottle it followed afresh (all of `fresh`).
  for (const n of new Set([...fresh, ...Object.keys(tails)])) {
    store.activity[n] = followedActivity(tails[n], store.arriving[n] || []);
    delete store.arriving[n];
  }
}

/** An audit entry the app sent as it was written. */
export function entryArrived(name, entry) {
  if (store.arriving[name]) store.arriving[name].push(entry);
  else addEntry(store.activity[name] ||= noActivity(), entry);
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
