"""Shared pytest fixtures: the research archives, unpacked once into utjima's dataset cache
($UTJIMA_CACHE or ~/.cache/utjima: the same cache training uses, so nothing unpacks twice)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The folder with the research archives ($UTJIMA_DATASETS, else ../shared/datasets);
    skips the test when it is missing."""
    path = Path(os.environ.get("UTJIMA_DATASETS") or REPO_ROOT.parent / "shared" / "datasets")
    if not path.is_dir():
        pytest.skip(f"research archives not found at {path} (set UTJIMA_DATASETS)")
    return path


@pytest.fixture(scope="session")
def dataset_cache(shared_datasets):
    """`dataset_cache(name) -> Path` of the unpacked archive ("smilesmiled", "ferplus",
    "genki4k"), verified and extracted at most once."""
    from utjima.data import cache

    def get(name: str) -> Path:
        if not cache.archive_path(name, shared_datasets).is_file() and not cache.is_prepared(name):
            pytest.skip(f"{cache.info(name).file} not found in {shared_datasets}")
        return cache.prepare(name, source=shared_datasets)

    return get


def perturbed_model(preset: str = "face64", seed: int = 0, **overrides):
    """A DualHeadSmileDetector whose outputs change with its input about as a trained
    model's do: random BatchNorm affine terms, BatchNorm statistics measured on random
    inputs (smooth images and pixel noise, what the tests feed it), heads scaled up. A fresh
    init, or random statistics alone, gives features that barely move with the input
    (spread ~1e-8), which would make parity and step == sequence checks pass trivially."""
    import torch
    import torch.nn.functional as F

    from utjima.model import DualHeadSmileDetector, get_config

    torch.manual_seed(seed)
    m = DualHeadSmileDetector(get_config(preset, **overrides))
    c, s = m.cfg.in_chans, m.cfg.img_size
    x = torch.cat([F.interpolate(torch.rand(16, c, 8, 8), size=(s, s), mode="bilinear"),
                   torch.rand(16, c, s, s)])
    bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in bns:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0, 0.2)
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average: the statistics of exactly this batch
        m.train()
        m.encode(x)
        for head in (m.smile_head, m.emotion_head):
            head.weight.mul_(10)
    for bn in bns:
        bn.momentum = 0.01
    return m.eval()


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory):
    """A face64 model exported to ONNX + model.json in a temp folder (random weights)."""
    from utjima.export import export_model

    out = tmp_path_factory.mktemp("model")
    export_model(perturbed_model(), out, threshold=0.5,
                 provenance={"training": "none: test fixture"})
    return out
