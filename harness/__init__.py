"""The browser harness: what the headless-browser tests, benchmarks/bench_browser.py and
tools/make_fake_camera.py share. Development only: it sits beside the `utjima` package,
not in it, so the wheel never ships it; it imports no pytest.

  chromium.py  Debian's Chromium through Playwright (never `playwright install`), with the
               flags every run needs
  fakecam.py   y4m fake-camera files and test scenes (neutral -> smiling clips)
  server.py    a server for the pages: `utjima serve` on a free port, else a static stand-in
  capture.py   the capture page's participant: a one-face camera, `serve --collect`, the steps

Import it from the repository root: `python -m pytest` (pyproject sets pythonpath = ".")
and the scripts run as modules, `python -m benchmarks.bench_browser`,
`python -m tools.make_fake_camera`.
"""
