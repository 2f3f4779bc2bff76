"""The bsuite adapter: same rewards, discounts and observations as bsuite's own dm_env, step by step."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("bsuite")

from howsure.envs.bsuite import BsuiteEnv  # noqa: E402

from howsure import envs  # noqa: E402
from howsure.errors import UserError  # noqa: E402
from howsure.wiring import load  # noqa: E402


def _dm_and_gym(bsuite_id: str, seed: int):
    """bsuite's env as load_from_id builds it, but with `seed` (catch's sweep leaves it None)."""
    from bsuite import bsuite, sweep

    dm = bsuite.load(bsuite_id.split("/")[0], {**sweep.SETTINGS[bsuite_id], "seed": seed})
    env = envs.make_env(load(None, [f"env.id=bsuite/{bsuite_id}"]).env)
    return dm, env


@pytest.mark.parametrize("bsuite_id, episodes", [("deep_sea/5", 4), ("catch/0", 2), ("memory_len/3", 3)])
def test_adapter_reproduces_dm_env_step_by_step(bsuite_id, episodes):
    dm, env = _dm_and_gym(bsuite_id, seed=3)
    rng = np.random.default_rng(0)
    ts = dm.reset()
    obs, _ = env.reset(seed=3)  # rebuilds bsuite's env with that seed; later resets continue it
    assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(obs, np.asarray(ts.observation, np.float32).ravel())
    ended = 0
    while ended < episodes:
        action = int(rng.integers(env.action_space.n))
        ts = dm.step(action)
        obs, reward, terminated, truncated, info = env.step(action)
        np.testing.assert_array_equal(obs, np.asarray(ts.observation, np.float32).ravel())
        assert reward == pytest.approx(float(ts.reward or 0.0))
        assert info["discount"] == pytest.approx(float(ts.discount))
        assert (terminated or truncated) == ts.last()
        if ts.last():
            assert terminated == (ts.discount == 0.0)
            ended += 1
            ts = dm.reset()
            obs, _ = env.reset()
            np.testing.assert_array_equal(obs, np.asarray(ts.observation, np.float32).ravel())


def test_deep_sea_ids_follow_bsuite_sweep_and_the_treasure_pays():
    env = BsuiteEnv("bsuite/deep_sea/5")  # bsuite's deep_sea/5: size 20
    assert env.observation_space.shape == (400,) and env.action_space.n == 2
    mapping = env.dm_env._action_mapping  # which action means "right" in each cell
    obs, _ = env.reset()
    total, steps = 0.0, 0
    while True:
        row, col = divmod(int(np.argmax(obs)), 20)
        obs, reward, terminated, truncated, _ = env.step(int(mapping[row, col]))
        total, steps = total + reward, steps + 1
        if terminated or truncated:
            break
    assert terminated and not truncated and steps == 20
    assert total == pytest.approx(0.99)  # optimal return: 1 minus the move cost 0.01
    kept = BsuiteEnv("bsuite/deep_sea/0", flatten=False)
    assert kept.observation_space.shape == (10, 10)


def test_env_kwargs_override_bsuite_settings_and_vector_envs_work():
    cfg = load(None, ["env.id=bsuite/deep_sea/0", "env.kwargs={mapping_seed: 7}"]).env
    env = envs.make_env(cfg)
    assert env.unwrapped.settings == {"size": 10, "mapping_seed": 7}
    vec = envs.make_vector_env(cfg, 2)
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (2, 100) and obs.dtype == np.float32
    vec.close()


@pytest.mark.parametrize("env_id, words", [
    ("bsuite/deep_see/1", ["deep_sea"]),
    ("bsuite/deep_sea/21", ["0..20"]),
    ("bsuite/deep_sea", ["bsuite/<experiment>/<n>"]),
    ("bsuite/memory_len/x", ["0..22"]),
])
def test_unknown_ids_are_user_errors_naming_the_choices(env_id, words):
    with pytest.raises(UserError) as err:
        envs.make_env(load(None, [f"env.id={env_id}"]).env)
    for word in words:
        assert word in str(err.value)


def test_bad_setting_is_a_user_error(cli):
    with pytest.raises(UserError, match="rejected its settings"):
        envs.make_env(load(None, ["env.id=bsuite/deep_sea/0", "env.kwargs={no_such_setting: 1}"]).env)
    done = cli("train.py", "--config", "configs/dqn_deep_sea.yaml", "env.id=bsuite/deep_sea/99",
               "run_dir=/nonexistent/never")
    assert done.returncode == 2 and "0..20" in done.stderr and "Traceback" not in done.stderr
