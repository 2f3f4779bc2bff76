"""Anchors of RetinaNet (arXiv:1708.02002, sec. 4): at every feature-map cell of every pyramid
level, one box per (scale, aspect ratio), centred on the cell. Sized for 84x84 Atari frames,
whose objects are 1-10 pixels, so the levels are strides 2, 4, 8 instead of the paper's 8-128."""

from __future__ import annotations

import math

import torch
from howsure.encoders.detection.boxes import iou


def cell_anchors(size: float, scales: tuple[float, ...], ratios: tuple[float, ...]) -> torch.Tensor:
    """(len(scales)*len(ratios), 4) boxes centred on 0; ratio = height / width, area = (size*scale)^2."""
    out = []
    for s in scales:
        for r in ratios:
            side = size * s
            w, h = side / math.sqrt(r), side * math.sqrt(r)
            out.append([-w / 2, -h / 2, w / 2, h / 2])
    return torch.tensor(out, dtype=torch.float32)


def grid_anchors(feature_hw: tuple[int, int], stride: int, size: float, scales: tuple[float, ...],
                 ratios: tuple[float, ...]) -> torch.Tensor:
    """(H*W*A, 4), ordered cell-major (row, column) then anchor, matching a head's (A*K, H, W)
    output permuted to (H, W, A, K)."""
    h, w = feature_hw
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * stride
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    centres = torch.stack([cx, cy, cx, cy], dim=-1).reshape(-1, 1, 4)
    return (centres + cell_anchors(size, scales, ratios)[None]).reshape(-1, 4)


def match(anchors: torch.Tensor, gt: torch.Tensor, pos_iou: float = 0.5, neg_iou: float = 0.4,
          low_quality: bool = True) -> torch.Tensor:
    """Index of the matched ground-truth box per anchor; -1 background, -2 ignored.

    RetinaNet's rule: IoU >= pos_iou is foreground, < neg_iou background, in between ignored.
    low_quality: each box also claims its best anchor(s) (as torchvision does), because a 1-pixel
    ball overlaps no anchor by 0.5 and would otherwise never be trained on.
    """
    n = anchors.shape[0]
    if gt.numel() == 0:
        return torch.full((n,), -1, dtype=torch.long)
    overlaps = iou(gt, anchors)  # (G, N)
    best, idx = overlaps.max(dim=0)
    out = torch.where(best >= pos_iou, idx, torch.full_like(idx, -2))
    out = torch.where(best < neg_iou, torch.full_like(idx, -1), out)
    if low_quality:
        best_per_gt = overlaps.max(dim=1, keepdim=True).values
        g, a = torch.nonzero((overlaps == best_per_gt) & (best_per_gt > 0), as_tuple=True)
        out[a] = g
    return out
