// The review page (`utjima review DIR`, docs/review.md): one clip at a time with its frames,
// a timeline of label spans and the model's score curve, keyboard relabelling of spans and
// boundaries, exclude / flag / undo; the suspects queue; dataset statistics.
// Every change is a POST to the local review server, which writes review.json (the clips
// are never rewritten) and answers with the clip as it now is.

import "./strings.js";
import { $, api, el, showError } from "../game/common.js";
import { apply, lang, t, wireSwitch } from "../game/i18n.js";
import { draw, frameAt, frameEnd, layout } from "./timeline.js";

const WHO_KEY = "utjima:review:who";
const POLL_MS = 1500;

const S = {
  info: null, // GET /api/info
  list: [], // GET /api/clips .clips
  view: null, // GET /api/clips/{id}
  i: 0, // the playhead's frame
  sel: null, // {first, last}: the frames the label keys change
  playing: false,
  timer: null,
  images: [],
  prompts: {}, // prompt id -> {en, ko} titles (the capture protocol)
  suspects: null,
  stats: null,
  queue: null, // {items: [suspect spans], pos} while stepping through the suspects
  drag: null,
};

const enc = encodeURIComponent;
const clipUrl = (id, rest = "") => `/api/clips/${enc(id)}${rest}`;
const secs = (ms) => (ms / 1000).toFixed(1);
const pct = (v) => (v === null || v === undefined ? t("none") : `${(v * 100).toFixed(0)}%`);
const fix = (v, d = 2) => (v === null || v === undefined ? t("none") : Number(v).toFixed(d));

function emotionName(name) {
  return name ? t(`emo_${name}`) : t("emotion_none");
}

function smileName(v) {
  return v === 1 ? t("smiling") : v === 0 ? t("not_smiling") : t("unknown");
}

function clipLabelName(v) {
  return v === 1 ? t("laughed") : v === 0 ? t("did_not_laugh") : t("unknown");
}

function promptTitle(p) {
  if (!p) return "";
  const titles = S.prompts[p];
  return titles ? (titles[lang()] || titles.en) : p;
}

// --- the reviewer ------------------------------------------------------------------------------

function reviewer() {
  return $("#who").value.trim() || S.info?.reviewer || "";
}

// --- loading -----------------------------------------------------------------------------------

async function loadPrompts() {
  try {
    const r = await fetch("/static/capture/protocol.json");
    const p = await r.json();
    for (const q of p.prompts) S.prompts[q.id] = q.title;
  } catch {
    // prompt ids are shown as they are
  }
}

async function refreshList() {
  const r = await api("/api/clips");
  S.list = r.clips;
  renderProgress(r.progress);
  renderList();
  return r.progress;
}

async function openClip(id, sel = null, keepQueue = false) {
  stop();
  if (!keepQueue) S.queue = null;
  const row = S.list.find((c) => c.id === id);
  if (row?.error) {
    showError(`${id}: ${row.error}`);
    return;
  }
  showError("");
  S.view = await api(clipUrl(id));
  history.replaceState(null, "", `#clip=${enc(id)}`);
  S.i = sel ? sel.first : 0;
  S.sel = sel || spanFrames(spanIndexAt(S.i));
  S.images = S.view.times_ms.map((_, i) => {
    const im = new Image();
    im.decoding = "async";
    im.src = clipUrl(id, `/frames/${i}`);
    return im;
  });
  document.body.dataset.state = "clip";
  renderClip();
  setTab("clips");
}

async function reloadView() {
  if (!S.view) return;
  const v = await api(clipUrl(S.view.id));
  S.view = v;
  renderClip(false);
}

// --- spans and the selection -------------------------------------------------------------------

function spanIndexAt(i) {
  const t0 = S.view.times_ms[i];
  return Math.max(0, S.view.spans.findIndex((s) => t0 >= s.start_ms && t0 < s.end_ms));
}

