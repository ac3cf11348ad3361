"""Model soups: the average of one architecture's weights, refused across architectures."""

from __future__ import annotations

import math

import pytest
import torch

from denoiser.errors import ModelError, ParameterError
from denoiser.models import build_model
from training.soup import interpolation_distance, soup, soup_weights


def tiny(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model("bandmask-tiny")
    # Distinct BatchNorm statistics, as training would leave them.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.num_batches_tracked.fill_(100 * (seed + 1))
    return model.eval()


def test_weights_and_statistics_are_the_weighted_average():
    a, b = tiny(0), tiny(1)
    mixed = soup([a, b], [3, 1])
    for key, value in mixed.state_dict().items():
        if value.is_floating_point():
            expected = 0.75 * a.state_dict()[key] + 0.25 * b.state_dict()[key]
            assert torch.allclose(value, expected, atol=1e-7), key
        else:  # counters come from the first model
            assert torch.equal(value, a.state_dict()[key]), key
    assert mixed.training is False and mixed is not a
    # the inputs are left as they were
    assert torch.equal(a.project.weight, tiny(0).project.weight)


def test_an_equal_soup_lies_halfway_and_a_one_sided_one_is_its_model():
    a, b = tiny(0), tiny(1)
    half = soup([a, b])
    apart = interpolation_distance(a, b)
    assert apart > 0.1  # two random starts (the shared input normalisation aside): far apart
    assert interpolation_distance(a, half) == pytest.approx(apart / 2, rel=1e-4)
    wave = torch.randn(1, 4096)
    with torch.no_grad():
        assert torch.equal(soup([a, b], [1, 0])(wave), a(wave))
        assert torch.allclose(soup([a, a, a])(wave), a(wave), atol=1e-6)
        assert not torch.allclose(half(wave), a(wave), atol=1e-3)


def test_different_architectures_are_refused():
    with pytest.raises(ModelError, match="one architecture"):
        soup([tiny(0), build_model("thesis-tiny")])
    wider = build_model("bandmask", n_fft=256, hop=64, channels=32, dilations=(1, 2))
    with pytest.raises(ModelError, match="one architecture"):
        soup([tiny(0), wider])
    # the settings that differ, alone: the whole settings of both made a 785-character line
    faster = build_model("bandmask-tiny", sample_rate=44_100)
    with pytest.raises(ModelError, match=r"^cannot average these bandmask models: they differ "
                                         r"in sample_rate \(48000 vs 44100\); a soup needs one "
                                         r"architecture$"):
        soup([tiny(0), faster])
    with pytest.raises(ParameterError, match="at least two"):
        soup([tiny(0)])


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [0.0, 0.0], [1.0, math.nan], [1.0, math.inf]])
def test_bad_weights_are_refused(weights):
    with pytest.raises(ParameterError):
        soup_weights(2, weights)


def test_weights_are_normalised():
    assert soup_weights(3, None) == pytest.approx([1 / 3] * 3)
    assert soup_weights(2, [2, 6]) == pytest.approx([0.25, 0.75])


def test_huge_weights_are_normalised_without_overflow():
    """1e308 + 1e308 is inf: every share came out 0."""
    assert soup_weights(2, [1e308, 1e308]) == pytest.approx([0.5, 0.5])
    assert soup_weights(3, [1e308, 0.0, 5e307]) == pytest.approx([2 / 3, 0.0, 1 / 3])


def test_a_model_and_its_reloaded_checkpoint_are_one_architecture(tmp_path):
    """Loaded from a checkpoint, an ensemble's member settings are lists where the one
    built in memory has tuples; the literal comparison refused to average them."""
    from denoiser.checkpoint import load_checkpoint, save_checkpoint
    from denoiser.models.ensemble import MaskEnsemble

    bag = MaskEnsemble.of([tiny(0), tiny(1)], "power")
    loaded, _ = load_checkpoint(save_checkpoint(tmp_path / "bag.pt", bag))
    halfway = soup([bag, loaded])
    for mine, averaged in zip(bag.state_dict().values(), halfway.state_dict().values()):
        assert torch.equal(mine, averaged)  # a model averaged with itself is itself
