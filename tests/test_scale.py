"""The driver-scale benchmark runs a real small search and reports its figures (no timing assertions)."""

import json

import pytest

from tools import scale

FIGURES = {
    "config",
    "trials",
    "errored",
    "stopped_early",
    "reports",
    "wall_s",
    "trial_work_s",
    "report_wait_s",
    "outside_trials_share",
    "outside_trials_ms_per_trial",
    "searcher_s",
    "searcher_share",
    "driver_rss_before_mb",
    "driver_rss_peak_mb",
    "driver_rss_growth_mb",
    "driver_rss_search_growth_mb",
    "driver_maxrss_mb",
    "tables_s",
    "tables_ms_per_result",
    "tables_rows_per_result",
    "minimum_s",
    "wall_to_minimum",
}


def test_a_small_search_reports_the_driver_figures(tmp_path, capsys):
    out = tmp_path / "scale.json"
    argv = ["--trials", "5", "--iterations", "2", "--sleep", "0", "--concurrency", "2", "--tpe-trials", "3", "--json", str(out)]
    assert scale.main(argv) == 0
    result = json.loads(out.read_text())
    assert set(result) == {"5"}
    figures = result["5"]
    assert set(figures) == FIGURES
    assert figures["trials"] == 5 and figures["errored"] == 0
    assert 5 <= figures["reports"] <= 10 and 0 <= figures["stopped_early"] <= 4
    assert figures["trial_work_s"] >= 0 and figures["report_wait_s"] >= 0 and 0 < figures["outside_trials_share"] <= 1
    assert figures["searcher_s"] > 0 and figures["driver_rss_peak_mb"] >= figures["driver_rss_before_mb"] > 0
    assert figures["config"] == {"trials": 5, "iterations": 2, "sleep_s": 0.0, "concurrency": 2, "seed": 0, "tpe_trials": 3}
    assert "[scale] 5 trials (" in capsys.readouterr().out


def test_growth_compares_the_largest_count_with_the_smallest():
    small = {
        "trials": 100,
        "wall_s": 10.0,
        "outside_trials_ms_per_trial": 50.0,
        "searcher_s": 1.0,
        "tables_s": 1.0,
        "tables_ms_per_result": 2.5,
        "tables_rows_per_result": 10.0,
        "driver_rss_peak_mb": 900.0,
        "driver_rss_growth_mb": 10.0,
        "driver_rss_search_growth_mb": 8.0,
    }
    large = dict(
        small, trials=1000, wall_s=120.0, searcher_s=30.0, tables_s=40.0, driver_rss_peak_mb=990.0, driver_rss_growth_mb=0.0
    )
    assert scale.growth(small, dict(large, driver_rss_growth_mb=55.0, driver_rss_search_growth_mb=44.0))[
        "rss_mb_per_1000_trials"
    ] == {"peak": pytest.approx(50), "search": pytest.approx(40)}
    ratios = scale.growth(small, dict(large))["ratios"]
    assert ratios["trials"] == 10 and ratios["wall_s"] == 12 and ratios["searcher_s_per_trial"] == pytest.approx(3)
    assert ratios["driver_rss_peak_mb"] == pytest.approx(1.1) and ratios["driver_rss_growth_mb"] == 0
    assert scale.growth(dict(small, driver_rss_growth_mb=0.0), large)["ratios"]["driver_rss_growth_mb"] is None
    assert "100 -> 1000 trials (10.00x)" in scale.describe_growth(scale.growth(small, large))


def test_the_size_table_gives_each_count_its_ratio_to_the_theoretical_minimum():
    one = {
        "trials": 100,
        "wall_s": 12.0,
        "minimum_s": 3.0,
        "wall_to_minimum": 4.0,
        "outside_trials_ms_per_trial": 379.0,
        "tables_ms_per_result": 1.25,
        "tables_rows_per_result": 9.5,
        "driver_rss_growth_mb": 21.0,
        "driver_rss_search_growth_mb": 15.0,
    }
    lines = scale.describe_sizes({"100": one, "1000": dict(one, trials=1000, wall_to_minimum=None)}).splitlines()
    assert lines[1] == "[scale] 100 | 12.0 | 3.0 | 4.00x | 379 | 1.25 | 9.5 | 21 | 15"
    assert lines[0].endswith("| tables rows/result | RSS growth MB (peak) | (at the search's end)") and " | n/a | " in lines[2]


def test_the_minimum_is_the_trials_work_over_the_slots():
    class Result:
        def __init__(self, work_s):
            self.metrics, self.error = {"work_s": work_s, "busy_s": work_s, "training_iteration": 2}, None

    class Rss:
        start_mb, peak_mb = 100.0, 110.0

    config = scale.ScaleConfig(trials=4, iterations=2, concurrency=2)
    one = scale.figures(config, [Result(1.0)] * 4, 5.0, Rss(), 0.5)
    assert one["minimum_s"] == 2.0 and one["wall_to_minimum"] == 2.5 and one["outside_trials_ms_per_trial"] == 1500


def test_repeated_runs_give_each_figure_its_median():
    config = {"trials": 100, "seed": 0}
    runs = [
        {"config": config, "trials": 100, "wall_s": 20.0, "outside_trials_ms_per_trial": 826.0, "wall_to_minimum": None},
        {"config": config, "trials": 100, "wall_s": 14.0, "outside_trials_ms_per_trial": 469.0, "wall_to_minimum": 4.5},
        {"config": config, "trials": 100, "wall_s": 15.0, "outside_trials_ms_per_trial": 554.0, "wall_to_minimum": 5.5},
    ]
    median = scale.median_figures(runs)
    assert median == {
        "config": config,
        "trials": 100,
        "wall_s": 15.0,
        "outside_trials_ms_per_trial": 554.0,
        "wall_to_minimum": 5.0,  # of the runs that have one
        "runs": runs,
    }
    assert scale.median_figures(runs[:1]) == runs[0]


def test_score_peaks_at_the_best_learning_rate_and_rises_with_iterations():
    best = scale.score({"learning_rate": scale.BEST_LEARNING_RATE}, 3)
    assert best > scale.score({"learning_rate": 1e-2}, 3) and best > scale.score({"learning_rate": 1e-4}, 3)
    assert scale.score({"learning_rate": 1e-3}, 1) < best < 1 and scale.score({"learning_rate": 1e-4}, 1) > 0.5


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--trials", "0"], "error: --trials 0 is invalid"),
        (["--sleep", "-1"], "error: --sleep -1.0 is invalid"),
        (["--sleep", "nan"], "error: --sleep nan is invalid: expected finite seconds >= 0"),
        (["--sleep", "inf"], "error: --sleep inf is invalid: expected finite seconds >= 0"),
        (["--concurrency", "0"], "error: --concurrency 0 is invalid"),
        (["--tpe-trials", "-1"], "error: --tpe-trials -1 is invalid: expected an integer >= 0"),
        (["--json", "/no/such/dir/x.json"], "error: --json /no/such/dir/x.json: folder /no/such/dir does not exist"),
        (["--json", "/"], "error: --json /: is a folder; give a file name for the figures"),
        (["--trials", "many"], "error: python -m tools.scale: argument --trials: invalid int value: 'many'; see --help"),
        (["--repeats", "0"], "error: --repeats 0 is invalid: expected an integer >= 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert scale.main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message)
