"""`auto` speed switches: decided from the CPU's flags, obeyed when explicit, saved resolved."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from howsure import wiring
from howsure.machine import cpu_flags
from howsure.runtime import decide, has_cxx_compiler, resolve_auto
from tests.conftest import run_cli

AUTO = ["agent.name=dqn", "agent.bf16_autocast=auto", "flush_denormal=auto", "torch_threads=auto",
        "learner_thread=auto", "env.env_workers=auto", "agent.channels_last=auto", "reuse_freed_memory=auto"]


@pytest.mark.parametrize("flags, bf16", [(set(), False), ({"avx2", "avx512f", "avx512_vnni"}, False),
                                         ({"avx512_bf16"}, True), ({"amx_bf16", "amx_tile"}, True)])
def test_bf16_only_where_the_cpu_computes_it(flags, bf16):
    assert decide(wiring.load(None, AUTO), flags, cores=2)["agent.bf16_autocast"] is bf16


def test_other_switches_by_core_count():
    cfg = wiring.load(None, AUTO)
    two, eight = decide(cfg, set(), cores=2), decide(cfg, set(), cores=8)
    assert two["learner_thread"] is False and eight["learner_thread"] is True
    assert two["flush_denormal"] is True and two["torch_threads"] == 0 and two["env.env_workers"] is False


@pytest.mark.parametrize("cxx, device, on", [(True, "cpu", True), (False, "cpu", False), (True, "cuda", False)])
def test_compiled_optimizer_only_where_a_cpu_compiler_builds_it(cxx, device, on):
    cfg = wiring.load(None, ["agent.name=dqn", "agent.compile_optimizer=auto"])
    cfg = dataclasses.replace(cfg, device=device)  # the config refuses "cuda" on a machine without one
    assert decide(cfg, set(), cores=2, cxx=cxx) == {"agent.compile_optimizer": on}
    assert "agent.compile_optimizer" not in decide(wiring.load(None, ["agent.name=pqn"]), set(), cores=2, cxx=True)


@pytest.mark.parametrize("device, glibc, nhwc", [("cpu", True, True), ("cpu", False, True), ("cuda", True, False)])
def test_channels_last_on_cpu_and_freed_memory_kept_where_glibc_is(device, glibc, nhwc):
    cfg = dataclasses.replace(wiring.load(None, AUTO), device=device)
    choices = decide(cfg, set(), cores=2, glibc=glibc)
    assert choices["agent.channels_last"] is nhwc and choices["reuse_freed_memory"] is glibc
    # agents without convolution layouts to choose (PQN) leave the switch out
    assert "agent.channels_last" not in decide(wiring.load(None, ["agent.name=pqn"]), set(), cores=2)


@pytest.mark.parametrize("flags, bf16_override, nhwc", [({"amx_bf16"}, [], True), ({"avx2"}, [], True),
                                                        ({"avx512_bf16"}, [], False),
                                                        ({"avx2"}, ["agent.bf16_autocast=true"], False),
                                                        ({"amx_bf16"}, ["agent.bf16_autocast=false"], True)])
def test_channels_last_with_float32_convolutions_or_amx(flags, bf16_override, nhwc):
    """NHWC is faster in float32, and in bf16 on AMX; under bf16 autocast (auto or explicit)
    without AMX auto keeps NCHW."""
    cfg = wiring.load(None, [*AUTO, *bf16_override])
    assert decide(cfg, flags, cores=2)["agent.channels_last"] is nhwc


def test_compiled_optimizer_without_a_compiler_is_one_clear_error(tmp_path):
    res = run_cli("train.py", "--config", "dqn_cartpole", f"run_dir={tmp_path}/run", "total_steps=300",
                  "agent.compile_optimizer=true", env={"PATH": str(tmp_path)})  # no compiler on this PATH
    assert res.returncode == 2
    assert "agent.compile_optimizer=true needs a C++ compiler" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.skipif(not has_cxx_compiler(), reason="torch.compile on CPU needs a C++ compiler")
def test_compiled_optimizer_step_moves_the_weights_as_the_eager_one():
    import torch
    from howsure.agents import make_agent
    from howsure.envs import make_env, spec_of
    from howsure.replay.batch import Batch

    def agent(*extra):  # the Nature setting's centered RMSProp on CartPole
        cfg = wiring.load(None, ["agent.name=dqn", "agent.optimizer=rmsprop", "agent.optimizer_eps=0.01",
                                 "agent.lr=0.01", "agent.target_update_every_updates=2", *extra])
        torch.manual_seed(0)
        return make_agent(cfg, spec_of(cfg.env.id, make_env(cfg.env)))

    eager, compiled = agent(), agent("agent.compile_optimizer=true")
    assert hasattr(compiled.optimizer.step, "_torchdynamo_orig_callable")  # wrapped by torch.compile
    assert not hasattr(eager.optimizer.step, "_torchdynamo_orig_callable")
    g = torch.Generator().manual_seed(1)
    before = [p.detach().clone() for p in eager.q.parameters()]
    for _ in range(4):
        obs, nxt = torch.randn(32, 4, generator=g), torch.randn(32, 4, generator=g)
        batch = Batch(obs, torch.randint(0, 2, (32,), generator=g), torch.randn(32, generator=g), nxt,
                      torch.full((32,), 0.99))
        eager.update(batch)
        compiled.update(batch)
    for e, c, b in zip(eager.q.parameters(), compiled.q.parameters(), before):
        assert not torch.equal(e, b)  # the updates moved the weights
        assert torch.allclose(e, c, rtol=1e-4, atol=1e-5)
    assert compiled.optimizer.state_dict()["state"][0]["step"] == 4


@pytest.mark.skipif(not has_cxx_compiler(), reason="torch.compile on CPU needs a C++ compiler")
def test_each_agent_in_a_process_gets_a_compiled_step():
    # a serial sweep makes one agent per run in one process; torch's compiler would count the
    # finished runs' compiled steps and run later ones uncompiled (here after 1 instead of 8)
    import torch
    from howsure.agents import make_agent
    from howsure.envs import make_env, spec_of
    from howsure.replay.batch import Batch
    from torch._dynamo.utils import counters

    cfg = wiring.load(None, ["agent.name=dqn", "agent.compile_optimizer=true"])
    obs = torch.randn(32, 4)
    batch = Batch(obs, torch.zeros(32, dtype=torch.int64), torch.ones(32), obs, torch.full((32,), 0.99))
    with torch._dynamo.config.patch(recompile_limit=1):
        for _ in range(2):
            agent = make_agent(cfg, spec_of(cfg.env.id, make_env(cfg.env)))
            before = counters["stats"]["unique_graphs"]
            agent.update(batch)
            agent.update(batch)
            assert counters["stats"]["unique_graphs"] > before  # this agent's step was compiled
            del agent


def test_explicit_values_are_obeyed():
    cfg = wiring.load(None, ["agent.name=dqn", "agent.bf16_autocast=true", "flush_denormal=false"])
    assert decide(cfg, set(), cores=2) == {}
    resolved, choices = resolve_auto(cfg)
    assert choices == {} and resolved.agent.bf16_autocast is True and resolved.flush_denormal is False


def test_this_host_resolves_by_its_own_flags():
    resolved, choices = resolve_auto(wiring.load(None, AUTO))
    has_bf16 = bool({"amx_bf16", "avx512_bf16"} & cpu_flags())
    assert resolved.agent.bf16_autocast is has_bf16 and choices["agent.bf16_autocast"] is has_bf16
    assert "auto" not in (resolved.flush_denormal, resolved.torch_threads, resolved.learner_thread,
                          resolved.env.env_workers, resolved.agent.bf16_autocast, resolved.agent.channels_last,
                          resolved.reuse_freed_memory)


def test_no_preset_hard_codes_bf16():
    from pathlib import Path

    for preset in Path("configs").glob("*.yaml"):
        agent = (yaml.safe_load(preset.read_text()) or {}).get("agent", {})
        assert agent.get("bf16_autocast", "auto") in ("auto", False), preset


def test_a_run_saves_what_auto_chose(tmp_path):
    run_dir = tmp_path / "cp"
    res = run_cli("train.py", "--config", "configs/dqn_cartpole.yaml", f"run_dir={run_dir}", "total_steps=300",
                  "eval.every_steps=0", "agent.bf16_autocast=auto", "flush_denormal=auto", "--quiet")
    assert res.returncode == 0, res.stderr
    assert "auto switches on this CPU: agent.bf16_autocast=" in res.stdout
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["agent"]["bf16_autocast"] is bool({"amx_bf16", "avx512_bf16"} & cpu_flags())
    assert saved["flush_denormal"] is True


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="reads /proc/cpuinfo")
def test_machine_record_names_the_cpu_generation():
    import re

    from howsure import machine

    info = machine.describe()
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    family = next((ln for ln in lines if ln.startswith("cpu family")), None)
    if family is None:  # not an x86 cpuinfo: nothing to name
        assert info["cpu_family_model"] is None
    else:
        assert re.fullmatch(r"family \d+ model \d+", info["cpu_family_model"])
        assert info["cpu_family_model"].split()[1] == family.split(":")[1].strip()
    assert set(info["flags"]) == set(machine.SPEED_FLAGS) and info["cores"] >= 1


def test_reuse_freed_memory_without_glibc_is_one_clear_error(monkeypatch):
    from howsure import runtime
    from howsure.errors import UserError

    monkeypatch.setattr(runtime, "has_glibc", lambda: False)  # e.g. macOS or musl
    cfg = dataclasses.replace(wiring.load(None, ["agent.name=dqn"]), reuse_freed_memory=True)
    with pytest.raises(UserError, match="reuse_freed_memory=true needs glibc's allocator"):
        runtime.configure_torch(cfg)
    assert decide(dataclasses.replace(cfg, reuse_freed_memory="auto"), set(), cores=2)["reuse_freed_memory"] is False