function spanFrames(k) {
  const s = S.view.spans[k];
  const times = S.view.times_ms;
  let first = times.findIndex((x) => x >= s.start_ms);
  if (first < 0) first = times.length - 1;
  let last = first;
  while (last + 1 < times.length && times[last + 1] < s.end_ms) last++;
  return { first, last };
}

function labelAt(i) {
  if (i < 0 || i >= S.view.times_ms.length) return { smile: null, emotion: null };
  return { smile: S.view.smile[i], emotion: S.view.emotion[i] };
}

function selLabel() {
  const { first, last } = S.sel;
  const a = labelAt(first);
  for (let i = first + 1; i <= last; i++) {
    const b = labelAt(i);
    if (b.smile !== a.smile || b.emotion !== a.emotion) return null;
  }
  return a;
}

function select(first, last) {
  const n = S.view.times_ms.length;
  first = Math.max(0, Math.min(first, n - 1));
  last = Math.max(first, Math.min(last, n - 1));
  S.sel = { first, last };
  renderSelection();
  redraw();
}

// --- playing -----------------------------------------------------------------------------------

function seek(i) {
  if (!S.view) return;
  S.i = Math.max(0, Math.min(i, S.view.times_ms.length - 1));
  renderFrame();
}

function stop() {
  S.playing = false;
  clearTimeout(S.timer);
  $("#play").textContent = "▶";
}

function play() {
  if (!S.view) return;
  if (S.playing) { stop(); return; }
  if (S.i >= S.view.times_ms.length - 1) seek(0);
  S.playing = true;
  $("#play").textContent = "❚❚";
  const tick = () => {
    if (!S.playing) return;
    const times = S.view.times_ms;
    if (S.i >= times.length - 1) { stop(); return; }
    const dt = (times[S.i + 1] - times[S.i]) / Number($("#speed").value);
    S.timer = setTimeout(() => { seek(S.i + 1); tick(); }, dt);
  };
  tick();
}

// --- changes -----------------------------------------------------------------------------------

async function change(action, body) {
  if (!S.view || S.info.read_only) return null;
  const who = reviewer();
  if (!who) {
    showError(t("need_reviewer"));
    $("#who").focus();
    return null;
  }
  try {
    const r = await api(clipUrl(S.view.id, `/${action}`), { ...body, who });
    showError("");
    S.view = r.clip;
    $("#toast").textContent = t("toast_saved", { n: r.entry.n });
    const row = S.list.find((c) => c.id === r.clip.id);
    if (row) {
      row.edited = r.clip.edits > 0 || r.clip.clip_smile !== r.clip.manifest_clip_smile;
      row.excluded = r.clip.excluded;
      row.flagged = r.clip.flag !== null;
      renderList();
    }
    S.suspects = null;
    S.stats = null;
    renderClip(false);
    return r;
  } catch (e) {
    showError(e.message);
    return null;
  }
}

function relabel(labels, first = S.sel.first, last = S.sel.last) {
  return change("relabel", { first, last, ...labels });
}

/** Move the selected span's start ("start") or end ("end") to the playhead. */
async function moveBoundary(side) {
  if (!S.sel) return;
  const { first, last } = S.sel;
  const i = S.i;
  const own = labelAt(first);
  if (side === "start") {
    if (i < first) await relabel(own, i, first - 1); // grow left: the frames take our label
    else if (i > first && i <= last) await relabel(labelAt(first - 1), first, i - 1); // shrink
    else return;
    select(i, last);
  } else {
    if (i > last) await relabel(own, last + 1, i);
    else if (i >= first && i < last) await relabel(labelAt(last + 1), i + 1, last);
    else return;
    select(first, i);
  }
}

function cycleClipLabel() {
  const order = [1, 0, null];
  const k = order.indexOf(S.view.clip_smile);
  return change("clip-label", { value: order[(k + 1) % order.length] });
}

function toggleExclude() {
  return change("exclude", { excluded: !S.view.excluded });
}

