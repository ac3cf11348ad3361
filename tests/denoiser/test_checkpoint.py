"""Checkpoints rebuild their model alone and fail clearly when they cannot."""

from __future__ import annotations

import re

import pytest
import torch

from denoiser.checkpoint import (FORMAT_VERSION, load_checkpoint, rebuild, save_checkpoint,
                                 serialize)
from denoiser.errors import ModelError
from denoiser.models import PRESETS, build_model


@pytest.mark.parametrize("preset", ["bandmask-tiny", "thesis-tiny", "identity"])
def test_round_trip_gives_same_outputs(tmp_path, preset):
    torch.manual_seed(0)
    model = build_model(preset).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, {"lr": 1e-3}, {"note": "x"})
    loaded, info = load_checkpoint(path)
    assert info["model_name"] == model.name and info["training_config"] == {"lr": 1e-3}
    wave = torch.randn(1, model.sample_rate // 4)
    with torch.no_grad():
        assert torch.allclose(model(wave), loaded(wave), atol=1e-6)


def test_future_version_and_corrupt_files(tmp_path):
    package = serialize(build_model("bandmask-tiny"))
    package["format_version"] = FORMAT_VERSION + 1
    torch.save(package, tmp_path / "future.pt")
    with pytest.raises(ModelError, match="newer"):
        load_checkpoint(tmp_path / "future.pt")
    (tmp_path / "corrupt.pt").write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(ModelError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "corrupt.pt")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(ModelError, match="not a debleed checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(ModelError, match="no such"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("field,value", [("format_version", "2"), ("format_version", None),
                                         ("format_version", True), ("model_kwargs", [1]),
                                         ("model_kwargs", None), ("model_name", ["bandmask"]),
                                         ("state_dict", [1, 2])])
def test_fields_of_the_wrong_type_are_a_model_error(tmp_path, field, value):
    package = serialize(build_model("bandmask-tiny"))
    package[field] = value
    torch.save(package, tmp_path / "odd.pt")
    with pytest.raises(ModelError, match=f"{field}|named tensors"):
        load_checkpoint(tmp_path / "odd.pt")


def test_weights_that_are_not_finite_are_refused(tmp_path):
    package = serialize(build_model("bandmask-tiny"))
    name = next(k for k, v in package["state_dict"].items() if v.is_floating_point())
    package["state_dict"][name] = torch.full_like(package["state_dict"][name], float("nan"))
    torch.save(package, tmp_path / "diverged.pt")
    with pytest.raises(ModelError, match=f"{name}.*NaN/inf"):
        load_checkpoint(tmp_path / "diverged.pt")


def test_unknown_kwargs_warn_but_load(tmp_path):
    package = serialize(build_model("bandmask-tiny"))
    package["model_kwargs"]["from_the_future"] = 3
    torch.save(package, tmp_path / "m.pt")
    with pytest.warns(UserWarning, match="from_the_future"):
        load_checkpoint(tmp_path / "m.pt")


def test_presets_build_and_stay_within_budget():
    for name in PRESETS:
        model = build_model(name)
        assert model.parameter_count() < 2_000_000, name
    with pytest.raises(ModelError):
        build_model("nope")


@pytest.mark.parametrize("kwargs, message", [({"channels": -3}, "negative dimension"),
                                             ({"nope": 1}, "unexpected keyword"),
                                             ({"n_fft": "x"}, "invalid literal")])
def test_settings_a_model_cannot_be_built_with_are_a_model_error(kwargs, message):
    """``--model-kwargs`` reaches the constructor: what it cannot build is a user error."""
    with pytest.raises(ModelError, match=f"model 'bandmask-tiny': .*{message}"):
        build_model("bandmask-tiny", **kwargs)


