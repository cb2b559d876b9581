// Korean and English for the game pages: a small dictionary, the browser's language by
// default, a switch that remembers the choice. Elements carry data-i18n="key" (text) or
// data-i18n-placeholder / data-i18n-title; code calls t("key", {name: ...}).

const DICT = {
  en: {
    app: "Don't Laugh",
    tagline: "A try-not-to-laugh video battle. The smile detector runs on your own device.",
    privacy: "Your video goes only to the browsers of the others in your room, never to our server. The smile detector runs in this browser and sends only numbers to the server, whose judge decides from them who laughed.",
    nickname: "Nickname",
    nickname_ph: "What should friends call you?",
    create: "Create a room",
    join: "Join",
    watch: "Watch",
    code: "Room code",
    code_ph: "e.g. K7P2QX",
    invite: "Invite link",
    copy: "Copy",
    copied: "Copied!",
    share: "Share",
    share_text: "Play 웃지마게임 (Don't Laugh) with me: room {code}",
    invite_qr: "QR code of the invite link {url}",
    invite_http: "Friends on other devices get no camera on an http:// link: restart the server with HTTPS (make run HOST=0.0.0.0 TLS=1).",
    camera_blocked_title: "Your browser blocks the camera on this page",
    camera_blocked_why: "You opened {origin}, a plain http:// address on another computer. Browsers give the camera only to https:// pages, or to pages on the computer that runs the game.",
    camera_blocked_fix: "To play, open the game's https:// address. Whoever runs the server starts it with {serve} (or {make}); it prints that address and a QR code.",
    camera_blocked_watch: "You can still watch as a spectator.",
    scan: "Scan with a phone camera to join",
    enter: "Enter the room",
    camera_check: "Check my camera",
    camera_off: "Camera off",
    seen: "We can see you ✓",
    not_seen: "We can't see your face: face the camera, with light in front of you",
    detector_loading: "Loading the smile detector…",
    detector_failed: "The smile detector could not start: {error}",
    camera_failed: "No camera: {error}",
    history: "History",
    leaderboard: "Leaderboard",
    demo: "Detector demo",
    home: "Home",
    need_nickname: "Type a nickname first",
    no_room: "There is no room {code}. Check the code or create a new room.",
    room_title: "Room {code}",
    join_as_player: "Join as a player",
    join_as_spectator: "Watch as a spectator",
    spectator_badge: "spectator",
    spectators: "{n} watching",
    you: "you",
    ready: "Ready",
    not_ready: "Not ready",
    rematch: "Rematch",
    leave: "Leave",
    ready_mark: "ready",
    away: "away ({s} s)",
    forfeit: "left",
    threshold: "limit {p}%",
    phase_lobby: "Waiting for everyone to press Ready",
    phase_lobby_need: "Waiting for a second player: share the invite link",
    phase_calibrating: "Keep a straight face: calibrating ({s} s)",
    phase_countdown: "Get ready…",
    phase_round: "Don't laugh!",
    phase_paused: "Waiting for {names} to come back ({s} s)",
    phase_match_over: "Match over",
    round_n: "Round {n}",
    first_to: "first to {n}",
    laughed: "{names} laughed! (peak {p}%)",
    hid: "{names} hid from the camera",
    draw: "Nobody laughed: a draw",
    winner: "{names} wins the match!",
    winners: "{names} win the match!",
    match_draw: "The match is a draw",
    saved: "Saved to the history",
    almost: "{name} almost laughed!",
    almost_you: "Careful: you almost laughed!",
    meter_laughing: "careful!",
    meter_laughed: "laughed",
    meter_judge: "Your meter runs the server's judge on the scores you send: red = a laugh starting, \"laughed\" = long enough to count.",
    face_lost: "We can't see {name}",
    waiting_for: "Checking who laughed first…",
    reconnecting: "Connection lost, reconnecting…",
    replaced: "This seat was opened in another tab.",
    error: "Error: {message}",
    spectating: "You are watching. Players' videos come straight from their browsers.",
    camera_needed: "Playing needs a camera. You can still watch.",
    matches: "Matches",
    no_matches: "No matches yet. Play one!",
    when: "When",
    players: "Players",
    result: "Result",
    rounds: "Rounds",
    round: "Round",
    loser: "Laughed",
    reason: "Why",
    reason_laugh: "laughed",
    reason_absent: "left the camera",
    reason_hidden_laugh: "laughed, then hid",
    duration: "Time",
    details: "Details",
    rank: "#",
    player: "Player",
    wins: "Wins",
    played: "Matches",
    laughs: "Laughs",
    win_rate: "Win rate",
    no_players: "Nobody on the board yet.",
    lang: "한국어",
  },
  ko: {
    app: "웃지마게임",
    tagline: "웃으면 지는 영상 대결. 웃음 감지는 내 기기에서 합니다.",
    privacy: "영상은 같은 방 사람들의 브라우저로만 가고 서버로는 가지 않습니다. 웃음 감지는 이 브라우저에서 하고 서버에는 숫자만 보내며, 누가 웃었는지는 서버의 판정이 그 숫자로 정합니다.",
    nickname: "닉네임",
    nickname_ph: "친구들이 부를 이름",
    create: "방 만들기",
    join: "참가",
    watch: "관전",
    code: "방 코드",
    code_ph: "예: K7P2QX",
    invite: "초대 링크",
    copy: "복사",
    copied: "복사했어요!",
    share: "공유",
    share_text: "웃지마게임 같이 해요: {code} 방",
    invite_qr: "초대 링크 {url}의 QR 코드",
    invite_http: "다른 기기의 친구는 http:// 링크에서 카메라를 쓸 수 없어요. 서버를 HTTPS로 다시 시작하세요 (make run HOST=0.0.0.0 TLS=1).",
    camera_blocked_title: "이 페이지에서는 브라우저가 카메라를 막고 있어요",
    camera_blocked_why: "지금 연 주소({origin})는 다른 컴퓨터의 암호화되지 않은 http:// 주소예요. 브라우저는 https:// 페이지나, 게임을 실행하는 컴퓨터에서 연 페이지에만 카메라를 허용해요.",
    camera_blocked_fix: "게임하려면 https:// 주소로 여세요. 서버를 실행하는 사람이 {serve} (또는 {make}) 로 시작하면 그 주소와 QR 코드가 나와요.",
    camera_blocked_watch: "관전은 지금도 할 수 있어요.",
    scan: "휴대폰 카메라로 찍으면 바로 참가해요",
    enter: "방으로 가기",
    camera_check: "카메라 확인",
    camera_off: "카메라 끄기",
    seen: "얼굴이 잘 보여요 ✓",
    not_seen: "얼굴이 안 보여요. 카메라를 보고, 앞쪽을 밝게 해 주세요",
    detector_loading: "웃음 감지기를 불러오는 중…",
    detector_failed: "웃음 감지기를 시작하지 못했어요: {error}",
    camera_failed: "카메라가 없어요: {error}",
    history: "기록",
    leaderboard: "순위표",
    demo: "감지기 데모",
    home: "처음으로",
    need_nickname: "닉네임을 먼저 입력하세요",
    no_room: "{code} 방이 없어요. 코드를 확인하거나 새 방을 만드세요.",
    room_title: "{code} 방",
    join_as_player: "선수로 참가",
    join_as_spectator: "관전하기",
    spectator_badge: "관전",
    spectators: "{n}명 관전 중",
    you: "나",
    ready: "준비",
    not_ready: "준비 취소",
    rematch: "다시 하기",
    leave: "나가기",
    ready_mark: "준비됨",
    away: "자리 비움 ({s}초)",
    forfeit: "나감",
    threshold: "기준 {p}%",
    phase_lobby: "모두 준비를 누르면 시작해요",
    phase_lobby_need: "두 번째 선수를 기다리는 중: 초대 링크를 보내세요",
    phase_calibrating: "무표정을 유지하세요: 기준 맞추는 중 ({s}초)",
    phase_countdown: "준비…",
    phase_round: "웃지 마세요!",
    phase_paused: "{names} 님을 기다리는 중 ({s}초)",
    phase_match_over: "경기 끝",
    round_n: "{n}라운드",
    first_to: "{n}승 먼저",
    laughed: "{names} 님이 웃었어요! (최고 {p}%)",
    hid: "{names} 님이 카메라를 피했어요",
    draw: "아무도 안 웃었어요: 무승부",
    winner: "{names} 님 승리!",
    winners: "{names} 님 공동 승리!",
    match_draw: "경기 무승부",
    saved: "기록에 저장했어요",
    almost: "{name} 님 웃을 뻔!",
    almost_you: "조심! 웃을 뻔했어요!",
    meter_laughing: "조심!",
    meter_laughed: "웃음",
    meter_judge: "내 미터는 내가 보내는 점수에 서버와 같은 판정을 돌립니다. 빨간색은 웃기 시작, '웃음'은 웃음으로 셀 만큼 길어졌다는 뜻입니다.",
    face_lost: "{name} 님 얼굴이 안 보여요",
    waiting_for: "누가 먼저 웃었는지 확인 중…",
    reconnecting: "연결이 끊겼어요. 다시 연결하는 중…",
    replaced: "이 자리가 다른 탭에서 열렸어요.",
    error: "오류: {message}",
    spectating: "관전 중입니다. 선수 영상은 선수 브라우저에서 바로 옵니다.",
    camera_needed: "경기하려면 카메라가 필요해요. 관전은 할 수 있어요.",
    matches: "경기",
    no_matches: "아직 경기가 없어요. 한 판 해 보세요!",
    when: "언제",
    players: "선수",
    result: "결과",
    rounds: "라운드",
    round: "라운드",
    loser: "웃은 사람",
    reason: "이유",
    reason_laugh: "웃음",
    reason_absent: "카메라 이탈",
    reason_hidden_laugh: "웃고 숨음",
    duration: "시간",
    details: "자세히",
    rank: "#",
    player: "선수",
    wins: "승",
    played: "경기",
    laughs: "웃음",
    win_rate: "승률",
    no_players: "아직 순위가 없어요.",
    lang: "English",
  },
};

