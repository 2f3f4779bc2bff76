"""The dropout Q-network of bayes_dqn: encoder -> [dropout -> linear -> ReLU]* -> dropout -> linear.

Each forward pass with fresh dropout noise is one draw from the approximate posterior over
weights (MC dropout, Gal & Ghahramani arXiv:1506.02142). Dropout sits after the encoder and after
each hidden layer of the head, so the encoder runs once per observation and only the head is
repeated for T draws. With prior_scale > 0 a frozen random copy of the network (randomized prior
function, Osband et al. arXiv:1806.03335) is added, beta * prior(s), with the SAME dropout noise
as the trained network: each mask indexes one member of an implicit ensemble, and on visited data
the trained network learns to cancel that member's prior, as each head does in the paper. The
prior is initialised as boot_dqn's (agents.priors.init_prior: bsuite's init, zero biases): under
torch's default init its random output biases gave every draw the same action gap, larger than the
dropout spread, so no draw ever changed the greedy action on deep_sea.
"""

from __future__ import annotations

import torch
from howsure.agents.concrete_dropout import ConcreteDropout, concrete_regulariser
from howsure.agents.priors import init_prior
from howsure.encoders import make_encoder
from torch import nn

Noise = dict[str, torch.Tensor]  # dropout place name -> uniform noise (B, K)


def place_names(n_hidden: int) -> list[str]:
    """Dropout places: 'features' (encoder output), then 'hidden1'.. (outputs of head layers)."""
    return ["features"] + [f"hidden{i + 1}" for i in range(n_hidden)]


class _Head(nn.Module):
    def __init__(self, widths: list[int]):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))


class BayesQNetwork(nn.Module):
    def __init__(self, encoder_cfg, spec, hidden_sizes: tuple[int, ...], dropout_p: tuple[float, ...],
                 learn_p: bool, temperature: float, prior_scale: float, n_masks: int = 0):
        super().__init__()
        self.encoder = make_encoder(encoder_cfg, spec)
        widths = [self.encoder.out_features, *hidden_sizes, spec.n_actions]
        self.head = _Head(widths)
        self.names = place_names(len(hidden_sizes))
        self.dropouts = nn.ModuleDict({
            name: ConcreteDropout(widths[i], p, learn_p, temperature)
            for i, (name, p) in enumerate(zip(self.names, dropout_p)) if p > 0
        })
        self.prior_scale = prior_scale
        # n_masks > 0: every draw picks one of n_masks noise vectors fixed at init (Masksembles,
        # Durasov et al. arXiv:2012.08334): an implicit ensemble of n_masks members, each trained
        # on many batches, instead of a fresh member per draw that is trained at most once.
        self.n_masks = n_masks
        for name, d in self.dropouts.items():
            if n_masks > 0:
                self.register_buffer(f"pool_{name}", torch.rand(n_masks, d.in_features))
        if prior_scale > 0:
            self.prior_encoder = make_encoder(encoder_cfg, spec).requires_grad_(False)
            self.prior_head = _Head(widths).requires_grad_(False)
            init_prior(self.prior_encoder)
            init_prior(self.prior_head)

    # -- noise ----------------------------------------------------------------------------
    def draw_noise(self, batch: int, device=None) -> Noise:
        if self.n_masks > 0:
            return self.mask_noise(torch.randint(self.n_masks, (batch,), device=device))
        return {name: torch.rand(batch, d.in_features, device=device) for name, d in self.dropouts.items()}

    def mask_noise(self, idx: torch.Tensor) -> Noise:
        """n_masks > 0: the noise of fixed masks `idx` (B,), one per row."""
        return {name: getattr(self, f"pool_{name}")[idx] for name in self.dropouts}

    # -- forward --------------------------------------------------------------------------
    def features(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encoder output (and the prior encoder's); computed once, shared by all draws."""
        prior = self.prior_encoder(obs) if self.prior_scale > 0 else None
        return self.encoder(obs), prior

    def _run(self, head: _Head, x: torch.Tensor, noise: Noise | None, relaxed: bool) -> torch.Tensor:
        for i, (name, layer) in enumerate(zip(self.names, head.layers)):
            if noise is not None and name in self.dropouts:
                x = self.dropouts[name](x, noise[name], relaxed)
            x = layer(x)
            if i < len(head.layers) - 1:
                x = torch.relu(x)
        return x

    def q_values(self, feats: tuple[torch.Tensor, torch.Tensor | None], noise: Noise | None,
                 relaxed: bool = False) -> torch.Tensor:
        """Q (B, A) from features; noise None means dropout off (the mean-weight network)."""
        feat, prior_feat = feats
        q = self._run(self.head, feat, noise, relaxed)
        if prior_feat is not None:
            q = q + self.prior_scale * self._run(self.prior_head, prior_feat, noise, relaxed).detach()
        return q

    def forward(self, obs: torch.Tensor, noise: Noise | None = None, relaxed: bool = False) -> torch.Tensor:
        return self.q_values(self.features(obs), noise, relaxed)

    def draws(self, feats: tuple[torch.Tensor, torch.Tensor | None], n_draws: int) -> torch.Tensor:
        """Q under n_draws fresh masks per row: (n_draws, B, A). With n_masks > 0, every fixed mask
        once instead, in order (n_masks, B, A): the whole implicit ensemble, no sampling noise."""
        feat, prior_feat = feats
        b = feat.shape[0]
        n = self.n_masks if self.n_masks > 0 else n_draws
        rep = (feat.repeat(n, 1), None if prior_feat is None else prior_feat.repeat(n, 1))
        if self.n_masks > 0:
            noise = self.mask_noise(torch.arange(n, device=feat.device).repeat_interleave(b))
        else:
            noise = self.draw_noise(b * n, feat.device)
        return self.q_values(rep, noise).reshape(n, b, -1)

    # -- Concrete Dropout -----------------------------------------------------------------
    def rates(self) -> dict[str, float]:
        with torch.no_grad():
            return {name: float(d.p) for name, d in self.dropouts.items()}

    def regularisers(self, length_scale: float, n_data: float, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum over dropout places of (weight term, dropout term); each place regularises the
        linear layer it feeds (arXiv:1705.07832, section 3)."""
        weight = torch.zeros(())
        drop = torch.zeros(())
        for name, layer in zip(self.names, self.head.layers):
            if name in self.dropouts:
                d = self.dropouts[name]
                w, r = concrete_regulariser(layer.weight, d.p, d.in_features, length_scale, n_data, tau)
                weight, drop = weight + w, drop + r
        return weight, drop
