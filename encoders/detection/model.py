"""RetinaNet (Lin et al. 2017, arXiv:1708.02002) sized for 84x84 grey Atari frames: a small
convolutional backbone, a feature pyramid (Lin et al. 2017, arXiv:1612.03144) over strides 2, 4
and 8, one class subnet trained with focal loss and one box subnet, both shared across levels."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from howsure.encoders.detection.anchors import grid_anchors, match
from howsure.encoders.detection.boxes import decode, encode
from howsure.encoders.detection.focal_loss import focal_loss_elements
from howsure.encoders.detection.nms import batched_nms, padded_nms
from torch import nn

FORMAT = "howsure-detector/1"


@dataclass(frozen=True)
class DetectorConfig:
    class_names: tuple[str, ...] = ("object",)
    input_hw: tuple[int, int] = (84, 84)  # pixels
    backbone_channels: tuple[int, int, int] = (16, 32, 32)  # at strides 2, 4, 8
    fpn_channels: int = 32
    head_convs: int = 1  # 3x3 convs before each subnet's output (the paper: 4 of 256 channels)
    strides: tuple[int, ...] = (2, 4, 8)  # pixels per feature cell, one pyramid level each
    anchor_sizes: tuple[float, ...] = (2.0, 4.0, 8.0)  # pixels, one per level
    anchor_scales: tuple[float, ...] = (1.0, 1.5)
    anchor_ratios: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)  # height / width
    pos_iou: float = 0.5
    neg_iou: float = 0.4
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    prior: float = 0.01  # initial foreground probability of the class subnet (paper sec. 4.1)

    def to_plain(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @staticmethod
    def from_plain(d: dict) -> "DetectorConfig":
        return DetectorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU(inplace=True))


class RetinaNet(nn.Module):
    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        self.cfg = cfg
        c2, c3, c4 = cfg.backbone_channels
        # +2 input channels of x, y coordinates (CoordConv, arXiv:1807.03247): Pong's two paddles have
        # the same grey level and differ only by side, beyond a small net's receptive field
        self.stem = nn.Sequential(_conv(3, c2), _conv(c2, c2, 2))  # stride 2
        self.c3 = nn.Sequential(_conv(c2, c3, 2), _conv(c3, c3))  # stride 4
        self.c4 = nn.Sequential(_conv(c3, c4, 2), _conv(c4, c4))  # stride 8
        f = cfg.fpn_channels
        self.lateral = nn.ModuleList([nn.Conv2d(c, f, 1) for c in (c2, c3, c4)])
        self.smooth = nn.ModuleList([nn.Conv2d(f, f, 3, 1, 1) for _ in range(3)])
        n_anchors = len(cfg.anchor_scales) * len(cfg.anchor_ratios)
        self.n_classes = len(cfg.class_names)
        self.cls_subnet = nn.Sequential(*[_conv(f, f) for _ in range(cfg.head_convs)],
                                        nn.Conv2d(f, n_anchors * self.n_classes, 3, 1, 1))
        self.box_subnet = nn.Sequential(*[_conv(f, f) for _ in range(cfg.head_convs)],
                                        nn.Conv2d(f, n_anchors * 4, 3, 1, 1))
        nn.init.constant_(self.cls_subnet[-1].bias, -math.log((1 - cfg.prior) / cfg.prior))
        with torch.no_grad():
            shapes = [p.shape[-2:] for p in self._pyramid(torch.zeros(1, 1, *cfg.input_hw))]
        self.register_buffer("anchors", torch.cat([
            grid_anchors(tuple(hw), s, size, cfg.anchor_scales, cfg.anchor_ratios)
            for hw, s, size in zip(shapes, cfg.strides, cfg.anchor_sizes)]), persistent=False)
        self.level_shapes = [tuple(hw) for hw in shapes]

    def match(self, boxes: torch.Tensor) -> torch.Tensor:
        """anchors.match restricted to the anchors near some box (the others overlap nothing, so they
        are background): the full IoU matrix of 110 Breakout objects x 23k anchors is slow on CPU."""
        n_a = len(self.cfg.anchor_scales) * len(self.cfg.anchor_ratios)
        out = torch.full((len(self.anchors),), -1, dtype=torch.long)
        if boxes.numel() == 0:
            return out
        cand, start = [], 0
        for (h, w), stride in zip(self.level_shapes, self.cfg.strides):
            cells = torch.zeros(h, w, dtype=torch.bool)
            lvl = self.anchors[start: start + h * w * n_a]
            reach = float(torch.maximum(lvl[:, 2] - lvl[:, 0], lvl[:, 3] - lvl[:, 1]).max()) / 2
            for x1, y1, x2, y2 in boxes.tolist():
                c0, c1 = max(int((x1 - reach) // stride), 0), min(int((x2 + reach) // stride) + 1, w)
                r0, r1 = max(int((y1 - reach) // stride), 0), min(int((y2 + reach) // stride) + 1, h)
                cells[r0:r1, c0:c1] = True
            idx = torch.nonzero(cells.flatten()).squeeze(1)
            cand.append(start + (idx[:, None] * n_a + torch.arange(n_a)).flatten())
            start += h * w * n_a
        cand = torch.cat(cand)
        out[cand] = match(self.anchors[cand], boxes, self.cfg.pos_iou, self.cfg.neg_iou)
        return out

    def _pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        n, _, h, w = x.shape
        ys = torch.linspace(-1, 1, h, device=x.device).view(1, 1, h, 1).expand(n, 1, h, w)
        xs = torch.linspace(-1, 1, w, device=x.device).view(1, 1, 1, w).expand(n, 1, h, w)
        c2 = self.stem(torch.cat([x, xs, ys], 1))
        c3 = self.c3(c2)
        c4 = self.c4(c3)
        p4 = self.lateral[2](c4)
        p3 = self.lateral[1](c3) + F.interpolate(p4, size=c3.shape[-2:], mode="nearest")
        p2 = self.lateral[0](c2) + F.interpolate(p3, size=c2.shape[-2:], mode="nearest")
        return [s(p) for s, p in zip(self.smooth, (p2, p3, p4))]

    @staticmethod
    def prepare(frames: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W) or (N, 1, H, W) -> float (N, 1, H, W) in [0, 1]."""
        x = frames if frames.dim() == 4 else frames.unsqueeze(1)
        return x.float() / 255.0 if frames.dtype == torch.uint8 else x.float()

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits (N, anchors, C) and box deltas (N, anchors, 4), anchors in self.anchors order."""
        logits, deltas = [], []
        for p in self._pyramid(self.prepare(frames)):
            n, _, h, w = p.shape
            logits.append(self.cls_subnet(p).view(n, -1, self.n_classes, h, w).permute(0, 3, 4, 1, 2)
                          .reshape(n, -1, self.n_classes))
            deltas.append(self.box_subnet(p).view(n, -1, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 4))
        return torch.cat(logits, 1), torch.cat(deltas, 1)

    def loss(self, frames: torch.Tensor, targets: list[tuple]) -> dict[str, torch.Tensor]:
        """Focal loss over all non-ignored anchors plus smooth-L1 box loss over foreground anchors,
        each class's terms divided by its number of foreground anchors (the paper, sec. 4.1,
        divides by the total).

        targets: per frame (boxes, classes) or (boxes, classes, precomputed self.match(boxes)).
        """
        logits, deltas = self(frames)
        cls_t, box_t, valid, fg = [], [], [], []
        for boxes, classes, *pre in targets:
            m = pre[0] if pre else self.match(boxes)
            pos = m >= 0
            t = torch.zeros(len(m), self.n_classes)
            t[pos, classes[m[pos]]] = 1.0
            cls_t.append(t)
            valid.append(m != -2)
            fg.append(pos)
            bt = torch.zeros(len(m), 4)
            if pos.any():
                bt[pos] = encode(boxes[m[pos]], self.anchors[pos])
            box_t.append(bt)
        cls_t, box_t, valid, fg = map(torch.stack, (cls_t, box_t, valid, fg))
        # Per-class normalisation (a departure from the paper's one total): Breakout's 108 bricks
        # per frame would otherwise leave the ball and paddle a 1/100 share of the gradient.
        fg_c = cls_t * fg.unsqueeze(-1)  # (N, A, C) foreground anchors of each class
        n_c = fg_c.sum(dim=(0, 1)).clamp(min=1.0)
        per = focal_loss_elements(logits, cls_t, self.cfg.focal_alpha, self.cfg.focal_gamma)
        cls = (per * valid.unsqueeze(-1)).sum(dim=(0, 1)).div(n_c).sum()
        box_per = F.smooth_l1_loss(deltas, box_t, beta=1 / 9, reduction="none").sum(-1)  # (N, A)
        box = (box_per.unsqueeze(-1) * fg_c).sum(dim=(0, 1)).div(n_c).sum()
        return {"loss": cls + box, "cls": cls.detach(), "box": box.detach()}

    @torch.no_grad()
    def detect(self, frames: torch.Tensor, score_threshold: float = 0.05, iou_threshold: float = 0.5,
               max_detections: int = 300, pre_nms: int = 1000) -> list[dict[str, torch.Tensor]]:
        """Per frame: boxes (x1, y1, x2, y2) in input pixels, classes, scores (best first); per-class NMS."""
        logits, deltas = self(frames)
        h, w = self.cfg.input_hw
        out = []
        for lg, dl in zip(logits, deltas):
            scores = torch.sigmoid(lg).flatten()
            # the best pre_nms candidates of each class, so 108 bricks cannot crowd out the ball
            keep = []
            for c in range(self.n_classes):
                idx = torch.nonzero(scores[c::self.n_classes] > score_threshold).squeeze(1) * self.n_classes + c
                keep.append(idx[scores[idx].argsort(descending=True)[:pre_nms]])
            keep = torch.cat(keep)
            anchor_idx, classes = keep // self.n_classes, keep % self.n_classes
            boxes = decode(dl[anchor_idx], self.anchors[anchor_idx])
            boxes = torch.stack([boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h),
                                 boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)], 1)
            kept = batched_nms(boxes, scores[keep], classes, iou_threshold)[:max_detections]
            out.append({"boxes": boxes[kept], "classes": classes[kept], "scores": scores[keep][kept]})
        return out

    def top_k(self, frames: torch.Tensor, k: int, candidates: int = 64,
              iou_threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The k best detections per frame, batched for the encoder (differentiable in the scores
        and boxes, so the detector can be fine-tuned through it).

        Returns boxes (N, k, 4) in input pixels, class indices (N, k), scores (N, k); slots left
        empty after NMS have score 0.
        """
        logits, deltas = self(frames)
        best, classes = torch.sigmoid(logits).max(dim=2)  # (N, A): one class per anchor
        m = min(candidates, best.shape[1])
        scores, idx = best.topk(m, dim=1)
        boxes = decode(deltas.gather(1, idx[..., None].expand(-1, -1, 4)), self.anchors[idx])
        classes = classes.gather(1, idx)
        keep = padded_nms(boxes.detach(), scores.detach(), classes, iou_threshold)
        # kept slots first, in score order: sort by (kept, score)
        order = torch.argsort(keep.float() * 2 + scores.detach(), dim=1, descending=True)[:, :k]
        scores = scores.gather(1, order) * keep.gather(1, order)
        boxes = boxes.gather(1, order[..., None].expand(-1, -1, 4))
        if k > m:  # fewer candidates than slots: pad with empty slots
            pad = k - m
            scores = F.pad(scores, (0, pad))
            boxes = F.pad(boxes, (0, 0, 0, pad))
            order = F.pad(order, (0, pad))
        return boxes, classes.gather(1, order.clamp(max=m - 1)), scores


def save_detector(path, model: RetinaNet, extra: dict | None = None) -> None:
    """Tensors and plain values only, so it loads with weights_only=True."""
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "config": model.cfg.to_plain(), "state": model.state_dict(),
                **(extra or {})}, path)


def load_detector(path) -> tuple[RetinaNet, dict]:
    """(model, the whole saved dict), loaded safely (weights_only=True)."""
    from pathlib import Path

    from howsure.errors import UserError

    if not Path(path).is_file():
        raise UserError(f"detector checkpoint {str(path)!r} not found; train one with "
                        "python -m howsure.detector fit --data DIR --out FILE.pt")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user error
        raise UserError(f"detector checkpoint {str(path)!r} is unreadable ({str(err).splitlines()[0][:80]})") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise UserError(f"{str(path)!r} is not a {FORMAT} file written by `python -m howsure.detector fit`")
    model = RetinaNet(DetectorConfig.from_plain(saved["config"]))
    model.load_state_dict(saved["state"])
    return model, saved
