import { test } from "node:test";
import assert from "node:assert/strict";
import { reduceTimeline, emptyTimeline, addEntry, followedActivity, uptimeAt, counters, countersText, noActivity, filterActivity, keepalive, isolation, formatUptime, diagnostics, activityWhy, countdown, grantLength, outcomeText, scopeText, splitRequests, suggestName, ackNow, endedText, fontSizeOf, openableLink, stepFontSize, tabLabels } from "../logic.js";

const plan = { event: "plan_started", bottle: "demo", backend: "docker", steps: [{ id: "build", title: "Build" }, { id: "run", title: "Run" }] };

test("a launch's events drive the timeline to ready", () => {
  let t = reduceTimeline(emptyTimeline(), plan);
  assert.equal(t.status, "running");
  assert.deepEqual(t.steps.map((s) => s.state), ["pending", "pending"]);
  t = reduceTimeline(t, { event: "step_started", step: "build", title: "Build", command: "docker build ." });
  t = reduceTimeline(t, { event: "step_skipped", step: "build", title: "Build", reason: "already up to date" });
  t = reduceTimeline(t, { event: "step_started", step: "run", title: "Run", command: "docker run" });
  t = reduceTimeline(t, { event: "step_retrying", step: "run", attempt: 2, of: 5 });
  assert.equal(t.steps[1].attempt, "2/5");
  t = reduceTimeline(t, { event: "step_finished", step: "run", title: "Run", duration_ms: 320 });
  t = reduceTimeline(t, { event: "ready", bottle: "demo", sidecar_ip: "10.0.0.2", duration_ms: 900 });
  assert.equal(t.status, "ready");
  assert.equal(t.sidecarIp, "10.0.0.2");
  assert.deepEqual(t.steps.map((s) => s.state), ["skipped", "finished"]);
  assert.equal(t.steps[1].command, "docker run");
});

test("a failure keeps the command and stderr, and the rollback", () => {
  let t = reduceTimeline(emptyTimeline(), plan);
  t = reduceTimeline(t, { event: "step_failed", step: "run", title: "Run", command: "docker run x", exit_code: 1, stderr_tail: "boom", duration_ms: 5 });
  t = reduceTimeline(t, { event: "rollback_step", step: "build", command: "docker rm", ok: true });
  t = reduceTimeline(t, { event: "rollback_finished", bottle: "demo", ok: true });
  assert.equal(t.status, "failed");
  assert.equal(t.steps[1].stderr, "boom");
  assert.equal(t.rollback.length, 1);
});

test("the reducer never mutates its input", () => {
  const t0 = reduceTimeline(emptyTimeline(), plan);
  const copy = JSON.stringify(t0);
  reduceTimeline(t0, { event: "step_finished", step: "build", duration_ms: 1 });
  assert.equal(JSON.stringify(t0), copy);
});

test("already up is shown as ready", () => {
  const t = reduceTimeline(emptyTimeline(), { event: "note", bottle: "demo", message: "bottle `demo` is already up" });
  assert.equal(t.status, "ready");
});

test("counters cover the last hour only", () => {
  const now = Date.parse("2026-11-26T12:00:00Z");
  const e = [
    { time: "2026-11-26T11:30:00Z", decision: "allow" },
    { time: "2026-11-26T11:59:00Z", decision: "deny" },
    { time: "2026-11-26T10:00:00Z", decision: "deny" },
    { time: "garbage", decision: "allow" },
  ];
  assert.deepEqual(counters({ entries: e, earlier: false }, now), { allowed: 1, denied: 1, atLeast: false });
  // The entries held reach back past the hour: earlier ones do not count.
  assert.deepEqual(counters({ entries: e.slice(2).concat(e.slice(0, 2)), earlier: true }, now), { allowed: 1, denied: 1, atLeast: false });
  assert.equal(countersText(counters({ entries: e, earlier: false }, now)), "1 allowed, 1 denied");
});

test("counters are lower bounds when the hour began before the entries held", () => {
  const now = Date.parse("2026-11-26T12:00:00Z");
  const e = [{ time: "2026-11-26T11:30:00Z", decision: "allow" }, { time: "2026-11-26T11:40:00Z", decision: "deny" }];
  const c = counters({ entries: e, earlier: true }, now);
  assert.deepEqual(c, { allowed: 1, denied: 1, atLeast: true });
  assert.equal(countersText(c), "at least 1 allowed, 1 denied");
  assert.deepEqual(counters(noActivity(), now), { allowed: 0, denied: 0, atLeast: false });
  assert.equal(counters({ entries: [], earlier: true }, now).atLeast, true);
});

test("the window holds a bottle's newest entries only", () => {
  const a = noActivity();
  for (let i = 0; i < 5; i++) addEntry(a, { n: i }, 3);
  assert.deepEqual(a.entries.map((e) => e.n), [2, 3, 4]);
  assert.equal(a.earlier, true);
  const b = addEntry(noActivity(), { n: 0 }, 3);
  assert.equal(b.earlier, false);
});

