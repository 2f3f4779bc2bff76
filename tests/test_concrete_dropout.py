"""Concrete Dropout (arXiv:1705.07832): relaxation and regulariser against hand-computed values."""

import math

import torch
from howsure.agents.concrete_dropout import (
    ConcreteDropout,
    bernoulli_entropy,
    concrete_keep_mask,
    concrete_regulariser,
    hard_keep_mask,
)


def test_relaxed_mask_hand_values():
    p = torch.tensor(0.2)
    # logit(0.2) + logit(0.8) = 0: the relaxed drop is sigmoid(0) = 1/2 at any temperature
    assert torch.allclose(concrete_keep_mask(torch.tensor([0.8]), p, 0.1), torch.tensor([0.5]))
    # logit(0.2) + logit(0.75) = ln(3/4); drop = sigmoid(10 ln(3/4)) = 1 / (1 + (4/3)^10)
    keep = concrete_keep_mask(torch.tensor([0.75]), p, 0.1)
    assert abs(keep.item() - (1.0 - 1.0 / (1.0 + (4 / 3) ** 10))) < 1e-5


def test_relaxation_tends_to_the_hard_mask_and_keeps_rate():
    torch.manual_seed(0)
    u = torch.rand(20_000)
    p = torch.tensor(0.3)
    soft = concrete_keep_mask(u, p, 1e-4)
    hard = hard_keep_mask(u, p)
    assert ((soft - hard).abs() > 0.5).float().mean() < 1e-3
    # the binary concrete's P(kept > 1/2) is 1 - p at every temperature
    assert abs((concrete_keep_mask(u, p, 0.1) > 0.5).float().mean().item() - 0.7) < 0.01
    assert abs(hard.mean().item() - 0.7) < 0.01
    layer = ConcreteDropout(20_000, 0.3, learn=False)  # the layer's own one-pass hard mask, rescaled
    assert torch.allclose(layer.mask(u, relaxed=False), hard / (1 - layer.p))


def test_gradient_reaches_the_rate():
    layer = ConcreteDropout(8, 0.25, learn=True)
    x = torch.ones(16, 8)
    layer(x, torch.rand(16, 8), relaxed=True).sum().backward()
    assert layer.p_logit.grad is not None and layer.p_logit.grad.abs() > 0
    fixed = ConcreteDropout(8, 0.25, learn=False)
    assert not fixed.p_logit.requires_grad


def test_inverted_scaling_keeps_the_mean():
    torch.manual_seed(1)
    layer = ConcreteDropout(4, 0.4, learn=True)
    x = torch.tensor([[1.0, -2.0, 3.0, 0.5]]).repeat(50_000, 1)
    with torch.no_grad():
        y = layer(x, torch.rand_like(x), relaxed=False)
    assert torch.allclose(y.mean(0), x[0], atol=0.05)
    assert torch.equal(layer(x, None), x)  # dropout off: the input as is


def test_regulariser_hand_values():
    w = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # ||W||^2 = 30
    p = torch.tensor(0.25)
    weight, drop = concrete_regulariser(w, p, in_features=2, length_scale=0.1, n_data=100, tau=2.0)
    # paper form: l^2 (1-p)/2 ||M||^2 / (tau N) with M = W / (1-p): 0.01 * 0.75 / 2 * 30 / 0.5625 / 200
    assert abs(weight.item() - 0.001) < 1e-9
    h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))  # 0.5623351 nats
    assert abs(bernoulli_entropy(p).item() - h) < 1e-6
    assert abs(drop.item() - (-2 * h / 200)) < 1e-8


def test_dropout_term_pulls_rate_to_one_half_and_shrinks_with_data():
    for p0, sign in ((0.1, -1), (0.8, 1)):
        logit = torch.tensor(math.log(p0 / (1 - p0)), requires_grad=True)
        _, drop = concrete_regulariser(torch.zeros(1, 1), torch.sigmoid(logit), 64, 0.01, 1_000)
        drop.backward()
        assert torch.sign(logit.grad).item() == sign  # gradient descent moves p towards 1/2
    p = torch.tensor(0.1)
    small = concrete_regulariser(torch.ones(3, 3), p, 3, 0.1, 1_000)
    large = concrete_regulariser(torch.ones(3, 3), p, 3, 0.1, 100_000)
    assert abs(small[1].item() / large[1].item() - 100.0) < 1e-3
    assert abs(small[0].item() / large[0].item() - 100.0) < 1e-3