function toggleFlag() {
  return change("flag", { note: S.view.flag === null ? $("#note").value : null });
}

// --- rendering: the list -----------------------------------------------------------------------

function visibleClips() {
  const q = $("#filter").value.trim().toLowerCase();
  if (!q) return S.list;
  return S.list.filter((c) => [c.id, c.subject, c.prompt, promptTitle(c.prompt)]
    .some((x) => x && String(x).toLowerCase().includes(q)));
}

function badges(c) {
  const out = [];
  if (c.error) out.push(el("span", { class: "badge bad", text: t("broken") }));
  if (c.edited) out.push(el("span", { class: "badge edited", text: t("badge_edited") }));
  if (c.excluded) out.push(el("span", { class: "badge excluded", text: t("badge_excluded") }));
  if (c.flagged) out.push(el("span", { class: "badge flagged", text: t("badge_flagged") }));
  return out;
}

function renderList() {
  const list = $("#clip-list");
  const sel = $("#clip-select");
  const current = S.view?.id;
  list.replaceChildren(...visibleClips().map((c) => el("li", {},
    el("button", {
      type: "button", class: `clip-item${c.id === current ? " current" : ""}${c.error ? " broken" : ""}`,
      "data-id": c.id, title: c.error || c.id, onclick: () => openClip(c.id),
    },
    el("span", { class: "dot", "data-label": c.clip_smile ?? "" }),
    el("span", { class: "clip-name" },
      el("strong", { text: promptTitle(c.prompt) || c.id }),
      el("small", { text: c.prompt ? c.id : (c.subject || "") })),
    el("span", { class: "clip-badges" }, ...badges(c))))));
  sel.replaceChildren(...visibleClips().map((c) => el("option", {
    value: c.id, text: `${promptTitle(c.prompt) || c.id}${c.edited ? " ✎" : ""}${c.excluded ? " ⊘" : ""}${c.flagged ? " ⚑" : ""}${c.error ? " ✕" : ""}`,
  })));
  if (current) sel.value = current;
  list.querySelector(".current")?.scrollIntoView({ block: "nearest" });
}

function renderProgress(p) {
  const box = $("#progress");
  box.textContent = p.error ? t("scoring_failed", { error: p.error })
    : p.done ? t("scored", { total: p.total }) : t("scoring", { done: p.scored, total: p.total });
  box.classList.toggle("busy", !p.done);
}

function renderSource() {
  const i = S.info;
  // a folder by its last name (the whole path in the tooltip and in the terminal)
  const short = i.read_only ? i.name : i.name.split("/").filter(Boolean).pop() || i.name;
  $("#source").title = i.read_only ? "" : i.sidecar;
  $("#source").replaceChildren(
    el("strong", { text: t("source", { name: short, n: i.clips }) }),
    el("br"),
    el("span", { class: "muted", text: i.read_only ? t("read_only", { note: i.note }) : t("sidecar", { path: `${short}/review.json` }) }));
}

// --- rendering: one clip -----------------------------------------------------------------------

