"""ICE servers for each member's RTCPeerConnection: STUN, and TURN with short-lived
credentials (the TURN REST scheme that coturn's `use-auth-secret` checks).

Two browsers behind NATs often cannot reach each other directly; a TURN server relays their
(encrypted) media. Its password is never static in a page: every `welcome` carries
credentials made for that member, valid `turn_ttl_s`:

    username   = "<unix expiry>:<member id>"
    credential = base64(HMAC-SHA1(turn_secret, username))

coturn recomputes the HMAC with the same secret and refuses an expired username when an
allocation is made (a call already relaying keeps going). `ice_transport_policy="relay"`
makes the pages use only relayed candidates, so players never learn each other's address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from utjima.server.settings import Settings


def turn_credentials(secret: str, member_id: str, ttl_s: float,
                     now_s: float) -> tuple[str, str]:
    """(username, credential) valid until now_s + ttl_s (TURN REST API, coturn)."""
    username = f"{int(now_s + ttl_s)}:{member_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(settings: Settings, member_id: str) -> list[dict]:
    """RTCIceServer dicts for one member: the static `ice_servers` setting, the STUN URLs,
    and the TURN URLs with this member's fresh credentials (from settings.wall_clock)."""
    out: list[dict[str, Any]] = [dict(s) for s in settings.ice_servers]
    if settings.stun_urls:
        out.append({"urls": list(settings.stun_urls)})
    if settings.turn_urls and settings.turn_secret:
        user, cred = turn_credentials(settings.turn_secret, member_id, settings.turn_ttl_s,
                                      settings.wall_clock())
        out.append({"urls": list(settings.turn_urls), "username": user, "credential": cred})
    return out
