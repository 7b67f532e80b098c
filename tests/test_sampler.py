"""The study's sampler: TPE proposes its first --tpe-trials trials, Optuna's RandomSampler the rest.
TPE computes with SciPy's log of the normal CDF (search.internals.tpe_log_ndtr_vectorised), so its
proposals match Optuna's TPESampler's to 12 significant digits."""

import math

import optuna
import pytest

from search.searcher import new_sampler
from search.space import SPACE, optuna_space


def proposals(sampler, count: int) -> list[dict]:
    """The configurations `sampler` proposes in a study of `count` trials of the project's space, each
    told a value that peaks at a learning rate of 1e-3; float values to 12 significant digits."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study, space = optuna.create_study(direction="maximize", sampler=sampler), optuna_space(SPACE)
    found = []
    for _ in range(count):
        trial = study.ask(space)
        study.tell(trial, 1 / (1 + abs(math.log10(trial.params["learning_rate"] / 1e-3))))
        found.append({name: float(f"{v:.12g}") if isinstance(v, float) else v for name, v in trial.params.items()})
    return found


@pytest.mark.parametrize("tpe_trials", [0, 6])
def test_trials_from_tpe_trials_on_are_proposed_by_the_random_sampler(tpe_trials):
    both = proposals(new_sampler(seed=0, startup_trials=2, tpe_trials=tpe_trials), 12)
    tpe = proposals(optuna.samplers.TPESampler(seed=0, n_startup_trials=2), tpe_trials)
    random = proposals(optuna.samplers.RandomSampler(seed=0), 12 - tpe_trials)
    assert both[:tpe_trials] == tpe and both[tpe_trials:] == random


def test_a_search_under_tpe_trials_is_tpes_alone():
    assert proposals(new_sampler(seed=0, startup_trials=2), 12) == proposals(
        optuna.samplers.TPESampler(seed=0, n_startup_trials=2), 12
    )
