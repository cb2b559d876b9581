// utjima/web/detector/faces.js (the JS port of utjima/faces.py) against the shared vectors
// tests/vectors/faces.json, written from Python by tools/make_face_vectors.py.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";

import {
  anchors,
  cropConfig,
  cropTransform,
  decodeFaces,
  largestFace,
  letterboxTransform,
  Sampler,
  toCropPlanes,
  toNetworkInput,
} from "../../utjima/web/detector/faces.js";

const V = JSON.parse(readFileSync(new URL("../vectors/faces.json", import.meta.url), "utf8"));
const CFG = cropConfig(V.crop);
const PIXEL_TOL = 2e-6; // sampler values in 0..1 (float32 in Python, float64 + float32 here)
const PX_TOL = 1e-4; // boxes and keypoints, image px

const rgbBytes = (b64) => new Uint8Array(Buffer.from(b64, "base64"));
function img(name, channels = 3) {
  const { w, h, rgb } = V.images[name];
  const p = rgbBytes(rgb);
  if (channels === 3) return { data: p, width: w, height: h, channels };
  const rgba = new Uint8ClampedArray(w * h * 4); // as ImageData gives it
  for (let i = 0; i < w * h; i++) {
    rgba.set(p.subarray(3 * i, 3 * i + 3), 4 * i);
    rgba[4 * i + 3] = 255;
  }
  return { data: rgba, width: w, height: h, channels };
}

function maxDiff(got, want) {
  assert.equal(got.length, want.length, "length");
  let d = 0;
  for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(got[i] - want[i]));
  return d;
}

function assertFaces(got, want) {
  assert.equal(got.length, want.length, `found ${got.length} faces, Python ${want.length}`);
  want.forEach((w, i) => {
    assert.ok(maxDiff(got[i].box, w.box) <= PX_TOL, `face ${i} box ${got[i].box} != ${w.box}`);
    assert.ok(maxDiff(got[i].keypoints.flat(), w.keypoints.flat()) <= PX_TOL, `face ${i} keypoints`);
    assert.ok(Math.abs(got[i].score - w.score) <= 1e-6, `face ${i} score ${got[i].score} != ${w.score}`);
  });
}

for (const channels of [3, 4]) {
  test(`sampler cases in order on one reused Sampler (${channels === 3 ? "RGB" : "RGBA"})`, () => {
    const s = new Sampler(CFG.stepEps);
    for (const c of V.warp) {
      const out = s.warp(img(c.image, channels), c.m, c.out_w, c.out_h, c.step, c.fill);
      const d = maxDiff(out, c.expect);
      assert.ok(d <= PIXEL_TOL, `${c.name}: max |js - py| = ${d}`);
    }
  });
}

test("letterbox map and pixels", () => {
  const s = new Sampler(CFG.stepEps);
  for (const c of V.letterbox) {
    const { width, height } = img(c.image);
    const { m, step } = letterboxTransform(width, height, c.n);
    assert.ok(maxDiff(m.flat(), c.m.flat()) <= 1e-12, `${width}x${height}: m`);
    assert.ok(Math.abs(step - c.step) <= 1e-12);
    const rgb = s.warp(img(c.image, 4), m, c.n, c.n, step, CFG.fill);
    assert.ok(maxDiff(rgb, c.expect) <= PIXEL_TOL, `${width}x${height} -> ${c.n}`);
    // the network input planes: (n, n, 3) 0..1 -> (3, n, n) in range
    const net = toNetworkInput(rgb, c.n, CFG.range);
    const plane = c.n * c.n;
    assert.ok(Math.abs(net[plane + 5] - (rgb[3 * 5 + 1] * (CFG.range[1] - CFG.range[0]) + CFG.range[0])) < 1e-7);
  }
});

test("anchor layouts", () => {
  for (const c of V.anchors) {
    const d = V.crop.detectors[c.role];
    const a = anchors({ inputSize: d.input_size, anchorLayers: d.anchor_layers, anchorOffset: d.anchor_offset });
    assert.equal(a.length / 2, c.count, c.role);
    for (const [i, xy] of Object.entries(c.samples)) assert.deepEqual([a[2 * i], a[2 * i + 1]], xy.map(Math.fround), `${c.role} anchor ${i}`);
    assert.ok(Math.abs(a.reduce((s, v) => s + v, 0) - c.sum) < 1e-3);
  }
});

