"""Render a report.html (utjima evaluate, or any page built with utjima.report) to PNG with
headless Chromium: the 1280x800 view and the full page, offline.

    .venv/bin/python -m tools.report_png reports/x/report.html --out reports/x/shots
    # the README's picture (docs/report.png): no research thumbnails, the page to the curves
    .venv/bin/python -m tools.report_png reports/x/report.html --out docs --full-only \\
        --public --until "#curves"

--public removes every block the page marks as research pixels (the worst-error face
thumbnails), so the PNG may be committed; without it, keep the PNGs out of the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.screenshots import shoot


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("html", type=Path, help="the report.html to render")
    ap.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    ap.add_argument("--name", default="report", help="file name stem (default: report)")
    ap.add_argument("--public", action="store_true",
                    help="leave out research-data face thumbnails (for committed pictures)")
    ap.add_argument("--full-only", action="store_true",
                    help="write only the full page, as NAME.png (default: NAME-1280x800.png "
                         "and NAME-full.png)")
    ap.add_argument("--until", default=None, metavar="SELECTOR",
                    help="end the full-page picture below this element, e.g. '#curves' "
                         "(default: the whole page)")
    a = ap.parse_args(argv)
    if not a.html.is_file():
        ap.error(f"{a.html}: not found")
    try:
        facts = shoot(a.html, a.out, name=a.name, hide_research=a.public, until=a.until,
                      view=not a.full_only)
    except ValueError as e:  # --until matches nothing
        ap.error(str(e))
    for f in facts.pop("files"):
        print(f"wrote {f}")
    if facts["requests"] or facts["broken"]:
        print(f"the page is not self-contained: {json.dumps(facts)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
