"""ICE servers and TURN credentials (utjima/server/ice.py): what each member gets in
`welcome`, and a real coturn accepting exactly the credentials the server makes."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from fastapi.testclient import TestClient
from server_helpers import fake_model_dir

from utjima.server.app import create_app
from utjima.server.ice import ice_servers, turn_credentials
from utjima.server.settings import Settings, SettingsError

NOW = 1_750_000_000.0
TURN = "turn:turn.example.org:3478?transport=udp"


def test_credentials_name_the_member_and_expire():
    user, cred = turn_credentials("s3cret", "m0a1b2c3", 3600, NOW)
    assert user == f"{int(NOW) + 3600}:m0a1b2c3"
    assert len(cred) == 28 and cred.endswith("=")  # base64 of a 20-byte SHA-1 HMAC
    assert turn_credentials("s3cret", "m0a1b2c3", 3600, NOW) == (user, cred)
    assert turn_credentials("other", "m0a1b2c3", 3600, NOW)[1] != cred
    assert turn_credentials("s3cret", "m9", 3600, NOW)[1] != cred


def test_ice_servers_for_a_member():
    s = Settings(stun_urls=("stun:turn.example.org:3478",), turn_urls=(TURN,),
                 turn_secret="s3cret", turn_ttl_s=600, wall_clock=lambda: NOW,
                 ice_servers=({"urls": "stun:stun.example.net"},))
    servers = ice_servers(s, "m1")
    assert servers[0] == {"urls": "stun:stun.example.net"}
    assert servers[1] == {"urls": ["stun:turn.example.org:3478"]}
    assert servers[2]["urls"] == [TURN] and servers[2]["username"] == f"{int(NOW) + 600}:m1"
    assert "s3cret" not in repr(servers)
    assert ice_servers(Settings(), "m1") == []  # a LAN needs none


@pytest.mark.parametrize("kw, message", [
    (dict(turn_urls=(TURN,)), "--turn-url and --turn-secret go together"),
    (dict(turn_secret="x"), "--turn-url and --turn-secret go together"),
    (dict(turn_urls=("stun:x",), turn_secret="x"), "turn_urls must start with turn:"),
    (dict(stun_urls=("turn:x",)), "stun_urls must start with stun:"),
    (dict(ice_transport_policy="relay"), "'relay' needs a TURN server"),
    (dict(ice_transport_policy="any"), "must be 'all' or 'relay'"),
    (dict(turn_urls=(TURN,), turn_secret="x", turn_ttl_s=5), "turn_ttl_s must be in"),
])
def test_bad_ice_settings_fail_loudly(kw, message):
    with pytest.raises(SettingsError, match=message):
        Settings(**kw)


def test_environment_configures_turn():
    s = Settings.from_env({"UTJIMA_TURN_URLS": f"{TURN}, turns:turn.example.org:5349",
                           "UTJIMA_TURN_SECRET": "s3cret", "UTJIMA_STUN_URLS": "stun:a:3478",
                           "UTJIMA_ICE_TRANSPORT_POLICY": "relay", "UTJIMA_TURN_TTL_S": "900"})
    assert s.turn_urls == (TURN, "turns:turn.example.org:5349") and s.turn_secret == "s3cret"
    assert s.stun_urls == ("stun:a:3478",) and s.ice_transport_policy == "relay"
    assert s.turn_ttl_s == 900.0


def test_each_member_gets_its_own_credentials_in_welcome(tmp_path):
    s = Settings(model_dir=fake_model_dir(tmp_path / "model"), data_dir=tmp_path / "data",
                 turn_urls=(TURN,), turn_secret="s3cret", ice_transport_policy="relay",
                 wall_clock=lambda: NOW)
    with TestClient(create_app(s)) as c:
        code = c.post("/api/rooms").json()["code"]
        welcomes = {}
        for nick in ("Ana", "Bo"):
            j = c.post(f"/api/rooms/{code}/join", json={"nickname": nick, "role": "player"}).json()
            with c.websocket_connect(f"/ws/rooms/{code}") as ws:
                ws.send_json({"type": "hello", "token": j["token"]})
                msg = ws.receive_json()
                while msg["type"] != "welcome":
                    msg = ws.receive_json()
            welcomes[j["id"]] = msg
    for member, w in welcomes.items():
        assert w["ice_transport_policy"] == "relay"
        [turn] = w["ice_servers"]
        assert turn["urls"] == [TURN]
        assert (turn["username"], turn["credential"]) == turn_credentials(
            "s3cret", member, s.turn_ttl_s, NOW)
        assert "s3cret" not in str(w)


# --- a real coturn ----------------------------------------------------------------------


@pytest.fixture
def coturn():
    from harness.coturn import CoturnMissing, ensure_turnserver, running_coturn

    try:
        ensure_turnserver()
    except CoturnMissing as e:
        pytest.skip(str(e))
    if not shutil.which("turnutils_uclient"):
        pytest.skip("turnutils_uclient (Debian coturn) not found")
    with running_coturn() as turn:
        yield turn


def allocate(port: int, user: str, credential: str) -> bool:
    """True when coturn's own test client gets a relay allocation with these credentials."""
    r = subprocess.run(["turnutils_uclient", "-y", "-n", "1", "-l", "100", "-u", user,
                        "-w", credential, "-p", str(port), "127.0.0.1"],
                       capture_output=True, text=True, timeout=60)
    return r.returncode == 0 and "Cannot complete Allocation" not in r.stdout + r.stderr


