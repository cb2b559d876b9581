// The laugh judge, mirrored line for line from utjima/judge.py (read its docstring and
// docs/judge.md for the rules). Pure: no clock, no I/O; time enters only as tMs arguments
// and every function returns a new frozen state. Config, events and verdicts are plain
// objects with the same snake_case keys as Python (the wire format); tests/vectors/
// judge.json is checked against both implementations.

export const DEFAULTS = Object.freeze({
  threshold: 0.5, // laugh at smile_prob >= threshold (per player, from calibrate)
  release: 0.1, // hysteresis: a laugh is supported while smile_prob >= threshold - release
  min_laugh_ms: 400.0, // confirmed once a supporting sample comes this long after the start
  max_gap_ms: 250.0, // a laugh survives a stretch shorter than this without support
  max_sample_gap_ms: 500.0, // no sample this long = stale stream = face absent
  absent_grace_ms: 1000.0, // shorter absences are silent; face lost mid-laugh this long = hidden laugh
  absent_forfeit_ms: 3000.0, // absent this long forfeits the round
  tie_ms: 100.0, // offences within this of the first one lose together
  calib_percentile: 95.0, // calibration: percentile of the neutral face's smile_prob
  calib_margin: 0.1, // ... plus this margin
  calib_min_samples: 20, // fewest face samples calibration accepts
  calib_min_threshold: 0.2, // calibrated threshold is clipped to
  calib_max_threshold: 0.9, // [calib_min_threshold, calib_max_threshold]
});

export class CalibrationError extends Error {
  constructor(message) {
    super(message);
    this.name = "CalibrationError";
  }
}

const isNum = (v) => typeof v === "number" && Number.isFinite(v);

function number(v, what) {
  if (!isNum(v)) throw new Error(`${what} must be a finite number, got ${JSON.stringify(v)}`);
  return v;
}

