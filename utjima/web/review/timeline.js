// The review timeline, drawn on a <canvas>: the manifest's label spans (thin band), the
// reviewed label spans, the model's per-frame smile score with the threshold, the live
// score the browser measured while recording, the selection and the playhead.
// Drawing and hit testing only; review.js owns the state.

export const COLOURS = {
  smile: "#ff4f79", // pink: smiling
  non: "#3ddc97", // mint: not smiling
  unknown: "#c3bad6", // grey-violet: unknown / masked
  ink: "#1b1036",
  muted: "#6b5c8f",
  score: "#1d8fd8",
  live: "#8a7aa8",
  noface: "rgba(27, 16, 54, 0.08)",
  plot: "#ffffff",
  sel: "rgba(255, 210, 63, 0.38)",
  selEdge: "#e0a800",
};

export function labelColour(smile) {
  return smile === 1 ? COLOURS.smile : smile === 0 ? COLOURS.non : COLOURS.unknown;
}

/** Frame i's time span [start, end) in ms (the last frame lasts one median interval). */
export function frameEnd(times, i) {
  if (i + 1 < times.length) return times[i + 1];
  return times[i] + medianStep(times);
}

export function medianStep(times) {
  if (times.length < 2) return 100;
  const d = times.slice(1).map((t, k) => t - times[k]).sort((a, b) => a - b);
  return d[Math.floor(d.length / 2)];
}

/** Where everything goes for a canvas `width` x `height` (CSS px). */
export function layout(width, height) {
  const narrow = width < 560;
  const x0 = narrow ? 6 : 78;
  const x1 = width - (narrow ? 6 : 12);
  return {
    width, height, narrow, x0, x1,
    manifest: [4, 11], // y range of the manifest's band
    labels: [15, 41], // the reviewed labels
    plot: [48, height - 20], // the score curve
    axis: height - 6,
  };
}

function xOf(view, lay, t) {
  const times = view.times_ms;
  const t0 = times[0];
  const t1 = frameEnd(times, times.length - 1);
  return lay.x0 + ((t - t0) / Math.max(t1 - t0, 1)) * (lay.x1 - lay.x0);
}

/** The frame under canvas x (clamped to the clip). */
export function frameAt(view, lay, x) {
  const times = view.times_ms;
  const t0 = times[0];
  const t1 = frameEnd(times, times.length - 1);
  const t = t0 + ((x - lay.x0) / (lay.x1 - lay.x0)) * (t1 - t0);
  let lo = 0;
  let hi = times.length - 1;
  while (lo < hi) { // the last frame starting at or before t
    const mid = (lo + hi + 1) >> 1;
    if (times[mid] <= t) lo = mid; else hi = mid - 1;
  }
  return lo;
}

