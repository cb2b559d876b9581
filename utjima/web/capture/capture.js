// The capture page (/capture): consent, a camera check, the filming protocol as timed
// prompts (one clip each), then the clips, which stay in this tab until the participant
// downloads them as a zip or uploads them to a `utjima serve --collect` server.
// docs/capture.md describes the protocol, the output and the collection.
//
// URL: /capture?scale=0.15 shortens every time of the protocol (tests); the operator's
// link carries the collection token in the fragment (#token=...), which no browser sends
// to a server; the page moves it into sessionStorage and out of the address bar.

import "./strings.js";
import { $, el, showError, startDetector } from "../game/common.js";
import { apply, lang, t, wireSwitch } from "../game/i18n.js";
import {
  captureInfo, clipEntry, frameName, ID_RE, manifest, randomId, readProtocol, sessionId, totalMs,
} from "./protocol.js";
import { clipProblems, frameQuality, QualityMonitor, WARNINGS } from "./quality.js";
import { FrameGrabber } from "./recorder.js";
import { zipBlob } from "./zip.js";

const KEY = {
  participant: "utjima:capture:participant",
  token: "utjima:capture:token", // sessionStorage: the collection token of this tab's link
  ptoken: (pid) => `utjima:capture:ptoken:${pid}`, // localStorage: delete tokens by id
};
const TICK_MS = 100; // how often the countdown and the warnings are redrawn

const S = {
  protocol: null,
  collecting: null, // null = unknown, true, false (the server answered 404)
  limits: null, // the collection's limits (GET /api/collect)
  stream: null,
  detector: null,
  grabber: null,
  monitor: null,
  results: [], // the live detector's results during the session, sorted by t_ms
  phase: null, // {prompt, kind: "ready" | "record", t0, ms}
  clips: [], // [{prompt, entry, frames: [Blob], problems}]
  session: null, // {id, participant, capture}
  stopped: false,
  zip: null, // the session's zip Blob, made once
};

// --- small helpers ----------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

function step(name) {
  document.body.dataset.step = name;
  for (const id of ["consent", "stage", "done"]) $(`#${id}`).hidden = true;
  $(name === "consent" ? "#consent" : name === "done" ? "#done" : "#stage").hidden = false;
  window.scrollTo(0, 0);
}

function apiError(data, status) {
  const d = data?.detail ?? {};
  const key = `err_${d.code}`;
  const local = t(key);
  const err = new Error(local !== key ? local : d.message || `HTTP ${status}`);
  err.code = d.code;
  err.status = status;
  return err;
}

async function call(method, path, { headers = {}, body } = {}) {
  const r = await fetch(path, { method, headers, body });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw apiError(data, r.status);
  return data;
}

function token() {
  return sessionStorage.getItem(KEY.token) || $("#token").value.trim() || null;
}

// --- 1. consent -------------------------------------------------------------------------------

function renderConsent() {
  const p = S.protocol;
  $("#consent-what").textContent = t("consent_what", { fps: p.fps, px: p.frameLongSide });
  $("#privacy").textContent = t("rec_privacy");
  const m = Math.max(1, Math.round(totalMs(p) / 60000));
  $("#session-length").textContent = t("session_length", { n: p.prompts.length, m });
}

function takeParticipant() {
  const pid = $("#participant").value.trim().toLowerCase();
  if (!ID_RE.test(pid) || pid.length < 2) return null;
  localStorage.setItem(KEY.participant, pid);
  return pid;
}

async function toSetup() {
  const bad = (msg) => {
    $("#consent-error").textContent = msg;
    $("#consent-error").hidden = false;
  };
  if (!$("#agree").checked) return bad(t("need_consent"));
  const pid = takeParticipant();
  if (!pid) return bad(t("bad_participant"));
  $("#consent-error").hidden = true;
  S.participant = pid;
  step("setup");
  await openCamera();
}

// --- 2. camera and live quality ---------------------------------------------------------------

