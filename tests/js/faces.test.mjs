// utjima/web/detector/faces.js (the JS port of utjima/faces.py) against the shared vectors
// tests/vectors/faces.json, written from Python by tools/make_face_vectors.py.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";

import { inflateSync } from "node:zlib";

import {
  anchors,
  brightenCrop,
  cropConfig,
  cropTransform,
  decodeFaces,
  exposureGain,
  FaceTracker,
  largestFace,
  letterboxTransform,
  liveConfig,
  RegionDetector,
  roiRegion,
  Sampler,
  scanRegions,
  toCropPlanes,
  toNetworkInput,
} from "../../utjima/web/detector/faces.js";

const V = JSON.parse(readFileSync(new URL("../vectors/faces.json", import.meta.url), "utf8"));
const CFG = cropConfig(V.crop);
const LIVE = liveConfig(V.live_config);
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

test("live search regions: around a followed face, and the acquisition tiles", () => {
  for (const c of V.regions.roi) {
    const got = roiRegion({ box: c.box }, c.w, c.h, 128, LIVE);
    if (c.m === null) assert.equal(got, null, `${c.box}: the whole frame`);
    else assert.ok(maxDiff(got.m.flat(), c.m.flat()) <= 1e-9, `${c.box}: ${got.m}`);
  }
  for (const c of V.regions.scan) {
    const got = scanRegions(c.w, c.h, 128, LIVE);
    assert.equal(got.length, c.m.length, `${c.w}x${c.h}: ${got.length} tiles`);
    got.forEach((r, i) => assert.ok(maxDiff(r.m.flat(), c.m[i].flat()) <= 1e-9, `${c.w}x${c.h} tile ${i}`));
  }
});

test("exposure gain of the detector input, and the gained network input", () => {
  const s = new Sampler(CFG.stepEps);
  for (const c of V.exposure) {
    const image = img(c.image, 4);
    const rgb = s.warp(image, c.m, c.n, c.n, c.step, CFG.fill);
    const gain = exposureGain(rgb, c.n, c.m, image.width, image.height, LIVE, CFG.grayWeights);
    // the samplers agree to PIXEL_TOL, so the gains to about that, relatively
    assert.ok(Math.abs(gain - c.gain) <= 1e-5 * c.gain, `${c.image}: gain ${gain} != ${c.gain}`);
    const net = toNetworkInput(rgb, c.n, CFG.range, undefined, gain);
    assert.ok(maxDiff(net, c.net) <= 1e-5, `${c.image}: network input`);
  }
  assert.throws(() => liveConfig(undefined), /re-export/);
  assert.throws(() => liveConfig({ ...V.live_config, max_gain: 0.5 }), /max_gain >= 1/);
  const { hold_ms, ...noHold } = V.live_config;
  assert.ok(hold_ms > 0);
  assert.throws(() => liveConfig(noHold), /exactly the keys/);
});

test("a dim crop is brightened as Python's brighten_crop does; a lit one is left alone", () => {
  const gains = [];
  for (const c of V.crop_exposure) {
    const planes = Float32Array.from(c.crop);
    gains.push(brightenCrop(planes, c.size, c.channels, CFG.grayWeights, LIVE));
    assert.ok(maxDiff(planes, c.out) <= 1e-6, `${c.channels} crop: ${maxDiff(planes, c.out)}`);
  }
  assert.ok(gains.some((g) => g === 1) && gains.some((g) => g > 1), `gains ${gains}`);
  assert.ok(gains.includes(LIVE.maxGain), `a black crop gets max_gain: ${gains}`);
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

test("the live tracker on a dim camera with a small face: scan, follow, hold, gone, found again", { skip: !existsSync(ORT) && "onnxruntime-web not installed (make setup)" }, async () => {
  const ort = await import(ORT.href);
  const c = V.live;
  const sess = await ort.InferenceSession.create(readFileSync(new URL(`../../utjima/models/${c.detector_file}`, import.meta.url)));
  const grey = new Uint8Array(inflateSync(Buffer.from(c.canvas_gray_zlib, "base64")));
  assert.equal(grey.length, c.canvas_w * c.canvas_h);
  const tracker = new FaceTracker(new RegionDetector(sess, ort.Tensor, CFG, LIVE), LIVE, c.detect_interval_ms);
  const rgba = new Uint8ClampedArray(c.w * c.h * 4);
  for (const f of c.frames) {
    for (let y = 0; y < c.h; y++) {
      for (let x = 0; x < c.w; x++) {
        const v = grey[(f.y0 + y) * c.canvas_w + f.x0 + x], o = 4 * (y * c.w + x);
        rgba[o] = v; rgba[o + 1] = v; rgba[o + 2] = v; rgba[o + 3] = 255;
      }
    }
    const got = await tracker.update(f.t_ms, { data: rgba, width: c.w, height: c.h, channels: 4 });
    assert.equal(tracker.search, f.search, `t=${f.t_ms}: ${tracker.search}, Python ${f.search}`);
    if (f.face === null) {
      assert.equal(got, null, `t=${f.t_ms}: a face where Python has none`);
      continue;
    }
    assert.ok(got !== null, `t=${f.t_ms}: no face where Python has one`);
    assert.ok(maxDiff(got.box, f.face.box) <= 1e-3, `t=${f.t_ms}: box ${got.box} != ${f.face.box}`);
    assert.ok(maxDiff(got.keypoints.flat(), f.face.keypoints.flat()) <= 1e-3, `t=${f.t_ms}: keypoints`);
    assert.ok(Math.abs(got.score - f.face.score) <= 1e-5, `t=${f.t_ms}: score ${got.score} != ${f.face.score}`);
  }
  const seen = new Set(c.frames.map((f) => f.search));
  for (const s of ["scan", "roi", "carried", "held", "gone", "none"]) assert.ok(seen.has(s), `the vectors show "${s}"`);
});
