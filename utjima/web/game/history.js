// The history page: finished matches, newest first; each opens to its rounds and the
// judge's laugh events. /history#m12 opens match 12.

import { $, api, el, pct, showError } from "./common.js";
import { errorText, lang, t } from "./i18n.js";
import { chrome } from "./ui.js";

let matches = [];

function when(iso) {
  return new Date(iso).toLocaleString(lang() === "ko" ? "ko-KR" : "en-GB", { dateStyle: "medium", timeStyle: "short" });
}

function reason(r) {
  return r ? t(`reason_${r}`) : "";
}

async function fillRounds(box, id) {
  if (box.dataset.loaded) return;
  box.dataset.loaded = "1";
  const m = await api(`/api/matches/${id}`);
  box.replaceChildren(el("table", {},
    el("thead", {}, el("tr", {}, el("th", { text: t("round") }), el("th", { text: t("loser") }),
      el("th", { text: t("reason") }), el("th", { class: "num", text: "%" }), el("th", { class: "num", text: t("duration") }))),
    el("tbody", {}, ...m.rounds.map((r) => {
      const decisive = r.events.filter((e) => r.losers.includes(e.nickname)
        && (e.type === "laugh_confirmed" || e.type === "absent_forfeit"));
      const peak = Math.max(0, ...r.events.filter((e) => r.losers.includes(e.nickname) && e.peak_prob !== null).map((e) => e.peak_prob));
      return el("tr", { class: "round" },
        el("td", { text: String(r.index) }),
        el("td", { text: r.status === "draw" ? t("draw") : r.losers.join(", ") }),
        el("td", { text: reason(r.reason) }),
        el("td", { class: "num", text: decisive.length && peak ? pct(peak) : "" }),
        el("td", { class: "num", text: `${(r.duration_ms / 1000).toFixed(1)} s` }));
    }))));
}

function render() {
  const box = $("#matches");
  const open = new Set([...box.querySelectorAll("details[open]")].map((d) => d.id));
  if (!matches.length) {
    box.replaceChildren(el("p", { class: "muted", text: t("no_matches") }));
    return;
  }
  box.replaceChildren(...matches.map((m) => {
    const rounds = el("div", { class: "rounds" });
    const details = el("details", { class: "card match", id: `m${m.id}`, "data-id": String(m.id) },
      el("summary", {},
        el("strong", { text: m.winners.length ? t(m.winners.length > 1 ? "winners" : "winner", { names: m.winners.join(", ") }) : t("match_draw") }), " · ",
        el("span", {}, ...m.players.map((p, i) => el("span", { class: p.result === "win" ? "win" : "" },
          `${i ? " vs " : ""}${p.nickname} ${p.score}`))),
        el("div", { class: "muted", text: [when(m.ended_at), t("room_title", { code: m.room_code }),
          m.rounds_to_win > 0 ? t("first_to", { n: m.rounds_to_win }) : ""].filter(Boolean).join(" · ") })),
      rounds);
    details.addEventListener("toggle", () => { if (details.open) fillRounds(rounds, m.id).catch(failed); });
    details.open = open.has(details.id); // a language switch keeps what was open
    return details;
  }));
  const target = location.hash.match(/^#m(\d+)$/);
  if (target) {
    const d = document.getElementById(`m${target[1]}`);
    if (d) { d.open = true; d.scrollIntoView(); }
  }
}

function failed(e) {
  showError(errorText(e.code, e.message));
}

chrome({ onlang: render });
api("/api/matches?limit=50").then((m) => { matches = m; render(); }, failed);
