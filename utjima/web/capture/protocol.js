// The filming protocol (protocol.json) and the clip-format manifest a session becomes.
// Pure: no DOM, no clock, so node tests run it (tests/js/capture.test.mjs).
//
// One prompt = one clip. A prompt shows for ready_ms (not recorded), then records for
// duration_ms; the clip's time 0 is the moment recording starts. Its one label segment is
// [margin_start_ms, duration_ms - margin_end_ms): the participant's reaction time after the
// prompt change, and the end, stay unlabelled (masked), never guessed.

export const FORMAT = "utjima.clips/1"; // docs/clip_format.md
export const CAPTURE = "utjima.capture/1"; // this protocol and the fields the page adds
export const CONSENT = "capture-consent/1"; // the consent text's version (strings.js)
// The emotion names of utjima.EMOTIONS (a Python test checks they agree).
export const EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
export const ID_RE = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/; // participant and session ids
const PROMPT_RE = /^[a-z][a-z0-9_]{0,31}$/;
export const MIN_SCALE = 0.05; // ?scale= shortens every time for tests; never below this

function fail(msg) {
  throw new Error(`protocol.json: ${msg}`);
}

function bitOrNull(v, where) {
  if (v !== null && v !== 0 && v !== 1) fail(`${where} must be 0, 1 or null, got ${JSON.stringify(v)}`);
  return v;
}

function num(v, where, min = 0) {
  if (typeof v !== "number" || !Number.isFinite(v) || v < min) fail(`${where} must be a number >= ${min}, got ${JSON.stringify(v)}`);
  return v;
}

/** The protocol, checked, with every time multiplied by `scale` (1 = the real protocol). */
export function readProtocol(doc, { scale = 1 } = {}) {
  if (doc?.format !== CAPTURE) fail(`format must be "${CAPTURE}", got ${JSON.stringify(doc?.format)}`);
  if (!(Number.isFinite(scale) && scale >= MIN_SCALE && scale <= 1)) {
    throw new Error(`scale must be in ${MIN_SCALE}..1, got ${scale}`);
  }
  const ms = (v, where) => Math.round(num(v, where) * scale);
  const q = doc.quality ?? {};
  const p = {
    id: String(doc.id),
    version: num(doc.version, "version", 1),
    scale,
    fps: num(doc.fps, "fps", 1),
    frameLongSide: num(doc.frame_long_side, "frame_long_side", 64),
    jpegQuality: num(doc.jpeg_quality, "jpeg_quality"),
    readyMs: ms(doc.ready_ms, "ready_ms"),
    marginStartMs: ms(doc.margin_start_ms, "margin_start_ms"),
    marginEndMs: ms(doc.margin_end_ms, "margin_end_ms"),
    quality: {
      windowMs: num(q.window_ms, "quality.window_ms", 100),
      noFaceMs: num(q.no_face_ms, "quality.no_face_ms"),
      minLuma: num(q.min_luma, "quality.min_luma"),
      minFaceFrac: num(q.min_face_frac, "quality.min_face_frac"),
      maxMotion: num(q.max_motion, "quality.max_motion"),
    },
    prompts: [],
  };
  const seen = new Set();
  for (const [i, e] of (doc.prompts ?? []).entries()) {
    const where = `prompts[${i}]`;
    if (!PROMPT_RE.test(e.id ?? "")) fail(`${where}.id must match ${PROMPT_RE}, got ${JSON.stringify(e.id)}`);
    if (seen.has(e.id)) fail(`${where}.id ${e.id} is used twice`);
    seen.add(e.id);
    if (e.emotion !== null && !EMOTIONS.includes(e.emotion)) fail(`${where}.emotion must be one of ${EMOTIONS} or null`);
    const durationMs = ms(e.duration_ms, `${where}.duration_ms`);
    if (durationMs - p.marginStartMs - p.marginEndMs < 100 * scale) fail(`${where}: duration_ms leaves no labelled time after the margins`);
    for (const k of ["title", "text"]) if (!e[k]?.en || !e[k]?.ko) fail(`${where}.${k} needs "en" and "ko"`);
    p.prompts.push({
      id: e.id,
      index: i,
      kind: e.kind,
      durationMs,
      smile: bitOrNull(e.smile, `${where}.smile`),
      emotion: e.emotion,
      face: bitOrNull(e.face, `${where}.face`),
      clipSmile: bitOrNull(e.clip_smile, `${where}.clip_smile`),
      motionOk: Boolean(e.motion_ok),
      title: e.title,
      text: e.text,
      say: e.say ?? null,
    });
  }
  if (!p.prompts.length) fail("prompts is empty");
  return p;
}

/** Total running time (ready + recording) of the protocol, ms. */
export function totalMs(protocol) {
  return protocol.prompts.reduce((s, pr) => s + protocol.readyMs + pr.durationMs, 0);
}

/** The prompt's one labelled span, in the clip's time (0 = recording started). */
export function segmentFor(prompt, protocol) {
  return {
    start_ms: protocol.marginStartMs,
    end_ms: prompt.durationMs - protocol.marginEndMs,
    smile: prompt.smile,
    emotion: prompt.emotion,
    face: prompt.face,
    prompt: prompt.id,
  };
}

export function clipId(participant, session, prompt) {
  return `${participant}-${session}-${String(prompt.index + 1).padStart(2, "0")}-${prompt.id}`;
}

/** A random id: `prefix` + `n` characters of [a-z0-9] from `random` (0..1). */
export function randomId(prefix, n, random = Math.random) {
  const abc = "abcdefghijkmnpqrstuvwxyz23456789"; // no 0/o, 1/l: ids get read aloud
  let s = prefix;
  for (let i = 0; i < n; i++) s += abc[Math.floor(random() * abc.length)];
  return s;
}

/** A session id that sorts by time: s<yyyymmdd>-<hhmm>-<4 random>. */
export function sessionId(date, random = Math.random) {
  const p = (v) => String(v).padStart(2, "0");
  const d = `${date.getUTCFullYear()}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}`;
  return randomId(`s${d}-${p(date.getUTCHours())}${p(date.getUTCMinutes())}-`, 4, random);
}

/** One clip's manifest entry (docs/clip_format.md, with the capture fields). `timesMs` are
 *  frame times in the clip's time, `quality` per-frame measurements (quality.js). */
export function clipEntry({ participant, session, prompt, protocol, timesMs, quality, capture }) {
  const id = clipId(participant, session, prompt);
  return {
    id,
    frames_dir: id,
    times_ms: timesMs.map((t) => Math.round(t * 10) / 10),
    segments: [segmentFor(prompt, protocol)],
    clip_smile: prompt.clipSmile,
    subject: participant,
    session,
    prompt: prompt.id,
    fps: protocol.fps,
    capture,
    quality,
  };
}

/** What every clip of a session carries about how it was recorded. */
export function captureInfo({ protocol, device, lighting, notes, lang, recordedAt }) {
  return {
    format: CAPTURE,
    protocol: { id: protocol.id, version: protocol.version, scale: protocol.scale },
    device,
    lighting,
    notes,
    lang,
    consent: CONSENT,
    recorded_at: recordedAt,
  };
}

export function manifest(entries) {
  return { format: FORMAT, crop: "full", clips: entries };
}

/** The file name of frame `i` of a clip. */
export function frameName(id, i) {
  return `${id}/${String(i).padStart(6, "0")}.jpg`;
}
