"""How torch runs on this machine: intra-op threads and denormal flushing, from the run config."""

from __future__ import annotations

import torch


def configure_torch(cfg) -> None:
    """Apply `torch_threads` and `flush_denormal` (process-wide settings) before building anything."""
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    # Tiny gradients and Adam/RMSProp moments go subnormal late in training; x86 handles them in
    # microcode, tens of times slower. Flushing them to zero changes no result that matters.
    torch.set_flush_denormal(cfg.flush_denormal)
