// The per-frame pipeline, the same as utjima/runtime.py `Stream.process`: the face tracker
// (faces.js `FaceTracker`: the followed face's neighbourhood, else the whole frame, else a
// tile scan; exposure-normalised detector inputs; a missed face held for a while) -> crop
// (brightened when dim) -> encoder (once per frame) -> FeatureWindow.push(tMs, feature) ->
// step over the window -> smile_prob + emotion. The window is cleared when the face is gone (streaming.reset).
//
// Environment-free: it takes the onnxruntime module and a byte loader, so the worker
// (worker.js) and node run it alike. Everything comes from model.json.
// Buffers and input tensors are allocated once and reused on every frame.

import { FeatureWindow } from "./streaming.js";
import {
  brightenCrop,
  cropConfig,
  cropTransform,
  FaceTracker,
  liveConfig,
  RegionDetector,
  Sampler,
  toCropPlanes,
} from "./faces.js";

export const SCHEMA = "utjima.model/1";

function need(obj, key, where) {
  if (obj === null || typeof obj !== "object" || !(key in obj)) throw new Error(`model.json ${where}: missing key "${key}"`);
  return obj[key];
}

/** Check a parsed model.json loudly and return what the pipeline needs from it. */
export function readContract(contract) {
  if (need(contract, "schema", "") !== SCHEMA) throw new Error(`model.json schema is ${JSON.stringify(contract.schema)}, expected "${SCHEMA}"`);
  const input = need(contract, "input", "");
  const channels = need(input, "channels", "input");
  if (!["gray", "rgb"].includes(channels)) throw new Error(`model.json input.channels must be "gray" or "rgb", got ${JSON.stringify(channels)}`);
  const crop = cropConfig(need(contract, "crop", ""));
  if (crop.size !== need(input, "size", "input")) throw new Error(`model.json crop.size ${crop.size} != input.size ${input.size}`);
  const streaming = need(contract, "streaming", "");
  const files = need(contract, "files", "");
  const encoderRole = contract.browser?.encoder ?? "encoder";
  for (const role of [encoderRole, "step"]) need(files, role, "files");
  const classes = need(contract, "classes", "");
  const entry = (role) => ({
    path: need(files[role], "path", `files.${role}`),
    input: Object.keys(need(files[role], "inputs", `files.${role}`))[0],
    outputs: Object.keys(need(files[role], "outputs", `files.${role}`)),
    bytes: files[role].bytes,
  });
  const detectIntervalMs = streaming.detect_interval_ms ?? 0;
  if (!(Number.isFinite(detectIntervalMs) && detectIntervalMs >= 0)) {
    throw new Error(`model.json streaming.detect_interval_ms must be a number >= 0, got ${JSON.stringify(streaming.detect_interval_ms)}`);
  }
  return {
    crop,
    channels,
    classes,
    nFrames: need(streaming, "n_frames", "streaming"),
    // Re-detect at most every this many ms, cropping from the last face in between;
    // 0 (the default, and what utjima/runtime.py does) = detect on every frame.
    detectIntervalMs,
    live: liveConfig(streaming.live), // how the face is found and followed
    frameIntervalMs: need(streaming, "frame_interval_ms", "streaming"),
    featureDim: need(streaming, "feature_dim", "streaming"),
    threshold: need(need(contract, "thresholds", ""), "smile", "thresholds"),
    encoderRole,
    files: {
      detector: { path: crop.detector.file, input: crop.detector.inputName, outputs: crop.detector.outputNames },
      encoder: entry(encoderRole),
      step: entry("step"),
    },
  };
}

const now = () => performance.now();

