"""Environments: one make_env for every family, picked by env id (envs.make.FAMILIES)."""

import ale_py
import gymnasium as gym
from howsure.envs import bsuite, cartpole_novel, nchain
from howsure.envs.make import EnvSpec, check_id, family_of, make_env, register_family, register_third_party, spec_of
from howsure.envs.vector import Step, VectorStepper, make_vector_env

gym.register_envs(ale_py)
nchain.register()
cartpole_novel.register()
bsuite.register()

__all__ = ["EnvSpec", "Step", "VectorStepper", "check_id", "family_of", "make_env", "register_third_party",
           "make_vector_env", "register_family", "spec_of"]
