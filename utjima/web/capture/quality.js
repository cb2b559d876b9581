// Recording quality, measured: frame statistics from a small grey thumbnail of each
// captured frame (brightness, change from the previous frame) and the live detector's
// results (face found, face size). Pure: node tests run it (tests/js/capture.test.mjs).
//
// Warnings are judged over the last `windowMs` (protocol.json "quality"):
//   no_face  the detector found no face for >= noFaceMs      (prompts that show the face)
//   dark     mean brightness < minLuma (0..255)
//   small    face box width / frame width < minFaceFrac
//   motion   mean absolute change between frames > maxMotion (0..255; prompts that keep still)

export const THUMB_W = 64, THUMB_H = 48; // the thumbnail the statistics are measured on
export const WARNINGS = ["no_face", "dark", "small", "motion"];
const NEAR_MS = 150; // a detector result belongs to a frame captured within this many ms

/** RGBA thumbnail bytes -> {grey, luma, motion}; motion is null without a previous frame. */
export function thumbStats(rgba, prevGrey = null) {
  const n = rgba.length / 4;
  const grey = new Uint8Array(n);
  let sum = 0, diff = 0;
  for (let i = 0; i < n; i++) {
    // BT.601 weights, as utjima's grey frames
    const y = Math.round(0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2]);
    grey[i] = y;
    sum += y;
    if (prevGrey) diff += Math.abs(y - prevGrey[i]);
  }
  return { grey, luma: sum / n, motion: prevGrey && prevGrey.length === n ? diff / n : null };
}

/** The detector result (sorted by t_ms) closest to time t, if one is within maxMs. */
export function nearestResult(results, t, maxMs = NEAR_MS) {
  let lo = 0, hi = results.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (results[mid].t_ms < t) lo = mid + 1;
    else hi = mid;
  }
  let best = null;
  for (const k of [lo - 1, lo]) {
    const r = results[k];
    if (r && Math.abs(r.t_ms - t) <= maxMs && (!best || Math.abs(r.t_ms - t) < Math.abs(best.t_ms - t))) best = r;
  }
  return best;
}

const round = (v, d) => (v === null || v === undefined ? null : Math.round(v * 10 ** d) / 10 ** d);

/** Per-frame quality lists for a clip's manifest entry. `frames`: [{t, luma, motion}] on the
 *  page clock; `results`: detector results [{t_ms, face, box, smile_prob}] sorted by t_ms;
 *  `videoWidth`: the camera frame's width the boxes are measured in. */
export function frameQuality(frames, results, videoWidth) {
  const q = { face: [], face_frac: [], luma: [], motion: [], smile_prob: [] };
  for (const f of frames) {
    const r = nearestResult(results, f.t);
    q.face.push(r ? (r.face ? 1 : 0) : null);
    q.face_frac.push(r?.face && r.box && videoWidth ? round((r.box[2] - r.box[0]) / videoWidth, 4) : null);
    q.luma.push(round(f.luma, 1));
    q.motion.push(round(f.motion, 2));
    q.smile_prob.push(r?.face ? round(r.smile_prob, 4) : null);
  }
  return q;
}

/** Live warnings: feed it frames and detector results as they come, ask `warnings(t)`. */
export class QualityMonitor {
  constructor(cfg) {
    this.cfg = cfg; // protocol.quality: {windowMs, noFaceMs, minLuma, minFaceFrac, maxMotion}
    this.frames = []; // [{t, luma, motion}] within the window
    this.faces = []; // [{t, face, frac}] within the window
    this.lastFaceT = null;
    this.startT = null; // the first detector result: no detector, no face warnings
  }

  _trim(list, t) {
    while (list.length && list[0].t < t - this.cfg.windowMs) list.shift();
  }

  frame(t, stats) {
    this.frames.push({ t, luma: stats.luma, motion: stats.motion });
    this._trim(this.frames, t);
  }

  detection(result, videoWidth) {
    const t = result.t_ms;
    this.startT ??= t;
    const frac = result.face && result.box && videoWidth ? (result.box[2] - result.box[0]) / videoWidth : null;
    if (result.face) this.lastFaceT = t;
    this.faces.push({ t, face: result.face, frac });
    this._trim(this.faces, t);
  }

  /** Measured values over the window (null where nothing was measured yet). */
  measures() {
    const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
    return {
      luma: mean(this.frames.map((f) => f.luma)),
      motion: mean(this.frames.map((f) => f.motion).filter((m) => m !== null)),
      faceFrac: mean(this.faces.map((f) => f.frac).filter((m) => m !== null)),
      faceSeen: this.faces.some((f) => f.face),
    };
  }

  /** Which WARNINGS hold at time t, for a prompt ({face, motionOk}; null = setup/ready). */
  warnings(t, prompt = null) {
    const c = this.cfg, m = this.measures(), out = [];
    const wantFace = !prompt || prompt.face === 1;
    const since = this.lastFaceT ?? this.startT;
    if (wantFace && since !== null && t - since >= c.noFaceMs) out.push("no_face");
    if (m.luma !== null && m.luma < c.minLuma) out.push("dark");
    if (wantFace && m.faceFrac !== null && m.faceFrac < c.minFaceFrac) out.push("small");
    if ((!prompt || !prompt.motionOk) && m.motion !== null && m.motion > c.maxMotion) out.push("motion");
    return out;
  }
}

/** Share of a clip's frames with each problem (for the summary): {no_face, dark, small, motion}. */
export function clipProblems(q, prompt, cfg) {
  const n = q.luma.length || 1;
  const share = (k) => Math.round((100 * k) / n);
  const wantFace = prompt.face === 1;
  return {
    no_face: wantFace ? share(q.face.filter((f) => f === 0).length) : 0,
    dark: share(q.luma.filter((l) => l < cfg.minLuma).length),
    small: wantFace ? share(q.face_frac.filter((f) => f !== null && f < cfg.minFaceFrac).length) : 0,
    motion: prompt.motionOk ? 0 : share(q.motion.filter((m) => m !== null && m > cfg.maxMotion).length),
  };
}
