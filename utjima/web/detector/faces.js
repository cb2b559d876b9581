// Face detection decoding and the one face-crop policy: a line-by-line port of
// utjima/faces.py, whose module docstring is the spec. Pure functions over typed arrays:
// no DOM and no onnxruntime import (a detector session is passed in), so node
// (tests/js/faces.test.mjs, against tests/vectors/faces.json written by
// tools/make_face_vectors.py) and the detector worker run the same code.
// Every constant comes from model.json["crop"] (`cropConfig` checks it); none is hard-coded.
//
// Images are {data, width, height, channels}: row-major uint8 pixels, channels = 3 (RGB)
// or 4 (RGBA as in ImageData; alpha is ignored). Coordinates are continuous pixels: pixel
// (col i, row j) has its centre at (i + 0.5, j + 0.5). An affine m is [[a, b, c], [d, e, f]]
// mapping output px -> source px.

const ALIGN_CHOICES = ["none", "eyes"];
// The parts of model.json["crop"] this port implements; any other value is refused loudly
// rather than silently computed differently from Python.
const SAMPLER = { interpolation: "bilinear", pixel_center: 0.5, border: "clamp", value_scale: "1/255", gray: "after sampling" };
const DETECTOR_INPUT = { fit: "letterbox, centred", layout: "NCHW", channels: "rgb" };

function need(obj, key, where) {
  if (obj === null || typeof obj !== "object" || !(key in obj)) throw new Error(`model.json ${where}: missing key "${key}"`);
  return obj[key];
}

/** Read and check model.json["crop"]: the crop policy, the sampler and the live detector's
 *  decoding constants, in the names this module uses. Throws naming what it cannot honour. */
export function cropConfig(crop) {
  for (const k of ["size", "scale", "shift_y", "align", "detector", "sampler", "detector_input", "detectors"]) need(crop, k, "crop");
  if (!ALIGN_CHOICES.includes(crop.align)) throw new Error(`model.json crop.align must be one of ${ALIGN_CHOICES}, got ${JSON.stringify(crop.align)}`);
  if (crop.box_side !== undefined && crop.box_side !== "max(w, h)") throw new Error(`crop.box_side ${JSON.stringify(crop.box_side)} is not implemented (expected "max(w, h)")`);
  for (const [k, v] of Object.entries(SAMPLER)) {
    if (need(crop.sampler, k, "crop.sampler") !== v) throw new Error(`crop.sampler.${k} is ${JSON.stringify(crop.sampler[k])}; this port implements ${JSON.stringify(v)}`);
  }
  for (const [k, v] of Object.entries(DETECTOR_INPUT)) {
    if (need(crop.detector_input, k, "crop.detector_input") !== v) throw new Error(`crop.detector_input.${k} is ${JSON.stringify(crop.detector_input[k])}; this port implements ${JSON.stringify(v)}`);
  }
  const range = need(crop.detector_input, "range", "crop.detector_input");
  const d = need(crop.detectors, crop.detector, "crop.detectors");
  for (const k of ["file", "input_size", "anchor_layers", "min_score", "iou", "raw_score_clip", "anchor_offset", "box_scale", "box_shift_y", "inputs", "outputs"]) need(d, k, `crop.detectors.${crop.detector}`);
  return {
    size: crop.size, // output side, px
    scale: crop.scale, // crop side = scale * max(box w, h)
    shiftY: crop.shift_y, // crop centre moved along the face's down by shift_y * box side
    align: crop.align, // "eyes" | "none"
    stepEps: need(crop.sampler, "step_eps", "crop.sampler"),
    grayWeights: need(crop.sampler, "gray_weights", "crop.sampler"),
    fill: need(crop.detector_input, "fill", "crop.detector_input"), // letterbox bars, 0..255
    range, // network input range, e.g. [-1, 1]
    detector: {
      role: crop.detector,
      file: d.file,
      inputSize: d.input_size,
      anchorLayers: d.anchor_layers,
      minScore: d.min_score,
      iou: d.iou,
      rawScoreClip: d.raw_score_clip,
      anchorOffset: d.anchor_offset,
      boxScale: d.box_scale,
      boxShiftY: d.box_shift_y,
      inputName: Object.keys(d.inputs)[0],
      outputNames: Object.keys(d.outputs), // [regressors, classificators]
    },
  };
}

// ---------------------------------------------------------------------------------------
// the sampler

