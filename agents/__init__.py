"""Agents plug in through a registry: adding one is adding a file and one line here."""

from __future__ import annotations

from howsure.agents.base import Agent
from howsure.agents.bayes_dqn import BayesDQNAgent
from howsure.agents.boot_dqn import BootDQNAgent
from howsure.agents.dqn import DQNAgent
from howsure.agents.pqn import PQNAgent
from howsure.agents.tabular_q import TabularQAgent

from howsure.registry import Registry

AGENTS: Registry[type[Agent]] = Registry("agent")
AGENTS.register("tabular_q")(TabularQAgent)
AGENTS.register("dqn")(DQNAgent)
AGENTS.register("boot_dqn")(BootDQNAgent)
AGENTS.register("bayes_dqn")(BayesDQNAgent)
AGENTS.register("pqn")(PQNAgent)


def make_agent(cfg, spec) -> Agent:
    """cfg: the whole run Config; the agent gets its own section plus the encoder section."""
    return AGENTS.get(cfg.agent.name)(cfg.agent, spec, encoder_cfg=cfg.encoder, device=cfg.device,
                                      seed=cfg.seed)


__all__ = ["AGENTS", "Agent", "make_agent"]
