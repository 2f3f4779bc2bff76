"""Encoders map observations to feature vectors; heads (in agents/) map features to values.

Each encoder registers a config dataclass and a module class; every encoder composes with every
deep agent. `encoder.name=auto` picks by observation: Dict or Tuple observations -> parts, images
-> nature_cnn, images smaller than 36x36 -> grid_cnn, anything else -> mlp.
"""

from __future__ import annotations

from dataclasses import dataclass

from howsure.encoders.detection.encoder import DetectionConfig, DetectionEncoder
from howsure.encoders.grid_cnn import NATURE_MIN_SIZE, GridCNNConfig, GridCNNEncoder
from howsure.encoders.image import image_layout
from howsure.encoders.lstm import LSTMConfig, LSTMEncoder
from howsure.encoders.mlp import MLPConfig, MLPEncoder
from howsure.encoders.nature_cnn import NatureCNNConfig, NatureCNNEncoder
from howsure.encoders.nips_cnn import NipsCNNConfig, NipsCNNEncoder
from howsure.encoders.parts import PartsConfig, PartsEncoder
from torch import nn

from howsure.errors import UserError
from howsure.registry import Registry, component_section


@dataclass(frozen=True)
class EncoderEntry:
    Config: type
    Module: type


ENCODERS: Registry[EncoderEntry] = Registry("encoder")
ENCODERS.register("mlp")(EncoderEntry(MLPConfig, MLPEncoder))
ENCODERS.register("nature_cnn")(EncoderEntry(NatureCNNConfig, NatureCNNEncoder))
ENCODERS.register("nips_cnn")(EncoderEntry(NipsCNNConfig, NipsCNNEncoder))
ENCODERS.register("grid_cnn")(EncoderEntry(GridCNNConfig, GridCNNEncoder))
ENCODERS.register("parts")(EncoderEntry(PartsConfig, PartsEncoder))
ENCODERS.register("lstm")(EncoderEntry(LSTMConfig, LSTMEncoder))
ENCODERS.register("detection")(EncoderEntry(DetectionConfig, DetectionEncoder))


def encoder_config_class() -> type:
    return component_section("EncoderConfig", {n: ENCODERS.get(n).Config for n in ENCODERS},
                             "name", "auto")


def resolve_name(name: str, spec) -> str:
    parts = getattr(spec, "parts", None)
    if name != "auto":
        if parts and name not in ("parts", "mlp", "lstm"):
            raise UserError(f"encoder {name!r} takes one image, but this env's observations are a Dict or Tuple "
                            "(packed into parts); use encoder.name=auto (or parts, or lstm)")
        if name == "parts" and not parts:
            raise UserError("encoder parts is for Dict or Tuple observations; use encoder.name=auto")
        return name
    if parts:
        return "parts"
    if not spec.image_obs:
        return "mlp"
    _, _, h, w = image_layout(spec.obs_shape)
    return "nature_cnn" if min(h, w) >= NATURE_MIN_SIZE else "grid_cnn"


def make_encoder(cfg, spec) -> nn.Module:
    """cfg: the whole `encoder` section; returns a module with an `out_features` attribute."""
    name = resolve_name(cfg.name, spec)
    return ENCODERS.get(name).Module(getattr(cfg, name), spec)


__all__ = ["ENCODERS", "EncoderEntry", "encoder_config_class", "make_encoder", "resolve_name"]
