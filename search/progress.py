"""What a search prints while it runs: a header, one line per finished trial, the outcome."""

from __future__ import annotations

import sys
import time

from search.rundir import OBJECTIVE, State, best_row


class Progress:
    """Plain lines on standard output (warnings on standard error)."""

    def __init__(self, total: int, time_budget_s: float | None = None, budget_examples: int | None = None):
        self.total, self.time_budget_s, self.budget_examples = total, time_budget_s, budget_examples
        self.started = time.time()
        self.rows: dict[str, dict] = {}

    def say(self, text: str) -> None:
        print(f"[search] {text}", flush=True)

    def warn(self, text: str) -> None:
        print(f"warning: {text}", file=sys.stderr, flush=True)

    def epoch(self, row: dict, result: dict) -> None:
        self.rows[row["trial_id"]] = row

    def trial_ended(self, row: dict, counts: dict) -> None:
        self.rows[row["trial_id"]] = row
        done = sum(counts[s.value] for s in State if s.ended)
        line = (f"{done} of {self.total} trials done ({counts['completed']} completed, {counts['stopped_early']} stopped "
                f"early, {counts['diverged']} diverged, {counts['errored']} errored)")
        best = best_row(self.rows.values())
        if best is not None:
            line += f"; best {OBJECTIVE.metric} {float(best[OBJECTIVE.metric]):.4f} ({best['trial_id']}" + (
                f" {best['preset']})" if best.get("preset") else ")")
        elapsed = time.time() - self.started
        line += f"; {elapsed / 60:.1f} min elapsed"
        if self.time_budget_s:
            line += f", {max(0.0, self.time_budget_s - elapsed) / 60:.1f} min of the time budget left"
        self.say(line)

    def close(self) -> None:
        pass
