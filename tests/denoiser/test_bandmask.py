"""The bandmask network's extra inputs, the phase coherence, the texture front and the
floor: what they measure and how they are wired."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from denoiser.checkpoint import load_checkpoint, save_checkpoint
from denoiser.models import build_model
from denoiser.models.bandmask import BandMaskNet, apply_mask, level_floor, phase_coherence
from denoiser.errors import ModelError
from denoiser.models.ensemble import MaskEnsemble, input_cut, limit_input

RATE = 48000


def test_a_steady_partial_is_coherent_and_noise_is_not(rng):
    t = torch.arange(RATE) / RATE
    tone = 0.3 * torch.sin(2 * np.pi * 7123.4 * t)  # between two bin centres
    noise = torch.from_numpy(0.05 * rng.standard_normal(RATE).astype(np.float32))
    net = BandMaskNet(phase_coherence=True)
    coherence = phase_coherence(net.spectrum((tone + noise)[None]), 5)[0, :, 5:-5]
    tone_bin = round(7123.4 * net.n_fft / RATE)
    assert coherence.shape[0] == net.n_fft // 2 + 1
    assert coherence[tone_bin].mean().item() > 0.99
    noise_bins = coherence[300:400]  # 14-19 kHz: noise only
    assert 0.4 < noise_bins.mean().item() < 0.8  # overlapping frames: steps are not independent
    assert coherence[tone_bin].min().item() > noise_bins.max().item() - 0.2
    silent = phase_coherence(net.spectrum(torch.zeros(1, RATE)), 5)
    assert silent.abs().max().item() < 1e-5


def starts_from_its_own_mask(plain: BandMaskNet, grown: BandMaskNet, projection: torch.nn.Module,
                             wave: torch.Tensor) -> None:
    """``grown`` (``plain`` with a zero-start input ``projection``) gives exactly ``plain``'s
    mask, and once the projection's last layer is no longer zero, the input moves it."""
    with torch.no_grad():
        spec = plain.spectrum(wave)
        assert torch.equal(grown.predict_mask(spec), plain.predict_mask(spec))
        torch.nn.init.normal_(projection[-1].weight, std=1.0)
        assert (grown.predict_mask(spec) - plain.predict_mask(spec)).abs().max().item() > 1e-3


