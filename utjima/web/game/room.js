// The room page: join (player or spectator), camera + on-device detector, the video mesh,
// and the game as the server runs it. The page renders the latest `room` snapshot; the
// server decides everything (calibration, the straight-face gate, rounds, verdicts) from
// the scores we stream. Video goes only to the other browsers (rtc.js), and so does the
// laugh replay (replay.js); the server gets {t_ms, face, smile_prob}.
// The same scores go through judge.js here (local_judge.js), so the player's own meter
// and "almost laughed" cue show what the server's judge will decide.

import { $, Meter, api, cameraError, deviceKey, el, nickname, openCamera, pct, seats, showError as showErrorLine, startDetector, takeNickname } from "./common.js";
import { apply, errorText, t } from "./i18n.js";
import { showInvite, wireInvite } from "./invite.js";
import { LocalJudge, cueOf, laughAfter } from "./local_judge.js";
import { ClipPlayer, ClipReceiver, ClipRecorder, replayPrefs, sendClip } from "./replay.js";
import { Mesh } from "./rtc.js";
import { cameraBlocked, showBlocked } from "./secure.js";
import { sound } from "./sound.js";
import { chrome } from "./ui.js";

// Scores go out at the server's limits.score_hz (every other frame of a 30 fps camera at
// 15 Hz); frame times jitter by a fraction of a millisecond, hence the slack.
const SCORE_SLACK_MS = 1;
const FATAL = { 4401: "bad_token", 4403: "kicked", 4404: "no_room", 4409: "replaced", 1000: "left" };
const GOING_AWAY = 1001; // the server is restarting: reconnect, and say so
const REACTIONS = ["😂", "😐", "🔥", "👏", "😱", "🤫"];
const ROUND_LENGTHS_S = [15, 30, 45, 60];
const BETWEEN = new Set(["lobby", "match_over"]); // phases where Ready and the settings count

const blocked = cameraBlocked(); // http:// from another device: no camera API at all
const code = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "").toUpperCase();
const params = new URLSearchParams(location.search);

// Everything this page knows, in one place.
const state = {
  seat: null, // {token, role}
  me: null, // MemberView from welcome
  room: null, // latest RoomView
  info: null, // RoomInfo from the API (the join panel)
  judge: null, // the server's judge rules (welcome.judge; threshold for meters before calibration)
  localJudge: new LocalJudge(), // this player's own laugh, judged here on the scores we send
  scoreEveryMs: null, // 1000 / welcome.limits.score_hz
  ws: null,
  stream: null, // this player's camera
  cameraError: null, // why it is missing (cameraError codes), null when it works
  micOn: true,
  camOn: true,
  detector: null,
  mesh: null,
  recorder: null, // ClipRecorder: the last seconds of this camera, for the laugh replay
  receiver: null, // ClipReceiver
  player: null, // ClipPlayer on the replay card
  clips: new Map(), // peer id -> last clip received {round, ...}
  tiles: new Map(), // member id -> {node, video, meter, name, badge, score, cue, ...}
  streams: new Map(), // peer id -> MediaStream
  probs: new Map(), // member id -> last smile_prob (null: no face)
  laughs: new Map(), // member id -> laugh state in this round (laughAfter)
  deadline: null, // performance.now() when the current phase ends
  lastSent: -Infinity,
  retry: 0,
  done: false, // a fatal close: stop reconnecting
  phase: null,
  shownSecond: null, // countdown number last shown (one beep each)
  detectorRunning: false, // the first detector result arrived
  watchKey: null, // players: the key of this room's watch link (welcome.watch_key)
  lastError: null, // code of the last error the server sent
  straightSinceMs: null, // page time our face went straight (steady phase, shown to us)
  sentReplayFor: 0, // round whose clip we sent
};

// --- errors and flashes ----------------------------------------------------------------------

let errorTimer = null;
function showError(msg, sticky = false) {
  showErrorLine(msg);
  clearTimeout(errorTimer);
  if (msg && !sticky) errorTimer = setTimeout(() => { $("#error").hidden = true; }, 6000);
}

