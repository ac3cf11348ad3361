"""Presentation shared by ``debleed evaluate`` and ``debleed bench``: Markdown tables of
aggregated metrics, JSON that stays valid with undefined metrics, mel spectrogram
figures and the self-contained HTML report.

Kept apart from ``metrics`` (pure numbers) and from the runners (what is processed), so
both runners print the same columns in the same units.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal

from denoiser.outfiles import replace_entries, staged_into, write_text_atomic

from .errors import DatasetError

# (metric key, column header) of the Markdown tables: the SPEC 5 metrics.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("si_sdr", "SI-SDR dB"),
    ("delta_si_sdr", "ΔSI-SDR dB"),
    ("sdr", "SDR dB"),
    ("bleed_reduction_db", "bleed reduction dB"),
    ("hit_level_error_db", "hit level err dB"),
    ("hit_level_bias_db", "hit level bias dB"),
    ("ghost_level_error_db", "ghost level err dB"),
    ("hits_lost_pct", "hits lost %"),
    ("cymbal_leakage_db", "cymbal leakage dB"),
    ("tom_kick_leakage_db", "tom/kick leakage dB"),
)


# One line per column for readers of the tables (SPEC 5; x input, s clean, y output).
LEGEND = """\
- SI-SDR, SDR (dB, higher is better): scale-invariant and plain energy-ratio SDR of y
  against s; Δ is the change from the input x.
