"""The two commands and the package metadata (Makefile, pyproject.toml): `make run` installs
only what serving needs, the install layers share one .venv without reinstalling, and
the project's own metadata builds without deprecation warnings."""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")


def make_n(target: str, venv: Path) -> list[str]:
    """The commands `make TARGET` would run with this .venv (make -n runs none of them)."""
    r = subprocess.run(["make", "-n", target, f"VENV={venv}"], cwd=REPO_ROOT,
                       capture_output=True, text=True, check=True)
    return [line for line in r.stdout.splitlines() if "pip install" in line]


def stamp(venv: Path, *names: str) -> None:
    """A .venv whose python and layer stamps are newer than pyproject.toml."""
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    for path in [venv / "bin" / "python", *(venv / n for n in names)]:
        path.touch()
        later = REPO_ROOT.joinpath("pyproject.toml").stat().st_mtime + 10
        os.utime(path, (later, later))


def test_make_run_installs_serving_only(tmp_path):
    """Issue 10: `make run` installed the train and dev extras (torch, playwright: a
    1.7 GB venv) just to play."""
    [pip] = make_n("run", tmp_path / "venv")
    assert pip.rstrip().endswith("-e .") and "-qq" in pip  # the base, quietly
    for target in ("test", "setup"):
        assert any("'.[train,dev]'" in line for line in make_n(target, tmp_path / "venv"))
    assert any("'.[train]'" in line for line in make_n("train", tmp_path / "venv"))


def test_the_layers_share_one_venv_without_reinstalling(tmp_path):
    venv = tmp_path / "venv"
    stamp(venv, ".base")  # after `make run`
    assert make_n("run", venv) == []
    [extras] = make_n("setup", venv)  # `make test` adds only the extras
    assert "'.[train,dev]'" in extras
    stamp(venv, ".base", ".dev", ".train")  # after `make test`
    assert make_n("run", venv) == [] and make_n("setup", venv) == [] \
        and make_n("train", venv) == []


def test_make_run_passes_host_port_tls_and_args():
    r = subprocess.run(["make", "-n", "run", "HOST=0.0.0.0", "PORT=8443", "TLS=1",
                        "ARGS=--rounds-to-win 2"], cwd=REPO_ROOT, capture_output=True,
                       text=True, check=True)
    serve = " ".join(r.stdout.replace("\\\n", " ").split())
    assert "utjima serve --host 0.0.0.0 --port 8443 --tls --rounds-to-win 2" in serve


def test_the_project_license_is_an_spdx_string_setuptools_reads_without_warning():
    """Issue 10: `project.license` as a TOML table printed a deprecation box on every
    install."""
    setuptools = pytest.importorskip("setuptools")
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    major = int(setuptools.__version__.split(".")[0])
    if major < 77:
        pytest.skip(f"setuptools {setuptools.__version__} predates SPDX license strings")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), REPO_ROOT / "pyproject.toml")
    assert dist.metadata.license_expression == "Apache-2.0"
    assert not [w for w in caught if "license" in str(w.message).lower()], \
        [str(w.message) for w in caught]
