"""DQN: arXiv:1312.5602 (replay, annealed epsilon, reward clipping) with the target network of
the 2015 Nature paper; double-DQN targets (arXiv:1509.06461) and a dueling head are switches."""

from __future__ import annotations

import copy
import gc
import logging
import weakref
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from howsure.agents.base import Agent, AgentConfig, AnnealedEpsilon, epsilon_greedy, gradient_step, state_dict_mismatch
from howsure.agents.heads import QHead, QNetwork
from howsure.agents.recurrent import RecurrentMemory, is_recurrent, unroll
from howsure.encoders import make_encoder
from howsure.replay.batch import Batch
from howsure.replay.sequence_batch import SequenceBatch
from torch import nn

from howsure.errors import UserError
from howsure.runtime import has_cxx_compiler


@dataclass(frozen=True)
class TDConfig(AgentConfig):
    """What every replay-based TD agent shares (dqn, boot_dqn, bayes_dqn): the optimizer, the
    update schedule, the target network and the learner-side reward and life-loss handling."""
    name: str = "dqn"
    gamma: float = 0.99  # discount per agent step
    lr: float = 1e-4
    optimizer: Literal["adam", "rmsprop", "sgd"] = "adam"
    optimizer_eps: float = 1e-8  # Adam/RMSProp epsilon, added outside the square root (Nature's 0.01 was inside)
    rmsprop_alpha: float = 0.95  # RMSProp squared-gradient decay
    rmsprop_momentum: float = 0.0
    rmsprop_centered: bool = True
    batch_size: int = 32  # transitions per update
    learning_starts_steps: int = 1_000  # agent steps of pure collection before the first update
    train_every_steps: int = 1  # agent steps between training rounds
    updates_per_train: int = 1  # gradient updates per training round
    target_update_every_updates: int = 1_000  # gradient updates between target syncs
    target_tau: float = 1.0  # 1.0: hard copy (Nature); <1: Polyak averaging at each sync
    double_dqn: bool = False
    loss: Literal["huber", "mse"] = "huber"
    max_grad_norm: float = 10.0  # 0 disables gradient clipping
    # torch.compile of the optimizer step: one generated loop over the weights instead of several
    # foreach passes (the same arithmetic). It needs a C++ compiler and ~20 s to compile once per
    # machine; "auto": on for CPU training where one is installed (howsure/runtime.py).
    compile_optimizer: bool | Literal["auto"] = False


@dataclass(frozen=True)
class DQNConfig(TDConfig):
    name: str = "dqn"
    dueling: bool = False
    head_hidden: int = 0  # units of a hidden layer inside the head; 0: linear head
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay_steps: int = 10_000  # agent steps of linear annealing
    # The update's encoder passes in bfloat16 autocast (weights, optimizer state, head, Q-values and
    # loss stay float32; feed-forward encoders). Faster only where the CPU has AMX or AVX-512 BF16,
    # about 2x slower elsewhere; "auto" decides per machine (howsure/runtime.py).
    bf16_autocast: bool | Literal["auto"] = False
    # Convolution weights and activations in channels-last (NHWC) memory: oneDNN's CPU kernels for
    # that layout skip the reorders of NCHW, and the first layer's weight gradient runs ~2x faster
    # (docs/throughput.md). The same function up to float rounding; "auto": on for CPU training in
    # float32, and in bf16 where the CPU has AMX (howsure/runtime.py).
    channels_last: bool | Literal["auto"] = False


# ------------------------------------------------------------------ the loss, as pure functions


def td_target(rewards: torch.Tensor, discounts: torch.Tensor, next_q_target: torch.Tensor,
              next_q_online: torch.Tensor | None = None) -> torch.Tensor:
    """r + discount * Q_target(s', a*), a* = argmax of the online net (double) or the target net."""
    if next_q_online is None:
        next_v = next_q_target.max(dim=1).values
    else:
        best = next_q_online.argmax(dim=1, keepdim=True)
        next_v = next_q_target.gather(1, best).squeeze(1)
    return rewards + discounts * next_v