export function softmax(logits) {
  let mx = -Infinity;
  for (const v of logits) mx = Math.max(mx, v);
  const e = Array.from(logits, (v) => Math.exp(v - mx));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

export class Pipeline {
  /**
   * ort: the onnxruntime-web module; contract: parsed model.json; loadBytes(path) ->
   * Promise<Uint8Array> of a file in the model folder; sessionOptions: e.g.
   * {executionProviders: ["wasm"]}; overrides: values replacing model.json's, for
   * measurements only (e.g. {detectIntervalMs: 100}: Python would no longer match).
   */
  static async create(ort, contract, loadBytes, sessionOptions, overrides = {}) {
    const c = { ...readContract(contract), ...overrides };
    // The batch axis "n" of encoder/step is 1 here: fixing it lets onnxruntime plan static shapes.
    const open = async (path) => ort.InferenceSession.create(await loadBytes(path),
      { ...sessionOptions, freeDimensionOverrides: { n: 1 } });
    const [detector, encoder, step] = await Promise.all([open(c.files.detector.path), open(c.files.encoder.path), open(c.files.step.path)]);
    return new Pipeline(ort, c, { detector, encoder, step });
  }

  constructor(ort, c, sessions) {
    this.c = c;
    this.sessions = sessions;
    const size = c.crop.size;
    const nc = c.channels === "gray" ? 1 : 3;
    this.sampler = new Sampler(c.crop.stepEps);
    this.window = new FeatureWindow(c.nFrames, c.frameIntervalMs);
    this.regions = new RegionDetector(sessions.detector, ort.Tensor, c.crop, c.live);
    this.tracker = new FaceTracker(this.regions, c.live, c.detectIntervalMs);
    // reused buffers: the crop sampler's output (interleaved RGB 0..1) and the network inputs
    this.cropRgb = new Float32Array(size * size * 3);
    this.cropInput = new ort.Tensor("float32", new Float32Array(nc * size * size), [1, nc, size, size]);
    this.windowInput = new ort.Tensor("float32", new Float32Array(c.nFrames * c.featureDim), [1, c.nFrames, c.featureDim]);
  }

  /** Clear the streaming window and the followed face (a new round, calibration). */
  reset() {
    this.window.reset();
    this.tracker.reset();
  }


  /** The face crop as the encoder sees it, written into the encoder's input tensor. */
  crop(img, face) {
    const cfg = this.c.crop;
    const { m, step } = cropTransform(face, cfg);
    this.sampler.warp(img, m, cfg.size, cfg.size, step, null, this.cropRgb);
    const planes = toCropPlanes(this.cropRgb, cfg.size, this.c.channels, cfg.grayWeights, this.cropInput.data);
    brightenCrop(planes, cfg.size, this.c.channels, cfg.grayWeights, this.c.live);
    return planes;
  }

  /** One frame: {data, width, height, channels: 3|4} at time tMs (ms, strictly increasing). */
  async process(img, tMs) {
    const f = this.c.files;
    const t0 = now();
    const face = await this.tracker.update(tMs, img);
    const search = this.tracker.search;
    const detected = search !== "carried";
    const t1 = now();
    if (face === null) {
      this.window.reset(); // model.json streaming.reset: clear the window when the face is gone
      return { t_ms: tMs, face: false, detected, search, box: null, score: null, smile_prob: null, emotion: null,
               ms: { detect: t1 - t0, crop: 0, encode: 0, step: 0, total: t1 - t0 } };
    }
    this.crop(img, face);
    const t2 = now();
    const enc = await this.sessions.encoder.run({ [f.encoder.input]: this.cropInput });
    const feature = enc[f.encoder.outputs[0]].data; // (1, F) -> (F,)
    const t3 = now();
    this.windowInput.data.set(this.window.push(tMs, feature)); // (T, F)
    const out = await this.sessions.step.run({ [f.step.input]: this.windowInput });
    const [smileName, emoName] = f.step.outputs;
    const probs = softmax(out[emoName].data);
    const t4 = now();
    const emotion = {};
    this.c.classes.forEach((name, i) => { emotion[name] = probs[i]; });
    return {
      t_ms: tMs,
      face: true,
      detected,
      search,
      box: face.box,
      score: face.score,
      smile_prob: out[smileName].data[0],
      emotion,
      ms: { detect: t1 - t0, crop: t2 - t1, encode: t3 - t2, step: t4 - t3, total: t4 - t0 },
    };
  }
}
