// The player's own laugh, judged on this page the way the server will judge it.
//
// The server decides every verdict: it runs utjima/judge.py on the scores each page sends,
// with the rules it announces in `welcome.judge` and each player's calibrated threshold
// (shown in the room as `members[].threshold`). judge.js is that judge mirrored line for
// line (one vector file checks both), so fed the very samples this page sends, with the
// same rules and threshold, it reaches the server's decision a round trip (and the
// server's allowed delay) sooner. The room uses it for the player's own meter and the
// "almost laughed" cue; nothing here is sent anywhere or decides anything.

import { judgeConfig, newTracker, update } from "../judge.js";

export class LocalJudge {
  constructor() {
    this.rules = null; // the server's judge config (welcome.judge), null until it arrives
    this.threshold = null; // this player's calibrated threshold, null before calibration
    this.cfg = null; // the rules with that threshold, as the server's round builds them
    this.tracker = null; // judge.js tracker state, null until the first sample of a timeline
    this.prob = null; // the last sample's smile_prob (null: no face)
    this.laughStartMs = null; // page time (t_ms) the latest laugh of this timeline started
  }

  /** The server's rules and this player's threshold; a change starts a fresh timeline. */
  configure(rules, threshold = null) {
    if (rules === this.rules && threshold === this.threshold) return;
    this.rules = rules;
    this.threshold = threshold;
    // judge.new_round: a player's tracker runs the round's rules with their own threshold
    this.cfg = rules === null ? null : judgeConfig(threshold === null ? rules : { ...rules, threshold });
    this.tracker = null;
  }

  /** A fresh timeline, as the server starts one for calibration and for each round. */
  reset() {
    this.tracker = null;
    this.prob = null;
    this.laughStartMs = null;
  }

  /** One sample, exactly as sent to the server ({t_ms, face, smile_prob}); returns the
   *  judge's events for it (laugh_start, laugh_confirmed, laugh_end, face_lost, ...). */
  push(tMs, face, smileProb) {
    if (this.cfg === null) return [];
    if (this.tracker === null) this.tracker = newTracker(this.cfg, tMs);
    const [tracker, events] = update(this.tracker, tMs, face ? smileProb : null, face);
    this.tracker = tracker;
    this.prob = face ? smileProb : null;
    for (const ev of events) if (ev.type === "laugh_start") this.laughStartMs = ev.start_ms;
    return events;
  }

  /** null (no laugh), "laughing" (started, too short to count yet) or "laughed" (long
   *  enough to count: in a round the server sees the same laugh, and the earliest loses). */
  get laugh() {
    const l = this.tracker?.laugh;
    if (!l) return null;
    return l.confirmed ? "laughed" : "laughing";
  }
}

/** The cue a player's tile shows in a round, from what the judge knows of them:
 *  "almost" while their smile is near their threshold (within the rules' `release`) or a
 *  laugh has started that is not yet long enough to count; "laughed" once it counts;
 *  null otherwise, and always outside a round. The two never show together: a confirmed
 *  laugh ends the "almost" cue (issue 10, item 4).
 *  @param {{phase: string, prob: number|null, threshold: number|null, release: number,
 *           laugh: null|"laughing"|"laughed"}} o */
export function cueOf({ phase, prob, threshold, release, laugh }) {
  if (phase !== "round") return null;
  if (laugh === "laughed") return "laughed";
  if (laugh === "laughing") return "almost";
  if (prob !== null && prob !== undefined && threshold !== null && threshold !== undefined
      && prob >= threshold - release) return "almost";
  return null;
}

/** Another player's laugh state from the server's judge events of the running round:
 *  laugh_start -> "laughing", laugh_confirmed -> "laughed", laugh_end -> null (a laugh
 *  that ended unconfirmed was only "almost"; a confirmed one stays "laughed"). */
export function laughAfter(laugh, ev) {
  if (ev.type === "laugh_start") return laugh === "laughed" ? laugh : "laughing";
  if (ev.type === "laugh_confirmed") return "laughed";
  if (ev.type === "laugh_end") return ev.confirmed ? "laughed" : null;
  return laugh;
}
