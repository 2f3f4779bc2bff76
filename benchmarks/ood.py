"""How sure is my NN? Epistemic uncertainty as an out-of-distribution detector, over seeds and agents.

  python benchmarks/ood.py RUN_DIR [RUN_DIR ...] --ood-env Acrobot-v1 --png OUT.png --json OUT.json

In-distribution: observations a trained agent meets playing its own game (its evaluation
policy, held-out seeds). Out-of-distribution: observations of another env (random actions, since
the agent's actions need not fit its action space). Every observation is scored by the agent's
epistemic std: the std over its posterior (dropout draws or masks for bayes_dqn, heads for
boot_dqn; agent.q_spread) of the Q of the action its mean Q picks. Prints, and writes as JSON,
per run the AUROC of that score separating the two sets (0.5: blind, 1.0: every OOD observation
more uncertain than every familiar one) and per agent the mean, spread and minimum over its runs,
and a PNG of both std distributions, one panel per run. Vector observations of a longer OOD env are
truncated to the agent's length (e.g. Acrobot's first 4 numbers, cos/sin of its two joint angles,
fed to a CartPole agent); this is said in the output. Passing the agent's own env id gives a
near-OOD control: the same game under a random policy.

Corrupted screens of the agent's own game: `--ood-env ALE/Pong-v5 --ood-policy agent` with
`--ood-noise SIGMA` (Gaussian noise of that std added to every observation, in its own units: pixel
levels for screens, clipped to 0-255) or `--ood-flicker P` (Atari: each screen blanked with
probability P, env.flicker_prob). With `--ood-policy agent` the agent plays the OOD env itself, so the
two sets differ by the corruption rather than by the policy.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
from howsure.envs.atari import is_atari

from howsure import (  # noqa: E402
    envs,  # noqa: E402
    machine,
    seeding,
)
from howsure.errors import UserError, cli_main  # noqa: E402
from howsure.evaluation import load_run  # noqa: E402


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """P(out > in) + P(out == in) / 2 (Mann-Whitney U / (n_in n_out)), ties by mid-rank."""
    scores = np.concatenate([in_scores, out_scores])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n_in, n_out = len(in_scores), len(out_scores)
    u = ranks[n_in:].sum() - n_out * (n_out + 1) / 2
    return float(u / (n_in * n_out))


def collect(env, n_obs: int, seed: int, policy) -> np.ndarray:
    """n_obs observations from full episodes of `env` under policy(obs) -> action."""
    out, episode = [], 0
    while len(out) < n_obs:
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done and len(out) < n_obs:
            out.append(obs)
            obs, _, terminated, truncated, _ = env.step(policy(obs))
            done = terminated or truncated
        episode += 1
    return np.stack(out)


def fit_shape(obs: np.ndarray, shape: tuple[int, ...], ood_id: str) -> tuple[np.ndarray, str]:
    if obs.shape[1:] == tuple(shape):
        return obs, "same observation shape"
    if obs.ndim == 2 and len(shape) == 1 and obs.shape[1] > shape[0]:
        why = f"{ood_id} observations truncated from {obs.shape[1]} to the first {shape[0]} numbers"
        return obs[:, : shape[0]], why
    raise UserError(f"{ood_id} gives observations {obs.shape[1:]}, the agent expects {tuple(shape)}; "
                    "pick an env with the same shape (or a longer vector, which is truncated)")


def scores(agent, obs: np.ndarray, draws: int, chunk: int = 256) -> np.ndarray:
    """Epistemic std of the greedy action's Q (the action of the posterior mean), per observation."""
    out = []
    for i in range(0, len(obs), chunk):
        spread = agent.q_spread(obs[i : i + chunk], draws)
        if spread is None:
            raise UserError(f"agent {agent.cfg.name!r} has no epistemic spread to score with; "
                            "train a bayes_dqn or boot_dqn run for the OOD screen")
        mean, std = spread
        out.append(std[np.arange(len(std)), mean.argmax(1)])
    return np.concatenate(out)