let flashTimer = null;
function flash(msg, ms = 2500) {
  const f = $("#flash");
  f.textContent = msg;
  f.classList.add("on");
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => f.classList.remove("on"), ms);
}

/** Restart a CSS animation on `node` (class `name`). */
function animate(node, name) {
  node.classList.remove(name);
  void node.offsetWidth; // reflow, so the animation runs again
  node.classList.add(name);
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
    showError(errorText(e.code, e.message), true);
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

/** The invite panel: who invited you to what, and your camera before you join. */
async function showJoinPanel() {
  const info = state.info;
  $("#invited-title").textContent = info.host ? t("invited_by", { name: info.host }) : t("invited");
  const n = info.players.length;
  $("#invite-rules").textContent = t("rules_line", {
    rules: t("first_to", { n: info.rounds_to_win }), s: Math.round(info.round_ms / 1000),
    n: t(n === 1 ? "n_player" : "n_players", { n }) });
  $("#nickname").value = nickname.get();
  $("#join-panel").hidden = false;
  document.body.dataset.phase = "join";
  if (params.get("spectate") === "1") $("#preview-start").hidden = false; // no camera to watch
  else if (!blocked) await preview(); // blocked: the card above says why
}

async function preview() {
  const status = $("#preview-status");
  $("#preview-start").hidden = true;
  try {
    state.stream = state.stream || await openCamera();
    state.cameraError = null;
    $("#join-preview").srcObject = state.stream;
    status.textContent = t("preview_hint");
    status.classList.remove("error");
  } catch (e) {
    state.cameraError = cameraError(e);
    status.textContent = t(`camera_err_${state.cameraError}`);
    status.classList.add("error");
    $("#preview-start").hidden = false;
  }
}

async function enter() {
  $("#join-panel").hidden = true;
  $("#game").hidden = false;
  showError("");
  if (state.seat.role === "player") {
    if (!state.stream) await openOwnCamera();
    if (state.stream) startDetectorLater();
  } else {
    for (const tr of state.stream?.getTracks() ?? []) tr.stop(); // a spectator sends nothing
    state.stream = null;
    $("#detector-status").textContent = t("spectating");
  }
  connect();
}

async function openOwnCamera() {
  try {
    state.stream = await openCamera();
    state.cameraError = null;
  } catch (e) {
    state.cameraError = cameraError(e);
    console.warn("camera:", e);
  }
  renderCameraProblem();
}

function startDetectorLater() {
  $("#detector-status").textContent = t("detector_loading");
  if (replayPrefs.on && !state.recorder) {
    state.recorder = new ClipRecorder(state.stream);
    state.recorder.follow(state.phase);
  }
  startDetector(state.stream).then((det) => {
    state.detector = det;
    $("#detector-status").textContent = "";
    det.onresult = onResult;
    det.onerror = (e) => console.warn("detector:", e);
  }, (e) => {
    console.warn("detector:", e);
    state.cameraError = "detector";
    $("#detector-status").textContent = "";
    renderCameraProblem();
    sendMedia();
  });
}

/** A camera (or detector) that does not work: a lasting message in the player's language,
 *  and the others see why this seat is not ready (media message). Over http:// from
 *  another device the blocked-camera card (secure.js) says it instead. */
function renderCameraProblem() {
  const box = $("#camera-problem");
  box.hidden = !state.cameraError || state.seat?.role !== "player" || blocked;
  if (!box.hidden) $("#camera-problem-text").textContent = t(`camera_err_${state.cameraError}`);
  document.body.classList.toggle("no-camera", !box.hidden);
}

function sendMedia() {
  if (state.me?.role !== "player") return;
  send({ type: "media", mic: state.micOn && Boolean(state.stream?.getAudioTracks().length),
         camera: state.camOn && Boolean(state.stream), camera_error: state.cameraError });
}

function onResult(r) {
  if (!state.detectorRunning) {
    state.detectorRunning = true;
    render();
  }
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN || state.me?.role !== "player") return;
  if (r.t_ms - state.lastSent < state.scoreEveryMs - SCORE_SLACK_MS) return;
  state.lastSent = r.t_ms;
  const score = { t_ms: r.t_ms, face: r.face, smile_prob: r.face ? r.smile_prob : null };
  send({ type: "score", ...score });
  judgeLocally(score);
}