async function openCamera() {
  if (S.stream) return;
  const video = $("#video");
  try {
    // video only: the protocol records no sound
    S.stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" }, audio: false,
    });
  } catch (e) {
    showError(t("camera_failed", { error: e.message || e.name }));
    return;
  }
  video.srcObject = S.stream;
  await video.play();
  const p = S.protocol;
  S.monitor = new QualityMonitor(p.quality);
  S.grabber = new FrameGrabber(video, { fps: p.fps, longSide: p.frameLongSide, jpegQuality: p.jpegQuality });
  S.grabber.onframe = onFrame;
  S.grabber.start();
  $("#start").disabled = false;
  setInterval(tick, TICK_MS);
  startQuality();
}

async function startQuality() {
  const status = $("#quality");
  status.replaceChildren(el("li", { class: "q-chip", text: t("detector_loading") }));
  try {
    S.detector = await startDetector(S.stream);
    S.detector.onresult = (r) => {
      S.monitor.detection(r, $("#video").videoWidth);
      if (S.session) S.results.push(r);
    };
  } catch (e) {
    S.detectorError = String(e.message || e);
  }
}

function renderQuality() {
  const list = $("#quality");
  if (!S.monitor) return;
  const prompt = S.phase?.prompt ?? null;
  const warns = S.monitor.warnings(performance.now(), prompt);
  const chips = warns.map((w) => el("li", { class: "q-chip warn", "data-warning": w, text: t(`q_${w}`) }));
  if (S.detectorError) chips.push(el("li", { class: "q-chip warn", text: t("q_detector_off", { error: S.detectorError }) }));
  else if (!S.detector) chips.push(el("li", { class: "q-chip", text: t("detector_loading") }));
  else if (!warns.length && S.monitor.measures().faceSeen) chips.push(el("li", { class: "q-chip ok", text: t("q_ok") }));
  list.replaceChildren(...chips);
  document.body.dataset.warnings = warns.join(" ");
}

function onFrame(f) {
  S.monitor.frame(f.t, f);
  const ph = S.phase;
  if (!ph || ph.kind !== "record" || !f.blob) return;
  if (f.t < ph.t0 || f.t >= ph.t0 + ph.prompt.durationMs) return; // outside this prompt
  ph.frames.push(f);
}

// --- 3. the prompts ---------------------------------------------------------------------------

function tick() {
  renderQuality();
  const ph = S.phase;
  if (!ph) return;
  const left = Math.max(0, ph.t0 + ph.ms - performance.now());
  $("#countdown").textContent = String(Math.ceil(left / 1000));
  $("#bar").style.width = `${Math.min(100, 100 * (1 - left / ph.ms))}%`;
}

function showPrompt(prompt, kind) {
  const l = lang();
  const n = S.protocol.prompts.length;
  document.body.dataset.phase = kind;
  document.body.dataset.prompt = prompt.id;
  $("#step-no").textContent = t("step", { i: prompt.index + 1, n });
  $("#phase").textContent = t(kind === "ready" ? "get_ready" : "recording");
  $("#prompt-title").textContent = prompt.title[l];
  $("#prompt-text").textContent = prompt.text[l];
  $("#prompt-say").hidden = !prompt.say;
  $("#prompt-say").textContent = prompt.say ? prompt.say[l] : "";
}

/** Wait until `t0 + ms` on the page clock, or until the participant stops. */
async function until(t0, ms) {
  while (!S.stopped && performance.now() < t0 + ms) await sleep(Math.min(50, t0 + ms - performance.now()));
}

async function runSession() {
  const p = S.protocol;
  const track = S.stream.getVideoTracks()[0];
  const settings = track.getSettings();
  S.session = {
    id: sessionId(new Date()),
    capture: captureInfo({
      protocol: p,
      device: {
        user_agent: navigator.userAgent.slice(0, 400),
        camera: (track.label || "").slice(0, 200),
        width: settings.width ?? $("#video").videoWidth,
        height: settings.height ?? $("#video").videoHeight,
        frame_rate: settings.frameRate ?? null,
      },
      lighting: $("#lighting").value,
      notes: $("#notes").value.trim().slice(0, 300),
      lang: lang(),
      recordedAt: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    }),
  };
  S.results = [];
  S.clips = [];
  S.stopped = false;
  step("run");
  const finishing = [];
  for (const prompt of p.prompts) {
    S.grabber.keep = false; // measure only: the ready time is not recorded
    showPrompt(prompt, "ready");
    S.phase = { prompt, kind: "ready", t0: performance.now(), ms: p.readyMs };
    tick();
    await until(S.phase.t0, p.readyMs);
    if (S.stopped) break;
    showPrompt(prompt, "record");
    S.grabber.keep = true;
    const ph = { prompt, kind: "record", t0: performance.now(), ms: prompt.durationMs, frames: [] };
    S.phase = ph;
    tick();
    await until(ph.t0, prompt.durationMs);
    if (S.stopped) break; // a prompt cut short is not a clip
    finishing.push(finishClip(ph));
  }
  S.grabber.keep = false;
  S.phase = null;
  document.body.dataset.phase = "";
  await Promise.all(finishing);
  toDone();
}

