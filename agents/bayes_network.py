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

With epinet_hidden > 0 a dropout epinet (after Osband et al. arXiv:2107.08924 and 2302.09205) is
added: a small MLP on the encoder's features, gradient stopped, that outputs a matrix G(s) of
n_actions x D; its Q term is G(s) z, where the index z in {-1, +1}^D is a dropout mask at rate 0.5
centred to mean 0. A frozen random twin on its own random encoder (the epinet's prior, scaled by
epinet_prior_scale) gets the same index. Over z both terms have mean 0, so the mean over draws is
the base network's Q, and the spread of action a is the norm of row a of G_learned + beta G_prior.
Training on random z drives that sum to 0 on replayed states only, so the spread stays where there
was no data. Its index is one more entry of the dropout noise, so episode masks, fixed mask pools and
the shared target noise carry it unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from howsure.agents.concrete_dropout import ConcreteDropout, concrete_regulariser
from howsure.agents.priors import init_prior
from howsure.encoders import make_encoder
from torch import nn

Noise = dict[str, torch.Tensor]  # dropout place name (or "epinet") -> uniform noise (B, K)
EPINET = "epinet"


class Features(NamedTuple):
    """Encoder outputs of one batch, computed once and shared by all draws."""

    feat: torch.Tensor  # the trained encoder's
    prior: torch.Tensor | None = None  # the randomized prior's encoder (prior_scale > 0)
    epinet_prior: torch.Tensor | None = None  # the epinet prior's encoder (epinet_hidden > 0)

    def repeat(self, n: int) -> "Features":
        return Features(*(None if t is None else t.repeat(n, 1) for t in self))


def place_names(n_hidden: int) -> list[str]:
    """Dropout places: 'features' (encoder output), then 'hidden1'.. (outputs of head layers)."""
    return ["features"] + [f"hidden{i + 1}" for i in range(n_hidden)]


def tile_rows(x: torch.Tensor, rows: int) -> torch.Tensor:
    """x (B, ...) repeated to `rows` rows (a multiple of B): [x; x; ...], one copy per mask."""
    return x if len(x) == rows else x.repeat(rows // len(x), *([1] * (x.dim() - 1)))


def noise_rows(noise: Noise | None, default: int) -> int:
    """Rows a pass under `noise` produces: its longest entry's, or `default` without noise."""
    return max((len(u) for u in noise.values()), default=default) if noise else default


class _Head(nn.Module):
    def __init__(self, widths: list[int]):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))


class Epinet(nn.Module):
    """out(x, z) = G(x) z with G(x) = reshape(W relu(V x + b), (A, D)): linear in the index z (B, D),
    so its mean over centred indices is 0, and the spread of action a is the norm of row a of G(x)."""

    def __init__(self, in_features: int, hidden: int, n_actions: int, index_dim: int):
        super().__init__()
        self.n_actions, self.index_dim = n_actions, index_dim
        self.hidden = nn.Linear(in_features, hidden)
        self.out = nn.Linear(hidden, n_actions * index_dim)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        g = self.out(torch.relu(self.hidden(x))).view(-1, self.n_actions, self.index_dim)
        return torch.einsum("bad,bd->ba", g, z)


def epinet_index(u: torch.Tensor) -> torch.Tensor:
    """Uniform noise -> z in {-1, +1}: a keep mask at rate 0.5, centred and scaled to mean 0, variance 1."""
    return torch.where(u < 0.5, -1.0, 1.0).to(u.dtype)