/** The score just sent, through the server's judge rules: own meter and cue. */
function judgeLocally({ t_ms, face, smile_prob }) {
  const me = state.me.id;
  try {
    state.localJudge.push(t_ms, face, smile_prob);
  } catch (e) { // a sample the judge refuses (e.g. time going backwards): start afresh
    console.warn("local judge:", e);
    state.localJudge.reset();
    return;
  }
  state.probs.set(me, face ? smile_prob : null);
  state.laughs.set(me, state.localJudge.laugh);
  const tile = state.tiles.get(me);
  tile?.meter.set(face, smile_prob);
  tile?.meter.setLaugh(state.localJudge.laugh);
  const straight = face && smile_prob < myThreshold();
  state.straightSinceMs = straight ? (state.straightSinceMs ?? t_ms) : null;
  renderCues();
  if (state.phase === "steady") renderBanner();
}

function myThreshold() {
  const m = state.room?.members.find((x) => x.id === state.me?.id);
  return m?.threshold ?? state.judge?.threshold ?? 0.5;
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
    if (fatal === "kicked") seats.forget(code, state.seat.token);
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
      state.receiver = new ClipReceiver(onClip);
      state.mesh = new Mesh({
        role: state.me.role,
        iceServers: msg.ice_servers,
        iceTransportPolicy: msg.ice_transport_policy,
        stream: state.stream,
        send: (to, m) => send({ type: "signal", to, ...m }),
        onstream: (id, stream) => { state.streams.set(id, stream); render(); },
        ondata: (id, data) => state.receiver.ondata(id, data),
      });
      for (const peer of msg.peers) state.mesh.call(peer).catch((e) => console.warn("call", e));
      sendMedia();
      renderCameraProblem();
      break;
    case "room":
      onRoom(msg.room);
      break;
    case "ice": // fresh TURN credentials: the calls made or answered from now on use them
      state.mesh?.setIceServers(msg.ice_servers);
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
      state.probs.set(msg.player, msg.face ? msg.smile_prob : null);
      state.tiles.get(msg.player)?.meter.set(msg.face, msg.smile_prob);
      renderCues();
      break;
    case "judge":
      onJudge(msg.event);
      break;
    case "reaction":
      showReaction(msg.emoji, msg.from);
      break;
    case "notice":
      onNotice(msg);
      break;
    case "ping":
      send({ type: "pong", server_ms: msg.server_ms, t_ms: performance.now() });
      break;
    case "error":
      state.lastError = msg.code;
      if (msg.code === "replaced") state.done = true;
      showError(errorText(msg.code, msg.message), msg.code === "replaced" || msg.code.startsWith("server_"));
      break;
  }
}

function onNotice(n) {
  const names = n.names.join(", ");
  if (n.code === "kicked") {
    state.done = true;
    showError(t("kicked", { name: names }), true);
  } else if (n.code === "match_abandoned") {
    showError(names ? t("abandoned", { names }) : t("abandoned_nobody"));
  } else if (n.code === "steady_timeout") {
    flash(t("steady_timeout", { names }), 3000);
  }
}

function scoreInterval(limits) {
  const hz = limits?.score_hz;
  if (!(typeof hz === "number" && hz > 0)) throw new Error(`welcome: limits.score_hz must be a number > 0, got ${JSON.stringify(hz)}`);
  return 1000 / hz;
}

function member(id) {
  return state.room?.members.find((m) => m.id === id);
}

function nameOf(id) {
  return member(id)?.nickname ?? "?";
}

function onJudge(ev) {
  if (ev.player !== state.me?.id) state.laughs.set(ev.player, laughAfter(state.laughs.get(ev.player) ?? null, ev));
  if (ev.type === "face_lost") flash(t("face_lost", { name: nameOf(ev.player) }));
  renderCues();
}

