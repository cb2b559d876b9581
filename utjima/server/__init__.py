"""The game server (`utjima serve`): pages, rooms, signalling, the judge, storage.

Never imports torch (a test checks): it serves the exported ONNX files to browsers and
decides rounds with the pure judge from the scores browsers stream. Read top to bottom:

  settings.py   Settings: flags + UTJIMA_* environment, one frozen dataclass
  app.py        create_app(settings): lifespan state, middleware, routers
  security.py   cross-origin isolation + same-origin-only CSP on every response
  schemas.py    pydantic messages, split by direction (client -> server, server -> client)
  clock.py      mapping a client's clock onto the server's (no back-dating)
  ratelimit.py  token buckets
  game.py       Room: the pure, time-explicit room/match state machine
  records.py    MatchRecord: what a finished match leaves for the store (typed)
  hub.py        rooms registry + websocket plumbing + ticker; drives game.Room
  store.py      SQLAlchemy models, migrations at startup, history and leaderboard queries
  routes/       pages (static), rooms (HTTP), ws (websocket), history (HTTP)
  main.py       serve(host, port, ...): settings, then uvicorn
"""
