// The room page: join (player or spectator), camera + on-device detector, the video mesh,
// and the game as the server runs it. The page renders the latest `room` snapshot; the
// server decides everything (calibration, rounds, verdicts) from the scores we stream.
// Video goes only to the other browsers (rtc.js); the server gets {t_ms, face, smile_prob}.
// The same scores go through judge.js here (local_judge.js), so the player's own meter
// and "almost laughed" cue show what the server's judge will decide.

import { $, Meter, api, deviceKey, el, errorText, nickname, openCamera, pct, seats, showError as showErrorLine, startDetector, takeNickname } from "./common.js";
import { apply, t, wireSwitch } from "./i18n.js";
import { showInvite, wireInvite } from "./invite.js";
import { LocalJudge } from "./local_judge.js";
import { Mesh } from "./rtc.js";
import { CameraBlockedError, cameraBlocked, showBlocked } from "./secure.js";

// Scores go out at the server's limits.score_hz (every other frame of a 30 fps camera at
// 15 Hz); frame times jitter by a fraction of a millisecond, hence the slack.
const SCORE_SLACK_MS = 1;
const FATAL = { 4401: "bad_token", 4404: "no_room", 4409: "replaced", 1000: "left" };
const GOING_AWAY = 1001; // the server is restarting: reconnect, and say so

const code = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "").toUpperCase();
const params = new URLSearchParams(location.search);

// Everything this page knows, in one place.
const state = {
  seat: null, // {token, role}
  me: null, // MemberView from welcome
  room: null, // latest RoomView
  judge: null, // the server's judge rules (welcome.judge; threshold for meters before calibration)
  localJudge: new LocalJudge(), // this player's own laugh, judged here on the scores we send
  scoreEveryMs: null, // 1000 / welcome.limits.score_hz
  ws: null,
  stream: null, // this player's camera
  detector: null,
  mesh: null,
  tiles: new Map(), // member id -> {node, video, meter, name, badge, score}
  streams: new Map(), // peer id -> MediaStream
  deadline: null, // performance.now() when the current phase ends
  receivedAt: 0,
  lastSent: -Infinity,
  retry: 0,
  done: false, // a fatal close: stop reconnecting
  phase: null,
  detectorRunning: false, // the first detector result arrived
  watchKey: null, // players: the key of this room's watch link (welcome.watch_key)
  lastError: null, // code of the last error the server sent
};

// --- errors and flashes ----------------------------------------------------------------------

let errorTimer = null;
function showError(msg, sticky = false) {
  showErrorLine(msg);
  clearTimeout(errorTimer);
  if (msg && !sticky) errorTimer = setTimeout(() => { $("#error").hidden = true; }, 6000);
}

let flashTimer = null;
function flash(msg) {
  const f = $("#flash");
  f.textContent = msg;
  f.classList.add("on");
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => f.classList.remove("on"), 1500);
}

// --- joining ----------------------------------------------------------------------------------

async function join(role) {
  const nick = takeNickname($("#nickname"), showError);
  if (!nick) return;
  try {
    const body = { nickname: nick, role, device_key: deviceKey() };
    if (params.get("watch")) body.watch_key = params.get("watch");
    const j = await api(`/api/rooms/${code}/join`, body);
    state.seat = { token: j.token, role: j.role };
    seats.save(code, state.seat);
    await enter();
  } catch (e) {
    showError(errorText(e), true);
  }
}

async function resumeSeat() {
  const session = seats.session(code);
  if (session) return session;
  const remembered = seats.remembered(code);
  if (!remembered.length) return null;
  try {
    const j = await api(`/api/rooms/${code}/resume`, { tokens: remembered.map((s) => s.token) });
    const seat = { token: j.token, role: j.role };
    seats.save(code, seat);
    return seat;
  } catch {
    return null;
  }
}

