"""What a run adds to TensorBoard beside its scalars: the config it uses, HParams, a custom-scalars
layout and evaluation videos. train.py and howsure/distributed.py call these; agents never do.

- config_in_use(): the resolved config without the sections and keys the run does not read
  (Atari-only env keys on other envs, encoders other than the chosen one, replay knobs of other
  replay kinds, `distributed` when actors=0), so the config text shows what matters.
- hparams_of() / write_final(): the HParams plugin's session data (config leaves that differ from
  the dataclass defaults, plus seed, agent and env) and the metrics hparams/best_eval_return and
  hparams/final_eval_return, written into the run's own event file at the end of training. No
  experiment summary is written: TensorBoard then builds the HParams table from every run's keys,
  so runs whose differing keys are not the same still line up.
- scalars_layout(): the Custom Scalars dashboard (training and evaluation return in one chart,
  evaluation return with its min-max margin, losses, Q values, epsilon, uncertainty/*).
- eval_video(): the first evaluation episode as frames for Logger.video (eval.video_every_evals).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import yaml

from howsure import config, wiring
from howsure.loopstate import LoopState

# EnvConfig keys read by the Atari family only (envs/atari.py, envs/ale_vector.py, envs/objects.py)
ATARI_ENV_KEYS = ("backend", "env_threads", "sticky_action_prob", "full_action_space", "noop_max",
                  "frame_skip", "screen_size", "frame_stack", "max_episode_frames", "flicker_prob",
                  "detector", "detector_top_k", "detector_min_score")
# shared replay keys each kind reads besides `kind`, `capacity_steps` and its own sub-section
# (replay/*.py from_config); `priority` only when prioritized; a kind not listed keeps every key
REPLAY_KEYS = {
    "uniform": ("n_step", "prioritized", "priority"),
    "atari": ("n_step", "prioritized", "priority"),
    "sequence": (),
}
# where a run is written and whether a progress bar shows: not hyperparameters
NOT_HPARAMS = ("run_dir", "log.quiet", "log.hparams")
METRIC_BEST, METRIC_FINAL = "hparams/best_eval_return", "hparams/final_eval_return"
SPS_TAG, SPS_WARMUP_TAG = "charts/SPS", "charts/SPS_warmup"
VIDEO_TAG = "eval/video"
HISTOGRAM_TAG = "uncertainty/eval_q_std"  # std of Q over the posterior, every action of every state
BAND_TAG = "uncertainty/q_band"  # Q per action with its band, along the first evaluation episode
SPREAD_MAX_STATES = 500  # states of that episode used for both


def config_in_use(cfg: config.Config, agent: Any = None, spec: Any = None) -> dict:
    """to_dict(cfg) without what this run never reads. agent: tells whether replay and an encoder
    are used (agents without replay, agents without torch modules); spec: resolves encoder.name=auto."""
    out = config.to_dict(cfg)
    env = out["env"]
    if not cfg.env.id.startswith("ALE/"):
        for key in ATARI_ENV_KEYS:
            env.pop(key, None)
    else:
        if cfg.env.backend != "ale_vector":
            env.pop("env_threads", None)
        if not cfg.env.detector:
            env.pop("detector_top_k", None)
            env.pop("detector_min_score", None)
    uses_encoder = agent is None or bool(agent.modules())  # tabular agents hold no network
    if not uses_encoder:
        out.pop("encoder")
    else:
        name = cfg.encoder.name
        if name == "auto" and spec is not None:
            from howsure.encoders import resolve_name

            name = resolve_name(name, spec)
        if name != "auto":
            out["encoder"] = {"name": cfg.encoder.name, name: out["encoder"][name]}
    if agent is not None and not agent.uses_replay:
        for key in ("replay", "checkpoint_replay", "learner_thread"):  # the Learner serves replay only
            out.pop(key)
    elif cfg.replay.kind in REPLAY_KEYS:
        keep = ("kind", "capacity_steps", *REPLAY_KEYS[cfg.replay.kind], cfg.replay.kind)
        if not cfg.replay.prioritized:
            keep = tuple(k for k in keep if k != "priority")
        out["replay"] = {k: v for k, v in out["replay"].items() if k in keep}
    if cfg.eval.every_steps <= 0:
        out["eval"] = {"every_steps": cfg.eval.every_steps}
    if cfg.distributed.actors <= 0:
        out.pop("distributed")
    return out


def config_text(used: dict) -> str:
    """The markdown code block TensorBoard's Text dashboard shows."""
    return "```\n" + yaml.safe_dump(used, sort_keys=False) + "```"


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{'agent': {'lr': 1e-3}} -> {'agent.lr': 1e-3}; an empty mapping has no leaves."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _hparam_value(value: Any) -> bool | int | float | str:
    """HParams holds bool, number or string: lists and null become their YAML spelling."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def hparams_of(cfg: config.Config, used: dict) -> dict[str, bool | int | float | str]:
    """seed, agent and env, then every used config leaf whose value differs from the default of
    its dataclass (the defaults of the same agent), and the keys named in log.hparams whatever
    their value."""
    defaults = flatten(config.to_dict(wiring.from_dict({"agent": {"name": cfg.agent.name}})))
    out: dict[str, bool | int | float | str] = {"seed": cfg.seed, "agent": cfg.agent.name, "env": cfg.env.id}
    for key, value in flatten(used).items():
        if key in NOT_HPARAMS or key in ("seed", "agent.name", "env.id"):
            continue
        if key not in defaults or defaults[key] != value or key in cfg.log.hparams:
            out[key] = _hparam_value(value)
    return out


def final_metrics(loop: LoopState) -> dict[str, float]:
    """Best and last evaluated mean return; empty when the run never evaluated."""
    metrics = {}
    if loop.best_eval is not None:
        metrics[METRIC_BEST] = float(loop.best_eval)
    if loop.evals:
        metrics[METRIC_FINAL] = float(loop.evals[-1][1])
    return metrics


def sps_tag(interval_start: int, learning_starts: int) -> str:
    """charts/SPS_warmup for a log interval that starts before learning does (acting only, no
    updates, so its speed is not the training speed), charts/SPS afterwards."""
    return SPS_WARMUP_TAG if interval_start < learning_starts else SPS_TAG


def scalars_layout(tags: set[str] | tuple = ()) -> dict:
    """SummaryWriter.add_custom_scalars layout. Multiline charts take regular expressions, Margin
    charts (value, lower, upper) exact tags. `tags`: the tags logged so far; the uncertainty
    category appears once the agent logged uncertainty/* (bayes_dqn, boot_dqn)."""
    layout = {
        "returns": {
            "episodic return: training and evaluation":
                ["Multiline", [r"^charts/episodic_return$", r"^eval/episodic_return$"]],
            "evaluation return, min to max":
                ["Margin", ["eval/episodic_return", "eval/episodic_return_min", "eval/episodic_return_max"]],
            "discounted return: training and evaluation":
                ["Multiline", [r"^charts/discounted_return$", r"^eval/discounted_return$"]],
        },
        "learning": {
            "losses": ["Multiline", [r"^losses/"]],
            "Q values": ["Multiline", [r"^values/"]],
            "epsilon": ["Multiline", [r"^charts/epsilon$", r"^distributed/epsilon_actor_"]],
            "steps per second": ["Multiline", [r"^charts/SPS"]],
        },
    }
    uncertain = sorted(t for t in tags if t.startswith("uncertainty/"))
    if uncertain:
        charts = {}
        if any(t.count("/") == 1 for t in uncertain):
            charts["uncertainty"] = ["Multiline", [r"^uncertainty/[^/]+$"]]
        for folder in sorted({t.split("/")[1] for t in uncertain if t.count("/") >= 2}):
            charts[f"uncertainty/{folder}"] = ["Multiline", [f"^uncertainty/{folder}/"]]
        layout["uncertainty"] = charts
    return layout


def write_final(logger, cfg: config.Config, used: dict, loop: LoopState, step: int) -> None:
    """At the end of training: HParams with the run's final metrics, and the custom-scalars layout
    again with every tag the run logged (the last layout in a run is the one TensorBoard shows)."""
    logger.hparams(hparams_of(cfg, used), final_metrics(loop), step)
    logger.custom_scalars(scalars_layout(logger.tags))


def video_due(cfg: config.Config, evaluations: int) -> bool:
    """True for evaluations 1, 1 + k, 1 + 2k, ... with k = eval.video_every_evals (0: never), where
    the env draws frames (rgb_array); envs that cannot (NChain, bsuite, a user's text-only env) skip
    their videos, so a preset's video setting works on any env it is pointed at."""
    every = cfg.eval.video_every_evals
    return every > 0 and evaluations > 0 and (evaluations - 1) % every == 0 and renders_frames(cfg.env)


def renders_frames(env_cfg) -> bool:
    """Whether the env offers render_mode="rgb_array"."""
    from howsure.evaluation import render_modes

    return "rgb_array" in render_modes(env_cfg)


def eval_video(agent, cfg: config.Config, seed: int, step: int) -> tuple[np.ndarray, float]:
    """The first evaluation episode replayed on one rendering env with the same seed (the
    evaluation envs themselves do not render): (frames T x H x W x 3, fps of the game's real speed).
    Frames are annotated as evaluate.py --video does, at most gif.MAX_WIDTH wide and
    gif.MAX_FRAMES long, to keep event files small (the frames of `evaluate.py --gif`). Every random
    generator is restored afterwards, so a run trains the same with videos on or off."""
    from howsure import seeding
    from howsure.evaluation import GifFrames, evaluate_agent, frame_annotator, make_eval_envs, video_fps

    rng_before, agent_rng_before = seeding.rng_state(), agent.rng.bit_generator.state

    keep = GifFrames(frame_annotator(agent))
    video_env = make_eval_envs(cfg, num_envs=1, render_mode="rgb_array")
    try:
        with agent.evaluating():
            evaluate_agent(agent, video_env, 1, cfg.eval.epsilon, seed=seed, step=step,
                           gamma=cfg.agent.gamma, on_frame=keep)
    finally:
        video_env.close()
        seeding.set_rng_state(rng_before)
        agent.rng.bit_generator.state = agent_rng_before
    return keep.stack(), video_fps(cfg)


def q_band_image(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(T, A) mean and std of Q along an episode -> an RGB picture: one line per action, mean +- std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    t = np.arange(len(mean))
    for a in range(mean.shape[1]):
        line, = ax.plot(t, mean[:, a], linewidth=1, label=f"action {a}")
        ax.fill_between(t, mean[:, a] - std[:, a], mean[:, a] + std[:, a], color=line.get_color(), alpha=0.25)
    ax.set_xlabel("step of the first evaluation episode")
    ax.set_ylabel("Q (mean +- std over the posterior)")
    ax.legend(fontsize=7, loc="best", ncol=max(1, mean.shape[1] // 6))
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def log_uncertainty(logger, agent: Any, observations: list[np.ndarray], step: int) -> bool:
    """For agents with an epistemic spread: a histogram of the std of Q over the posterior on the
    evaluation states and the Q-band picture along the first evaluation episode. False otherwise."""
    if not observations:
        return False
    spread = agent.q_spread(np.stack(observations))
    if spread is None:
        return False
    mean, std = spread
    logger.histogram(HISTOGRAM_TAG, std.reshape(-1), step)
    logger.image(BAND_TAG, q_band_image(mean, std), step)
    return True
