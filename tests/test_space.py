import optuna
import pytest

from models import PRESETS
from search.space import PARAMS, SPACE, configs_from, narrowed, optuna_space, preset_of, preset_point, to_json


def test_space_covers_what_the_issue_asks_for():
    assert {"depth", "units", "dropout", "learning_rate", "vocab_size", "batch_size", "max_len"} <= set(PARAMS)
    assert PARAMS["learning_rate"].log and PARAMS["vocab_size"].log
    assert (PARAMS["depth"].low, PARAMS["depth"].high) == (1, 3)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_tutorial_models_are_points_of_the_space(preset):
    point = preset_point(preset, SPACE)
    model, train = configs_from(point)
    assert model == PRESETS[preset]
    assert train == {"learning_rate": 1e-4, "batch_size": 64, "max_len": None}
    assert preset_of(point, SPACE) == preset
    assert preset_of({**point, "dropout": 0.3}, SPACE) == ""


def test_optuna_distributions_follow_the_declaration():
    distributions = optuna_space(SPACE)
    assert list(distributions) == [p.name for p in SPACE]
    assert distributions["learning_rate"] == optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    assert distributions["batch_size"] == optuna.distributions.CategoricalDistribution((32, 64, 128))
    assert [entry["name"] for entry in to_json(SPACE)] == list(distributions)


def test_narrowing_pins_values_and_the_presets_follow():
    space = narrowed(SPACE, {"max_len": 128, "units": 8})
    assert optuna_space(space)["max_len"] == optuna.distributions.CategoricalDistribution((128,))
    point = preset_point("tutorial-stacked", space)
    assert point["max_len"] == 128 and point["units"] == 8 and point["depth"] == 2
    with pytest.raises(ValueError, match="not a searched parameter"):
        narrowed(SPACE, {"colour": 1})
