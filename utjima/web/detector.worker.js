// The detector's Web Worker: onnxruntime-web and the whole per-frame pipeline run here, so
// the page's main thread only draws. Spoken to by detector.js; messages (page -> worker):
//   {type: "init", id, model, ortBase, threads, backend, timeOrigin}
//   {type: "process", id, width, height, data: ArrayBuffer RGBA, tMs}  -> result
//   {type: "stream", readable}   a MediaStreamTrackProcessor's ReadableStream<VideoFrame>
//   {type: "bitmap", bitmap, tMs} one frame drawn by the page (no MediaStreamTrackProcessor)
//   {type: "stop"} | {type: "reset"} | {type: "bench", id, role, n, warmup}
// and back: {type: "reply", id, value | error}, {type: "frame", result}, {type: "ready"}
// (the page may send the next bitmap), {type: "error", error}.
// Video frames stay in this worker: only numbers are posted back.

import { Pipeline } from "./detector/pipeline.js";

const FPS_WINDOW_MS = 1000; // fps = frames processed over the last second

let ort = null;
let pipeline = null;
let info = null; // {backend, threads, simd, crossOriginIsolated, ortFile, note}
let modelUrl = null;
let pageOrigin = 0; // the page's performance.timeOrigin: worker times -> page clock
let streaming = false;
let reader = null;
let lastTMs = -Infinity;
const recent = []; // processed frame times (page ms) for fps
let canvas = null, ctx = null; // fallback pixel reader
let rgba = null; // reused RGBA buffer for camera frames
let copyToRgba = true; // VideoFrame.copyTo(..., {format: "RGBA"}) works here

// Frames, explicit process calls, resets and benchmarks share one onnxruntime instance and
// the pipeline's buffers: run them one at a time, in arrival order.
let chain = Promise.resolve();
function serial(fn) {
  const p = chain.then(fn);
  chain = p.catch(() => {});
  return p;
}

const pageNow = () => performance.timeOrigin + performance.now() - pageOrigin;

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function webgpuAdapter() {
  if (!("gpu" in navigator)) return null;
  try {
    return await navigator.gpu.requestAdapter();
  } catch {
    return null;
  }
}

