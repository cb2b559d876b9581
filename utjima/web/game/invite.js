// The invite block (landing page after "Create a room", and the room's lobby): the link at
// an address a friend can reach (the server picks it: --public-url, else this machine's
// network address, never 127.0.0.1 unless that is all there is), Copy, Share (Web Share
// API, where the browser has it) and a QR code made by the server.

import { $, api } from "./common.js";
import { t } from "./i18n.js";

let current = null; // {code, url, qr_svg}

/** Fill the block for room `code`: #invite-link, #invite-qr, #share, #invite-note. */
export async function showInvite(code) {
  current = await api(`/api/rooms/${encodeURIComponent(code)}/invite`);
  $("#invite-link").value = current.url;
  const qr = $("#invite-qr");
  qr.src = current.qr_svg;
  qr.alt = t("invite_qr", { url: current.url });
  $("#invite-qr-box").hidden = false;
  $("#share").hidden = !navigator.share;
  const insecure = current.url.startsWith("http://") && !/^http:\/\/(localhost|127\.|\[::1\])/.test(current.url);
  const note = $("#invite-note");
  note.hidden = !insecure;
  note.textContent = insecure ? t("invite_http") : "";
  return current;
}

/** Wire Copy and Share once per page. */
export function wireInvite() {
  $("#copy").addEventListener("click", async () => {
    const link = $("#invite-link");
    try {
      await navigator.clipboard.writeText(link.value);
    } catch {
      link.select(); // no clipboard permission (or http://): leave it selected to copy
    }
    $("#copy").textContent = t("copied");
    setTimeout(() => { $("#copy").textContent = t("copy"); }, 1500);
  });
  $("#share").addEventListener("click", async () => {
    if (!current || !navigator.share) return;
    try {
      await navigator.share({ title: t("app"), text: t("share_text", { code: current.code }), url: current.url });
    } catch (e) {
      if (e.name !== "AbortError") $("#invite-link").select(); // closing the sheet is fine
    }
  });
}
