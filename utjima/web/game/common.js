// Shared by the game pages: the JSON API, remembered seats, the camera, the smile meter.

import { t } from "./i18n.js";
import { CameraBlockedError, cameraBlocked } from "./secure.js";

/** fetch JSON from our API; throws Error(message) with the server's clear message. */
export async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  };
  const r = await fetch(path, init);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const d = data.detail;
    const err = new Error(d?.message || (typeof d === "string" ? d : `HTTP ${r.status}`));
    err.code = d?.code;
    err.status = r.status;
    throw err;
  }
  return data;
}

export const $ = (sel, root = document) => root.querySelector(sel);

/** The page's #error line: shows `msg`, hides when it is empty. */
export function showError(msg) {
  const box = $("#error");
  box.textContent = msg;
  box.hidden = !msg;
}

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// --- nickname and seats ---------------------------------------------------------------------

/** The nickname typed in `input`, remembered; null (the error shown with `show`) when empty. */
export function takeNickname(input, show = showError) {
  const v = input.value.trim();
  if (!v) {
    show(t("need_nickname"));
    input.focus();
    return null;
  }
  nickname.set(v);
  return v;
}

export const nickname = {
  get: () => localStorage.getItem("utjima:nickname") || "",
  set: (v) => localStorage.setItem("utjima:nickname", v),
};

/** This browser's player identity: a random key kept in localStorage and sent with every
 * join. The server keeps only its SHA-256: the leaderboard counts results by it, and a
 * nickname belongs to the first key that finished a match with it (docs/protocol.md). */
export function deviceKey() {
  let key = localStorage.getItem("utjima:device-key");
  if (!/^[A-Za-z0-9_-]{22,64}$/.test(key || "")) {
    const bytes = crypto.getRandomValues(new Uint8Array(24));
    key = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    localStorage.setItem("utjima:device-key", key);
  }
  return key;
}

/** The server's error in the page's language when we have words for its code. */
// A seat ({token, role}) lives in sessionStorage (this tab: a reload rejoins), and the last
// few are also kept in localStorage, so a closed tab reopened within the grace period can
// take its seat back (the server only hands back a seat whose socket is gone, so a second
// window of the same browser still joins as a new player).
export const seats = {
  session(code) {
    return JSON.parse(sessionStorage.getItem(`utjima:seat:${code}`) || "null");
  },
  remembered(code) {
    return JSON.parse(localStorage.getItem(`utjima:seats:${code}`) || "[]");
  },
  save(code, seat) {
    sessionStorage.setItem(`utjima:seat:${code}`, JSON.stringify(seat));
    const list = [seat, ...this.remembered(code).filter((x) => x.token !== seat.token)].slice(0, 8);
    localStorage.setItem(`utjima:seats:${code}`, JSON.stringify(list));
  },
  forget(code, token) {
    if (this.session(code)?.token === token) sessionStorage.removeItem(`utjima:seat:${code}`);
    const list = this.remembered(code).filter((x) => x.token !== token);
    localStorage.setItem(`utjima:seats:${code}`, JSON.stringify(list));
  },
};

// --- camera and detector ----------------------------------------------------------------------

export async function openCamera() {
  if (cameraBlocked()) throw new CameraBlockedError(t("camera_blocked_title"));
  const video = { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" };
  try {
    return await navigator.mediaDevices.getUserMedia({ video, audio: true });
  } catch {
    return await navigator.mediaDevices.getUserMedia({ video, audio: false });
  }
}

/** Why the camera failed, as a code the server relays and the pages word (i18n
 *  camera_err_<code>): denied, not_found, in_use, insecure, unsupported, failed. */
export function cameraError(e) {
  if (!navigator.mediaDevices?.getUserMedia) return globalThis.isSecureContext === false ? "insecure" : "unsupported";
  switch (e?.name) {
    case "NotAllowedError": case "SecurityError": return "denied";
    case "NotFoundError": case "OverconstrainedError": case "DevicesNotFoundError": return "not_found";
    case "NotReadableError": case "AbortError": case "TrackStartError": return "in_use";
    default: return "failed";
  }
}

/** The on-device detector (docs/detector_api.md), loaded lazily so pages work without it. */
export async function startDetector(stream) {
  const { createDetector } = await import("/static/detector/detector.js");
  const det = await createDetector({ model: "/models/default/", ortBase: "/vendor/ort/" });
  await det.start(stream);
  return det;
}

// --- the smile meter --------------------------------------------------------------------------

/** A horizontal bar: fill = smile_prob, a mark at the player's threshold, and (for the
 *  player's own meter in the room) the laugh state the judge gives it. */
export class Meter {
  constructor() {
    this.fill = el("div", { class: "fill" });
    this.mark = el("div", { class: "mark" });
    this.label = el("span", { class: "meter-label", text: "–" });
    this.state = el("span", { class: "meter-state" });
    this.node = el("div", { class: "meter", role: "meter", "aria-valuemin": "0", "aria-valuemax": "100", "data-laugh": "" },
      this.fill, this.mark, this.state, this.label);
    this.threshold = null;
    this.laugh = null;
  }

  set(face, prob) {
    if (!face || prob === null || prob === undefined) {
      this.node.classList.add("noface");
      this.fill.style.width = "0%";
      this.label.textContent = "–";
      this.node.setAttribute("aria-valuenow", "0");
      return;
    }
    this.node.classList.remove("noface");
    const pct = Math.round(prob * 100);
    this.fill.style.width = `${pct}%`;
    this.label.textContent = `${pct}%`;
    this.node.setAttribute("aria-valuenow", String(pct));
    this.node.classList.toggle("hot", this.threshold !== null && prob >= this.threshold);
  }

  /** The judge's laugh state: null, "laughing" (not long enough to count yet) or "laughed". */
  setLaugh(laugh) {
    this.laugh = laugh;
    this.node.dataset.laugh = laugh ?? "";
    this.node.classList.toggle("laughing", laugh === "laughing");
    this.node.classList.toggle("laughed", laugh === "laughed");
    this.state.textContent = laugh === null ? "" : t(`meter_${laugh}`);
  }

  setThreshold(th) {
    this.threshold = th;
    this.mark.hidden = th === null || th === undefined;
    if (!this.mark.hidden) {
      this.mark.style.left = `${th * 100}%`;
      this.mark.title = t("threshold", { p: Math.round(th * 100) });
    }
  }
}

export function pct(p) {
  return p === null || p === undefined ? "–" : String(Math.round(p * 100));
}
