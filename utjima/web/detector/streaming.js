// The streaming contract, mirrored from utjima/streaming.py: which past frames feed the
// recurrent step at time tMs. Shared vectors: tests/vectors/streaming.json.
//
// Window rule:
// - target times are tMs - (nFrames - 1 - k) * frameIntervalMs for k = 0..T-1;
// - each target takes the latest frame with t <= target (sample and hold);
// - a target before the first frame takes the first frame, so a fresh stream sees the
//   first face repeated, like the still-image clips the model was trained on.
// Time only enters through tMs arguments; nothing here reads a clock.

// Python's bisect_right: the number of entries <= x in an ascending array.
function bisectRight(xs, x) {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (x < xs[mid]) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Indices into timesMs (ascending, last one == tMs) forming the window at tMs. */
export function windowIndices(timesMs, tMs, nFrames, frameIntervalMs) {
  if (!timesMs.length) throw new Error("window_indices needs at least one frame");
  const out = [];
  for (let k = 0; k < nFrames; k++) {
    const target = tMs - (nFrames - 1 - k) * frameIntervalMs;
    // latest frame at or before target; before the first frame -> the first frame
    const i = bisectRight(timesMs, target + 1e-6) - 1;
    out.push(Math.max(i, 0));
  }
  return out;
}

/** Per-player history of encoder features; push returns the (T, F) step input, row-major. */
export class FeatureWindow {
  constructor(nFrames, frameIntervalMs) {
    if (!Number.isInteger(nFrames) || nFrames < 1) throw new Error(`nFrames must be an integer >= 1, got ${nFrames}`);
    if (!(Number.isFinite(frameIntervalMs) && frameIntervalMs > 0)) {
      throw new Error(`frameIntervalMs must be a positive number, got ${frameIntervalMs}`);
    }
    this.nFrames = nFrames;
    this.frameIntervalMs = frameIntervalMs;
    this.timesMs = [];
    this.feats = [];
  }

  reset() {
    this.timesMs = [];
    this.feats = [];
  }

  /** feature: Float32Array (F,) -> Float32Array (T*F,) */
  push(tMs, feature) {
    if (!Number.isFinite(tMs)) throw new Error(`t_ms must be a finite number, got ${tMs}`);
    const n = this.timesMs.length;
    if (n && tMs <= this.timesMs[n - 1]) {
      throw new Error(`t_ms must increase: got ${tMs} after ${this.timesMs[n - 1]}`);
    }
    const f = Float32Array.from(feature);
    if (this.feats.length && f.length !== this.feats[0].length) {
      throw new Error(`feature length ${f.length} differs from the window's ${this.feats[0].length}`);
    }
    this.timesMs.push(tMs);
    this.feats.push(f);
    const idx = windowIndices(this.timesMs, tMs, this.nFrames, this.frameIntervalMs);
    const F = f.length;
    const window = new Float32Array(this.nFrames * F); // (T, F) row-major
    idx.forEach((i, k) => window.set(this.feats[i], k * F));
    // Drop frames no future window can pick: everything before the oldest one used now.
    const keepFrom = idx[0];
    if (keepFrom > 0) {
      this.timesMs.splice(0, keepFrom);
      this.feats.splice(0, keepFrom);
    }
    return window;
  }
}
