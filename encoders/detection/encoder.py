"""The detection state encoder: each frame of the stack -> the detector's top-K objects
(class one-hot, normalised box, score, which frame) -> a permutation-invariant set encoder ->
features for any head. Set encoders: DeepSets (Zaheer et al. 2017, arXiv:1703.06114) or
attention with pooling by multi-head attention (Set Transformer, Lee et al. 2019, arXiv:1810.00825).

Two places the detector can run:
  - in the network (the env gives uint8 frames): every forward pass detects every frame of every
    stack; needed to fine-tune the detector with the TD loss (finetune: true);
  - in the env (env.detector set, envs/objects.py): each screen is detected once, when it is
    played, and the observation is already the object rows this module reads; replay stores
    them and an update never runs the detector (about 50x cheaper per update).
Both give the set encoder the same rows, built by object_rows()."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from howsure.annotation import FrameAnnotator
from howsure.errors import UserError

_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DetectionConfig:
    # detector written by `python -m howsure.detector fit`; relative paths are tried from the
    # working directory, then from the folder holding encoders/ (the checkout, or the installed
    # package). The shipped one is trained on Pong.
    checkpoint: str = "encoders/detection/weights/pong.pt"
    top_k: int = 8  # detections kept per frame
    candidates: int = 64  # best anchors per frame that go through NMS
    iou_threshold: float = 0.5  # NMS
    min_score: float = 0.3  # detections below this are masked out of the set
    set_encoder: Literal["deepsets", "attention"] = "deepsets"
    hidden: int = 128  # units per object embedding
    heads: int = 4  # attention heads (set_encoder=attention)
    features: int = 256  # units of the output
    finetune: bool = False  # False: the detector is frozen; True: the agent's loss trains it too


def resolve_checkpoint(path: str) -> Path:
    p = Path(path)
    if not p.is_absolute() and not p.is_file() and (_ROOT / p).is_file():
        return _ROOT / p
    return p


def object_rows(boxes: torch.Tensor, classes: torch.Tensor, scores: torch.Tensor, n_classes: int,
                hw: tuple[int, int], min_score: float) -> torch.Tensor:
    """Detections (..., K) -> rows (..., K, n_classes + 5): [class one-hot, cx, cy, w, h (box in
    [0, 1] of the frame), score]; detections scoring under min_score become all-zero rows."""
    h, w = hw
    x1, y1, x2, y2 = (boxes / boxes.new_tensor([w, h, w, h])).unbind(-1)
    geom = torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], -1)
    onehot = nn.functional.one_hot(classes, n_classes).to(geom.dtype)
    rows = torch.cat([onehot, geom, scores.unsqueeze(-1)], -1)
    return rows * (scores >= min_score).unsqueeze(-1).to(rows.dtype)


def rows_to_boxes(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kept rows of one frame (K, n_classes + 5) -> boxes (x1, y1, x2, y2) in [0, 1], classes, scores."""
    rows = rows[rows[:, -1] > 0]
    cx, cy, w, h = rows[:, -5:-1].T
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1), rows[:, :-5].argmax(1), rows[:, -1]


class DeepSets(nn.Module):
    """rho([mean, max] of phi(x_i)) over the unmasked items: invariant to their order."""

    def __init__(self, d_in: int, hidden: int, out: int):
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.rho = nn.Sequential(nn.Linear(2 * hidden, out), nn.ReLU())

    def forward(self, items: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.phi(items)
        m = mask.unsqueeze(-1).to(h.dtype)
        mean = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        mx = h.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(1).values
        mx = torch.where(torch.isinf(mx), torch.zeros_like(mx), mx)  # an empty set pools to 0
        return self.rho(torch.cat([mean, mx], -1))


class AttentionSet(nn.Module):
    """One self-attention block over the items, then a learned query attends over them (PMA).

    A learned "nothing" item is always present, so a frame with no objects still has a key."""

    def __init__(self, d_in: int, hidden: int, heads: int, out: int):
        super().__init__()
        self.embed = nn.Linear(d_in, hidden)
        self.null = nn.Parameter(torch.zeros(1, 1, hidden))
        self.self_attn = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.ff = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.query = nn.Parameter(torch.randn(1, 1, hidden) * 0.1)
        self.pool = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.out = nn.Sequential(nn.Linear(hidden, out), nn.ReLU())

    def forward(self, items: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b = items.shape[0]
        x = torch.cat([self.null.expand(b, -1, -1), self.embed(items)], 1)
        pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=mask.device), ~mask], 1)
        x = self.norm1(x + self.self_attn(x, x, x, key_padding_mask=pad, need_weights=False)[0])
        x = self.norm2(x + self.ff(x))
        pooled = self.pool(self.query.expand(b, -1, -1), x, x, key_padding_mask=pad, need_weights=False)[0]
        return self.out(pooled.squeeze(1))