async function enter() {
  $("#join-panel").hidden = true;
  $("#game").hidden = false;
  showError("");
  if (state.seat.role === "player" && !state.stream) {
    try {
      state.stream = await openCamera();
    } catch (e) {
      if (e instanceof CameraBlockedError) explainBlocked();
      else showError(`${t("camera_failed", { error: e.message })} ${t("camera_needed")}`, true);
    }
    if (state.stream) startDetectorLater();
  }
  if (state.seat.role === "spectator") $("#detector-status").textContent = t("spectating");
  connect();
}

function startDetectorLater() {
  $("#detector-status").textContent = t("detector_loading");
  startDetector(state.stream).then((det) => {
    state.detector = det;
    $("#detector-status").textContent = "";
    det.onresult = onResult;
    det.onerror = (e) => console.warn("detector:", e);
  }, (e) => {
    $("#detector-status").textContent = t("detector_failed", { error: e.message });
  });
}

function onResult(r) {
  if (!state.detectorRunning) {
    state.detectorRunning = true;
    render();
  }
  if (state.me) state.tiles.get(state.me.id)?.meter.set(r.face, r.smile_prob);
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN || state.me?.role !== "player") return;
  if (r.t_ms - state.lastSent < state.scoreEveryMs - SCORE_SLACK_MS) return;
  state.lastSent = r.t_ms;
  const score = { t_ms: r.t_ms, face: r.face, smile_prob: r.face ? r.smile_prob : null };
  send({ type: "score", ...score });
  judgeLocally(score);
}

/** The score just sent, through the server's judge rules: own meter and "almost" cue. */
function judgeLocally({ t_ms, face, smile_prob }) {
  let events;
  try {
    events = state.localJudge.push(t_ms, face, smile_prob);
  } catch (e) { // a sample the judge refuses (e.g. time going backwards): start afresh
    console.warn("local judge:", e);
    state.localJudge.reset();
    return;
  }
  if (state.phase === "round" && events.some((ev) => ev.type === "laugh_start")) flash(t("almost_you"));
  state.tiles.get(state.me.id)?.meter.setLaugh(state.localJudge.laugh);
}

// --- the socket -------------------------------------------------------------------------------