/** Load onnxruntime-web for the backend asked, create the sessions, report what ran. */
async function init({ model, ortBase, threads, backend, timeOrigin }) {
  pageOrigin = timeOrigin;
  modelUrl = new URL(model, self.location.href);
  const base = new URL(ortBase, self.location.href).href;
  const contract = await (await fetch(new URL("model.json", modelUrl))).json();
  const isolated = self.crossOriginIsolated === true;
  const nThreads = threads > 0 ? threads : isolated ? 2 : 1;
  if (nThreads > 1 && !isolated) throw new Error(`threads=${nThreads} needs a cross-origin isolated page (COOP/COEP headers)`);
  let want = backend;
  let note = "";
  if (want === "auto" || want === "webgpu") {
    const adapter = await webgpuAdapter();
    if (adapter) want = "webgpu";
    else {
      note = "no WebGPU adapter";
      if (want === "webgpu") throw new Error("backend=webgpu asked but navigator.gpu.requestAdapter() gave no adapter");
      want = "wasm";
    }
  }
  const ortFile = want === "webgpu" ? "ort.webgpu.min.mjs" : "ort.wasm.min.mjs";
  ort = await import(base + ortFile);
  ort.env.wasm.wasmPaths = base;
  ort.env.wasm.numThreads = nThreads;
  ort.env.wasm.proxy = false; // we are the worker already
  ort.env.logLevel = "error";
  const load = (path) => fetchBytes(new URL(path, modelUrl));
  // One execution provider per session: ORT given a list falls back silently, so we try
  // WebGPU alone and fall back ourselves, recording why.
  try {
    pipeline = await Pipeline.create(ort, contract, load, { executionProviders: [want], graphOptimizationLevel: "all" });
  } catch (e) {
    if (want !== "webgpu" || backend === "webgpu") throw e;
    note = `webgpu failed (${e.message}); fell back to wasm`;
    want = "wasm";
    pipeline = await Pipeline.create(ort, contract, load, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  }
  info = {
    backend: want,
    threads: want === "wasm" ? nThreads : 0,
    simd: true, // onnxruntime-web >= 1.19 ships SIMD builds only
    crossOriginIsolated: isolated,
    ortFile,
    encoder: pipeline.c.encoderRole,
    note,
  };
  return { info, contract };
}

function fps(tMs) {
  recent.push(tMs);
  while (recent.length > 2 && recent[0] < tMs - FPS_WINDOW_MS) recent.shift();
  return recent.length > 1 ? ((recent.length - 1) * 1000) / (tMs - recent[0]) : 0;
}

/** Strictly increasing page-clock time for a camera frame that arrived now. */
function frameTime() {
  lastTMs = Math.max(pageNow(), lastTMs + 1e-3);
  return lastTMs;
}

/** RGBA pixels of a VideoFrame or ImageBitmap, into a reused buffer. */
async function pixels(source) {
  const isFrame = typeof VideoFrame !== "undefined" && source instanceof VideoFrame;
  const w = isFrame ? source.displayWidth : source.width;
  const h = isFrame ? source.displayHeight : source.height;
  if (rgba === null || rgba.length !== w * h * 4) rgba = new Uint8ClampedArray(w * h * 4);
  if (isFrame && copyToRgba) {
    try {
      await source.copyTo(rgba, { format: "RGBA", rect: source.visibleRect, layout: [{ offset: 0, stride: w * 4 }] });
      return { data: rgba, width: w, height: h, channels: 4 };
    } catch {
      copyToRgba = false; // this browser cannot convert: draw through a canvas from now on
    }
  }
  if (canvas === null || canvas.width !== w || canvas.height !== h) {
    canvas = new OffscreenCanvas(w, h);
    ctx = canvas.getContext("2d", { willReadFrequently: true });
  }
  ctx.drawImage(source, 0, 0, w, h);
  return { data: ctx.getImageData(0, 0, w, h).data, width: w, height: h, channels: 4 };
}

async function processCamera(source, tMs) {
  const t0 = performance.now();
  let img;
  try {
    img = await pixels(source);
  } finally {
    source.close();
  }
  const grabMs = performance.now() - t0;
  const result = await serial(() => pipeline.process(img, tMs));
  result.ms.grab = grabMs;
  result.fps = fps(tMs);
  self.postMessage({ type: "frame", result });
}

async function runStream(readable) {
  streaming = true;
  reader = readable.getReader();
  try {
    while (streaming) {
      const { value: frame, done } = await reader.read();
      if (done) break;
      if (!streaming) {
        frame.close();
        break;
      }
      await processCamera(frame, frameTime());
    }
  } catch (e) {
    self.postMessage({ type: "error", error: String(e && e.stack ? e.stack : e) });
  } finally {
    streaming = false;
    reader.cancel().catch(() => {});
    reader = null;
  }
}

// --- benchmarks: one model file alone, on zeros of its declared input shape -------------
const benchSessions = {};
async function bench({ role, n, warmup, options }) {
  const contract = await (await fetch(new URL("model.json", modelUrl))).json();
  const entry = contract.files[role];
  if (!entry) throw new Error(`model.json has no file role ${JSON.stringify(role)}; it lists ${Object.keys(contract.files)}`);
  const key = role + JSON.stringify(options || {});
  if (!benchSessions[key]) {
    benchSessions[key] = await ort.InferenceSession.create(await fetchBytes(new URL(entry.path, modelUrl)),
      { executionProviders: [info.backend], graphOptimizationLevel: "all", ...options });
  }
  const sess = benchSessions[key];
  let feeds = {};
  if (entry.inputs) {
    for (const [name, shape] of Object.entries(entry.inputs)) {
      const dims = shape.map((d) => (typeof d === "number" ? d : 1)); // "n" -> batch of 1
      const size = dims.reduce((a, b) => a * b, 1);
      feeds[name] = new ort.Tensor("float32", new Float32Array(size).fill(0.5), dims);
    }
  } else {
    const n = contract.crop.detectors[contract.crop.detector].input_size;
    feeds = { [sess.inputNames[0]]: new ort.Tensor("float32", new Float32Array(3 * n * n), [1, 3, n, n]) };
  }
  const times = [];
  for (let i = 0; i < warmup + n; i++) {
    const t0 = performance.now();
    await sess.run(feeds);
    if (i >= warmup) times.push(performance.now() - t0);
  }
  return { role, times };
}

const handlers = {
  init,
  async process({ width, height, data, tMs }) {
    const img = { data: new Uint8ClampedArray(data), width, height, channels: 4 };
    return serial(() => pipeline.process(img, tMs));
  },
  async bench(msg) {
    return serial(() => bench(msg));
  },
};

self.onmessage = async (ev) => {
  const msg = ev.data;
  if (msg.type in handlers) {
    try {
      const value = await handlers[msg.type](msg);
      self.postMessage({ type: "reply", id: msg.id, value });
    } catch (e) {
      self.postMessage({ type: "reply", id: msg.id, error: String(e && e.message ? e.message : e) });
    }
  } else if (msg.type === "stream") {
    runStream(msg.readable);
  } else if (msg.type === "bitmap") {
    try {
      await processCamera(msg.bitmap, frameTime());
    } catch (e) {
      self.postMessage({ type: "error", error: String(e) });
    }
    self.postMessage({ type: "ready" });
  } else if (msg.type === "stop") {
    streaming = false;
    if (reader) reader.cancel().catch(() => {});
  } else if (msg.type === "reset") {
    serial(() => {
      pipeline?.reset();
      recent.length = 0;
    });
  }
};