def parts(agent, obs: np.ndarray, draws: int, chunk: int = 256) -> dict[str, np.ndarray]:
    """Where a non-recurrent bayes_dqn's spread comes from: the std of the greedy action's Q per
    observation with noise at one dropout place only ("dropout_<place>"), and with an epinet over the
    dropout masks alone ("dropout") and over the epinet's index alone ("epinet")."""
    import torch
    from howsure.agents.bayes_network import EPINET

    net = getattr(agent, "q", None)
    if not hasattr(net, "dropouts") or agent.memory is not None:
        return {}
    out: dict[str, list] = {}
    with torch.no_grad():
        for i in range(0, len(obs), chunk):
            feats = net.features(torch.as_tensor(obs[i : i + chunk], device=agent.device))
            rows = torch.arange(feats.feat.shape[0])
            greedy = net.draws(feats, draws).mean(0).argmax(1)
            rep = feats.repeat(draws)
            noise = net.draw_noise(len(rows) * draws, agent.device)
            shares = {f"dropout_{place}": net.q_values(rep, {place: noise[place]}) for place in net.dropouts}
            if net.epinet is not None:
                shares["dropout"] = net.q_values(rep, {k: v for k, v in noise.items() if k != EPINET})
                shares["epinet"] = net.epinet_term(rep, noise)
            for name, q in shares.items():
                std = q.reshape(draws, len(rows), -1).std(0, unbiased=False)[rows, greedy]
                out.setdefault(name, []).append(std.cpu().numpy())
    return {name: np.concatenate(v) for name, v in out.items()}


