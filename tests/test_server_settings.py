"""Settings from flags and UTJIMA_* variables (utjima/server/settings.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from utjima.server.settings import Settings, SettingsError


def test_environment_then_flags():
    env = {"UTJIMA_ROUND_MS": "20000", "UTJIMA_ROUNDS_TO_WIN": "2",
           "UTJIMA_ICE_SERVERS": '[{"urls": "stun:stun.example.org:3478"}]',
           "UTJIMA_ORT_DIR": "/x/ort", "UTJIMA_PORT": "1"}  # port comes from the flag only
    s = Settings.from_env(env, port=9000, model_dir="m", data_dir=None)
    assert s.round_ms == 20000.0 and s.rounds_to_win == 2 and s.port == 9000
    assert s.ice_servers == ({"urls": "stun:stun.example.org:3478"},)
    assert s.ort_dir == Path("/x/ort") and s.model_dir == Path("m") and s.data_dir == Path("data")
    assert s.db_url.startswith("sqlite:///") and s.db_url.endswith("data/utjima.db")


@pytest.mark.parametrize("env, message", [
    ({"UTJIMA_ROUND_MS": "soon"}, "UTJIMA_ROUND_MS='soon' is not valid"),
    ({"UTJIMA_ICE_SERVERS": "stun:x"}, "UTJIMA_ICE_SERVERS"),
    ({"UTJIMA_ICE_SERVERS": '[{"url": "stun:x"}]'}, "must be an object with 'urls'"),
    ({"UTJIMA_MAX_PLAYERS": "6"}, "max_players must be in 2..4"),
])
def test_bad_values_fail_loudly(env, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace("[", r"\[")):
        Settings.from_env(env)


def test_database_url_wins():
    s = Settings(database_url="postgresql+psycopg://u@localhost/utjima")
    assert s.db_url == "postgresql+psycopg://u@localhost/utjima"


@pytest.mark.parametrize("env, message", [
    ({"UTJIMA_MAX_ROOMS_PER_ADDR": "0"}, "max_rooms_per_addr"),
    ({"UTJIMA_ROOM_UNJOINED_MS": "700000"}, "room_unjoined_ms <= room_idle_ms"),
    ({"UTJIMA_ADDR_MSG_RATE_PER_S": "10"}, "at least one seat's"),
    ({"UTJIMA_SEND_QUEUE_BYTES": "1000"}, "two signals"),
    ({"UTJIMA_PONG_TIMEOUT_MS": "5000"}, "pong_timeout_ms must be >= 10000"),
    ({"UTJIMA_PREDICT_MAX_PIXELS": "100"}, "predict_max_pixels"),
    ({"UTJIMA_PREDICT": "maybe"}, "UTJIMA_PREDICT='maybe' is not valid: expected one of"),
])
def test_limits_that_cannot_work_fail_loudly(env, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        Settings.from_env(env)


def test_switches_from_the_environment():
    assert Settings.from_env({"UTJIMA_PREDICT": "yes"}).predict is True
    assert Settings.from_env({"UTJIMA_PREDICT": "0"}).predict is False


def test_settings_against_the_models_judge():
    from utjima.judge import JudgeConfig

    cfg = JudgeConfig()
    Settings().check_judge(cfg)
    with pytest.raises(SettingsError, match="at least 2000"):
        Settings(calib_ms=1000).check_judge(cfg)  # 15 samples at 15 Hz < 20 needed
    with pytest.raises(SettingsError, match="calib_ms"):
        Settings(calib_ms=1400).check_judge(cfg)  # 21 on paper; a real stream delivered 17
    Settings(calib_ms=2000).check_judge(cfg)
    with pytest.raises(SettingsError, match="too short to ever confirm a laugh"):
        Settings(round_ms=1000, allowed_delay_ms=800).check_judge(cfg)


def test_tls_and_public_url_from_the_environment():
    s = Settings.from_env({"UTJIMA_TLS": "yes", "UTJIMA_PUBLIC_URL": "https://play.lan:8443/"})
    assert s.tls is True and s.public_url == "https://play.lan:8443"
    s = Settings.from_env({"UTJIMA_CERT_FILE": "c.pem", "UTJIMA_KEY_FILE": "k.pem"})
    assert s.tls is True and s.cert_file == Path("c.pem")  # a certificate implies TLS
    with pytest.raises(SettingsError, match="UTJIMA_TLS='maybe' is not valid: expected one of"):
        Settings.from_env({"UTJIMA_TLS": "maybe"})
    with pytest.raises(SettingsError, match="--cert and --key go together"):
        Settings(cert_file="c.pem")


def test_rounds_to_win_above_max_rounds_names_the_variable():
    with pytest.raises(SettingsError, match=r"max_rounds \(9; env UTJIMA_MAX_ROUNDS\) must be"):
        Settings(rounds_to_win=10)
