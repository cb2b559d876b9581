"""Debian's Chromium driven by Playwright for Python (never `playwright install`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = Path(os.environ.get("UTJIMA_CHROMIUM", "/usr/bin/chromium"))
# Every launch: no sandbox (root in a container), software rendering, no background traffic.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


class ChromiumMissing(RuntimeError):
    """No Chromium binary and no way to install one here."""


def debian_binary(path: Path, package: str, install: bool = True) -> bool:
    """Whether `path` exists, after installing Debian's `package` when it is missing and we
    are root (as `make system-deps` does)."""
    if path.is_file():
        return True
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    return path.is_file()


def ensure_chromium(install: bool = True) -> Path:
    """The Chromium binary; installs Debian's package when missing and we are root."""
    if debian_binary(CHROMIUM, "chromium", install):
        return CHROMIUM
    raise ChromiumMissing(f"no Chromium at {CHROMIUM}; install it with "
                          "`apt-get install -y chromium` (or `make system-deps`)")


def launch_args(fake_video: str | Path | None = None) -> list[str]:
    """Chromium flags; with `fake_video` (a .y4m file) the page gets it as its camera, and
    getUserMedia is granted without a prompt."""
    args = list(ARGS)
    if fake_video is not None:
        args += ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                 f"--use-file-for-fake-video-capture={fake_video}"]
    return args


def remote_args(cert: str | Path | None, host: str = "utjima.test") -> list[str]:
    """Flags that make this machine's server look like another computer's: `host` resolves
    to 127.0.0.1 (a name that is not loopback, so http:// there is not a secure context),
    and, for https, exactly this server's certificate (`cert`, PEM) is trusted, by its
    public-key pin, as a friend's browser trusts it after accepting the warning."""
    args = [f"--host-resolver-rules=MAP {host} 127.0.0.1"]
    if cert is not None:
        from utjima.server.tls import spki_sha256

        args.append(f"--ignore-certificate-errors-spki-list={spki_sha256(cert)}")
    return args


def launch(playwright, fake_video: str | Path | None = None, **kwargs):
    """A headless Browser (Playwright's sync API) on Debian's Chromium."""
    return playwright.chromium.launch(executable_path=str(ensure_chromium()), headless=True,
                                      args=launch_args(fake_video), **kwargs)