def corrupt(obs: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """obs plus Gaussian noise of std sigma, in the observations' units (uint8 screens: clipped
    to 0-255 and rounded back to uint8)."""
    if sigma <= 0:
        return obs
    noisy = obs.astype(np.float64) + rng.normal(0.0, sigma, obs.shape)
    if obs.dtype == np.uint8:
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return noisy.astype(obs.dtype)


def screen(path: str, ood_env: str, n_obs: int, seed: int, label: str | None = None,
           draws: int = 100, ood_policy: str = "random", noise: float = 0.0,
           flicker: float = 0.0) -> tuple[dict, np.ndarray, np.ndarray]:
    """One run's OOD screen: its result row and the in / out scores."""
    cfg, agent, meta = load_run(path)
    seeding.seed_everything(seed)
    step = int(meta.get("step", 0))
    own = envs.make_env(cfg.env)
    spec = envs.spec_of(cfg.env.id, own)
    def play(o):  # the agent's evaluation policy
        return int(agent.act(o[None], step, epsilon=0.0)[0])

    in_obs = collect(own, n_obs, seed, play)
    own.close()
    other_cfg = cfg.env if ood_env == cfg.env.id else dataclasses.replace(cfg.env, id=ood_env, kwargs={},
                                                                           max_episode_steps=None)
    other = envs.make_env(dataclasses.replace(other_cfg, flicker_prob=flicker))
    other.action_space.seed(seed)
    if ood_policy == "agent" and getattr(other.action_space, "n", None) != spec.n_actions:
        raise UserError(f"--ood-policy agent: {ood_env} has {getattr(other.action_space, 'n', '?')} "
                        f"actions, the agent {spec.n_actions}; use --ood-policy random")
    ood_obs = collect(other, n_obs, seed + 1, play if ood_policy == "agent" else lambda o: other.action_space.sample())
    other.close()
    ood_obs, how = fit_shape(ood_obs, spec.obs_shape, ood_env)
    ood_obs = corrupt(ood_obs, noise, np.random.default_rng(seed + 2))
    s_in = scores(agent, in_obs.astype(spec.obs_dtype), draws)
    s_out = scores(agent, ood_obs.astype(spec.obs_dtype), draws)
    row = {"run": str(path), "agent": cfg.agent.name, "label": label or cfg.agent.name, "seed": cfg.seed,
           "agent_env": cfg.env.id, "checkpoint_step": step, "observations": how, "auroc": round(auroc(s_in, s_out), 4),
           "epistemic_std_in_median": float(np.median(s_in)), "epistemic_std_ood_median": float(np.median(s_out))}
    p_in = parts(agent, in_obs.astype(spec.obs_dtype), draws)
    p_out = parts(agent, ood_obs.astype(spec.obs_dtype), draws)
    for name in p_in:  # the same medians and AUROC for each share of the spread
        row[f"{name}_std_in_median"] = float(np.median(p_in[name]))
        row[f"{name}_std_ood_median"] = float(np.median(p_out[name]))
        row[f"{name}_auroc"] = round(auroc(p_in[name], p_out[name]), 4)
    return row, s_in, s_out


def summarise(rows: list[dict]) -> dict[str, dict]:
    """Per label (the agent's name unless --labels): the AUROC of each run, their mean, std and minimum."""
    out: dict[str, dict] = {}
    for name in dict.fromkeys(r["label"] for r in rows):
        values = [r["auroc"] for r in rows if r["label"] == name]
        out[name] = {"runs": len(values), "aurocs": values, "mean": round(float(np.mean(values)), 4),
                     "std": round(float(np.std(values)), 4), "min": min(values)}
    return out


def histograms(panels: list[tuple[dict, np.ndarray, np.ndarray]], ood_env: str, path: Path) -> None:
    """One panel per run: the std distribution on its own game and on the OOD observations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(len(panels), 5)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (row, s_in, s_out) in zip(axes.flat, panels):
        hi = np.quantile(np.concatenate([s_in, s_out]), 0.995)
        bins = np.linspace(0, hi if hi > 0 else 1.0, 50)
        ax.hist(np.clip(s_in, 0, bins[-1]), bins, alpha=0.6, density=True, label=f"{row['agent_env']} (own game)")
        ax.hist(np.clip(s_out, 0, bins[-1]), bins, alpha=0.6, density=True, label=f"{ood_env} (random actions)")
        ax.set_title(textwrap.fill(f"{row['label']} seed {row['seed']}: AUROC {row['auroc']:.3f}", 40), fontsize=8)
        ax.set_yticks([])
    axes.flat[0].legend(fontsize=7)
    fig.supxlabel("epistemic std of the greedy action's Q over the posterior")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", help="run directories or checkpoints (bayes_dqn, boot_dqn), e.g. one per seed")
    p.add_argument("--ood-env", required=True, help="env id of the other game (e.g. Acrobot-v1)")
    p.add_argument("--observations", type=int, default=3000, help="observations per set")
    p.add_argument("--seed", type=int, default=777, help="seed of the episodes (held out from training)")
    p.add_argument("--draws", type=int, default=100,
                   help="posterior samples per observation for agents that sample them (bayes_dqn with fresh "
                        "masks; fixed masks and boot_dqn's heads are each used once): the std of 10 draws, "
                        "what bayes_dqn acts with, is itself noisy")
    p.add_argument("--ood-policy", choices=["random", "agent"], default="random",
                   help="who plays the OOD env: random actions, or the agent itself (same action count)")
    p.add_argument("--ood-noise", type=float, default=0.0,
                   help="std of Gaussian noise added to the OOD observations, in their units (pixel levels)")
    p.add_argument("--ood-flicker", type=float, default=0.0,
                   help="Atari: probability that each OOD screen is blanked (env.flicker_prob)")
    p.add_argument("--labels", default=None,
                   help="comma-separated, one per run: groups the summary (default: the agent's name)")
    p.add_argument("--png", default=None, help="PNG of the std distributions, a panel per run (default: none)")
    p.add_argument("--json", default=None, help="write the result as JSON")
    args = p.parse_args(argv)
    started = machine.describe()
    envs.check_id(args.ood_env)
    labels = args.labels.split(",") if args.labels else [None] * len(args.paths)
    if len(labels) != len(args.paths):
        raise UserError(f"--labels has {len(labels)} names for {len(args.paths)} runs; give one per run")
    if args.draws < 2:
        raise UserError(f"--draws {args.draws}: a spread needs at least 2 draws")
    if args.ood_noise < 0 or not 0 <= args.ood_flicker <= 1:
        raise UserError("--ood-noise is a std (>= 0) and --ood-flicker a probability in [0, 1]")
    if args.ood_flicker > 0 and not is_atari(args.ood_env):
        raise UserError(f"--ood-flicker blanks Atari screens; {args.ood_env} is not an Atari game "
                        "(use --ood-noise for vector observations)")
    panels = [screen(path, args.ood_env, args.observations, args.seed, label, args.draws, args.ood_policy,
                     args.ood_noise, args.ood_flicker)
              for path, label in zip(args.paths, labels)]
    rows = [row for row, _, _ in panels]
    result = {"ood_env": args.ood_env, "in_policy": "agent (evaluation)",
              "ood_policy": {"random": "uniform random", "agent": "agent (evaluation)"}[args.ood_policy],
              "ood_noise": args.ood_noise, "ood_flicker": args.ood_flicker, "draws": args.draws,
              "n_in": args.observations, "n_ood": args.observations, "runs": rows, "by_label": summarise(rows),
              "machine": machine.ended(started)}
    if args.png:
        histograms(panels, args.ood_env, Path(args.png))
        result["png"] = args.png
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
