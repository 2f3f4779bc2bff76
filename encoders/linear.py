"""A fully connected layer whose float32 CPU products run in the orientation MKL computes fastest.

nn.Linear on a batch of N inputs computes x @ W.T, a product N rows tall, and its input gradient
g @ W, also N rows tall. With a small batch (N = 32) and a large layer (the Nature CNN's 3136 -> 512),
MKL's sgemm runs the transposed products, W @ x.T and W.T @ g.T, about 30% faster on the CPUs
measured (docs/throughput.md): the same sums, the result read through a transposed view. Everything
else (CUDA, bfloat16 autocast, other shapes) goes through nn.Linear unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _TallProducts(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return torch.mm(weight, x.t()).t() + bias

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        gx = torch.mm(weight.t(), grad.t()).t() if ctx.needs_input_grad[0] else None
        gw = torch.mm(grad.t(), x) if ctx.needs_input_grad[1] else None
        gb = grad.sum(0) if ctx.needs_input_grad[2] else None
        return gx, gw, gb


class Linear(nn.Linear):
    """nn.Linear (same parameters and state dict) with the products above for float32 CPU batches."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.dim() == 2 and x.dtype == torch.float32 and x.device.type == "cpu" and self.bias is not None
                and not torch.is_autocast_enabled("cpu")):
            return _TallProducts.apply(x, self.weight, self.bias)
        return F.linear(x, self.weight, self.bias)
