"""One thin layer over TensorBoard's SummaryWriter, with CleanRL's tag names.

charts/episodic_return, charts/discounted_return, charts/episodic_length, charts/epsilon,
charts/SPS, losses/td_loss, values/q_mean, eval/episodic_return. The step axis is agent steps.
Beside scalars: text, the HParams plugin's session data, a custom-scalars layout and animated
evaluation videos (howsure/dashboards.py decides what goes in them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch.utils.tensorboard import SummaryWriter


class Logger:
    def __init__(self, log_dir: str | Path, purge_step: int | None = None,
                 track: Callable[[], Any] | None = None):
        # purge_step drops events a crashed run wrote after its last checkpoint, so a resumed
        # run's curves continue without duplicated steps. track starts an experiment tracker that
        # hooks TensorBoard's writer (howsure/tracking.py), so it runs before the writer exists.
        self.tracker = track() if track is not None else None
        self.writer = SummaryWriter(str(log_dir), purge_step=purge_step, flush_secs=10)
        self.tags: set[str] = set()  # scalar tags written by this Logger (dashboards.scalars_layout)

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.tags.add(tag)
        self.writer.add_scalar(tag, float(value), step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.scalar(tag, value, step)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        self.writer.add_text(tag, text, step)

    def custom_scalars(self, layout: dict) -> None:
        """{category: {chart title: ["Multiline", [tag regex, ...]] or ["Margin", [value, lower, upper]]}}"""
        self.writer.add_custom_scalars(layout)

    def hparams(self, hparams: dict, metrics: dict[str, float], step: int) -> None:
        """The HParams plugin's session start and end for this run, in its own event file (torch's
        add_hparams would write them to a new subfolder), and each metric as a scalar at `step`.
        Built with tensorboard's own hparams API; no experiment summary, so TensorBoard infers the
        table from every run's keys."""
        import time

        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
        from tensorboard.plugins.hparams import summary_v2 as hp

        writer = self.writer._get_file_writer()
        writer.add_summary(hp.hparams_pb(hparams), step)
        end = plugin_data_pb2.HParamsPluginData(session_end_info=plugin_data_pb2.SessionEndInfo(
            status=api_pb2.STATUS_SUCCESS, end_time_secs=time.time()))
        writer.add_summary(Summary(value=[Summary.Value(
            tag=metadata.SESSION_END_INFO_TAG, metadata=metadata.create_summary_metadata(end),
            tensor=metadata.NULL_TENSOR)]), step)
        self.scalars(metrics, step)

    def video(self, tag: str, frames, fps: float, step: int) -> None:
        """frames (T, H, W, 3) uint8 as an animated GIF image summary, the summary add_video
        writes, encoded with imageio (Pillow) instead of moviepy, at the GIF speed nearest to
        `fps` (howsure/gif.py)."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        from howsure import gif

        data = gif.encode(frames, fps)
        image = Summary.Image(height=int(frames.shape[1]), width=int(frames.shape[2]), colorspace=3,
                              encoded_image_string=data)
        self.writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)

    def histogram(self, tag: str, values, step: int) -> None:
        self.writer.add_histogram(tag, values, step)

    def image(self, tag: str, image, step: int) -> None:
        """image: (H, W, 3) uint8."""
        self.writer.add_image(tag, image, step, dataformats="HWC")

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
        if self.tracker is not None:
            self.tracker.finish()


def read_scalars(log_dir: str | Path, wall_time: bool = False) -> dict[str, list[tuple]]:
    """All scalars of a run directory's event files, as {tag: [(step, value), ...]}; with
    wall_time, [(step, value, seconds since the run's first scalar), ...]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    events = {tag: acc.Scalars(tag) for tag in acc.Tags()["scalars"]}
    if not wall_time:
        return {tag: [(e.step, e.value) for e in evs] for tag, evs in events.items()}
    t0 = min((evs[0].wall_time for evs in events.values() if evs), default=0.0)
    return {tag: [(e.step, e.value, e.wall_time - t0) for e in evs] for tag, evs in events.items()}
