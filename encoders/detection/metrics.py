"""COCO-style mean average precision (Lin et al. 2014, the COCO detection evaluation):
per class and IoU threshold, detections sorted by score are greedily matched to unmatched
ground truth of the same frame; AP is the 101-point interpolated area under precision-recall;
mAP averages over classes (those with ground truth), and mAP@[.5:.95] also over IoU .50:.05:.95."""

from __future__ import annotations

import numpy as np
import torch
from howsure.encoders.detection.boxes import iou

COCO_THRESHOLDS = tuple(np.round(np.arange(0.5, 0.951, 0.05), 2).tolist())


def average_precision(matched: np.ndarray, scores: np.ndarray, n_gt: int) -> float:
    """101-point interpolated AP from per-detection true-positive flags and scores."""
    if n_gt == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(matched[order])
    fp = np.cumsum(~matched[order])
    recall = tp / n_gt
    precision = tp / np.maximum(tp + fp, 1e-12)
    # the precision envelope: best precision at this recall or any higher one
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    ap = 0.0
    for r in np.linspace(0, 1, 101):
        i = np.searchsorted(recall, r, side="left")
        ap += precision[i] if i < len(precision) else 0.0
    return ap / 101


def _match_frame(det_boxes, det_scores, gt_boxes, threshold: float) -> np.ndarray:
    """True-positive flag per detection (sorted by score inside), each ground truth used once."""
    flags = np.zeros(len(det_scores), dtype=bool)
    if len(det_scores) == 0 or len(gt_boxes) == 0:
        return flags
    order = np.argsort(-det_scores, kind="stable")
    overlaps = iou(torch.as_tensor(det_boxes[order], dtype=torch.float64),
                   torch.as_tensor(gt_boxes, dtype=torch.float64)).numpy()
    used = np.zeros(len(gt_boxes), dtype=bool)
    for rank, d in enumerate(order):
        cand = np.where(used, -1.0, overlaps[rank])
        j = int(cand.argmax())
        if cand[j] >= threshold:
            used[j] = True
            flags[d] = True
    return flags


def mean_average_precision(detections: list[dict], ground_truth: list[dict], n_classes: int,
                           thresholds: tuple[float, ...] = COCO_THRESHOLDS) -> dict[float, float]:
    """detections/ground_truth: one dict per frame with 'boxes' (N,4), 'classes' (N,), and
    'scores' (N,) for detections. Returns {iou_threshold: mAP}."""
    out = {}
    for t in thresholds:
        aps = []
        for c in range(n_classes):
            flags, scores, n_gt = [], [], 0
            for det, gt in zip(detections, ground_truth):
                dm, gm = np.asarray(det["classes"]) == c, np.asarray(gt["classes"]) == c
                d_boxes, d_scores = np.asarray(det["boxes"])[dm], np.asarray(det["scores"])[dm]
                g_boxes = np.asarray(gt["boxes"])[gm]
                n_gt += len(g_boxes)
                flags.append(_match_frame(d_boxes, d_scores, g_boxes, t))
                scores.append(d_scores)
            ap = average_precision(np.concatenate(flags) if flags else np.zeros(0, bool),
                                   np.concatenate(scores) if scores else np.zeros(0), n_gt)
            if not np.isnan(ap):
                aps.append(ap)
        out[t] = float(np.mean(aps)) if aps else float("nan")
    return out


def summary(detections: list[dict], ground_truth: list[dict], n_classes: int) -> dict[str, float]:
    """{'map50': mAP@0.5, 'map50_95': mAP@[.5:.95]}."""
    per = mean_average_precision(detections, ground_truth, n_classes)
    return {"map50": per[0.5], "map50_95": float(np.mean(list(per.values())))}