def test_a_trained_network_grows_it_and_starts_from_its_own_mask(tmp_path):
    """The coherence projection starts at zero: a checkpoint grown with it (``debleed train
    --init ... --model-kwargs '{"phase_coherence": true}'``) gives exactly its old mask,
    and once the projection is trained the coherence moves the mask."""
    torch.manual_seed(0)
    plain = build_model("bandmask-tiny").eval()
    path = save_checkpoint(tmp_path / "plain.pt", plain)
    grown, _ = load_checkpoint(path, overrides={"phase_coherence": True, "coherence_rank": 4})
    assert grown.coherence[0].weight.shape[:2] == (4, plain.n_fft // 2 + 1)
    assert grown.parameter_count() == plain.parameter_count() + 4 * (plain.n_fft // 2 + 1 + 16)
    assert grown.context_samples() == plain.context_samples() + 3 * plain.hop
    wave = torch.randn(1, 8000) * 0.1
    starts_from_its_own_mask(plain, grown, grown.coherence, wave)
    with pytest.raises(ValueError, match="coherence_frames"):
        BandMaskNet(phase_coherence=True, coherence_frames=4)
    with pytest.raises(ValueError, match="coherence_rank"):
        BandMaskNet(phase_coherence=True, coherence_rank=-1)



def textured(seed: int = 0) -> BandMaskNet:
    """A tiny network with a texture front whose output layers are no longer zero."""
    torch.manual_seed(seed)
    net = build_model("bandmask-tiny", texture_channels=3, texture_rank=2).eval()
    torch.nn.init.normal_(net.texture.body[-1].weight, std=1.0)
    torch.nn.init.normal_(net.texture_project[-1].weight, std=1.0)
    return net


def test_the_texture_front_is_the_same_at_every_bin():
    """Its filters are shared along frequency: a spectrum moved up by 7 bins gives both of
    its maps moved up by 7 bins (away from the edges, where the padding differs)."""
    front = textured().texture
    level = torch.randn(1, 129, 40)
    shifted = torch.roll(level, 7, dims=1)
    with torch.no_grad():
        for moved, plain in zip(front(shifted), front(level)):
            assert moved.shape == level.shape
            assert torch.allclose(moved[:, 20:-20], torch.roll(plain, 7, dims=1)[:, 20:-20],
                                  atol=1e-5)
            assert plain[:, 20:-20].std().item() > 0.1  # the maps are not constant


def test_a_network_grows_a_texture_front_and_starts_from_its_own_mask(tmp_path):
    """Both maps start at zero, so a checkpoint loaded with the front gives exactly its old
    mask; trained, the front moves the mask through either path; it costs 3 frames of
    context on either side."""
    torch.manual_seed(0)
    plain = build_model("bandmask-tiny").eval()
    path = save_checkpoint(tmp_path / "plain.pt", plain)
    grown, _ = load_checkpoint(path, overrides={"texture_channels": 3, "texture_rank": 2})
    bins = plain.n_fft // 2 + 1
    front = 3 * 15 + 3 + 3 + 2 * 3 * 15 + 2  # conv, bias, PReLU, conv to two maps, bias
    assert grown.parameter_count() == plain.parameter_count() + front + 2 * bins + 2 * 16
    assert grown.context_samples() == plain.context_samples() + 3 * plain.hop
    wave = torch.randn(1, 8000) * 0.1
    with torch.no_grad():
        spec = plain.spectrum(wave)
        assert torch.equal(grown.predict_mask(spec), plain.predict_mask(spec))
        torch.nn.init.normal_(grown.texture.body[-1].weight, std=1.0)  # the logit path only
        assert (grown.predict_mask(spec) - plain.predict_mask(spec)).abs().max().item() > 1e-3
    with pytest.raises(ValueError, match="texture_channels"):
        BandMaskNet(texture_channels=-1)
    with pytest.raises(ValueError, match="real mask"):
        BandMaskNet(texture_channels=2, mask="complex")


def test_the_floor_is_the_level_between_the_hits(rng):
    """A white floor under hits that fill a fifth of the frames: the 10 % quantile of each
    bin's level is the floor's level, hits or not: eight hits a second lift it by 2 dB on
    average over the bins (one bin's quantile over 188 frames scatters by a few dB); without
    a floor it is far lower (digital silence)."""
    t = np.arange(RATE) / RATE
    hits = np.zeros(RATE)
    for onset in range(0, RATE, RATE // 8):  # eight 25-ms hits a second
        n = RATE // 40
        hits[onset:onset + n] = 0.5 * rng.standard_normal(n) * np.exp(-t[:n] / 0.01)
    floor = 10 ** (-70 / 20) * rng.standard_normal(RATE)
    net = BandMaskNet()
    levels = [level_floor(net.log_power(net.spectrum(torch.from_numpy(x.astype(np.float32))[None])),
                          0.1)[0, 20:-20, 0] for x in (hits + floor, floor, hits)]
    with_hits, floor_only, no_floor = levels
    assert 0.0 < (10 * (with_hits - floor_only)).mean().item() < 3.0
    assert (10 * (floor_only - no_floor)).min().item() > 30.0


def test_a_network_grows_the_floor_input_and_starts_from_its_own_mask(tmp_path):
    """Its projection starts at zero: a checkpoint grown with it, alone or as every member
    of an ensemble (``member_kwargs``), gives exactly its old mask; trained, the floor moves
    the mask, the more so the louder the floor."""
    torch.manual_seed(0)
    plain = build_model("bandmask-tiny").eval()
    path = save_checkpoint(tmp_path / "plain.pt", plain)
    grown, _ = load_checkpoint(path, overrides={"floor_input": True, "floor_rank": 4})
    bins = plain.n_fft // 2 + 1
    assert grown.parameter_count() == plain.parameter_count() + 4 * (bins + 16)
    assert grown.context_samples() == plain.context_samples()
    wave = torch.randn(1, 8000) * 0.1
    starts_from_its_own_mask(plain, grown, grown.floor, wave)
    bag = MaskEnsemble.of([plain, build_model("bandmask-tiny").eval()], "power")
    bag_path = save_checkpoint(tmp_path / "bag.pt", bag)
    grown_bag, _ = load_checkpoint(bag_path, overrides={"member_kwargs": {"floor_input": True}})
    assert all(member.floor is not None for member in grown_bag.members)
    with torch.no_grad():
        spec = bag.spectrum(wave)
        assert torch.equal(grown_bag.predict_mask(spec), bag.predict_mask(spec))
    kept = save_checkpoint(tmp_path / "grown_bag.pt", grown_bag)
    again, _ = load_checkpoint(kept)  # the grown ensemble rebuilds as saved, strictly
    assert all(member.floor is not None for member in again.members)
    with pytest.raises(ValueError, match="floor_quantile"):
        BandMaskNet(floor_input=True, floor_quantile=0.9)


def coherent(seed: int = 1) -> BandMaskNet:
    """A tiny network whose phase-coherence input is no longer zero."""
    torch.manual_seed(seed)
    net = build_model("bandmask-tiny", phase_coherence=True).eval()
    torch.nn.init.normal_(net.coherence[0].weight, std=1.0)
    return net


@pytest.mark.parametrize("grown", [coherent, textured], ids=["coherence", "texture"])
def test_a_grown_member_shares_the_ensembles_stft(grown):
    """The ensemble hands every member one STFT and one log spectrum; a member with an
    extra input still gets its mask from them, and the ensemble's context is its own."""
    extended = grown()  # seeds torch, so the plain member's weights are fixed too
    members = [build_model("bandmask-tiny").eval(), extended]
    bag = MaskEnsemble.of(members, "power")
    wave = torch.randn(2, 12000) * 0.1
    with torch.no_grad():
        spec = bag.spectrum(wave)
        expected = torch.hypot(*(m.predict_mask(spec) for m in members)) * 2 ** -0.5
        assert torch.allclose(bag.predict_mask(spec), expected, atol=1e-6)
    assert bag.context_samples() == members[1].context_samples()


@pytest.mark.parametrize("complex_mask", [False, True])
def test_apply_mask_is_the_product_bit_for_bit(complex_mask):
    """The real-mask shortcut (no complex promotion) changes the time, not one number;
    in the STFT's own frames-major layout, as the model meets it."""
    torch.manual_seed(5)
    net = build_model("bandmask-tiny")
    spec = net.spectrum(torch.randn(2, 9600))
    mask = torch.rand(spec.shape)
    if complex_mask:
        mask = torch.polar(mask, torch.rand(spec.shape))
    assert torch.equal(apply_mask(spec, mask), spec * mask)


def above(cutoff_hz: float, rng: np.random.Generator, seconds: float = 0.5) -> torch.Tensor:
    """White noise with nothing below ``cutoff_hz`` (bins zeroed in its spectrum)."""
    noise = np.fft.rfft(rng.standard_normal(int(RATE * seconds)))
    noise[: int(cutoff_hz * seconds)] = 0.0
    return torch.from_numpy(0.01 * np.fft.irfft(noise).astype(np.float32))[None]


def test_the_band_above_input_max_hz_is_not_read_and_takes_the_highest_input_bins_mask(rng):
    """A network cut at 22.05 kHz gives the same mask whatever the band above holds (a
    recording floor there, hiss, cymbal air), but for the window's leakage into the bins
    below; its mask there is that of its highest input bin. The same network uncut reads
    the band a hundred times more."""
    torch.manual_seed(3)
    cut = build_model("bandmask-tiny", input_max_hz=22050.0).eval()
    uncut = build_model("bandmask-tiny").eval()
    uncut.load_state_dict(cut.state_dict())
    assert cut.input_bins == int(22050 * 256 / RATE) + 1 == 118  # bin 117 sits at 21938 Hz
    wave = 0.1 * torch.randn(1, RATE // 2)
    floored = wave + above(23000.0, rng)
    with torch.no_grad():
        masks = [net.predict_mask(net.spectrum(x)) for net in (cut, uncut) for x in (wave, floored)]
    moved_cut, moved_uncut = ((a - b).abs().max().item() for a, b in (masks[:2], masks[2:]))
    assert moved_cut < 0.01 * moved_uncut, (moved_cut, moved_uncut)
    top = masks[0][:, cut.input_bins:]
    assert torch.equal(top, masks[0][:, cut.input_bins - 1:cut.input_bins].expand_as(top))
    with pytest.raises(ValueError, match="input_max_hz must be 0"):
        BandMaskNet(input_max_hz=24000.0)
    with pytest.raises(ValueError, match="input_max_hz must be 0"):
        BandMaskNet(input_max_hz=-1.0)


def test_input_cut_reads_as_limit_inputs_copy_inside_and_restores_the_bins_after(rng):
    """Training's cut steps (``input_cut``) change the networks in place: inside, the model
    gives exactly what ``limit_input``'s copy gives, and after, even after an error, every
    network reads what it read before; a network cut narrower keeps its own cut."""
    torch.manual_seed(5)
    bag = MaskEnsemble.of([build_model("bandmask-tiny"), build_model("bandmask-tiny")]).eval()
    wave = torch.from_numpy(0.1 * rng.standard_normal((1, RATE // 2)).astype(np.float32))
    with torch.no_grad():
        whole, copied = bag(wave), limit_input(bag, 22050.0)(wave)
        with input_cut(bag, 22050.0) as cut:
            assert cut is bag and [m.input_bins for m in bag.members] == [118, 118]
            assert torch.equal(bag(wave), copied)
    assert [m.input_bins for m in bag.members] == [129, 129]
    assert (whole - copied).abs().max() > 1e-3  # the cut is not the whole band
    with pytest.raises(RuntimeError, match="mid-step"), input_cut(bag, 22050.0):
        raise RuntimeError("mid-step")
    assert [m.input_bins for m in bag.members] == [129, 129]
    narrow = build_model("bandmask-tiny", input_max_hz=20000.0)
    with input_cut(narrow, 22050.0):
        assert narrow.input_bins == int(20000 * 256 / RATE) + 1 == 107
    with pytest.raises(ModelError, match="cannot be cut"), input_cut(build_model("thesis"), 22050.0):
        pass
    with pytest.raises(ModelError, match="below the model's Nyquist"), input_cut(bag, 24000.0):
        pass


def test_an_ensemble_grows_the_cut_on_every_member_and_refuses_members_that_differ(tmp_path, rng):
    """``member_kwargs`` cuts every member at once with the weights unchanged (the shipped
    model's thirty-fourth-round variant); the ensemble reads one cut level for all of them.
    Members cut at different frequencies cannot share it."""
    torch.manual_seed(4)
    bag = MaskEnsemble.of([build_model("bandmask-tiny").eval(),
                           build_model("bandmask-tiny").eval()], "power")
    path = save_checkpoint(tmp_path / "bag.pt", bag)
    grown, _ = load_checkpoint(path, overrides={"member_kwargs": {"input_max_hz": 22050.0}})
    assert all(member.input_bins == 118 for member in grown.members)
    wave = 0.1 * torch.randn(1, RATE // 2)
    with torch.no_grad():
        spec = grown.spectrum(wave)
        expected = torch.hypot(*(m.predict_mask(spec) for m in grown.members)) * 2 ** -0.5
        assert torch.allclose(grown.predict_mask(spec), expected, atol=1e-6)
        uncut = bag.predict_mask(spec)
        floored = grown.spectrum(wave + above(23000.0, rng))
        moved_cut = (grown.predict_mask(floored) - grown.predict_mask(spec)).abs().max().item()
        moved_uncut = (bag.predict_mask(floored) - uncut).abs().max().item()
        assert moved_cut < 0.01 * moved_uncut, (moved_cut, moved_uncut)
    with pytest.raises(ValueError, match="input_bins"):
        MaskEnsemble([{"n_fft": 256, "hop": 64, "channels": 16, "dilations": (1, 2)},
                      {"n_fft": 256, "hop": 64, "channels": 16, "dilations": (1, 2),
                       "input_max_hz": 20000.0}], "power")


def test_a_cut_network_reads_no_phase_coherence_above_the_cut_and_no_deep_filter_joins_it(rng):
    """The phase coherence is an input too: cut, noise above 23 kHz moves a coherent
    network's mask a hundred times less than uncut. The deep filter reads every bin's phase,
    so an ensemble of cut members refuses it."""
    uncut = coherent()
    cut = build_model("bandmask-tiny", phase_coherence=True, input_max_hz=22050.0).eval()
    cut.load_state_dict(uncut.state_dict())
    wave = 0.1 * torch.randn(1, RATE // 2)
    floored = wave + above(23000.0, rng)
    with torch.no_grad():
        moved = [(net.predict_mask(net.spectrum(floored)) - net.predict_mask(net.spectrum(wave)))
                 .abs().max().item() for net in (cut, uncut)]
    assert moved[0] < 0.01 * moved[1], moved
    member = {"n_fft": 256, "hop": 64, "channels": 16, "dilations": (1, 2),
              "input_max_hz": 22050.0}
    with pytest.raises(ValueError, match="deep filter reads the whole band"):
        MaskEnsemble([member, member], "power", deep_filter=True)
