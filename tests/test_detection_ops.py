"""Detector ops against hand-computed values: anchors, matching, box coding, focal loss, NMS, mAP."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from howsure.encoders.detection.anchors import cell_anchors, grid_anchors, match
from howsure.encoders.detection.boxes import decode, encode, iou
from howsure.encoders.detection.focal_loss import focal_loss
from howsure.encoders.detection.metrics import average_precision, mean_average_precision, summary
from howsure.encoders.detection.nms import batched_nms, nms, padded_nms


def test_cell_anchors_area_and_ratio():
    a = cell_anchors(2.0, (1.0,), (1.0, 4.0))
    # ratio = height / width at area size^2: 2x2 and 1x4
    assert torch.allclose(a, torch.tensor([[-1.0, -1.0, 1.0, 1.0], [-0.5, -2.0, 0.5, 2.0]]))


def test_grid_anchors_centres_and_order():
    a = grid_anchors((2, 3), 4, 2.0, (1.0,), (1.0,))
    assert a.shape == (6, 4)
    # row-major cells centred at (stride * (i + 0.5))
    assert torch.allclose(a[0], torch.tensor([1.0, 1.0, 3.0, 3.0]))
    assert torch.allclose(a[1], torch.tensor([5.0, 1.0, 7.0, 3.0]))
    assert torch.allclose(a[3], torch.tensor([1.0, 5.0, 3.0, 7.0]))


def test_iou_hand_values():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0], [5.0, 5.0, 6.0, 6.0]])
    assert torch.allclose(iou(a, b), torch.tensor([[1.0, 1.0 / 7.0, 0.0]]))


def test_match_thresholds_and_low_quality():
    anchors = torch.tensor([[0.0, 0.0, 2.0, 2.0], [2.0, 0.0, 4.0, 2.0], [0.0, 0.0, 4.0, 2.0]])
    # IoUs with [0,0,3,2]: 4/6, 2/8, 6/8
    assert match(anchors, torch.tensor([[0.0, 0.0, 3.0, 2.0]])).tolist() == [0, -1, 0]
    # IoUs with [0,0,4.5,2]: 4/9 (ignored), 4/9 (ignored), 8/9 (foreground)
    assert match(anchors, torch.tensor([[0.0, 0.0, 4.5, 2.0]])).tolist() == [-2, -2, 0]
    # a tiny box overlapping every anchor by < 0.4 still claims its best anchor
    tiny = torch.tensor([[0.5, 0.5, 1.0, 1.0]])
    assert match(anchors, tiny, low_quality=False).tolist() == [-1, -1, -1]
    assert match(anchors, tiny).tolist() == [0, -1, -1]
    assert match(anchors, torch.zeros(0, 4)).tolist() == [-1, -1, -1]


def test_box_encoding_hand_values_and_round_trip():
    anchor = torch.tensor([[0.0, 0.0, 4.0, 2.0]])  # centre (2, 1), 4 x 2
    gt = torch.tensor([[1.0, 0.0, 5.0, 4.0]])  # centre (3, 2), 4 x 4
    d = encode(gt, anchor)
    assert torch.allclose(d, torch.tensor([[0.25, 0.5, 0.0, math.log(2.0)]]))
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=g) * 80
    boxes = torch.cat([xy, xy + 0.5 + torch.rand(50, 2, generator=g) * 10], 1)
    anchors = torch.cat([xy + 1, xy + 1 + torch.rand(50, 2, generator=g) * 8 + 0.5], 1)
    assert torch.allclose(decode(encode(boxes, anchors), anchors), boxes, atol=1e-4)


def test_focal_loss_hand_values():
    zero = torch.zeros(1)
    ln2 = math.log(2.0)
    # p = 0.5: (1 - p_t)^2 = 0.25; alpha_t = 0.25 for foreground, 0.75 for background
    assert focal_loss(zero, torch.ones(1)).item() == pytest.approx(0.25 * 0.25 * ln2, rel=1e-6)
    assert focal_loss(zero, torch.zeros(1)).item() == pytest.approx(0.75 * 0.25 * ln2, rel=1e-6)
    # gamma 0 and no alpha is binary cross-entropy
    x, t = torch.tensor([2.0, -1.0, 0.3]), torch.tensor([1.0, 0.0, 0.0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(x, t, reduction="sum")
    assert focal_loss(x, t, alpha=-1, gamma=0).item() == pytest.approx(bce.item(), rel=1e-6)
    # an easy example (p_t = 0.9) is down-weighted 100x relative to cross-entropy
    easy = torch.tensor([math.log(9.0)])
    assert focal_loss(easy, torch.ones(1), alpha=-1).item() == pytest.approx(0.01 * math.log(1 / 0.9), rel=1e-5)


BOXES = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 10.0, 10.0]])
SCORES = torch.tensor([0.9, 0.8, 0.7, 0.95])


def test_nms_hand_case():
    # IoU(b0, b1) = 81/119 = 0.68 > 0.5: b3 (best) suppresses b0 and b1
    assert nms(BOXES, SCORES, 0.5).tolist() == [3, 2]
    assert nms(BOXES, SCORES, 0.7).tolist() == [3, 1, 2]
    # another class is never suppressed
    assert batched_nms(BOXES, SCORES, torch.tensor([0, 1, 0, 0]), 0.5).tolist() == [3, 1, 2]


def test_padded_nms_agrees_with_nms():
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        xy = torch.rand(12, 2, generator=g) * 20
        boxes = torch.cat([xy, xy + 3 + torch.rand(12, 2, generator=g) * 6], 1)
        scores, order = torch.rand(12, generator=g).sort(descending=True)
        boxes = boxes[order]
        classes = torch.randint(0, 2, (12,), generator=g)
        keep = padded_nms(boxes[None], scores[None], classes[None], 0.3)[0]
        ref = batched_nms(boxes, scores, classes, 0.3)
        assert sorted(torch.nonzero(keep).squeeze(1).tolist()) == sorted(ref.tolist())


def test_average_precision_hand_case():
    # sorted detections: TP, FP, TP of 2 ground truths -> precision envelope 1 up to recall 0.5,
    # 2/3 above: 101-point AP = (51 * 1 + 50 * 2/3) / 101
    ap = average_precision(np.array([True, False, True]), np.array([0.9, 0.8, 0.7]), 2)
    assert ap == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert average_precision(np.zeros(0, bool), np.zeros(0), 3) == 0.0


def test_map_matching_per_frame_and_threshold():
    gt = [{"boxes": np.array([[0, 0, 10, 10.0]]), "classes": np.array([0])},
          {"boxes": np.array([[0, 0, 10, 10.0], [50, 50, 60, 60.0]]), "classes": np.array([0, 1])}]
    dets = [{"boxes": np.array([[0, 0, 10, 10.0]]), "classes": np.array([0]), "scores": np.array([0.9])},
            {"boxes": np.array([[20, 20, 30, 30.0], [0, 0, 10, 10.0], [50, 50, 60, 58.0]]),
             "classes": np.array([0, 0, 1]), "scores": np.array([0.8, 0.7, 0.6])}]
    per = mean_average_precision(dets, gt, 2, thresholds=(0.5, 0.85))
    # class 0 as in the hand case above; class 1 one detection at IoU 0.8: a hit at 0.5, a miss at 0.85
    class0 = (51 + 50 * 2 / 3) / 101
    assert per[0.5] == pytest.approx((class0 + 1.0) / 2)
    assert per[0.85] == pytest.approx((class0 + 0.0) / 2)
    perfect = [{**g, "scores": np.ones(len(g["classes"]))} for g in gt]
    assert summary(perfect, gt, 2) == {"map50": 1.0, "map50_95": 1.0}
