"""Objects instead of pixels (issue 6): each preprocessed screen goes through a frozen detector
once, when it is played, and the observation becomes that screen's top-K objects.

Set env.detector to a detector checkpoint (`python -m howsure.detector fit`) and the Atari
pipeline inserts DetectObjects before frame stacking: a stack is then (frame_stack, K,
n_classes + 5) float32 rows [class one-hot, cx, cy, w, h in [0, 1], score], all zero for an empty
slot, which is what encoder.name=detection reads (encoders/detection/encoder.py, object_rows).
Replay stores these rows (K x (n_classes + 5) floats per frame instead of 84x84 bytes), so an
update never runs the detector; detecting inside the network is still there for fine-tuning.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from howsure.encoders.detection.encoder import DetectionConfig, object_rows, resolve_checkpoint
from howsure.encoders.detection.model import load_detector

from howsure.errors import UserError

# the encoder's defaults for what the env does not expose
CANDIDATES = DetectionConfig.candidates  # best anchors per frame that enter NMS
IOU_THRESHOLD = DetectionConfig.iou_threshold  # NMS


class DetectObjects(gym.ObservationWrapper):
    def __init__(self, env: gym.Env, checkpoint: str, top_k: int, min_score: float):
        super().__init__(env)
        if top_k <= 0 or top_k > CANDIDATES or not 0 <= min_score <= 1:
            raise UserError(f"env.detector_top_k must be in 1..{CANDIDATES} and env.detector_min_score in "
                            f"[0, 1]; got {top_k} and {min_score}")
        self.detector, _ = load_detector(resolve_checkpoint(checkpoint))
        # channels-last: the same outputs (to float rounding), faster convolutions on x86 CPUs
        self.detector.eval().requires_grad_(False).to(memory_format=torch.channels_last)
        self.hw = tuple(self.detector.cfg.input_hw)
        if tuple(env.observation_space.shape) != self.hw:
            raise UserError(f"env.detector reads {self.hw} grey screens, the env gives "
                            f"{tuple(env.observation_space.shape)}: set env.screen_size={self.hw[0]}")
        self.top_k, self.min_score = top_k, min_score
        self.n_classes = self.detector.n_classes
        self.observation_space = spaces.Box(0.0, 1.0, (top_k, self.n_classes + 5), np.float32)
        self.screen: np.ndarray | None = None  # the last screen detected (the labeller collects it)

    def observation(self, frame: np.ndarray) -> np.ndarray:
        self.screen = frame
        with torch.inference_mode():
            boxes, classes, scores = self.detector.top_k(torch.from_numpy(np.ascontiguousarray(frame))[None],
                                                         self.top_k, CANDIDATES, IOU_THRESHOLD)
            rows = object_rows(boxes, classes, scores, self.n_classes, self.hw, self.min_score)
        return rows[0].numpy()