function send(msg) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(msg));
}

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/rooms/${code}`);
  state.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ type: "hello", token: state.seat.token }));
  ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
  ws.onclose = (ev) => {
    if (state.ws !== ws) return;
    state.mesh?.closeAll();
    state.streams.clear();
    const fatal = FATAL[ev.code];
    if (fatal === "bad_token") {
      seats.forget(code, state.seat.token);
      state.done = true;
      location.reload(); // show the join form again
      return;
    }
    if (fatal || state.done) {
      state.done = true;
      if (fatal === "replaced") showError(t("replaced"), true);
      if (fatal === "no_room") {
        showError(state.lastError === "server_restarted" ? t("err_server_restarted") : t("no_room", { code }), true);
      }
      return;
    }
    showError(ev.code === GOING_AWAY ? t("err_server_restarting") : t("reconnecting"), true);
    state.retry = Math.min(state.retry + 1, 5);
    setTimeout(connect, 500 * state.retry);
  };
}

function onMessage(msg) {
  switch (msg.type) {
    case "welcome":
      state.scoreEveryMs = scoreInterval(msg.limits); // first: a bad value sends nothing
      state.me = msg.you;
      state.watchKey = msg.watch_key ?? null;
      state.judge = msg.judge;
      state.localJudge.configure(msg.judge, msg.you.threshold ?? null);
      state.retry = 0;
      showError("");
      state.mesh?.closeAll();
      state.mesh = new Mesh({
        role: state.me.role,
        iceServers: msg.ice_servers,
        iceTransportPolicy: msg.ice_transport_policy,
        stream: state.stream,
        send: (to, m) => send({ type: "signal", to, ...m }),
        onstream: (id, stream) => { state.streams.set(id, stream); render(); },
      });
      for (const peer of msg.peers) state.mesh.call(peer).catch((e) => console.warn("call", e));
      break;
    case "room":
      onRoom(msg.room);
      break;
    case "peer_left":
      state.mesh?.close(msg.id);
      state.streams.delete(msg.id);
      render();
      break;
    case "peer_joined":
      break; // the newcomer calls us
    case "signal":
      state.mesh?.onsignal(msg).catch((e) => console.warn("signal", e));
      break;
    case "score":
      state.tiles.get(msg.player)?.meter.set(msg.face, msg.smile_prob);
      break;
    case "judge":
      onJudge(msg.event);
      break;
    case "ping":
      send({ type: "pong", server_ms: msg.server_ms, t_ms: performance.now() });
      break;
    case "error":
      state.lastError = msg.code;
      if (msg.code === "replaced") state.done = true;
      showError(errorText(msg), msg.code === "replaced" || msg.code.startsWith("server_"));
      break;
  }
}

function scoreInterval(limits) {
  const hz = limits?.score_hz;
  if (!(typeof hz === "number" && hz > 0)) throw new Error(`welcome: limits.score_hz must be a number > 0, got ${JSON.stringify(hz)}`);
  return 1000 / hz;
}

function nameOf(id) {
  return state.room?.members.find((m) => m.id === id)?.nickname ?? "?";
}

function onJudge(ev) {
  // our own laugh_start was flashed already, by the local judge on the same sample
  if (ev.type === "laugh_start" && ev.player !== state.me?.id) flash(t("almost", { name: nameOf(ev.player) }));
  else if (ev.type === "face_lost") flash(t("face_lost", { name: nameOf(ev.player) }));
}

function onRoom(room) {
  const prev = state.phase;
  state.room = room;
  state.receivedAt = performance.now();
  state.deadline = room.phase_left_ms === null ? null : state.receivedAt + room.phase_left_ms;
  state.phase = room.phase;
  const me = room.members.find((m) => m.id === state.me?.id);
  state.localJudge.configure(state.judge, me?.threshold ?? null); // calibrated: a new timeline
  if (prev !== room.phase && (room.phase === "calibrating" || room.phase === "round")) {
    state.detector?.reset(); // a fresh streaming window for calibration and each round
    state.localJudge.reset(); // and a fresh judge timeline, as the server starts one
  }
  render();
}

// --- rendering --------------------------------------------------------------------------------

function tileFor(m) {
  let tile = state.tiles.get(m.id);
  if (tile) return tile;
  const video = el("video", { autoplay: true, playsinline: true });
  const meter = new Meter();
  const name = el("span", { class: "name" });
  const badge = el("span", { class: "badge" });
  const score = el("span", { class: "score" });
  // without video: the player's initial (an emoji would need an emoji font on the device)
  const initial = el("span", { class: "initial", "aria-hidden": "true" });
  const node = el("figure", { class: "tile", "data-id": m.id },
    el("div", { class: "video" }, video, el("div", { class: "noimg" }, initial)),
    el("figcaption", {}, name, badge, score), meter.node);
  tile = { node, video, meter, name, badge, score, initial };
  state.tiles.set(m.id, tile);
  return tile;
}

function attach(video, stream, muted) {
  if (video.srcObject === stream) return;
  video.srcObject = stream;
  video.muted = muted;
  video.play().catch(() => { video.muted = true; video.play().catch(() => {}); });
}

function secondsLeft() {
  return state.deadline === null ? 0 : Math.max(0, Math.ceil((state.deadline - performance.now()) / 1000));
}

function names(ids) {
  return ids.map(nameOf).join(", ");
}

function verdictText(v) {
  if (!v) return "";
  if (v.status === "draw") return t("draw");
  const laughers = v.losers.filter((l) => l.reason !== "absent");
  const hiders = v.losers.filter((l) => l.reason === "absent");
  const parts = [];
  if (laughers.length) {
    const peak = Math.max(...laughers.map((l) => l.peak_prob ?? 0));
    parts.push(t("laughed", { names: laughers.map((l) => l.nickname).join(", "), p: pct(peak) }));
  }
  if (hiders.length) parts.push(t("hid", { names: hiders.map((l) => l.nickname).join(", ") }));
  return parts.join(" · ");
}

function renderBanner() {
  const room = state.room;
  if (!room) return;
  const players = room.members.filter((m) => m.role === "player");
  let text = "", big = "", progress = null;
  const total = room.phase_ms || 0;
  const left = state.deadline === null ? 0 : Math.max(0, state.deadline - performance.now());
  switch (room.phase) {
    case "lobby":
      text = players.length < 2 ? t("phase_lobby_need") : t("phase_lobby");
      break;
    case "calibrating":
      text = t("phase_calibrating", { s: secondsLeft() });
      progress = total ? 1 - left / total : null;
      break;
    case "countdown":
      text = t("phase_countdown");
      big = String(Math.max(1, secondsLeft()));
      break;
    case "round": {
      text = room.waiting_for.length ? t("waiting_for") : t("phase_round");
      const s = secondsLeft();
      big = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
      progress = total ? 1 - left / total : null;
      break;
    }
    case "verdict":
      text = t("round_n", { n: room.round });
      big = verdictText(room.last_verdict);
      break;
    case "paused": {
      const away = room.members.filter((m) => room.paused_for.includes(m.id));
      text = t("phase_paused", { names: away.map((m) => m.nickname).join(", "), s: secondsLeft() });
      break;
    }
    case "match_over": {
      text = `${t("phase_match_over")} · ${verdictText(room.last_verdict)}`;
      const w = room.winners.map(nameOf);
      big = !w.length ? t("match_draw") : t(w.length > 1 ? "winners" : "winner", { names: w.join(", ") });
      break;
    }
  }
  $("#phase-text").textContent = text;
  $("#big").textContent = big;
  const bar = $("#progress");
  bar.hidden = progress === null;
  if (progress !== null) bar.firstElementChild.style.width = `${Math.round(progress * 100)}%`;
  const saved = $("#saved");
  if (room.phase === "match_over" && room.match_id !== null && !saved) {
    $("#banner").append(el("a", { id: "saved", class: "saved", href: `/history#m${room.match_id}`, text: t("saved") }));
  } else if (room.phase !== "match_over" && saved) {
    saved.remove();
  }
}