test("activity filters by decision and text", () => {
  const e = [
    { host: "api.example.com", path: "/v1", method: "GET", decision: "allow", rule: 1 },
    { host: "evil.example", path: "/x", method: "POST", decision: "deny", reason: "host_not_allowed" },
  ];
  assert.equal(filterActivity(e, { decision: "deny" }).length, 1);
  assert.equal(filterActivity(e, { text: "API." }).length, 1);
  assert.equal(filterActivity(e, { text: "not_allowed" })[0].host, "evil.example");
  assert.equal(filterActivity(e, { text: "#1" })[0].host, "api.example.com");
  assert.equal(filterActivity(e, {}).length, 2);
});

test("keep-alive explains itself", () => {
  assert.equal(keepalive({ state: "running", keepalive_alive: true, started_at: "t" }).status, "alive");
  assert.equal(keepalive({ state: "partial", keepalive_alive: false }).status, "dead");
  assert.match(keepalive({ state: "partial", keepalive_alive: false }).sentence, /Relaunch/);
  assert.equal(keepalive({ state: "not_launched" }).status, "none");
});

test("formatting", () => {
  assert.equal(formatUptime(9), "9s");
  assert.equal(formatUptime(7500), "2h 5m");
  assert.equal(formatUptime(null), "–");
});

test("diagnostics carry the step, command and stderr", () => {
  const d = diagnostics({ bottle: "x", time: "T", step: "run-agent", command: "docker run", stderr_tail: "no space", message: "failed" }, { state: "not_launched", backend: "docker" });
  assert.match(d, /failed step: run-agent/);
  assert.match(d, /command: docker run/);
  assert.match(d, /no space/);
});

test("the self-test joins the timeline after the plan, and a leak ends it", () => {
  let t = reduceTimeline(emptyTimeline(), { event: "plan_started", steps: [{ id: "run-agent", title: "Start agent" }] });
  t = reduceTimeline(t, { event: "step_finished", step: "run-agent", duration_ms: 300 });
  t = reduceTimeline(t, { event: "step_started", step: "self-test", title: "Isolation self-test", command: "docker exec …" });
  assert.deepEqual(t.steps.map((s) => [s.id, s.state]), [["run-agent", "finished"], ["self-test", "running"]]);
  t = reduceTimeline(t, { event: "self_test", ready: false, summary: "isolation leak: tcp 10.0.0.1:22", at: "T" });
  t = reduceTimeline(t, { event: "step_failed", step: "self-test", stderr_tail: "isolation leak: tcp 10.0.0.1:22", duration_ms: 1500 });
  assert.equal(t.status, "leak");
  assert.equal(t.selfTest.ready, false);
  assert.equal(t.steps[1].state, "failed");
});

test("the isolation panel says when the self-test ran and what it found", () => {
  assert.equal(isolation({ state: "running" }).status, "none");
  const ok = isolation({ state: "running", self_test: { ready: true, at: "2026-11-26T21:00:00Z", summary: "isolated" } });
  assert.equal(ok.status, "isolated");
  assert.equal(ok.at, "2026-11-26T21:00:00Z");
  const leak = isolation({ state: "isolation_leak", self_test: { ready: false, at: "T", summary: "isolation leak: tcp 10.0.0.1:22" } });
  assert.equal(leak.status, "leak");
  assert.match(leak.sentence, /10\.0\.0\.1:22.*stopped/);
});

const req = (id, created, extra = {}) => ({
  proposal: { id, bottle: "demo", created, scope: { host: "a.example.com", port: 443, methods: [], paths: [] }, reason: "<b>r</b>", status: "pending" },
  decision: null, pending: false, seconds_left: null, ...extra,
});

test("requests split into pending (counting down) and history (newest first)", () => {
  const rs = [req("p-1", "2026-01-01T00:00:01Z", { pending: true, seconds_left: 90 }), req("p-2", "2026-01-01T00:00:02Z"), req("p-3", "2026-01-01T00:00:03Z")];
  const { pending, history } = splitRequests(rs, 10_000, 0);
  assert.deepEqual(pending.map((r) => r.proposal.id), ["p-1"]);
  assert.equal(pending[0].secondsLeft, 80);
  assert.equal(countdown(pending[0].secondsLeft), "1m 20s");
  assert.equal(countdown(5), "5s");
  assert.equal(countdown(3600), "1h 00m");
  assert.equal(countdown(3599), "59m 59s");
  assert.deepEqual(history.map((r) => r.proposal.id), ["p-3", "p-2"]);
  assert.equal(splitRequests(rs, 500_000, 0).pending[0].secondsLeft, 0);
});

test("a request's scope and outcome read as words", () => {
  assert.equal(scopeText({ methods: [], paths: [] }), "any method, any path");
  assert.equal(scopeText({ methods: ["GET"], paths: ["/v1/"] }), "GET, on /v1/");
  const decided = (answer) => outcomeText(req("p", "t", { decision: { answer, by: "app" } }));
  assert.equal(decided({ answer: "once" }), "Allowed once by app");
  assert.equal(decided({ answer: "for", seconds: 3600 }), "Allowed for 1 hour by app");
  assert.equal(decided({ answer: "deny", note: "no" }), "Denied by app — “no”");
  assert.equal(outcomeText(req("p", "t", { proposal: { status: "expired" } })), "Expired unanswered");
  assert.equal(grantLength(120), "2 minutes");
});

