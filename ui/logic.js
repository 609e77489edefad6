// The UI's logic, free of the DOM and of Tauri, so it is tested with
// node's test runner (ui/tests/). app.js wires it to the page.

/** The isolation panel: the last self-test, when it ran, and what it found. */
export function isolation(bottle) {
  const t = bottle?.self_test;
  if (!t) return { status: "none", title: "Not measured", sentence: "The isolation self-test runs at every launch; this bottle has not had one yet." };
  if (t.ready) return { status: "isolated", title: "Isolated", at: t.at, sentence: t.summary };
  return { status: "leak", title: "Isolation leak", at: t.at, sentence: `${t.summary}. The bottle was stopped (fail closed).` };
}

/** `3d 4h`, `2h 5m`, `4m 10s`, `9s`. */
export function formatUptime(secs) {
  if (secs == null) return "–";
  const d = Math.floor(secs / 86400), h = Math.floor((secs % 86400) / 3600);
  const m = Math.floor((secs % 3600) / 60), s = secs % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

/** A bottle's uptime at `nowMs`: what the states said when they were read
 * (at `listingAtMs`), plus the time since; `null` for a bottle without one. */
export function uptimeAt(uptimeSecs, listingAtMs, nowMs) {
  if (uptimeSecs == null) return null;
  return uptimeSecs + Math.max(0, Math.floor((nowMs - listingAtMs) / 1000));
}

export function formatDuration(ms) {
  if (ms == null) return "";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The keep-alive panel: whether the agent's main process is alive, and what that means. */
export function keepalive(bottle) {
  if (!bottle || bottle.state === "not_launched") {
    return { status: "none", title: "Not launched", sentence: "The bottle is not running; launch it to start its agent container." };
  }
  if (bottle.keepalive_alive) {
    return {
      status: "alive",
      title: "Keep-alive running",
      since: bottle.started_at,
      sentence: "The agent's main process (sleep 2147483647) keeps its container up, so shells and agents can be started in it at any time.",
    };
  }
  return {
    status: "dead",
    title: "Needs attention",
    sentence: "The agent's keep-alive process is not running, so nothing can be started in the bottle. Relaunch it.",
  };
}

/** How many lines of a step's output the timeline keeps. */
export const STEP_OUTPUT_LINES = 200;

/** The empty launch timeline. */
export function emptyTimeline() {
  return { status: "idle", steps: [], notes: [], sidecarIp: null, durationMs: null, rollback: [] };
}

/** Applies one core event (see core/src/events.rs) to a timeline. Pure. */
export function reduceTimeline(tl, ev) {
  const t = { ...tl, steps: tl.steps.map((s) => ({ ...s })), notes: [...tl.notes], rollback: [...tl.rollback] };
  const step = (id) => t.steps.find((s) => s.id === id);
  switch (ev.event) {
    case "plan_started":
      return { ...emptyTimeline(), status: "running", notes: t.notes, steps: ev.steps.map((s) => ({ id: s.id, title: s.title, state: "pending" })) };
    case "step_started": {
      // Steps after the plan (the self-test) join the timeline as they start.
      let s = step(ev.step);
      if (!s) t.steps.push((s = { id: ev.step, title: ev.title, state: "pending" }));
      Object.assign(s, { state: "running", command: ev.command });
      return t;
    }
    case "step_output": {
      // The newest lines of a running step's output (an image build).
      const s = step(ev.step);
      if (s) s.output = [...(s.output || []).slice(-(STEP_OUTPUT_LINES - 1)), ev.line];
      return t;
    }
    case "step_retrying": {
      const s = step(ev.step);
      if (s) s.attempt = `${ev.attempt}/${ev.of}`;
      return t;
    }
    case "step_finished": {
      const s = step(ev.step);
      if (s) Object.assign(s, { state: "finished", durationMs: ev.duration_ms });
      return t;
    }
    case "step_skipped": {
      const s = step(ev.step);
      if (s) Object.assign(s, { state: "skipped", reason: ev.reason });
      return t;
    }
    case "step_failed": {
      const s = step(ev.step);
      if (s) Object.assign(s, { state: "failed", command: ev.command, stderr: ev.stderr_tail, durationMs: ev.duration_ms });
      if (t.status !== "leak") t.status = "failed";
      return t;
    }
    case "rollback_step":
      t.rollback.push({ step: ev.step, command: ev.command, ok: ev.ok });
      return t;
    case "rollback_finished":
      if (t.status !== "leak") t.status = "failed";
      return t;
    case "self_test":
      t.selfTest = { ready: ev.ready, summary: ev.summary, at: ev.at };
      if (!ev.ready) t.status = "leak";
      return t;
    case "ready":
      return { ...t, status: "ready", sidecarIp: ev.sidecar_ip, durationMs: ev.duration_ms };
    case "note":
      t.notes.push(ev.message);
      if (/already up/.test(ev.message)) t.status = "ready";
      return t;
    default:
      return t;
  }
}

/** How many audit entries the window holds per bottle: the newest, so a
 * busy agent's window stays small. */
export const ACTIVITY_HELD = 1000;

/** A bottle's activity before anything is read: no entries, none earlier. */
export const noActivity = () => ({ entries: [], earlier: false });

/** Adds an entry that arrived to a bottle's activity (`{ entries, earlier }`),
 * keeping the newest `held`; the ones let go count as earlier. */
export function addEntry(activity, entry, held = ACTIVITY_HELD) {
  activity.entries.push(entry);
  const over = activity.entries.length - held;
  if (over > 0) {
    activity.entries.splice(0, over);
    activity.earlier = true;
  }
  return activity;
}

/** The activity of a bottle just followed: the newest entries read with
 * it (`tail`: `{ entries, earlier, problem }`), then those that arrived as
 * events while they were read (the app sends each entry one way, never
 * both), the newest `held` kept. */
export function followedActivity(tail, arrived, held = ACTIVITY_HELD) {
  const activity = { entries: [...(tail?.entries ?? [])], earlier: Boolean(tail?.earlier), problem: tail?.problem ?? null };
  for (const entry of arrived) addEntry(activity, entry, held);
  return activity;
}

/** Allowed and denied requests in the hour before `nowMs`, from a bottle's
 * activity (`{ entries, earlier }`); `atLeast` when the hour began before
 * the oldest entry held and the log has earlier ones (the counts are then
 * lower bounds). */
export function counters({ entries, earlier }, nowMs) {
  const since = nowMs - 3600 * 1000;
  let allowed = 0, denied = 0;
  for (const e of entries) {
    const t = Date.parse(e.time);
    if (Number.isNaN(t) || t < since) continue;
    if (e.decision === "allow") allowed++;
    else if (e.decision === "deny") denied++;
  }
  const oldest = entries.length ? Date.parse(entries[0].time) : NaN;
  const atLeast = earlier && !(oldest < since);
  return { allowed, denied, atLeast };
}

/** The counters in words. */
export function countersText({ allowed, denied, atLeast }) {
  return `${atLeast ? "at least " : ""}${allowed} allowed, ${denied} denied`;
}

/** Activity rows matching a filter: free text over host/path/method/rule/reason, and a decision. */
export function filterActivity(entries, { text = "", decision = "all" } = {}) {
  const needle = text.trim().toLowerCase();
  return entries.filter((e) => {
    if (decision !== "all" && e.decision !== decision) return false;
    if (!needle) return true;
    return [e.host, e.path, e.method, e.reason, e.rule == null ? "" : `#${e.rule}`].some((f) => String(f ?? "").toLowerCase().includes(needle));
  });
}

/** Text for "Copy diagnostics": what failed, where, and the engine's own words. */
export function diagnostics(failure, bottle) {
  const lines = [`Bottlebar diagnostics — bottle ${failure.bottle}`, `time: ${failure.time}`];
  if (bottle) lines.push(`state: ${bottle.state} (backend ${bottle.backend})`);
  if (failure.step) lines.push(`failed step: ${failure.step}`);
  if (failure.command) lines.push(`command: ${failure.command}`);
  if (failure.stderr_tail) lines.push("stderr:", failure.stderr_tail);
  lines.push("error:", failure.message);
  return lines.join("\n");
}

/** `1h 05m`, `1m 05s`, `42s`: time left. */
export function countdown(secs) {
  if (secs == null) return "";
  const s = Math.max(0, Math.round(secs));
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return s >= 60 ? `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

/** "GET, POST on /v1/, /v2/" or "any method, any path". */
export function scopeText(scope) {
  const methods = scope?.methods?.length ? scope.methods.join(", ") : "any method";
  const paths = scope?.paths?.length ? `on ${scope.paths.join(", ")}` : "any path";
  return `${methods}, ${paths}`;
}

/** `1 hour`, `10 minutes`, `45 seconds`. */
export function grantLength(secs) {
  if (secs % 3600 === 0) return secs === 3600 ? "1 hour" : `${secs / 3600} hours`;
  if (secs % 60 === 0) return secs === 60 ? "1 minute" : `${secs / 60} minutes`;
  return `${secs} seconds`;
}

/** How a request ended, in words: the human's answer, or that nobody gave one. */
export function outcomeText(r) {
  const d = r.decision;
  if (d) {
    const a = d.answer || {};
    const what = { once: "Allowed once", always: "Always allowed", for: `Allowed for ${grantLength(a.seconds)}`, deny: "Denied" }[a.answer] || "Answered";
    return `${what} by ${d.by}${a.note ? ` — “${a.note}”` : ""}`;
  }
  if (r.pending) return "Waiting";
  return { expired: "Expired unanswered", approved: "Allowed", denied: "Denied", pending: "Expired unanswered" }[r.proposal?.status] || r.proposal?.status || "";
}

/**
 * The Requests view's data: pending requests (oldest first, with the
 * seconds left now, `loadedAt` being when `seconds_left` was read) and the
 * rest (newest first).
 */
export function splitRequests(requests, nowMs, loadedAtMs) {
  const elapsed = Math.max(0, (nowMs - loadedAtMs) / 1000);
  const pending = requests.filter((r) => r.pending).map((r) => ({ ...r, secondsLeft: Math.max(0, (r.seconds_left ?? 0) - elapsed) }));
  const history = requests.filter((r) => !r.pending).sort((a, b) => (b.proposal.created < a.proposal.created ? -1 : b.proposal.created > a.proposal.created ? 1 : 0));
  return { pending, history };
}

/** The activity table's "Why": a supervise step in words, a refusal's reason, or the credential injected. */
export function activityWhy(e) {
  if (e.kind && e.kind !== "request") return `${e.kind} ${e.proposal || ""}: ${e.detail || ""}`;
  if (e.reason) return e.reason;
  if (e.injected) return `injected ${e.injected}`;
  return e.proposal ? `grant ${e.proposal}` : "";
}

/**
 * A bottle name from a folder (`/home/me/My Project` → `my-project`):
 * lowercase letters, digits and single dashes, starting with a letter, not
 * one of `taken` (a number is added), at most `max` characters.
 */
export function suggestName(folder, taken = [], max = 24) {
  const base = (String(folder || "").split(/[\\/]/).filter(Boolean).pop() || "")
    .toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^[^a-z]+/, "").replace(/-+$/, "")
    .slice(0, max).replace(/-+$/, "") || "agent";
  if (!taken.includes(base)) return base;
  for (let n = 2; ; n++) {
    const name = `${base.slice(0, max - String(n).length - 1).replace(/-+$/, "")}-${n}`;
    if (!taken.includes(name)) return name;
  }
}

// --- the terminal view ---

/** The smallest and largest terminal font sizes (⌘− / ⌘+). */
export const FONT_SIZES = { min: 8, max: 32, normal: 13 };

/** A saved font size, within bounds (the normal size when unreadable). */
export function fontSizeOf(saved) {
  const n = Number(saved);
  return n ? Math.min(FONT_SIZES.max, Math.max(FONT_SIZES.min, Math.round(n))) : FONT_SIZES.normal;
}

/** A font size one step `by` from `size`, within bounds. */
export function stepFontSize(size, by) {
  if (by === 0) return FONT_SIZES.normal;
  return Math.min(FONT_SIZES.max, Math.max(FONT_SIZES.min, (Number(size) || FONT_SIZES.normal) + by));
}

/**
 * Whether a link printed in a terminal may be offered for opening: web and
 * mail links only (never `file:`, `javascript:` or an app's own scheme),
 * parseable, and of a sane length.
 */
export function openableLink(text) {
  if (typeof text !== "string" || text.length > 4096) return null;
  let url;
  try { url = new URL(text); } catch { return null; }
  return ["http:", "https:", "mailto:"].includes(url.protocol) ? url.href : null;
}

/** A tab's label: "Shell", "Shell 2", "Agent"… numbered per bottle and kind. */
export function tabLabels(sessions) {
  const seen = {};
  return sessions.map((s) => {
    const n = (seen[s.kind] = (seen[s.kind] || 0) + 1);
    const word = s.kind === "agent" ? "Agent" : "Shell";
    return n === 1 ? word : `${word} ${n}`;
  });
}

/** How a session ended, in words; null while it runs. */
export function endedText(ended) {
  if (!ended) return null;
  if (ended.why) return `Ended: ${ended.why}`;
  if (ended.code == null) return "Ended by a signal";
  return `Exited with status ${ended.code}`;
}

/**
 * When to acknowledge drawn output: at once when `drawn` is far past the
 * last acknowledgement (the host holds output back past its window), else
 * on the next timer.
 */
export function ackNow(drawn, acked, every = 64 * 1024) {
  return drawn - acked >= every;
}