function renderClip(scrollList = true) {
  const v = S.view;
  $("#clip-empty").hidden = !!v;
  if (!v) return;
  $("#clip-title").textContent = promptTitle(v.prompt) || v.id;
  const meta = [v.prompt ? v.id : null,
    v.subject ? t("participant_x", { x: v.subject }) : null,
    v.lighting ? t("lighting_x", { x: v.lighting }) : null,
    t("frames_n", { n: v.times_ms.length }),
    t("seconds_n", { s: secs(frameEnd(v.times_ms, v.times_ms.length - 1) - v.times_ms[0]) }),
    `${t("clip_label")}: ${clipLabelName(v.clip_smile)}`].filter(Boolean);
  $("#clip-meta").textContent = meta.join(" · ");
  const row = { edited: v.edits > 0 || v.clip_smile !== v.manifest_clip_smile,
    excluded: v.excluded, flagged: v.flag !== null };
  const extra = [];
  if (!v.scores) extra.push(el("span", { class: "badge", text: t("badge_unscored") }));
  if (S.queue) extra.push(el("span", { class: "badge queue", text: t("suspect_n", { i: S.queue.pos + 1, n: S.queue.items.length }) }));
  $("#badges").replaceChildren(...badges(row), ...extra);
  $("#exclude-label").textContent = t(v.excluded ? "include" : "exclude");
  $("#flag-label").textContent = t(v.flag !== null ? "unflag" : "flag");
  if (v.flag) $("#note").value = v.flag;
  $("#clip-label").value = v.clip_smile === null ? "" : String(v.clip_smile);
  $("#legend-score").textContent = t(v.score_source === "out-of-fold" ? "legend_oof" : "legend_score");
  $("#legend-thr").textContent = t("legend_thr", { t: S.info.model.threshold.toFixed(2) });
  $("#sheet-png").href = clipUrl(v.id, "/sheet.png?download=1");
  $("#sheet-png").setAttribute("download", `${v.id}.png`);
  renderSheet();
  renderLog();
  renderFrame();
  renderSelection();
  if (scrollList) renderList();
}

function renderFrame() {
  const v = S.view;
  if (!v) return;
  const i = S.i;
  const img = $("#frame");
  img.src = S.images[i]?.src || clipUrl(v.id, `/frames/${i}`);
  const p = v.scores ? v.scores[i] : undefined;
  const live = v.live ? v.live[i] : null;
  const parts = [t("seconds_n", { s: secs(v.times_ms[i]) }), smileName(v.smile[i])];
  if (v.emotion[i]) parts.push(emotionName(v.emotion[i]));
  if (p === null) parts.push(t("no_face"));
  else if (p !== undefined) parts.push(t("score_x", { p: p.toFixed(2) }));
  if (live !== null && live !== undefined) parts.push(t("live_x", { p: live.toFixed(2) }));
  const info = $("#frame-info");
  info.textContent = parts.join(" · ");
  info.dataset.label = v.smile[i] ?? "";
  info.dataset.scored = v.scores ? "1" : "0"; // the model's scores have arrived
  info.classList.toggle("hot", p !== null && p !== undefined && p >= S.info.model.threshold);
  $("#frame-no").textContent = t("frame_of", { i, n: v.times_ms.length - 1 });
  redraw();
}

function renderSelection() {
  const v = S.view;
  if (!v || !S.sel) return;
  const { first, last } = S.sel;
  const lab = selLabel();
  const label = lab ? [smileName(lab.smile), lab.emotion ? emotionName(lab.emotion) : null].filter(Boolean).join(", ") : t("sel_mixed");
  $("#sel-info").textContent = t("sel_span", {
    a: secs(v.times_ms[first]), b: secs(frameEnd(v.times_ms, last)), n: last - first + 1, label,
  });
  $("#sel-info").dataset.label = lab ? (lab.smile ?? "") : "mixed";
  const emo = $("#emotion");
  emo.replaceChildren(
    el("option", { value: "__keep", text: t("emotion_keep") }),
    el("option", { value: "", text: t("emotion_none") }),
    ...S.info.emotions.map((name) => el("option", { value: name, text: emotionName(name) })));
  emo.value = lab ? (lab.emotion ?? "") : "__keep";
}

