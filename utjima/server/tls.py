"""HTTPS for `utjima serve --tls`: the operator's certificate, or one made here and kept.

Browsers give a page the camera only in a secure context: https://, or http:// on the
computer itself (localhost). A friend's phone opening http://192.168.1.5:8000/ gets no
`navigator.mediaDevices` at all, so playing across devices needs HTTPS.

- `--cert FILE --key FILE`: a real certificate (PEM, chain first) and its private key,
  checked here (readable, PEM, the key matches, not expired) before the port is announced.
- `--tls` alone: a self-signed certificate made on first run in `<data dir>/tls/`. Its
  names (subjectAltName) cover localhost, this machine's host name, the `--public-url`
  host and every interface address; it is made again, with the same key, when one of
  those is missing or it nears expiry. Each browser warns about it once.

`prepare(settings)` picks between the two for `utjima serve`. `spki_sha256(cert)` is the
pin Chromium's `--ignore-certificate-errors-spki-list` takes, which is how the browser
tests trust exactly this server.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from utjima.server.settings import Settings
from utjima.utils import UtjimaError, atomic_write

CERT_NAME, KEY_NAME = "cert.pem", "key.pem"
SELF_SIGNED_DAYS = 365  # a self-signed certificate is valid this long ...
RENEW_DAYS = 30  # ... and made again when fewer days than this are left
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TLSError(UtjimaError):
    """A certificate or key that cannot serve HTTPS (the message says which and why)."""


@dataclass(frozen=True)
class TLSFiles:
    cert: Path  # PEM certificate chain, leaf first
    key: Path  # PEM private key, unencrypted
    self_signed: bool  # made by `self_signed` (browsers will warn once)
    not_after: dt.datetime  # the leaf's expiry (UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TLSError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise TLSError(f"{what} {path} is a folder, not a PEM file") from None
    except OSError as e:
        raise TLSError(f"{what} {path} cannot be read: {e.strerror}") from None


def load(cert: str | Path, key: str | Path, now: dt.datetime | None = None) -> TLSFiles:
    """Check an operator's certificate and key; TLSError names the problem in one line."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    cert, key = Path(cert), Path(key)
    try:
        chain = x509.load_pem_x509_certificates(_read(cert, "--cert"))
    except ValueError:
        raise TLSError(f"--cert {cert} is not a PEM certificate (expected a file that starts "
                       "with -----BEGIN CERTIFICATE-----)") from None
    try:
        private = serialization.load_pem_private_key(_read(key, "--key"), password=None)
    except TypeError:
        raise TLSError(f"--key {key} is encrypted with a passphrase; give the server an "
                       "unencrypted key (e.g. `openssl pkey -in KEY -out plain.pem`)") from None
    except ValueError as e:
        raise TLSError(f"--key {key} is not a PEM private key ({e})") from None
    except UnsupportedAlgorithm as e:
        raise TLSError(f"--key {key} cannot be used: {e}") from None
    leaf = chain[0]
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    if private.public_key().public_bytes(serialization.Encoding.DER, pub) != \
            leaf.public_key().public_bytes(serialization.Encoding.DER, pub):
        raise TLSError(f"--key {key} does not belong to the certificate in --cert {cert}")
    now = now or _now()
    if leaf.not_valid_after_utc <= now:
        raise TLSError(f"--cert {cert} expired on {leaf.not_valid_after_utc:%Y-%m-%d}; "
                       "renew it (browsers refuse an expired certificate)")
    _check_ssl(cert, key)
    return TLSFiles(cert, key, False, leaf.not_valid_after_utc)


def _check_ssl(cert: Path, key: Path) -> None:
    """What uvicorn will do with the files, done once here so it fails before the port."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as e:
        raise TLSError(f"--cert {cert} / --key {key}: the TLS library refuses them ({e})") \
            from None


def self_signed(folder: str | Path, dns_names: Iterable[str], ips: Iterable[IPAddress],
                now: dt.datetime | None = None) -> TLSFiles:
    """The certificate in `folder` (cert.pem + key.pem), made or made again when it lacks
    one of these names or addresses or nears expiry. The key is kept across renewals."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = Path(folder)
    now = now or _now()
    dns_names = sorted({n.lower() for n in dns_names if n})
    ips = sorted(set(ips), key=lambda a: (a.version, int(a)))
    cert_path, key_path = folder / CERT_NAME, folder / KEY_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TLSError(f"cannot make {folder} for the self-signed certificate: {e.strerror}") \
            from None
    private = None
    if key_path.is_file():
        try:
            private = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (ValueError, TypeError):
            private = None  # a damaged key: make a new one (and so a new certificate)
    if private is not None and cert_path.is_file():
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            have_dns = set(san.get_values_for_type(x509.DNSName))
            have_ips = set(san.get_values_for_type(x509.IPAddress))
            fresh = cert.not_valid_after_utc - now > dt.timedelta(days=RENEW_DAYS)
            same_key = _spki(cert) == _spki_of_key(private)
            if fresh and same_key and set(dns_names) <= have_dns and set(ips) <= have_ips:
                return TLSFiles(cert_path, key_path, True, cert.not_valid_after_utc)
            dns_names = sorted(set(dns_names) | have_dns)  # keep names it had
            ips = sorted(set(ips) | have_ips, key=lambda a: (a.version, int(a)))
        except (ValueError, x509.ExtensionNotFound):
            pass  # unreadable or without names: make a new one
    if private is None:
        private = ec.generate_private_key(ec.SECP256R1())
        pem = private.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        with atomic_write(key_path) as tmp:
            tmp.write_bytes(pem)
            os.chmod(tmp, 0o600)
        os.chmod(key_path, 0o600)  # atomic_write leaves 0644; a key stays private
    host = dns_names[0] if dns_names else "localhost"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"utjima self-signed ({host})"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "utjima")])
    not_after = now + dt.timedelta(days=SELF_SIGNED_DAYS)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # clocks a little behind ours
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(n) for n in dns_names] + [x509.IPAddress(a) for a in ips]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(private, hashes.SHA256())
    )
    with atomic_write(cert_path) as tmp:
        tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return TLSFiles(cert_path, key_path, True, cert.not_valid_after_utc)


def _spki(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def _spki_of_key(private) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)


def spki_sha256(cert: str | Path) -> str:
    """base64(sha256(SubjectPublicKeyInfo)) of a PEM certificate's leaf: the pin format of
    Chromium's --ignore-certificate-errors-spki-list (and of HPKP)."""
    from cryptography import x509

    leaf = x509.load_pem_x509_certificates(Path(cert).read_bytes())[0]
    return base64.b64encode(hashlib.sha256(_spki(leaf)).digest()).decode()


def prepare(settings: Settings) -> TLSFiles | None:
    """The files `utjima serve` hands uvicorn: None without TLS, the operator's (checked)
    with --cert/--key, else the self-signed certificate for this machine's names."""
    if not settings.tls:
        return None
    if settings.cert_file is not None:
        return load(settings.cert_file, settings.key_file)
    from utjima.server import reach

    names, ips = ["localhost", socket.gethostname(), socket.getfqdn()], [
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"),
        *reach.interface_addresses()]
    for host in (settings.host, urlsplit(settings.public_url or "").hostname or ""):
        if host in reach.WILDCARD:
            continue
        try:
            ips.append(ipaddress.ip_address(host.strip("[]")))
        except ValueError:
            names.append(host)
    return self_signed(Path(settings.data_dir) / "tls", names, ips)