/**
 * Affine resampling exactly as faces.py's `_warp`: box prefilter by f = max(1, floor(step +
 * stepEps)), bilinear taps clamped to the edge of the reduced image R, `fill` (0..255, or
 * null) outside the source, values / 255. Only the blocks of R the taps can reach are
 * reduced (the map's extremes are at the corner pixels), into a scratch buffer reused
 * between calls. Returns `out`: Float32Array (outH * outW * 3), RGB interleaved, 0..1.
 */
export class Sampler {
  constructor(stepEps) {
    if (!(stepEps >= 0)) throw new Error(`stepEps must be >= 0, got ${stepEps}`);
    this.stepEps = stepEps;
    this.region = new Float32Array(0); // (sh, sw, 3) reduced source region
    this.rowSums = new Int32Array(0); // (sw, 3) integer block sums of one row of blocks
    this.tabs = null; // per-column / per-row tap tables of the axis-aligned path
  }

  warp(img, m, outW, outH, step, fill = null, out = new Float32Array(outW * outH * 3)) {
    const { data: P, width: W, height: H, channels: C } = img;
    const f = Math.max(1, Math.floor(step + this.stepEps));
    const rw = Math.ceil(W / f), rh = Math.ceil(H / f);
    const [m00, m01, m02] = m[0], [m10, m11, m12] = m[1];
    // region of R reachable by the bilinear taps
    let xlo = Infinity, xhi = -Infinity, ylo = Infinity, yhi = -Infinity;
    for (const [cu, cv] of [[0.5, 0.5], [outW - 0.5, 0.5], [0.5, outH - 0.5], [outW - 0.5, outH - 0.5]]) {
      const x = (m00 * cu + m01 * cv + m02) / f - 0.5, y = (m10 * cu + m11 * cv + m12) / f - 0.5;
      xlo = Math.min(xlo, x); xhi = Math.max(xhi, x); ylo = Math.min(ylo, y); yhi = Math.max(yhi, y);
    }
    const clampI = (v, hi) => Math.min(Math.max(v, 0), hi);
    const x0 = clampI(Math.floor(xlo), rw - 1), x1 = clampI(Math.floor(xhi + 1), rw - 1);
    const y0 = clampI(Math.floor(ylo), rh - 1), y1 = clampI(Math.floor(yhi + 1), rh - 1);
    const sw = x1 - x0 + 1, sh = y1 - y0 + 1;
    if (this.region.length < sw * sh * 3) this.region = new Float32Array(sw * sh * 3);
    if (this.rowSums.length < sw * 3) this.rowSums = new Int32Array(sw * 3);
    const R = this.region;
    boxReduce(img, f, x0, y0, sw, sh, R, this.rowSums); // 1. box prefilter
    // 2-4. bilinear taps, clamp to edge, fill outside, / 255
    const fillV = fill === null ? null : fill / 255;
    if (m01 === 0 && m10 === 0) return this._sampleAxisAligned(R, sw, sh, x0, y0, f, m00, m02, m11, m12, W, H, outW, outH, fillV, out);
    let o = 0;
    for (let v = 0; v < outH; v++) {
      const cv = v + 0.5;
      for (let u = 0; u < outW; u++, o += 3) {
        const cu = u + 0.5;
        const sx = m00 * cu + m01 * cv + m02, sy = m10 * cu + m11 * cv + m12;
        if (fillV !== null && !(sx >= 0 && sx < W && sy >= 0 && sy < H)) {
          out[o] = fillV; out[o + 1] = fillV; out[o + 2] = fillV;
          continue;
        }
        const x = sx / f - 0.5 - x0, y = sy / f - 0.5 - y0;
        const xf = Math.floor(x), yf = Math.floor(y);
        const fx = Math.fround(x - xf), fy = Math.fround(y - yf);
        const xa = clampI(xf, sw - 1) * 3, xb = clampI(xf + 1, sw - 1) * 3;
        const ya = clampI(yf, sh - 1) * sw * 3, yb = clampI(yf + 1, sh - 1) * sw * 3;
        for (let c = 0; c < 3; c++) {
          const val = (R[ya + xa + c] * (1 - fx) + R[ya + xb + c] * fx) * (1 - fy)
                    + (R[yb + xa + c] * (1 - fx) + R[yb + xb + c] * fx) * fy;
          out[o + c] = val / 255;
        }
      }
    }
    return out;
  }