class DetectionEncoder(nn.Module, FrameAnnotator):
    def __init__(self, cfg: DetectionConfig, spec):
        super().__init__()
        if cfg.top_k <= 0 or cfg.candidates < cfg.top_k:
            raise UserError("encoder.detection.top_k must be positive and at most encoder.detection.candidates")
        if not 0 <= cfg.min_score <= 1:
            raise UserError(f"encoder.detection.min_score must be in [0, 1], got {cfg.min_score}")
        self.cfg = cfg
        shape = tuple(spec.obs_shape)
        # objects detected in the env (envs/objects.py): float rows (stack, K, n_classes + 5)
        self.env_side = spec.obs_dtype != np.uint8
        if self.env_side:
            if len(shape) != 3 or shape[-1] < 6:
                raise UserError(f"encoder.detection reads uint8 frames or the object rows of env.detector; "
                                f"this env gives {shape} {spec.obs_dtype}: use an ALE/ game")
            if cfg.finetune:
                raise UserError("encoder.detection.finetune needs the detector in the network: "
                                "set env.detector=null so the env gives pixels")
            self.detector = None
            self.n_stack, self.n_classes = shape[0], shape[-1] - 5
        else:
            from howsure.encoders.detection.model import load_detector

            self.detector, _ = load_detector(resolve_checkpoint(cfg.checkpoint))
            if not cfg.finetune:
                self.detector.requires_grad_(False)
            self.n_stack = shape[0] if len(shape) == 3 else 1
            self.hw = tuple(shape[-2:])
            if len(shape) not in (2, 3) or self.hw != tuple(self.detector.cfg.input_hw):
                raise UserError(f"encoder.detection's detector reads {tuple(self.detector.cfg.input_hw)} grey frames, "
                                f"this env gives observations {shape}; use an ALE/ game with env.screen_size="
                                f"{self.detector.cfg.input_hw[0]}")
            self.n_classes = self.detector.n_classes
        d_in = self.n_classes + 4 + 1 + self.n_stack
        if cfg.set_encoder == "deepsets":
            self.set_encoder = DeepSets(d_in, cfg.hidden, cfg.features)
        else:
            self.set_encoder = AttentionSet(d_in, cfg.hidden, cfg.heads, cfg.features)
        self.out_features = cfg.features
        self.last_detections: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def train(self, mode: bool = True):
        super().train(mode)
        if self.detector is not None and not self.cfg.finetune:
            self.detector.eval()
        return self

    def detect(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Boxes (B, S, K, 4) in pixels, classes (B, S, K), scores (B, S, K) for a batch of stacks."""
        b = obs.shape[0]
        frames = obs.reshape(b * self.n_stack, *self.hw)
        with torch.set_grad_enabled(self.cfg.finetune and torch.is_grad_enabled()):
            boxes, classes, scores = self.detector.top_k(frames, self.cfg.top_k, self.cfg.candidates,
                                                         self.cfg.iou_threshold)
        k = self.cfg.top_k
        return boxes.view(b, self.n_stack, k, 4), classes.view(b, self.n_stack, k), scores.view(b, self.n_stack, k)

    def rows(self, obs: torch.Tensor) -> torch.Tensor:
        """Object rows (B, S, K, n_classes + 5) of a batch of observations (see object_rows)."""
        if self.env_side:
            return obs.float()
        return object_rows(*self.detect(obs), self.n_classes, self.hw, self.cfg.min_score)

    def items(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Set items (B, S*K, d) and their mask (B, S*K): each row with its frame one-hot appended;
        all-zero rows (no detection, or one under min_score) are masked out."""
        b, s, k, _ = rows.shape
        frame = torch.eye(s, dtype=rows.dtype, device=rows.device).view(1, s, 1, s).expand(b, s, k, s)
        mask = (rows[..., -1] > 0).reshape(b, s * k)
        x = torch.cat([rows, frame], -1).reshape(b, s * k, -1)
        return x * mask.unsqueeze(-1), mask

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        rows = self.rows(obs)
        # the newest frame of the first observation, for evaluate.py --video (annotate_frame)
        self.last_detections = rows_to_boxes(rows[0, -1].detach().cpu().numpy())
        return self.set_encoder(*self.items(rows))

    def annotate_frame(self, frame: np.ndarray) -> np.ndarray:
        """Draw the detections of the last observation acted on, scaled to the colour screen."""
        from howsure.encoders.detection.draw import draw_boxes

        if self.last_detections is None:
            return frame
        boxes, classes, _ = self.last_detections
        h, w = frame.shape[:2]
        return draw_boxes(frame, boxes, classes, (w, h))