function onRoom(room) {
  const prev = state.phase;
  state.room = room;
  state.deadline = room.phase_left_ms === null ? null : performance.now() + room.phase_left_ms;
  state.phase = room.phase;
  state.recorder?.follow(room.phase);
  const me = member(state.me?.id);
  state.localJudge.configure(state.judge, me?.threshold ?? null); // calibrated: a new timeline
  if (prev !== room.phase) {
    if (room.phase === "calibrating" || room.phase === "round") {
      state.detector?.reset(); // a fresh streaming window for calibration and each round
      state.localJudge.reset(); // and a fresh judge timeline, as the server starts one
      state.laughs.clear();
    }
    onPhase(prev, room);
  }
  render();
}

/** Sounds, animations and the replay when the phase changes. */
function onPhase(prev, room) {
  const big = $("#big");
  state.shownSecond = null;
  if (room.phase !== "verdict" && room.phase !== "match_over") hideReplay();
  $("#confetti").hidden = room.phase !== "match_over";
  switch (room.phase) {
    case "round":
      sound.play("go");
      animate(big, "pop");
      break;
    case "verdict":
    case "match_over": {
      const v = room.last_verdict;
      if (prev === "round" || prev === "verdict") {
        if (v?.status === "loss") sound.play("buzzer");
        animate(big, "stamp");
        showReplayFor(v);
        sendReplayIfMine(v);
      }
      if (room.phase === "match_over" && room.winners.length) {
        setTimeout(() => sound.play("fanfare"), prev === "round" ? 700 : 0);
        confetti();
      }
      break;
    }
    case "steady":
      animate(big, "pop");
      break;
  }
}

// --- laugh replay -------------------------------------------------------------------------------

function laughLosers(v) {
  return (v?.losers ?? []).filter((l) => l.reason === "laugh" || l.reason === "hidden_laugh");
}

async function sendReplayIfMine(v) {
  const mine = laughLosers(v).some((l) => l.player === state.me?.id);
  if (!mine || !state.recorder || !replayPrefs.on || state.sentReplayFor === v.round) return;
  state.sentReplayFor = v.round;
  const start = state.localJudge.laughStartMs;
  await new Promise((ok) => setTimeout(ok, ClipRecorder.waitFor(start)));
  const frames = state.recorder.around(start);
  if (frames.length) await sendClip(state.mesh, frames, v.round);
  // the laugher sees their own replay too
  onClip({ from: state.me.id, round: v.round, frames: frames.map((f) => f.blob), fps: 10 });
}

function onClip(clip) {
  state.clips.set(clip.from, clip);
  const v = state.room?.last_verdict;
  if (v && v.round === clip.round && laughLosers(v).some((l) => l.player === clip.from)
      && (state.phase === "verdict" || state.phase === "match_over")) {
    playClip(clip);
  }
}

function showReplayFor(v) {
  const laughers = laughLosers(v);
  if (!laughers.length) return;
  const first = laughers[0];
  $("#replay").hidden = false;
  $("#replay-who").textContent = first.nickname;
  $("#replay-status").textContent = t("replay_waiting");
  $("#replay").classList.remove("playing");
  const clip = state.clips.get(first.player);
  if (clip && clip.round === v.round) playClip(clip);
}

function playClip(clip) {
  $("#replay").hidden = false;
  $("#replay").classList.add("playing");
  $("#replay-who").textContent = nameOf(clip.from);
  $("#replay-status").textContent = "";
  state.player = state.player || new ClipPlayer($("#replay-canvas"));
  state.player.play(clip);
}

function hideReplay() {
  state.player?.stop();
  $("#replay").hidden = true;
}

// --- celebration and reactions -------------------------------------------------------------------

