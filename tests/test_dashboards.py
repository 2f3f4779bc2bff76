"""TensorBoard dashboards of a real run (config text, SPS, HParams, custom scalars, evaluation video),
read back from its event file."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from howsure import config
from howsure.dashboards import config_in_use, scalars_layout
from howsure.logger import read_scalars

LEARNING_STARTS, LOG_EVERY = 1000, 500


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One short CartPole run shared by the dashboard tests: evaluations at 1000, 2000 and 3000,
    a video every second evaluation (so at 1000 and 3000)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tests.conftest import run_cli

    run_dir = tmp_path_factory.mktemp("dash") / "cartpole"
    res = run_cli("train.py", "--config", "configs/dqn_cartpole.yaml", f"run_dir={run_dir}", "total_steps=3000",
                  f"agent.learning_starts_steps={LEARNING_STARTS}", f"log.every_steps={LOG_EVERY}",
                  "eval.every_steps=1000", "eval.episodes=2", "eval.num_envs=2", "eval.video_every_evals=2",
                  "agent.gamma=0.95", "encoder.mlp.hidden_sizes=[64,64]", "agent.batch_size=32",
                  "agent.train_every_steps=2", "checkpoint_replay=false", "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0, "images": 0})
    acc.Reload()
    return run_dir, acc


def test_config_text_holds_only_what_the_run_uses(run):
    run_dir, acc = run
    (event,) = acc.Tensors("config/text_summary")
    text = event.tensor_proto.string_val[0].decode()
    used = yaml.safe_load(text.strip().strip("`"))
    assert "distributed" not in used  # actors=0
    assert "sticky_action_prob" not in used["env"] and "frame_skip" not in used["env"]  # Atari only
    assert set(used["encoder"]) == {"name", "mlp"}
    assert set(used["replay"]) == {"kind", "capacity_steps", "n_step", "prioritized"}  # uniform, not prioritized
    assert used["agent"]["gamma"] == 0.95
    full = yaml.safe_load((run_dir / "config.yaml").read_text())  # config.yaml keeps every key
    assert "distributed" in full and "lstm" in full["encoder"]


def test_sps_is_not_logged_for_the_warm_up(run):
    run_dir, _ = run
    scalars = read_scalars(run_dir)
    assert [s for s, _ in scalars["charts/SPS_warmup"]] == [500, 1000]
    sps_steps = [s for s, _ in scalars["charts/SPS"]]
    assert sps_steps == [1500, 2000, 2500, 3000]
    assert all(s - LOG_EVERY >= LEARNING_STARTS for s in sps_steps)  # each interval starts after warm-up


def test_hparams_hold_the_changed_config_and_the_final_metrics(run):
    from tensorboard.plugins.hparams import api_pb2
    from tensorboard.plugins.hparams import metadata as hp

    run_dir, acc = run
    content = acc.PluginTagToContent(hp.PLUGIN_NAME)
    assert hp.EXPERIMENT_TAG not in content  # TensorBoard infers the table across runs
    start = hp.parse_session_start_info_plugin_data(content[hp.SESSION_START_INFO_TAG])
    values = {k: v.number_value if v.HasField("number_value") else v.string_value if v.HasField("string_value")
              else v.bool_value for k, v in start.hparams.items()}
    assert values["seed"] == 0 and values["agent"] == "dqn" and values["env"] == "CartPole-v1"
    assert values["agent.gamma"] == pytest.approx(0.95) and values["total_steps"] == 3000
    assert values["eval.video_every_evals"] == 2 and values["encoder.mlp.hidden_sizes"] == "[64, 64]"
    assert "eval.epsilon" not in values  # 0.0 in the preset and the default
    assert "run_dir" not in values and not any(k.startswith("distributed.") for k in values)
    assert "agent.name" not in values and "env.id" not in values  # they are `agent` and `env`
    end = hp.parse_session_end_info_plugin_data(content[hp.SESSION_END_INFO_TAG])
    assert end.status == api_pb2.STATUS_SUCCESS
    scalars = read_scalars(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    evals = [v for _, v in scalars["eval/episodic_return"]]
    assert scalars["hparams/best_eval_return"] == [(3000, pytest.approx(summary["best_eval_return"]))]
    assert scalars["hparams/best_eval_return"][0][1] == pytest.approx(max(evals))
    assert scalars["hparams/final_eval_return"] == [(3000, pytest.approx(evals[-1]))]


def test_custom_scalars_layout_and_eval_spread(run):
    from tensorboard.plugins.custom_scalar import layout_pb2
    from tensorboard.plugins.custom_scalar import metadata as cs

    run_dir, acc = run
    events = acc.Tensors(cs.CONFIG_SUMMARY_TAG)
    layout = layout_pb2.Layout.FromString(events[-1].tensor_proto.string_val[0])
    charts = {c.title: c for cat in layout.category for c in cat.chart}
    scalars = read_scalars(run_dir)
    both = charts["episodic return: training and evaluation"].multiline.tag
    assert {t for t in scalars if any(re.search(rx, t) for rx in both)} == {"charts/episodic_return",
                                                                              "eval/episodic_return"}
    margin = charts["evaluation return, min to max"].margin.series[0]
    assert (margin.value, margin.lower, margin.upper) == ("eval/episodic_return", "eval/episodic_return_min",
                                                         "eval/episodic_return_max")
    for title, tag in (("losses", "losses/td_loss"), ("Q values", "values/q_mean"), ("epsilon", "charts/epsilon")):
        assert any(re.search(rx, tag) for rx in charts[title].multiline.tag), title
    assert "uncertainty" not in [c.title for c in layout.category]  # dqn logs no uncertainty/*
    for (_, mean), (_, lo), (_, hi) in zip(scalars["eval/episodic_return"], scalars["eval/episodic_return_min"],
                                           scalars["eval/episodic_return_max"]):
        assert lo <= mean <= hi
    # an agent that logs uncertainty/* (bayes_dqn) gets its own category, one chart per folder
    cats = scalars_layout({"uncertainty/epistemic_std", "uncertainty/dropout_p/features"})["uncertainty"]
    assert set(cats) == {"uncertainty", "uncertainty/dropout_p"}


def test_evaluation_video_at_the_games_speed(run):
    import io

    import imageio.v3 as iio
    from PIL import Image, ImageSequence

    _, acc = run
    images = acc.Images("eval/video")
    assert [e.step for e in images] == [1000, 3000]
    gif = images[-1].encoded_image_string
    assert gif[:4] == b"GIF8" and images[-1].width <= 160
    frames = iio.imread(gif, index=None, extension=".gif")
    assert frames.ndim == 4 and len(frames) >= 9  # CartPole lasts at least 9 steps, plus the reset screen
    # CartPole renders at 50 fps: 20 ms a frame (Pillow merges repeated frames, adding their delays)
    with Image.open(io.BytesIO(gif)) as im:
        delays = [frame.info["duration"] for frame in ImageSequence.Iterator(im)]
    assert min(delays) == 20 and all(d % 20 == 0 for d in delays)


def test_config_in_use_for_atari_tabular_and_distributed_runs():
    import envs
    from agents import make_agent

    pong = config_in_use(config.load("configs/dqn_pong.yaml", ["encoder.name=nature_cnn"]))
    assert pong["env"]["frame_skip"] == 4 and "sticky_action_prob" in pong["env"]
    assert "detector_top_k" not in pong["env"]  # no detector
    assert set(pong["encoder"]) == {"name", "nature_cnn"}
    cfg = config.load("configs/tabular_frozenlake.yaml")
    env = envs.make_env(cfg.env)
    spec = envs.spec_of(cfg.env.id, env)
    env.close()
    tabular = config_in_use(cfg, make_agent(cfg, spec), spec)
    assert "encoder" not in tabular and "replay" not in tabular  # a table, learning from the latest step
    sequence = config_in_use(config.load("configs/dqn_cartpole.yaml", ["replay.kind=sequence",
                                                                     "distributed.actors=2"]))
    assert "burn_in_steps" in sequence["replay"] and "n_step" not in sequence["replay"]
    assert sequence["distributed"]["actors"] == 2