function renderSheet() {
  const v = S.view;
  const n = v.times_ms.length;
  const k = Math.min(12, n);
  const t0 = v.times_ms[0];
  const t1 = v.times_ms[n - 1];
  const picks = new Set();
  for (let j = 0; j < k; j++) {
    const target = k === 1 ? t0 : t0 + (j * (t1 - t0)) / (k - 1);
    let best = 0;
    v.times_ms.forEach((x, i) => { if (Math.abs(x - target) < Math.abs(v.times_ms[best] - target)) best = i; });
    picks.add(best);
  }
  $("#sheet").replaceChildren(...[...picks].sort((a, b) => a - b).map((i) => {
    const p = v.scores ? v.scores[i] : undefined;
    return el("button", { type: "button", class: "thumb", "data-i": i, onclick: () => { stop(); seek(i); } },
      el("img", { src: clipUrl(v.id, `/frames/${i}`), alt: "", loading: "lazy" }),
      el("span", { class: "bar", "data-label": v.smile[i] ?? "" }),
      el("span", { class: "cap" },
        el("span", { text: `${secs(v.times_ms[i])} s` }),
        el("span", { class: p !== undefined && p !== null && p >= S.info.model.threshold ? "hot" : "",
          text: p === undefined ? "" : p === null ? t("no_face") : p.toFixed(2) })));
  }));
}

function describeOld(old) {
  if (!Array.isArray(old)) return "";
  return old.map((r) => smileName(r.smile) + (r.emotion ? `/${emotionName(r.emotion)}` : "")).join(", ");
}

function describeNew(nw) {
  const parts = [];
  if ("smile" in nw) parts.push(smileName(nw.smile));
  if ("emotion" in nw) parts.push(emotionName(nw.emotion));
  return parts.join("/");
}

function renderLog() {
  const log = [...S.view.log].reverse();
  if (!log.length) {
    $("#log").replaceChildren(el("li", { class: "muted", text: t("no_changes") }));
    return;
  }
  $("#log").replaceChildren(...log.map((e) => {
    const at = e.at.replace("T", " ").replace("Z", " UTC");
    const p = { who: e.who, at, n: e.undoes, note: e.new ? `“${e.new}”` : "" };
    if (e.action === "relabel") {
      Object.assign(p, { range: `${secs(e.start_ms)}–${secs(e.end_ms)}`, old: describeOld(e.old), new: describeNew(e.new) });
    } else if (e.action === "clip_label") {
      Object.assign(p, { old: clipLabelName(e.old), new: clipLabelName(e.new) });
    }
    return el("li", { "data-action": e.action }, el("span", { class: "n", text: `#${e.n}` }), ` ${t(`log_${e.action}`, p)}`);
  }));
}

const KEYS = [
  ["← →", "k_frame"], ["Home End", "k_ends"], ["Space", "k_play_d"], ["↑ ↓", "k_span"],
  ["I O", "k_inout"], ["Esc", "k_esc"], ["1 0 U", "k_label"], ["E", "k_emotion"],
  ["[ ]", "k_bounds"], ["C", "k_clip"], ["X", "k_exclude"], ["F", "k_flag"], ["Z", "k_undo"],
  ["J K", "k_clips"], ["🖱", "k_mouse"],
];

function renderKeys() {
  $("#keys").replaceChildren(...KEYS.flatMap(([keys, d]) => [
    el("dt", {}, ...keys.split(" ").map((k) => el("kbd", { text: k }))),
    el("dd", { text: t(d) })]));
}

function redraw() {
  if (!S.view) return;
  draw($("#timeline"), S.view, {
    i: S.i, sel: S.sel, threshold: S.info.model.threshold, emotionName,
    rowNames: { manifest: t("row_manifest"), labels: t("row_labels"), score: t("row_score") },
  });
}

// --- rendering: suspects and statistics --------------------------------------------------------

function table(head, rows) {
  return [el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows)];
}

