"""The TensorBoard event files of a real run hold every documented tag, with the right values."""

import numpy as np
import pytest

from howsure.logger import read_scalars

# one xdist worker runs this module, so its module-scoped run fixture trains once
pytestmark = pytest.mark.xdist_group("test_train_logging")

TAGS = ["charts/episodic_return", "charts/discounted_return", "charts/episodic_length", "charts/epsilon",
        "charts/SPS", "losses/td_loss", "values/q_mean", "eval/episodic_return"]


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    from tests.conftest import run_cli

    run_dir = tmp_path_factory.mktemp("runs") / "cartpole"
    res = run_cli("train.py", "--config", "configs/dqn_cartpole.yaml", f"run_dir={run_dir}", "total_steps=3000",
                  "agent.learning_starts_steps=500", "eval.every_steps=1500", "eval.episodes=4",
                  "log.every_steps=500", "agent.gamma=0.9", "--quiet",
                  "encoder.mlp.hidden_sizes=[64,64]", "agent.batch_size=32")  # small: the logging is checked
    assert res.returncode == 0, res.stderr
    return run_dir, res


def test_every_tag_is_logged(cartpole_run):
    run_dir, _ = cartpole_run
    scalars = read_scalars(run_dir)
    for tag in TAGS:
        assert tag in scalars and len(scalars[tag]) > 0, tag
    assert [s for s, _ in scalars["eval/episodic_return"]] == [1500, 3000]
    assert [s for s, _ in scalars["losses/td_loss"]] == list(range(500, 3001, 500))


def test_discounted_return_matches_hand_computation(cartpole_run):
    """CartPole pays 1 per step, so an episode of length L is worth (1 - g^L) / (1 - g) discounted."""
    run_dir, _ = cartpole_run
    scalars = read_scalars(run_dir)
    lengths = np.array([v for _, v in scalars["charts/episodic_length"]])
    returns = np.array([v for _, v in scalars["charts/episodic_return"]])
    discounted = np.array([v for _, v in scalars["charts/discounted_return"]])
    assert len(lengths) > 20
    assert np.array_equal(returns, lengths)  # raw score: one point per step
    np.testing.assert_allclose(discounted, (1 - 0.9 ** lengths) / (1 - 0.9), rtol=1e-6)


def torch_load(path):
    import torch

    return torch.load(path, weights_only=True)


def test_run_directory_contents(cartpole_run):
    run_dir, res = cartpole_run
    for name in ("config.yaml", "checkpoints/final.pt", "checkpoints/latest.pt", "model.safetensors",
                 "summary.json"):
        assert (run_dir / name).is_file(), name
    # the replay generation the latest checkpoint names, and no other header beside it
    named = torch_load(run_dir / "checkpoints" / "latest.pt")["replay"]
    assert [p.name for p in (run_dir / "replay").glob("header*")] == [named]
    assert "evaluate.py" in res.stdout and "tensorboard --logdir" in res.stdout
    import torch

    evals = read_scalars(run_dir)["eval/episodic_return"]
    best_step = max(evals, key=lambda sv: (sv[1], -sv[0]))[0]  # the first evaluation with the top score
    assert torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["step"] == best_step
    assert f"evaluate.py {run_dir / 'checkpoints' / 'best.pt'}" in res.stdout
    from howsure import wiring

    saved = wiring.load(run_dir / "config.yaml")
    assert saved.agent.gamma == 0.9 and saved.total_steps == 3000


def test_nchain_discounted_return_by_hand(tmp_path):
    """On a deterministic chain (slip 0) an always-forward policy earns 10 from step 5 on."""
    from howsure.envs.nchain import NChainEnv

    from howsure.episodes import EpisodeTracker

    env = NChainEnv(slip=0.0)
    env.reset(seed=0)
    tracker = EpisodeTracker(1, gamma=0.5)
    episodes = []
    for t in range(8):
        _, r, *_ = env.step(0)
        episodes += tracker.step(np.array([r]), np.array([t == 7]))
    # rewards 0,0,0,0,10,10,10,10 -> 10 * (0.5^4 + 0.5^5 + 0.5^6 + 0.5^7)
    assert episodes[0].discounted_return == pytest.approx(10 * sum(0.5**k for k in range(4, 8)))
    assert episodes[0].episodic_return == 40 and episodes[0].length == 8


