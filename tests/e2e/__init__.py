"""Browser end-to-end tests of the game (headless Chromium)."""
