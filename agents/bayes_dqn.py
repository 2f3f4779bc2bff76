"""bayes_dqn: DQN whose Q-network keeps dropout on while acting (MC dropout as approximate
Bayesian inference, Gal & Ghahramani arXiv:1506.02142) and explores with the uncertainty that the
dropout draws reveal instead of with epsilon.

- dropout rates learned by Concrete Dropout (arXiv:1705.07832), regularised with N = transitions
  in the replay when the batch was drawn (capped through n_data_max_steps);
- exploration: `thompson` (a fresh mask per env and step, greedy on that draw), `thompson_episode`
  (one mask per env held for the whole episode: temporally consistent, like one head of
  Bootstrapped DQN arXiv:1602.04621), `thompson_epinet` (one epinet index per env held for the
  episode, on the dropout-off network), `ucb` (mean + kappa * std over n_draws draws);
- evaluation acts on the mean Q over n_draws draws, or with dropout off (eval_dropout=false);
- optional randomized prior function (arXiv:1806.03335), see agents/bayes_network.py;
- optional dropout epinet (epinet_hidden > 0): an index-conditioned head on the stopped encoder
  features with a frozen random prior twin, see agents/bayes_network.py;
- n_masks > 0: draws pick one of n_masks masks fixed at init (Masksembles, arXiv:2012.08334), a
  coarse implicit ensemble whose members keep their disagreement (docs/exploration.md);
- the TD target uses the same dropout noise as the online pass (target_dropout=shared), so each
  mask is trained as one consistent member of an implicit ensemble; double-DQN is a switch.
TD target and loss are agents.dqn's pure functions.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from howsure.agents.bayes_network import EPINET, BayesQNetwork, Features, Noise, noise_rows, place_names, tile_rows
from howsure.agents.bootstrap import bootstrap_masks
from howsure.agents.dqn import DQNAgent, TDConfig, td_loss, td_target
from howsure.agents.recurrent import unroll
from howsure.replay.batch import Batch
from howsure.replay.sequence_batch import SequenceBatch
from torch import nn

from howsure.errors import UserError


@dataclass(frozen=True)
class BayesDQNConfig(TDConfig):
    name: str = "bayes_dqn"
    double_dqn: bool = True
    # --- the Bayesian part
    head_hidden_sizes: tuple[int, ...] = (128,)  # units of the head's hidden layers
    dropout_p: tuple[float, ...] = (0.1, 0.1)  # per place: after the encoder, after each head
    #                                            hidden layer; 0 = no dropout there; initial if learned
    concrete: bool = True  # learn the rates (Concrete Dropout); false: fixed MC dropout
    concrete_temperature: float = 0.1  # relaxation temperature t (paper: 0.1)
    length_scale: float = 1e-2  # prior length scale l of the weight term l^2 (1-p)/2 ||M||^2
    tau_precision: float = 1.0  # model precision tau; the KL is divided by tau * N
    n_data_max_steps: int = 0  # N = transitions in the replay, capped here; 0: no cap
    # thompson_epinet (needs epinet_hidden): one epinet index per env held for the episode, on the
    # network with its dropout off; the dropout draws still train, evaluate and give the spread
    exploration: Literal["thompson", "thompson_episode", "thompson_epinet", "ucb"] = "thompson"
    ucb_kappa: float = 1.0  # ucb: act on mean + kappa * std
    n_draws: int = 10  # dropout draws for ucb, evaluation's mean Q and the uncertainty metric
    eval_dropout: bool = True  # evaluation: mean over n_draws draws; false: one pass, dropout off
    epsilon_floor: float = 0.0  # random actions while training, on top of the posterior's
    prior_scale: float = 0.0  # beta of the randomized prior function; 0 disables it
    target_dropout: Literal["shared", "off"] = "shared"  # target net: the online pass's noise, or none
    n_masks: int = 0  # 0: a fresh dropout mask per draw; K > 0: draws pick one of K masks fixed at init
    # n_masks > 0: chance that a mask trains on a given transition, a fixed function of its replay
    # slot (each mask its own bootstrap of the data, as boot_dqn's heads); 1.0: every mask sees all
    mask_bootstrap: float = 1.0
    # n_masks > 0: which masks an update trains on each sampled row. "one": a mask drawn per row,
    # so each member sees about B / n_masks rows; "all": every row once per mask (weighted by
    # mask_bootstrap), as boot_dqn trains every head on the whole batch: each member gets a full
    # batch per update, for n_masks x the head's cost (the encoder still runs once per row)
    mask_training: Literal["one", "all"] = "one"
    # dropout epinet (agents/bayes_network.py): units of its hidden layer, 0 = none; its index is a
    # centred dropout mask drawn with the others, and a frozen random twin scaled by epinet_prior_scale
    # gives the spread that training removes on replayed states only
    epinet_hidden: int = 0
    epinet_index_dim: int = 8  # D: the index's length (the epinet's dropout mask)
    epinet_prior_scale: float = 1.0
    # TD targets with the epinet's index ("index": its spread also carries the uncertainty of later
    # states, as boot_dqn's heads) or without it ("mean": trained to 0 on replayed states, so its
    # spread says how unfamiliar a state itself is)
    epinet_target: Literal["mean", "index"] = "mean"
    # the index also enters the acting draws (Thompson, the UCB and evaluation means); false: the
    # values acted on leave it out, and only UCB's bonus (kappa * the whole spread) sees it
    epinet_in_acting: bool = True


class BayesDQNAgent(DQNAgent):
    Config = BayesDQNConfig
    reports_uncertainty = True

    def __init__(self, cfg: BayesDQNConfig, spec, **kwargs):
        if len(cfg.dropout_p) != len(cfg.head_hidden_sizes) + 1:
            raise UserError(
                f"agent.dropout_p has {len(cfg.dropout_p)} rates but there are "
                f"{len(cfg.head_hidden_sizes) + 1} dropout places "
                f"({', '.join(place_names(len(cfg.head_hidden_sizes)))}); "
                "give one rate per place (0 = no dropout there)")
        if not any(p > 0 for p in cfg.dropout_p):
            raise UserError("agent.dropout_p is all zeros: bayes_dqn needs dropout somewhere "
                            "(use agent.name=dqn without it)")
        if cfg.n_masks < 0 or cfg.n_masks == 1:
            raise UserError(f"agent.n_masks={cfg.n_masks}: use 0 (a fresh mask per draw) or at least 2 fixed masks")
        if cfg.n_draws < 2:
            raise UserError(f"agent.n_draws={cfg.n_draws}: need at least 2 draws to measure uncertainty")
        if cfg.mask_bootstrap < 1.0 and cfg.n_masks == 0:
            raise UserError(f"agent.mask_bootstrap={cfg.mask_bootstrap} needs fixed masks to bootstrap: "
                            "set agent.n_masks (e.g. 10) or agent.mask_bootstrap=1")
        if cfg.mask_training == "all" and cfg.n_masks == 0:
            raise UserError("agent.mask_training=all trains every fixed mask on each row: set agent.n_masks "
                            "(e.g. 10) or agent.mask_training=one")
        super().__init__(cfg, spec, **kwargs)
        if self.memory is not None and cfg.mask_training == "all":
            raise UserError("agent.mask_training=all with a recurrent encoder is not supported; set it to one")
        if self.memory is not None and cfg.prior_scale > 0:
            raise UserError("agent.prior_scale > 0 with a recurrent encoder is not supported; set agent.prior_scale=0")
        if self.memory is not None and cfg.mask_bootstrap < 1.0:
            raise UserError("agent.mask_bootstrap < 1 with a recurrent encoder is not supported; set it to 1")
        if cfg.exploration == "thompson_epinet" and (cfg.epinet_hidden == 0 or not cfg.epinet_in_acting):
            raise UserError("agent.exploration=thompson_epinet acts on the epinet's index: set agent.epinet_hidden "
                            "(e.g. 64) and agent.epinet_in_acting=true")
        if self.memory is not None and cfg.epinet_hidden > 0:
            raise UserError("agent.epinet_hidden > 0 with a recurrent encoder is not supported; "
                            "set agent.epinet_hidden=0")
        # which masks train on which replay slots (drawn only when used, so other runs keep their RNG stream)
        self.mask_seed = int(self.rng.integers(2**62)) if cfg.mask_bootstrap < 1.0 else 0
        self._episode_noise: Noise = {}  # thompson_episode: rows = envs, held until begin_episode
        self._last_std = np.zeros(0)
        self._sums = [0.0, 0]  # epistemic std of training acts since the last act_metrics()
        self._std_scale = 0.0  # running max of the std (the video's uncertainty bar)

    def build_network(self) -> nn.Module:
        c = self.cfg
        return BayesQNetwork(self.encoder_cfg, self.spec, c.head_hidden_sizes, c.dropout_p, c.concrete,
                             c.concrete_temperature, c.prior_scale, c.n_masks, c.epinet_hidden,
                             c.epinet_prior_scale, c.epinet_index_dim)

    def epsilon(self, step: int) -> float:
        return self.cfg.epsilon_floor

    def n_data(self, batch) -> int:
        """N of the Concrete-dropout regulariser: the replay's size when the batch was drawn, capped."""
        n, cap = max(batch.data_size, len(batch)), self.cfg.n_data_max_steps
        return min(n, cap) if cap > 0 else n

    # -- acting ---------------------------------------------------------------------------
    def begin_episode(self, env_indices: np.ndarray) -> None:
        """Draw a new held mask for these envs (used by thompson_episode); reset recurrent state."""
        super().begin_episode(env_indices)
        idx = np.asarray(env_indices, dtype=np.int64)
        if len(idx):
            self._ensure_rows(int(idx.max()) + 1)
            fresh = self.q.draw_noise(len(idx), self.device)
            rows = torch.as_tensor(idx, device=self.device)
            for name in self._episode_noise:
                self._episode_noise[name][rows] = fresh[name]

    @contextlib.contextmanager
    def evaluating(self):
        """Evaluation inside training redraws masks for its own envs; the training envs keep theirs."""
        held = {k: v.clone() for k, v in self._episode_noise.items()}
        with super().evaluating():
            try:
                yield
            finally:
                self._episode_noise = held

    def _ensure_rows(self, n: int) -> None:
        have = next(iter(self._episode_noise.values())).shape[0] if self._episode_noise else 0
        if have < n:
            extra = self.q.draw_noise(n - have, self.device)
            self._episode_noise = {k: torch.cat([self._episode_noise[k], v]) if have else v
                                   for k, v in extra.items()}

    def act(self, obs: np.ndarray, step: int, epsilon: float | None = None) -> np.ndarray:
        c, n = self.cfg, len(obs)
        training = epsilon is None
        with torch.no_grad():
            obs_t = torch.as_tensor(obs, device=self.device)
            # a recurrent encoder steps once per observation; the draws share its state
            feats = self.q.features(obs_t) if self.memory is None else Features(self.memory.step(obs_t))
            base, index_part = self.q.draws(feats, c.n_draws, split=True)  # (T, n, A) each
            full = base if index_part is None else base + index_part  # the posterior's draws
            draws = full if c.epinet_in_acting else base  # what the agent acts on
            if not training:
                q = draws.mean(0) if c.eval_dropout else self.q.q_values(feats, None)
            elif c.exploration == "thompson":  # one posterior member per row
                q = draws[0] if self.q.n_masks == 0 else draws[self.rng.integers(len(draws), size=n), np.arange(n)]
            elif c.exploration in ("thompson_episode", "thompson_epinet"):
                self._ensure_rows(n)
                keep_masks = c.exploration == "thompson_episode"  # thompson_epinet: the index alone
                held = {k: v[:n] for k, v in self._episode_noise.items()
                        if (k == EPINET and c.epinet_in_acting) or (k != EPINET and keep_masks)}
                q = self.q.q_values(feats, held)
            else:
                q = draws.mean(0) + c.ucb_kappa * full.std(0, unbiased=False)  # optimism over the whole spread
            actions = q.argmax(dim=1)
            chosen = full.gather(2, actions.view(1, n, 1).expand(len(full), n, 1)).squeeze(2)
            std = chosen.std(0, unbiased=False).cpu().numpy()
        actions = actions.cpu().numpy()
        eps = c.epsilon_floor if training else epsilon
        if eps > 0:
            explore = self.rng.random(n) < eps
            actions[explore] = self.rng.integers(0, self.spec.n_actions, size=int(explore.sum()))
        self._last_std = std
        if training:  # evaluations log their own mean (howsure/training.py, evaluate_and_log)
            self._sums[0] += float(std.sum())
            self._sums[1] += n
        self._std_scale = max(self._std_scale, float(std.max()))
        return actions

    def q_spread(self, obs: np.ndarray, draws: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        if self.memory is not None:  # a recurrent encoder's state belongs to the episode being played
            return None
        with torch.no_grad():
            q = self.q.draws(self.q.features(torch.as_tensor(obs, device=self.device)), draws or self.cfg.n_draws)
        return q.mean(0).cpu().numpy(), q.std(0, unbiased=False).cpu().numpy()

    def last_epistemic_std(self) -> np.ndarray:
        """Per row of the last act(): std over dropout draws of the chosen action's Q."""
        return self._last_std

    def epistemic_std_scale(self) -> float:
        return self._std_scale

    def act_metrics(self) -> dict[str, float]:
        total, count = self._sums
        self._sums = [0.0, 0]
        return {"uncertainty/epistemic_std": total / count} if count else {}

    def schedule_metrics(self, step: int) -> dict[str, float]:
        return {"charts/epsilon": self.cfg.epsilon_floor}

    # -- learning -------------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        c = self.cfg
        batch = batch.to(self.device)
        noise, kept = self.training_noise(batch)
        weights = batch.weights
        # epinet_target=mean: the TD targets carry no index, so the index-dependent part of the
        # epinet's loss has target 0 and is trained on its own (squared), and the base meets the
        # TD target without the index's noise (which under a Huber loss would clip its gradients)
        separate = c.epinet_hidden > 0 and c.epinet_target == "mean" and not isinstance(batch, SequenceBatch)
        index_part = None
        if isinstance(batch, SequenceBatch):
            q_taken, target = self.sequence_q_and_target(batch, noise)
        else:
            # mask_training=all: the noise holds every row once per mask, mask-major, and the network
            # tiles its rows to match (after the layers every mask shares)
            rows = noise_rows(noise, len(batch))

            def tile(x):
                return tile_rows(x, rows)

            actions = tile(batch.actions).unsqueeze(1)
            feats = self.q.features(batch.obs)
            if separate:  # the base alone meets the TD target; the index part is trained below
                q = self.q.q_values(feats, {k: v for k, v in noise.items() if k != EPINET}, relaxed=True)
                index_part = self.q.epinet_term(feats, noise).gather(1, actions).squeeze(1)
            else:
                q = self.q.q_values(feats, noise, relaxed=True)
            q_taken = q.gather(1, actions).squeeze(1)
            with torch.no_grad():
                t_noise = self.target_noise(noise)
                next_online = self.q(batch.next_obs, t_noise) if c.double_dqn else None
                target = td_target(tile(batch.rewards), tile(batch.discounts), self.target(batch.next_obs, t_noise),
                                   next_online)
            if weights is not None:
                weights = tile(weights)
        if kept is not None:  # rows no mask may train on count 0
            kept = torch.as_tensor(kept, device=q_taken.device)
            weights = kept if weights is None else weights * kept
        loss, _ = td_loss(q_taken, target, c.loss, weights)
        total = loss
        if index_part is not None:
            epinet_loss, _ = td_loss(index_part, torch.zeros_like(index_part), "mse", weights)
            total = total + epinet_loss
        weight_reg, drop_reg = self.q.regularisers(c.length_scale, self.n_data(batch), c.tau_precision)
        self.apply_gradients(total + weight_reg + drop_reg)
        metrics = {"losses/td_loss": loss.item(), "losses/weight_reg": weight_reg.item(),
                   "losses/dropout_reg": drop_reg.item(), "values/q_mean": q_taken.mean().item()}
        if index_part is not None:
            metrics["losses/epinet_loss"] = epinet_loss.item()
        metrics.update({f"uncertainty/dropout_p/{k}": v for k, v in self.q.rates().items()})
        return metrics

    def target_noise(self, noise: Noise) -> Noise | None:
        """The noise of the TD target's passes: the online pass's (target_dropout=shared) or none;
        without the epinet's index unless epinet_target=index."""
        if self.cfg.target_dropout != "shared":
            return None
        return noise if self.cfg.epinet_target == "index" else {k: v for k, v in noise.items() if k != EPINET}

    def training_noise(self, batch) -> tuple[Noise, np.ndarray | None]:
        """A mask per row, and with mask_bootstrap < 1 which rows some mask keeps (B,) 0/1: each row
        gets one of the masks whose bootstrap keeps its replay slot; a row no mask keeps gets weight 0.
        mask_training=all: every mask for every row, (n_masks * B,) mask-major, and the weights 0/1
        of each (mask, row) pair from the same bootstrap."""
        c = self.cfg
        sequences = isinstance(batch, SequenceBatch)
        allowed = (bootstrap_masks(np.asarray(batch.indices), c.n_masks, c.mask_bootstrap, self.mask_seed)
                   if c.mask_bootstrap < 1.0 and not sequences and batch.indices is not None else None)  # (B, K)
        if c.mask_training == "all" and not sequences:  # rows tiled mask-major
            noise = self.q.mask_noise(torch.arange(c.n_masks, device=self.device).repeat_interleave(len(batch)))
            return noise, None if allowed is None else np.ascontiguousarray(allowed.T).reshape(-1)
        if allowed is None:
            return self.q.draw_noise(len(batch), self.device), None
        pick = (self.rng.random(allowed.shape) + allowed).argmax(1)  # uniform among the allowed ones
        return self.q.mask_noise(torch.as_tensor(pick, device=self.device)), allowed.max(1)

    def sequence_q_and_target(self, batch: SequenceBatch, noise=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Recurrent encoder (agents/recurrent.py): one dropout mask per window, held over its steps
        (one posterior draw explains the whole window), R2D2 stored state and burn-in."""
        c = self.cfg
        noise = self.q.draw_noise(len(batch), self.device) if noise is None else noise

        def q_of(net: nn.Module, nz, relaxed: bool = False) -> torch.Tensor:  # (B, T + 1, A)
            feats = unroll(net.encoder, batch.obs, batch.states, batch.burn_in, batch.burn_in_mask)
            b, t = feats.shape[:2]
            rows = None if nz is None else {k: v.repeat_interleave(t, 0) for k, v in nz.items()}
            return net.q_values(Features(feats.flatten(0, 1)), rows, relaxed).view(b, t, -1)

        mask = batch.mask
        q = q_of(self.q, noise, relaxed=True)
        q_taken = q[:, :-1].gather(2, batch.actions.unsqueeze(2)).squeeze(2)[mask]
        with torch.no_grad():
            t_noise = self.target_noise(noise)
            next_online = q_of(self.q, t_noise)[:, 1:][mask] if c.double_dqn else None
            target = td_target(batch.rewards[mask], batch.discounts[mask], q_of(self.target, t_noise)[:, 1:][mask],
                               next_online)
        return q_taken, target

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "mask_seed": self.mask_seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.mask_seed = int(state.get("mask_seed", 0))  # checkpoints before mask_bootstrap: unused
