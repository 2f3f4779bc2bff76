"""Exploration benchmark: episodes to solve bsuite deep_sea (and a long NChain) against problem size.

    nice -n 10 python benchmarks/exploration.py --agents dqn boot_dqn bayes_thompson_episode \
        --sizes 10 14 20 --seeds 0 1 2

deep_sea N (Osband et al. 2019, arXiv:1908.03568) pays 1 only for N right moves in a row, so
dithering needs about 2^N episodes. Scoring is bsuite's, computed here (bsuite's own analysis
breaks on pandas 2): a run is solved at the first episode e at which fewer than 90% of episodes
1..e were "bad" (deep_sea: did not reach the treasure; chain: did not beat the myopic policy).
Each cell (agent, task, seed) trains with the agent's preset until solved or out of its episode
budget. Cells are appended to the JSON as they finish, so an interrupted run resumes where it
stopped (--force reruns). Each cell trains with howsure.training.train, the loop of every run,
whose hooks stop it at the solve episode.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from howsure.agents import AGENTS

from howsure import config, machine, rundir, wiring
from howsure.errors import UserError, cli_main
from howsure.training import Hooks, prepare_run_dir, train

ROOT = Path(__file__).resolve().parents[1]

BAD_FRACTION = 0.9  # bsuite deep_sea: solved once the running fraction of bad episodes drops below this

# label -> (preset, overrides, registered agent it needs)
AGENT_PRESETS: dict[str, tuple[str, list[str], str]] = {
    "dqn": ("configs/dqn_deep_sea.yaml", [], "dqn"),
    "boot_dqn": ("configs/boot_dqn_deep_sea.yaml", [], "boot_dqn"),
    "boot_dqn_noprior": ("configs/boot_dqn_deep_sea.yaml", ["agent.prior_scale=0"], "boot_dqn"),
    "bayes_thompson": ("configs/bayes_dqn_deep_sea.yaml", ["agent.exploration=thompson"], "bayes_dqn"),
    "bayes_thompson_episode": ("configs/bayes_dqn_deep_sea.yaml",
                               ["agent.exploration=thompson_episode"], "bayes_dqn"),
    "bayes_ucb": ("configs/bayes_dqn_deep_sea.yaml", ["agent.exploration=ucb"], "bayes_dqn"),
}
DEEP_SEA_SIZES = tuple(range(10, 51, 2))  # bsuite's sweep: deep_sea/<i> has N = 10 + 2 i
CHAIN_HORIZON_PER_LENGTH = 3  # chain episodes last 3 L steps: reaching the end takes L - 1


def deep_sea_id(size: int) -> str:
    if size not in DEEP_SEA_SIZES:
        raise UserError(f"deep_sea size {size} is not in bsuite's sweep; use an even N from 10 to 50")
    return f"bsuite/deep_sea/{(size - 10) // 2}"


def task_overrides(task: str, size: int) -> tuple[list[str], float]:
    """Config overrides for a task and the episodic return above which an episode is 'good'."""
    if task == "deep_sea":
        return [f"env.id={deep_sea_id(size)}"], 0.5  # the treasure pays 1, moves cost at most 0.01
    horizon = CHAIN_HORIZON_PER_LENGTH * size
    # Deterministic chain (slip 0): always going back earns 2 per step; only the far end pays more.
    return ["env.id=NChain-v0", f"env.kwargs={{length: {size}, slip: 0.0}}",
            f"env.max_episode_steps={horizon}"], 2.0 * horizon


def default_budget(task: str, size: int) -> int:
    """Episodes per cell: enough for the deep explorers' published scaling, far below 2^N."""
    return max(500, 40 * size) if task == "deep_sea" else max(200, 20 * size)


def solve_episode(good: list[bool]) -> int | None:
    """First episode (1-based) at which the running fraction of bad episodes is below 0.9."""
    bad_fraction = 1.0 - np.cumsum(good) / np.arange(1, len(good) + 1)
    hit = np.flatnonzero(bad_fraction < BAD_FRACTION)
    return int(hit[0]) + 1 if len(hit) else None


