"""FLOP counting against a hand count, and the GEMM peak measurement's sanity."""

from bench.campaign.peaks import gemm_peak_gflops
from scenarios.work import epoch_flops


def test_epoch_flops_of_the_baseline_by_hand():
    # forward x@W1 and x.T@delta (784×128), then forward, weight- and input-gradient of 128×10
    per_sample = 2 * (2 * 784 * 128) + 3 * (2 * 128 * 10)
    assert epoch_flops(60_000, 784, (128,), 10) == 60_000 * per_sample
    assert epoch_flops(60_000, 784, (128,), 10) / 1e9 == 24.54528  # the "24.55 GFLOP"


def test_epoch_flops_two_hidden_layers_and_linear_in_samples():
    per_sample = 2 * (2 * 20 * 7) + 3 * (2 * 7 * 5) + 3 * (2 * 5 * 3)
    assert epoch_flops(1, 20, (7, 5), 3) == per_sample
    assert epoch_flops(10, 20, (7, 5), 3) == 10 * per_sample


def test_gemm_peak_is_a_positive_finite_rate():
    rate = gemm_peak_gflops("float32", size=256)
    assert 0.1 < rate < 1e6  # GFLOP/s: any real CPU lands far inside this
