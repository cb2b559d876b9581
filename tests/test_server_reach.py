"""Where friends reach the server (utjima/server/reach.py) and the invite routes
(routes/invite.py): addresses, the invite link's base, QR codes, the start-up lines."""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from server_helpers import fake_model_dir

from utjima.server import reach
from utjima.server.app import create_app
from utjima.server.reach import (
    URLError,
    banner,
    clean_public_url,
    friend_urls,
    invite_base,
    is_loopback,
    listen_addresses,
)
from utjima.server.settings import Settings, SettingsError

IP = ipaddress.ip_address
LAN = [IP("192.168.1.5"), IP("10.8.0.2"), IP("fd00::5")]  # what interface_addresses gives


def test_loopback_names_and_addresses():
    for host in ("localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1", "[::1]",
                 "app.localhost"):
        assert is_loopback(host), host
    for host in ("192.168.1.5", "utjima.test", "fd00::5", "example.org", ""):
        assert not is_loopback(host), host


def test_public_url_is_cleaned_or_refused():
    assert clean_public_url("https://play.example.org/") == "https://play.example.org"
    assert clean_public_url(" http://h:8080/game/ ") == "http://h:8080/game"
    for bad in ("play.example.org", "ftp://x", "https://", "https://x/?a=1", "https://u@x",
                "https://x:99999"):
        with pytest.raises(URLError):
            clean_public_url(bad)
    with pytest.raises(SettingsError, match="public_url must look like"):
        Settings(public_url="play.example.org")


def test_listen_addresses():
    assert listen_addresses("0.0.0.0", LAN) == LAN[:2]  # IPv4 wildcard: IPv4 interfaces
    assert listen_addresses("::", LAN) == LAN
    assert listen_addresses("192.168.1.5", LAN) == [IP("192.168.1.5")]
    assert listen_addresses("127.0.0.1", LAN) == []
    assert listen_addresses("localhost", LAN) == []
    assert listen_addresses("no-such-host.invalid", LAN) == []
    assert friend_urls("https", "::", 8443, LAN) == [
        "https://192.168.1.5:8443", "https://10.8.0.2:8443", "https://[fd00::5]:8443"]
    assert friend_urls("https", "0.0.0.0", 443, LAN)[0] == "https://192.168.1.5"


def test_interface_addresses_are_usable_from_another_device():
    for a in reach.interface_addresses():
        assert not (a.is_loopback or a.is_link_local or a.is_multicast), a


@pytest.mark.parametrize("kw, expected", [
    # --public-url wins over everything
    (dict(public_url="https://play.example.org", request_host="127.0.0.1:8000"),
     "https://play.example.org"),
    # the host's page was opened on a network address: friends reach the same one
    (dict(request_host="192.168.1.5:8000"), "http://192.168.1.5:8000"),
    (dict(request_host="utjima.test:8443", scheme="https"), "https://utjima.test:8443"),
    # opened on loopback while listening everywhere: this machine's LAN address
    (dict(request_host="127.0.0.1:8000"), "http://192.168.1.5:8000"),
    (dict(request_host="localhost:9000"), "http://192.168.1.5:9000"),
    # loopback is all there is
    (dict(request_host="127.0.0.1:8000", listen_host="127.0.0.1"), "http://127.0.0.1:8000"),
    (dict(request_host=None, listen_host="127.0.0.1"), "http://127.0.0.1:8000"),
])
def test_invite_base(kw, expected):
    args = {"public_url": None, "scheme": "http", "listen_host": "0.0.0.0", "port": 8000,
            "interfaces": LAN, **kw}
    assert invite_base(**args) == expected


def test_banner_says_where_friends_open_it():
    lines, qr = banner(scheme="https", host="0.0.0.0", port=8443, public_url=None,
                       self_signed=True, interfaces=LAN)
    text = "\n".join(lines)
    assert "https://localhost:8443/" in lines[0]
    assert "https://192.168.1.5:8443/" in text and "https://10.8.0.2:8443/" in text
    assert "self-signed" in text and qr == "https://192.168.1.5:8443/"
    lines, qr = banner(scheme="http", host="127.0.0.1", port=8000, public_url=None,
                       self_signed=False, interfaces=LAN)
    assert qr is None and "only this computer" in "\n".join(lines)
    assert "make run HOST=0.0.0.0 TLS=1" in "\n".join(lines)
    lines, qr = banner(scheme="http", host="0.0.0.0", port=8000, public_url=None,
                       self_signed=False, interfaces=LAN)
    assert "--tls" in "\n".join(lines) and qr == "http://192.168.1.5:8000/"
    lines, qr = banner(scheme="http", host="127.0.0.1", port=8000,
                       public_url="https://play.example.org", self_signed=False, interfaces=LAN)
    assert qr == "https://play.example.org/" and "--tls" not in "\n".join(lines)


def test_qr_codes():
    svg = reach.qr_svg("https://play.example.org/r/K7P2QX")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert "https://play.example.org/r/K7P2QX" in root.find("{*}title").text
    text = reach.qr_text("https://192.168.1.5:8443/")
    assert set(text) <= set("█▀▄ \n") and 10 < text.count("\n") < 40


# --- the invite routes --------------------------------------------------------------------


@pytest.fixture
def make_client(tmp_path, monkeypatch):
    monkeypatch.setattr(reach, "interface_addresses", lambda: list(LAN))

    def make(**settings) -> TestClient:
        s = Settings(model_dir=fake_model_dir(tmp_path / "model"), data_dir=tmp_path / "data",
                     **settings)
        return TestClient(create_app(s), base_url="http://127.0.0.1:8000")
    return make


def test_the_invite_link_is_one_a_friend_can_open(make_client):
    """Issue 10: the invite link read http://127.0.0.1:PORT/r/... on a server listening on
    the network: useless to a friend's device."""
    with make_client(host="0.0.0.0", port=8000) as c:
        created = c.post("/api/rooms").json()
        code = created["code"]
        assert created["invite_url"] == f"http://192.168.1.5:8000/r/{code}"
        assert created["invite_path"] == f"/r/{code}"
        # the page was opened on the LAN address or a name: the link keeps it
        r = c.get(f"/api/rooms/{code}/invite", headers={"host": "utjima.test:8000"})
        assert r.json() == {"code": code, "url": f"http://utjima.test:8000/r/{code}",
                            "qr_svg": f"/r/{code}/qr.svg"}
        # a Host header that is not a plain host[:port] is not trusted
        r = c.get(f"/api/rooms/{code}/invite", headers={"host": "evil.example/<x>"})
        assert r.json()["url"] == f"http://192.168.1.5:8000/r/{code}"
        r = c.get(f"/r/{code}/qr.svg")
        assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
        assert f"http://192.168.1.5:8000/r/{code}" in r.text
        assert r.headers["cross-origin-resource-policy"] == "same-origin"
        for path in ("/api/rooms/ZZZZZZ/invite", "/r/ZZZZZZ/qr.svg", "/r/bad!/qr.svg"):
            r = c.get(path)
            assert r.status_code == 404 and r.json()["detail"]["code"] in ("no_room", "bad_code")


def test_public_url_and_loopback_only(make_client):
    with make_client(public_url="https://play.example.org/") as c:
        code = c.post("/api/rooms").json()["code"]
        assert c.get(f"/api/rooms/{code}/invite").json()["url"] == \
            f"https://play.example.org/r/{code}"
    with make_client(host="127.0.0.1") as c:  # nothing else to offer
        assert c.post("/api/rooms").json()["invite_url"].startswith("http://127.0.0.1:8000/r/")
