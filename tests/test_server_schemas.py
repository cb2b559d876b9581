"""The messages (utjima/server/schemas.py): every client message type valid and invalid as
the hub parses it (`CLIENT_MESSAGE.validate_python` on the decoded JSON), the HTTP bodies,
nickname and room-code cleaning, the limits, the wire form of server messages, and the one
formatter that turns pydantic errors into a line for people."""

from __future__ import annotations

import json
import math
import typing

import pytest
from pydantic import ValidationError

from utjima.server import schemas

TOKEN = "t" * 24


def parse(msg: dict):
    """A client message as the hub sees it: JSON text, decoded, validated."""
    return schemas.CLIENT_MESSAGE.validate_python(json.loads(json.dumps(msg)))


def refused(msg: dict) -> str:
    """The one-line reason a client message is refused (what the error message says)."""
    with pytest.raises(ValidationError) as e:
        parse(msg)
    return schemas.describe(e.value.errors())


# --- websocket: client -> server -------------------------------------------------------------


def test_every_client_type_is_in_the_union_and_in_client_types():
    union = typing.get_args(typing.get_args(schemas.ClientMessage)[0])
    assert tuple(m.model_fields["type"].annotation.__args__[0] for m in union) \
        == schemas.CLIENT_TYPES


@pytest.mark.parametrize("msg, kind", [
    ({"type": "hello", "token": TOKEN}, schemas.Hello),
    ({"type": "hello", "token": TOKEN, "v": 1}, schemas.Hello),
    ({"type": "score", "t_ms": 1234.5, "face": True, "smile_prob": 0.7}, schemas.Score),
    ({"type": "score", "t_ms": 0, "face": False}, schemas.Score),
    ({"type": "score", "t_ms": 1e12, "face": True, "smile_prob": 1, "player": "m1234abcd"},
     schemas.Score),
    ({"type": "pong", "server_ms": -5.0, "t_ms": 12.0}, schemas.Pong),
    ({"type": "ready"}, schemas.Ready),
    ({"type": "ready", "ready": False}, schemas.Ready),
    ({"type": "leave"}, schemas.Leave),
    ({"type": "signal", "to": "m1", "kind": "offer", "sdp": "v=0"}, schemas.Signal),
    ({"type": "signal", "to": "m1", "kind": "answer", "sdp": "v=0"}, schemas.Signal),
    ({"type": "signal", "to": "m1", "kind": "ice",
      "candidate": {"candidate": "candidate:1 1 udp 1 10.0.0.1 5000 typ host", "sdpMid": "0",
                    "sdpMLineIndex": 0, "usernameFragment": "abcd"}}, schemas.Signal),
    ({"type": "signal", "to": "m1", "kind": "ice"}, schemas.Signal),  # end of candidates
    ({"type": "spectating", "mode": "invite"}, schemas.SpectatingIn),
    ({"type": "spectating", "mode": "open"}, schemas.SpectatingIn),
])
def test_valid_client_messages(msg, kind):
    got = parse(msg)
    assert type(got) is kind and got.type == msg["type"]


def test_defaults_of_client_messages():
    assert parse({"type": "hello", "token": TOKEN}).v == schemas.PROTOCOL_VERSION
    assert parse({"type": "ready"}).ready is True
    score = parse({"type": "score", "t_ms": 5, "face": False})
    assert score.smile_prob is None and score.player is None


