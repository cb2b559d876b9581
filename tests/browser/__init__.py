"""Helpers for the headless-browser tests and benchmarks (no pytest import here, so
benchmarks/bench_browser.py and other tests reuse them):

  fakecam.py   y4m fake-camera files and test scenes (neutral -> smiling clips)
  server.py    a running server for the pages: `utjima serve`, else a static stand-in
  chromium.py  Debian's Chromium through Playwright, with the flags every run needs

Inside tests/ (which pytest puts on sys.path): `from browser import fakecam, server, chromium`.
"""