function bands(ctx, view, lay, spans, [y0, y1], emotionName) {
  for (const s of spans) {
    const a = xOf(view, lay, s.start_ms);
    const b = xOf(view, lay, s.end_ms);
    ctx.fillStyle = labelColour(s.smile);
    ctx.fillRect(a, y0, Math.max(b - a, 1), y1 - y0);
    if (s.smile === null || s.smile === undefined) { // unknown: hatched, so it reads as "no label"
      ctx.save();
      ctx.beginPath();
      ctx.rect(a, y0, b - a, y1 - y0);
      ctx.clip();
      ctx.strokeStyle = "rgba(27, 16, 54, 0.18)";
      ctx.lineWidth = 1;
      for (let x = a - (y1 - y0); x < b; x += 6) {
        ctx.beginPath();
        ctx.moveTo(x, y1);
        ctx.lineTo(x + (y1 - y0), y0);
        ctx.stroke();
      }
      ctx.restore();
    }
    if (emotionName && s.emotion && b - a > 46 && y1 - y0 > 14) {
      ctx.fillStyle = COLOURS.ink;
      ctx.font = "600 11px system-ui, sans-serif";
      ctx.textBaseline = "middle";
      ctx.fillText(emotionName(s.emotion), a + 4, (y0 + y1) / 2, b - a - 6);
    }
  }
  ctx.strokeStyle = "rgba(27, 16, 54, 0.55)";
  ctx.lineWidth = 1;
  for (const s of spans.slice(1)) { // span boundaries
    const a = Math.round(xOf(view, lay, s.start_ms)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(a, y0);
    ctx.lineTo(a, y1);
    ctx.stroke();
  }
}

function curve(ctx, view, lay, values, colour, dash, width) {
  if (!values) return;
  const [y0, y1] = lay.plot;
  const step = medianStep(view.times_ms);
  ctx.save();
  ctx.strokeStyle = colour;
  ctx.lineWidth = width;
  ctx.setLineDash(dash);
  ctx.lineJoin = "round";
  ctx.beginPath();
  let open = false;
  values.forEach((p, i) => {
    if (p === null || p === undefined) { open = false; return; }
    const x = xOf(view, lay, view.times_ms[i] + step / 2);
    const y = y1 - p * (y1 - y0);
    if (open) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    open = true;
  });
  ctx.stroke();
  ctx.restore();
}

function tickEvery(seconds) {
  for (const s of [0.5, 1, 2, 5, 10, 30, 60]) if (seconds / s <= 12) return s;
  return 120;
}

/**
 * Draw `view` (GET /api/clips/{id}) on `canvas`; `st` = {i, sel: {first, last} | null,
 * threshold, rowNames: {manifest, labels, score}, emotionName(name)}.
 */
export function draw(canvas, view, st) {
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * dpr)) canvas.width = Math.round(width * dpr);
  if (canvas.height !== Math.round(height * dpr)) canvas.height = Math.round(height * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const lay = layout(width, height);
  if (!view || !view.times_ms.length) return lay;
  const [py0, py1] = lay.plot;
  // row names
  if (!lay.narrow) {
    ctx.fillStyle = COLOURS.muted;
    ctx.font = "600 11px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    ctx.fillText(st.rowNames.manifest, 4, (lay.manifest[0] + lay.manifest[1]) / 2, lay.x0 - 8);
    ctx.fillText(st.rowNames.labels, 4, (lay.labels[0] + lay.labels[1]) / 2, lay.x0 - 8);
    ctx.fillText(st.rowNames.score, 4, (py0 + py1) / 2, lay.x0 - 8);
    ctx.fillText("1", lay.x0 - 12, py0 + 4);
    ctx.fillText("0", lay.x0 - 12, py1 - 4);
  }
  // the plot: white, frames without a face shaded
  ctx.fillStyle = COLOURS.plot;
  ctx.fillRect(lay.x0, py0, lay.x1 - lay.x0, py1 - py0);
  const scores = view.scores;
  if (scores) {
    ctx.fillStyle = COLOURS.noface;
    scores.forEach((p, i) => {
      if (p !== null) return;
      const a = xOf(view, lay, view.times_ms[i]);
      const b = xOf(view, lay, frameEnd(view.times_ms, i));
      ctx.fillRect(a, py0, b - a + 0.5, py1 - py0);
    });
  }
  ctx.strokeStyle = "rgba(27, 16, 54, 0.35)";
  ctx.lineWidth = 1;
  ctx.strokeRect(lay.x0 + 0.5, py0 + 0.5, lay.x1 - lay.x0 - 1, py1 - py0 - 1);
  // threshold
  const ty = Math.round(py1 - st.threshold * (py1 - py0)) + 0.5;
  ctx.save();
  ctx.setLineDash([6, 4]);
  ctx.strokeStyle = COLOURS.ink;
  ctx.beginPath();
  ctx.moveTo(lay.x0, ty);
  ctx.lineTo(lay.x1, ty);
  ctx.stroke();
  ctx.restore();
  // label bands
  bands(ctx, view, lay, view.manifest_spans, lay.manifest, null);
  bands(ctx, view, lay, view.spans, lay.labels, st.emotionName);
  // curves: the live browser score (dashed), the model's score
  curve(ctx, view, lay, view.live, COLOURS.live, [3, 3], 1.5);
  curve(ctx, view, lay, scores, COLOURS.score, [], 2.25);
  // time axis
  const times = view.times_ms;
  const t0 = times[0];
  const total = (frameEnd(times, times.length - 1) - t0) / 1000;
  const every = tickEvery(total);
  ctx.fillStyle = COLOURS.muted;
  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "alphabetic";
  for (let s = 0; s <= total + 1e-9; s += every) {
    const x = xOf(view, lay, t0 + s * 1000);
    ctx.fillRect(Math.round(x), py1, 1, 4);
    const text = `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
    ctx.fillText(text, Math.min(x + 2, lay.x1 - ctx.measureText(text).width), lay.axis);
  }
  // selection
  if (st.sel) {
    const a = xOf(view, lay, times[st.sel.first]);
    const b = xOf(view, lay, frameEnd(times, st.sel.last));
    ctx.fillStyle = COLOURS.sel;
    ctx.fillRect(a, lay.labels[0] - 2, b - a, py1 - lay.labels[0] + 2);
    ctx.strokeStyle = COLOURS.selEdge;
    ctx.lineWidth = 2;
    ctx.strokeRect(a + 1, lay.labels[0] - 2, Math.max(b - a - 2, 1), py1 - lay.labels[0] + 2);
  }
  // playhead
  const x = Math.round(xOf(view, lay, times[st.i])) + 0.5;
  ctx.strokeStyle = COLOURS.ink;
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(x, lay.manifest[0]);
  ctx.lineTo(x, py1);
  ctx.stroke();
  ctx.fillStyle = COLOURS.ink;
  ctx.beginPath();
  ctx.moveTo(x - 5, 0);
  ctx.lineTo(x + 5, 0);
  ctx.lineTo(x, 6);
  ctx.fill();
  return lay;
}
