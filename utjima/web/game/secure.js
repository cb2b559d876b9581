// Why the camera is blocked, when it is: browsers expose navigator.mediaDevices only in a
// secure context (https://, or http:// on localhost). A friend's device that opened the
// game over http:// at a network address has no camera API at all; instead of a JS error, the
// pages that need the camera say why, in the player's language, and what to do.

/** True when this page cannot ask for the camera at all (not a secure context). */
export function cameraBlocked() {
  return !window.isSecureContext || !navigator.mediaDevices?.getUserMedia;
}

const COMMANDS = { serve: "utjima serve --tls", make: "make run HOST=0.0.0.0 TLS=1" };

/** The explanation as a card: a title, why (naming this page's address) and what to do.
 *  `tr(key, params)` translates (the game's t, or the demo's own language); `watch` adds
 *  that watching needs no camera (the game pages). */
export function blockedCard(tr, watch = true) {
  const card = document.createElement("section");
  card.id = "camera-blocked";
  card.className = "card blocked";
  card.setAttribute("role", "alert");
  const title = document.createElement("h2");
  title.textContent = tr("camera_blocked_title");
  // placeholders the translation leaves in place become <code>: the address, the commands
  card.append(title, withCode(tr("camera_blocked_why"), { origin: location.origin }),
    withCode(tr("camera_blocked_fix"), COMMANDS));
  if (watch) card.lastChild.append(" ", tr("camera_blocked_watch"));
  return card;
}

/** A paragraph of `text` whose {name} placeholders become <code> elements. */
function withCode(text, values) {
  const p = document.createElement("p");
  for (const [i, part] of text.split(/\{(\w+)\}/).entries()) {
    if (i % 2 === 0) p.append(part);
    else p.append(Object.assign(document.createElement("code"), { textContent: values[part] ?? part }));
  }
  return p;
}

/** Put the explanation into `parent` before `before` (once; again after a language switch). */
export function showBlocked(parent, tr, before = parent.firstChild, watch = true) {
  document.getElementById("camera-blocked")?.remove();
  parent.insertBefore(blockedCard(tr, watch), before);
}

/** The error openCamera() throws when the camera API is missing. */
export class CameraBlockedError extends Error {
  constructor(message) {
    super(message);
    this.name = "CameraBlockedError";
  }
}
