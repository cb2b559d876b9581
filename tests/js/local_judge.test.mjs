// utjima/web/game/local_judge.js: the room's own-laugh judge must decide what the server's
// round decides for that player (judge.newRound/roundUpdate, as utjima/server/game.py runs
// utjima/judge.py), given the rules of `welcome.judge` and the player's calibrated threshold.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { LocalJudge, cueOf, laughAfter } from "../../utjima/web/game/local_judge.js";
import * as judge from "../../utjima/web/judge.js";

const VECTORS = JSON.parse(readFileSync(new URL("../vectors/judge.json", import.meta.url), "utf8"));
const RULES = Object.freeze({ ...VECTORS.defaults, threshold: 0.5 }); // as welcome.judge sends them

// A face at ~15 Hz with jittered times and a smile that drifts, dips and peaks.
function stream(seed, n = 600) {
  let x = seed >>> 0;
  const rand = () => ((x = (1664525 * x + 1013904223) >>> 0) / 2 ** 32);
  const out = [];
  let t = 1000, p = 0.2;
  for (let i = 0; i < n; i++) {
    t += 66.7 + (rand() - 0.5) * 20 + (rand() < 0.03 ? 300 : 0); // jitter, now and then a gap
    p = Math.min(1, Math.max(0, p + (rand() - 0.5) * 0.25 + (rand() < 0.05 ? 0.5 : 0)));
    out.push([t, rand() < 0.04 ? false : true, p]);
  }
  return out;
}

const LAUGH = new Set(["laugh_start", "laugh_confirmed", "laugh_end"]);
// the round tags events with the player and marks the one that became the offence: the
// tracker's own event is the same without those two keys
const untag = ({ player, offence, ...ev }) => ev;

for (const [seed, threshold] of [[1, null], [2, 0.62], [3, 0.8], [4, 0.9]]) {
  test(`laughs match the server's round judge (seed ${seed}, threshold ${threshold})`, () => {
    const samples = stream(seed);
    const local = new LocalJudge();
    local.configure(RULES, threshold);
    // the server's round for this player, from the first sample on (the page starts its
    // timeline there; the round's earlier start only adds absence events)
    let rs = judge.newRound(judge.judgeConfig(RULES), [["me", threshold]], samples[0][0], 1e12);
    const got = [], want = [];
    let laughs = 0;
    for (const [t, face, p] of samples) {
      got.push(...local.push(t, face, face ? p : null).filter((e) => LAUGH.has(e.type)));
      let events;
      [rs, events] = judge.roundUpdate(rs, "me", t, face ? p : null, face);
      want.push(...events.filter((e) => LAUGH.has(e.type)).map(untag));
      const l = rs.trackers[0].laugh;
      assert.equal(local.laugh, l === null ? null : l.confirmed ? "laughed" : "laughing", `t=${t}`);
      laughs += local.laugh === "laughed";
    }
    assert.deepEqual(got, want);
    assert.ok(want.some((e) => e.type === "laugh_confirmed"), "the stream has laughs to judge");
    assert.ok(laughs > 0);
  });
}

test("the calibrated threshold, not the model's, decides", () => {
  const local = new LocalJudge();
  local.configure(RULES, 0.8);
  for (let i = 0; i < 10; i++) local.push(1000 + 66 * i, true, 0.7); // above 0.5, below 0.8
  assert.equal(local.laugh, null);
  const events = [];
  for (let i = 10; i < 20; i++) events.push(...local.push(1000 + 66 * i, true, 0.85));
  assert.deepEqual(events.map((e) => e.type), ["laugh_start", "laugh_confirmed"]);
  assert.equal(local.laugh, "laughed");
  assert.equal(events[0].t_ms, 1660);
  assert.ok(events[1].t_ms - events[0].t_ms >= RULES.min_laugh_ms);
});

test("a new threshold or a reset starts a fresh timeline; no rules, no judging", () => {
  const local = new LocalJudge();
  assert.deepEqual(local.push(0, true, 0.99), []); // before welcome: nothing to judge with
  assert.equal(local.laugh, null);
  local.configure(RULES, null);
  local.push(100, true, 0.95);
  assert.equal(local.laugh, "laughing");
  local.configure(RULES, null); // the same rules again: the laugh goes on
  assert.equal(local.laugh, "laughing");
  local.configure(RULES, 0.7); // calibrated: the server's round starts afresh too
  assert.equal(local.laugh, null);
  local.push(200, true, 0.95);
  local.reset(); // a new round
  assert.equal(local.laugh, null);
  assert.deepEqual(local.push(50, true, 0.1), []); // a fresh timeline may start anywhere
});

test("rules the judge refuses fail loudly", () => {
  const local = new LocalJudge();
  assert.throws(() => local.configure(RULES, 1.5), /threshold must be in \(0, 1\)/);
  assert.throws(() => local.configure({ ...RULES, bogus: 1 }, null), /unknown keys: bogus/);
});

// --- the tiles' cue (issue 10, item 4): "almost" only while no laugh counts -------------------

test("the almost cue never shows together with a laugh that counts", () => {
  const local = new LocalJudge();
  local.configure(RULES, 0.6);
  const seen = [];
  // calm, near the threshold (0.52 >= 0.6 - release), over it long enough to count, calm
  const probs = [0.1, 0.2, 0.52, 0.55, 0.3, ...Array(10).fill(0.9), 0.1, 0.1, 0.1, 0.1, 0.1, 0.1];
  probs.forEach((p, i) => {
    local.push(1000 + i * 66, true, p);
    seen.push(cueOf({ phase: "round", prob: local.prob, threshold: 0.6, release: RULES.release, laugh: local.laugh }));
  });
  assert.deepEqual(seen.slice(0, 5), [null, null, "almost", "almost", null]);
  const first = seen.indexOf("laughed");
  assert.ok(first > 5, "the laugh counts after min_laugh_ms");
  assert.ok(seen.slice(5, first).every((c) => c === "almost"), "a laugh not yet counted is 'almost'");
  assert.ok(!seen.slice(first).includes("almost") || seen.slice(first).indexOf("almost") > seen.lastIndexOf("laughed"),
    "no 'almost' while the laugh counts");
  assert.equal(local.laughStartMs, 1000 + 5 * 66);
  for (const phase of ["verdict", "steady", "countdown", "match_over"]) {
    assert.equal(cueOf({ phase, prob: 0.59, threshold: 0.6, release: 0.1, laugh: "laughing" }), null, phase);
  }
});

test("others' laugh state follows the server's judge events", () => {
  let s = null;
  s = laughAfter(s, { type: "laugh_start" });
  assert.equal(s, "laughing");
  assert.equal(laughAfter(s, { type: "laugh_end", confirmed: false }), null);
  s = laughAfter(s, { type: "laugh_confirmed" });
  assert.equal(s, "laughed");
  assert.equal(laughAfter(s, { type: "laugh_start" }), "laughed");
  assert.equal(laughAfter(s, { type: "laugh_end", confirmed: true }), "laughed");
  assert.equal(laughAfter(s, { type: "face_lost" }), "laughed");
  assert.equal(cueOf({ phase: "round", prob: 0.95, threshold: 0.6, release: 0.1, laugh: s }), "laughed");
});
