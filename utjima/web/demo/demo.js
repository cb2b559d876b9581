// The live detector demo (/demo): the camera, mirrored, with the face box; a smile meter
// with the model's threshold; the emotion bars; frames per second and per-frame cost by
// stage; the backend that ran. Everything is computed by /static/detector/detector.js in a worker;
// this page only draws, once per animation frame. No request leaves the page after load
// except same-origin model and onnxruntime files.

import { createDetector } from "/static/detector/detector.js";
import { lang as gameLang, t as gameT, translate } from "/static/game/i18n.js";
import { cameraBlocked, showBlocked } from "/static/game/secure.js";
import { chrome } from "/static/game/ui.js";

const HISTORY = 900; // results kept on window.utjimaDemo.results (~30 s at 30 fps)
const STATS_OVER = 30; // per-stage ms are averaged over the latest results

const TEXT = {
  en: {
    title: "Live smile detector", privacy: "Your video never leaves this page: the detector runs in your browser.",
    loading: "Loading the model…", camera: "Waiting for the camera…", running: "", noface: "No face found",
    denied: "Camera unavailable: {error}", blocked: "No camera on this http:// page", failed: "The detector failed: {error}", start: "Start camera",
    smile: "Smile", emotions: "Emotions", performance: "Performance", fps: "frames / s", total: "per frame",
    stages: "detect · crop · enc · step", backend: "backend", smiling: "smiling", threads: "threads", thread: "thread",
    emotion: { angry: "angry", disgust: "disgust", fear: "fear", happy: "happy", sad: "sad", surprise: "surprise", neutral: "neutral" },
  },
  ko: {
    title: "실시간 웃음 감지", privacy: "영상은 이 페이지 밖으로 나가지 않습니다. 감지는 브라우저 안에서 실행됩니다.",
    loading: "모델을 불러오는 중…", camera: "카메라를 기다리는 중…", running: "", noface: "얼굴을 찾지 못했습니다",
    denied: "카메라를 쓸 수 없습니다: {error}", blocked: "이 http:// 페이지에서는 카메라를 쓸 수 없습니다", failed: "감지기 오류: {error}", start: "카메라 시작",
    smile: "웃음", emotions: "감정", performance: "성능", fps: "초당 프레임", total: "프레임당",
    stages: "검출 · 자르기 · 인코더 · 스텝", backend: "백엔드", smiling: "웃는 중", threads: "스레드", thread: "스레드",
    emotion: { angry: "화남", disgust: "혐오", fear: "두려움", happy: "행복", sad: "슬픔", surprise: "놀람", neutral: "무표정" },
  },
};

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let lang = params.get("lang") || gameLang(); // the game's language choice, shared header

if (!(lang in TEXT)) lang = "en";
let statusKey = "loading", statusArgs = {};

const state = { detector: null, results: [], latest: null, threshold: 0.5, classes: [], dirty: false };
window.utjimaDemo = state; // for the browser tests and the curious

function t(key, args = {}) {
  return (TEXT[lang][key] ?? gameT(key)).replace(/\{(\w+)\}/g, (_, k) => args[k] ?? "");
}

function setStatus(key, args = {}) {
  statusKey = key;
  statusArgs = args;
  $("status").textContent = t(key, args);
  $("status").hidden = !$("status").textContent;
}

function applyLanguage() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const li of $("emotions").children) li.querySelector(".name").textContent = TEXT[lang].emotion[li.dataset.name] ?? li.dataset.name;
  setStatus(statusKey, statusArgs);
  if (cameraBlocked()) showBlocked(document.body, (k, p) => translate(lang, k, p), document.querySelector("main"), false);
  state.dirty = true;
}

function buildBars(classes) {
  const ul = $("emotions");
  ul.replaceChildren(...classes.map((name) => {
    const li = document.createElement("li");
    li.dataset.name = name;
    li.innerHTML = '<span class="name"></span><span class="bar"><span class="fill"></span></span><span class="pct"></span>';
    return li;
  }));
}

