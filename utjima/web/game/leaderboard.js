// The leaderboard: wins, matches, win rate and laughs per nickname.

import { $, api, el, showError } from "./common.js";
import { errorText, t } from "./i18n.js";
import { chrome } from "./ui.js";

const MEDALS = ["🥇", "🥈", "🥉"];

let rows = [];

function render() {
  const box = $("#board");
  if (!rows.length) {
    box.replaceChildren(el("p", { class: "muted", text: t("no_players") }));
    return;
  }
  box.replaceChildren(el("table", { class: "card" },
    el("thead", {}, el("tr", {},
      el("th", { text: t("rank") }), el("th", { text: t("player") }), el("th", { class: "num", text: t("wins") }),
      el("th", { class: "num", text: t("played") }), el("th", { class: "num", text: t("win_rate") }),
      el("th", { class: "num hide-phone", text: t("laughs") }))),
    el("tbody", {}, ...rows.map((r, i) => el("tr", {},
      el("td", {}, i < 3 ? el("span", { class: "medal", text: MEDALS[i] }) : String(i + 1)), el("td", { text: r.nickname }),
      el("td", { class: "num", text: String(r.wins) }), el("td", { class: "num", text: String(r.matches) }),
      el("td", { class: "num", text: `${Math.round(r.win_rate * 100)}%` }),
      el("td", { class: "num hide-phone", text: String(r.laughs) }))))));
}

chrome({ onlang: render });
api("/api/leaderboard").then((r) => { rows = r; render(); }, (e) => showError(errorText(e.code, e.message)));