def posterior_samples(agent, obs: torch.Tensor, n_draws: int = 20) -> torch.Tensor | None:
    """Q under the agent's posterior draws, (n, B, A): boot_dqn's heads, bayes_dqn's dropout masks."""
    with torch.no_grad():
        if hasattr(agent.q, "draws"):  # bayes_dqn (agents/bayes_network.py)
            return agent.q.draws(agent.q.features(obs), n_draws)
        q = agent.q(obs)
        return q.transpose(0, 1) if q.dim() == 3 else None  # boot_dqn: (B, K, A) -> (K, B, A)


def probe_deep_sea(agent, size: int, visited: np.ndarray) -> dict | None:
    """How sure the agent is on the states it has seen and on those it has not (deep_sea only).

    std: spread of Q over posterior draws; flip: chance that a draw's greedy action differs from
    the mean's, which is what drives Thompson-style exploration.
    """
    rows, cols = np.nonzero(np.tril(np.ones((size, size), bool)))  # reachable cells: column <= row
    obs = np.zeros((len(rows), size * size), np.float32)
    obs[np.arange(len(rows)), rows * size + cols] = 1.0
    q = posterior_samples(agent, torch.from_numpy(obs))
    if q is None:
        return None
    std = q.std(dim=0).mean(dim=1).numpy()
    flip = (q.argmax(dim=2) != q.mean(dim=0).argmax(dim=1)).float().mean(dim=0).numpy()
    seen = visited[rows, cols]
    out = {"visited_states": int(seen.sum())}
    for name, part in (("seen", seen), ("unseen", ~seen)):
        out[f"std_{name}"] = round(float(std[part].mean()), 5) if part.any() else None
        out[f"flip_{name}"] = round(float(flip[part].mean()), 4) if part.any() else None
    if hasattr(agent.q, "rates"):
        out["dropout_p"] = {k: round(v, 4) for k, v in agent.q.rates().items()}
    return out