class BayesQNetwork(nn.Module):
    def __init__(self, encoder_cfg, spec, hidden_sizes: tuple[int, ...], dropout_p: tuple[float, ...],
                 learn_p: bool, temperature: float, prior_scale: float, n_masks: int = 0,
                 epinet_hidden: int = 0, epinet_prior_scale: float = 0.0, epinet_index_dim: int = 8):
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
        self.widths = {name: d.in_features for name, d in self.dropouts.items()}  # noise per place
        self.epinet_prior_scale = epinet_prior_scale
        self.epinet = None
        if epinet_hidden > 0:
            self.widths[EPINET] = epinet_index_dim
            self.epinet = Epinet(self.encoder.out_features, epinet_hidden, spec.n_actions, epinet_index_dim)
            self.epinet_prior_encoder = make_encoder(encoder_cfg, spec).requires_grad_(False)
            self.epinet_prior = Epinet(self.epinet_prior_encoder.out_features, epinet_hidden, spec.n_actions,
                                       epinet_index_dim).requires_grad_(False)
            init_prior(self.epinet_prior_encoder)
            init_prior(self.epinet_prior)
        # n_masks > 0: every draw picks one of n_masks noise vectors fixed at init (Masksembles,
        # Durasov et al. arXiv:2012.08334): an implicit ensemble of n_masks members, each trained
        # on many batches, instead of a fresh member per draw that is trained at most once.
        self.n_masks = n_masks
        for name, width in self.widths.items():
            if n_masks > 0:
                self.register_buffer(f"pool_{name}", torch.rand(n_masks, width))
        if prior_scale > 0:
            self.prior_encoder = make_encoder(encoder_cfg, spec).requires_grad_(False)
            self.prior_head = _Head(widths).requires_grad_(False)
            init_prior(self.prior_encoder)
            init_prior(self.prior_head)

    # -- noise ----------------------------------------------------------------------------
    def draw_noise(self, batch: int, device=None) -> Noise:
        if self.n_masks > 0:
            return self.mask_noise(torch.randint(self.n_masks, (batch,), device=device))
        return {name: torch.rand(batch, width, device=device) for name, width in self.widths.items()}

    def mask_noise(self, idx: torch.Tensor) -> Noise:
        """n_masks > 0: the noise of fixed masks `idx` (B,), one per row."""
        return {name: getattr(self, f"pool_{name}")[idx] for name in self.widths}

    # -- forward --------------------------------------------------------------------------
    def features(self, obs: torch.Tensor) -> Features:
        """Encoder outputs (the trained one's and the priors'); computed once, shared by all draws."""
        prior = self.prior_encoder(obs) if self.prior_scale > 0 else None
        epinet_prior = self.epinet_prior_encoder(obs) if self.epinet is not None else None
        return Features(self.encoder(obs), prior, epinet_prior)

    def _run(self, head: _Head, x: torch.Tensor, masks: dict[str, torch.Tensor], rows: int) -> torch.Tensor:
        """The head on x with dropout `masks` (place -> scaled keep mask; absent: dropout off there).
        Masks may have reps x the rows of x (every mask for every row, mask-major): the rows are
        tiled at the first masked place, so the layers before it run once per row, not per mask."""
        for i, (name, layer) in enumerate(zip(self.names, head.layers)):
            if name in masks:
                x = tile_rows(x, len(masks[name])) * masks[name]
            x = layer(x)
            if i < len(head.layers) - 1:
                x = torch.relu(x)
        return tile_rows(x, rows)

    def masks(self, noise: Noise | None, relaxed: bool = False) -> dict[str, torch.Tensor]:
        """Scaled keep masks of the dropout places the noise names, built once per pass and shared
        by the trained head and its prior (the same member of the implicit ensemble)."""
        if noise is None:
            return {}
        return {name: self.dropouts[name].mask(u, relaxed) for name, u in noise.items() if name in self.dropouts}

    def q_values(self, feats: Features, noise: Noise | None, relaxed: bool = False) -> torch.Tensor:
        """Q (B, A) from features; noise None means dropout off (the mean-weight network; the
        epinet's mean over its index is 0, so it adds nothing there)."""
        masks, rows = self.masks(noise, relaxed), noise_rows(noise, len(feats.feat))
        q = self._run(self.head, feats.feat, masks, rows)
        if feats.prior is not None:
            q = q + self.prior_scale * self._run(self.prior_head, feats.prior, masks, rows).detach()
        index_part = self.epinet_term(feats, noise)
        return q if index_part is None else q + index_part

    def epinet_term(self, feats: Features, noise: Noise | None) -> torch.Tensor | None:
        """The epinet's share of Q (B, A) under the index in `noise`, learned head plus scaled prior;
        None without an epinet or an index (noise None or without its entry: its mean, 0)."""
        if self.epinet is None or noise is None or EPINET not in noise:
            return None
        z = epinet_index(noise[EPINET])
        out = self.epinet(tile_rows(feats.feat.detach(), len(z)), z)
        if feats.epinet_prior is not None:  # recurrent callers pass the encoder output only
            prior = self.epinet_prior(tile_rows(feats.epinet_prior, len(z)), z)
            out = out + self.epinet_prior_scale * prior.detach()
        return out

    def forward(self, obs: torch.Tensor, noise: Noise | None = None, relaxed: bool = False) -> torch.Tensor:
        return self.q_values(self.features(obs), noise, relaxed)

    def draws(self, feats: Features, n_draws: int, split: bool = False):
        """Q under n_draws fresh masks per row: (n_draws, B, A). With n_masks > 0, every fixed mask
        once instead, in order (n_masks, B, A): the whole implicit ensemble, no sampling noise.
        split=True: (the draws without the epinet's index part, that part or None); their sum is Q."""
        b, device = feats.feat.shape[0], feats.feat.device
        n = self.n_masks if self.n_masks > 0 else n_draws
        if self.n_masks > 0:
            noise = self.mask_noise(torch.arange(n, device=device).repeat_interleave(b))
        else:
            noise = self.draw_noise(b * n, device)
        rep = feats.repeat(n)
        if not split:
            return self.q_values(rep, noise).reshape(n, b, -1)
        base = self.q_values(rep, {k: v for k, v in noise.items() if k != EPINET}).reshape(n, b, -1)
        index_part = self.epinet_term(rep, noise)
        return base, None if index_part is None else index_part.reshape(n, b, -1)

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