async function renderSuspects() {
  const q = S.suspects || (S.suspects = await api("/api/suspects"));
  const m = q.model;
  const source = q.sources.includes("out-of-fold") ? t("src_oof")
    : t(m.in_sample ? "src_model_in" : "src_model", { name: m.name });
  const lead = [t("suspects_lead", { source, t1: fix(q.thresholds.smile), t0: fix(q.thresholds.non_smile), frames: q.frames.issues, scored: q.frames.scored })];
  if (m.in_sample) lead.push(t("suspects_in_sample"));
  if (!q.progress.done) lead.push(t("suspects_partial", { done: q.progress.scored, total: q.progress.total }));
  $("#suspects-lead").textContent = lead.join(" ");
  const spans = q.spans;
  $("#suspect-spans").replaceChildren(...table(
    [t("col_rank"), t("col_clip"), t("col_time"), t("col_label"), t("col_score"), t("col_share")],
    spans.length ? spans.map((s, k) => el("tr", { class: "pick", tabindex: "0", onclick: () => openSuspect(k) },
      el("td", { text: String(k + 1) }),
      el("td", {}, el("strong", { text: promptTitle(S.list.find((c) => c.id === s.clip)?.prompt) || s.clip }), el("br"), el("small", { text: s.clip })),
      el("td", { text: `${secs(s.start_ms)}–${secs(s.end_ms)}` }),
      el("td", {}, el("span", { class: "chip", "data-label": s.smile, text: smileName(s.smile) })),
      el("td", { text: fix(s.mean_prob) }),
      el("td", { text: `${s.issues}/${s.scored} (${pct(s.share)})` }))) : [el("tr", {}, el("td", { colspan: "6", class: "muted", text: t("no_suspects") }))]));
  $("#suspect-clips").replaceChildren(...table(
    [t("col_clip"), t("col_clip_label"), t("col_clip_score"), t("col_share")],
    q.clips.length ? q.clips.map((c) => el("tr", { class: "pick", tabindex: "0", onclick: () => openClip(c.clip) },
      el("td", {}, el("strong", { text: promptTitle(S.list.find((x) => x.id === c.clip)?.prompt) || c.clip }), el("br"), el("small", { text: c.clip })),
      el("td", {}, el("span", { class: `chip${c.clip_label_issue ? " suspect" : ""}`, "data-label": c.clip_smile, text: clipLabelName(c.clip_smile < 0 ? null : c.clip_smile) })),
      el("td", { text: fix(c.clip_prob) }),
      el("td", { text: `${c.issues}/${c.scored} (${pct(c.share)})` }))) : [el("tr", {}, el("td", { colspan: "4", class: "muted", text: t("no_suspects") }))]));
  $("#flagged").replaceChildren(...(q.flagged.length ? q.flagged.map((f) => el("li", {},
    el("a", { href: `#clip=${enc(f.clip)}`, onclick: (e) => { e.preventDefault(); openClip(f.clip); }, text: f.clip }),
    f.note ? ` — ${f.note}` : "")) : [el("li", { class: "muted", text: t("no_flagged") })]));
}

async function openSuspect(k) {
  const items = S.suspects.spans;
  if (!items.length) return;
  k = (k + items.length) % items.length;
  const s = items[k];
  await openClip(s.clip, { first: s.first, last: s.last }, true);
  S.queue = { items, pos: k };
  renderClip(false);
}

async function renderStats() {
  const st = S.stats || (S.stats = await api("/api/stats"));
  const o = st.overall;
  const chip = (n, key) => el("div", { class: "stat" }, el("strong", { text: String(n) }), el("span", { text: t(key) }));
  $("#overall").replaceChildren(chip(o.clips, "ov_clips"), chip(o.frames, "ov_frames"),
    chip((o.seconds / 60).toFixed(1), "ov_minutes"), chip(o.participants, "ov_participants"),
    chip(o.edited, "ov_edited"), chip(o.excluded, "ov_excluded"), chip(o.flagged, "ov_flagged"),
    chip(st.broken, "ov_broken"));
  $("#stats-note").textContent = t("stats_note", { t: st.threshold.toFixed(3) });
  const cols = ["clips", "frames", "seconds", "smile", "non_smile", "unknown", "excluded", "flagged", "edited", "face_share", "agreement"];
  const name = (by, key) => {
    if (key === null) return t("none");
    if (by === "prompt") return promptTitle(key);
    if (by === "clip_label") return key === "laughed" ? t("laughed") : key === "did_not_laugh" ? t("did_not_laugh") : t("unknown");
    return key;
  };
  const section = (title, head, rows, by = "") => el("section", { class: "stats-table" },
    el("h2", { text: title }),
    el("div", { class: "table-wrap" }, el("table", { class: "grid num", "data-by": by }, ...table(head, rows))));
  const cell = (g, c) => el("td", { text: c === "face_share" || c === "agreement" ? pct(g[c]) : String(g[c]) });
  const tables = ["participant", "lighting", "prompt", "clip_label"].map((by) => section(
    t(`by_${by}`), ["", ...cols.map((c) => t(`c_${c}`))],
    st.by[by].map((g) => el("tr", {}, el("th", { text: name(by, g.key) }), ...cols.map((c) => cell(g, c)))), by));
  const emo = section(t("by_emotion"), ["", t("c_frames")], st.emotion.map((g) => el("tr", {},
    el("th", { text: g.key ? emotionName(g.key) : t("none") }), el("td", { text: String(g.frames) }))));
  $("#stats-tables").replaceChildren(...tables, emo);
}