  /** The same taps for an axis-aligned map (the letterbox): x depends on u only and y on v
   *  only, so the tap indices and weights are computed once per column and per row. */
  _sampleAxisAligned(R, sw, sh, x0, y0, f, m00, m02, m11, m12, W, H, outW, outH, fillV, out) {
    const tabs = this._tables(outW, outH);
    const { xa, xb, fx, inX, ya, yb, fy, inY } = tabs;
    const clampI = (v, hi) => Math.min(Math.max(v, 0), hi);
    for (let u = 0; u < outW; u++) {
      const sx = m00 * (u + 0.5) + m02, x = sx / f - 0.5 - x0, xf = Math.floor(x);
      xa[u] = clampI(xf, sw - 1) * 3; xb[u] = clampI(xf + 1, sw - 1) * 3;
      fx[u] = Math.fround(x - xf); inX[u] = sx >= 0 && sx < W ? 1 : 0;
    }
    for (let v = 0; v < outH; v++) {
      const sy = m11 * (v + 0.5) + m12, y = sy / f - 0.5 - y0, yf = Math.floor(y);
      ya[v] = clampI(yf, sh - 1) * sw * 3; yb[v] = clampI(yf + 1, sh - 1) * sw * 3;
      fy[v] = Math.fround(y - yf); inY[v] = sy >= 0 && sy < H ? 1 : 0;
    }
    let o = 0;
    for (let v = 0; v < outH; v++) {
      const ra = ya[v], rb = yb[v], wy = fy[v], rowIn = inY[v] === 1;
      for (let u = 0; u < outW; u++, o += 3) {
        if (fillV !== null && !(rowIn && inX[u] === 1)) {
          out[o] = fillV; out[o + 1] = fillV; out[o + 2] = fillV;
          continue;
        }
        const a = xa[u], b = xb[u], wx = fx[u];
        for (let c = 0; c < 3; c++) {
          const val = (R[ra + a + c] * (1 - wx) + R[ra + b + c] * wx) * (1 - wy)
                    + (R[rb + a + c] * (1 - wx) + R[rb + b + c] * wx) * wy;
          out[o + c] = val / 255;
        }
      }
    }
    return out;
  }

  _tables(outW, outH) {
    const t = this.tabs;
    if (t && t.xa.length >= outW && t.ya.length >= outH) return t;
    const w = Math.max(outW, t ? t.xa.length : 0), h = Math.max(outH, t ? t.ya.length : 0);
    this.tabs = {
      xa: new Int32Array(w), xb: new Int32Array(w), fx: new Float64Array(w), inX: new Uint8Array(w),
      ya: new Int32Array(h), yb: new Int32Array(h), fy: new Float64Array(h), inY: new Uint8Array(h),
    };
    return this.tabs;
  }
}

/**
 * R[jj][ii] = mean of the f x f pixels ((y0 + jj) * f + b, (x0 + ii) * f + a), a, b in
 * 0..f-1, indices clamped to the image (a partial last block repeats the edge pixel).
 * Sums of uint8 are exact integers, divided once, as numpy does in float32.
 */
function boxReduce(img, f, x0, y0, sw, sh, R, acc) {
  const { data: P, width: W, height: H, channels: C } = img;
  // blocks lying wholly inside the image need no clamping (the fast inner loop)
  const inner = Math.max(0, Math.min(x0 + sw, Math.floor(W / f)) - x0);
  // RGBA: one 32-bit load per pixel (little-endian, as every browser and node is)
  const P32 = C === 4 && P.byteOffset % 4 === 0 && f < 257 ? new Uint32Array(P.buffer, P.byteOffset, W * H) : null;
  const area = f * f;
  for (let jj = 0; jj < sh; jj++) {
    acc.fill(0, 0, sw * 3);
    for (let b = 0; b < f; b++) {
      const row = Math.min((y0 + jj) * f + b, H - 1) * W;
      for (let ii = 0; ii < sw; ii++) {
        const xs = (x0 + ii) * f;
        let r = 0, g = 0, bl = 0;
        if (ii < inner && P32 !== null) {
          // two channels per add: R and B (and G and A) in 16-bit lanes; f * 255 < 65536
          let rb = 0, ga = 0;
          for (let x = row + xs, end = x + f; x < end; x++) {
            const v = P32[x];
            rb += v & 0x00ff00ff;
            ga += (v >>> 8) & 0x00ff00ff;
          }
          r = rb & 0xffff; g = ga & 0xffff; bl = rb >>> 16;
        } else {
          for (let a = 0; a < f; a++) {
            const p = (row + Math.min(xs + a, W - 1)) * C;
            r += P[p]; g += P[p + 1]; bl += P[p + 2];
          }
        }
        acc[3 * ii] += r; acc[3 * ii + 1] += g; acc[3 * ii + 2] += bl;
      }
    }
    const base = jj * sw * 3;
    for (let k = 0; k < sw * 3; k++) R[base + k] = acc[k] / area;
  }
}

