"""Train the detector on a labelled dataset and measure COCO mAP on held-out frames."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from howsure.encoders.detection import dataset
from howsure.encoders.detection.metrics import summary
from howsure.encoders.detection.model import DetectorConfig, RetinaNet, save_detector


def split(data: dict[str, np.ndarray], eval_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Train / held-out frame indices: the held-out frames are the last ones collected (later
    episodes), so no held-out frame is a near-copy of a neighbouring training frame."""
    n = len(data["frames"])
    n_eval = max(1, int(round(n * eval_fraction)))
    return np.arange(n - n_eval), np.arange(n - n_eval, n)


def evaluate(model: RetinaNet, data: dict[str, np.ndarray], indices: np.ndarray,
             batch: int = 64) -> tuple[dict[str, float], list[dict]]:
    model.eval()
    dets = []
    for s in range(0, len(indices), batch):
        frames = torch.as_tensor(data["frames"][indices[s:s + batch]])
        dets += [{k: v.numpy() for k, v in d.items()} for d in model.detect(frames)]
    model.train()
    return summary(dets, dataset.per_frame(data, indices), len(data["class_names"])), dets


def fit(data: dict[str, np.ndarray], *, minutes: float = 8.0, max_updates: int = 4000, batch_size: int = 16,
        lr: float = 2e-3, eval_fraction: float = 0.2, seed: int = 0, cfg: DetectorConfig | None = None,
        log_every: int = 100) -> tuple[RetinaNet, dict]:
    """Adam on focal + box loss until the wall-clock budget or max_updates; lr drops 10x for the
    last fifth of the budget. Returns the model and {'map50', 'map50_95', 'train_minutes', ...}."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cfg = cfg or DetectorConfig(class_names=tuple(data["class_names"].tolist()))
    model = RetinaNet(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    train_idx, eval_idx = split(data, eval_fraction)
    gts = dataset.per_frame(data, range(len(data["frames"])))
    frames = torch.as_tensor(data["frames"])
    cache: dict[int, torch.Tensor] = {}  # anchor matches per frame: matching dominates the step otherwise

    def target(i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        boxes = torch.as_tensor(gts[i]["boxes"])
        if i not in cache:
            cache[i] = model.match(boxes).to(torch.int16)
        return boxes, torch.as_tensor(gts[i]["classes"]), cache[i].long()

    budget_s, t0, updates, seen = minutes * 60.0, time.perf_counter(), 0, 0.0
    while updates < max_updates and time.perf_counter() - t0 < budget_s:
        if time.perf_counter() - t0 > 0.8 * budget_s or updates > 0.8 * max_updates:
            for g in opt.param_groups:
                g["lr"] = lr * 0.1
        pick = rng.choice(train_idx, size=min(batch_size, len(train_idx)), replace=False)
        losses = model.loss(frames[pick], [target(int(i)) for i in pick])
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        opt.step()
        updates += 1
        seen += len(pick)
        if log_every and updates % log_every == 0:
            print(f"update {updates:5d}  {time.perf_counter() - t0:6.0f} s  loss {losses['loss'].item():.4f} "
                  f"(cls {losses['cls'].item():.4f} box {losses['box'].item():.4f})", flush=True)
    train_minutes = (time.perf_counter() - t0) / 60.0
    scores, _ = evaluate(model, data, eval_idx)
    return model, {**scores, "train_minutes": round(train_minutes, 2), "updates": updates,
                   "train_frames": int(len(train_idx)), "eval_frames": int(len(eval_idx)),
                   "threads": torch.get_num_threads()}


def fit_cli(args) -> dict:
    from howsure.errors import UserError

    if not 0 < args.eval_fraction < 1:
        raise UserError("--eval-fraction must be between 0 and 1, e.g. 0.2")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    data = dataset.load(args.data)
    model, result = fit(data, minutes=args.minutes, max_updates=args.max_updates,
                        eval_fraction=args.eval_fraction, seed=args.seed)
    save_detector(args.out, model, {"metrics": {k: float(v) for k, v in result.items()},
                                    "game": str(data["game"])})
    if args.preview:
        from howsure.encoders.detection.preview import save_preview

        _, eval_idx = split(data, args.eval_fraction)
        picks = eval_idx[np.linspace(0, len(eval_idx) - 1, 8).astype(int)]
        _, dets = evaluate(model, data, picks)
        keep = [d["scores"] >= 0.5 for d in dets]
        save_preview(args.preview, [(f"{data['game']} held-out {i} (score>=0.5)", data["frames"][i],
                                     d["boxes"][k], d["classes"][k]) for i, d, k in zip(picks, dets, keep)],
                     list(data["class_names"]))
    return {"game": str(data["game"]), "out": str(Path(args.out)), **result}
