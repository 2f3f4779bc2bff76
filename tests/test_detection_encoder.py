"""The detection encoder: the set encoders ignore item order, the encoder composes with DQN on the
real Pong ROM through train.py, and evaluate.py draws its boxes on video frames."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from howsure.encoders.detection.encoder import AttentionSet, DeepSets, DetectionConfig, DetectionEncoder
from howsure.encoders.detection.model import DetectorConfig, RetinaNet, save_detector


@pytest.mark.parametrize("make", [lambda: DeepSets(9, 16, 8), lambda: AttentionSet(9, 16, 2, 8)],
                         ids=["deepsets", "attention"])
def test_set_encoder_is_permutation_invariant(make):
    torch.manual_seed(0)
    enc = make().eval()
    items = torch.randn(3, 10, 9)
    mask = torch.rand(3, 10) > 0.3
    mask[2] = False  # an empty set must work too
    out = enc(items, mask)
    perm = torch.randperm(10)
    assert torch.allclose(enc(items[:, perm], mask[:, perm]), out, atol=1e-5)
    # masked-out items do not matter at all
    noisy = torch.where(mask.unsqueeze(-1), items, torch.randn_like(items))
    assert torch.allclose(enc(noisy, mask), out, atol=1e-5)
    # but the items themselves do
    assert not torch.allclose(enc(items + 1.0, mask)[:2], out[:2], atol=1e-3)


class _Spec:
    obs_shape = (4, 84, 84)
    obs_dtype = np.dtype(np.uint8)


def test_encoder_shapes_frozen_detector_and_annotation(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "det.pt"
    save_detector(path, RetinaNet(DetectorConfig(class_names=("a", "b"))))
    enc = DetectionEncoder(DetectionConfig(checkpoint=str(path), top_k=5, min_score=0.0), _Spec())
    obs = torch.randint(0, 255, (3, 4, 84, 84), dtype=torch.uint8)
    feats = enc(obs)
    assert feats.shape == (3, enc.out_features)
    feats.sum().backward()
    assert all(p.grad is None for p in enc.detector.parameters())  # frozen
    assert any(p.grad is not None for p in enc.set_encoder.parameters())
    frame = np.zeros((210, 160, 3), dtype=np.uint8)
    assert len(enc.last_detections[0]) == 5
    assert enc.annotate_frame(frame).any()  # min_score 0: five boxes drawn
    tuned = DetectionEncoder(DetectionConfig(checkpoint=str(path), top_k=5, min_score=0.0, finetune=True), _Spec())
    tuned(obs).sum().backward()
    assert tuned.detector.cls_subnet[-1].weight.grad.abs().sum() > 0  # the TD loss reaches the detector


@pytest.mark.atari
def test_dqn_with_detection_encoder_trains_on_pong_and_evaluates(tmp_path, cli):
    run = tmp_path / "run"
    train = cli("train.py", "--config", "configs/dqn_pong_detection.yaml", f"run_dir={run}", "--quiet",
                "total_steps=1200", "agent.learning_starts_steps=400", "agent.batch_size=8",
                "agent.train_every_steps=4", "agent.updates_per_train=1", "agent.target_update_every_updates=50",
                "replay.capacity_steps=2000", "eval.every_steps=0", "checkpoint_every_steps=600",
                "log.every_steps=400", "encoder.detection.set_encoder=attention", "torch_threads=1")
    assert train.returncode == 0, train.stderr[-2000:]
    from howsure.logger import read_scalars

    losses = read_scalars(run)["losses/td_loss"]  # 200 updates on the object rows
    assert [s for s, _ in losses] == [400, 800, 1200] and all(np.isfinite(v) for _, v in losses)
    out = tmp_path / "eval.json"
    ev = cli("evaluate.py", str(run), "--episodes", "1", "--json", str(out), "--video", str(tmp_path / "video"),
             "env.max_episode_frames=300", env={"OMP_NUM_THREADS": "1"})
    assert ev.returncode == 0, ev.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["checkpoint_step"] == 1200 and len(result["returns"]) == 1
    assert (tmp_path / "video" / "episode-000.mp4").stat().st_size > 0
    # the labeller can play this object-seeing agent and still collects screens, not object rows
    from howsure.detector import collect

    data = collect("ALE/Pong-v5", 4, seed=1, every_steps=2, checkpoint=str(run))
    assert data["frames"].shape == (4, 84, 84) and data["frames"].dtype == np.uint8
    assert (data["classes"] == list(data["class_names"]).index("player")).sum() == 4


@pytest.mark.atari
def test_video_frames_show_detected_boxes():
    """evaluate.frame_annotator draws the shipped Pong detector's boxes on the colour screen."""
    from howsure.agents import make_agent

    from howsure import envs, wiring
    from howsure.evaluation import frame_annotator

    cfg = wiring.load("configs/dqn_pong_detection.yaml", ["env.noop_max=0"])
    env = envs.make_env(cfg.env, render_mode="rgb_array")
    agent = make_agent(cfg, envs.spec_of(cfg.env.id, env))
    obs, _ = env.reset(seed=0)
    for _ in range(30):
        obs, *_ = env.step(int(agent.act(obs[None], 0, epsilon=0.0)[0]))
    agent.act(obs[None], 0, epsilon=0.0)
    frame = env.render()
    env.close()
    drawn = frame_annotator(agent)(frame)
    changed = (drawn != frame).any(-1)
    assert changed.sum() > 20  # at least the agent's paddle is boxed
    # box outlines are the palette's colours (magenta = class 0, the agent's paddle)
    assert (drawn[changed] == np.array([255, 0, 255], dtype=np.uint8)).all(-1).any()


