"""Who may watch, in the browser: the host's invite-only switch in the lobby, the watch link
it shows, a would-be spectator without the link told why (in Korean too), and one with the
link let in. Screenshots of the lobby at 390x844 and 1280x800 in English and Korean go to
.cache/e2e/watch-*.png. The detector is the scripted stand-in (tests/e2e/stub_detector.js):
this is about the pages and the server, not the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from .support import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STUB = Path(__file__).with_name("stub_detector.js").read_text()
SIZES = {"phone": {"width": 390, "height": 844}, "laptop": {"width": 1280, "height": 800}}


def context(browser, size: str, lang: str):
    ctx = browser.new_context(viewport=SIZES[size], locale="ko-KR" if lang == "ko" else "en-US")
    ctx.set_default_timeout(30_000)
    ctx.route("**/static/detector/detector.js",
              lambda r: r.fulfill(body=STUB, content_type="text/javascript"))
    ctx.add_init_script(f"localStorage.setItem('utjima:lang', '{lang}')")
    return ctx


def test_the_host_makes_spectating_invite_only(chromium, serve, shots):
    from playwright.sync_api import sync_playwright

    server = serve()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            host = context(browser, "laptop", "en").new_page()
            host.goto(server.base + "/")
            host.fill("#nickname", "Ana")
            host.click("#create")
            host.wait_for_selector("#created:not([hidden])")
            code = host.text_content("#created-code")
            host.click("#enter")
            host.wait_for_selector(".tile.me")
            host.wait_for_selector("#invite-only-row:not([hidden])")
            assert host.is_hidden("#watch-row")
            host.check("#invite-only")
            host.wait_for_selector("#watch-row:not([hidden])")
            watch = host.input_value("#watch-link")
            assert watch.startswith(f"{server.base}/r/{code}?spectate=1&watch=")
            assert server.get(f"/api/rooms/{code}")["spectating"] == "invite"
            shots_of(host, shots)
            assert host.text_content("#invite-only-row").strip().startswith("Only")

            # without the link: told why, in their language, and not let in
            for lang, words in (("en", "watch link"), ("ko", "관전 링크")):
                eve = context(browser, "phone", lang).new_page()
                eve.goto(f"{server.base}/r/{code}?spectate=1")
                eve.fill("#nickname", "Eve")
                eve.click("#join-spectator")
                eve.wait_for_selector("#error:not([hidden])")
                assert words in eve.text_content("#error"), eve.text_content("#error")
                assert eve.is_hidden("#game")
                eve.screenshot(path=str(shots / f"watch-refused-{lang}-phone.png"))
            # with it: in
            sam = context(browser, "phone", "en").new_page()
            sam.goto(watch)
            sam.fill("#nickname", "Sam")
            sam.click("#join-spectator")
            sam.wait_for_selector(".tile")
            host.wait_for_function(
                "() => document.querySelector('#spectators').textContent.includes('1')")
            # the host opens it again
            host.uncheck("#invite-only")
            host.wait_for_selector("#watch-row", state="hidden")
            assert server.get(f"/api/rooms/{code}")["spectating"] == "open"
        finally:
            browser.close()


def shots_of(host, shots: Path) -> None:
    """The host's lobby with the switch on, at both sizes, in English then Korean."""
    for lang in ("en", "ko"):
        for size, viewport in SIZES.items():
            host.set_viewport_size(viewport)
            host.screenshot(path=str(shots / f"watch-lobby-{lang}-{size}.png"), full_page=True)
        host.click("#lang")  # en -> ko -> en
    host.set_viewport_size(SIZES["laptop"])
