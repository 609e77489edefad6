import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const ui = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Every module `entry` imports statically, directly or not (paths from ui/). */
function staticImports(entry) {
  const found = new Set();
  const queue = [entry];
  while (queue.length) {
    const file = queue.shift();
    const source = readFileSync(join(ui, file), "utf8");
    for (const [, spec] of source.matchAll(/^import [^;]*? from "([^"]+)";/gm)) {
      const target = normalize(join(dirname(file), spec));
      if (!found.has(target)) {
        found.add(target);
        queue.push(target);
      }
    }
  }
  return found;
}

test("the page preloads exactly the modules app.js imports", () => {
  const html = readFileSync(join(ui, "index.html"), "utf8");
  const preloaded = [...html.matchAll(/<link rel="modulepreload" href="([^"]+)">/g)].map((m) => m[1]);
  assert.equal(new Set(preloaded).size, preloaded.length, "a module preloaded twice");
  assert.deepEqual(new Set(preloaded), staticImports("app.js"));
});

test("the terminal's script and stylesheet are not loaded with the page", () => {
  const html = readFileSync(join(ui, "index.html"), "utf8");
  assert.doesNotMatch(html, /xterm/);
  assert.ok(![...staticImports("app.js")].some((m) => m.includes("vendor")));
});
