"""The lecture's Example 04: Concrete Dropout + heteroscedastic output on noisy sin(x)."""

import pytest
import torch

from examples.concrete_dropout_sine import NOISE_STD, fit, summary

# one xdist worker runs this module, so its module-scoped run fixture trains once
pytestmark = pytest.mark.xdist_group("test_sine_example")


@pytest.fixture(scope="module")
def fitted():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module-scoped: runs before conftest's per-test thread fixture
    yield summary(fit(n_data=400, steps=600, seed=0))
    torch.set_num_threads(threads)


def test_epistemic_std_grows_far_from_the_data(fitted):
    # trained on [-3, 3]; |x| in [6, 8] is far outside
    assert fitted["epistemic_std_far_outside"] > 3 * fitted["epistemic_std_inside"]


def test_aleatoric_std_matches_the_true_noise(fitted):
    assert abs(fitted["aleatoric_std_inside"] - NOISE_STD) < 0.25 * NOISE_STD


def test_dropout_rates_are_learned(fitted):
    rates = [v for k, v in fitted.items() if k.startswith("dropout_p/")]
    assert len(rates) == 2 and all(0 < r < 1 and abs(r - 0.1) > 1e-3 for r in rates)  # moved from 0.1