test("decoding + weighted NMS of hand-made raw outputs", () => {
  for (const c of V.decode) {
    const det = cropConfig({ ...V.crop, detector: c.role }).detector;
    const anc = anchors(det);
    const n = anc.length / 2;
    const reg = new Float32Array(n * 16), cls = new Float32Array(n).fill(c.background_cls);
    for (const r of c.raw) {
      reg.set(r.reg, 16 * r.k);
      cls[r.k] = r.cls;
    }
    assertFaces(decodeFaces(reg, cls, anc, det, c.m), c.expect);
  }
});

test("crop transforms and crops", () => {
  const s = new Sampler(CFG.stepEps);
  for (const c of V.crop_cases) {
    const cfg = { ...CFG, size: c.policy.size, scale: c.policy.scale, shiftY: c.policy.shift_y, align: c.policy.align };
    const face = { box: c.box, keypoints: c.keypoints, score: 0.9 };
    const { m, step } = cropTransform(face, cfg);
    assert.ok(maxDiff(m.flat(), c.m.flat()) <= 1e-9, `${c.name}: m`);
    assert.ok(Math.abs(step - c.step) <= 1e-12);
    const rgb = s.warp(img(c.image, 4), m, cfg.size, cfg.size, step, null);
    const planes = toCropPlanes(rgb, cfg.size, c.channels, CFG.grayWeights);
    assert.ok(maxDiff(planes, c.expect) <= PIXEL_TOL, `${c.name}: crop`);
  }
});

test("largest face wins, the first on ties", () => {
  const f = (x, y, s) => ({ box: [x, y, x + s, y + s] });
  const faces = [f(0, 0, 10), f(50, 50, 20), f(90, 0, 20)];
  assert.equal(largestFace(faces), faces[1]);
  assert.equal(largestFace([]), null);
});

test("model.json constants this port does not implement are refused", () => {
  assert.throws(() => cropConfig({ ...V.crop, align: "nose" }), /align must be one of/);
  assert.throws(() => cropConfig({ ...V.crop, sampler: { ...V.crop.sampler, interpolation: "bicubic" } }), /interpolation/);
  const { scale, ...noScale } = V.crop;
  assert.ok(scale > 0);
  assert.throws(() => cropConfig(noScale), /missing key "scale"/);
});

// The real detector on a real (small) photo: needs onnxruntime-web from `make setup`.
const ORT = new URL("../../node_modules/onnxruntime-web/dist/ort.node.min.mjs", import.meta.url);
const MODEL = new URL(`../../utjima/models/${V.detect.detector_file}`, import.meta.url);
test("BlazeFace ONNX + decode + crop on the astronaut", { skip: !existsSync(ORT) && "onnxruntime-web not installed (make setup)" }, async () => {
  const ort = await import(ORT.href);
  const sess = await ort.InferenceSession.create(readFileSync(MODEL));
  const det = CFG.detector, n = det.inputSize, c = V.detect;
  const image = { data: rgbBytes(c.rgb), width: c.w, height: c.h, channels: 3 };
  const s = new Sampler(CFG.stepEps);
  const { m, step } = letterboxTransform(c.w, c.h, n);
  const input = toNetworkInput(s.warp(image, m, n, n, step, CFG.fill), n, CFG.range);
  const out = await sess.run({ [det.inputName]: new ort.Tensor("float32", input, [1, 3, n, n]) });
  const [regName, clsName] = det.outputNames;
  const found = decodeFaces(out[regName].data, out[clsName].data, anchors(det), det, m);
  assertFaces(found, c.expect);
  const t = cropTransform(found[0], CFG);
  const crop = toCropPlanes(s.warp(image, t.m, CFG.size, CFG.size, t.step, null), CFG.size, "gray", CFG.grayWeights);
  const want = new Float32Array(new Uint8Array(Buffer.from(c.crop_gray_f32, "base64")).buffer);
  assert.ok(maxDiff(crop, want) <= 1e-4, `crop max |js - py| = ${maxDiff(crop, want)}`);
});
