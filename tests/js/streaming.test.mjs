// utjima/web/detector/streaming.js against the shared vectors (tests/vectors/streaming.json), the
// same file tests/test_streaming.py runs against utjima/streaming.py.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { FeatureWindow, windowIndices } from "../../utjima/web/detector/streaming.js";

const VECTORS = JSON.parse(readFileSync(new URL("../vectors/streaming.json", import.meta.url), "utf8"));

for (const c of VECTORS.cases) {
  test(c.name, () => {
    const want = c.expect;
    if ("error" in want) {
      const re = new RegExp(want.error.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
      if (c.times_ms.length === 0) {
        assert.throws(() => windowIndices([], 0, c.n_frames, c.frame_interval_ms), re);
      } else {
        const fw = new FeatureWindow(c.n_frames, c.frame_interval_ms);
        assert.throws(() => c.times_ms.forEach((t, i) => fw.push(t, Float32Array.of(i, i + 0.5))), re);
      }
      return;
    }
    const fw = new FeatureWindow(c.n_frames, c.frame_interval_ms);
    c.times_ms.forEach((t, i) => {
      // the pure rule over the full history
      assert.deepEqual(windowIndices(c.times_ms.slice(0, i + 1), t, c.n_frames, c.frame_interval_ms), want.windows[i]);
      // the pruning window: (T, F) row-major, frame i carries the feature [i, i + 0.5]
      const out = fw.push(t, Float32Array.of(i, i + 0.5));
      assert.ok(out instanceof Float32Array);
      assert.equal(out.length, c.n_frames * 2);
      const expected = Float32Array.from(want.windows[i].flatMap((j) => [j, j + 0.5]));
      assert.deepEqual(out, expected, `push ${i}`);
    });
  });
}

test("feature length must not change mid-stream", () => {
  const fw = new FeatureWindow(3, 100);
  fw.push(0, new Float32Array(4));
  assert.throws(() => fw.push(100, new Float32Array(3)), /feature length 3/);
});

test("reset starts a fresh stream", () => {
  const fw = new FeatureWindow(2, 100);
  fw.push(0, Float32Array.of(1));
  fw.push(100, Float32Array.of(2));
  fw.reset();
  assert.deepEqual(fw.push(50, Float32Array.of(7)), Float32Array.of(7, 7));
});
