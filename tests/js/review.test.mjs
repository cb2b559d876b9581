// utjima/web/review/: the page's words in both languages (every key the page and its code
// use), and the timeline's hit testing (a click lands on the frame under it).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

globalThis.localStorage = { getItem: () => "en", setItem: () => {} };
const { DICT } = await import("../../utjima/web/game/i18n.js");
await import("../../utjima/web/review/strings.js");
const { frameAt, layout } = await import("../../utjima/web/review/timeline.js");

const read = (p) => readFileSync(new URL(`../../utjima/web/${p}`, import.meta.url), "utf8");

test("English and Korean have the same keys, and every key the page uses exists", () => {
  assert.deepEqual(Object.keys(DICT.ko).sort(), Object.keys(DICT.en).sort());
  const html = read("review.html");
  const js = read("review/review.js");
  const used = new Set([
    ...[...html.matchAll(/data-i18n(?:-placeholder|-title)?="([a-z0-9_]+)"/g)].map((m) => m[1]),
    ...[...js.matchAll(/\bt\("([a-z0-9_]+)"/g)].map((m) => m[1]),
  ]);
  const missing = [...used].filter((k) => !(k in DICT.en) || !(k in DICT.ko));
  assert.deepEqual(missing, []);
});

test("a click on the timeline lands on the frame whose time is under it", () => {
  const view = { times_ms: [0, 100, 200, 300, 400] };
  const lay = layout(600, 178);
  const xOf = (ms) => lay.x0 + (ms / 500) * (lay.x1 - lay.x0);
  assert.equal(frameAt(view, lay, xOf(10)), 0);
  assert.equal(frameAt(view, lay, xOf(250)), 2);
  assert.equal(frameAt(view, lay, xOf(499)), 4);
  assert.equal(frameAt(view, lay, -50), 0); // left of the plot: the first frame
  assert.equal(frameAt(view, lay, 10_000), 4);
});