const KEY = "utjima:lang";
export const LANGS = Object.keys(DICT);

export function lang() {
  const saved = localStorage.getItem(KEY);
  if (LANGS.includes(saved)) return saved;
  return (navigator.language || "en").toLowerCase().startsWith("ko") ? "ko" : "en";
}

export function t(key, params = {}) {
  return translate(lang(), key, params);
}

/** `t` in a given language (the demo page keeps its own choice). */
export function translate(language, key, params = {}) {
  const s = DICT[language]?.[key] ?? DICT.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in params ? String(params[k]) : `{${k}}`));
}

/** Add a page's own strings ({en: {...}, ko: {...}}), e.g. the capture page's. */
export function extend(strings) {
  for (const [l, d] of Object.entries(strings)) Object.assign(DICT[l], d);
}

/** Fill every data-i18n element under `root`; call again after switching. */
export function apply(root = document) {
  document.documentElement.lang = lang();
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}

/** Wire a button that toggles ko <-> en; `onchange` re-renders dynamic text. */
export function wireSwitch(button, onchange = () => {}) {
  const label = () => { button.textContent = t("lang"); };
  label();
  button.addEventListener("click", () => {
    localStorage.setItem(KEY, lang() === "ko" ? "en" : "ko");
    apply();
    label();
    onchange();
  });
}
