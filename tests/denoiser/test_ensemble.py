"""The mask ensemble: what it keeps, that it saves and chunks like any model, what it refuses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from denoiser.checkpoint import load_checkpoint, rebuild, save_checkpoint, serialize
from denoiser.engine import apply_model
from denoiser.errors import ModelError
from denoiser.models import build_model
from denoiser.models.ensemble import MaskEnsemble


def tiny(seed: int, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("bandmask-tiny", **kwargs).eval()


def with_constant_mask(mask: float) -> torch.nn.Module:
    """A tiny net whose mask is ``mask`` everywhere: its head ignores the input."""
    net = tiny(0)
    head = net.head[1]
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.constant_(head.bias, float(np.log(mask / (1 - mask))))
    return net


def energy_db(out: torch.Tensor, ref: torch.Tensor) -> float:
    return 10 * np.log10(out.square().sum().item() / ref.square().sum().item())


@pytest.fixture
def wave(rng) -> torch.Tensor:
    return torch.from_numpy(rng.standard_normal((2, 24000)).astype(np.float32)) * 0.1


@pytest.mark.parametrize("combine", ["max", "mean"])
def test_copies_of_one_net_give_that_net(wave, combine):
    net = tiny(1)
    bag = MaskEnsemble.of([net, net], combine)
    with torch.no_grad():
        assert (bag(wave) - net(wave)).abs().max().item() < 1e-6


def test_max_keeps_what_any_member_keeps_and_mean_halves_it(wave):
    """One member passes everything (mask 0.999), one removes everything (mask 0.001)."""
    keeper, remover = with_constant_mask(0.999), with_constant_mask(0.001)
    with torch.no_grad():
        union = MaskEnsemble.of([keeper, remover], "max")(wave)
        average = MaskEnsemble.of([keeper, remover], "mean")(wave)
        assert energy_db(remover(wave), wave) < -55
    assert energy_db(union, wave) == pytest.approx(20 * np.log10(0.999), abs=0.01)
    assert energy_db(average, wave) == pytest.approx(20 * np.log10(0.5), abs=0.01)


def test_mask_is_the_binwise_max_of_the_members(wave):
    members = [tiny(2), tiny(3, frame_gate=True), tiny(4)]
    torch.nn.init.normal_(members[1].frame_gate.weight, std=0.5)
    bag = MaskEnsemble.of(members, "max")
    with torch.no_grad():
        spec = bag.spectrum(wave)
        masks = torch.stack([m.predict_mask(spec) for m in members])
        combined = bag.predict_mask(spec)
    assert torch.equal(combined, masks.amax(0))
    assert all((combined >= m).all() for m in masks)
    assert (combined > masks.min(0).values).float().mean().item() > 0.5  # members disagree


def test_power_mean_costs_a_disputed_bin_3_db_and_below_its_cutoff_the_remover_decides(wave):
    """One member passes everything, one removes everything: their power mean keeps
    sqrt(1/2) of the input (-3 dB, where the plain mean loses 6); below ``min_below_hz``
    the smaller mask wins."""
    keeper, remover = with_constant_mask(0.999), with_constant_mask(0.001)
    with torch.no_grad():
        blend = MaskEnsemble.of([keeper, remover], "power")(wave)
        split = MaskEnsemble.of([keeper, remover], "power", min_below_hz=2000.0)
        spec = split.spectrum(wave)
        mask = split.predict_mask(spec)
    assert energy_db(blend, wave) == pytest.approx(10 * np.log10((0.999**2 + 0.001**2) / 2), abs=0.01)
    low = int(np.ceil(2000 * split.n_fft / split.sample_rate))  # 11 bins of 187.5 Hz
    assert split.low_bins == low == 11
    assert torch.allclose(mask[:, :low], torch.tensor(0.001), atol=1e-6)
    assert torch.allclose(mask[:, low:], torch.tensor(float(np.sqrt((0.999**2 + 0.001**2) / 2))), atol=1e-6)


def test_above_its_high_cutoff_the_remover_decides_too(wave):
    """``min_above_hz``: from the first bin at or above it the smaller mask wins, as below
    ``min_below_hz``; between the cutoffs the power mean stays."""
    keeper, remover = with_constant_mask(0.999), with_constant_mask(0.001)
    split = MaskEnsemble.of([keeper, remover], "power", min_below_hz=2000.0, min_above_hz=15000.0)
    with torch.no_grad():
        mask = split.predict_mask(split.spectrum(wave))
    high = int(np.ceil(15000 * split.n_fft / split.sample_rate))  # 80 = 15000 / 187.5
    assert split.high_bin == high == 80 and mask.shape[1] == 129
    assert torch.allclose(mask[:, high:], torch.tensor(0.001), atol=1e-6)
    assert torch.allclose(mask[:, :11], torch.tensor(0.001), atol=1e-6)
    middle = float(np.sqrt((0.999**2 + 0.001**2) / 2))
    assert torch.allclose(mask[:, 11:high], torch.tensor(middle), atol=1e-6)
    again = MaskEnsemble.of([split], "power", min_below_hz=2000.0)  # one power bag, re-cut
    with torch.no_grad():
        assert again.high_bin == 129
        assert torch.allclose(again.predict_mask(again.spectrum(wave))[:, high:],
                              torch.tensor(middle), atol=1e-6)


def test_power_groups_are_unions_and_their_masks_are_blended(wave):
    """A max ensemble joins a power ensemble as one group: the mask is the power mean of
    (the max of its members) and the other group, and a power ensemble keeps its groups."""
    first, second, third = tiny(2), tiny(3), tiny(4)
    bag = MaskEnsemble.of([MaskEnsemble.of([first, second]), third], "power", min_below_hz=400.0)
    assert bag.groups == [[0, 1], [2]] and bag.low_bins == 3  # 0, 187.5 and 375 Hz
    with torch.no_grad():
        spec = bag.spectrum(wave)
        union = torch.maximum(first.predict_mask(spec), second.predict_mask(spec))
        other = third.predict_mask(spec)
        mask = bag.predict_mask(spec)
        expected = torch.sqrt((union ** 2 + other ** 2) / 2)
        assert torch.allclose(mask[:, 3:], expected[:, 3:], atol=1e-6)
        assert torch.equal(mask[:, :3], torch.minimum(union, other)[:, :3])
        regrouped = MaskEnsemble.of([bag, tiny(5)], "power", min_below_hz=400.0)
    assert regrouped.groups == [[0, 1], [2], [3]]


def test_learned_selector_starts_as_max_and_stays_between_min_and_max(wave):
    members = [tiny(2), tiny(3), tiny(4)]
    bag = MaskEnsemble.of(members, "learned")
    with torch.no_grad():
        spec = bag.spectrum(wave)
        masks = torch.stack([m.predict_mask(spec) for m in members])
        low, high = masks.amin(0), masks.amax(0)
        start = bag.predict_mask(spec)
        # untrained: sigmoid(4) of the way from min to max
        assert torch.allclose(start, low + 0.982 * (high - low), atol=1e-3)
        for parameter in bag.selector.parameters():  # any selector at all
            parameter.normal_(std=0.5)
        moved = bag.predict_mask(spec)
    assert (moved >= low - 1e-6).all() and (moved <= high + 1e-6).all()
    assert (moved - start).abs().mean().item() > 0.05
    assert bag.parameter_count() - sum(m.parameter_count() for m in members) == sum(
        p.numel() for p in bag.selector.parameters())


def with_deep_filter(bag: MaskEnsemble, **kwargs) -> MaskEnsemble:
    """``bag`` grown with a deep filter, as ``--model-kwargs '{"deep_filter": true}'`` does."""
    return rebuild(serialize(bag), {"deep_filter": True, **kwargs}).eval()


def randomize(module: torch.nn.Module, std: float = 0.3) -> None:
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(std=std)


def test_group_weights_start_as_the_power_mean_and_lean_towards_a_group_per_bin(tmp_path, wave):
    """Grown with ``group_weights`` (as ``--model-kwargs`` does), a power ensemble gives the
    plain power mean until trained; a weight leaning on one group gives that group's mask
    in those bins, and the minimum below the cutoff stays."""
    keeper, remover = with_constant_mask(0.999), with_constant_mask(0.001)
    bag = MaskEnsemble.of([keeper, remover], "power", min_below_hz=2000.0)
    weighted = rebuild(serialize(bag), {"group_weights": True}).eval()
    bins = bag.n_fft // 2 + 1
    assert weighted.parameter_count() - bag.parameter_count() == 2 * bins
    with torch.no_grad():
        spec = bag.spectrum(wave)
        assert torch.allclose(weighted.predict_mask(spec), bag.predict_mask(spec), atol=1e-6)
        weighted.group_logits[0, :60] = 10.0   # bins 0-59 lean on the keeper
        weighted.group_logits[1, 60:] = 10.0   # the rest on the remover
        mask = weighted.predict_mask(spec)
        loaded, _ = load_checkpoint(save_checkpoint(tmp_path / "weighted.pt", weighted))
        assert torch.equal(loaded.predict_mask(spec), mask)
    low = bag.low_bins
    assert torch.allclose(mask[:, :low], torch.tensor(0.001), atol=1e-6)
    assert mask[:, low:60].min().item() > 0.999 * 0.9999  # sqrt(1 - 4.5e-5) of the keeper's
    assert mask[:, 60:].max().item() < 0.0072              # the remover's, plus 4.5e-5 of the keeper's energy
    with pytest.raises(ValueError, match="group_weights belongs"):
        MaskEnsemble(bag.init_kwargs["members"], "max", group_weights=True)
    with pytest.raises(ModelError, match="cannot join another ensemble"):
        MaskEnsemble.of([weighted, tiny(5)], "power")


@pytest.mark.parametrize("combine", ["max", "learned", "deep_filter", "power"])
def test_saves_loads_and_chunks_like_any_model(tmp_path, wave, combine):
    bag = MaskEnsemble.of([tiny(5), build_model("bandmask-tiny", dilations=(1, 4, 8)).eval()],
                          combine if combine in ("learned", "power") else "max",
                          min_below_hz=500.0 if combine == "power" else 0.0)
    if combine == "learned":
        randomize(bag.selector)
    if combine == "deep_filter":
        bag = with_deep_filter(bag, filter_min_hz=4000, filter_taps=5)
        randomize(bag.filter)
    assert bag.context_samples() >= max(m.context_samples() for m in bag.members)
    loaded, info = load_checkpoint(save_checkpoint(tmp_path / "bag.pt", bag))
    assert info["model_name"] == "ensemble" and info["model_kwargs"]["combine"] == bag.combine
    assert info["model_kwargs"]["deep_filter"] == (combine == "deep_filter")
    with torch.no_grad():
        whole = bag(wave)
        assert (loaded(wave) - whole).abs().max().item() < 1e-6
    chunked = apply_model(loaded, wave, segment=6000, overlap=512)
    assert (chunked - whole).abs().max().item() < 1e-4


def test_untrained_deep_filter_changes_nothing(wave):
    bag = MaskEnsemble.of([tiny(9), tiny(10)])
    grown = with_deep_filter(bag)
    with torch.no_grad():
        assert torch.equal(grown(wave), bag(wave))
    assert grown.context_samples() > bag.context_samples()


def test_deep_filter_corrects_only_the_bins_above_its_frequency(wave):
    grown = with_deep_filter(MaskEnsemble.of([tiny(11), tiny(12)]), filter_min_hz=6000,
                             filter_taps=3)
    randomize(grown.filter)
    low = 6000 * grown.n_fft // grown.sample_rate  # tiny STFT: 256 points at 48 kHz
    assert grown.filter.min_bin == low
    with torch.no_grad():
        spec = grown.spectrum(wave)
        mask = grown.predict_mask(spec)
        masked = spec * mask
        out = grown.filter(spec, mask, grown.members[0].features(spec))
    assert torch.equal(out[:, :low], masked[:, :low])
    change = (out[:, low:] - masked[:, low:]).abs() / (masked[:, low:].abs() + 1e-3)
    assert change.mean().item() > 0.1
    # tanh-bounded coefficients, scaled by the mask: at most taps x mask x the loudest neighbour,
    # so nothing comes back where the members removed everything
    bound = 3 * np.sqrt(2) * mask[:, low:] * spec[:, low:].abs().amax(dim=-1, keepdim=True)
    assert ((out[:, low:] - masked[:, low:]).abs() <= bound + 1e-6).all()


def test_deep_filter_cannot_bring_back_what_the_members_removed(wave):
    removers = MaskEnsemble.of([with_constant_mask(0.001), with_constant_mask(0.001)])
    grown = with_deep_filter(removers, filter_min_hz=1000)
    randomize(grown.filter, std=1.0)
    with torch.no_grad():
        removed = energy_db(removers(wave), wave)
        assert removed < -55  # the members leave -60 dB
        assert energy_db(grown(wave), wave) < removed + 10  # the filter cannot bring it back


def test_deep_filter_refuses_absurd_settings_and_joining_another_ensemble():
    bag = MaskEnsemble.of([tiny(13), tiny(14)])
    for settings in ({"filter_min_hz": 0.0}, {"filter_min_hz": 30000.0}, {"filter_taps": 2}):
        with pytest.raises(ValueError, match="deep filter"):
            MaskEnsemble(bag.init_kwargs["members"], deep_filter=True, **settings)
    with pytest.raises(ModelError, match="cannot join another ensemble"):
        MaskEnsemble.of([with_deep_filter(bag), tiny(15)])


def test_a_max_ensemble_joins_as_its_members(wave):
    first, second, third = tiny(6), tiny(7), tiny(8)
    pair = MaskEnsemble.of([first, second])
    grown = MaskEnsemble.of([pair, third])
    flat = MaskEnsemble.of([first, second, third])
    assert len(grown.members) == 3
    with torch.no_grad():
        assert torch.equal(grown(wave), flat(wave))
    with pytest.raises(ModelError, match="cannot join"):
        MaskEnsemble.of([pair, third], "mean")
    with pytest.raises(ModelError, match="cannot join"):
        MaskEnsemble.of([MaskEnsemble.of([first, second], "mean"), third])


def test_refuses_members_that_cannot_share_a_mask():
    with pytest.raises(ModelError, match="hop"):
        MaskEnsemble.of([tiny(0), build_model("bandmask-tiny", hop=32)])
    with pytest.raises(ModelError, match="real masks"):
        MaskEnsemble.of([tiny(0), build_model("bandmask-tiny", mask="complex")])
    with pytest.raises(ModelError, match="only bandmask"):
        MaskEnsemble.of([tiny(0), build_model("thesis-tiny")])
    with pytest.raises(ModelError, match="at least two"):
        MaskEnsemble.of([tiny(0)])
    with pytest.raises(ModelError, match="combine"):
        MaskEnsemble.of([tiny(0), tiny(1)], "median")
    with pytest.raises(ModelError, match="min_below_hz belongs"):
        MaskEnsemble.of([tiny(0), tiny(1)], "max", min_below_hz=150.0)
    with pytest.raises(ModelError, match="Nyquist"):
        MaskEnsemble.of([tiny(0), tiny(1)], "power", min_below_hz=24000.0)
    with pytest.raises(ModelError, match="min_above_hz belongs"):
        MaskEnsemble.of([tiny(0), tiny(1)], "max", min_above_hz=5000.0)
    for above in (100.0, 24000.0):   # not above min_below_hz, not below Nyquist
        with pytest.raises(ModelError, match="min_above_hz"):
            MaskEnsemble.of([tiny(0), tiny(1)], "power", min_below_hz=150.0, min_above_hz=above)
    kwargs = [tiny(0).init_kwargs, tiny(1).init_kwargs, tiny(2).init_kwargs]
    for groups in ([[0, 1, 2]], [[0, 1], [1, 2]], [[0], [1]]):
        with pytest.raises(ValueError, match="groups"):
            MaskEnsemble(kwargs, "power", groups=groups)
    with pytest.raises(ModelError, match="power ensemble cannot join a max"):
        MaskEnsemble.of([MaskEnsemble.of([tiny(0), tiny(1)], "power"), tiny(2)])


@pytest.mark.parametrize("samples", [1, 10, 500])
@pytest.mark.parametrize("bagged", [False, True], ids=["net", "ensemble"])
def test_a_clip_shorter_than_one_window_is_masked_whole(rng, samples, bagged):
    """A 10-ms REAPER item is shorter than the STFT's window: it is processed as if padded
    with silence, not refused. A mask of 0.5 everywhere halves every sample of it."""
    net = with_constant_mask(0.5)
    model = MaskEnsemble.of([net, with_constant_mask(0.2)], "max") if bagged else net
    clip = torch.from_numpy(rng.standard_normal((2, samples)).astype(np.float32)) * 0.1
    out = apply_model(model, clip, segment=48000, overlap=1000)
    assert out.shape == clip.shape
    assert (out - 0.5 * clip).abs().max().item() < 1e-5