// --- tabs --------------------------------------------------------------------------------------

function setTab(tab) {
  document.body.dataset.tab = tab;
  for (const b of document.querySelectorAll(".tabs button")) b.setAttribute("aria-selected", String(b.dataset.tab === tab));
  for (const v of document.querySelectorAll(".view")) v.hidden = v.dataset.view !== tab;
  if (tab === "suspects") renderSuspects().catch((e) => showError(e.message));
  if (tab === "stats") renderStats().catch((e) => showError(e.message));
  if (tab === "clips") requestAnimationFrame(redraw);
}

// --- keyboard and pointer ----------------------------------------------------------------------

function nextClip(step) {
  if (S.queue) { openSuspect(S.queue.pos + step); return; }
  const list = visibleClips().filter((c) => !c.error);
  if (!list.length) return;
  const k = list.findIndex((c) => c.id === S.view?.id);
  openClip(list[(k + step + list.length) % list.length].id);
}

function onKey(e) {
  const tag = e.target.tagName;
  if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") {
    if (e.key === "Escape") e.target.blur();
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z" && S.view) { e.preventDefault(); change("undo", {}); }
    return;
  }
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  if (key === "j") { nextClip(1); return; }
  if (key === "k") { nextClip(-1); return; }
  if (!S.view || document.body.dataset.tab !== "clips") return;
  const n = S.view.times_ms.length;
  const actions = {
    ArrowLeft: () => { stop(); seek(S.i - (e.shiftKey ? 10 : 1)); },
    ArrowRight: () => { stop(); seek(S.i + (e.shiftKey ? 10 : 1)); },
    Home: () => { stop(); seek(0); },
    End: () => { stop(); seek(n - 1); },
    " ": play,
    ArrowUp: () => { const k = spanIndexAt(S.sel ? S.sel.first : S.i) - 1; if (k >= 0) { const f = spanFrames(k); seek(f.first); select(f.first, f.last); } },
    ArrowDown: () => { const k = spanIndexAt(S.sel ? S.sel.last : S.i) + 1; if (k < S.view.spans.length) { const f = spanFrames(k); seek(f.first); select(f.first, f.last); } },
    Escape: () => { const f = spanFrames(spanIndexAt(S.i)); select(f.first, f.last); },
    i: () => select(S.i, Math.max(S.i, S.sel ? S.sel.last : S.i)),
    o: () => select(Math.min(S.i, S.sel ? S.sel.first : S.i), S.i),
    1: () => relabel({ smile: 1 }),
    0: () => relabel({ smile: 0 }),
    u: () => relabel({ smile: null }),
    e: () => $("#emotion").focus(),
    "[": () => moveBoundary("start"),
    "]": () => moveBoundary("end"),
    c: cycleClipLabel,
    x: toggleExclude,
    f: toggleFlag,
    z: () => change("undo", {}),
  };
  const fn = actions[key];
  if (fn) {
    e.preventDefault();
    fn();
  }
}