@pytest.mark.parametrize("msg, problem", [
    ({"type": "dance"}, "does not match any of the expected tags"),
    ({"token": TOKEN}, "Unable to extract tag"),
    ({"type": "hello", "token": "short"}, "token: String should have at least 8 characters"),
    ({"type": "hello", "token": "x" * 65}, "token: String should have at most 64 characters"),
    ({"type": "hello"}, "token: Field required"),
    ({"type": "hello", "token": TOKEN, "v": "1"}, "v: Input should be a valid integer"),
    ({"type": "score", "t_ms": 1, "face": True}, "smile_prob is required when face is true"),
    ({"type": "score", "t_ms": 1, "face": True, "smile_prob": 1.5}, "less than or equal to 1"),
    ({"type": "score", "t_ms": 1, "face": True, "smile_prob": -0.1}, "greater than or equal"),
    ({"type": "score", "t_ms": -1, "face": False}, "t_ms: Input should be greater than or equal"),
    ({"type": "score", "t_ms": 2e12, "face": False}, "t_ms: Input should be less than or equal"),
    ({"type": "score", "t_ms": "1", "face": False}, "t_ms: Input should be a valid number"),
    ({"type": "score", "t_ms": 1, "face": 1}, "face: Input should be a valid boolean"),
    ({"type": "score", "t_ms": 1, "face": "true"}, "face: Input should be a valid boolean"),
    ({"type": "score", "t_ms": 1, "face": False, "player": "m" * 17}, "player: String should"),
    ({"type": "score", "t_ms": 1, "face": False, "video": "..."}, "video: Extra inputs"),
    ({"type": "pong", "t_ms": 1}, "server_ms: Field required"),
    ({"type": "ready", "ready": "yes"}, "ready: Input should be a valid boolean"),
    ({"type": "leave", "now": True}, "now: Extra inputs are not permitted"),
    ({"type": "signal", "to": "m1", "kind": "offer"}, "a signal of kind 'offer' needs sdp"),
    ({"type": "signal", "to": "m1", "kind": "answer", "sdp": ""}, "'answer' needs sdp"),
    ({"type": "signal", "to": "m1", "kind": "ice", "sdp": "v=0"}, "carries candidate, not sdp"),
    ({"type": "signal", "to": "m1", "kind": "hangup"}, "kind: Input should be 'offer'"),
    ({"type": "signal", "to": "m" * 17, "kind": "ice"}, "to: String should have at most 16"),
    ({"type": "signal", "to": "m1", "kind": "offer", "sdp": "x" * 65537},
     "sdp: String should have at most 65536 characters"),
    ({"type": "signal", "to": "m1", "kind": "ice", "candidate": {"candidate": "x" * 1025}},
     "candidate.candidate: String should have at most 1024"),
    ({"type": "signal", "to": "m1", "kind": "ice",
      "candidate": {"candidate": "c", "sdpMLineIndex": 65}}, "sdpMLineIndex: Input should be"),
    ({"type": "signal", "to": "m1", "kind": "ice",
      "candidate": {"candidate": "c", "sdpMLineIndex": True}}, "sdpMLineIndex: Input should be"),
    ({"type": "signal", "to": "m1", "kind": "ice", "candidate": {"candidate": "c", "x": 1}},
     "candidate.x: Extra inputs are not permitted"),
])
def test_invalid_client_messages_are_refused_with_the_field_named(msg, problem):
    assert problem in refused(msg)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused(bad):
    """Python's json.loads accepts NaN and Infinity; the schemas do not."""
    raw = json.loads(json.dumps({"type": "score", "t_ms": 1, "face": True, "smile_prob": bad}))
    with pytest.raises(ValidationError, match="smile_prob"):
        schemas.CLIENT_MESSAGE.validate_python(raw)
    raw = json.loads(json.dumps({"type": "pong", "server_ms": bad, "t_ms": 1}))
    with pytest.raises(ValidationError, match="server_ms"):
        schemas.CLIENT_MESSAGE.validate_python(raw)


def test_client_messages_are_frozen():
    msg = parse({"type": "ready"})
    with pytest.raises(ValidationError, match="frozen"):
        msg.ready = False


# --- HTTP bodies, nicknames, room codes -----------------------------------------------------


@pytest.mark.parametrize("raw, clean", [
    ("Mina", "Mina"),
    ("  Mina \t  Kim\n", "Mina Kim"),  # whitespace collapsed and stripped
    ("웃지마 챔피언", "웃지마 챔피언"),
    ("x" * schemas.NICKNAME_MAX, "x" * schemas.NICKNAME_MAX),
    ("a" + " " * 30 + "b", "a b"),  # the limit counts the cleaned name
    ("Mi\x85na", "Mi na"),  # NEL is whitespace to str.split: collapsed like a tab
    # what shows nothing is removed: "Ana" with a zero-width space or bidi controls is "Ana"
    ("Ana\u200b", "Ana"), ("\u202eAna\u202c", "Ana"), ("A\u2066na\u2069", "Ana"),
    ("\ufeffAna\u3164", "Ana"), ("An\u00ada", "Ana"), ("Ana\U000e0041", "Ana"),
    ("Ａｎａ", "Ana"), ("ｱﾅ", "アナ"),  # NFKC: full- and half-width forms folded
    ("e\u0301", "é"),  # composed
    ("A" + "\u0301" * 8 + "na", "Á\u0301\u0301\u0301na"),  # at most 3 marks on a letter
    ("Ana\ue000", "Ana"),  # private use
])
def test_nicknames_are_cleaned(raw, clean):
    assert schemas.clean_nickname(raw) == clean
    assert schemas.JoinIn(nickname=raw).nickname == clean