def test_growing_a_checkpoint_with_the_frame_gate(tmp_path):
    """``--init`` + ``--model-kwargs``: old weights kept, the new frame gate starts open."""
    from denoiser.models.bandmask import FRAME_GATE_OPEN

    torch.manual_seed(0)
    model = build_model("bandmask-tiny").eval()
    path = save_checkpoint(tmp_path / "m.pt", model)
    grown, _ = load_checkpoint(path, overrides={"frame_gate": True})
    assert grown.init_kwargs["frame_gate"] is True
    assert grown.frame_gate is not None and model.frame_gate is None
    for name, value in model.state_dict().items():
        assert torch.equal(grown.state_dict()[name], value), name
    wave = torch.randn(1, model.sample_rate // 4)
    with torch.no_grad():
        ratio = grown(wave).norm() / model(wave).norm()
    assert ratio.item() == pytest.approx(torch.sigmoid(torch.tensor(FRAME_GATE_OPEN)).item(), rel=1e-4)
    # the grown model saves and loads like any other
    again, _ = load_checkpoint(save_checkpoint(tmp_path / "g.pt", grown))
    with torch.no_grad():
        assert torch.allclose(again(wave), grown(wave), atol=1e-6)
    with pytest.raises(ModelError, match="no arguments"):
        load_checkpoint(path, overrides={"wings": 2})
    with pytest.raises(ModelError, match="do not fit"):
        load_checkpoint(tmp_path / "g.pt", overrides={"channels": 7})


@pytest.mark.parametrize("kwargs, message", [({"sample_rate": 0}, "sample rate 0 Hz"),
                                             ({"sample_rate": -48000}, "sample rate -48000 Hz"),
                                             ({"sample_rate": 100}, "sample rate 100 Hz"),
                                             ({"hop": 0}, "hop must be"),
                                             ({"hop": 200}, "hop must be")])
def test_a_checkpoint_with_an_impossible_rate_or_hop_is_a_model_error(tmp_path, kwargs, message):
    """Such a checkpoint used to load and fail while denoising with a traceback (a zero
    division, soxr, torch.stft), or resample every track to 100 Hz and back."""
    package = serialize(build_model("bandmask-tiny"))
    package["model_kwargs"].update(kwargs)
    torch.save(package, tmp_path / "odd.pt")
    with pytest.raises(ModelError, match=f"model 'bandmask.*{message}"):
        load_checkpoint(tmp_path / "odd.pt")
    with pytest.raises(ModelError, match=message):
        build_model("bandmask-tiny", **kwargs)


def _training_state(model) -> dict:
    """What ``Trainer.state`` writes as ``last.pt``: the checkpoint nested under ``model``."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return {"model": serialize(model, {"lr": 1e-3}), "optimizer": optimizer.state_dict(),
            "scheduler": {}, "epoch": 3, "best": 0.5, "bad_epochs": 0, "batches_done": 30,
            "history": [], "torch_rng": torch.get_rng_state(), "numpy_rng": "{}"}


def test_training_state_is_named_and_points_to_best(tmp_path):
    """``last.pt`` given as a model says what it is and where the model is, in one line."""
    run = tmp_path / "run"
    run.mkdir()
    torch.save(_training_state(build_model("bandmask-tiny")), run / "last.pt")
    with pytest.raises(ModelError) as caught:
        load_checkpoint(run / "last.pt")
    message = str(caught.value)
    assert "\n" not in message and "training state" in message
    assert str(run / "best.pt") in message and "debleed train --resume" in message
    torch.save({"weights": 1, "epoch": 2}, tmp_path / "foreign.pt")
    with pytest.raises(ModelError, match="lacks .*: not a debleed checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_rebuild_names_a_training_state_with_or_without_its_file(tmp_path):
    """The one training-state check lives in ``rebuild``: without a source file it points
    to the run folder's best.pt, with one it names that best.pt."""
    state = _training_state(build_model("bandmask-tiny"))
    with pytest.raises(ModelError, match=r"^a debleed training state .*best.pt from the same"):
        rebuild(state)
    with pytest.raises(ModelError) as caught:
        rebuild(state, source=tmp_path / "run" / "last.pt")
    assert str(caught.value).startswith(f"{tmp_path / 'run' / 'last.pt'}: a debleed training")
    assert str(tmp_path / "run" / "best.pt") in str(caught.value)


def test_denoise_cli_names_a_training_state(tmp_path):
    """``debleed denoise --model run/last.pt`` is one ``Error:`` line pointing to best.pt."""
    import numpy as np
    import soundfile as sf
    from click.testing import CliRunner

    from debleed.cli.main import cli

    torch.save(_training_state(build_model("bandmask-tiny")), tmp_path / "last.pt")
    sf.write(tmp_path / "snare.wav", np.zeros(4800, dtype=np.float32), 48000)
    result = CliRunner().invoke(cli, ["denoise", "--model", str(tmp_path / "last.pt"),
                                      "--device", "cpu", str(tmp_path / "snare.wav")])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert "training state" in lines[0] and "best.pt" in lines[0]


def _damaged(package: dict, damage: str) -> dict:
    """``package`` with one of the faults ``rebuild`` refuses."""
    if damage == "future":
        package["format_version"] = FORMAT_VERSION + 1
    elif damage == "nan":
        name = next(k for k, v in package["state_dict"].items() if v.is_floating_point())
        package["state_dict"][name] = torch.full_like(package["state_dict"][name], float("nan"))
    elif damage == "unknown model":
        package["model_name"] = "no-such-model"
    else:  # weights that do not fit: one of them missing
        package["state_dict"].pop(next(iter(package["state_dict"])))
    return package


@pytest.mark.parametrize("damage, message", [("future", "newer"), ("nan", "NaN/inf"),
                                             ("unknown model", "unknown model"),
                                             ("misfit", "do not fit")])
def test_rebuild_errors_name_the_file_once(tmp_path, damage, message):
    """``denoise --model``, ``soup`` and ``ensemble`` said what was wrong, not with which of
    their checkpoints; a training state's message, which names its file, is not doubled."""
    path = tmp_path / "m.pt"
    torch.save(_damaged(serialize(build_model("bandmask-tiny")), damage), path)
    with pytest.raises(ModelError, match=message) as caught:
        load_checkpoint(path)
    assert str(caught.value).startswith(f"{path}: ") and str(caught.value).count(str(path)) == 1
    torch.save(_training_state(build_model("bandmask-tiny")), tmp_path / "last.pt")
    with pytest.raises(ModelError) as caught:
        load_checkpoint(tmp_path / "last.pt")
    assert str(caught.value).count(str(tmp_path / "last.pt")) == 1


@pytest.mark.parametrize("command", ["soup", "ensemble"])
def test_soup_and_ensemble_name_the_checkpoint_they_refuse(tmp_path, command):
    from click.testing import CliRunner

    from debleed.cli.main import cli

    good = save_checkpoint(tmp_path / "good.pt", build_model("bandmask-tiny"))
    future = tmp_path / "future.pt"
    torch.save(_damaged(serialize(build_model("bandmask-tiny")), "future"), future)
    result = CliRunner().invoke(cli, [command, str(good), str(future), "-o",
                                      str(tmp_path / "out.pt")])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith(f"Error: {future}: checkpoint format"), lines


def test_a_folder_given_as_checkpoint_is_named_as_one(tmp_path):
    """``--model runs/x`` (the run folder, not its best.pt) said "no such checkpoint"."""
    with pytest.raises(ModelError, match=re.escape(f"{tmp_path}: is a folder, not a checkpoint")):
        load_checkpoint(tmp_path)


def test_weights_that_do_not_fit_say_which(tmp_path):
    """``--model-kwargs '{"channels": 16}'`` on a checkpoint of another width ended with
    torch's first line, "Error(s) in loading state_dict for BandMaskNet:", naming nothing."""
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, build_model("bandmask-tiny"))
    with pytest.raises(ModelError, match=r"checkpoint weights do not fit model bandmask: "
                                         r"size mismatch for \S+"):
        load_checkpoint(path, overrides={"channels": 24})
