"""A real TURN server for the browser tests: Debian's coturn (`turnserver`), started on free
ports with the TURN REST shared secret (`use-auth-secret`), the scheme `utjima serve
--turn-secret` hands out credentials for.

    with running_coturn() as turn:
        serve(turn_urls=turn.url, turn_secret=turn.secret, ...)

It listens on loopback only and relays between loopback addresses (`allow-loopback-peers`:
both test browsers are on this machine). Its log (`turn.log_text()`) names each allocation's
user, so a test can see which members' credentials it accepted.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.chromium import debian_binary
from harness.server import stop_process

TURNSERVER = Path(os.environ.get("UTJIMA_TURNSERVER", "/usr/bin/turnserver"))
REALM = "utjima.test"
START_TIMEOUT_S = 15.0
STUN_MAGIC = 0x2112A442


class CoturnMissing(RuntimeError):
    """No turnserver binary (Debian package coturn)."""


@dataclass(frozen=True)
class Coturn:
    url: str  # turn:127.0.0.1:PORT?transport=udp
    port: int
    secret: str  # static-auth-secret
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def ensure_turnserver(install: bool = True) -> Path:
    """The turnserver binary; installs Debian's coturn when missing and we are root."""
    if debian_binary(TURNSERVER, "coturn", install):
        return TURNSERVER
    raise CoturnMissing(f"no TURN server at {TURNSERVER}; install it with "
                        "`apt-get install -y coturn` (or `make system-deps`)")


def _free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (TURN listens on both)."""
    for _ in range(50):
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port for both UDP and TCP")


def stun_binding(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    """True when a STUN Binding request to host:port (UDP) gets a success response."""
    tid = secrets.token_bytes(12)
    request = struct.pack("!HHI", 0x0001, 0, STUN_MAGIC) + tid  # Binding, no attributes
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout_s)
        try:
            s.sendto(request, (host, port))
            data, _ = s.recvfrom(2048)
        except OSError:
            return False
    return len(data) >= 20 and struct.unpack("!H", data[:2])[0] == 0x0101 and data[8:20] == tid


def config(port: int, secret: str, folder: Path, relay_ports: tuple[int, int]) -> str:
    """turnserver.conf for a loopback-only test server (the same keys docs/deploy.md uses)."""
    return "\n".join([
        f"listening-port={port}",
        "listening-ip=127.0.0.1",
        "relay-ip=127.0.0.1",
        f"min-port={relay_ports[0]}",
        f"max-port={relay_ports[1]}",
        "allow-loopback-peers",  # both browsers are on this machine
        "use-auth-secret",
        f"static-auth-secret={secret}",
        f"realm={REALM}",
        "fingerprint",
        "no-tls",
        "no-dtls",
        "no-cli",
        "no-multicast-peers",
        "verbose",
        f"log-file={folder / 'turn.log'}",
        "simple-log",
        "no-stdout-log",
        f"pidfile={folder / 'turnserver.pid'}",
        f"userdb={folder / 'turndb'}",
        "",
    ])


@contextlib.contextmanager
def running_coturn(secret: str | None = None) -> Iterator[Coturn]:
    """coturn on a free loopback port until the block ends; RuntimeError with its log when it
    does not answer a STUN Binding request within START_TIMEOUT_S."""
    binary = ensure_turnserver()
    secret = secret or secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="utjima-turn-") as tmp:
        folder = Path(tmp)
        port = _free_udp_tcp_port()
        low = 49152 + (port * 7919) % 15000  # a relay range of its own per instance
        conf = folder / "turnserver.conf"
        conf.write_text(config(port, secret, folder, (low, low + 200)))
        log = folder / "turn.log"
        proc = subprocess.Popen([str(binary), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.STDOUT, cwd=folder)
        turn = Coturn(f"turn:127.0.0.1:{port}?transport=udp", port, secret, log)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not stun_binding(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"coturn did not start (exit {proc.poll()}):\n"
                                       f"{turn.log_text()[-2000:]}")
                time.sleep(0.1)
            yield turn
        finally:
            stop_process(proc)
