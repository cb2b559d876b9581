// utjima/web/judge.js against the shared vectors (tests/vectors/judge.json), the same file
// tests/test_judge.py runs against utjima/judge.py.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import * as judge from "../../utjima/web/judge.js";

const VECTORS = JSON.parse(readFileSync(new URL("../vectors/judge.json", import.meta.url), "utf8"));

// Exact structure, numbers within 1e-9; throws with the path of the first difference.
function closeTo(got, want, path = "$") {
  if (typeof want === "number") {
    assert.equal(typeof got, "number", `${path}: ${JSON.stringify(got)} is not a number`);
    assert.ok(Math.abs(got - want) <= 1e-9, `${path}: ${got} != ${want}`);
  } else if (Array.isArray(want)) {
    assert.ok(Array.isArray(got) && got.length === want.length, `${path}: ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
    want.forEach((w, i) => closeTo(got[i], w, `${path}[${i}]`));
  } else if (want !== null && typeof want === "object") {
    assert.ok(got !== null && typeof got === "object", `${path}: ${JSON.stringify(got)}`);
    assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${path}: keys`);
    for (const k of Object.keys(want)) closeTo(got[k], want[k], `${path}.${k}`);
  } else {
    assert.equal(got, want, `${path}`);
  }
}

// What the implementation says for a vector case, in the vector's `expect` shape.
function runCase(c) {
  let cfg;
  try {
    cfg = judge.judgeConfig(c.config);
    if (c.kind === "config") return { config: { ...cfg } };
    if (c.kind === "calibrate") return { threshold: judge.calibrate(c.samples, cfg) };
    if (c.kind === "track") {
      const [trk, events] = judge.track(c.samples, cfg);
      if (c.advance_to !== null) events.push(...judge.advance(trk, c.advance_to)[1]);
      return { events, segments: judge.segments(c.samples, cfg) };
    }
  } catch (e) {
    return { error: e.message };
  }
  assert.equal(c.kind, "round");
  let rs = judge.newRound(cfg, c.round.players, c.round.start_ms, c.round.end_ms);
  const events = [];
  const verdicts = [];
  for (const [i, m] of c.messages.entries()) {
    let ev;
    try {
      if (m[0] === "sample") [rs, ev] = judge.roundUpdate(rs, ...m.slice(1));
      else [rs, ev] = judge.roundAdvance(rs, m[1], m.length > 2 ? m[2] : null);
    } catch (e) {
      return { error: e.message, at: i };
    }
    events.push(...ev);
    const v = judge.roundVerdict(rs);
    if (!verdicts.length || JSON.stringify(verdicts.at(-1)[1]) !== JSON.stringify(v)) verdicts.push([i, v]);
  }
  return { events, verdicts };
}

for (const c of VECTORS.cases) {
  test(c.name, () => {
    const got = runCase(c);
    const want = c.expect;
    if ("error" in want) {
      assert.ok("error" in got, `expected an error containing ${JSON.stringify(want.error)}, got ${JSON.stringify(got)}`);
      assert.ok(got.error.includes(want.error), `${JSON.stringify(got.error)} lacks ${JSON.stringify(want.error)}`);
      assert.equal(got.at, want.at);
    } else {
      closeTo(got, want);
    }
  });
}

test("defaults match the vectors' (and so Python's) defaults", () => {
  assert.deepEqual({ ...judge.DEFAULTS }, VECTORS.defaults);
});

test("states are frozen and update is pure", () => {
  const cfg = judge.judgeConfig();
  const trk = judge.newTracker(cfg, 0);
  const a = judge.update(trk, 0, 0.9, true);
  const b = judge.update(trk, 0, 0.9, true);
  assert.deepEqual(a, b);
  assert.equal(trk.laugh, null);
  assert.ok(Object.isFrozen(a[0]) && Object.isFrozen(a[0].laugh) && Object.isFrozen(cfg));
});

test("NaN and Infinity are rejected (JSON vectors cannot carry them)", () => {
  const trk = judge.newTracker(judge.judgeConfig(), 0);
  for (const bad of [NaN, Infinity, -Infinity]) {
    assert.throws(() => judge.update(trk, 100, bad, true), /smile_prob/);
    assert.throws(() => judge.update(trk, bad, 0.1, true), /t_ms must be a finite number/);
  }
  judge.update(trk, 100, NaN, false); // ignored when the face is absent
});

test("CalibrationError is an Error with its own name", () => {
  assert.throws(() => judge.calibrate([], judge.judgeConfig()), (e) => e instanceof judge.CalibrationError && e.name === "CalibrationError");
});
