// Frames from the playing camera <video>, at the protocol's rate: every grabbed frame gets
// a time (the camera's capture time on the page's performance.now() clock when the
// browser gives one, else the callback's), a grey-thumbnail measurement (quality.js),
// and, while `keep` is on, a JPEG Blob of the whole frame scaled to `longSide`.
// Nothing leaves the page here: the Blobs stay in memory until the participant chooses.

import { THUMB_H, THUMB_W, thumbStats } from "./quality.js";

export class FrameGrabber {
  constructor(video, { fps, longSide, jpegQuality }) {
    this.video = video;
    this.intervalMs = 1000 / fps;
    this.longSide = longSide;
    this.jpegQuality = jpegQuality;
    this.keep = false; // encode and hand out JPEGs (recording), or only measure
    this.onframe = null; // ({t, luma, motion, blob: Promise<Blob> | null}) => void
    this.canvas = document.createElement("canvas");
    this.ctx = this.canvas.getContext("2d");
    const thumb = document.createElement("canvas");
    thumb.width = THUMB_W;
    thumb.height = THUMB_H;
    this.thumb = thumb.getContext("2d", { willReadFrequently: true });
    this.prevGrey = null;
    this.nextT = -Infinity;
    this.running = false;
    this.pending = new Set(); // JPEG encodings not finished yet
  }

  /** The frame size the JPEGs have (the camera's, scaled down to longSide). */
  size() {
    const w = this.video.videoWidth, h = this.video.videoHeight;
    const s = Math.min(1, this.longSide / Math.max(w, h));
    return [Math.round(w * s), Math.round(h * s)];
  }

  start() {
    if (this.running) return;
    this.running = true;
    const v = this.video;
    const onFrame = (now, meta) => {
      if (!this.running) return;
      if (v.videoWidth > 0) this._maybeGrab(meta?.captureTime ?? now);
      schedule();
    };
    const schedule = () => {
      if (v.requestVideoFrameCallback) v.requestVideoFrameCallback(onFrame);
      else setTimeout(() => onFrame(performance.now(), null), this.intervalMs / 3);
    };
    schedule();
  }

  stop() {
    this.running = false;
  }

  /** Resolves when every JPEG handed out so far is encoded. */
  async settled() {
    await Promise.all([...this.pending]);
  }

  _maybeGrab(t) {
    // on a grid of intervalMs; after a stall, start again from now (no bursts)
    if (t < this.nextT - 5) return;
    this.nextT = Math.max(this.nextT + this.intervalMs, t + this.intervalMs / 2);
    this.thumb.drawImage(this.video, 0, 0, THUMB_W, THUMB_H);
    const stats = thumbStats(this.thumb.getImageData(0, 0, THUMB_W, THUMB_H).data, this.prevGrey);
    this.prevGrey = stats.grey;
    let blob = null;
    if (this.keep) {
      const [w, h] = this.size();
      if (this.canvas.width !== w || this.canvas.height !== h) {
        this.canvas.width = w;
        this.canvas.height = h;
      }
      this.ctx.drawImage(this.video, 0, 0, w, h);
      // toBlob copies the canvas now and encodes off the main thread
      blob = new Promise((resolve, reject) => this.canvas.toBlob(
        (b) => (b ? resolve(b) : reject(new Error("JPEG encoding failed"))), "image/jpeg", this.jpegQuality));
      this.pending.add(blob);
      blob.finally(() => this.pending.delete(blob)).catch(() => {});
    }
    this.onframe?.({ t, luma: stats.luma, motion: stats.motion, blob });
  }
}
