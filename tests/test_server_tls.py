"""HTTPS for `utjima serve` (utjima/server/tls.py, and serve's start): the self-signed
certificate kept in the data dir, the operator's certificate checked before the port is
announced, and what `utjima serve --tls` prints."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from server_helpers import fake_model_dir

from harness.server import free_port
from utjima.cli import main
from utjima.server.settings import Settings
from utjima.server.tls import TLSError, load, prepare, self_signed, spki_sha256

REPO_ROOT = Path(__file__).resolve().parents[1]
IP = ipaddress.ip_address


def sans(path: Path) -> tuple[set[str], set]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), set(san.get_values_for_type(x509.IPAddress))


def test_self_signed_is_made_once_covers_the_names_and_keeps_its_key_private(tmp_path):
    folder = tmp_path / "tls"
    a = self_signed(folder, ["localhost", "Box"], [IP("127.0.0.1"), IP("192.168.1.5")])
    assert a.self_signed and a.cert.is_file() and a.key.is_file()
    assert oct(a.key.stat().st_mode & 0o777) == "0o600"
    assert sans(a.cert) == ({"localhost", "box"}, {IP("127.0.0.1"), IP("192.168.1.5")})
    pem = a.cert.read_bytes()
    b = self_signed(folder, ["box"], [IP("192.168.1.5")])  # nothing new: kept as it is
    assert b.cert.read_bytes() == pem
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(a.cert, a.key)  # usable as is


def test_a_new_address_or_near_expiry_remakes_it_with_the_same_key(tmp_path):
    folder = tmp_path / "tls"
    a = self_signed(folder, ["localhost"], [IP("127.0.0.1")])
    pin, key = spki_sha256(a.cert), a.key.read_bytes()
    b = self_signed(folder, ["localhost"], [IP("10.0.0.7")])  # the laptop moved networks
    assert sans(b.cert) == ({"localhost"}, {IP("127.0.0.1"), IP("10.0.0.7")})
    assert spki_sha256(b.cert) == pin and b.key.read_bytes() == key
    later = a.not_after - dt.timedelta(days=10)
    c = self_signed(folder, ["localhost"], [IP("10.0.0.7")], now=later)
    assert c.not_after > a.not_after and spki_sha256(c.cert) == pin


def test_a_damaged_file_is_replaced(tmp_path):
    folder = tmp_path / "tls"
    self_signed(folder, ["localhost"], [])
    (folder / "cert.pem").write_text("garbage")
    (folder / "key.pem").write_text("garbage")
    files = self_signed(folder, ["localhost"], [])
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(files.cert, files.key)


def test_spki_pin_matches_openssls(tmp_path):
    """The pin Chromium's --ignore-certificate-errors-spki-list takes, computed as its
    documentation does with openssl."""
    files = self_signed(tmp_path, ["localhost"], [])
    pipeline = (f"openssl x509 -in {files.cert} -pubkey -noout | openssl pkey -pubin "
                "-outform der | openssl dgst -sha256 -binary | base64")
    expected = subprocess.run(["sh", "-c", pipeline], capture_output=True, text=True,
                              check=True).stdout.strip()
    assert spki_sha256(files.cert) == expected and len(expected) == 44


def _cert(tmp_path: Path, name: str, days: float = 30, key=None) -> tuple[Path, Path]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "play.example.org")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(days=60))
            .not_valid_after(now + dt.timedelta(days=days)).sign(key, hashes.SHA256()))
    c, k = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return c, k


def test_an_operators_certificate_is_checked(tmp_path):
    good_c, good_k = _cert(tmp_path, "good")
    files = load(good_c, good_k)
    assert not files.self_signed and files.cert == good_c
    other_c, other_k = _cert(tmp_path, "other")
    old_c, old_k = _cert(tmp_path, "old", days=-1)
    locked = tmp_path / "locked.key"
    locked.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass")))
    cases = [
        (tmp_path / "none.crt", good_k, "does not exist"),
        (good_k, good_k, "is not a PEM certificate"),
        (good_c, good_c, "is not a PEM private key"),
        (good_c, locked, "encrypted with a passphrase"),
        (good_c, other_k, "does not belong to the certificate"),
        (old_c, old_k, "expired on"),
        (tmp_path, good_k, "is a folder"),
    ]
    for cert, key, message in cases:
        with pytest.raises(TLSError, match=message):
            load(cert, key)
    assert other_c.is_file()


def test_prepare_follows_the_settings(tmp_path):
    assert prepare(Settings(data_dir=tmp_path)) is None
    made = prepare(Settings(data_dir=tmp_path, tls=True, public_url="https://play.lan:8443"))
    assert made.cert == tmp_path / "tls" / "cert.pem"
    dns, ips = sans(made.cert)
    assert {"localhost", "play.lan"} <= dns and IP("127.0.0.1") in ips
    c, k = _cert(tmp_path, "real")
    real = prepare(Settings(data_dir=tmp_path, cert_file=c, key_file=k))
    assert real.cert == c and not real.self_signed


# --- `utjima serve` ------------------------------------------------------------------------


@pytest.mark.parametrize("flags, message", [
    (["--cert", "nope.pem", "--key", "nope.key"], "--cert nope.pem does not exist"),
    (["--cert", "x.pem"], "--cert and --key go together"),
])
def test_serve_with_a_bad_certificate_says_so_in_one_line_and_exits_2(
        tmp_path, capsys, monkeypatch, flags, message):
    monkeypatch.chdir(tmp_path)
    model = fake_model_dir(tmp_path / "model")
    code = main(["serve", "--model", str(model), "--data-dir", str(tmp_path / "d"), *flags])
    out, err = capsys.readouterr()
    assert code == 2 and "serving on" not in out
    assert err.count("\n") == 1 and message in err, err


def test_serve_with_a_mismatched_key_exits_2_before_serving(tmp_path, capsys):
    c, _ = _cert(tmp_path, "a")
    _, k = _cert(tmp_path, "b")
    code = main(["serve", "--model", str(fake_model_dir(tmp_path / "model")), "--data-dir",
                 str(tmp_path / "d"), "--cert", str(c), "--key", str(k)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "does not belong to the certificate" in err


@pytest.mark.slow
def test_serve_tls_answers_https_and_prints_where_friends_open_it(tmp_path):
    """`utjima serve --tls` on all interfaces: HTTPS with the certificate it made in the
    data dir, and at start the URLs friends can open and a QR code, little else."""
    port = free_port()
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "utjima", "serve", "--tls", "--host", "0.0.0.0", "--port",
         str(port), "--data-dir", str(data), "--model", str(fake_model_dir(tmp_path / "m"))],
        cwd=tmp_path, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ctx = ssl.create_default_context(cafile=str(data / "tls" / "cert.pem"))
                ctx.check_hostname = False  # the certificate names localhost, not 127.0.0.1's
                with urllib.request.urlopen(f"https://localhost:{port}/api/leaderboard",
                                            context=ctx, timeout=2) as r:
                    assert r.read() == b"[]"
                break
            except (OSError, ssl.SSLError):
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(10)
    out = log.read_text()
    lines = out.splitlines()
    assert lines[0].startswith(f"utjima: serving on https://0.0.0.0:{port}/")
    assert f"https://localhost:{port}/" in lines[1]
    from utjima.server.reach import interface_addresses, url_for

    for a in [a for a in interface_addresses() if a.version == 4]:
        assert url_for("https", a, port) + "/" in out  # each network address, for friends
    if any(a.version == 4 for a in interface_addresses()):
        assert "█" in out  # the QR code
    assert "self-signed" in out and "Traceback" not in out and "WARNING" not in out
    assert len(lines) < 40, out
