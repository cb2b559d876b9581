// The look every page shares: the header (logo, wordmark, nav, sound and language switches)
// and the small "how to play" list. Pages hold an empty <header class="top" id="top"> and
// call chrome(); the wordmark and the nav are the same everywhere, /demo included.

import { $, el } from "./common.js";
import { apply, t, wireSwitch } from "./i18n.js";
import { sound } from "./sound.js";

const NAV = [["/", "play"], ["/history", "history"], ["/leaderboard", "leaderboard"], ["/demo", "demo"]];

export function wordmark() {
  return el("a", { class: "brand", href: "/", "aria-label": "utjima" },
    el("img", { class: "logo", src: "/static/game/art/logo.svg", alt: "", width: "36", height: "36" }),
    el("span", { class: "wordmark" }, "웃지마", el("b", { text: "!" })),
    el("small", { class: "wordmark-en", text: "DON'T LAUGH" }));
}

/** Fill #top; `onlang` re-renders a page's dynamic text after a language switch. */
export function chrome({ onlang = () => {}, extra = null } = {}) {
  const top = $("#top");
  const here = location.pathname;
  const mute = el("button", { type: "button", id: "mute", class: "icon-button" });
  const label = () => {
    const off = sound.muted;
    mute.textContent = off ? "🔇" : "🔊";
    mute.title = t(off ? "sound_off" : "sound_on");
    mute.setAttribute("aria-label", mute.title);
    mute.setAttribute("aria-pressed", String(off));
  };
  mute.addEventListener("click", () => { sound.muted = !sound.muted; });
  sound.onchange(label);
  const langButton = el("button", { type: "button", id: "lang", class: "link" });
  top.replaceChildren(
    wordmark(),
    ...(extra ? [extra] : []),
    el("nav", {},
      ...NAV.filter(([href]) => href !== here).map(([href, key]) =>
        el("a", { href, "data-i18n": key, class: href === "/" ? "nav-play" : "" })),
      mute, langButton));
  apply();
  label();
  wireSwitch(langButton, () => { label(); onlang(); });
}

/** The four steps of "how to play", as a list (landing page and the room's help). */
export function howTo() {
  const steps = [1, 2, 3, 4].map((i) => el("li", {},
    el("img", { src: `/static/game/art/step${i}.svg`, alt: "", width: "56", height: "56" }),
    el("span", { "data-i18n": `how_${i}` })));
  return el("section", { class: "card how", id: "how" },
    el("h2", { "data-i18n": "how_title" }),
    el("ol", { class: "steps" }, ...steps),
    el("p", { class: "muted small", "data-i18n": "how_privacy" }));
}
