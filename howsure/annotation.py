"""Drawing on video frames, behind one small protocol.

Whatever draws on the colour screen of a recorded episode is a FrameAnnotator: the detection
encoder (its boxes) and UncertaintyBar (an agent's epistemic std). howsure.evaluation's
frame_annotator collects the ones that apply to an agent for evaluate.py --video and the
TensorBoard videos; agents themselves never draw.
"""

from __future__ import annotations

import abc

import numpy as np


class FrameAnnotator(abc.ABC):
    @abc.abstractmethod
    def annotate_frame(self, frame: np.ndarray) -> np.ndarray:
        """The (H, W, 3) uint8 frame with this annotator's drawing on it."""


class UncertaintyBar(FrameAnnotator):
    """A bar (the std of the chosen action's Q over the agent's posterior, relative to the largest
    the agent has seen) and the number, top left. For agents with reports_uncertainty."""

    def __init__(self, agent):
        self.agent = agent

    def annotate_frame(self, frame: np.ndarray) -> np.ndarray:
        from PIL import Image, ImageDraw

        last = self.agent.last_epistemic_std()
        std = float(last[0]) if len(last) else 0.0
        scale = self.agent.epistemic_std_scale()
        img = Image.fromarray(np.ascontiguousarray(frame))
        draw = ImageDraw.Draw(img)
        w = img.width
        bar = int((w // 3) * (std / scale if scale > 0 else 0.0))
        draw.rectangle([4, 4, 4 + w // 3, 12], outline=(255, 255, 255))
        draw.rectangle([4, 4, 4 + bar, 12], fill=(255, 64, 64))
        draw.text((8 + w // 3, 2), f"epistemic std {std:.3f}", fill=(255, 64, 64))
        return np.asarray(img)
