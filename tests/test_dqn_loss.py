import torch
from howsure.agents.base import linear_schedule
from howsure.agents.dqn import td_loss, td_target


def test_td_target_max_and_terminal():
    next_q = torch.tensor([[1.0, 3.0], [2.0, -1.0]])
    target = td_target(torch.tensor([1.0, 5.0]), torch.tensor([0.9, 0.0]), next_q)
    assert torch.allclose(target, torch.tensor([1.0 + 0.9 * 3.0, 5.0]))


def test_double_dqn_uses_online_argmax_and_target_value():
    next_target = torch.tensor([[10.0, 0.0]])
    next_online = torch.tensor([[0.0, 1.0]])  # online prefers action 1
    target = td_target(torch.tensor([0.0]), torch.tensor([0.5]), next_target, next_online)
    assert target.item() == 0.0  # 0 + 0.5 * Q_target(s', 1) = 0
    assert td_target(torch.tensor([0.0]), torch.tensor([0.5]), next_target).item() == 5.0


def test_huber_and_mse():
    q, target = torch.tensor([0.0, 0.0]), torch.tensor([0.5, 3.0])
    huber, td = td_loss(q, target, "huber")
    assert torch.allclose(td, target)
    assert huber.item() == (0.5 * 0.25 + (3.0 - 0.5)) / 2
    mse, _ = td_loss(q, target, "mse")
    assert mse.item() == (0.5 * 0.25 + 0.5 * 9.0) / 2
    weighted, _ = td_loss(q, target, "mse", weights=torch.tensor([1.0, 0.0]))
    assert weighted.item() == 0.5 * 0.25 / 2


def test_linear_schedule():
    assert linear_schedule(1.0, 0.1, 100, 0) == 1.0
    assert abs(linear_schedule(1.0, 0.1, 100, 50) - 0.55) < 1e-12
    assert linear_schedule(1.0, 0.1, 100, 1000) == 0.1