function faceFlag(v) {
  if (typeof v !== "boolean") throw new Error(`face must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function prob(v) {
  const p = number(v, "smile_prob (face present)");
  if (!(p >= 0 && p <= 1)) throw new Error(`smile_prob must be in [0, 1] when face is true, got ${p}`);
  return p;
}

// --- config ---------------------------------------------------------------------------

/** Defaults overridden by `d` (model.json `judge`, a vector's `config`); validated loudly. */
export function judgeConfig(d = {}) {
  const valid = Object.keys(DEFAULTS);
  const unknown = Object.keys(d ?? {}).filter((k) => !valid.includes(k)).sort();
  if (unknown.length) {
    throw new Error(`JudgeConfig: unknown keys: ${unknown.join(", ")}; valid keys: ${valid.join(", ")}`);
  }
  const c = { ...DEFAULTS, ...(d ?? {}) };
  for (const k of valid) {
    if (!isNum(c[k])) throw new Error(`JudgeConfig.${k} must be a finite number, got ${JSON.stringify(c[k])}`);
  }
  const checks = [
    [0 < c.threshold && c.threshold < 1, "threshold must be in (0, 1)"],
    [0 <= c.release && c.release < c.threshold, "release must be in [0, threshold)"],
    [c.min_laugh_ms >= 0, "min_laugh_ms must be >= 0"],
    [c.max_gap_ms > 0, "max_gap_ms must be > 0"],
    [c.max_sample_gap_ms >= c.max_gap_ms, "max_sample_gap_ms must be >= max_gap_ms"],
    [c.absent_grace_ms >= 0, "absent_grace_ms must be >= 0"],
    [c.absent_forfeit_ms >= c.absent_grace_ms, "absent_forfeit_ms must be >= absent_grace_ms"],
    [c.tie_ms >= 0, "tie_ms must be >= 0"],
    [0 <= c.calib_percentile && c.calib_percentile <= 100, "calib_percentile must be in [0, 100]"],
    [c.calib_margin >= 0, "calib_margin must be >= 0"],
    [c.calib_min_samples >= 1 && Number.isInteger(c.calib_min_samples),
      "calib_min_samples must be an integer >= 1"],
    [0 < c.calib_min_threshold && c.calib_min_threshold <= c.calib_max_threshold &&
      c.calib_max_threshold < 1 && c.release < c.calib_max_threshold,
      "need 0 < calib_min_threshold <= calib_max_threshold < 1, release < calib_max_threshold"],
  ];
  for (const [ok, msg] of checks) {
    if (!ok) throw new Error(`JudgeConfig: ${msg}; got ${JSON.stringify(c)}`);
  }
  return Object.freeze(c);
}

// --- per-player tracker ------------------------------------------------------------------
// state: {cfg, now_ms, last_sample_ms, laugh, absence, laugh_at_sample}
// laugh: {start_ms, last_ms, peak_prob, confirmed}; absence: {since_ms, laugh, lost, forfeited}

const freeze = Object.freeze;

function absence(sinceMs, laugh) {
  return freeze({ since_ms: sinceMs, laugh, lost: false, forfeited: false });
}

/** A tracker whose timeline starts at tMs; no face seen yet counts as absent from tMs. */
export function newTracker(cfg, tMs) {
  const t = number(tMs, "t_ms");
  return freeze({
    cfg, now_ms: t, last_sample_ms: null, laugh: null, absence: absence(t, null), laugh_at_sample: null,
  });
}

function nextDeadline(trk) {
  const cfg = trk.cfg;
  const due = [];
  if (trk.laugh !== null) due.push([trk.laugh.last_ms + cfg.max_gap_ms, "laugh_end"]);
  if (trk.absence === null && trk.last_sample_ms !== null) {
    due.push([trk.last_sample_ms + cfg.max_sample_gap_ms, "stale"]);
  }
  const a = trk.absence;
  if (a !== null && !a.lost) due.push([a.since_ms + cfg.absent_grace_ms, "face_lost"]);
  if (a !== null && !a.forfeited && a.laugh !== null) {
    due.push([a.since_ms + cfg.absent_grace_ms, "hidden_laugh"]);
  }
  if (a !== null && !a.forfeited) due.push([a.since_ms + cfg.absent_forfeit_ms, "absent_forfeit"]);
  let best = null;
  for (const d of due) if (best === null || d[0] < best[0]) best = d; // first of equals
  return best;
}

function fire(trk, t, kind, events) {
  const { laugh, absence: a } = trk;
  if (kind === "laugh_end") {
    events.push({
      type: "laugh_end", t_ms: t, start_ms: laugh.start_ms, end_ms: laugh.last_ms,
      peak_prob: laugh.peak_prob, confirmed: laugh.confirmed,
    });
    return freeze({ ...trk, laugh: null });
  }
  if (kind === "stale") return freeze({ ...trk, absence: absence(t, trk.laugh_at_sample) });
  if (kind === "face_lost") {
    events.push({ type: "face_lost", t_ms: t, start_ms: a.since_ms });
    return freeze({ ...trk, absence: freeze({ ...a, lost: true }) });
  }
  const hidden = kind === "hidden_laugh" ? a.laugh : null;
  events.push({
    type: "absent_forfeit", t_ms: t, start_ms: a.since_ms,
    reason: hidden === null ? "absent" : "hidden_laugh",
    offence_ms: hidden === null ? a.since_ms : hidden.start_ms,
    peak_prob: hidden === null ? null : hidden.peak_prob,
  });
  return freeze({ ...trk, absence: freeze({ ...a, forfeited: true }) });
}

function runDeadlines(trk, t, events) {
  for (let due = nextDeadline(trk); due !== null && due[0] <= t; due = nextDeadline(trk)) {
    trk = fire(trk, due[0], due[1], events);
  }
  return trk;
}

/** Commit the timeline up to tMs with no new sample: fire every rule due by then. */
export function advance(trk, tMs) {
  const t = number(tMs, "t_ms");
  if (t < trk.now_ms) throw new Error(`t_ms must not go backwards: advance to ${t} after ${trk.now_ms}`);
  const events = [];
  trk = runDeadlines(trk, t, events);
  return [freeze({ ...trk, now_ms: t }), events];
}

/** Apply one sample: [newState, events]. tMs must exceed the last sample's. */
export function update(trk, tMs, smileProb, face) {
  const t = number(tMs, "t_ms");
  if (trk.last_sample_ms !== null && t <= trk.last_sample_ms) {
    throw new Error(`t_ms must increase: got ${t} after ${trk.last_sample_ms}`);
  }
  if (t < trk.now_ms) throw new Error(`t_ms must not go backwards: got ${t} after advance to ${trk.now_ms}`);
  face = faceFlag(face);
  const p = face ? prob(smileProb) : null;
  const events = [];
  trk = runDeadlines(trk, t, events); // everything due up to t happens before the sample
  const cfg = trk.cfg;
  let { laugh, absence: abs } = trk;
  if (!face) {
    if (abs === null) abs = absence(t, laugh);
  } else {
    if (abs !== null) {
      if (abs.lost) events.push({ type: "face_back", t_ms: t, start_ms: abs.since_ms });
      abs = null;
    }
    if (laugh === null && p >= cfg.threshold) {
      laugh = freeze({ start_ms: t, last_ms: t, peak_prob: p, confirmed: false });
      events.push({ type: "laugh_start", t_ms: t, start_ms: t, peak_prob: p });
    } else if (laugh !== null && p >= cfg.threshold - cfg.release) {
      laugh = freeze({ ...laugh, last_ms: t, peak_prob: Math.max(laugh.peak_prob, p) });
    }
    if (laugh !== null && !laugh.confirmed && laugh.last_ms === t && t - laugh.start_ms >= cfg.min_laugh_ms) {
      laugh = freeze({ ...laugh, confirmed: true });
      events.push({ type: "laugh_confirmed", t_ms: t, start_ms: laugh.start_ms, peak_prob: laugh.peak_prob });
    }
  }
  trk = freeze({
    ...trk, now_ms: t, last_sample_ms: t, laugh, absence: abs,
    laugh_at_sample: laugh,
  });
  trk = runDeadlines(trk, t, events); // rules due at t itself (absent_grace_ms == 0)
  return [trk, events];
}

/** End a laugh still open at now_ms (end of a video); its end is its last support. */
export function close(trk) {
  if (trk.laugh === null) return [trk, []];
  const l = trk.laugh;
  const ev = {
    type: "laugh_end", t_ms: trk.now_ms, start_ms: l.start_ms, end_ms: l.last_ms,
    peak_prob: l.peak_prob, confirmed: l.confirmed,
  };
  return [freeze({ ...trk, laugh: null }), [ev]];
}

/** Run a fresh tracker (timeline from the first sample) over [[t_ms, prob, face], ...]. */
export function track(samples, cfg) {
  let trk = null;
  const events = [];
  samples.forEach((s, i) => {
    if (!Array.isArray(s) || s.length !== 3) {
      throw new Error(`sample ${i} must be [t_ms, smile_prob, face], got ${JSON.stringify(s)}`);
    }
    if (trk === null) trk = newTracker(cfg, s[0]);
    let ev;
    try {
      [trk, ev] = update(trk, s[0], s[1], s[2]);
    } catch (e) {
      throw new Error(`sample ${i}: ${e.message}`);
    }
    events.push(...ev);
  });
  return [trk, events];
}

/** Confirmed laughs [{start_ms, end_ms, peak_prob}] in a whole series; no forfeits. */
export function segments(samples, cfg) {
  const [trk, events] = track(samples, cfg);
  if (trk !== null) events.push(...close(trk)[1]);
  return events
    .filter((e) => e.type === "laugh_end" && e.confirmed)
    .map((e) => ({ start_ms: e.start_ms, end_ms: e.end_ms, peak_prob: e.peak_prob }));
}

// --- calibration -----------------------------------------------------------------------

/** Linear-interpolation percentile (numpy's default), as in judge.py. */
export function percentile(values, q) {
  const xs = [...values].sort((a, b) => a - b);
  const pos = (q / 100.0) * (xs.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, xs.length - 1);
  return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo);
}

/** A player's threshold from a few seconds of neutral face (see judge.py calibrate). */
export function calibrate(samples, cfg) {
  const probs = [];
  let last = null;
  samples.forEach((s, i) => {
    if (!Array.isArray(s) || s.length !== 3) {
      throw new Error(`sample ${i} must be [t_ms, smile_prob, face], got ${JSON.stringify(s)}`);
    }
    const t = number(s[0], `sample ${i}: t_ms`);
    if (last !== null && t <= last) throw new Error(`sample ${i}: t_ms must increase: got ${t} after ${last}`);
    last = t;
    if (faceFlag(s[2])) probs.push(prob(s[1]));
  });
  if (probs.length === 0) {
    throw new CalibrationError(`calibration saw no face in ${samples.length} samples; look at the camera and try again`);
  }
  if (probs.length < cfg.calib_min_samples) {
    throw new CalibrationError(
      `calibration needs at least ${cfg.calib_min_samples} face samples, got ${probs.length}`);
  }
  const raised = Math.max(cfg.threshold, percentile(probs, cfg.calib_percentile) + cfg.calib_margin);
  return Math.min(Math.max(raised, cfg.calib_min_threshold), cfg.calib_max_threshold);
}

// --- round verdict -------------------------------------------------------------------------
// round: {cfg, start_ms, end_ms, players: [id], trackers: [state], offences: [{reason, offence_ms, peak_prob} | null]}

/** players: [[id, calibrated threshold or null], ...] in display order. */
export function newRound(cfg, players, startMs, endMs) {
  const start = number(startMs, "start_ms");
  const end = number(endMs, "end_ms");
  if (end <= start) throw new Error(`end_ms must be after start_ms, got ${start} .. ${end}`);
  const ids = players.map((p) => p[0]);
  if (!ids.length || ids.some((i) => typeof i !== "string" || !i) || new Set(ids).size !== ids.length) {
    throw new Error(`players need unique non-empty string ids, got ${JSON.stringify(ids)}`);
  }
  const trackers = players.map(([, thr]) =>
    newTracker(thr === null || thr === undefined ? cfg : judgeConfig({ ...cfg, threshold: number(thr, "threshold") }), start));
  return freeze({
    cfg, start_ms: start, end_ms: end, players: freeze(ids), trackers: freeze(trackers),
    offences: freeze(ids.map(() => null)),
  });
}

function offenceOf(ev) {
  if (ev.type === "laugh_confirmed") return { reason: "laugh", offence_ms: ev.start_ms, peak_prob: ev.peak_prob };
  if (ev.type === "absent_forfeit") return { reason: ev.reason, offence_ms: ev.offence_ms, peak_prob: ev.peak_prob };
  return null;
}

// Events tagged with the player; the one that becomes the earliest offence gets offence: true.
function withEvents(rs, i, trk, events) {
  let best = rs.offences[i];
  const tagged = [];
  for (let ev of events) {
    const off = offenceOf(ev);
    if (off !== null && off.offence_ms < rs.end_ms && (best === null || off.offence_ms < best.offence_ms)) {
      best = freeze(off);
      ev = { ...ev, offence: true };
    }
    tagged.push({ player: rs.players[i], ...ev });
  }
  const trackers = rs.trackers.map((x, j) => (j === i ? trk : x));
  const offences = rs.offences.map((x, j) => (j === i ? best : x));
  return [freeze({ ...rs, trackers: freeze(trackers), offences: freeze(offences) }), tagged];
}

function indexOf(rs, player) {
  const i = rs.players.indexOf(player);
  if (i < 0) throw new Error(`unknown player ${player}; players: ${rs.players.join(", ")}`);
  return i;
}

/** One player's sample; events come back tagged with `player`. */
export function roundUpdate(rs, player, tMs, smileProb, face) {
  const i = indexOf(rs, player);
  const [trk, events] = update(rs.trackers[i], tMs, smileProb, face);
  return withEvents(rs, i, trk, events);
}

/** Server tick: commit every player's (or one player's) timeline up to tMs. */
export function roundAdvance(rs, tMs, player = null) {
  const t = number(tMs, "t_ms");
  const out = [];
  const which = player === null ? rs.players.map((_, i) => i) : [indexOf(rs, player)];
  for (const i of which) {
    if (rs.trackers[i].now_ms < t) {
      const [trk, events] = advance(rs.trackers[i], t);
      let tagged;
      [rs, tagged] = withEvents(rs, i, trk, events);
      out.push(...tagged);
    }
  }
  return [rs, out];
}

function earliestPossible(trk) {
  let bound = trk.now_ms;
  if (trk.laugh !== null && !trk.laugh.confirmed) bound = Math.min(bound, trk.laugh.start_ms);
  const a = trk.absence;
  if (a !== null && !a.forfeited) {
    bound = Math.min(bound, a.since_ms);
    if (a.laugh !== null) bound = Math.min(bound, a.laugh.start_ms);
  }
  // the stream may still go stale with this laugh cut off (a hidden laugh)
  if (a === null && trk.laugh_at_sample !== null) bound = Math.min(bound, trk.laugh_at_sample.start_ms);
  return bound;
}

/** {status: "pending", waiting_for} | {status: "loss", losers} | {status: "draw"}. */
export function roundVerdict(rs) {
  const times = rs.offences.filter((o) => o !== null).map((o) => o.offence_ms);
  const cut = times.length ? Math.min(...times) + rs.cfg.tie_ms : Infinity;
  const waiting = [];
  rs.players.forEach((pid, i) => {
    const off = rs.offences[i];
    if (off !== null && off.offence_ms <= cut) return; // already a loser
    const bound = earliestPossible(rs.trackers[i]);
    if (bound <= cut && bound < rs.end_ms) waiting.push(pid);
  });
  if (waiting.length) return { status: "pending", waiting_for: waiting };
  if (!times.length) return { status: "draw" };
  const losers = [];
  rs.players.forEach((pid, i) => {
    const off = rs.offences[i];
    if (off !== null && off.offence_ms <= cut) losers.push({ player: pid, ...off });
  });
  return { status: "loss", losers };
}
