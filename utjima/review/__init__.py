"""`utjima review`: the visual verification system for recorded clips (docs/review.md).

  session.py   a clip folder (or a research set, read-only), its review sidecar, the
               model's per-frame scores and the reviewer's changes
  suspects.py  the suspects queue: confident learning on out-of-sample scores
  stats.py     dataset statistics per participant, lighting, prompt and label
  sheets.py    contact-sheet PNGs
  app.py       the page's local server (FastAPI), 127.0.0.1 only, a session token
  main.py      what the CLI runs: serve and open the browser, or export / print and exit

The page is utjima/web/review.html + utjima/web/review/. The game server never imports
this package; nothing here imports torch (the model runs through onnxruntime).
"""
