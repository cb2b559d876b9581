"""Screenshots of a self-contained HTML page (a utjima report) opened from disk.

`shoot(html, out_dir)` opens the file in headless Chromium with every network request
refused (a report must need none), takes the 1280x800 view and the full page, and returns
what a test wants to check: the requests that were tried, pictures that failed to decode,
horizontal overflow, the page height. `hide_research=True` removes the blocks marked
`research` (face thumbnails from research datasets) before the shots, and `until` clips
the full page just below the element it selects: what `tools/report_png.py` makes for a
README.
"""

from __future__ import annotations

from pathlib import Path

from harness.chromium import launch

# How the page looks to a test: what it tried to fetch, what it could not draw, its layout.
PAGE_FACTS = """() => ({
  broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length,
  images: document.images.length,
  visibleImages: [...document.images].filter(i => i.offsetParent !== null).length,
  svgs: document.querySelectorAll('svg').length,
  scrollWidth: document.documentElement.scrollWidth,
  height: document.documentElement.scrollHeight,
  cmCell: Math.min(...[...document.querySelectorAll('figure.cm td:not(.tot)')]
                   .map(td => td.getBoundingClientRect().width)),
  research: document.querySelectorAll('.research').length,
})"""


def shoot(html: str | Path, out_dir: str | Path, *, name: str = "report", width: int = 1280,
          height: int = 800, hide_research: bool = False, until: str | None = None,
          view: bool = True) -> dict:
    """Write `<name>-1280x800.png` and `<name>-full.png` (clipped below `until` when given)
    into `out_dir`, or with `view=False` the full page alone as `<name>.png`; return the
    page's facts plus `requests` (URLs other than file: and data: that the page tried to
    load) and the `files` written."""
    from playwright.sync_api import sync_playwright

    html, out_dir = Path(html).resolve(), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tried: list[str] = []

    def route(r):
        url = r.request.url
        if url.startswith(("file:", "data:")):
            return r.continue_()
        tried.append(url)
        return r.abort()

    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.route("**/*", route)
            page.goto(html.as_uri(), wait_until="load")
            if hide_research:
                page.add_style_tag(content=".research{display:none!important}")
            facts = page.evaluate(PAGE_FACTS)
            shot = out_dir / f"{name}-{width}x{height}.png"
            full = out_dir / (f"{name}-full.png" if view else f"{name}.png")
            if view:
                page.screenshot(path=str(shot))
            if until:
                bottom = page.evaluate(
                    "s => { const e = document.querySelector(s); if (!e) return null;"
                    " return e.getBoundingClientRect().bottom + window.scrollY; }", until)
                if bottom is None:
                    raise ValueError(f"no element matches {until!r} in {html}")
                page.screenshot(path=str(full), full_page=True,
                                clip={"x": 0, "y": 0, "width": width,
                                      "height": min(bottom + 20, facts["height"])})
            else:
                page.screenshot(path=str(full), full_page=True)
        finally:
            browser.close()
    return {**facts, "requests": tried, "files": [shot, full] if view else [full]}
