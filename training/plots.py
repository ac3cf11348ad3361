"""Training plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from denoiser.outfiles import atomic_output  # noqa: E402


def save_figure(fig: "plt.Figure", path: Path) -> Path:
    """Save atomically as PNG and close the figure."""
    try:
        with atomic_output(path, ".png") as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    finally:
        plt.close(fig)
    return path


def plot_history(history: list[dict[str, float]], path: Path) -> Path:
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_db) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax_loss.plot(epochs, [h["valid_loss"] for h in history], "o-", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    ax_db.plot(epochs, [h["valid_sisdr"] for h in history], "o-", label="SI-SDR")
    ax_db.plot(epochs, [h["valid_snr"] for h in history], "o-", label="SNR")
    ax_db.set(xlabel="epoch", ylabel="dB", title="Validation")
    ax_db.legend()
    ax_db.grid(alpha=0.3)
    return save_figure(fig, path)