- bleed reduction (dB, higher is better): energy of x over y where the clean snare is
  silent (its 10-ms RMS below -50 dB of the clip's peak).
- hit level err / bias (dB, 0 is perfect): per snare hit, energy of y vs s in
  [onset - 2 ms, onset + 80 ms]; mean |error| and signed mean (negative = ducked hits);
  ghost = hits of velocity <= 45.
- hits lost (%, lower is better): share of snare hits more than 6 dB below the clean
  snare in that window: hits the output has all but removed.
- cymbal leakage (dB, lower is better): energy above 5 kHz of y - s over that of x - s
  inside the hit windows; a gate scores about 0.
- tom/kick leakage (dB, lower is better): energy of y over that of x where only kick or
  toms sound: the 100 ms after kick/tom onsets that lie clear of any snare hit (200 ms
  guard), less the samples where another piece, struck before or in the region, rings
  (closed hi-hats 200 ms, open hi-hats 1 s, rides 1.5 s, crashes and chinas 2 s, anything
  else 0.5 s), where the clean snare is silent (as for bleed reduction).
"""


def json_safe(value: Any) -> Any:
    """NaN/inf become ``null`` (JSON has no NaN); numpy scalars become Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")


def check_report_folder(out: Path, folders: Sequence[str], marker: str,
                        files: Sequence[str] = ()) -> None:
    """Refuse ``out`` when it holds one of ``folders`` (which a report replaces whole) but
    not ``marker``, a file every such report writes beside them: that folder is then not an
    earlier report's (a dataset copied there, say), and a report never deletes what it did
    not make. One of ``folders`` that is a link or a file is refused whatever the marker:
    a folder cannot be renamed over it, and the report's other files, moved in before it
    failed, mixed one checkpoint's scores with another's. So is a folder named as one of
    ``files`` (``aggregate.md/``): a user's, which the report deleted whole."""
    for name in folders:
        folder = out / name
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise DatasetError(f"{folder}: a link or a file where the report writes its "
                               f"{name} folder; move it, or choose another report folder")
    for name in files:
        if (out / name).is_dir() and not (out / name).is_symlink():
            raise DatasetError(f"{out / name}: a folder where the report writes its {name} "
                               "file; move it, or choose another report folder")
    if (out / marker).is_file():
        return
    for name in folders:
        folder = out / name
        if folder.is_dir():
            raise DatasetError(f"{folder}: not made by an earlier report (no {out / marker}); "
                               "refusing to replace it, choose another report folder")


@contextmanager
def staged_report(out: Path, marker: str) -> Iterator[Path]:
    """A hidden folder to write a report into. Its files replace those of the same names in
    ``out`` only when the block ends, and it is removed if the block fails: a report is
    whole or absent (a NaN in the last clip must not leave half a report), while other
    files the user keeps in ``out`` stay. The new entries replace the old ones together
    (``replace_entries``): a move cut short (on Windows, clips.csv open in a spreadsheet)
    leaves the earlier report as it was, never one run's pages over another's audio. A
    folder is replaced only as ``check_report_folder`` allows (checked before anything
    moves), and only the earlier report's marked ``clips/`` is deleted. The missing parent
    folders made for it are removed again on failure, when still empty (``staging_folder``).

    An existing ``out`` (through a link too) is staged inside it, as ``staged_output``
    stages a dataset, and its entries moved up: it may be a mount point or a link to
    another disk (a Docker bind mount), which a folder beside it could not move into
    (EXDEV, after every clip was scored), and ``--report .`` needs no writable parent. A
    new ``out`` is staged beside it and renamed into place."""

    def move_up(staging: Path) -> None:
        entries = sorted(staging.iterdir(), key=lambda child: not child.is_dir())
        check_report_folder(out, [c.name for c in entries if c.is_dir()], marker,
                            [c.name for c in entries if not c.is_dir()])
        replace_entries(out, entries)  # folders first: the files say the report is whole

    with staged_into(out, marker, move_up) as staging:
        yield staging


def _cell(value: float | None, digits: int = 2) -> str:
    """``value`` rounded for a table; a value that rounds to zero prints as 0, not -0."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{round(value, digits) + 0.0:.{digits}f}"


def coverage_note(rows: Mapping[str, Mapping[str, Mapping[str, float]]], clips: int,
                  columns: Sequence[tuple[str, str]] = COLUMNS) -> str:
    """The columns whose means cover fewer than all ``clips``, as one sentence (empty when
    every mean covers every clip). A metric is undefined on some clips (SI-SDR on a
    bleed-only clip, ghost error without ghost notes, tom/kick leakage without a kick or
    tom struck in silence); a table headed "4 clips" read as if each mean were over 4."""
    parts = []
    for key, title in columns:
        counts = sorted({int(table[key]["count"]) for table in rows.values()
                         if key in table and "count" in table[key]})
        if counts and counts[0] < clips:
            span = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
            parts.append(f"{title} {span}")
    return f"Means over fewer of the {clips} clips: {', '.join(parts)}." if parts else ""


def table_with_coverage(rows: Mapping[str, Mapping[str, Mapping[str, float]]],
                        clips: int) -> str:
    """``markdown_table`` with its ``coverage_note`` under it, when some mean covers fewer
    than all ``clips`` (tom/kick leakage rests on 19 of the benchmark's 40 test clips)."""
    note = coverage_note(rows, clips)
    return markdown_table(rows) + (f"\n{note}\n" if note else "")


def markdown_table(rows: Mapping[str, Mapping[str, Mapping[str, float]]],
                   columns: Sequence[tuple[str, str]] = COLUMNS) -> str:
    """One row per version/system, one column per metric, cells ``mean / median``."""
    header = "| system | " + " | ".join(title for _, title in columns) + " |"
    rule = "| --- |" + " ---: |" * len(columns)
    lines = [header, rule]
    for name, table in rows.items():
        cells = []
        for key, _ in columns:
            stats = table.get(key, {})
            cells.append(f"{_cell(stats.get('mean'))} / {_cell(stats.get('median'))}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def html_table(rows: Mapping[str, Mapping[str, Mapping[str, float]]],
               columns: Sequence[tuple[str, str]] = COLUMNS) -> str:
    """The same table as ``markdown_table``, as HTML for the report."""
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in columns)
    body = []
    for name, table in rows.items():
        cells = "".join(
            f"<td>{_cell(table.get(key, {}).get('mean'))} / "
            f"{_cell(table.get(key, {}).get('median'))}</td>" for key, _ in columns)
        body.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    return (f"<table><thead><tr><th>system</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def clip_html_table(versions: Mapping[str, Mapping[str, float]],
                    columns: Sequence[tuple[str, str]] = COLUMNS) -> str:
    """Per-clip metrics of each version (single values, no mean/median)."""
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in columns)
    body = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(f"<td>{_cell(scores.get(key))}</td>" for key, _ in columns) + "</tr>"
        for name, scores in versions.items())
    return f"<table><thead><tr><th>version</th>{head}</tr></thead><tbody>{body}</tbody></table>"


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float,
                   fmax: float) -> np.ndarray:
    """Triangular filters ``(n_mels, n_fft // 2 + 1)`` evenly spaced on the mel scale."""
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    rising = (freqs[None, :] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    falling = (edges[2:, None] - freqs[None, :]) / (edges[2:] - edges[1:-1])[:, None]
    return np.maximum(0.0, np.minimum(rising, falling))


def mel_spectrogram_db(samples: np.ndarray, sample_rate: int, n_fft: int = 2048,
                       hop: int = 512, n_mels: int = 128, fmin: float = 20.0) -> np.ndarray:
    """Mel power spectrogram in dB (absolute, unnormalised: versions stay comparable).

    A clip shorter than one frame is zero-padded to it: scipy shortened the frame to the
    clip but kept the overlap, refused the pair, and ``evaluate --report`` ended in a
    traceback on any clip under 2048 samples."""
    samples = np.asarray(samples, dtype=np.float64)
    samples = np.pad(samples, (0, max(0, n_fft - samples.size)))
    _, _, spec = signal.stft(samples, fs=sample_rate,
                             nperseg=n_fft, noverlap=n_fft - hop, boundary="zeros")
    power = np.abs(spec) ** 2
    mel = mel_filterbank(sample_rate, n_fft, n_mels, fmin, sample_rate / 2) @ power
    return 10.0 * np.log10(np.maximum(mel, 1e-12))


def spectrogram_figure(path: Path, versions: Mapping[str, np.ndarray], sample_rate: int,
                       title: str, dynamic_range_db: float = 80.0, fmin: float = 20.0) -> Path:
    """One PNG, one row per version, all on the SAME colour scale so levels compare.

    The y axis is mel-spaced with ticks labelled in Hz, the x axis in seconds. Written to
    a temporary name first, then renamed (atomic like every debleed output).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    specs = {name: mel_spectrogram_db(x, sample_rate, fmin=fmin) for name, x in versions.items()}
    vmax = max(float(s.max()) for s in specs.values())
    vmin = vmax - dynamic_range_db
    duration = len(next(iter(versions.values()))) / sample_rate
    mel_lo, mel_hi = float(hz_to_mel(fmin)), float(hz_to_mel(sample_rate / 2))
    ticks_hz = [f for f in (100, 500, 1000, 2000, 5000, 10000, 20000) if fmin <= f <= sample_rate / 2]
    fig, axes = plt.subplots(len(specs), 1, figsize=(10, 2.2 * len(specs)), sharex=True,
                             constrained_layout=True)
    axes = np.atleast_1d(axes)
    image = None
    for ax, (name, spec) in zip(axes, specs.items()):
        image = ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
                          extent=(0.0, duration, mel_lo, mel_hi), interpolation="nearest")
        ax.set_yticks(hz_to_mel(ticks_hz))
        ax.set_yticklabels([f"{f // 1000}k" if f >= 1000 else str(f) for f in ticks_hz])
        ax.set_ylabel("Hz (mel)")
        ax.set_title(name, loc="left", fontsize=10)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(title, fontsize=11)
    fig.colorbar(image, ax=list(axes), label="dB", shrink=0.9)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    try:
        fig.savefig(tmp, dpi=80, format="png")
        tmp.replace(path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 1200px; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
thead th { background: #f0f0f0; } tbody th { text-align: left; }
section { border-top: 2px solid #ddd; margin-top: 1.5em; padding-top: 0.5em; }
.players { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 0.5em; }
.players figure { margin: 0; } .players figcaption { font-size: 0.85em; font-weight: 600; }
audio { width: 100%; } img { max-width: 100%; }
"""


def html_report(title: str, summary: Mapping[str, str], aggregate_rows: Mapping[str, Any],
                clips: Sequence[Mapping[str, Any]], clip_count: int) -> str:
    """A self-contained page: inline CSS, relative links only, no scripts.

    ``clips`` items: ``id``, ``metrics`` ({version: scores}), ``image`` (relative path) and
    ``audio`` ({version: relative path}); ``clip_count`` the clips the aggregate is over.
    """
    esc = html.escape
    facts = "".join(f"<li><b>{esc(k)}</b>: {esc(str(v))}</li>" for k, v in summary.items())
    index = " ".join(f'<a href="#clip-{esc(c["id"])}">{esc(c["id"])}</a>' for c in clips)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1><ul>{facts}</ul>",
        "<h2>Aggregate (mean / median over clips)</h2>", html_table(aggregate_rows),
        f"<p>{esc(note)}</p>" if (note := coverage_note(aggregate_rows, clip_count)) else "",
        "<ul>" + "".join(f"<li>{esc(' '.join(item.split()))}</li>"
                         for item in LEGEND.strip().removeprefix("- ").split("\n- ")) + "</ul>",
        '<p>Files: <a href="aggregate.md">aggregate.md</a>, <a href="aggregate.json">aggregate.json</a>, '
        '<a href="clips.csv">clips.csv</a>, <a href="clips.json">clips.json</a></p>',
        f"<h2>Clips</h2><p>{index}</p>",
    ]
    for clip in clips:
        players = "".join(
            f'<figure><figcaption>{esc(name)}</figcaption>'
            f'<audio controls preload="none" src="{esc(src)}"></audio></figure>'
            for name, src in clip["audio"].items())
        parts.append(
            f'<section id="clip-{esc(clip["id"])}"><h3>{esc(clip["id"])}</h3>'
            f'{clip_html_table(clip["metrics"])}<div class="players">{players}</div>'
            f'<img src="{esc(clip["image"])}" alt="mel spectrograms of {esc(clip["id"])}"></section>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