def run_cell(cfg: config.Config, budget_episodes: int, good_above: float, probe_every: int = 0) -> dict:
    """Train until solved or out of budget; returns the cell's row (episodes are 1-based).

    Training is howsure.training.train, the loop of every run, into a temporary run directory
    (no evaluations, no periodic logging); its hooks count the episodes and stop at the solve."""
    cfg = replace(cfg, total_steps=10**12, time_limit_minutes=None, checkpoint_every_steps=0,
                  checkpoint_replay=False, eval=replace(cfg.eval, every_steps=0),
                  log=replace(cfg.log, every_steps=10**12, quiet=True))  # acting metrics are read here
    good: list[bool] = []
    uncertainty: list[list[float]] = []  # [episode, mean epistemic std since the last point]
    probes: list[dict] = []
    deep_sea = cfg.env.id.startswith("bsuite/deep_sea/")
    cell: dict = {"solved": None}

    def start(agent, spec) -> None:
        size = int(np.sqrt(spec.obs_shape[0])) if deep_sea else 0
        cell.update(agent=agent, size=size, visited=np.zeros((size, size), bool))

    def chunk_stored(chunk, step: int) -> None:
        size = cell["size"]
        if probe_every and size:
            cells = np.argmax(chunk.obs[0].reshape(chunk.obs.shape[1], -1), axis=1)
            cell["visited"][cells // size, cells % size] = True

    def episode_ended(episode, step: int) -> bool:
        agent, size = cell["agent"], cell["size"]
        good.append(episode[0] > good_above)
        if probe_every and size and (len(good) == 1 or len(good) % probe_every == 0):
            row = probe_deep_sea(agent, size, cell["visited"])
            if row is not None:
                probes.append({"episode": len(good), **row})
        if good[-1] and cell["solved"] is None and solve_episode(good) is not None:
            cell["solved"] = solve_episode(good)
        if len(good) % 50 == 0:
            metrics = agent.act_metrics()
            if "uncertainty/epistemic_std" in metrics:
                uncertainty.append([len(good), round(metrics["uncertainty/epistemic_std"], 5)])
        return cell["solved"] is not None or len(good) >= budget_episodes

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cfg, run_dir = prepare_run_dir(replace(cfg, run_dir=str(Path(tmp) / "run")), overwrite=False)
        try:
            summary = train(cfg, run_dir, hooks=Hooks(on_start=start, on_chunk=chunk_stored, on_episode=episode_ended))
        finally:
            rundir.release(run_dir)
    solved = cell["solved"]
    first = next((i + 1 for i, g in enumerate(good) if g), None)
    return {"solved": solved is not None, "solve_episode": solved, "first_success_episode": first,
            "episodes": len(good), "good_episodes": int(sum(good)), "steps": summary["step"],
            "budget_episodes": budget_episodes, "wall_seconds": round(time.perf_counter() - t0, 1),
            "uncertainty": uncertainty, **({"probes": probes} if probes else {})}


def cell_config(label: str, task: str, size: int, seed: int, extra: list[str]) -> tuple[config.Config, float]:
    preset, overrides, _ = AGENT_PRESETS[label]
    env_overrides, good_above = task_overrides(task, size)
    cfg = wiring.load(ROOT / preset, overrides + env_overrides + [f"seed={seed}"] + extra)
    return cfg, good_above


def load_table(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"cells": {}}


def save_table(path: Path, table: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(table, indent=1))
    tmp.replace(path)


def summarize(table: dict) -> dict:
    """Per (task, agent, size): seeds run, seeds solved, median solve episode (budget if unsolved)."""
    groups: dict[tuple, list[dict]] = {}
    for row in table["cells"].values():
        groups.setdefault((row["task"], row["agent"], row["size"]), []).append(row)
    out = {}
    for (task, label, size), rows in sorted(groups.items()):
        eps = [r["solve_episode"] if r["solved"] else r["budget_episodes"] for r in rows]
        out[f"{task}|{label}|{size}"] = {
            "seeds": sorted(r["seed"] for r in rows), "solved": sum(r["solved"] for r in rows),
            "median_episodes_to_solve": float(np.median(eps)),
            "solve_episodes": [r["solve_episode"] for r in rows]}
    return out


def plot(table: dict, task: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in table["cells"].values() if r["task"] == task]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    labels = sorted({r["agent"] for r in rows})
    for i, label in enumerate(labels):
        mine = [r for r in rows if r["agent"] == label]
        color = f"C{i}"
        jitter = (i - len(labels) / 2) * 0.25
        sizes = sorted({r["size"] for r in mine})
        ok = [r for r in mine if r["solved"]]
        bad = [r for r in mine if not r["solved"]]
        ax.scatter([r["size"] + jitter for r in ok], [r["solve_episode"] for r in ok], color=color,
                   marker="o", alpha=0.7, label=label)
        ax.scatter([r["size"] + jitter for r in bad], [r["episodes"] for r in bad], color=color,
                   marker="x", alpha=0.7)
        med = [np.median([r["solve_episode"] if r["solved"] else r["episodes"] for r in mine if r["size"] == s])
               for s in sizes]
        ax.plot(np.array(sizes) + jitter, med, color=color, alpha=0.5)
    if task == "deep_sea":
        xs = np.arange(10, 51)
        ax.plot(xs, 2.0 ** xs, "k--", alpha=0.4, label="2^N (dithering)")
    ax.set_yscale("log")
    top = max(max(r["budget_episodes"] for r in rows) * 3, 2_000)  # 2^10 stays in view
    ax.set_ylim(1, top)
    ax.set_xlim(min(r["size"] for r in rows) - 2, max(max(r["size"] for r in rows), 20) + 2)
    ax.set_xlabel("deep_sea size N" if task == "deep_sea" else "chain length L")
    ax.set_ylabel("episodes until < 90% bad episodes")
    ax.set_title(f"{task}: o solved, x not solved within the budget (plotted at episodes run)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", nargs="+", default=["dqn", "boot_dqn", "bayes_thompson",
                                                    "bayes_thompson_episode", "bayes_ucb"],
                   help=f"labels from {sorted(AGENT_PRESETS)}")
    p.add_argument("--task", choices=["deep_sea", "chain"], default="deep_sea")
    p.add_argument("--sizes", nargs="+", type=int, default=[10, 14, 20, 30, 40, 50],
                   help="deep_sea N (even, 10..50) or chain length L")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--budget-episodes", type=int, default=0, help="per cell; 0: max(500, 40 N) on deep_sea")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/exploration.json"))
    p.add_argument("--png", default="", help="default: next to --out, <task>.png")
    p.add_argument("--force", action="store_true", help="rerun cells already in the JSON")
    p.add_argument("--grow-while-solved", action="store_true",
                   help="run an (agent, seed) at the next size only if it solved the previous one (sizes "
                        "ascending): the large, costly sizes are spent where they can say something")
    p.add_argument("--probe-every", type=int, default=0, metavar="EPISODES",
                   help="deep_sea: record posterior spread on seen/unseen states every this many episodes")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    p.add_argument("--set", nargs="*", default=[], metavar="key=value",
                   help="extra config overrides for every cell (for example agent.lr=5e-4)")
    return p.parse_args(argv)


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    for label in args.agents:
        if label not in AGENT_PRESETS:
            from howsure.registry import suggest

            raise UserError(f"unknown agent label {label!r}{suggest(label, list(AGENT_PRESETS))}")
        if AGENT_PRESETS[label][2] not in AGENTS:
            raise UserError(f"agent {AGENT_PRESETS[label][2]!r} is not registered yet; drop {label!r} from --agents")
    out = Path(args.out)
    table = load_table(out)
    png = Path(args.png) if args.png else out.with_name(f"{out.stem}_{args.task}.png")
    failed: set[tuple[str, int]] = set()  # (agent, seed) that ran out of budget at a smaller size
    for size in sorted(args.sizes) if args.grow_while_solved else args.sizes:
        for label in args.agents:
            for seed in args.seeds:
                key = f"{args.task}|{label}|{size}|{seed}"
                if args.grow_while_solved and (label, seed) in failed:
                    print(json.dumps({"agent": label, "size": size, "seed": seed,
                                      "skipped": "not solved at a smaller size"}), flush=True)
                    continue
                if key in table["cells"] and not args.force:
                    if not table["cells"][key]["solved"]:
                        failed.add((label, seed))
                    continue
                cfg, good_above = cell_config(label, args.task, size, seed, args.set)
                budget = args.budget_episodes or default_budget(args.task, size)
                episode_steps = size if args.task == "deep_sea" else CHAIN_HORIZON_PER_LENGTH * size
                cfg = replace(cfg, total_steps=budget * episode_steps)
                started = machine.describe()
                row = run_cell(cfg, budget, good_above, args.probe_every)
                row["machine"] = machine.ended(started)
                if not row["solved"]:
                    failed.add((label, seed))
                row.update(task=args.task, agent=label, size=size, seed=seed, overrides=args.set)
                table["cells"][key] = row
                table["summary"] = summarize(table)
                save_table(out, table)
                plot(table, args.task, png)  # after every cell, so a cut-off run still has its figure
                print(json.dumps({k: row[k] for k in ("task", "agent", "size", "seed", "solved", "solve_episode",
                                                      "first_success_episode", "episodes", "wall_seconds")}),
                      flush=True)
    table["summary"] = summarize(table)
    save_table(out, table)
    plot(table, args.task, png)
    print(json.dumps({"summary": table["summary"], "json": str(out), "png": str(png)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