@pytest.mark.slow
def test_coturn_accepts_these_credentials_and_no_others(coturn):
    import time

    now = time.time()
    user, cred = turn_credentials(coturn.secret, "m0a1b2c3", 600, now)
    assert allocate(coturn.port, user, cred)
    assert "incoming packet ALLOCATE processed, success" in coturn.log_text()
    assert not allocate(coturn.port, user, turn_credentials("wrong", "m0a1b2c3", 600, now)[1])
    old_user, old_cred = turn_credentials(coturn.secret, "m0a1b2c3", -60, now)  # expired
    assert not allocate(coturn.port, old_user, old_cred)


def test_an_idle_member_gets_fresh_credentials_at_half_their_life():
    from utjima.judge import JudgeConfig
    from utjima.server import schemas
    from utjima.server.game import Room

    wall = [NOW]
    s = Settings(turn_urls=(TURN,), turn_secret="s3cret", turn_ttl_s=600,
                 wall_clock=lambda: wall[0])
    t0 = 1_000.0
    room = Room("ABCDEF", s, JudgeConfig(), t0)
    ana = room.join("Ana", "player", t0)
    room.connect(ana.id, t0)

    def refreshes(now_ms):
        wall[0] = NOW + (now_ms - t0) / 1000
        return [o.msg for o in room.tick(now_ms)
                if isinstance(getattr(o, "msg", None), schemas.IceRefresh)]

    assert refreshes(t0 + 299_000) == []  # 299 s into a 600 s life: still fresh
    [msg] = refreshes(t0 + 300_000)
    [turn] = msg.ice_servers
    assert turn["username"] == f"{int(NOW + 300 + 600)}:{ana.id}"  # valid 600 s from now
    assert (turn["username"], turn["credential"]) == turn_credentials(
        "s3cret", ana.id, 600, NOW + 300)
    assert schemas.dump(msg)["type"] == "ice"
    assert refreshes(t0 + 400_000) == []  # next at 600 s
    assert len(refreshes(t0 + 600_000)) == 1
    # without TURN there is nothing to renew
    plain = Room("GHJKLM", Settings(), JudgeConfig(), t0)
    bo = plain.join("Bo", "player", t0)
    plain.connect(bo.id, t0)
    assert not [o for o in plain.tick(t0 + 10_000_000)
                if isinstance(getattr(o, "msg", None), schemas.IceRefresh)]