def test_cartpole_video_of_the_trained_agent(cartpole_run, tmp_path):
    """The command the default training prints to watch the agent writes a playable MP4, and
    --gif the same first episode as a small looping GIF at the game's speed."""
    import json

    import imageio.v2 as imageio
    import imageio.v3 as iio

    from tests.conftest import run_cli

    run_dir, _ = cartpole_run
    # no XDG_RUNTIME_DIR, as on a server: SDL's default video driver would print an "error:" line
    res = run_cli("evaluate.py", str(run_dir), "--episodes", "2", "--video", str(tmp_path / "v"),
                  "--gif", str(tmp_path / "g" / "cartpole.gif"), "--json", str(tmp_path / "e.json"),
                  env={"XDG_RUNTIME_DIR": ""})
    assert res.returncode == 0, res.stderr
    assert "error" not in res.stderr.lower(), res.stderr
    videos = sorted((tmp_path / "v").glob("*.mp4"))
    assert len(videos) == 2
    frames = [f for f in imageio.get_reader(videos[0])]  # list() trips over the reader's len of inf
    assert frames[0].shape == (400, 600, 3) and len(frames) >= 9
    length = json.loads((tmp_path / "e.json").read_text())["lengths"][0]
    path = tmp_path / "g" / "cartpole.gif"
    gif = iio.imread(path, index=None)
    assert gif.shape[1:] == (100, 150, 3)  # every 4th pixel of the 600x400 screen
    assert np.abs(gif[0].astype(int) - frames[0][::4, ::4].astype(int)).mean() < 8  # the same screen
    # the frame after reset and one per step of episode 0, each shown 20 ms (CartPole's 50 fps);
    # the GIF writer merges a frame identical to the one before into it, summing their delays
    shown_ms = sum(iio.immeta(path, index=i)["duration"] for i in range(len(gif)))
    assert len(gif) <= len(frames) == length + 1 and shown_ms == 20 * (length + 1)
    assert iio.immeta(path)["loop"] == 0  # loops forever


def test_gif_keeps_the_first_episode_up_to_its_cap():
    from howsure.evaluation import GifFrames

    frame = np.arange(400 * 600 * 3, dtype=np.uint32).astype(np.uint8).reshape(400, 600, 3)
    capped, whole = GifFrames(max_frames=5), GifFrames(max_frames=0)
    for keep in (capped, whole):
        for episode, steps in ((0, 12), (1, 3)):
            for _ in range(steps):
                keep(episode, frame)
    assert capped.stack().shape == (5, 100, 150, 3) and len(whole.frames) == 12  # episode 1 is never kept
    assert np.array_equal(capped.frames[0], frame[::4, ::4])


def test_closing_lines_give_commands_that_work(tmp_path):
    """The watch command train.py prints runs as printed (no --video for NChain, which cannot draw),
    and a run stopped by its time limit says how to continue it."""
    import shlex

    from tests.conftest import run_in_process

    res = run_in_process("train.py", "--config", "configs/tabular_nchain.yaml", "total_steps=2000",
                         f"run_dir={tmp_path / 'nchain'}", "--quiet")
    assert res.returncode == 0, res.stderr
    watch = next(ln for ln in res.stdout.splitlines() if "watch it play" in ln).split(" : ", 1)[1]
    assert "--video" not in watch
    words = shlex.split(watch)  # "python evaluate.py ARGS" or "howsure-evaluate ARGS"
    args = words[next(i for i, w in enumerate(words) if w.endswith(("evaluate", "evaluate.py"))) + 1:]
    played = run_in_process("evaluate.py", *args)
    assert played.returncode == 0 and "5 episodes" in played.stdout, played.stderr

    res = run_in_process("train.py", "--config", "configs/dqn_cartpole.yaml", "total_steps=100000",
                         "time_limit_minutes=0.001", "eval.every_steps=0", f"run_dir={tmp_path / 'capped'}", "--quiet")
    assert res.returncode == 0, res.stderr
    assert "stopped by time_limit_minutes at step" in res.stdout
    assert f"--resume {tmp_path / 'capped'} time_limit_minutes=MORE" in res.stdout


def test_print_config_shows_every_key_with_the_overrides_and_creates_nothing(tmp_path):
    import yaml

    from tests.conftest import run_in_process

    res = run_in_process("train.py", "--config", "configs/dqn_cartpole.yaml", "agent.lr=0.0007",
                         f"run_dir={tmp_path / 'run'}", "--print-config", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    printed = yaml.safe_load(res.stdout)
    assert printed["agent"]["lr"] == 0.0007 and printed["env"]["id"] == "CartPole-v1"
    assert printed["encoder"]["mlp"]["hidden_sizes"] and "replay" in printed  # defaults too, not only the preset
    assert list(tmp_path.iterdir()) == []  # no run directory, no runs/ folder
    res = run_in_process("train.py", "--config", "configs/dqn_cartpole.yaml", "agent.lrr=1", "--print-config")
    assert res.returncode == 2 and "agent.lrr" in res.stderr


def test_sps_leaves_out_the_time_evaluations_take(tmp_path):
    import time

    from howsure.api import Hooks, train

    # each evaluation is held for 3 s: an interval of 50 steps that counted it would read < 17 steps/s
    hooks = Hooks(on_eval=lambda step, mean: time.sleep(3.0) or False)
    run_dir, _ = train("configs/dqn_cartpole.yaml", ["total_steps=300", "agent.learning_starts_steps=100",
                                                     "eval.every_steps=100", "eval.episodes=1", "log.every_steps=50",
                                                     "log.quiet=true", "checkpoint_replay=false",
                                                     f"run_dir={tmp_path / 'run'}"], hooks=hooks)
    sps = [v for _, v in read_scalars(run_dir)["charts/SPS"]]
    assert len(sps) >= 3 and min(sps) > 17