function wirePointer() {
  const canvas = $("#timeline");
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return frameAt(S.view, layout(r.width, r.height), e.clientX - r.left);
  };
  canvas.addEventListener("pointerdown", (e) => {
    if (!S.view) return;
    stop();
    canvas.setPointerCapture(e.pointerId);
    const i = at(e);
    S.drag = { from: i, moved: false };
    seek(i);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!S.drag) return;
    const i = at(e);
    if (i !== S.drag.from) S.drag.moved = true;
    if (S.drag.moved) { select(Math.min(S.drag.from, i), Math.max(S.drag.from, i)); seek(i); }
  });
  canvas.addEventListener("pointerup", (e) => {
    if (!S.drag) return;
    if (!S.drag.moved) { const f = spanFrames(spanIndexAt(at(e))); select(f.first, f.last); }
    S.drag = null;
  });
}

// --- start -------------------------------------------------------------------------------------

function wire() {
  for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => setTab(b.dataset.tab));
  $("#prev-frame").addEventListener("click", () => { stop(); seek(S.i - 1); });
  $("#next-frame").addEventListener("click", () => { stop(); seek(S.i + 1); });
  $("#play").addEventListener("click", play);
  $("#set-smile").addEventListener("click", () => relabel({ smile: 1 }));
  $("#set-non").addEventListener("click", () => relabel({ smile: 0 }));
  $("#set-unknown").addEventListener("click", () => relabel({ smile: null }));
  $("#emotion").addEventListener("change", (e) => {
    const v = e.target.value;
    if (v !== "__keep") relabel({ emotion: v || null });
    e.target.blur();
  });
  $("#clip-label").addEventListener("change", (e) => {
    const v = e.target.value;
    change("clip-label", { value: v === "" ? null : Number(v) });
    e.target.blur();
  });
  $("#exclude").addEventListener("click", toggleExclude);
  $("#flag").addEventListener("click", toggleFlag);
  $("#undo").addEventListener("click", () => change("undo", {}));
  $("#filter").addEventListener("input", renderList);
  $("#clip-select").addEventListener("change", (e) => openClip(e.target.value));
  const who = $("#who");
  who.value = localStorage.getItem(WHO_KEY) || "";
  who.addEventListener("change", () => { localStorage.setItem(WHO_KEY, who.value.trim()); showError(""); });
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", redraw);
  wirePointer();
}

function rerender() {
  renderKeys();
  if (S.info) renderSource();
  renderList();
  if (S.view) renderClip(false);
  if (document.body.dataset.tab !== "clips") setTab(document.body.dataset.tab);
}

async function poll() {
  try {
    const p = await refreshList();
    if (S.view && !S.view.scores && S.list.find((c) => c.id === S.view.id)?.scored) await reloadView();
    if (!p.done) setTimeout(poll, POLL_MS);
    else { S.suspects = null; S.stats = null; if (document.body.dataset.tab !== "clips") setTab(document.body.dataset.tab); }
  } catch (e) {
    showError(e.message);
  }
}

async function main() {
  apply();
  wireSwitch($("#lang"), rerender);
  wire();
  renderKeys();
  try {
    await loadPrompts();
    S.info = await api("/api/info");
    if (S.info.reviewer && !$("#who").value) $("#who").value = S.info.reviewer;
    document.body.classList.toggle("read-only", S.info.read_only);
    renderSource();
    await refreshList();
    const want = decodeURIComponent((location.hash.match(/clip=([^&]+)/) || [])[1] || "");
    const first = S.list.find((c) => c.id === want && !c.error) || S.list.find((c) => !c.error);
    if (first) await openClip(first.id);
    else { document.body.dataset.state = "empty"; $("#clip-empty").hidden = false; }
    if (!S.info.progress.done) setTimeout(poll, POLL_MS);
  } catch (e) {
    showError(e.message);
  }
  document.body.dataset.ready = "1";
}

main();