/** A recorded prompt -> its manifest entry and frames, once its JPEGs are encoded and the
 *  detector has had time to answer for its last frames. */
async function finishClip(ph) {
  await sleep(400);
  await S.grabber.settled();
  const frames = ph.frames;
  if (!frames.length) return; // nothing arrived (camera stalled): no clip
  const quality = frameQuality(frames, S.results, $("#video").videoWidth);
  const entry = clipEntry({
    participant: S.participant, session: S.session.id, prompt: ph.prompt, protocol: S.protocol,
    timesMs: frames.map((f) => f.t - ph.t0), quality, capture: S.session.capture,
  });
  const blobs = await Promise.all(frames.map((f) => f.blob));
  S.clips.push({ prompt: ph.prompt, entry, blobs, problems: clipProblems(quality, ph.prompt, S.protocol.quality) });
  S.clips.sort((a, b) => a.prompt.index - b.prompt.index);
}

// --- 4. done: download, upload, discard ---------------------------------------------------------

function sessionBytes() {
  return S.clips.reduce((s, c) => s + c.blobs.reduce((a, b) => a + b.size, 0), 0);
}

function problemText(problems) {
  const bad = WARNINGS.filter((w) => problems[w] >= 10);
  return bad.length ? bad.map((w) => t(`problem_${w}`, { p: problems[w] })).join(" · ") : t("quality_fine");
}

function renderDone() {
  const l = lang();
  $("#done-title").textContent = t("done_title", { n: S.clips.length });
  $("#stopped-note").hidden = !S.stopped;
  $("#summary tbody").replaceChildren(...S.clips.map((c) => el("tr", { "data-prompt": c.prompt.id },
    el("td", { text: String(c.prompt.index + 1) }),
    el("td", { text: c.prompt.title[l] }),
    el("td", { class: "num", text: String(c.blobs.length) }),
    el("td", { class: Object.values(c.problems).some((v) => v >= 10) ? "warn" : "", text: problemText(c.problems) }))));
  $("#download").textContent = t("download", { size: mb(sessionBytes()) });
  $("#token-box").hidden = Boolean(sessionStorage.getItem(KEY.token)) || S.collecting === false;
  $("#upload").hidden = S.collecting === false;
  if (S.collecting === false) $("#upload-status").textContent = t("err_not_collecting");
}

function toDone() {
  step("done");
  const empty = !S.clips.length;
  for (const id of ["#upload", "#download", "#discard"]) $(id).disabled = empty;
  renderDone();
}

async function sessionZip() {
  if (S.zip) return S.zip;
  const files = [{ name: "manifest.json", data: JSON.stringify(manifest(S.clips.map((c) => c.entry)), null, 1) }];
  for (const c of S.clips) c.blobs.forEach((b, i) => files.push({ name: frameName(c.entry.id, i), data: b }));
  S.zip = await zipBlob(files);
  return S.zip;
}

