// The browser smile detector: `createDetector(options)` -> a Detector that reads the camera
// and emits {t_ms, face, box, smile_prob, emotion, ms, fps} at camera rate. The interface is
// docs/detector_api.md; the design and measurements are docs/browser.md.
//
// Everything heavy runs in a Web Worker (worker.js): onnxruntime-web (WASM, threads
// when the page is cross-origin isolated; WebGPU when an adapter exists), face detection,
// the crop, the encoder and the streaming step. Camera frames go to the worker as a
// MediaStreamTrackProcessor stream when the browser has one (the main thread never touches
// a frame), else as ImageBitmaps drawn from a <video>, one in flight at a time. Video never
// leaves the page: only numbers come back.

const DEFAULTS = {
  model: "/models/default/", // folder URL holding model.json and the ONNX files it lists
  ortBase: "/vendor/ort/", // onnxruntime-web's dist/, served by our server
  threads: 0, // 0 = auto: 2 when crossOriginIsolated on 4+ logical cores, else 1
  backend: "auto", // "auto" | "wasm" | "webgpu"
  // Measurements only: re-detect every this many ms instead of model.json's choice (outputs
  // then differ from Python's). null = model.json streaming.detect_interval_ms, else 0.
  detectIntervalMs: null,
};
const BACKENDS = ["auto", "wasm", "webgpu"];

class Detector {
  constructor(options) {
    const unknown = Object.keys(options).filter((k) => !(k in DEFAULTS));
    if (unknown.length) throw new Error(`createDetector: unknown options ${unknown}; valid: ${Object.keys(DEFAULTS)}`);
    this.options = { ...DEFAULTS, ...options };
    if (!BACKENDS.includes(this.options.backend)) {
      throw new Error(`createDetector: backend must be one of ${BACKENDS}, got ${JSON.stringify(this.options.backend)}`);
    }
    if (!(Number.isInteger(this.options.threads) && this.options.threads >= 0)) {
      throw new Error(`createDetector: threads must be an integer >= 0, got ${this.options.threads}`);
    }
    const di = this.options.detectIntervalMs;
    if (di !== null && !(Number.isFinite(di) && di >= 0)) {
      throw new Error(`createDetector: detectIntervalMs must be null or a number >= 0, got ${di}`);
    }
    this.onresult = null; // (result) => void, at camera rate
    this.onerror = (e) => console.error("utjima detector:", e);
    this.backend = null; // "wasm" | "webgpu": the execution provider the sessions were created with
    this.threads = 0; // WASM threads in use (0 on WebGPU)
    this.contract = null; // the parsed model.json
    this.info = null; // {backend, threads, simd, crossOriginIsolated, ortFile, encoder, note}
    this.last = null; // the latest result
    this._worker = null;
    this._pending = new Map();
    this._nextId = 1;
    this._stopCamera = null;
    this._bitmapReady = null;
    this.frameSource = null;
  }

  async _init() {
    const w = new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "utjima-detector" });
    this._worker = w;
    w.onmessage = (ev) => this._onMessage(ev.data);
    w.onerror = (ev) => {
      const err = new Error(`detector worker failed: ${ev.message || "could not load worker.js"}`);
      for (const { reject } of this._pending.values()) reject(err);
      this._pending.clear();
      this.onerror?.(err);
    };
    const o = this.options;
    const { info, contract } = await this._call("init", {
      model: new URL(o.model, location.href).href,
      ortBase: new URL(o.ortBase, location.href).href,
      threads: o.threads,
      backend: o.backend,
      timeOrigin: performance.timeOrigin,
      overrides: o.detectIntervalMs === null ? {} : { detectIntervalMs: o.detectIntervalMs },
    });
    this.info = info;
    this.backend = info.backend;
    this.threads = info.threads;
    this.contract = contract;
    return this;
  }

  _call(type, msg = {}, transfer = []) {
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      this._pending.set(id, { resolve, reject });
      this._worker.postMessage({ type, id, ...msg }, transfer);
    });
  }

  _onMessage(msg) {
    if (msg.type === "reply") {
      const p = this._pending.get(msg.id);
      this._pending.delete(msg.id);
      if (msg.error !== undefined) p?.reject(new Error(msg.error));
      else p?.resolve(msg.value);
    } else if (msg.type === "frame") {
      this.last = msg.result;
      this.onresult?.(msg.result);
    } else if (msg.type === "ready") {
      this._bitmapReady?.();
    } else if (msg.type === "error") {
      this.onerror?.(new Error(msg.error));
    }
  }

  /** Process the stream's video track at camera rate until stop(); results go to onresult. */
  async start(mediaStream) {
    this.stop();
    const track = mediaStream.getVideoTracks()[0];
    if (!track) throw new Error("detector.start: the stream has no video track");
    if (typeof MediaStreamTrackProcessor === "function") {
      // Chromium: frames flow straight into the worker; a small buffer keeps them fresh.
      const processor = new MediaStreamTrackProcessor({ track, maxBufferSize: 2 });
      this._worker.postMessage({ type: "stream", readable: processor.readable }, [processor.readable]);
      this._stopCamera = () => this._worker.postMessage({ type: "stop" });
      this.frameSource = "MediaStreamTrackProcessor";
      return;
    }
    // Elsewhere: draw the playing <video> into an ImageBitmap per new frame, one in flight.
    const video = document.createElement("video");
    video.muted = true;
    video.playsInline = true;
    video.srcObject = mediaStream;
    await video.play();
    let running = true, busy = false;
    this._bitmapReady = () => { busy = false; };
    const onFrame = async () => {
      if (!running) return;
      if (!busy && video.videoWidth > 0) {
        busy = true;
        try {
          const bitmap = await createImageBitmap(video);
          this._worker.postMessage({ type: "bitmap", bitmap }, [bitmap]);
        } catch (e) {
          busy = false;
          this.onerror?.(e);
        }
      }
      schedule();
    };
    const schedule = () => {
      if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
      else setTimeout(onFrame, 1000 / 60);
    };
    schedule();
    this._stopCamera = () => {
      running = false;
      video.srcObject = null;
    };
    this.frameSource = "ImageBitmap";
  }

  stop() {
    this._stopCamera?.();
    this._stopCamera = null;
  }

  /** Clear the streaming window (new round, calibration). */
  reset() {
    this._worker.postMessage({ type: "reset" });
  }

  /** One frame (ImageData, or {data: RGBA bytes, width, height}) at time tMs; resolves to a result.
   *  For tests and parity: tMs must increase like camera frames do. */
  async processFrame(imageData, tMs) {
    const { width, height } = imageData;
    const data = new Uint8ClampedArray(imageData.data); // a copy: the caller keeps its pixels
    if (data.length !== width * height * 4) throw new Error(`processFrame: expected ${width}x${height} RGBA (${width * height * 4} bytes), got ${data.length}`);
    return this._call("process", { width, height, data: data.buffer, tMs }, [data.buffer]);
  }

  dispose() {
    this.stop();
    this._worker?.terminate();
    this._worker = null;
    for (const { reject } of this._pending.values()) reject(new Error("detector disposed"));
    this._pending.clear();
  }
}

/** Create a detector: loads model.json, onnxruntime-web and the sessions in a worker. */
export async function createDetector(options = {}) {
  return new Detector(options)._init();
}