test("the activity says what supervise did, and which grant let a request through", () => {
  assert.equal(activityWhy({ kind: "decision", proposal: "p-1", detail: "allowed once by app" }), "decision p-1: allowed once by app");
  assert.equal(activityWhy({ reason: "host_not_allowed" }), "host_not_allowed");
  assert.equal(activityWhy({ proposal: "p-1" }), "grant p-1");
  assert.equal(activityWhy({ injected: "api" }), "injected api");
});

test("a new bottle's name is suggested from its folder", () => {
  assert.equal(suggestName("/home/me/My Project"), "my-project");
  assert.equal(suggestName("/Users/ann/src/2024_api.v2/"), "api-v2");
  assert.equal(suggestName("/home/me/café"), "cafe");
  assert.equal(suggestName("/home/me/work", ["work", "work-2"]), "work-3");
  assert.equal(suggestName("/", []), "agent");
  assert.equal(suggestName("/x/" + "a".repeat(40)), "a".repeat(24));
});

test("a running step keeps the newest lines of its output", () => {
  let t = reduceTimeline(emptyTimeline(), plan);
  t = reduceTimeline(t, { event: "step_started", step: "build", title: "Build", command: "docker build ." });
  for (let i = 0; i < 250; i++) t = reduceTimeline(t, { event: "step_output", step: "build", line: `Step ${i}` });
  const out = t.steps[0].output;
  assert.equal(out.length, 200);
  assert.equal(out.at(-1), "Step 249");
  assert.equal(out[0], "Step 50");
});

test("terminal font sizes step within bounds and reset", () => {
  assert.equal(stepFontSize(13, 1), 14);
  assert.equal(stepFontSize(32, 1), 32);
  assert.equal(stepFontSize(8, -1), 8);
  assert.equal(stepFontSize(20, 0), 13);
  assert.equal(stepFontSize("junk", 1), 14);
  assert.equal(fontSizeOf("17"), 17);
  assert.equal(fontSizeOf("99"), 32);
  assert.equal(fontSizeOf(null), 13);
  assert.equal(fontSizeOf("junk"), 13);
});

test("only web and mail links are offered for opening", () => {
  assert.equal(openableLink("https://example.com/a b"), "https://example.com/a%20b");
  assert.equal(openableLink("mailto:me@example.com"), "mailto:me@example.com");
  for (const bad of ["file:///etc/passwd", "javascript:alert(1)", "tauri://localhost", "vscode://x", "not a url", "https://" + "a".repeat(5000), null]) {
    assert.equal(openableLink(bad), null, String(bad).slice(0, 40));
  }
});

test("tabs are numbered per kind", () => {
  assert.deepEqual(tabLabels([{ kind: "shell" }, { kind: "agent" }, { kind: "shell" }]), ["Shell", "Agent", "Shell 2"]);
});

test("a session's end is told in words", () => {
  assert.equal(endedText(null), null);
  assert.equal(endedText({ code: 3, why: null }), "Exited with status 3");
  assert.equal(endedText({ code: null, why: null }), "Ended by a signal");
  assert.equal(endedText({ code: null, why: "the bottle stopped" }), "Ended: the bottle stopped");
});

test("drawn output is acknowledged at once only far past the last ack", () => {
  assert.equal(ackNow(100, 0), false);
  assert.equal(ackNow(70000, 0), true);
});

test("a bottle followed anew: the entries read, then those that arrived meanwhile", () => {
  const tail = { entries: [{ n: 0 }, { n: 1 }], earlier: true, problem: null };
  const a = followedActivity(tail, [{ n: 2 }, { n: 3 }], 3);
  assert.deepEqual(a.entries.map((e) => e.n), [1, 2, 3]);
  assert.equal(a.earlier, true);
  assert.deepEqual(tail.entries.map((e) => e.n), [0, 1], "the reply is not changed");
  const none = followedActivity(undefined, [{ n: 5 }]);
  assert.deepEqual(none, { entries: [{ n: 5 }], earlier: false, problem: null });
  const unreadable = followedActivity({ problem: "reading the audit log of `x`: denied" }, []);
  assert.equal(unreadable.problem, "reading the audit log of `x`: denied");
  assert.deepEqual(unreadable.entries, []);
});

test("an uptime counts on from when the states were read", () => {
  assert.equal(uptimeAt(60, 1_000_000, 1_000_000 + 5_500), 65);
  assert.equal(uptimeAt(60, 1_000_000, 999_000), 60, "a clock that stepped back adds nothing");
  assert.equal(uptimeAt(null, 0, 5_000), null);
  assert.equal(formatUptime(uptimeAt(3590, 0, 20_000)), "1h 0m");
});
