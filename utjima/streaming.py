"""The streaming contract: which past frames feed the recurrent step at time `t_ms`.

The model is "an LSTM over the last `n_frames` frames sampled every `frame_interval_ms`".
We keep that exact model when streaming: the encoder runs once per camera frame, its
features go into a `FeatureWindow`, and at every frame the T-step LSTM is re-run over the
window (about 0.1 ms). An LSTM state carried forever would be a different model.

Window rule (mirrored in `utjima/web/detector/streaming.js`; shared vectors in
`tests/vectors/streaming.json`):
- target times are `t_ms - (n_frames - 1 - k) * frame_interval_ms` for k = 0..T-1;
- each target takes the latest frame with `t <= target` (sample and hold);
- a target before the first frame takes the first frame, so a fresh stream sees the first
  face repeated, exactly like the still-image clips the model was trained on.
Time only enters through `t_ms` arguments; nothing here reads a clock.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np


def window_indices(times_ms: list[float], t_ms: float, n_frames: int,
                   frame_interval_ms: float) -> list[int]:
    """Indices into `times_ms` (ascending, last one == t_ms) forming the window at `t_ms`."""
    if not times_ms:
        raise ValueError("window_indices needs at least one frame")
    out = []
    for k in range(n_frames):
        target = t_ms - (n_frames - 1 - k) * frame_interval_ms
        # latest frame at or before target; before the first frame -> the first frame
        i = bisect_right(times_ms, target + 1e-6) - 1
        out.append(max(i, 0))
    return out


@dataclass
class FeatureWindow:
    """Per-player history of encoder features; `push` returns the (T, F) step input."""

    n_frames: int
    frame_interval_ms: float
    times_ms: list[float] = field(default_factory=list)
    feats: list[np.ndarray] = field(default_factory=list)

    def reset(self) -> None:
        self.times_ms.clear()
        self.feats.clear()

    def push(self, t_ms: float, feature: np.ndarray) -> np.ndarray:
        if self.times_ms and t_ms <= self.times_ms[-1]:
            raise ValueError(f"t_ms must increase: got {t_ms} after {self.times_ms[-1]}")
        self.times_ms.append(float(t_ms))
        self.feats.append(np.asarray(feature, dtype=np.float32).reshape(-1))
        idx = window_indices(self.times_ms, t_ms, self.n_frames, self.frame_interval_ms)
        window = np.stack([self.feats[i] for i in idx])  # (T, F)
        # Drop frames no future window can pick: everything before the oldest one used now.
        keep_from = idx[0]
        if keep_from > 0:
            del self.times_ms[:keep_from]
            del self.feats[:keep_from]
        return window
