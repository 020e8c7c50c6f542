"""benchmarks/run.py: every ratio of the speed issue's runs is reported with its spread over the runs."""

from __future__ import annotations

from benchmarks import run as bench


def one_run(numpy_ratio: float, gpt_speedup: float) -> dict:
    return {
        "mlp_sizes": {"sizes": {"2-16-16-1": {"traced_s": 1e-4, "traced_over_numpy": {"median": numpy_ratio, "min": 0.0,
                                                                                      "max": 9.0}}}},
        "gpt": {"reference_s": 0.3, "eager_speedup_vs_reference": gpt_speedup, "trace_s": {6: 0.1, 8: 0.2}},
    }  # fmt: skip


def test_ratios_are_found_by_key_and_a_per_round_ratio_counts_by_its_median() -> None:
    assert bench.ratios(one_run(1.25, 4.0)) == {
        "mlp_sizes.sizes.2-16-16-1.traced_over_numpy": 1.25,
        "gpt.eager_speedup_vs_reference": 4.0,
    }


def test_the_spread_gives_each_run_and_the_median_min_and_max_across_runs() -> None:
    rows = bench.spread([one_run(1.5, 4.0), one_run(1.0, 3.0), one_run(2.0, 5.0)])
    assert rows["mlp_sizes.sizes.2-16-16-1.traced_over_numpy"] == {
        "runs": [1.5, 1.0, 2.0], "median": 1.5, "min": 1.0, "max": 2.0}  # fmt: skip
    assert rows["gpt.eager_speedup_vs_reference"]["median"] == 4.0