/** faces.py `letterbox`: the map (network px -> image px) and step for side n. */
export function letterboxTransform(width, height, n) {
  const s = Math.min(n / width, n / height);
  const padX = (n - width * s) / 2, padY = (n - height * s) / 2;
  return { m: [[1 / s, 0, -padX / s], [0, 1 / s, -padY / s]], step: 1 / s };
}

/** Interleaved (n*n*3) 0..1 RGB -> the network input planes (1, 3, n, n) in `range`; with
 *  gain != 1 each value is min(1, value * gain) first (the live path's exposure). */
export function toNetworkInput(rgb, n, range, out = new Float32Array(3 * n * n), gain = 1) {
  const [lo, hi] = range, span = hi - lo, plane = n * n;
  if (gain !== 1) {
    for (let k = 0; k < plane; k++) {
      out[k] = Math.min(1, Math.fround(rgb[3 * k] * gain)) * span + lo;
      out[plane + k] = Math.min(1, Math.fround(rgb[3 * k + 1] * gain)) * span + lo;
      out[2 * plane + k] = Math.min(1, Math.fround(rgb[3 * k + 2] * gain)) * span + lo;
    }
    return out;
  }
  for (let k = 0; k < plane; k++) {
    out[k] = rgb[3 * k] * span + lo;
    out[plane + k] = rgb[3 * k + 1] * span + lo;
    out[2 * plane + k] = rgb[3 * k + 2] * span + lo;
  }
  return out;
}