@pytest.mark.atari
def test_env_side_detection_gives_the_rows_the_network_would_compute():
    """env.detector: each screen is detected once in the env; the stacked rows equal what the
    encoder computes from the same pixels, and the agent (dqn, or dqn + LSTM) acts on them."""
    from howsure.agents import make_agent

    from howsure import envs, wiring
    from howsure.errors import UserError

    rows_cfg = wiring.load("configs/dqn_pong_detection.yaml", ["env.noop_max=0"])
    pixel_cfg = wiring.load("configs/dqn_pong_detection.yaml", ["env.noop_max=0", "env.detector=null"])
    with_rows, with_pixels = envs.make_env(rows_cfg.env), envs.make_env(pixel_cfg.env)
    spec = envs.spec_of(rows_cfg.env.id, with_rows)
    assert spec.obs_shape == (4, 8, 8) and spec.obs_dtype == np.float32  # 4 frames x 8 objects x (3 classes + 5)
    enc = DetectionEncoder(DetectionConfig(), envs.spec_of(pixel_cfg.env.id, with_pixels))
    a, _ = with_rows.reset(seed=3)
    b, _ = with_pixels.reset(seed=3)
    for t in range(60):
        a, *_ = with_rows.step(t % 6)
        b, *_ = with_pixels.step(t % 6)
    with torch.no_grad():
        expected = enc.rows(torch.from_numpy(b)[None])[0]
    torch.testing.assert_close(torch.from_numpy(a), expected, atol=1e-5, rtol=0)
    assert (a[-1, :, -1] > 0).sum() >= 3  # both paddles and the ball
    for overrides in ([], ["encoder.name=lstm", "encoder.lstm.embed=detection", "replay.kind=sequence"]):
        agent = make_agent(wiring.load("configs/dqn_pong_detection.yaml", overrides), spec)
        assert agent.act(a[None], 0, epsilon=0.0).shape == (1,)
    with_rows.close()
    with_pixels.close()
    with pytest.raises(UserError, match="env.detector"):
        envs.make_env(wiring.load(None, ["env.detector=encoders/detection/weights/pong.pt"]).env)
