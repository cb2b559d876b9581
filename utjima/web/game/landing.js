// The landing page: nickname, create a room (code + invite link) or join one, a camera
// check with the on-device detector ("we can see you"), and how to play.

import { $, Meter, api, cameraError, nickname, openCamera, showError, startDetector, takeNickname } from "./common.js";
import { errorText, t } from "./i18n.js";
import { showInvite, wireInvite } from "./invite.js";
import { cameraBlocked, showBlocked } from "./secure.js";
import { chrome, howTo } from "./ui.js";

const CODE = /^[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{6}$/; // schemas.ROOM_CODE_ALPHABET, 6 long

// the error line, as a function of the language, so a language switch rewords it
let errorLine = () => "";
function say(line) {
  errorLine = line;
  showError(line());
}

const nick = $("#nickname");
const codeInput = $("#code");

async function create() {
  say(() => "");
  if (!takeNickname(nick, () => say(() => t("need_nickname")))) return;
  try {
    const room = await api("/api/rooms", {});
    $("#created-code").textContent = room.code;
    await showInvite(room.code);
    $("#enter").href = `${room.invite_path}?auto=1`;
    $("#created").hidden = false;
  } catch (e) {
    say(() => errorText(e.code, e.message));
  }
}

async function go(spectate) {
  say(() => "");
  const code = codeInput.value.trim().toUpperCase();
  if (!code || !CODE.test(code)) { // say what a code is, before asking the server anything
    say(() => t(code ? "bad_code" : "need_code"));
    codeInput.focus();
    return;
  }
  if (!takeNickname(nick, () => say(() => t("need_nickname")))) return;
  try {
    await api(`/api/rooms/${encodeURIComponent(code)}`);
    location.href = `/r/${code}?auto=1${spectate ? "&spectate=1" : ""}`;
  } catch (e) {
    say(() => (e.status === 404 ? t("no_room", { code }) : errorText(e.code, e.message)));
  }
}

// --- camera check -----------------------------------------------------------------------------

let camera = null, detector = null;
const meter = new Meter();
$("#meter-slot").append(meter.node);
$("#meter-slot").hidden = true; // shown while the camera check runs

async function toggleCamera() {
  const btn = $("#camera"), face = $("#face"), video = $("#preview");
  if (camera) {
    detector?.dispose();
    for (const tr of camera.getTracks()) tr.stop();
    camera = detector = null;
    video.hidden = true;
    $("#meter-slot").hidden = true;
    face.textContent = "";
    btn.dataset.i18n = "camera_check";
    btn.textContent = t("camera_check");
    return;
  }
  try {
    camera = await openCamera();
  } catch (e) {
    face.textContent = t(`camera_err_${cameraError(e)}`);
    return;
  }
  video.srcObject = camera;
  video.hidden = false;
  $("#meter-slot").hidden = false;
  await video.play().catch(() => {});
  btn.dataset.i18n = "camera_off";
  btn.textContent = t("camera_off");
  face.textContent = t("detector_loading");
  try {
    detector = await startDetector(camera);
    detector.onresult = (r) => {
      face.textContent = r.face ? t("seen") : t("not_seen");
      face.classList.toggle("ok", r.face);
      meter.set(r.face, r.smile_prob);
    };
  } catch (e) {
    face.textContent = t("detector_failed", { error: e.message });
  }
}

// --- wiring -----------------------------------------------------------------------------------

// over http:// from another device the camera API is missing: say why, up front
const blocked = cameraBlocked();
const explain = () => { if (blocked) showBlocked($("main .card").parentElement, t, $("main .card")); };
$("#how-slot").replaceWith(howTo());
chrome({ onlang: () => { showError(errorLine()); explain(); } });
explain();
$("#camera").disabled = blocked;
nick.value = nickname.get();
$("#create").addEventListener("click", create);
$("#join").addEventListener("click", () => go(false));
$("#watch").addEventListener("click", () => go(true));
codeInput.addEventListener("keydown", (e) => { if (e.key === "Enter") go(false); });
$("#enter").addEventListener("click", () => nickname.set(nick.value.trim()));
wireInvite();
$("#camera").addEventListener("click", toggleCamera);