async function download() {
  const blob = await sessionZip();
  const a = el("a", { href: URL.createObjectURL(blob), download: `utjima-${S.participant}-${S.session.id}.zip` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}

async function upload() {
  const status = $("#upload-status");
  const tok = token();
  if (!tok) {
    $("#token-box").hidden = false;
    $("#token").focus();
    status.textContent = t("err_no_token");
    return;
  }
  const blob = await sessionZip();
  if (S.limits && blob.size > S.limits.max_upload_bytes) {
    status.className = "status error";
    status.textContent = t("err_too_large");
    return;
  }
  $("#upload").disabled = true;
  status.className = "status";
  status.textContent = t("uploading", { size: mb(blob.size) });
  const headers = { authorization: `Bearer ${tok}`, "content-type": "application/zip" };
  const ptoken = localStorage.getItem(KEY.ptoken(S.participant));
  if (ptoken) headers["x-participant-token"] = ptoken;
  try {
    const receipt = await call("POST", "/api/collect/uploads", { headers, body: blob });
    if (receipt.participant_token) localStorage.setItem(KEY.ptoken(S.participant), receipt.participant_token);
    status.className = "status ok";
    status.textContent = t("uploaded", { n: receipt.clips.length, pid: receipt.participant });
    $("#ptoken").value = localStorage.getItem(KEY.ptoken(S.participant)) || "";
    $("#receipt").hidden = false;
    $("#upload").hidden = true;
    $("#again").hidden = false;
    document.body.dataset.uploaded = receipt.session;
  } catch (e) {
    status.className = "status error";
    status.textContent = e.status ? e.message : t("error", { message: e.message }); // offline
    $("#upload").disabled = false;
    if (e.code === "bad_token" || e.code === "no_token") {
      sessionStorage.removeItem(KEY.token);
      $("#token-box").hidden = false;
    }
  }
}

async function deleteClips(pid, ptoken, status) {
  try {
    const r = await call("DELETE", `/api/collect/participants/${encodeURIComponent(pid)}`,
      { headers: { "x-participant-token": ptoken } });
    localStorage.removeItem(KEY.ptoken(pid));
    status.className = "status ok";
    status.textContent = t("deleted", { n: r.deleted_clips, pid });
  } catch (e) {
    status.className = "status error";
    status.textContent = e.message;
  }
}

function discard() {
  if (!confirm(t("discard_confirm"))) return;
  S.clips = [];
  S.zip = null;
  $("#summary tbody").replaceChildren();
  for (const id of ["#upload", "#download", "#discard"]) $(id).disabled = true;
  $("#upload-status").textContent = t("discarded");
  $("#again").hidden = false;
}

// --- start ----------------------------------------------------------------------------------------

async function checkCollection() {
  const headers = sessionStorage.getItem(KEY.token) ? { authorization: `Bearer ${sessionStorage.getItem(KEY.token)}` } : {};
  try {
    S.limits = (await call("GET", "/api/collect", { headers })).limits;
    S.collecting = true;
  } catch (e) {
    S.collecting = e.code === "not_collecting" ? false : true;
    if (e.code === "bad_token") {
      sessionStorage.removeItem(KEY.token);
      showError(e.message);
    }
  }
}

async function main() {
  const params = new URLSearchParams(location.search);
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromLink) {
    sessionStorage.setItem(KEY.token, fromLink);
    history.replaceState(null, "", location.pathname + location.search); // out of the address bar
  }
  apply();
  wireSwitch($("#lang"), () => {
    renderConsent();
    if (S.phase) showPrompt(S.phase.prompt, S.phase.kind);
    if (document.body.dataset.step === "done") renderDone();
  });
  try {
    const doc = await (await fetch("/static/capture/protocol.json")).json();
    S.protocol = readProtocol(doc, { scale: Number(params.get("scale") ?? 1) });
  } catch (e) {
    showError(String(e.message || e));
    return;
  }
  renderConsent();
  const pid = localStorage.getItem(KEY.participant) || randomId("p-", 6);
  $("#participant").value = pid;
  $("#del-participant").value = pid;
  $("#del-token").value = localStorage.getItem(KEY.ptoken(pid)) || "";
  $("#again").href = location.pathname + location.search;
  $("#continue").addEventListener("click", toSetup);
  $("#start").addEventListener("click", () => {
    $("#start").disabled = true;
    runSession();
  });
  $("#stop").addEventListener("click", () => { S.stopped = true; });
  $("#download").addEventListener("click", download);
  $("#upload").addEventListener("click", upload);
  $("#discard").addEventListener("click", discard);
  $("#delete").addEventListener("click", () => deleteClips(
    $("#del-participant").value.trim().toLowerCase(), $("#del-token").value.trim(), $("#delete-status")));
  $("#delete-now").addEventListener("click", () => deleteClips(S.participant, $("#ptoken").value, $("#upload-status")));
  step("consent");
  await checkCollection();
}

main();
