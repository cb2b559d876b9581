// A straight port of utjima.faces' module doc, driven only by model.json["crop"].
import fs from "node:fs";
import * as ort from "/work/main/node_modules/onnxruntime-web/dist/ort.node.min.mjs";
const c = JSON.parse(fs.readFileSync("case.json"));
const J = c.crop, W = c.w, H = c.h, P = Buffer.from(c.rgb, "base64");

function warp(P, W, H, m, outW, outH, step, fill) {       // -> Float32Array (3, outH, outW)
  const f = Math.max(1, Math.floor(step + J.sampler.step_eps));
  const rw = Math.ceil(W / f), rh = Math.ceil(H / f);
  const R = new Float64Array(rw * rh * 3);
  for (let j = 0; j < rh; j++) for (let i = 0; i < rw; i++) for (let b = 0; b < f; b++) for (let a = 0; a < f; a++) {
    const y = Math.min(j * f + b, H - 1), x = Math.min(i * f + a, W - 1);
    for (let ch = 0; ch < 3; ch++) R[(j * rw + i) * 3 + ch] += P[(y * W + x) * 3 + ch];
  }
  for (let k = 0; k < R.length; k++) R[k] /= f * f;
  const out = new Float32Array(3 * outH * outW);
  const cx = (i) => Math.min(Math.max(i, 0), rw - 1), cy = (j) => Math.min(Math.max(j, 0), rh - 1);
  for (let v = 0; v < outH; v++) for (let u = 0; u < outW; u++) {
    const sx = m[0][0] * (u + 0.5) + m[0][1] * (v + 0.5) + m[0][2];
    const sy = m[1][0] * (u + 0.5) + m[1][1] * (v + 0.5) + m[1][2];
    const x = sx / f - 0.5, y = sy / f - 0.5, x0 = Math.floor(x), y0 = Math.floor(y), fx = x - x0, fy = y - y0;
    const outside = fill !== null && !(sx >= 0 && sx < W && sy >= 0 && sy < H);
    for (let ch = 0; ch < 3; ch++) {
      const t = (j, i) => R[(cy(j) * rw + cx(i)) * 3 + ch];
      const val = (1 - fy) * ((1 - fx) * t(y0, x0) + fx * t(y0, x0 + 1)) + fy * ((1 - fx) * t(y0 + 1, x0) + fx * t(y0 + 1, x0 + 1));
      out[ch * outH * outW + v * outW + u] = (outside ? fill : val) / 255;
    }
  }
  return out;
}
const D = J.detectors[J.detector], N = D.input_size;
const s = Math.min(N / W, N / H), padX = (N - W * s) / 2, padY = (N - H * s) / 2;
const M = [[1 / s, 0, -padX / s], [0, 1 / s, -padY / s]];
const lb = warp(P, W, H, M, N, N, 1 / s, J.detector_input.fill);
let maxd = 0; lb.forEach((v, k) => { maxd = Math.max(maxd, Math.abs(v - c.letterbox[k])); });
console.log("letterbox max |js - py|", maxd);

const anchors = [];
for (const [stride, n] of D.anchor_layers) { const g = N / stride;
  for (let y = 0; y < g; y++) for (let x = 0; x < g; x++) for (let k = 0; k < n; k++) anchors.push([(x + D.anchor_offset) / g, (y + D.anchor_offset) / g]); }
const sess = await ort.InferenceSession.create("/work/main/utjima/models/" + D.file);
const input = new ort.Tensor("float32", lb.map((v) => 2 * v - 1), [1, 3, N, N]);
const res = await sess.run({ input });
const reg = res.regressors.data, cls = res.classificators.data;
const cand = [];
for (let k = 0; k < anchors.length; k++) {
  const z = Math.min(Math.max(cls[k], -D.raw_score_clip), D.raw_score_clip), score = 1 / (1 + Math.exp(-z));
  const r = reg.subarray(k * 16, k * 16 + 16), [ax, ay] = anchors[k];
  if (score < D.min_score || r[2] <= 0 || r[3] <= 0) continue;
  const cxx = r[0] / N + ax, cyy = r[1] / N + ay, w = r[2] / N, h = r[3] / N;
  const pts = [cxx - w / 2, cyy - h / 2, cxx + w / 2, cyy + h / 2];
  for (let i = 0; i < 6; i++) pts.push(r[4 + 2 * i] / N + ax, r[5 + 2 * i] / N + ay);
  cand.push({ score, k, d: pts.map((v, i) => (i % 2 === 0 ? M[0][0] * v * N + M[0][2] : M[1][1] * v * N + M[1][2])) });
}
const iou = (a, b) => { const ix = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0])), iy = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const I = ix * iy; return I / Math.max((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - I, 1e-12); };
let rest = cand.sort((a, b) => b.score - a.score || a.k - b.k); const facesJs = [];
while (rest.length) { const top = rest[0]; const group = rest.filter((q, i) => i === 0 || iou(top.d, q.d) > D.iou);
  const tw = group.reduce((a, q) => a + q.score, 0), d = top.d.map((_, i) => group.reduce((a, q) => a + q.d[i] * q.score, 0) / tw);
  const cx = (d[0] + d[2]) / 2, hw = (d[2] - d[0]) / 2 * D.box_scale, hh = (d[3] - d[1]) / 2 * D.box_scale, cy = (d[1] + d[3]) / 2 + D.box_shift_y * 2 * hh;
  facesJs.push([cx - hw, cy - hh, cx + hw, cy + hh, top.score, ...d.slice(4)]);
  rest = rest.filter((q, i) => i !== 0 && !(iou(top.d, q.d) > D.iou)); }
let fd = 0; facesJs.forEach((f, i) => f.forEach((v, j) => { fd = Math.max(fd, Math.abs(v - c.faces[i][j])); }));
console.log("faces", facesJs.length, "py", c.faces.length, "max |js - py| (px / score)", fd);

// crop
const f0 = facesJs[0], side = Math.max(f0[2] - f0[0], f0[3] - f0[1]), S = J.scale * side;
let th = 0; if (J.align === "eyes") th = Math.atan2(f0[8] - f0[6], f0[7] - f0[5]);
const co = Math.cos(th), si = Math.sin(th);
const ccx = (f0[0] + f0[2]) / 2 - si * J.shift_y * side, ccy = (f0[1] + f0[3]) / 2 + co * J.shift_y * side, k = S / J.size;
const Mc = [[co * k, -si * k, ccx - (co - si) * S / 2], [si * k, co * k, ccy - (si + co) * S / 2]];
const rgb = warp(P, W, H, Mc, J.size, J.size, J.scale * side / J.size, null), n2 = J.size * J.size, [gr, gg, gb] = J.sampler.gray_weights;
let cd = 0; for (let i = 0; i < n2; i++) cd = Math.max(cd, Math.abs(gr * rgb[i] + gg * rgb[n2 + i] + gb * rgb[2 * n2 + i] - c.crop_gray[i]));
console.log("crop gray max |js - py|", cd);
