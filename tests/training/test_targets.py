"""The target check reads the benchmark rows the right way round for every metric."""

from __future__ import annotations

import math

from training.targets import DIRECTION, check_targets, targets_markdown


def rows(**debleed: float) -> dict:
    base = {metric: 0.0 for metric in DIRECTION}
    oracle = {**base, "delta_si_sdr": 4.0, "bleed_reduction_db": 60.0, "hit_level_error_db": 10.0,
              "hit_level_bias_db": -10.0, "tom_kick_leakage_db": -70.0}
    model = {**base, **debleed}
    return {name: {m: {"mean": v, "median": v} for m, v in values.items()}
            for name, values in (("debleed", model), ("gate (oracle threshold)", oracle),
                                 ("thesis baseline", base))}


def test_directions_and_targets():
    records = {r["metric"]: r for r in check_targets(rows(
        delta_si_sdr=13.0, bleed_reduction_db=20.0, hit_level_error_db=0.4,
        hit_level_bias_db=1.0, tom_kick_leakage_db=-35.0, cymbal_leakage_db=-3.0))}
    assert records["delta_si_sdr"]["target_met"] is True          # 13 >= 4 + 8
    assert records["bleed_reduction_db"]["beats_oracle_gate"] is False
    assert records["hit_level_error_db"]["beats_oracle_gate"] is True  # lower is better
    assert records["hit_level_bias_db"]["beats_oracle_gate"] is True   # |1| < |-10|
    assert records["tom_kick_leakage_db"]["target_met"] is True
    assert records["tom_kick_leakage_db"]["beats_oracle_gate"] is False
    assert records["cymbal_leakage_db"]["target_met"] is False     # -3 > -15
    assert "ghost_level_error_db" in records and "**no**" in targets_markdown(list(records.values()))


def test_missing_metric_is_undecided():
    table = rows(delta_si_sdr=12.5)
    del table["debleed"]["ghost_level_error_db"]
    ghost = next(r for r in check_targets(table) if r["metric"] == "ghost_level_error_db")
    assert ghost["beats_oracle_gate"] is None and ghost["target_met"] is None


def test_ideal_mask_column_when_the_row_exists():
    table = rows(delta_si_sdr=12.5)
    table["ideal mask (oracle)"] = {"delta_si_sdr": {"mean": 11.25, "median": 11.0}}
    records = check_targets(table)
    assert records[1]["ideal_mask"] == 11.25
    assert "| delta_si_sdr | 12.50 | 4.00 | 0.00 | 11.25 |" in targets_markdown(records)


def test_clean_snare_column_shows_where_the_gate_beats_the_right_answer():
    table = rows(tom_kick_leakage_db=-31.0)
    assert "clean snare itself" not in targets_markdown(check_targets(table))
    table["clean snare (perfect output)"] = {
        metric: {"mean": value, "median": value}
        for metric, value in (("bleed_reduction_db", 25.0), ("tom_kick_leakage_db", -25.0),
                              ("hit_level_error_db", 0.0), ("delta_si_sdr", 90.0))}
    records = {r["metric"]: r for r in check_targets(table)}
    assert records["bleed_reduction_db"]["oracle_gate_beats_perfect"] is True   # 60 > 25
    assert records["tom_kick_leakage_db"]["oracle_gate_beats_perfect"] is True  # -70 < -25
    assert records["hit_level_error_db"]["oracle_gate_beats_perfect"] is False  # 10 > 0
    assert records["tom_kick_leakage_db"]["target_beyond_perfect"] is True      # -25 > -30
    assert records["hit_level_error_db"]["target_beyond_perfect"] is False      # 0 <= 0.5
    markdown = targets_markdown(list(records.values()))
    assert "| tom_kick_leakage_db | -31.00 | -70.00 | 0.00 | n/a | -25.00 | **no** |" in markdown
    assert "better than the clean snare itself on bleed_reduction_db, tom_kick_leakage_db:" in markdown
    assert "misses the target on tom_kick_leakage_db:" in markdown


def test_undefined_oracle_gate_leaves_the_relative_target_undecided():
    """A NaN oracle-gate mean gave the target ">= nan (oracle gate + 8)", missed ("**no**")."""
    table = rows(delta_si_sdr=12.5)
    table["gate (oracle threshold)"]["delta_si_sdr"]["mean"] = math.nan
    record = next(r for r in check_targets(table) if r["metric"] == "delta_si_sdr")
    assert record["target"] == "n/a" and record["target_met"] is None
    line = targets_markdown([record]).splitlines()[2]
    assert line.endswith("| yes | n/a | n/a |") and "nan" not in line


def test_a_tie_reads_as_a_tie_not_a_shortfall():
    """debleed and the thesis model both losing 0 % of the hits read as a bold "**no**" in
    the "beats thesis" column; equal means are a tie, for a closest-to-zero metric too."""
    table = rows(hits_lost_pct=0.0, hit_level_bias_db=0.5, delta_si_sdr=4.0)
    table["thesis baseline"]["hit_level_bias_db"]["mean"] = -0.5
    records = {r["metric"]: r for r in check_targets(table)}
    assert records["hits_lost_pct"]["beats_thesis"] == "tie"
    assert records["hit_level_bias_db"]["beats_thesis"] == "tie"      # |0.5| = |-0.5|
    assert records["delta_si_sdr"]["beats_oracle_gate"] == "tie"      # 4 = 4
    assert records["hit_level_error_db"]["beats_oracle_gate"] is True  # 0 < 10: still yes
    markdown = targets_markdown(list(records.values()))
    assert "| hits_lost_pct | 0.00 | 0.00 | 0.00 | n/a | n/a | tie | tie |  |  |" in markdown
    assert "| delta_si_sdr | 4.00 | 4.00 | 0.00 | n/a | n/a | tie | yes |" in markdown
