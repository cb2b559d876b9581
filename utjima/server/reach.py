"""Where friends can reach this server: its addresses, the invite link's base, QR codes.

An invite link is only useful if the friend's device can open it. `invite_base` picks,
in order: `--public-url` (a domain or a reverse proxy in front); the address the page was
opened on when that is not loopback (a friend opening it from the host's page reaches the
same name); else the first non-loopback address the server listens on; 127.0.0.1 only
when that is all there is. `friend_urls` lists what `utjima serve` prints at start, and
`qr_svg` / `qr_text` draw the link as a QR code (segno, pure Python).
"""

from __future__ import annotations

import io
import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")
WILDCARD = ("0.0.0.0", "::", "")


class URLError(ValueError):
    """A --public-url that cannot be an invite link's base."""


def clean_public_url(url: str) -> str:
    """`scheme://host[:port][/path]` without a trailing slash; URLError otherwise."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise URLError(f"public_url must look like https://play.example.org (a scheme and a "
                       f"host), got {url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise URLError(f"public_url takes no user, query or fragment, got {url!r}")
    try:
        parts.port  # noqa: B018 (raises for a bad port)
    except ValueError:
        raise URLError(f"public_url has an invalid port: {url!r}") from None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8, ::1 (with or without [brackets])."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _usable(a: IPAddress) -> bool:
    """An address another device could use: not loopback, link-local, multicast or unset."""
    return not (a.is_loopback or a.is_link_local or a.is_multicast or a.is_unspecified)


def interface_addresses() -> list[IPAddress]:
    """This machine's usable interface addresses, IPv4 first, private (LAN) before public."""
    import ifaddr

    found: set[IPAddress] = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            raw = ip.ip[0] if isinstance(ip.ip, tuple) else ip.ip  # IPv6: (addr, flow, scope)
            try:
                a = ipaddress.ip_address(raw)
            except ValueError:
                continue
            if _usable(a):
                found.add(a)
    return sorted(found, key=lambda a: (a.version, not a.is_private, int(a)))


def listen_addresses(host: str, interfaces: list[IPAddress] | None = None) -> list[IPAddress]:
    """The usable addresses a server bound to `host` answers on: every interface's for
    0.0.0.0 (IPv4) or :: (both), else the host's own (resolved when it is a name)."""
    interfaces = interface_addresses() if interfaces is None else interfaces
    if host in WILDCARD:
        return [a for a in interfaces if host == "::" or a.version == 4]
    try:
        addrs = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError:
            return []
        addrs = [ipaddress.ip_address(i[4][0].split("%")[0]) for i in infos]
    return [a for a in dict.fromkeys(addrs) if _usable(a)]


def url_for(scheme: str, host: str | IPAddress, port: int) -> str:
    """scheme://host:port without the default port; IPv6 in brackets."""
    h = str(host)
    if ":" in h and not h.startswith("["):
        h = f"[{h}]"
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{h}" + ("" if port == default else f":{port}")


def friend_urls(scheme: str, host: str, port: int,
                interfaces: list[IPAddress] | None = None) -> list[str]:
    """What a friend's device can open: one base URL per usable listening address."""
    return [url_for(scheme, a, port) for a in listen_addresses(host, interfaces)]


def invite_base(*, public_url: str | None, scheme: str, request_host: str | None,
                listen_host: str, port: int, interfaces: list[IPAddress] | None = None) -> str:
    """The base of invite links for a page that asked through `request_host` (its Host
    header, host[:port]); see the module docstring for the order."""
    if public_url:
        return public_url
    if request_host:
        name = urlsplit(f"//{request_host}").hostname or ""
        if name and not is_loopback(name):
            return f"{scheme}://{request_host}"
        port = urlsplit(f"//{request_host}").port or port  # the port the host's page uses
    friends = friend_urls(scheme, listen_host, port, interfaces)
    if friends:
        return friends[0]
    return f"{scheme}://{request_host}" if request_host else url_for(scheme, "127.0.0.1", port)


def qr_svg(text: str) -> bytes:
    """A QR code of `text` as a standalone SVG (dark on white, so it scans in dark mode)."""
    import segno

    out = io.BytesIO()
    segno.make(text, micro=False, error="m").save(
        out, kind="svg", scale=6, border=2, dark="#000", light="#fff", xmldecl=False,
        title="QR code: " + text)
    return out.getvalue()


def qr_text(text: str) -> str:
    """A QR code of `text` for a terminal (half-block characters, two rows a line)."""
    import segno

    out = io.StringIO()
    segno.make(text, micro=False, error="l").terminal(out=out, compact=True, border=2)
    return out.getvalue()


def banner(*, scheme: str, host: str, port: int, public_url: str | None, self_signed: bool,
           interfaces: list[IPAddress] | None = None) -> tuple[list[str], str | None]:
    """What `utjima serve` prints under "serving on": (lines, the URL to draw as a QR code
    or None). Friends' URLs, or why there are none and what to do."""
    friends = [public_url] if public_url else friend_urls(scheme, host, port, interfaces)
    lines = [f"  on this computer: {url_for(scheme, 'localhost', port)}/"]
    if not friends:
        lines += ["  only this computer can open it. To play with friends on your network:",
                  "  make run HOST=0.0.0.0 TLS=1   (utjima serve --host 0.0.0.0 --tls)"]
        return lines, None
    pad = "  friends open:     "
    for i, url in enumerate(friends):
        lines.append(f"{pad if i == 0 else ' ' * len(pad)}{url}/")
    if scheme == "http" and not public_url:
        lines.append("  browsers give http:// pages from another device no camera: add --tls")
    if self_signed:
        lines.append("  the certificate is self-signed: each browser warns once (Advanced, "
                     "then Proceed)")
    return lines, friends[0] + "/"