function mean(values) {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
}

function render() {
  requestAnimationFrame(render);
  if (!state.dirty) return;
  state.dirty = false;
  const r = state.latest;
  const video = $("video"), canvas = $("overlay");
  if (canvas.width !== video.videoWidth || canvas.height !== video.videoHeight) {
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
  }
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  if (!r) return;
  const smiling = r.face && r.smile_prob >= state.threshold;
  if (r.face) {
    const [x1, y1, x2, y2] = r.box;
    g.lineWidth = Math.max(2, canvas.width / 200);
    g.strokeStyle = smiling ? "#ff4f79" : "#3ddc97"; // style.css --pink, --mint
    g.strokeRect(x1, y1, x2 - x1, y2 - y1);
  }
  setStatus(r.face ? "running" : "noface");
  const p = r.face ? r.smile_prob : 0;
  $("meter-fill").style.width = `${(100 * p).toFixed(1)}%`;
  $("meter").classList.toggle("on", smiling);
  $("smile-value").textContent = r.face ? p.toFixed(3) : "–";
  $("verdict").textContent = smiling ? t("smiling") : "";
  for (const li of $("emotions").children) {
    const v = r.face ? r.emotion[li.dataset.name] : 0;
    li.querySelector(".fill").style.width = `${(100 * v).toFixed(1)}%`;
    li.querySelector(".pct").textContent = r.face ? `${Math.round(100 * v)}%` : "";
  }
  const recent = state.results.slice(-STATS_OVER);
  const ms = (k) => mean(recent.filter((x) => x.ms[k] !== undefined && (x.face || k === "detect" || k === "total")).map((x) => x.ms[k]));
  $("fps").textContent = r.fps ? r.fps.toFixed(1) : "–";
  $("ms-total").textContent = `${ms("total").toFixed(1)} ms`;
  $("ms-stages").textContent = ["detect", "crop", "encode", "step"].map((k) => ms(k).toFixed(1)).join(" · ");
}

function onResult(r) {
  state.latest = r;
  state.results.push(r);
  if (state.results.length > HISTORY) state.results.splice(0, state.results.length - HISTORY);
  state.dirty = true;
}

async function startCamera() {
  if (cameraBlocked()) { // http:// from another device: the card says why (applyLanguage)
    setStatus("blocked");
    document.body.dataset.state = "no-camera";
    return;
  }
  $("start").hidden = true;
  setStatus("camera");
  document.body.dataset.state = "camera";
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } }, audio: false });
  } catch (e) {
    setStatus("denied", { error: e.message || e.name });
    $("start").hidden = false;
    document.body.dataset.state = "no-camera";
    return;
  }
  const video = $("video");
  video.srcObject = stream;
  await video.play();
  await state.detector.start(stream);
  document.body.dataset.state = "running";
}

async function main() {
  chrome({ onlang: () => { lang = gameLang(); applyLanguage(); } });
  $("start").addEventListener("click", startCamera);
  applyLanguage();
  requestAnimationFrame(render);
  try {
    const det = await createDetector();
    state.detector = det;
    state.threshold = det.contract.thresholds.smile;
    state.classes = det.contract.classes;
    $("meter-threshold").style.left = `${(100 * state.threshold).toFixed(1)}%`;
    $("meter-threshold").title = `threshold ${state.threshold}`;
    const i = det.info;
    $("backend").textContent = `${i.backend}${i.backend === "wasm" ? ` · ${i.threads} ${t(i.threads === 1 ? "thread" : "threads")}` : ""}`;
    $("backend").title = [i.ortFile, i.encoder, i.note].filter(Boolean).join(" · ");
    buildBars(state.classes);
    applyLanguage();
    det.onresult = onResult;
    det.onerror = (e) => setStatus("failed", { error: e.message });
  } catch (e) {
    setStatus("failed", { error: e.message });
    document.body.dataset.state = "failed";
    return;
  }
  if (params.get("camera") !== "off") await startCamera();
  else document.body.dataset.state = "ready";
}

main();