@pytest.mark.parametrize("raw, problem", [
    ("", "nickname must be 1..20 characters, got 0"),
    (" \t\n ", "nickname must be 1..20 characters, got 0"),
    ("x" * (schemas.NICKNAME_MAX + 1), "nickname must be 1..20 characters, got 21"),
    ("Mi\x00na", "control characters"),
    ("Mi\x7fna", "control characters"),
    ("Mi\x9bna", "control characters"),
    ("\u200b\u200d\u2060", "got 0"),  # nothing visible left
    ("A\ud800", "valid Unicode text"),  # a lone surrogate (JSON "\\ud800")
])
def test_bad_nicknames_are_refused(raw, problem):
    with pytest.raises(ValueError, match=problem):
        schemas.clean_nickname(raw)
    with pytest.raises(ValidationError, match=problem):
        schemas.JoinIn(nickname=raw)


def test_join_resume_and_create_bodies():
    assert schemas.JoinIn(nickname="A").role == "player"
    assert schemas.JoinIn(nickname="A", role="spectator").role == "spectator"
    with pytest.raises(ValidationError, match="role"):
        schemas.JoinIn(nickname="A", role="referee")
    with pytest.raises(ValidationError, match="Extra inputs"):
        schemas.JoinIn(nickname="A", token=TOKEN)
    with pytest.raises(ValidationError, match="Extra inputs"):
        schemas.CreateRoomIn(name="my room")
    assert schemas.ResumeIn(tokens=[TOKEN] * 8).tokens == [TOKEN] * 8
    with pytest.raises(ValidationError, match="at most 8 items"):
        schemas.ResumeIn(tokens=[TOKEN] * 9)
    with pytest.raises(ValidationError, match="at least 8 characters"):
        schemas.ResumeIn(tokens=["short"])
    with pytest.raises(ValidationError, match="at most 64 characters"):
        schemas.ResumeIn(tokens=["x" * 65])


@pytest.mark.parametrize("raw, clean", [
    ("ABC234", "ABC234"), ("abc234", "ABC234"), ("  xyz789 ", "XYZ789"), ("HJKMNP", "HJKMNP"),
])
def test_room_codes_are_cleaned(raw, clean):
    assert schemas.clean_room_code(raw) == clean


@pytest.mark.parametrize("raw", [
    "ABC23", "ABC2345", "", "ABC 23", "ABCDE0", "ABCDEO", "ABCDE1", "ABCDEI", "ABCDEL", "ABC-23",
])
def test_bad_room_codes_are_refused_with_the_alphabet(raw):
    with pytest.raises(ValueError, match=f"6 characters from {schemas.ROOM_CODE_ALPHABET}"):
        schemas.clean_room_code(raw)


def test_the_room_code_alphabet_has_no_lookalikes():
    assert not set("01ILO") & set(schemas.ROOM_CODE_ALPHABET)
    assert len(set(schemas.ROOM_CODE_ALPHABET)) == len(schemas.ROOM_CODE_ALPHABET) == 31


# --- server -> client ---------------------------------------------------------------------------


def test_server_messages_on_the_wire():
    assert schemas.dump(schemas.SignalOut(sender="m1", kind="offer", sdp="v=0")) == {
        "type": "signal", "from": "m1", "kind": "offer", "sdp": "v=0", "candidate": None}
    assert schemas.dump(schemas.ErrorMsg(code="bad_message", message="no")) == {
        "type": "error", "code": "bad_message", "message": "no"}
    assert schemas.dump(schemas.Ping(server_ms=5.0)) == {"type": "ping", "server_ms": 5.0}
    assert schemas.dump(schemas.PeerLeft(id="m1")) == {"type": "peer_left", "id": "m1"}


# --- the one error formatter ---------------------------------------------------------------------


def test_describe_names_each_field_and_keeps_at_most_four():
    with pytest.raises(ValidationError) as e:
        parse({"type": "score", "t_ms": "x", "face": 2, "smile_prob": 7, "player": "m" * 20,
               "extra": 1})
    assert len(e.value.errors()) == 5
    text = schemas.describe(e.value.errors())
    assert text.count("; ") == 3  # four parts
    assert text.startswith("score.t_ms: Input should be a valid number")
    assert "score.face: Input should be a valid boolean" in text


def test_describe_leaves_out_fastapi_body_and_pydantic_validator_names():
    errors = [{"loc": ("body", "nickname"), "msg": "Value error, nickname must be 1..20"},
              {"loc": ("function-after[_payload(), Signal]",), "msg": "needs sdp"},
              {"loc": (), "msg": "Field required"}]
    assert schemas.describe(errors) == \
        "nickname: Value error, nickname must be 1..20; needs sdp; Field required"


