"""Greedy non-maximum suppression: keep the best-scoring box, drop the boxes overlapping it by
more than the threshold, repeat. Written in torch because torchvision is not importable here."""

from __future__ import annotations

import torch
from howsure.encoders.detection.boxes import iou


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the kept boxes, best score first (torchvision.ops.nms semantics)."""
    order = scores.argsort(descending=True)
    overlaps = iou(boxes[order], boxes[order])
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i] > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor,
                iou_threshold: float) -> torch.Tensor:
    """Per-class NMS in one call: boxes of different classes never suppress each other."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    offset = classes.to(boxes.dtype)[:, None] * (boxes.max() + 1)
    return nms(boxes + offset, scores, iou_threshold)


def padded_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor,
               iou_threshold: float) -> torch.Tensor:
    """Per-class NMS for many frames at once, for the encoder's batches.

    boxes (F, M, 4), scores (F, M) sorted descending per frame, classes (F, M) -> keep mask (F, M).
    Loops over the M candidate slots, not over frames, so a batch of 128 frames is M small steps.
    """
    f, m = scores.shape
    overlaps = iou(boxes, boxes)  # (F, M, M)
    conflict = (overlaps > iou_threshold) & (classes[:, :, None] == classes[:, None, :])
    keep = torch.ones(f, m, dtype=torch.bool, device=boxes.device)
    for i in range(1, m):
        # slot i is dropped if any kept, better-scored slot j < i overlaps it
        keep[:, i] = ~(conflict[:, :i, i] & keep[:, :i]).any(dim=1)
    return keep
