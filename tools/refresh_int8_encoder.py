"""Rewrite a model folder's encoder.int8.onnx from its encoder.onnx the way `utjima export`
writes it now (utjima.export.write_int8_encoder), and its model.json `files.encoder_int8`
entry; nothing else changes. The int8 weights come out byte-identical (quantize_weights is
deterministic); the graph around them is what changes (onnx_weights.small_maps_as_matmul).

    .venv/bin/python tools/refresh_int8_encoder.py [--model utjima/models]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from utjima.contract import MODEL_JSON, load_contract
from utjima.export import sample_crops, validation_crops, write_int8_encoder
from utjima.model import ModelConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    a = ap.parse_args(argv)
    contract = load_contract(a.model)
    out = Path(contract.dir)
    cfg = ModelConfig.from_dict(contract.data["model_config"])
    crops = validation_crops(cfg)  # real face crops, as export compares on; else smooth noise
    data = json.loads((out / MODEL_JSON).read_text())
    entry = write_int8_encoder(out, sample_crops(cfg, crops), real_crops=crops is not None)
    print(json.dumps({k: v for k, v in entry.items() if k not in ("inputs", "outputs")}))
    data["files"]["encoder_int8"] = entry
    (out / MODEL_JSON).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    load_contract(out)  # sha256s check out
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
