"""TensorBoard dashboards of a real run (config text, SPS, HParams, custom scalars, evaluation video),
read back from its event file, and howsure.plot's grouping of runs into curves."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import yaml

from howsure import config, wiring
from howsure.dashboards import config_in_use, scalars_layout
from howsure.logger import Logger, read_scalars
from howsure.plot import main as plot_main
from howsure.plot import make_figure

# one xdist worker runs this module, so its module-scoped run fixture trains once
pytestmark = pytest.mark.xdist_group("test_dashboards")

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


@pytest.mark.parametrize("agent", ["bayes_dqn", "boot_dqn"])
def test_uncertainty_histograms_and_q_band_image(tmp_path, agent):
    """A short run of an uncertainty-aware agent: per evaluation, a histogram of the posterior's
    std of Q and the Q-band picture; the plain DQN run above has neither."""
    import io

    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from howsure.dashboards import BAND_TAG, HISTOGRAM_TAG
    from tests.conftest import run_cli

    preset = {"bayes_dqn": "configs/bayes_dqn_cartpole.yaml", "boot_dqn": "configs/dqn_cartpole.yaml"}[agent]
    extra = [] if agent == "bayes_dqn" else ["agent.name=boot_dqn", "agent.num_heads=4"]
    run_dir = tmp_path / agent
    res = run_cli("train.py", "--config", preset, f"run_dir={run_dir}", "total_steps=1200", *extra,
                  "agent.learning_starts_steps=500", "eval.every_steps=600", "eval.episodes=2", "eval.num_envs=2",
                  "checkpoint_replay=false", "torch_threads=1", "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    acc = EventAccumulator(str(run_dir), size_guidance={"histograms": 0, "images": 0})
    acc.Reload()
    hist = acc.Histograms(HISTOGRAM_TAG)
    assert [h.step for h in hist] == [600, 1200]
    assert all(h.histogram_value.num > 0 and h.histogram_value.max > 0 for h in hist)  # a real spread
    bands = acc.Images(BAND_TAG)
    assert [b.step for b in bands] == [600, 1200]
    picture = np.asarray(Image.open(io.BytesIO(bands[-1].encoded_image_string)))
    assert picture.shape[0] > 100 and picture.shape[1] > 200 and picture.std() > 0


def test_no_uncertainty_pictures_without_a_posterior(run):
    from howsure.dashboards import BAND_TAG, HISTOGRAM_TAG

    _, acc = run
    assert HISTOGRAM_TAG not in acc.Tags()["histograms"] and BAND_TAG not in acc.Tags()["images"]


def test_config_in_use_for_atari_tabular_and_distributed_runs():
    from howsure.agents import make_agent

    from howsure import envs

    pong = config_in_use(wiring.load("configs/dqn_pong.yaml", ["encoder.name=nature_cnn"]))
    assert pong["env"]["frame_skip"] == 4 and "sticky_action_prob" in pong["env"]
    assert "detector_top_k" not in pong["env"]  # no detector
    assert set(pong["encoder"]) == {"name", "nature_cnn"}
    cfg = wiring.load("configs/tabular_frozenlake.yaml")
    env = envs.make_env(cfg.env)
    spec = envs.spec_of(cfg.env.id, env)
    env.close()
    tabular = config_in_use(cfg, make_agent(cfg, spec), spec)
    assert "encoder" not in tabular and "replay" not in tabular  # a table, learning from the latest step
    assert "checkpoint_replay" not in tabular and "learner_thread" not in tabular
    sequence = config_in_use(wiring.load("configs/dqn_cartpole.yaml", ["replay.kind=sequence",
                                                                     "distributed.actors=2"]))
    assert "burn_in_steps" in sequence["replay"]["sequence"] and "n_step" not in sequence["replay"]
    assert sequence["distributed"]["actors"] == 2


# --------------------------------------------------------------------------- howsure.plot


def fake_run(path, final: float, overrides: list[str], steps=(0, 500, 1000)):
    """A run folder as train.py leaves it for plotting: config.yaml and an event file (the project's
    Logger) whose eval curve rises linearly to `final`."""
    cfg = wiring.load("configs/dqn_cartpole.yaml", [f"run_dir={path}", *overrides])
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(config.to_yaml(cfg))
    log = Logger(path)
    for step in steps:
        log.scalar("eval/episodic_return", final * step / 1000, step)
    log.close()


def curves(json_path):
    return {(r["label"], r["tag"]): r for r in json.loads(json_path.read_text())}


def test_plot_groups_runs_by_config_not_seed(tmp_path, capsys):
    for seed, final in enumerate((100.0, 200.0)):
        fake_run(tmp_path / f"a{seed}", final, [f"seed={seed}", "agent.lr=0.001"])
        fake_run(tmp_path / f"b{seed}", final + 1000, [f"seed={seed}", "agent.lr=0.0001"])
    assert plot_main([str(tmp_path), "--reps", "50"]) == 0
    found = curves(tmp_path / "curves.json")
    assert set(found) == {("agent.lr=0.001", "eval/episodic_return"), ("agent.lr=0.0001", "eval/episodic_return")}
    a, b = found[("agent.lr=0.001", "eval/episodic_return")], found[("agent.lr=0.0001", "eval/episodic_return")]
    assert a["runs"] == b["runs"] == 2 and a["env"] == "CartPole-v1" and a["agent"] == "dqn"
    assert a["iqm"][-1] == pytest.approx(150.0) and b["iqm"][-1] == pytest.approx(1150.0)  # 2 runs: the mean
    assert "agent.lr=0.001 | eval/episodic_return: 2 runs" in capsys.readouterr().out


def test_plot_never_averages_different_envs(tmp_path, capsys):
    fake_run(tmp_path / "cartpole", 100.0, [])
    fake_run(tmp_path / "acrobot", -100.0, ["env.id=Acrobot-v1"])
    assert plot_main([str(tmp_path), "--reps", "50"]) == 0  # a curve, and a row of panels, per env
    envs_ = sorted(r["env"] for r in json.loads((tmp_path / "curves.json").read_text()))
    assert envs_ == ["Acrobot-v1", "CartPole-v1"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        plot_main([str(tmp_path), "--pool"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "Acrobot-v1, CartPole-v1" in err


def test_plot_compares_labelled_sweeps_in_one_figure(tmp_path, capsys):
    for seed in (0, 1):
        fake_run(tmp_path / "dqn" / f"seed{seed}", 100.0 + seed, [f"seed={seed}"])
        fake_run(tmp_path / "double" / f"seed{seed}", 300.0 + seed, [f"seed={seed}", "agent.double_dqn=false"])
    out = tmp_path / "cmp.png"
    assert plot_main(["--label", f"plain={tmp_path / 'dqn'}", "--label", f"no double={tmp_path / 'double'}",
                      "--out", str(out), "--reps", "50"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    found = curves(out.with_suffix(".json"))
    assert set(found) == {("plain", "eval/episodic_return"), ("no double", "eval/episodic_return")}
    assert found[("no double", "eval/episodic_return")]["iqm"][-1] == pytest.approx(300.5)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        plot_main(["--label", str(tmp_path / "dqn")])
    assert exit_.value.code == 2 and "is not NAME=DIR" in capsys.readouterr().err


def test_plot_draws_markers_for_sparse_curves(tmp_path):
    for seed in (0, 1, 2):
        fake_run(tmp_path / f"seed{seed}", 100.0 * (seed + 1), [f"seed={seed}"], steps=(1000,))
    assert plot_main([str(tmp_path), "--reps", "50"]) == 0
    (result,) = json.loads((tmp_path / "curves.json").read_text())
    assert result["step"] == [1000] and result["iqm"] == [pytest.approx(200.0)]
    fig = make_figure([result], "sparse")
    marked = [line for line in fig.axes[0].get_lines() if line.get_marker() not in ("None", "", None)]
    assert any(list(line.get_xdata()) == [1000] and list(line.get_ydata()) == [pytest.approx(200.0)]
               for line in marked)
    assert not any(line.get_marker() in ("None", "") and len(line.get_xdata()) == 1
                   for line in fig.axes[0].get_lines())  # no one-point line drawn without a marker
    import matplotlib.pyplot as plt

    plt.close(fig)
    dense = make_figure([{**result, "step": [0, 500, 1000], "iqm": [0, 1, 2], "ci_low": [0, 1, 2],
                          "ci_high": [0, 1, 2], "per_run": [[0, 1, 2]]}], "dense")
    assert all(line.get_marker() in ("None", "") for line in dense.axes[0].get_lines())
    plt.close(dense)
    assert np.isfinite(result["ci_low"][0]) and result["ci_low"][0] <= 200.0 <= result["ci_high"][0]


def test_plot_keeps_a_resumed_longer_run_in_its_sweep(tmp_path, capsys):
    """Run length, wall-clock cap, evaluation, logging and speed switches are not what a run learns:
    a seed resumed to more total_steps (or evaluated, logged, threaded differently) stays in its
    sweep's curve, which is cut to the steps all runs cover with a warning naming the shortest run."""
    fake_run(tmp_path / "seed0", 100.0, ["seed=0", "total_steps=6000"], steps=(0, 3000, 6000))
    fake_run(tmp_path / "seed1", 200.0, ["seed=1", "total_steps=6000", "time_limit_minutes=30",
                                         "eval.episodes=5", "log.every_steps=250"], steps=(0, 3000, 6000))
    fake_run(tmp_path / "seed2", 300.0, ["seed=2", "total_steps=7000", "eval.every_steps=500",
                                         "torch_threads=1", "checkpoint_every_steps=1000", "flush_denormal=true",
                                         "env.env_workers=true"], steps=(0, 3000, 7000))
    assert plot_main([str(tmp_path), "--reps", "50"]) == 0
    (result,) = json.loads((tmp_path / "curves.json").read_text())
    assert result["runs"] == 3 and result["label"] == "" and result["step"][-1] == 6000
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: ") and "stops at step 6,000" in err
    assert repr(str(tmp_path / "seed0")) in err and "7,000" in err
    # settings that change what is learned, or what the eval curve measures, still split the curves
    fake_run(tmp_path / "greedy05", 100.0, ["eval.epsilon=0.05"], steps=(0, 3000, 6000))
    fake_run(tmp_path / "stale", 100.0, ["learner_thread=true"], steps=(0, 3000, 6000))
    assert plot_main([str(tmp_path), "--reps", "50"]) == 0
    assert sorted(r["runs"] for r in json.loads((tmp_path / "curves.json").read_text())) == [1, 1, 3]
    capsys.readouterr()
    from howsure.plot import read_run

    def key(path, overrides):  # PQN's rate annealed over the wall-clock cap: the cap is learning
        cfg = wiring.load("configs/pqn_cartpole.yaml", [f"run_dir={path}", *overrides])
        path.mkdir(parents=True)
        (path / "config.yaml").write_text(config.to_yaml(cfg))
        return read_run(path).settings

    assert (key(tmp_path / "pqn10", ["time_limit_minutes=10", "agent.lr_decay_steps=time_limit"])
            != key(tmp_path / "pqn20", ["time_limit_minutes=20", "agent.lr_decay_steps=time_limit"]))
    assert key(tmp_path / "pqn10s", ["time_limit_minutes=10"]) == key(tmp_path / "pqn20s", ["time_limit_minutes=20"])


def test_plot_warns_of_a_tag_no_run_logged(tmp_path, capsys):
    for seed in (0, 1):
        fake_run(tmp_path / f"seed{seed}", 100.0, [f"seed={seed}"])
    assert plot_main([str(tmp_path), "--reps", "50", "--tag", "eval/episodic_return",
                      "--tag", "eval/episodic_retrun"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: ") and "'eval/episodic_retrun'" in err
    assert "did you mean 'eval/episodic_return'" in err  # and no cut warning: the runs are of one length
    assert [r["tag"] for r in json.loads((tmp_path / "curves.json").read_text())] == ["eval/episodic_return"]
    with pytest.raises(SystemExit) as exit_:
        plot_main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "every tag not under eval/" in text and "smooths charts/*" not in text