def td_loss(q_taken: torch.Tensor, target: torch.Tensor, kind: str = "huber",
            weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (weighted) Huber or squared TD error; also returns the TD errors themselves."""
    td = target - q_taken
    if kind == "huber":
        per = F.smooth_l1_loss(q_taken, target, reduction="none")
    else:
        per = 0.5 * td.pow(2)
    if weights is not None:
        per = per * weights
    return per.mean(), td


def make_optimizer(cfg, params) -> torch.optim.Optimizer:
    # foreach: one fused call per step over all parameters instead of a Python loop over them
    # (the same arithmetic, less interpreter time per update).
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, eps=cfg.optimizer_eps, foreach=True)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.rmsprop_alpha, eps=cfg.optimizer_eps,
                                   momentum=cfg.rmsprop_momentum, centered=cfg.rmsprop_centered, foreach=True)
    return torch.optim.SGD(params, lr=cfg.lr, foreach=True)


_COMPILED_OPTIMIZERS: weakref.WeakSet = weakref.WeakSet()  # alive in this process, step compiled


def compiled_step(optimizer: torch.optim.Optimizer):
    """torch.compile of the optimizer's step. The compiler keeps its cache per code object (every
    optimizer's step runs the same code, compiled in several frames around its graph breaks), an
    entry counts after its optimizer is gone, and past `recompile_limit` (8) entries it runs the
    code uncompiled with only a warning: the ninth agent made in one process (a serial sweep, a
    reused Ray worker) would lose its compiled step. So when no other compiled agent is alive, the
    compiler's cache starts empty."""
    gc.collect()  # a finished run's agent may still wait in a reference cycle
    if not _COMPILED_OPTIMIZERS:
        torch._dynamo.reset()
    _COMPILED_OPTIMIZERS.add(optimizer)
    return torch.compile(optimizer.step)


class DQNAgent(AnnealedEpsilon, Agent):
    Config = DQNConfig

    def __init__(self, cfg: DQNConfig, spec, **kwargs):
        super().__init__(cfg, spec, **kwargs)
        self.q = self.build_network().to(self.device)
        if getattr(cfg, "channels_last", False) is True:  # image encoders then read NHWC input (encoders/image.py)
            self.q.to(memory_format=torch.channels_last)
        self.target = copy.deepcopy(self.q).requires_grad_(False)
        self._params = list(self.q.parameters())  # cached: the hot path walks them every update
        self._target_params = list(self.target.parameters())
        self.optimizer = make_optimizer(cfg, self._params)
        if cfg.compile_optimizer is True:
            if torch.device(self.device).type == "cpu" and not has_cxx_compiler():
                raise UserError("agent.compile_optimizer=true needs a C++ compiler (g++ or clang++) on the PATH: "
                                "install one, or set agent.compile_optimizer=auto or false")
            # torch's compiler logs a notice that the optimizer's profiler label is dropped: not actionable
            logging.getLogger("torch._dynamo.variables.ctx_manager").setLevel(logging.ERROR)
            self.optimizer.step = compiled_step(self.optimizer)
        self.updates = 0
        # A recurrent encoder (DRQN) carries one state per env while acting.
        self.memory = RecurrentMemory(self.q.encoder, self.device) if is_recurrent(self.q) else None

    def build_network(self) -> nn.Module:
        encoder = make_encoder(self.encoder_cfg, self.spec)
        head = QHead(encoder.out_features, self.spec.n_actions, self.cfg.dueling, self.cfg.head_hidden)
        return QNetwork(encoder, head)

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            obs_t = torch.as_tensor(obs, device=self.device)
            q = self.q(obs_t) if self.memory is None else self.q.head(self.memory.step(obs_t))
        return q.argmax(dim=1).cpu().numpy()

    def act(self, obs: np.ndarray, step: int, epsilon: float | None = None) -> np.ndarray:
        eps = self.epsilon(step) if epsilon is None else epsilon
        return epsilon_greedy(self.rng, self.spec.n_actions, eps, self.greedy, obs,
                              always_greedy=self.memory is not None)

    def begin_episode(self, env_indices: np.ndarray) -> None:
        if self.memory is not None:
            self.memory.reset(env_indices)

    def evaluating(self):
        return self.memory.evaluating() if self.memory is not None else super().evaluating()

    @property
    def needs_sequences(self) -> bool:
        return self.memory is not None

    def replay_state(self) -> np.ndarray | None:
        return None if self.memory is None else self.memory.acted_from

    def sequence_q_and_target(self, batch: SequenceBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Q(s_t, a_t) and TD targets at the real steps of sequence windows (DRQN / R2D2), flat."""
        def q_of(net: nn.Module) -> torch.Tensor:  # (B, T + 1, n_actions)
            feats = unroll(net.encoder, batch.obs, batch.states, batch.burn_in, batch.burn_in_mask)
            return net.head(feats.flatten(0, 1)).view(feats.shape[0], feats.shape[1], -1)

        q, mask = q_of(self.q), batch.mask
        q_taken = q[:, :-1].gather(2, batch.actions.unsqueeze(2)).squeeze(2)[mask]
        with torch.no_grad():
            next_online = q[:, 1:][mask].detach() if self.cfg.double_dqn else None
            target = td_target(batch.rewards[mask], batch.discounts[mask], q_of(self.target)[:, 1:][mask],
                               next_online)
        return q_taken, target

    def update(self, batch: Batch) -> dict[str, float]:
        batch = batch.to(self.device)
        if isinstance(batch, SequenceBatch):
            q_taken, target = self.sequence_q_and_target(batch)
        elif self.memory is not None:
            raise UserError("a recurrent encoder learns from sequences: set replay.kind=sequence")
        else:
            q = self.forward_q(self.q, batch.obs)
            q_taken = q.gather(1, batch.actions.unsqueeze(1)).squeeze(1)
            with torch.no_grad():
                next_online = self.forward_q(self.q, batch.next_obs) if self.cfg.double_dqn else None
                target = td_target(batch.rewards, batch.discounts, self.forward_q(self.target, batch.next_obs),
                                   next_online)
        loss, td = td_loss(q_taken, target, self.cfg.loss, batch.weights)
        self.apply_gradients(loss)
        metrics = {"losses/td_loss": loss.item(), "values/q_mean": q_taken.mean().item()}
        if batch.weights is not None:  # prioritized replay: the loop hands |TD| to update_priorities
            metrics["priorities"] = td.detach().abs().float().cpu().numpy()
        return metrics

    def forward_q(self, net: nn.Module, obs: torch.Tensor) -> torch.Tensor:
        """Q(obs) of a feed-forward QNetwork in the update. With agent.bf16_autocast the encoder (the
        cost) runs in bfloat16 and the head in float32, so Q-values and TD targets keep float32's
        precision (bf16 has 8 mantissa bits: Q near 1 would move in steps of 0.004)."""
        if not self.cfg.bf16_autocast:
            return net(obs)
        with torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16):
            feats = net.encoder(obs)
        return net.head(feats.float())

    def apply_gradients(self, loss: torch.Tensor) -> None:
        """One optimiser step on `loss` (gradient clipping as configured), then the target schedule."""
        gradient_step(self.optimizer, self._params, loss, self.cfg.max_grad_norm)
        self.updates += 1
        if self.updates % self.cfg.target_update_every_updates == 0:
            self.sync_target()

    def sync_target(self) -> None:
        tau = self.cfg.target_tau
        with torch.no_grad():
            if tau < 1.0:
                torch._foreach_lerp_(self._target_params, self._params, tau)
            else:
                torch._foreach_copy_(self._target_params, self._params)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "q": self.q.state_dict(), "target": self.target.state_dict(),
                "optimizer": self.optimizer.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            self.q.load_state_dict(state["q"])
            self.target.load_state_dict(state["target"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, KeyError, ValueError) as err:
            raise UserError(f"checkpoint weights do not fit this network ({state_dict_mismatch(err)}); "
                            "keep the encoder/agent settings the checkpoint was trained with") from None
        self.updates = int(state["updates"])
        super().load_state_dict(state)

    def modules(self) -> dict[str, nn.Module]:
        return {"q": self.q}
