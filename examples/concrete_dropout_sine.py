"""The lecture's Example 04: Concrete Dropout (Gal, Hron & Kendall, arXiv:1705.07832) with a
heteroscedastic output (Kendall & Gal 2017, arXiv:1703.04977) on noisy samples of sin(x).

The net sees x only on a limited interval. It predicts a mean and a log noise variance; dropout
with learned rates sits in front of every hidden and output layer. At test time T dropout draws
split the predictive variance into
  aleatoric = mean over draws of the predicted noise variance  (the data's noise: irreducible),
  epistemic = variance over draws of the predicted mean        (the model's ignorance: shrinks with data)
so far from the data the epistemic band should widen while the aleatoric one stays near the noise.

  python examples/concrete_dropout_sine.py --out docs/concrete_dropout_sine.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from howsure.agents.concrete_dropout import ConcreteDropout, concrete_regulariser  # noqa: E402
from torch import nn

TRAIN_LOW, TRAIN_HIGH = -3.0, 3.0  # the interval the net sees
NOISE_STD = 0.2  # true aleatoric noise


class HeteroscedasticNet(nn.Module):
    """x -> [dropout -> linear -> relu]* -> dropout -> linear -> (mean, log variance)."""

    def __init__(self, hidden: int = 64, layers: int = 2, p_init: float = 0.1, temperature: float = 0.1):
        super().__init__()
        widths = [1] + [hidden] * layers + [2]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        # no dropout on the 1-d input itself: dropping x would only teach the net to ignore it
        self.dropouts = nn.ModuleList(ConcreteDropout(w, p_init, True, temperature) for w in widths[1:-1])

    def forward(self, x: torch.Tensor, relaxed: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.linears[0](x))
        for drop, lin in zip(self.dropouts, self.linears[1:]):
            h = lin(drop(h, torch.rand_like(h), relaxed))
            if lin is not self.linears[-1]:
                h = torch.relu(h)
        return h[:, 0], h[:, 1]

    def regulariser(self, n_data: int, length_scale: float) -> torch.Tensor:
        total = torch.zeros(())
        for drop, lin in zip(self.dropouts, self.linears[1:]):
            w, d = concrete_regulariser(lin.weight, drop.p, drop.in_features, length_scale, n_data)
            total = total + w + d
        return total


def make_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = np.random.default_rng(seed)
    x = g.uniform(TRAIN_LOW, TRAIN_HIGH, n)
    y = np.sin(x) + NOISE_STD * g.normal(size=n)
    return torch.tensor(x, dtype=torch.float32)[:, None], torch.tensor(y, dtype=torch.float32)


def fit(n_data: int = 400, steps: int = 3000, seed: int = 0, length_scale: float = 1e-2,
        lr: float = 3e-3) -> HeteroscedasticNet:
    """Full-batch Adam on Gaussian NLL + the Concrete Dropout KL / N (tau is learned as the noise)."""
    torch.manual_seed(seed)
    x, y = make_data(n_data, seed)
    net = HeteroscedasticNet()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        mean, log_var = net(x)
        nll = 0.5 * (torch.exp(-log_var) * (y - mean) ** 2 + log_var).mean()
        loss = nll + net.regulariser(n_data, length_scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net


@torch.no_grad()
def predict(net: HeteroscedasticNet, x: np.ndarray, draws: int = 300) -> dict[str, np.ndarray]:
    """Predictive mean and the two standard deviations over `draws` hard dropout masks."""
    xt = torch.tensor(x, dtype=torch.float32)[:, None].repeat(draws, 1)
    mean, log_var = net(xt, relaxed=False)
    mean, var = mean.reshape(draws, -1), log_var.exp().reshape(draws, -1)
    return {"mean": mean.mean(0).numpy(), "epistemic_std": mean.std(0).numpy(),
            "aleatoric_std": var.mean(0).sqrt().numpy()}


def plot(net: HeteroscedasticNet, path: Path, n_data: int, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_data, y_data = make_data(n_data, seed)
    xs = np.linspace(-8, 8, 600)
    pred = predict(net, xs)
    m, ep, al = pred["mean"], pred["epistemic_std"], pred["aleatoric_std"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.fill_between(xs, m - 2 * np.sqrt(ep**2 + al**2), m + 2 * np.sqrt(ep**2 + al**2), color="tab:orange",
                    alpha=0.25, label="±2 std total (aleatoric + epistemic)")
    ax.fill_between(xs, m - 2 * ep, m + 2 * ep, color="tab:red", alpha=0.35, label="±2 std epistemic")
    ax.plot(xs, m + 2 * al, "--", color="tab:blue", lw=1, label="±2 std aleatoric (predicted noise)")
    ax.plot(xs, m - 2 * al, "--", color="tab:blue", lw=1)
    ax.scatter(x_data[:, 0], y_data, s=4, color="k", alpha=0.5, label=f"data ({n_data} points)")
    ax.plot(xs, np.sin(xs), color="gray", lw=1, label="sin(x)")
    ax.plot(xs, m, color="tab:red", lw=1.5, label="predictive mean")
    ax.axvspan(TRAIN_LOW, TRAIN_HIGH, color="gray", alpha=0.07)
    rates = ", ".join(f"{float(d.p.detach()):.3f}" for d in net.dropouts)
    ax.set(title=f"Concrete Dropout on noisy sin(x): learned dropout rates {rates}", xlabel="x", ylabel="y",
           ylim=(-4, 4))
    ax.legend(loc="lower left", fontsize=8, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summary(net: HeteroscedasticNet) -> dict[str, float]:
    inside = predict(net, np.linspace(TRAIN_LOW + 0.5, TRAIN_HIGH - 0.5, 100))
    outside = predict(net, np.concatenate([np.linspace(-8, -6, 50), np.linspace(6, 8, 50)]))
    return {"epistemic_std_inside": float(inside["epistemic_std"].mean()),
            "epistemic_std_far_outside": float(outside["epistemic_std"].mean()),
            "aleatoric_std_inside": float(inside["aleatoric_std"].mean()), "true_noise_std": NOISE_STD,
            **{f"dropout_p/layer{i + 1}": float(d.p.detach()) for i, d in enumerate(net.dropouts)}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="docs/concrete_dropout_sine.png", help="PNG to write")
    p.add_argument("--points", type=int, default=400, help="training points on [-3, 3]")
    p.add_argument("--steps", type=int, default=3000, help="full-batch Adam steps")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # 64-unit layers: more threads only wait on each other
    net = fit(args.points, args.steps, args.seed)
    for k, v in summary(net).items():
        print(f"{k:28s} {v:.4f}")
    plot(net, Path(args.out), args.points, args.seed)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
