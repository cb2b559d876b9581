// Laugh replay: each player's browser keeps the last few seconds of its own camera in
// memory (small JPEG frames, a ring); when the server's verdict says this player laughed,
// the page sends the frames around the laugh to the other browsers over the WebRTC data
// channels (rtc.js), and their verdict screen plays them. The server never sees a byte of
// it. Frames are taken only while a laugh can be called or replayed (countdown, round,
// verdict) and dropped when a match starts or ends in the lobby. A player can turn it off
// (remembered); then nothing is recorded at all.
//
// Wire format on the "replay" data channel: a JSON header {type: "clip", id, n, fps, round},
// then n binary messages (one JPEG each, well under the 16 KiB every browser accepts), then
// {type: "clip_end", id}.

const FPS = 10;
const KEEP_MS = 6000; // the ring holds this much
const WIDTH = 192; // px; the height follows the camera's aspect ratio
const QUALITY = 0.6;
const MAX_FRAME_BYTES = 16000;
const BEFORE_MS = 2000; // the clip: this long before the laugh started ...
const AFTER_MS = 1500; // ... to this long after
const KEY = "utjima:replay";
const RECORDING_PHASES = new Set(["countdown", "round", "verdict"]);

export const replayPrefs = {
  get on() { return localStorage.getItem(KEY) !== "off"; },
  set on(v) { localStorage.setItem(KEY, v ? "on" : "off"); },
};

// What was sent and received, for the browser tests (sizes only).
export const log = { sent: [], received: [] };
globalThis.utjimaReplay = log;

/** The ring of recent frames of one camera stream. */
export class ClipRecorder {
  constructor(stream) {
    this.video = document.createElement("video");
    this.video.muted = true;
    this.video.playsInline = true;
    this.video.srcObject = stream;
    this.video.play().catch(() => {});
    this.canvas = document.createElement("canvas");
    this.frames = []; // {t_ms, blob}, oldest first
    this.busy = false;
    this.active = false; // grab frames only while a laugh can be called (room.js sets it)
    this.timer = setInterval(() => this._grab(), 1000 / FPS);
  }

  async _grab() {
    const v = this.video;
    if (!this.active || this.busy || v.readyState < 2 || !v.videoWidth) return;
    this.busy = true;
    try {
      const t = performance.now(); // the detector's clock (its results' t_ms)
      this.canvas.width = WIDTH;
      this.canvas.height = Math.round(WIDTH * v.videoHeight / v.videoWidth);
      this.canvas.getContext("2d").drawImage(v, 0, 0, this.canvas.width, this.canvas.height);
      const blob = await new Promise((ok) => this.canvas.toBlob(ok, "image/jpeg", QUALITY));
      if (blob && blob.size <= MAX_FRAME_BYTES) this.frames.push({ t_ms: t, blob });
      while (this.frames.length && this.frames[0].t_ms < t - KEEP_MS) this.frames.shift();
    } finally {
      this.busy = false;
    }
  }

  /** Frames around a laugh that started at page time `startMs` (null: the last 3.5 s). */
  around(startMs) {
    const now = performance.now();
    const from = startMs === null ? now - BEFORE_MS - AFTER_MS : startMs - BEFORE_MS;
    const to = startMs === null ? now : startMs + AFTER_MS;
    return this.frames.filter((f) => f.t_ms >= from && f.t_ms <= to);
  }

  /** How long to wait before the clip around `startMs` is complete, ms. */
  static waitFor(startMs) {
    return startMs === null ? 0 : Math.max(0, startMs + AFTER_MS - performance.now());
  }

  /** Follow the room's phase: record during countdown, round and verdict; forget in the lobby. */
  follow(phase) {
    this.active = RECORDING_PHASES.has(phase);
    if (phase === "lobby" || phase === "calibrating") this.frames = [];
  }

  stop() {
    clearInterval(this.timer);
    this.video.srcObject = null;
    this.frames = [];
  }
}

/** Send frames to every peer over the mesh's data channels; resolves to what went out. */
export async function sendClip(mesh, frames, round) {
  const id = Math.random().toString(36).slice(2, 10);
  const to = mesh.broadcast(JSON.stringify({ type: "clip", id, n: frames.length, fps: FPS, round }));
  let bytes = 0;
  for (const f of frames) {
    const buf = await f.blob.arrayBuffer();
    while (mesh.buffered > 256 * 1024) await new Promise((ok) => setTimeout(ok, 20));
    mesh.broadcast(buf);
    bytes += buf.byteLength;
  }
  mesh.broadcast(JSON.stringify({ type: "clip_end", id }));
  const sent = { id, round, n: frames.length, bytes, to };
  log.sent.push(sent);
  return sent;
}

/** Reassembles clips from data channel messages; `onclip({from, round, frames, bytes})`. */
export class ClipReceiver {
  constructor(onclip) {
    this.onclip = onclip;
    this.open = new Map(); // peer id -> clip being received
  }

  ondata(from, data) {
    if (typeof data !== "string") {
      const clip = this.open.get(from);
      if (clip && clip.frames.length < clip.n) {
        clip.frames.push(new Blob([data], { type: "image/jpeg" }));
        clip.bytes += data.byteLength;
      }
      return;
    }
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    if (msg.type === "clip" && Number.isInteger(msg.n) && msg.n >= 0 && msg.n <= 200) {
      this.open.set(from, { id: msg.id, n: msg.n, fps: msg.fps || FPS, round: msg.round, frames: [], bytes: 0 });
    } else if (msg.type === "clip_end") {
      const clip = this.open.get(from);
      this.open.delete(from);
      if (!clip || clip.id !== msg.id) return;
      log.received.push({ from, round: clip.round, n: clip.frames.length, bytes: clip.bytes });
      this.onclip({ from, ...clip });
    }
  }
}

/** Plays a clip on a canvas, looping, until stopped. */
export class ClipPlayer {
  constructor(canvas) {
    this.canvas = canvas;
    this.timer = null;
  }

  async play(clip) {
    this.stop();
    const images = [];
    for (const b of clip.frames) {
      try { images.push(await createImageBitmap(b)); } catch { /* a broken frame: skip it */ }
    }
    if (!images.length) return;
    this.canvas.width = images[0].width;
    this.canvas.height = images[0].height;
    const g = this.canvas.getContext("2d");
    const hold = 5; // frames the last image stays before the clip starts again
    let i = 0;
    this.canvas.dataset.frames = String(images.length);
    this.timer = setInterval(() => {
      g.drawImage(images[Math.min(i, images.length - 1)], 0, 0);
      this.canvas.dataset.shown = String(Number(this.canvas.dataset.shown || 0) + 1);
      i = (i + 1) % (images.length + hold);
    }, 1000 / (clip.fps || FPS));
  }

  /** Follow the room's phase: record during countdown, round and verdict; forget in the lobby. */
  follow(phase) {
    this.active = RECORDING_PHASES.has(phase);
    if (phase === "lobby" || phase === "calibrating") this.frames = [];
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }
}
