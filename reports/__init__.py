"""The HTML report of a search run: load → figures → html, written to RUN_DIR/report/;
and the comparison of several runs on one page.

    python -m reports RUN_DIR        # or reports.build(run_dir) at the end of a run
    python -m reports compare RUN_A RUN_B [...] --out DIR

assemble() and compare.assemble_comparison() are pure (loaded Runs in, the page and its
figures out); build() and build_comparison() are the only functions that write, and each
replaces its folder atomically. The run page's sections are built in `reports.headline` (the
first) and `reports.sections` (the others), each without a number: assemble() numbers them in
the order SECTIONS lists them, so a new section is one builder and one line there.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from reports import analysis, figures, headline, page, sections
from reports.compare import assemble_comparison
from reports.load import ReportError, Run, check_whole, load
from reports.sections import Report
from runfiles.io import replace_dir, staging_dir
from runfiles.layout import RunDir, State

__all__ = ["build", "assemble", "build_comparison", "assemble_comparison", "load", "ReportError"]


def build(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write RUN_DIR/report/index.html (or OUT/index.html) and its PNGs; return the path of index.html.

    Raises ReportError when RUN_DIR is not a run directory, or a finished one whose tables lack
    trials (`reports.load.check_whole`), or OUT is not a folder a report may
    replace (absent, empty, or an earlier report); the folder is replaced at once, and left as it
    was when anything fails.
    """
    run = load(run_dir)
    check_whole(run)
    if out is not None:
        _check_out(Path(out), [run], "report")
    html, pictures = assemble(run)
    return _write_page(RunDir(run_dir).report if out is None else Path(out), html, pictures)


def build_comparison(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Write OUT/index.html comparing the runs, with its PNGs; return the path of index.html.

    Raises ReportError, before anything is written, when fewer than two runs are given, a run is
    named twice, one is not a run directory, a finished one whose tables lack trials, or one that
    has no trial that ended yet, or OUT is not a folder
    a comparison may replace (absent, empty, or an earlier comparison: index.html and PNGs only).
    OUT is replaced at once, and left as it was when anything fails.
    """
    if len(run_dirs) < 2:
        raise ReportError(
            f"compare needs at least 2 run directories, got {len(run_dirs)}" + (f" ({run_dirs[0]})" if run_dirs else "")
        )
    _refuse_a_run_named_twice(run_dirs)
    runs = [load(run_dir) for run_dir in run_dirs]
    for run in runs:
        check_whole(run)
        if not any(state in ENDED for state in run.trials.get("state", [])):
            raise ReportError(
                f"{run.run_dir}: no trial has ended there ({RunDir(run.run_dir).trials_csv.name} holds none); "
                "compare runs that each have a finished trial"
            )
    out = Path(out)
    _check_out(out, runs, "comparison")
    html, pictures = assemble_comparison(runs)
    return _write_page(out, html, pictures)


ENDED = {state.value for state in State if state.ended}
"""trials.csv's states of a trial that ended (with a value or not): a run is compared once it has one."""


def _refuse_a_run_named_twice(run_dirs: list[str | Path]) -> None:
    """ReportError naming the first run directory given twice (the same folder, however it is written)."""
    seen: dict[Path, str | Path] = {}
    for run_dir in run_dirs:
        resolved = Path(run_dir).resolve()
        if resolved in seen:
            raise ReportError(f"{seen[resolved]} and {run_dir} are the same run ({resolved}); name each run once")
        seen[resolved] = run_dir


def _check_out(out: Path, runs: list[Run], what: str) -> None:
    """ReportError unless OUT may receive a `what` ("report" or "comparison") of `runs`: a folder
    of its own, absent, empty or holding an earlier one (index.html and PNGs)."""
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out} is a file; choose a folder")
    for run in runs:
        if out.resolve() in (run.run_dir.resolve(), RunDir(run.run_dir).report.resolve()):
            raise ReportError(f"--out {out} is {run.run_dir} or its report; choose a folder of its own")
    if out.resolve() == RunDir(out.parent).report.resolve() and RunDir(out.parent).run_json.is_file():
        raise ReportError(f"--out {out} is the report of another run, {out.parent}; choose a folder of its own")
    if out.is_dir():
        others = sorted(p.name for p in out.iterdir() if p.name != "index.html" and p.suffix != ".png")
        if others:
            raise ReportError(
                f"--out {out} holds other files ({', '.join(others[:3])}); choose an empty folder or an earlier {what}'s"
            )


def _write_page(target: Path, html: str, pictures: dict) -> Path:
    """target/index.html and its figures, built in a staging folder and swapped in for target at once."""
    staging = staging_dir(target)
    try:
        for name, picture in pictures.items():
            picture.savefig(staging / name, dpi=100)
        (staging / "index.html").write_text(html, encoding="utf-8")
        replace_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / "index.html"


SECTIONS: tuple[Callable[[Report], page.Section], ...] = (
    headline.section,
    sections.leaderboard,
    sections.families,
    sections.curves,
    sections.pareto,
    sections.progress,
    sections.params,
    sections.importance,
    sections.timeline,
    sections.facts,
)
"""The run page's sections, in the order it shows them: each is numbered by its place here."""


def assemble(run: Run) -> tuple[str, dict]:
    """The page's HTML and its figures by file name (matplotlib Figures, not yet written): the banner,
    the warnings, then each of SECTIONS, numbered."""
    pictures = figures.Pictures()
    report = Report(run, analysis.headline(run), pictures.add)
    title = f"BiLSTM search report: {run.run_dir.resolve().name}"
    parts = [
        sections.status(report),
        page.warnings_list(sections.warnings(report)),
        page.numbered([build(report) for build in SECTIONS]),
    ]
    body = f"<h1>{page.esc(title)}</h1>\n" + "\n".join(part for part in parts if part)
    return page.document(title, body), pictures
