"""LSTM state encoder: a per-step embedding (the MLP for vectors, the Nature CNN for frames, the
parts encoder for Dict observations, the detection encoder for Atari object lists) followed by an
LSTM, as in DRQN (Hausknecht & Stone 2015, arXiv:1507.06527).

The recurrent interface every deep agent uses (see agents/recurrent.py):
  recurrent = True
  state_size                       floats per env in the flat state [h; c] (all layers)
  initial_state(batch, device)     zeros (batch, state_size): the state at an episode start
  forward(obs, state, lengths=None) obs (B, T, *obs_shape), state (B, state_size)
                                   -> features (B, T, out_features), state after the last step;
                                   lengths (B,): only the first lengths[i] steps of row i count
                                   (state after them; used for left-cut burn-in prefixes)
The state is one flat float tensor so that replay can store it per step as an opaque array
(R2D2's stored state, Kapturowski et al. 2019) without knowing what it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from howsure.encoders.grid_cnn import NATURE_MIN_SIZE
from howsure.encoders.image import require_image
from howsure.encoders.mlp import MLPConfig, MLPEncoder
from howsure.encoders.nature_cnn import NatureCNNConfig, NatureCNNEncoder
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from howsure.errors import UserError


@dataclass(frozen=True)
class LSTMConfig:
    # per-step embedding: auto (frames -> nature_cnn, small grids -> grid_cnn, Dict/Tuple -> parts,
    # else mlp) | mlp | nature_cnn | grid_cnn | parts | detection
    embed: Literal["auto", "mlp", "nature_cnn", "grid_cnn", "parts", "detection"] = "auto"
    embed_hidden_sizes: tuple[int, ...] = (64,)  # units per MLP embedding layer (vectors)
    embed_features: int = 512  # units out of the nature_cnn or detection embedding
    hidden_size: int = 64  # LSTM units
    num_layers: int = 1  # stacked LSTM layers
    # 0: forget-gate bias 1 (Jozefowicz et al. 2015). T > 0: chrono initialisation (Tallec & Ollivier
    # 2018, arXiv:1804.11188): forget bias log(U(1, T - 1)), input bias its negative, so units start
    # out remembering for up to T steps and gradients reach back that far from the first update.
    chrono_init_steps: int = 0  # agent steps


class LSTMEncoder(nn.Module):
    recurrent = True

    def __init__(self, cfg: LSTMConfig, spec):
        super().__init__()
        embed = cfg.embed
        if embed == "auto":
            from howsure.encoders import resolve_name

            embed = resolve_name("auto", spec)
        elif embed in ("nature_cnn", "grid_cnn", "parts") and bool(getattr(spec, "parts", None)) != (embed == "parts"):
            raise UserError(f"encoder.lstm.embed={embed} does not fit this env; Dict or Tuple observations (packed "
                            "into parts) take parts or mlp, and only they take parts; use encoder.lstm.embed=auto")
        elif embed in ("nature_cnn", "grid_cnn"):
            require_image(spec, f"encoder.lstm.embed={embed}", NATURE_MIN_SIZE if embed == "nature_cnn" else 1,
                          fix="use encoder.lstm.embed=mlp or auto")
        if embed == "mlp":
            self.embed = MLPEncoder(MLPConfig(hidden_sizes=tuple(cfg.embed_hidden_sizes)), spec)
        elif embed == "nature_cnn":
            self.embed = NatureCNNEncoder(NatureCNNConfig(features=cfg.embed_features), spec)
        elif embed == "grid_cnn":
            from howsure.encoders.grid_cnn import GridCNNConfig, GridCNNEncoder

            self.embed = GridCNNEncoder(GridCNNConfig(features=cfg.embed_features), spec)
        elif embed == "parts":  # a Dict or Tuple observation packed into parts (envs/parts.py)
            from howsure.encoders.parts import PartsConfig, PartsEncoder

            self.embed = PartsEncoder(PartsConfig(hidden_sizes=tuple(cfg.embed_hidden_sizes)), spec)
        elif embed == "detection":  # objects per frame (env.detector, or the shipped Pong detector on pixels)
            from howsure.encoders.detection.encoder import DetectionConfig, DetectionEncoder

            self.embed = DetectionEncoder(DetectionConfig(features=cfg.embed_features), spec)
        else:
            raise UserError(f"encoder.lstm.embed must be auto, mlp, nature_cnn, grid_cnn, parts or detection, "
                            f"got {cfg.embed!r}")
        if cfg.hidden_size <= 0 or cfg.num_layers <= 0:
            raise UserError("encoder.lstm.hidden_size and encoder.lstm.num_layers must be positive")
        self.obs_dims = len(spec.obs_shape)
        self.lstm = nn.LSTM(self.embed.out_features, cfg.hidden_size, cfg.num_layers, batch_first=True)
        if cfg.chrono_init_steps < 0 or 0 < cfg.chrono_init_steps < 3:
            raise UserError("encoder.lstm.chrono_init_steps must be 0 (off) or at least 3, "
                            f"got {cfg.chrono_init_steps}")
        h = cfg.hidden_size
        with torch.no_grad():  # gates are i, f, g, o; PyTorch adds bias_ih and bias_hh
            for name, bias in self.lstm.named_parameters():
                if name.startswith("bias_hh") and cfg.chrono_init_steps:
                    bias[:2 * h].zero_()
                elif name.startswith("bias_ih") and cfg.chrono_init_steps:
                    forget = torch.log(torch.empty(h).uniform_(1.0, cfg.chrono_init_steps - 1))
                    bias[h:2 * h].copy_(forget)
                    bias[:h].copy_(-forget)
                elif name.startswith("bias_ih"):
                    bias[h:2 * h].fill_(1.0)  # remember by default
        self.layers, self.hidden = cfg.num_layers, cfg.hidden_size
        self.state_size = 2 * cfg.num_layers * cfg.hidden_size
        self.out_features = cfg.hidden_size

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> torch.Tensor:
        return torch.zeros(batch, self.state_size, device=device)

    def _split(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # (B, 2*layers*hidden) -> h, c of shape (layers, B, hidden), as nn.LSTM wants them
        hc = state.view(state.shape[0], 2, self.layers, self.hidden).permute(1, 2, 0, 3)
        return hc[0].contiguous(), hc[1].contiguous()

    @staticmethod
    def _join(h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return torch.stack((h, c)).permute(2, 0, 1, 3).reshape(h.shape[1], -1)

    def forward(self, obs: torch.Tensor, state: torch.Tensor,
                lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = obs.shape[:2]
        x = self.embed(obs.reshape(b * t, *obs.shape[2:])).view(b, t, -1)
        if lengths is None:
            out, (h, c) = self.lstm(x, self._split(state))
            return out, self._join(h, c)
        # Rows of different real lengths in one call; a row of length 0 keeps its state.
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        out, (h, c) = self.lstm(packed, self._split(state))
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=t)
        moved = self._join(h, c)
        return out, torch.where((lengths > 0).view(-1, 1).to(moved.device), moved, state)