function render() {
  const room = state.room;
  if (!room || !state.me) return;
  document.body.dataset.phase = room.phase;
  const me = room.members.find((m) => m.id === state.me.id);
  const players = room.members.filter((m) => m.role === "player");
  const tiles = $("#tiles");
  const keep = new Set();
  for (const m of players) {
    const tile = tileFor(m);
    keep.add(m.id);
    tile.name.textContent = m.id === state.me.id ? `${m.nickname} (${t("you")})` : m.nickname;
    tile.score.textContent = String(m.score);
    let badge = "";
    if (m.status === "forfeit") badge = t("forfeit");
    else if (!m.connected) badge = t("away", { s: Math.ceil((m.grace_left_ms ?? 0) / 1000) });
    else if (m.ready && (room.phase === "lobby" || room.phase === "match_over")) badge = t("ready_mark");
    tile.badge.textContent = badge;
    tile.initial.textContent = [...m.nickname.trim()][0]?.toUpperCase() ?? "?";
    tile.node.classList.toggle("away", !m.connected);
    if (!m.connected) tile.meter.set(false, null); // no stale score under an empty seat
    tile.node.classList.toggle("me", m.id === state.me.id);
    const loser = room.phase === "verdict" && room.last_verdict?.losers.some((l) => l.player === m.id);
    tile.node.classList.toggle("lost", Boolean(loser));
    tile.node.classList.toggle("winner", room.phase === "match_over" && room.winners.includes(m.id));
    tile.meter.setThreshold(m.threshold ?? state.judge?.threshold ?? null);
    if (m.id === state.me.id && m.role === "player") tile.meter.node.title = t("meter_judge");
    const stream = m.id === state.me.id ? state.stream : state.streams.get(m.id);
    tile.node.classList.toggle("novideo", !stream);
    if (stream) attach(tile.video, stream, m.id === state.me.id);
    if (tile.node.parentElement !== tiles) tiles.append(tile.node);
  }
  for (const [id, tile] of state.tiles) {
    if (!keep.has(id)) {
      tile.node.remove();
      state.tiles.delete(id);
    }
  }
  // controls
  const canReady = me && me.role === "player" && (room.phase === "lobby" || room.phase === "match_over");
  const ready = $("#ready");
  ready.hidden = !canReady;
  ready.disabled = !state.detectorRunning; // calibration needs this page's smile scores
  if (canReady) {
    ready.textContent = me.ready ? t("not_ready") : room.phase === "match_over" ? t("rematch") : t("ready");
    ready.dataset.ready = me.ready ? "1" : "0";
  }
  const nspec = room.members.filter((m) => m.role === "spectator").length;
  $("#spectators").textContent = nspec ? t("spectators", { n: nspec }) : "";
  $("#invite").hidden = !(room.phase === "lobby" || room.phase === "match_over");
  renderWatch(room);
  // scoreboard
  const board = $("#scoreboard");
  board.replaceChildren(
    el("div", { class: "muted", text: `${room.round ? t("round_n", { n: room.round }) + " · " : ""}${t("first_to", { n: room.rounds_to_win })}` }),
    el("ol", {}, ...players.map((m) => el("li", { "data-id": m.id },
      el("span", { text: m.nickname }), el("strong", { text: String(m.score) }))))
  );
  renderBanner();
}