def test_one_name_however_it_is_written():
    same = ["Ana", "ANA", "ana\u200b", "Ａｎａ", "\u202eana", " Ana "]
    assert {schemas.name_key(n) for n in same} == {"ana"}
    assert schemas.name_key("Ana") != schemas.name_key("Anna")


@pytest.mark.parametrize("msg, problem", [
    ({"type": "hello", "token": "é" * 10}, "token"),  # compare_digest needs ASCII
    ({"type": "hello", "token": "ab cd efgh"}, "token"),
    ({"type": "signal", "to": "m\ud800", "kind": "ice"}, "valid Unicode text"),
    ({"type": "score", "t_ms": 1, "face": False, "\udc00": 1}, "valid Unicode text"),
    ({"type": "spectating", "mode": "secret"}, "mode"),
    ({"type": "spectating"}, "mode"),
])
def test_secrets_are_url_safe_and_text_is_unicode(msg, problem):
    assert problem in refused(msg)


def test_join_carries_a_device_key_and_a_watch_key():
    j = schemas.JoinIn(nickname="A", device_key="k" * 22, watch_key="w" * 16)
    assert j.device_key == "k" * 22 and j.watch_key == "w" * 16
    for bad in ({"device_key": "short"}, {"device_key": "é" * 30}, {"watch_key": "w w w w w"}):
        with pytest.raises(ValidationError):
            schemas.JoinIn(nickname="A", **bad)
    with pytest.raises(ValidationError, match="tokens"):
        schemas.ResumeIn(tokens=["é" * 10])


def test_describe_never_passes_on_a_lone_surrogate():
    text = schemas.describe([{"loc": ("body", "\ud800"), "msg": "Extra inputs"}])
    assert text == "\\ud800: Extra inputs" and text.encode()


FAST_SCORE_CASES = [
    {"type": "score", "t_ms": 1234.5, "face": True, "smile_prob": 0.3},
    {"type": "score", "t_ms": 1234, "face": True, "smile_prob": 1},
    {"type": "score", "t_ms": 0, "face": False},
    {"type": "score", "t_ms": 0.0, "face": False, "smile_prob": None},
    {"type": "score", "t_ms": 5.0, "face": False, "smile_prob": 0.9},
    {"type": "score", "t_ms": 5.0, "face": True, "smile_prob": None},  # needs a prob
    {"type": "score", "t_ms": 5.0, "face": True},
    {"type": "score", "t_ms": True, "face": True, "smile_prob": 0.1},  # bools are not numbers
    {"type": "score", "t_ms": 5.0, "face": 1, "smile_prob": 0.1},
    {"type": "score", "t_ms": 5.0, "face": True, "smile_prob": False},
    {"type": "score", "t_ms": -1.0, "face": True, "smile_prob": 0.1},
    {"type": "score", "t_ms": 1e13, "face": True, "smile_prob": 0.1},
    {"type": "score", "t_ms": float("nan"), "face": True, "smile_prob": 0.1},
    {"type": "score", "t_ms": float("inf"), "face": True, "smile_prob": 0.1},
    {"type": "score", "t_ms": 5.0, "face": True, "smile_prob": float("nan")},
    {"type": "score", "t_ms": 5.0, "face": True, "smile_prob": 1.5},
    {"type": "score", "t_ms": 5.0, "face": True, "smile_prob": -0.0},
    {"type": "score", "t_ms": "5", "face": True, "smile_prob": 0.1},
    {"type": "score", "t_ms": 5.0, "face": True, "smile_prob": 0.1, "extra": 1},
    {"type": "score", "t_ms": 5.0, "face": True, "smile_prob": 0.1, "player": "m1"},
    {"type": "score", "t_ms": 5.0, "face": True, "smile_prob": 0.1, "player": None},
    {"type": "score", "face": True, "smile_prob": 0.1},
    {"type": "pong", "t_ms": 5.0, "server_ms": 1.0},
    ["score"], None, "score",
]


@pytest.mark.parametrize("raw", FAST_SCORE_CASES)
def test_fast_score_accepts_only_what_pydantic_accepts_and_the_same(raw):
    """The hot path's hand check of a score never lets through what the model refuses, and
    builds the same message when it accepts."""
    fast = schemas.fast_score(raw)
    try:
        slow = schemas.CLIENT_MESSAGE.validate_python(raw)
    except ValidationError:
        slow = None
    if fast is not None:
        assert slow is not None and fast == slow and fast.model_dump() == slow.model_dump()
    if isinstance(raw, dict) and raw.get("player") is None and slow is not None \
            and isinstance(slow, schemas.Score):
        assert fast is not None  # a page's ordinary score takes the fast path
