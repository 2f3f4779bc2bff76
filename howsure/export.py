"""Watch-only exports: the resolved config and the online network's weights, nothing else.

An export is a folder with `config.yaml` and `model.safetensors` (no optimizer, no replay, no
pickle), a few MB for an Atari agent. `evaluate.py FOLDER` plays it as it plays a run directory.

    python -m howsure.export RUN_DIR_OR_CHECKPOINT OUT_DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

from howsure import checkpoint, config, rundir, wiring
from howsure.agents.base import state_dict_mismatch
from howsure.errors import UserError, cli_main

FORMAT = "howsure-export/1"
WEIGHTS, CONFIG = "model.safetensors", "config.yaml"


def weights_of(agent) -> dict[str, torch.Tensor]:
    """Every exported tensor, keyed `<module>.<parameter>` (agent.modules() names the modules)."""
    return {f"{name}.{k}": v.detach().cpu().contiguous()
            for name, module in agent.modules().items() for k, v in module.state_dict().items()}


def write_weights(agent, path: Path, meta: dict | None = None) -> None:
    """model.safetensors, written to a temp file and renamed; `meta` goes in its header."""
    from safetensors.torch import save_file

    tensors = weights_of(agent)
    if not tensors:
        raise UserError("this agent has no network to export (tabular_q keeps a table: evaluate its run directory)")
    header = {"format": FORMAT, **{k: json.dumps(v) for k, v in (meta or {}).items()}}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=header)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared export from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_export(path: str | Path) -> bool:
    return rundir.is_export_dir(Path(path))


def read_export(path: str | Path) -> tuple[config.Config, dict, dict[str, torch.Tensor]]:
    """(config, header metadata, tensors) of an export folder; one line for anything malformed."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    for name in (CONFIG, WEIGHTS):
        if not (path / name).is_file():
            raise UserError(f"export {str(path)!r} has no {name}; export a run with python -m howsure.export RUN OUT")
    cfg = wiring.from_dict(config.read_yaml(path / CONFIG), check_machine=False, saved=True)  # device: evaluate.py
    try:
        with safe_open(str(path / WEIGHTS), framework="pt") as fh:
            header = fh.metadata() or {}
        tensors = load_file(str(path / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"{str(path / WEIGHTS)!r} is corrupt or not a safetensors file ({str(err)[:80]}); "
                        "export the run again") from None
    if header.get("format") != FORMAT:
        raise UserError(f"{str(path / WEIGHTS)!r} is not a {FORMAT} file; export the run with python -m howsure.export")
    try:
        meta = {k: json.loads(v) for k, v in header.items() if k != "format"}
    except json.JSONDecodeError:
        raise UserError(f"{str(path / WEIGHTS)!r} has a malformed header; export the run again") from None
    missing = [k for k in ("agent", "env_id", "obs_shape", "n_actions") if k not in meta]
    if missing:
        raise UserError(f"{str(path / WEIGHTS)!r} lacks {', '.join(missing)} in its header; export the run again")
    return cfg, meta, tensors


def load_weights(agent, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load exported tensors into the agent's modules, every key accounted for."""
    modules = agent.modules()
    try:
        for name, module in modules.items():
            prefix = f"{name}."
            module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        extra = [k for k in tensors if k.split(".", 1)[0] not in modules]
        if extra:
            raise KeyError(f"unexpected tensors {extra[:3]}")
    except (RuntimeError, KeyError) as err:
        raise UserError(f"export {source!r} does not fit its config's network ({state_dict_mismatch(err)}); "
                        "export the run again") from None
    sync = getattr(agent, "sync_target", None)  # agents with a target network start it equal
    if callable(sync):
        sync()


def export_header(path: Path) -> dict | None:
    """The header of a safetensors file; None when it is not one (or cannot be read)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return fh.metadata() or {}
    except (SafetensorError, OSError, ValueError):
        return None


def check_target(source: str | Path, out_dir: str | Path) -> None:
    """OUT must be a new folder, an empty one or an earlier export: never a run directory (the
    source's or another's: its config.yaml and model.safetensors are the run's own), a folder inside
    the source run, a run's checkpoints/ or replay/, or a folder of someone else's config.yaml or
    model.safetensors. Checked before the checkpoint is read."""
    out = Path(out_dir)
    new = f"name a new folder, e.g. {str(out.parent / (out.name + '-export'))!r}"
    if out.exists() and not out.is_dir():
        raise UserError(f"export target {str(out)!r} is a file; name a new folder")
    target, src = out.resolve(), Path(source).resolve()
    run = next((d for d in ([src] if src.is_dir() else []) + list(src.parents) if rundir.is_run_dir(d)),
               src if src.is_dir() else None)
    if run is not None and (target == run or run in target.parents):
        where = "the source run directory itself" if target == run else f"inside the source run {str(run)!r}"
        raise UserError(f"export target {str(out)!r} is {where}; exporting there would mix the export with "
                        f"the run's own files: name a new folder, e.g. {str(run.parent / (run.name + '-export'))!r}")
    if rundir.is_run_dir(target):
        raise UserError(f"export target {str(out)!r} is a howsure run directory; exporting there would replace "
                        f"the run's config.yaml and model.safetensors: {new}")
    owned = rundir.owned_file(target)
    if owned is not None:
        raise UserError(f"export target {str(out)!r} is {owned[0]}, which only howsure writes; "
                        f"name a new folder, e.g. {str(owned[1].parent / (owned[1].name + '-export'))!r}")
    if target.is_dir():
        theirs = [n for n in (CONFIG, WEIGHTS) if (target / n).exists()]
        if theirs and (export_header(target / WEIGHTS) or {}).get("format") != FORMAT:
            raise UserError(f"export target {str(out)!r} holds a {' and a '.join(theirs)} of its own (it is not a "
                            f"howsure export, which would be replaced); {new}")


def export(source: str | Path, out_dir: str | Path) -> Path:
    """Export a run directory's final (else latest) checkpoint, or a checkpoint file."""
    from howsure import envs
    from howsure.agents import make_agent

    check_target(source, out_dir)
    ckpt_path = checkpoint.find(source)
    state = checkpoint.load(ckpt_path)
    cfg = wiring.from_yaml(state["config_yaml"])
    env = envs.make_env(cfg.env)
    spec = envs.spec_of(cfg.env.id, env)
    env.close()
    agent = make_agent(cfg, spec)
    agent.load_state_dict(state["agent"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {**state["meta"], "source_step": int(state["step"])}
    write_weights(agent, out / WEIGHTS, meta)
    (out / CONFIG).write_text(config.to_yaml(dataclasses.replace(cfg, run_dir="")))
    return out


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="run directory (final.pt, else latest.pt) or a checkpoint .pt file")
    p.add_argument("out_dir", help="folder for config.yaml and model.safetensors")
    args = p.parse_args(argv)
    out = export(args.source, args.out_dir)
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    print(f"exported {args.source} -> {out} ({size / 1e6:.1f} MB); watch it: python evaluate.py {out} --video videos/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
