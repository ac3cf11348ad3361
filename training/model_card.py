"""The model card written next to a checkpoint: what it was trained on, how long, and
what it scores, so a checkpoint found on a disk explains itself."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from denoiser.outfiles import write_text_atomic


def describe_architecture(info: dict[str, Any]) -> str:
    """One readable line: an ensemble lists its combine and members, not a nested dict."""
    name, kwargs = info.get("model_name"), info.get("model_kwargs") or {}
    members = kwargs.get("members") if name == "ensemble" else None
    if not members:
        return f"`{name}` {kwargs}"
    distinct = [dict(m) for i, m in enumerate(members) if m not in members[:i]]
    extras = []
    if kwargs.get("combine") == "power":
        extras.append(f"groups {kwargs.get('groups')}")
        if kwargs.get("min_below_hz"):
            extras.append(f"smallest mask below {kwargs['min_below_hz']:g} Hz")
        if kwargs.get("min_above_hz"):
            extras.append(f"smallest mask above {kwargs['min_above_hz']:g} Hz")
        if kwargs.get("group_weights"):
            extras.append("learned group weights per bin")
    if kwargs.get("deep_filter"):
        extras.append(f"deep filter above {kwargs.get('filter_min_hz'):g} Hz "
                      f"({kwargs.get('filter_taps')} taps)")
    return (f"`ensemble` of {len(members)} bandmask members, combine `{kwargs.get('combine')}`"
            f"{''.join(', ' + extra for extra in extras)}; member arguments: "
            f"{'; '.join(str(m) for m in distinct)}")


def render_model_card(name: str, info: dict[str, Any], history: list[dict[str, float]],
                      steps: int, data: dict[str, Any], parameters: int) -> str:
    """The card's Markdown. ``steps``: the training steps the run took in all (the trainer's
    ``batches_done``), which ``--steps-per-epoch`` times the epochs misstates once a resume
    changed it."""
    config = info.get("training_config", {})
    best = info.get("extra", {})  # best.pt's own record: after a resume that reset the best
    # (other validation clips or loss), the history's lowest loss may be another epoch's
    lines = [
        f"# Model card: {name}",
        "",
        f"- Architecture: {describe_architecture(info)}",
        f"- Parameters: {parameters:,}",
        f"- Sample rate: {info.get('sample_rate')} Hz",
        f"- debleed {info.get('debleed_version')}, torch {info.get('torch_version')}",
        f"- Loss: {config.get('loss')}, lr {config.get('lr')}, batch "
        f"{batch_text(config, history)} x {config.get('segment_seconds')} s, "
        f"seed {config.get('seed')}",
        optimizer_line(config),
        *synth_lines(config),
        *guard_lines(config),
        *cut_lines(config),
        f"- Epochs run: {len(history)}, {plural(steps, 'step')}; best epoch {best.get('epoch')}",
        f"- Training data: {describe_data(data)}; {data.get('clips', 'n/a')} clips",
        "",
        f"## Validation ({data.get('validation', 'held-out clips of the training kits')}, "
        "through the inference path)",
        "",
        "| metric | best epoch |",
        "| --- | --- |",
    ]
    for key in ("valid_loss", "valid_snr", "valid_sisdr", "valid_delta_sisdr"):
        if key in best:
            lines.append(f"| {key} | {metric_text(key, best[key])} |")
    return "\n".join(lines) + "\n"


def batch_text(config: dict[str, Any], history: list[dict[str, float]]) -> str:
    """The segments of a training step, all processes together, and how they were split:
    "4 (2 per process x 2 processes)", or each in turn where a resume changed them. An epoch
    recorded before the history kept them counts as one process of ``config``'s batch."""
    steps = [(row.get("global_batch", config.get("batch_size")), row.get("world_size", 1))
             for row in history] or [(config.get("batch_size"), 1)]
    turns = [kind for i, kind in enumerate(steps) if i == 0 or kind != steps[i - 1]]
    return ", then ".join(f"{batch}" if processes == 1 else
                          f"{batch} ({batch // processes} per process x {processes} processes)"
                          for batch, processes in turns)


def metric_text(key: str, value: float) -> str:
    """A validation metric for the card: the loss to four significant digits, as an MSE
    loss of 0.000152 showed as 0.000; the dB metrics signed, to a hundredth of a dB."""
    if key == "valid_loss" or not math.isfinite(value):
        return f"{value:.4g}"
    return f"{value:+.2f}"


def describe_data(data: dict[str, Any]) -> str:
    """Where the training clips came from: kits for synthetic data, takes for a session
    dataset (its clips have no kit, and the card said "from kits ?")."""
    takes = data.get("takes")
    if takes is None:
        return f"{data.get('source')} from kits {', '.join(data.get('kits', [])) or 'n/a'}"
    return (f"session takes from {data.get('source')}: {plural(takes['clean'], 'clean take')}, "
            f"{plural(takes['bleed'], 'bleed take')}")


def plural(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless one."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def optimizer_line(config: dict[str, Any]) -> str:
    """How the weights were stepped: the optimizer, its decay, the gradient clip and the
    plateau schedule, which the card did not name although ``train`` lets each be set.
    A run saved before ``optimizer`` was kept trained with AdamW."""
    clip = config.get("grad_clip")
    return (f"- Optimizer: {config.get('optimizer', 'adamw')}, weight decay "
            f"{config.get('weight_decay')}, gradient clip {clip if clip else 'none'}, lr x "
            f"{config.get('plateau_factor')} after {config.get('plateau_patience')} epochs "
            "without a better validation loss")


def synth_lines(config: dict[str, Any]) -> list[str]:
    """The synthesis options a run changed (``--synth``): two runs on the same kits with
    other damping or tuning ranges learn from different data."""
    if not config.get("synth"):
        return []
    return [f"- Synthesis options: {config['synth']}"]


def guard_lines(config: dict[str, Any]) -> list[str]:
    """The teacher guard, when the run had one: a fine-tune held to its starting model is not
    the same model as one trained free, even with the same loss and data."""
    if not config.get("guard_weight"):
        return []
    lines = [f"- Teacher guard: weight {config['guard_weight']}, {config.get('guard_batch_size')} "
             f"segments a step of clips with {config.get('guard_synth')}, against the output of "
             f"{config.get('guard_teacher') or config.get('init')}"]
    if config.get("guard_high_band"):
        lines.append(f"- High-band anchor: weight {config['guard_high_band']}, the training "
                     "clips above 5 kHz inside the snare hits held to the same output")
    if config.get("guard_ducking"):
        lines.append(f"- Guard ducking: weight {config['guard_ducking']}, the guard's clips "
                     "charged for every frame quieter than their clean snare")
    return lines


def cut_lines(config: dict[str, Any]) -> list[str]:
    """The share of steps read through the cut (``cut_input_share``): a model trained so was
    taught the engine's hiss-cut path as well as the whole band."""
    if not config.get("cut_input_share"):
        return []
    return [f"- Cut path: {config['cut_input_share']:g} of the training steps read only the "
            f"bins up to {config.get('cut_input_hz'):g} Hz, as the hiss cut reads a track"]


def write_model_card(path: Path, **kwargs: Any) -> Path:
    return write_text_atomic(path, render_model_card(**kwargs))