/** Who may watch: the host's switch, and the watch link while spectating is invite-only. */
function renderWatch(room) {
  const host = room.host === state.me?.id;
  const invite = room.spectating === "invite";
  $("#watch").hidden = $("#invite").hidden || !(host || (invite && state.watchKey));
  $("#invite-only-row").hidden = !host;
  $("#invite-only").checked = invite;
  $("#watch-row").hidden = !(invite && state.watchKey);
  if (state.watchKey) {
    const url = new URL(`/r/${code}`, location.origin);
    url.search = new URLSearchParams({ spectate: "1", watch: state.watchKey }).toString();
    $("#watch-link").value = url.href;
  }
}

// --- wiring -----------------------------------------------------------------------------------

/** Over http:// from another device there is no camera API: say why, above everything. */
function explainBlocked() {
  showBlocked(document.body, t, $("#join-panel"));
}

async function main() {
  apply();
  const blocked = cameraBlocked();
  const title = () => { $("#room-title").textContent = t("room_title", { code }); };
  wireSwitch($("#lang"), () => { title(); render(); if (blocked) explainBlocked(); });
  title();
  if (blocked) explainBlocked();
  $("#join-player").disabled = blocked; // watching needs no camera
  wireInvite();
  $("#ready").addEventListener("click", () => send({ type: "ready", ready: $("#ready").dataset.ready !== "1" }));
  $("#invite-only").addEventListener("change", (ev) => send({ type: "spectating", mode: ev.target.checked ? "invite" : "open" }));
  $("#copy-watch").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText($("#watch-link").value); } catch { $("#watch-link").select(); }
  });
  $("#leave").addEventListener("click", () => {
    send({ type: "leave" });
    state.done = true;
    if (state.seat) seats.forget(code, state.seat.token);
    location.href = "/";
  });
  $("#join-player").addEventListener("click", () => join("player"));
  $("#join-spectator").addEventListener("click", () => join("spectator"));
  setInterval(renderBanner, 200);

  try {
    await api(`/api/rooms/${encodeURIComponent(code)}`);
    showInvite(code).catch((e) => console.warn("invite", e));
  } catch (e) {
    showError(e.status === 404 ? t("no_room", { code }) : errorText(e), true);
    return;
  }
  state.seat = await resumeSeat();
  if (state.seat) {
    await enter();
    return;
  }
  $("#nickname").value = nickname.get();
  $("#join-panel").hidden = false;
  document.body.dataset.phase = "join";
  const spectate = params.get("spectate") === "1";
  if (params.get("auto") === "1" && nickname.get() && (spectate || !blocked)) await join(spectate ? "spectator" : "player");
}

main();
