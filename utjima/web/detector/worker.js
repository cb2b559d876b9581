// The detector's Web Worker: onnxruntime-web and the whole per-frame pipeline run here, so
// the page's main thread only draws. Spoken to by detector.js; messages (page -> worker):
//   {type: "init", id, model, ortBase, threads, backend, timeOrigin, overrides}
//   {type: "process", id, width, height, data: ArrayBuffer RGBA, tMs}  -> result
//   {type: "stream", readable}   a MediaStreamTrackProcessor's ReadableStream<VideoFrame>
//   {type: "bitmap", bitmap}      one frame drawn by the page (no MediaStreamTrackProcessor)
//   {type: "stop"} | {type: "reset"}
// and back: {type: "reply", id, value | error}, {type: "frame", result}, {type: "ready"}
// (the page may send the next bitmap), {type: "error", error}.
// Video frames stay in this worker: only numbers are posted back.

import { fetchBytes, fetchJson, loadOrt, ortFile } from "./ort.js";
import { Pipeline } from "./pipeline.js";

const FPS_WINDOW_MS = 1000; // fps = frames processed over the last second
const AUTO_THREADS_MIN_CORES = 4; // threads: 0 uses 2 WASM threads from this many logical cores
const MAX_CLOCK_SKEW_MS = 1000; // a capture timestamp this far from arrival re-anchors the clock

let pipeline = null;
let pageOrigin = 0; // the page's performance.timeOrigin: worker times -> page clock
let current = null; // the camera being read: {reader, on}
let lastTMs = -Infinity;
const recent = []; // processed frame times (page ms) for fps
let canvas = null, ctx = null; // fallback pixel reader
let rgba = null; // reused RGBA buffer for camera frames
let copyToRgba = true; // VideoFrame.copyTo(..., {format: "RGBA"}) works here

// Frames, explicit process calls and resets share one onnxruntime instance and
// the pipeline's buffers: run them one at a time, in arrival order.
let chain = Promise.resolve();
function serial(fn) {
  const p = chain.then(fn);
  chain = p.catch(() => {});
  return p;
}

const pageNow = () => performance.timeOrigin + performance.now() - pageOrigin;

async function webgpuAdapter() {
  if (!("gpu" in navigator)) return null;
  try {
    return await navigator.gpu.requestAdapter();
  } catch {
    return null;
  }
}

/** Load onnxruntime-web for the backend asked, create the sessions, report what ran. */
async function init({ model, ortBase, threads, backend, timeOrigin, overrides }) {
  pageOrigin = timeOrigin;
  const modelUrl = new URL(model, self.location.href);
  const base = new URL(ortBase, self.location.href).href;
  const contract = await fetchJson(new URL("model.json", modelUrl));
  const isolated = self.crossOriginIsolated === true;
  // auto: a second WASM thread only where a core is left for the page and the call (on 2
  // cores it made frames slower: docs/browser.md)
  const cores = navigator.hardwareConcurrency || 2;
  const nThreads = threads > 0 ? threads : isolated && cores >= AUTO_THREADS_MIN_CORES ? 2 : 1;
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
  const loaded = ortFile(want); // kept after a fallback: the webgpu build runs wasm too
  const ort = await loadOrt(base, want, nThreads);
  const load = (path) => fetchBytes(new URL(path, modelUrl));
  // One execution provider per session: ORT given a list falls back silently, so we try
  // WebGPU alone and fall back ourselves, recording why.
  try {
    pipeline = await Pipeline.create(ort, contract, load, { executionProviders: [want], graphOptimizationLevel: "all" }, overrides);
  } catch (e) {
    if (want !== "webgpu" || backend === "webgpu") throw e;
    note = `webgpu failed (${e.message}); fell back to wasm`;
    want = "wasm";
    pipeline = await Pipeline.create(ort, contract, load, { executionProviders: ["wasm"], graphOptimizationLevel: "all" }, overrides);
  }
  const info = { // what ran
    backend: want,
    threads: want === "wasm" ? nThreads : 0,
    simd: true, // onnxruntime-web >= 1.19 ships SIMD builds only
    crossOriginIsolated: isolated,
    ortFile: loaded,
    encoder: pipeline.c.encoderRole,
    detectIntervalMs: pipeline.c.detectIntervalMs,
    note,
  };
  return { info, contract };
}

function fps(tMs) {
  recent.push(tMs);
  while (recent.length > 2 && recent[0] < tMs - FPS_WINDOW_MS) recent.shift();
  return recent.length > 1 ? ((recent.length - 1) * 1000) / (tMs - recent[0]) : 0;
}

/** A camera frame's time on the page clock, strictly increasing: its capture timestamp
 *  (VideoFrame.timestamp, us) shifted onto the page clock at the first frame, so queueing
 *  adds no jitter; else (ImageBitmap, or timestamps that jump) its arrival time. */
let frameClockOffset = null;
function frameTime(frame) {
  const arrived = pageNow();
  let t = arrived;
  const ts = frame && typeof frame.timestamp === "number" ? frame.timestamp / 1000 : null;
  if (ts !== null) {
    if (frameClockOffset === null || Math.abs(ts + frameClockOffset - arrived) > MAX_CLOCK_SKEW_MS) frameClockOffset = arrived - ts;
    t = ts + frameClockOffset;
  }
  lastTMs = Math.max(t, lastTMs + 1e-3);
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
  stopStream(); // one camera at a time
  recent.length = 0;
  frameClockOffset = null;
  const run = { reader: readable.getReader(), on: true };
  current = run;
  try {
    while (run.on) {
      const { value: frame, done } = await run.reader.read();
      if (done) break;
      if (!run.on) {
        frame.close();
        break;
      }
      await processCamera(frame, frameTime(frame));
    }
  } catch (e) {
    if (run.on) self.postMessage({ type: "error", error: String(e && e.stack ? e.stack : e) });
  } finally {
    run.on = false;
    run.reader.cancel().catch(() => {});
    if (current === run) current = null;
  }
}

function stopStream() {
  if (current === null) return;
  current.on = false;
  current.reader.cancel().catch(() => {});
  current = null;
}

const handlers = {
  init,
  async process({ width, height, data, tMs }) {
    const img = { data: new Uint8ClampedArray(data), width, height, channels: 4 };
    return serial(() => pipeline.process(img, tMs));
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
      await processCamera(msg.bitmap, frameTime(null));
    } catch (e) {
      self.postMessage({ type: "error", error: String(e) });
    }
    self.postMessage({ type: "ready" });
  } else if (msg.type === "stop") {
    stopStream();
  } else if (msg.type === "reset") {
    serial(() => {
      pipeline?.reset();
      recent.length = 0;
    });
  }
};
