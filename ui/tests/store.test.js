import { test } from "node:test";
import assert from "node:assert/strict";

// The app's commands, answered by the test: each call waits for its answer.
const calls = [];
globalThis.window = {
  __TAURI__: {
    core: {
      invoke: (cmd, args) => new Promise((resolve, reject) => calls.push({ cmd, args, resolve, reject })),
    },
  },
};
const { entryArrived, followRunning, store } = await import("../store.js");

const running = (...names) => ({ bottles: names.map((name) => ({ name, state: "running" })), problems: [] });
const entry = (n) => ({ n, decision: "allow", time: new Date().toISOString() });
const ns = (name) => store.activity[name].entries.map((e) => e.n);

test("the running bottles are followed, each entry counted once, whenever it arrives", async () => {
  store.listing = running("a");
  const following = followRunning();
  assert.deepEqual(calls.map((c) => [c.cmd, c.args.names, c.args.read]), [["follow_audits", ["a"], ["a"]]]);
  // Written after the read, sent before its answer came back.
  entryArrived("a", entry(2));
  calls.shift().resolve({ a: { entries: [entry(0), entry(1)], earlier: false } });
  await following;
  entryArrived("a", entry(3));
  assert.deepEqual(ns("a"), [0, 1, 2, 3]);

  // The same running bottles: nothing asked of the app.
  await followRunning();
  assert.equal(calls.length, 0);

  // One more starts, `a` stops: only `b` is read, and only `b` followed.
  store.listing = { bottles: [{ name: "a", state: "stopped" }, { name: "b", state: "running" }], problems: [] };
  const more = followRunning();
  assert.deepEqual([calls[0].args.names, calls[0].args.read], [["b"], ["b"]]);
  calls.shift().resolve({ b: { entries: [entry(7)], earlier: true } });
  await more;
  assert.deepEqual(ns("b"), [7]);
  assert.equal(store.activity.b.earlier, true);
  assert.deepEqual([...store.followed], ["b"]);
  assert.deepEqual(ns("a"), [0, 1, 2, 3], "what `a` did stays shown");
});

test("a refusal is shown as the bottle's problem and asked again with the next states", async () => {
  store.listing = running("b", "c");
  const refused = followRunning();
  calls.shift().reject("reading the audit log of `c`: permission denied");
  await refused;
  assert.match(store.activity.c.problem, /permission denied/);
  assert.equal(store.followed.size, 0);
  // Both are read afresh: the app may still follow `b`, but from where
  // the window no longer knows.
  const again = followRunning();
  assert.deepEqual([calls[0].args.names, calls[0].args.read], [["b", "c"], ["b", "c"]]);
  calls.shift().resolve({ b: { entries: [] }, c: { entries: [entry(9)] } });
  await again;
  assert.deepEqual(ns("c"), [9]);
  assert.equal(store.activity.c.problem, null);
});