function confetti() {
  const canvas = $("#confetti");
  canvas.hidden = false;
  const { width, height } = canvas.getBoundingClientRect();
  canvas.width = width;
  canvas.height = height;
  const g = canvas.getContext("2d");
  const colours = ["#ffd23f", "#ff4f79", "#3ddc97", "#5ec8ff", "#ffffff"];
  const bits = Array.from({ length: 140 }, (_, i) => ({
    x: Math.random() * width, y: -Math.random() * height * 0.6, v: 1.5 + Math.random() * 3,
    r: Math.random() * 6.28, s: 5 + Math.random() * 7, c: colours[i % colours.length] }));
  const t0 = performance.now();
  const step = (now) => {
    if (canvas.hidden || now - t0 > 6000) { g.clearRect(0, 0, width, height); return; }
    g.clearRect(0, 0, width, height);
    for (const b of bits) {
      b.y += b.v; b.x += Math.sin((now - t0) / 400 + b.r) * 1.2; b.r += 0.1;
      g.save(); g.translate(b.x, b.y % (height + 20)); g.rotate(b.r);
      g.fillStyle = b.c; g.fillRect(-b.s / 2, -b.s / 4, b.s, b.s / 2); g.restore();
    }
    requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
}

function showReaction(emoji, from) {
  const box = $("#reactions");
  const node = el("span", { class: "reaction", text: emoji, title: nameOf(from) });
  node.style.left = `${10 + Math.random() * 80}%`;
  box.append(node);
  sound.play("pop");
  setTimeout(() => node.remove(), 2600);
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
  const cue = el("span", { class: "cue", "data-cue": "" });
  const chips = el("div", { class: "chips" });
  const kick = el("button", { type: "button", class: "kick", hidden: true, text: "✕" });
  kick.addEventListener("click", () => {
    if (confirm(t("kick_confirm", { name: nameOf(m.id) }))) send({ type: "kick", member: m.id });
  });
  // without video: the player's initial (an emoji would need an emoji font on the device)
  const initial = el("span", { class: "initial", "aria-hidden": "true" });
  const node = el("figure", { class: "tile", "data-id": m.id, "data-seat": String(m.seat ?? 0) },
    el("div", { class: "video" }, video, el("div", { class: "noimg" }, initial), cue, chips, kick),
    el("figcaption", {}, name, badge, score), meter.node);
  tile = { node, video, meter, name, badge, score, initial, cue, chips, kick };
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

/** The players a lobby waits for, and why (not ready, no camera). */
function lobbyText(room, players) {
  if (players.length < 2) return t("phase_lobby_need");
  const broken = players.find((m) => m.camera_error);
  if (broken) return t("waiting_camera", { name: broken.nickname });
  const waiting = players.filter((m) => !m.ready);
  return waiting.length ? t("waiting_ready", { names: waiting.map((m) => m.nickname).join(", ") }) : t("phase_lobby");
}

function renderBanner() {
  const room = state.room;
  if (!room) return;
  const players = room.members.filter((m) => m.role === "player");
  let text = "", big = "", sub = "", progress = null;
  const total = room.phase_ms || 0;
  const left = state.deadline === null ? 0 : Math.max(0, state.deadline - performance.now());
  switch (room.phase) {
    case "lobby":
      text = lobbyText(room, players);
      break;
    case "calibrating":
      text = t("phase_calibrating", { s: secondsLeft() });
      big = "😐";
      progress = total ? 1 - left / total : null;
      break;
    case "steady": {
      text = t("phase_steady");
      big = "😐";
      const waiting = room.not_straight.filter((id) => id !== state.me?.id);
      const mine = room.not_straight.includes(state.me?.id);
      const parts = [];
      if (state.me?.role === "player" && member(state.me.id)?.status === "active") {
        parts.push(mine && state.straightSinceMs === null ? t("steady_you_smile") : t("steady_you_ok"));
      }
      if (waiting.length) parts.push(t("steady_wait", { names: names(waiting) }));
      sub = parts.join(" · ");
      break;
    }
    case "countdown": {
      text = t("phase_countdown");
      const s = Math.max(1, secondsLeft());
      big = String(s);
      if (state.shownSecond !== s) {
        state.shownSecond = s;
        sound.play("beep");
        animate($("#big"), "pop");
      }
      break;
    }
    case "round": {
      text = room.waiting_for.length ? t("waiting_for") : t("go");
      const s = secondsLeft();
      big = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
      progress = total ? 1 - left / total : null;
      break;
    }
    case "verdict":
      text = t("round_n", { n: room.round });
      big = verdictText(room.last_verdict);
      sub = scoredText(room);
      break;
    case "paused": {
      const away = room.members.filter((m) => room.paused_for.includes(m.id));
      text = t("phase_paused", { names: away.map((m) => m.nickname).join(", "), s: secondsLeft() });
      break;
    }
    case "match_over": {
      text = [t("phase_match_over"), verdictText(room.last_verdict)].filter(Boolean).join(" · ");
      const w = room.winners.map(nameOf);
      big = !w.length ? t("match_draw") : t(w.length > 1 ? "winners" : "winner", { names: w.join(", ") });
      break;
    }
  }
  $("#phase-text").textContent = text;
  $("#big").textContent = big;
  $("#sub").textContent = sub;
  const bar = $("#progress");
  bar.hidden = progress === null;
  if (progress !== null) bar.firstElementChild.style.width = `${Math.round(progress * 100)}%`;
  const saved = $("#saved");
  if (room.phase === "match_over" && room.match_id !== null && !saved) {
    $("#banner").append(el("a", { id: "saved", class: "saved", href: `/history#m${room.match_id}`, "data-i18n": "saved", text: t("saved") }));
  } else if (room.phase !== "match_over" && saved) {
    saved.remove();
  }
}

function scoredText(room) {
  const v = room.last_verdict;
  if (!v || v.status !== "loss") return "";
  const losers = new Set(v.losers.map((l) => l.player));
  const scorers = room.members.filter((m) => m.role === "player" && m.status === "active" && !losers.has(m.id));
  return scorers.length ? t("plus_one", { names: scorers.map((m) => m.nickname).join(", ") }) : "";
}

/** The tiles' "almost!" / "laughed!" cues, from the latest scores and judge events. */
function renderCues() {
  const room = state.room;
  if (!room) return;
  const release = state.judge?.release ?? 0.1;
  for (const [id, tile] of state.tiles) {
    const m = member(id);
    const c = cueOf({ phase: room.phase, prob: state.probs.get(id) ?? null,
      threshold: m?.threshold ?? state.judge?.threshold ?? null, release, laugh: state.laughs.get(id) ?? null });
    if (tile.cue.dataset.cue !== (c ?? "")) {
      tile.cue.dataset.cue = c ?? "";
      tile.cue.textContent = c ? t(`${c}_cue`) : "";
      if (c === "almost") sound.play("tick");
    }
  }
}

function chip(text, cls = "") {
  return el("span", { class: `chip ${cls}`, text });
}

function render() {
  const room = state.room;
  if (!room || !state.me) return;
  document.body.dataset.phase = room.phase;
  const me = member(state.me.id);
  const isHost = room.host === state.me.id;
  const players = room.members.filter((m) => m.role === "player");
  const tiles = $("#tiles");
  tiles.dataset.n = String(players.length);
  const keep = new Set();
  for (const m of players) {
    const tile = tileFor(m);
    keep.add(m.id);
    tile.name.textContent = m.id === state.me.id ? `${m.nickname} (${t("you")})` : m.nickname;
    tile.score.textContent = String(m.score);
    let badge = "";
    if (m.status === "forfeit") badge = t("forfeit");
    else if (!m.connected) badge = t("away", { s: Math.ceil((m.grace_left_ms ?? 0) / 1000) });
    else if (m.ready && BETWEEN.has(room.phase)) badge = t("ready_mark");
    tile.badge.textContent = badge;
    const chips = [];
    if (room.host === m.id) chips.push(chip(`👑 ${t("host")}`, "host"));
    if (m.camera_error) chips.push(chip(t(`camera_badge_${m.camera_error}`), "bad"));
    else if (!m.camera) chips.push(chip(t("camera_badge_off"), "bad"));
    if (!m.mic) chips.push(chip("🔇", "muted-mic"));
    if (room.phase === "steady" && m.status === "active") {
      chips.push(room.not_straight.includes(m.id) ? chip("😐 …", "wait") : chip("😐 ✓", "ok"));
    }
    tile.chips.replaceChildren(...chips);
    tile.kick.hidden = !(isHost && m.id !== state.me.id && BETWEEN.has(room.phase));
    tile.kick.title = t("kick");
    tile.initial.textContent = [...m.nickname.trim()][0]?.toUpperCase() ?? "?";
    tile.node.classList.toggle("away", !m.connected);
    if (!m.connected) tile.meter.set(false, null); // no stale score under an empty seat
    tile.node.classList.toggle("me", m.id === state.me.id);
    tile.node.classList.toggle("ready", m.ready && BETWEEN.has(room.phase));
    const loser = (room.phase === "verdict" || room.phase === "match_over") && room.last_verdict?.losers.some((l) => l.player === m.id);
    tile.node.classList.toggle("lost", Boolean(loser));
    tile.node.classList.toggle("winner", room.phase === "match_over" && room.winners.includes(m.id));
    tile.node.classList.toggle("straight", room.phase === "steady" && !room.not_straight.includes(m.id));
    tile.meter.setThreshold(m.threshold ?? state.judge?.threshold ?? null);
    if (m.id === state.me.id && m.role === "player") tile.meter.node.title = t("meter_judge");
    const stream = m.id === state.me.id ? state.stream : state.streams.get(m.id);
    tile.node.classList.toggle("novideo", !stream || !m.camera);
    if (stream) attach(tile.video, stream, m.id === state.me.id);
    if (tile.node.parentElement !== tiles) tiles.append(tile.node);
  }
  for (const [id, tile] of state.tiles) {
    if (!keep.has(id)) {
      tile.node.remove();
      state.tiles.delete(id);
    }
  }
  renderControls(room, me, isHost);
  renderSide(room, isHost, players);
  // scoreboard: one line at the top, the rules after it
  $("#scoreboard").replaceChildren(
    el("ol", {}, ...players.map((m) => el("li", { "data-id": m.id, class: room.winners.includes(m.id) ? "win" : "" },
      el("span", { text: m.nickname }), el("strong", { text: String(m.score) })))),
    el("span", { class: "rules", text: [room.round ? t("round_n", { n: room.round }) : "", t("first_to", { n: room.rounds_to_win })].filter(Boolean).join(" · ") }));
  renderBanner();
  renderCues();
}

function renderControls(room, me, isHost) {
  const isPlayer = me?.role === "player";
  const canReady = isPlayer && BETWEEN.has(room.phase);
  const ready = $("#ready");
  ready.hidden = !canReady;
  ready.disabled = !state.detectorRunning; // calibration needs this page's smile scores
  if (canReady) {
    ready.textContent = me.ready ? t("not_ready") : room.phase === "match_over" ? t("rematch") : t("ready");
    ready.dataset.ready = me.ready ? "1" : "0";
  }
  for (const [id, on, key] of [["#mic", state.micOn, "mic"], ["#cam", state.camOn, "cam"], ["#replay-toggle", replayPrefs.on, "replay"]]) {
    const b = $(id);
    b.hidden = !isPlayer || !state.stream;
    b.setAttribute("aria-pressed", String(!on));
    b.classList.toggle("off", !on);
    b.title = t(`${key}_${on ? "on" : "off"}`) + (key === "cam" ? `. ${t("cam_off_hint")}` : key === "replay" ? `. ${t("replay_hint")}` : "");
    b.setAttribute("aria-label", t(`${key}_${on ? "on" : "off"}`));
  }
  if (!state.stream?.getAudioTracks().length) $("#mic").hidden = true;
  $("#react-bar").hidden = isPlayer; // the audience reacts; players keep a straight face
  const nspec = room.members.filter((m) => m.role === "spectator").length;
  $("#spectators").textContent = nspec ? t("spectators", { n: nspec }) : "";
  document.body.classList.toggle("host", isHost);
}

function renderSide(room, isHost, players) {
  const between = BETWEEN.has(room.phase);
  $("#invite").hidden = !between;
  $("#invite-alone").hidden = players.length > 1;
  $("#host-panel").hidden = !between;
  for (const b of $("#rtw").children) {
    b.setAttribute("aria-pressed", String(Number(b.dataset.value) === room.rounds_to_win));
    b.disabled = !isHost;
  }
  for (const b of $("#round-len").children) {
    b.setAttribute("aria-pressed", String(Number(b.dataset.value) * 1000 === room.round_ms));
    b.disabled = !isHost;
  }
  $("#lock").checked = room.locked;
  $("#lock").disabled = !isHost;
  $("#host-panel").classList.toggle("readonly", !isHost);
  renderWatch(room);
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

function wireControls() {
  $("#invite-code").textContent = code;
  wireInvite(); // the link a friend can reach, Copy, Share, the QR code (invite.js)
  $("#join-player").disabled = blocked; // watching needs no camera
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
  $("#preview-start").addEventListener("click", preview);
  $("#mic").addEventListener("click", () => {
    state.micOn = !state.micOn;
    for (const tr of state.stream?.getAudioTracks() ?? []) tr.enabled = state.micOn;
    sendMedia();
    render();
  });
  $("#cam").addEventListener("click", () => {
    state.camOn = !state.camOn;
    for (const tr of state.stream?.getVideoTracks() ?? []) tr.enabled = state.camOn;
    sendMedia();
    render();
  });
  $("#replay-toggle").addEventListener("click", () => {
    replayPrefs.on = !replayPrefs.on;
    if (!replayPrefs.on) { state.recorder?.stop(); state.recorder = null; }
    else if (state.stream && !state.recorder) {
      state.recorder = new ClipRecorder(state.stream);
      state.recorder.follow(state.phase);
    }
    flash(t(replayPrefs.on ? "replay_on" : "replay_off"));
    render();
  });
  $("#camera-retry").addEventListener("click", async () => {
    await openOwnCamera();
    if (state.stream) {
      state.cameraError = null;
      renderCameraProblem();
      startDetectorLater();
      sendMedia();
      // the others need our video: call them again with it
      state.mesh?.closeAll();
      state.ws?.close();
    }
  });
  $("#watch-instead").addEventListener("click", async () => {
    send({ type: "leave" });
    seats.forget(code, state.seat.token);
    state.done = true;
    state.ws?.close();
    state.mesh?.closeAll();
    state.seat = null;
    await new Promise((ok) => setTimeout(ok, 200));
    state.done = false;
    await join("spectator");
  });
  $("#rtw").replaceChildren(...[1, 2, 3, 4, 5].map((n) => el("button", { type: "button", "data-value": String(n), text: String(n),
    onclick: () => send({ type: "rules", rounds_to_win: n }) })));
  $("#round-len").replaceChildren(...ROUND_LENGTHS_S.map((s) => el("button", { type: "button", "data-value": String(s), text: t("seconds", { s }),
    onclick: () => send({ type: "rules", round_ms: s * 1000 }) })));
  $("#lock").addEventListener("change", () => send({ type: "rules", locked: $("#lock").checked }));
  $("#react-bar").replaceChildren(...REACTIONS.map((e) => el("button", { type: "button", class: "react", text: e, "aria-label": t("react"),
    onclick: () => send({ type: "react", emoji: e }) })));
}

async function main() {
  const title = () => {
    document.title = `${t("room_title", { code })} · ${t("app")}`;
    for (const b of $("#round-len")?.children ?? []) b.textContent = t("seconds", { s: b.dataset.value });
  };
  chrome({
    extra: el("span", { id: "room-title", class: "room-title" }),
    onlang: () => {
      title();
      $("#room-title").textContent = t("room_title", { code });
      renderCameraProblem();
      if (blocked) explainBlocked();
      if (state.info && !state.seat) showJoinPanel();
      render();
    },
  });
  $("#room-title").textContent = t("room_title", { code });
  wireControls();
  title();
  if (blocked) explainBlocked();
  setInterval(renderBanner, 200);

  try {
    state.info = await api(`/api/rooms/${encodeURIComponent(code)}`);
    showInvite(code).catch((e) => console.warn("invite", e));
  } catch (e) {
    showError(e.status === 404 ? t("no_room", { code }) : errorText(e.code, e.message), true);
    document.body.dataset.phase = "no-room";
    return;
  }
  state.seat = await resumeSeat();
  if (state.seat) {
    await enter();
    return;
  }
  const spectate = params.get("spectate") === "1";
  if (params.get("auto") === "1" && nickname.get() && (spectate || !blocked)) {
    $("#nickname").value = nickname.get();
    await join(spectate ? "spectator" : "player");
    return;
  }
  await showJoinPanel();
}

apply();
main();