/** Interleaved (size*size*3) 0..1 RGB -> (C, size, size) planes; grey is taken after sampling. */
export function toCropPlanes(rgb, size, channels, grayWeights, out) {
  const plane = size * size;
  if (channels === "gray") {
    out = out || new Float32Array(plane);
    const [wr, wg, wb] = grayWeights;
    for (let k = 0; k < plane; k++) out[k] = wr * rgb[3 * k] + wg * rgb[3 * k + 1] + wb * rgb[3 * k + 2];
  } else if (channels === "rgb") {
    out = out || new Float32Array(3 * plane);
    for (let k = 0; k < plane; k++) {
      out[k] = rgb[3 * k]; out[plane + k] = rgb[3 * k + 1]; out[2 * plane + k] = rgb[3 * k + 2];
    }
  } else {
    throw new Error(`channels must be "gray" or "rgb", got ${JSON.stringify(channels)}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// the detector's decoding

/** (nAnchors * 2) anchor centres as fractions of the network input, in output order. */
export function anchors(det) {
  const out = [];
  for (const [stride, n] of det.anchorLayers) {
    const g = Math.floor(det.inputSize / stride);
    for (let y = 0; y < g; y++) {
      for (let x = 0; x < g; x++) {
        const ax = Math.fround((x + det.anchorOffset) / g), ay = Math.fround((y + det.anchorOffset) / g);
        for (let k = 0; k < n; k++) out.push(ax, ay);
      }
    }
  }
  return Float32Array.from(out);
}

function iou(a, b) {
  const ix = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const iy = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = ix * iy;
  return inter / Math.max((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter, 1e-12);
}

/** MediaPipe's weighted NMS over [{d: (16,) box then keypoints, score, k: anchor index}];
 *  returns [{d, score}] best first. */
export function weightedNms(cands, iouThreshold) {
  let rest = cands.slice().sort((p, q) => q.score - p.score || p.k - q.k);
  const out = [];
  while (rest.length) {
    const top = rest[0];
    const group = [], left = [];
    rest.forEach((q, i) => (i === 0 || iou(top.d, q.d) > iouThreshold ? group : left).push(q));
    let wsum = 0;
    const d = new Float64Array(16);
    for (const q of group) {
      wsum += q.score;
      for (let i = 0; i < 16; i++) d[i] += q.d[i] * q.score;
    }
    for (let i = 0; i < 16; i++) d[i] /= wsum;
    out.push({ d, score: top.score });
    rest = left;
  }
  return out;
}

/**
 * Decode BlazeFace outputs (faces.py `FaceDetector.detect`: `_candidates` + `weighted_nms` +
 * `_face`). reg (nAnchors * 16), cls (nAnchors) raw outputs; anc from `anchors`; m the
 * letterbox map (or any axis-aligned search region's). Returns faces best first:
 * {box: [x1, y1, x2, y2], score, keypoints: [[x, y] * 6]} in image px.
 */
export function decodeFaces(reg, cls, anc, det, m) {
  return finishFaces(decodeCandidates(reg, cls, anc, det, m), det);
}

/** faces.py `_candidates`: the candidates of one network run, {d: (16,) in image px, score,
 *  k}; k = kOffset + anchor index orders score ties (regions earlier in a search first). */
export function decodeCandidates(reg, cls, anc, det, m, kOffset = 0, cands = []) {
  const n = det.inputSize, clip = det.rawScoreClip;
  if (m[0][1] !== 0 || m[1][0] !== 0) throw new Error("the letterbox map must be axis-aligned");
  for (let k = 0; k < cls.length; k++) {
    const score = Math.fround(1 / (1 + Math.exp(-Math.min(Math.max(cls[k], -clip), clip))));
    const r = 16 * k;
    if (score < det.minScore || !(reg[r + 2] > 0) || !(reg[r + 3] > 0)) continue;
    const ax = anc[2 * k], ay = anc[2 * k + 1];
    const q = (i) => Math.fround(reg[r + i] / n); // float32, as numpy computes reg / n
    const cx = Math.fround(q(0) + ax), cy = Math.fround(q(1) + ay);
    const hw = Math.fround(q(2) / 2), hh = Math.fround(q(3) / 2);
    const xy = [cx - hw, cy - hh, cx + hw, cy + hh].map(Math.fround);
    for (let i = 0; i < 6; i++) xy.push(Math.fround(q(4 + 2 * i) + ax), Math.fround(q(5 + 2 * i) + ay));
    const d = xy.map((v, i) => (i % 2 === 0 ? Math.fround(v * n) * m[0][0] + m[0][2] : Math.fround(v * n) * m[1][1] + m[1][2]));
    cands.push({ d, score, k: kOffset + k });
  }
  return cands;
}

/** Weighted NMS over the candidates of one search, then `box_scale` / `box_shift_y`. */
export function finishFaces(cands, det) {
  return weightedNms(cands, det.iou).map(({ d, score }) => {
    const cx = (d[0] + d[2]) / 2;
    let cy = (d[1] + d[3]) / 2;
    const hw = ((d[2] - d[0]) / 2) * det.boxScale, hh = ((d[3] - d[1]) / 2) * det.boxScale;
    cy += det.boxShiftY * 2 * hh;
    const keypoints = [];
    for (let i = 4; i < 16; i += 2) keypoints.push([d[i], d[i + 1]]);
    return { box: [cx - hw, cy - hh, cx + hw, cy + hh], score, keypoints };
  });
}

/** The face a player's stream follows: the largest box (the first one on ties). */
export function largestFace(faces) {
  let best = null, bestArea = -Infinity;
  for (const f of faces) {
    const area = (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]);
    if (area > bestArea) { best = f; bestArea = area; }
  }
  return best;
}

// ---------------------------------------------------------------------------------------
// the live path: one face followed through a camera's frames (faces.py "Live path")

const LIVE_KEYS = ["roi_scale", "tile_frac", "scan_interval_ms", "acquire_min_score", "hold_ms", "exposure_target", "max_gain"];

/** Read and check model.json streaming.live (faces.py `LiveConfig.from_json`). */
export function liveConfig(live) {
  if (live === undefined) throw new Error("model.json streaming.live is missing: this model was exported before the live face search; re-export it with `utjima export`");
  const keys = live !== null && typeof live === "object" ? Object.keys(live).sort() : [];
  if (keys.join() !== [...LIVE_KEYS].sort().join()) throw new Error(`model.json streaming.live must have exactly the keys ${LIVE_KEYS}, got ${JSON.stringify(keys)}`);
  const bad = LIVE_KEYS.filter((k) => !(typeof live[k] === "number" && live[k] > 0));
  if (bad.length || live.max_gain < 1 || live.acquire_min_score > 1) throw new Error(`model.json streaming.live values must be positive numbers (max_gain >= 1, acquire_min_score <= 1), got ${JSON.stringify(live)}`);
  return {
    roiScale: live.roi_scale, // follow: search a square this many face sides wide
    tileFrac: live.tile_frac, // acquire: tiles of this fraction of the frame's longer side
    scanIntervalMs: live.scan_interval_ms, // acquire: the tile scan at most this often
    acquireMinScore: live.acquire_min_score, // acquire: a new face needs this score
    holdMs: live.hold_ms, // a followed face missing this long is gone
    exposureTarget: live.exposure_target, // detector input: gained towards this mean luma
    maxGain: live.max_gain, // ... by at most this factor
  };
}

/** faces.py `search_region`: the square [x0, x0 + side) x [y0, y0 + side) at network side n. */
export function searchRegion(x0, y0, side, n) {
  return { m: [[side / n, 0, x0], [0, side / n, y0]], step: side / n };
}

/** faces.py `roi_region`: the square around a followed face, or null (search the frame). */
export function roiRegion(face, w, h, n, live) {
  const [x1, y1, x2, y2] = face.box;
  const side = live.roiScale * Math.max(x2 - x1, y2 - y1);
  if (side >= Math.max(w, h)) return null;
  return searchRegion((x1 + x2) / 2 - side / 2, (y1 + y2) / 2 - side / 2, side, n);
}

function tileOrigins(length, t) {
  if (t >= length) return [(length - t) / 2];
  const k = Math.ceil((length - t) / (t / 2)) + 1;
  return Array.from({ length: k }, (_, i) => (i * (length - t)) / (k - 1));
}

/** faces.py `scan_regions`: half-overlapping tiles of tileFrac * max(w, h), row by row. */
export function scanRegions(w, h, n, live) {
  const t = live.tileFrac * Math.max(w, h);
  const out = [];
  for (const y0 of tileOrigins(h, t)) for (const x0 of tileOrigins(w, t)) out.push(searchRegion(x0, y0, t, n));
  return out;
}

/** faces.py `exposure_gain`: rgb (n*n*3 interleaved 0..1) sampled through the axis-aligned
 *  m from a w x h image; mean luma over the pixels whose source centre is inside the image. */
export function exposureGain(rgb, n, m, w, h, live, grayWeights) {
  const [wr, wg, wb] = grayWeights;
  let sum = 0, count = 0;
  for (let v = 0; v < n; v++) {
    const sy = m[1][1] * (v + 0.5) + m[1][2];
    if (!(sy >= 0 && sy < h)) continue;
    for (let u = 0; u < n; u++) {
      const sx = m[0][0] * (u + 0.5) + m[0][2];
      if (!(sx >= 0 && sx < w)) continue;
      const o = 3 * (v * n + u);
      sum += wr * rgb[o] + wg * rgb[o + 1] + wb * rgb[o + 2];
      count++;
    }
  }
  return gainFor(count ? sum / count : 0, live);
}

function gainFor(luma, live) {
  if (luma <= 0) return live.maxGain;
  return Math.min(live.maxGain, Math.max(1, live.exposureTarget / luma));
}

/**
 * The live path's crop exposure (faces.py `brighten_crop`), in place on the encoder's input
 * planes (`toCropPlanes`): gain from their mean luma, each value min(1, value * gain).
 * Returns the gain (1: a lit face, left as it was).
 */
export function brightenCrop(planes, size, channels, grayWeights, live) {
  const plane = size * size;
  let sum = 0;
  if (channels === "gray") {
    for (let k = 0; k < plane; k++) sum += planes[k];
  } else {
    const [wr, wg, wb] = grayWeights;
    for (let k = 0; k < plane; k++) sum += wr * planes[k] + wg * planes[plane + k] + wb * planes[2 * plane + k];
  }
  const gain = gainFor(sum / plane, live);
  if (gain !== 1) {
    const n = channels === "gray" ? plane : 3 * plane;
    for (let k = 0; k < n; k++) planes[k] = Math.min(1, Math.fround(planes[k] * gain));
  }
  return gain;
}

/**
 * BlazeFace over search regions (faces.py `FaceDetector.detect_regions` with `live`):
 * each region is sampled at the network's side (black outside the image), its exposure
 * normalised, run, decoded; one weighted NMS over all. session: the detector's onnxruntime
 * InferenceSession; Tensor: ort.Tensor; cfg: `cropConfig(...)`; live: `liveConfig(...)`.
 */
export class RegionDetector {
  constructor(session, Tensor, cfg, live) {
    const det = cfg.detector, n = det.inputSize;
    Object.assign(this, { session, cfg, live, det, n });
    this.anchors = anchors(det);
    this.sampler = new Sampler(cfg.stepEps);
    this.rgb = new Float32Array(n * n * 3);
    this.input = new Tensor("float32", new Float32Array(3 * n * n), [1, 3, n, n]);
  }

  /** Faces in the regions [{m, step}] of img, best first, with score >= minScore. */
  async detect(img, regions, minScore = 0) {
    const { det, n, cfg, live } = this;
    const [regName, clsName] = det.outputNames;
    const cands = [];
    for (let i = 0; i < regions.length; i++) {
      const { m, step } = regions[i];
      this.sampler.warp(img, m, n, n, step, cfg.fill, this.rgb);
      const gain = exposureGain(this.rgb, n, m, img.width, img.height, live, cfg.grayWeights);
      toNetworkInput(this.rgb, n, cfg.range, this.input.data, gain);
      const out = await this.session.run({ [det.inputName]: this.input });
      decodeCandidates(out[regName].data, out[clsName].data, this.anchors, det, m, i * this.anchors.length / 2, cands);
    }
    return finishFaces(cands, det).filter((f) => f.score >= minScore);
  }
}

/**
 * faces.py `FaceTracker`: one camera's face found and followed. `await update(tMs, img)` ->
 * the face to crop from, or null; `search` says what ran ("carried", "roi", "frame", "scan",
 * "held", "gone", "none"). regionDetector: a `RegionDetector`.
 */
export class FaceTracker {
  constructor(regionDetector, live, detectIntervalMs) {
    this.rd = regionDetector;
    this.live = live;
    this.detectIntervalMs = detectIntervalMs;
    this.reset();
  }

  reset() {
    this.face = null;
    this.lastDetectMs = this.lastSeenMs = this.lastScanMs = -Infinity;
    this.search = "none";
  }

  async update(tMs, img) {
    if (this.face !== null && tMs - this.lastDetectMs < this.detectIntervalMs) {
      this.search = "carried";
      return this.face;
    }
    this.lastDetectMs = tMs;
    const { width: w, height: h } = img, n = this.rd.n, live = this.live;
    const frame = letterboxTransform(w, h, n);
    let found = null, searchedFrame = false;
    if (this.face !== null) {
      const roi = roiRegion(this.face, w, h, n, live);
      searchedFrame = roi === null;
      found = largestFace(await this.rd.detect(img, [roi ?? frame]));
      this.search = "roi";
    }
    if (found === null && !searchedFrame) {
      found = largestFace(await this.rd.detect(img, [frame], live.acquireMinScore));
      this.search = "frame";
    }
    if (found === null && this.face !== null && tMs - this.lastSeenMs <= live.holdMs) {
      this.search = "held";
      this.lastDetectMs = -Infinity; // look again on the next frame
      return this.face;
    }
    if (found === null && tMs - this.lastScanMs >= live.scanIntervalMs) {
      this.lastScanMs = tMs;
      found = largestFace(await this.rd.detect(img, scanRegions(w, h, n, live), live.acquireMinScore));
      this.search = "scan";
    }
    if (found === null) {
      this.search = this.face !== null ? "gone" : "none";
      this.face = null;
      return null;
    }
    this.face = found;
    this.lastSeenMs = tMs;
    return found;
  }
}

// ---------------------------------------------------------------------------------------
// the crop

/** faces.py `crop_transform`: the map from crop px to image px, and the sampler's step. */
export function cropTransform(face, cfg) {
  const [x1, y1, x2, y2] = face.box;
  const side = Math.max(x2 - x1, y2 - y1);
  const S = cfg.scale * side;
  let cx = (x1 + x2) / 2, cy = (y1 + y2) / 2;
  let theta = 0;
  if (cfg.align === "eyes") {
    const [[rx, ry], [lx, ly]] = face.keypoints;
    theta = Math.atan2(ly - ry, lx - rx);
  }
  const c = Math.cos(theta), s = Math.sin(theta);
  cx -= s * cfg.shiftY * side;
  cy += c * cfg.shiftY * side;
  const k = S / cfg.size;
  return {
    m: [[c * k, -s * k, cx - ((c - s) * S) / 2], [s * k, c * k, cy - ((s + c) * S) / 2]],
    step: (cfg.scale * side) / cfg.size,
  };
}
