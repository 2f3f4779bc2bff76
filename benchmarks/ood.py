"""How sure is my NN? Epistemic uncertainty as an out-of-distribution detector.

  python benchmarks/ood.py RUN_DIR --ood-env Acrobot-v1 --png benchmarks/results/ood.png

In-distribution: observations the trained agent meets playing its own game (its evaluation
policy, held-out seeds). Out-of-distribution: observations of another env (random actions, since
the agent's actions need not fit its action space). Every observation is scored by the agent's
epistemic std (std over dropout draws of the chosen action's Q: agent.last_epistemic_std() after
an evaluation act()). Prints, and writes as JSON, the AUROC of that score separating the two
sets (0.5: blind, 1.0: every OOD observation more uncertain than every familiar one) and a
histogram PNG of both. Vector observations of a longer OOD env are truncated to the agent's
length (e.g. Acrobot's first 4 numbers, cos/sin of its two joint angles, fed to a CartPole
agent); this is said in the output. Passing the agent's own env id gives a near-OOD control:
the same game under a random policy.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

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


def scores(agent, obs: np.ndarray, step: int, chunk: int = 256) -> np.ndarray:
    if not agent.reports_uncertainty:
        raise UserError("this agent reports no epistemic uncertainty; train a bayes_dqn run for the OOD screen")
    out = []
    for i in range(0, len(obs), chunk):
        agent.act(obs[i : i + chunk], step, epsilon=0.0)
        out.append(np.asarray(agent.last_epistemic_std()).copy())
    return np.concatenate(out)


def histogram(in_s: np.ndarray, out_s: np.ndarray, labels: tuple[str, str], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hi = np.quantile(np.concatenate([in_s, out_s]), 0.995)
    bins = np.linspace(0, hi if hi > 0 else 1.0, 60)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(np.clip(in_s, 0, bins[-1]), bins, alpha=0.6, density=True, label=labels[0])
    ax.hist(np.clip(out_s, 0, bins[-1]), bins, alpha=0.6, density=True, label=labels[1])
    ax.set(xlabel="epistemic std of the chosen action's Q (over dropout draws)", ylabel="density", title=title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", help="run directory or checkpoint of a bayes_dqn agent")
    p.add_argument("--ood-env", required=True, help="env id of the other game (e.g. Acrobot-v1)")
    p.add_argument("--observations", type=int, default=3000, help="observations per set")
    p.add_argument("--seed", type=int, default=777, help="seed of the episodes (held out from training)")
    p.add_argument("--png", default=None, help="histogram PNG (default: no plot)")
    p.add_argument("--json", default=None, help="write the result as JSON")
    args = p.parse_args(argv)
    started = machine.describe()
    cfg, agent, meta = load_run(args.path)
    seeding.seed_everything(args.seed)
    step = int(meta.get("step", 0))
    own = envs.make_env(cfg.env)
    spec = envs.spec_of(cfg.env.id, own)
    in_obs = collect(own, args.observations, args.seed, lambda o: int(agent.act(o[None], step, epsilon=0.0)[0]))
    own.close()
    envs.check_id(args.ood_env)
    other = envs.make_env(dataclasses.replace(cfg.env, id=args.ood_env, kwargs={}, max_episode_steps=None))
    other.action_space.seed(args.seed)
    ood_obs = collect(other, args.observations, args.seed + 1, lambda o: other.action_space.sample())
    other.close()
    ood_obs, how = fit_shape(ood_obs, spec.obs_shape, args.ood_env)
    s_in = scores(agent, in_obs.astype(spec.obs_dtype), step)
    s_out = scores(agent, ood_obs.astype(spec.obs_dtype), step)
    result = {"agent_env": cfg.env.id, "ood_env": args.ood_env, "observations": how,
              "in_policy": "agent (evaluation)", "ood_policy": "uniform random",
              "n_in": len(s_in), "n_ood": len(s_out), "auroc": round(auroc(s_in, s_out), 4),
              "epistemic_std_in_median": float(np.median(s_in)), "epistemic_std_ood_median": float(np.median(s_out)),
              "checkpoint_step": step, "machine": machine.ended(started)}
    if args.png:
        histogram(s_in, s_out, (f"{cfg.env.id} (agent's own game)", f"{args.ood_env} (random actions)"),
                  f"OOD screen: AUROC {result['auroc']:.3f}\n({how})", Path(args.png))
        result["png"] = args.png
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
