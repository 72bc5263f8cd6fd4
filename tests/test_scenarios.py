"""The scenario catalogue: names, one change per variant, the report's recipe, and validation."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

import scenarios
from bench.errors import ConfigError
from scenarios import BASELINE, Scenario

# Every variant also sets its own name, summary, changes, 10 epochs, its base and no ladder rung.
BOOKKEEPING = {"name", "summary", "changes", "epochs", "base", "ladder"}
# What each rung of the gap ladder changes from the rung before (name, ladder, summary, changes
# are bookkeeping); the last rung is the baseline itself.
RUNGS = [
    ("report_recipe", None),
    ("gap_1_init", {"init"}),
    ("gap_2_float32", {"dtype"}),
    ("gap_3_adam", {"optimizer"}),
    ("gap_4_lr", {"learning_rate"}),
    ("gap_5_epochs", {"epochs"}),
    ("baseline", {"batch_size", "shuffle", "seed"}),
]
VARIANTS = {  # name → (the one recipe field it changes, its value)
    "neurons_256": ("hidden", (256,)),
    "he_init": ("init", "he_normal"),
    "rmsprop": ("optimizer", "rmsprop"),
    "dropout": ("dropout", 0.2),
}


def differing_fields(a: Scenario, b: Scenario) -> set[str]:
    return {
        f.name for f in dataclasses.fields(Scenario) if getattr(a, f.name) != getattr(b, f.name)
    }


def test_catalogue_has_the_reports_scenarios_and_the_gap_ladder():
    assert list(scenarios.SCENARIOS) == [
        "baseline",
        "neurons_256",
        "he_init",
        "rmsprop",
        "dropout",
        "best_config",
        *[name for name, _ in RUNGS[:-1]],
    ]
    for name, scenario in scenarios.SCENARIOS.items():
        assert scenario.name == name
        assert scenarios.get(name) is scenario
        assert scenario.summary


def test_baseline_is_the_reports_keras_model_with_keras_defaults():
    b = BASELINE
    assert (b.hidden, b.init, b.optimizer, b.batch_size, b.epochs) == (
        (128,),
        "glorot_uniform",
        "adam",
        32,
        5,
    )
    # Keras 3's Adam defaults (lr 1e-3, β1 0.9, β2 0.999, ε 1e-7), given explicitly
    assert (b.learning_rate, b.beta_1, b.beta_2, b.epsilon) == (1e-3, 0.9, 0.999, 1e-7)
    assert (b.dropout, b.dtype, b.shuffle) == (0.0, "float32", True)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_variant_changes_exactly_one_recipe_field(name):
    variant = scenarios.get(name)
    field, value = VARIANTS[name]
    assert differing_fields(BASELINE, variant) == BOOKKEEPING | {field}
    assert getattr(variant, field) == value
    assert variant.epochs == 10
    assert len(variant.changes) == 1 and variant.changes[0] in variant.summary


def test_best_config_is_the_reports_recommendation():
    best = scenarios.get("best_config")
    assert differing_fields(BASELINE, best) == BOOKKEEPING | {"hidden", "init", "optimizer"}
    assert (best.hidden, best.init, best.optimizer) == ((256,), "he_normal", "rmsprop")
    assert (best.batch_size, best.epochs, best.base) == (32, 10, "baseline")


def test_gap_ladder_changes_one_thing_per_rung_from_the_report_to_the_baseline():
    rungs = [scenarios.get(name) for name, _ in RUNGS]
    assert [r.ladder for r in rungs] == list(range(len(RUNGS)))
    for (name, changed), before, after in zip(RUNGS[1:], rungs[:-1], rungs[1:], strict=True):
        bookkeeping = {"name", "summary", "changes", "ladder"}
        assert differing_fields(before, after) - bookkeeping == changed, name
    # the full-batch rungs ignore the order of rows, so the last rung's batching and shuffling
    # are one change; its seed differs only as defaults do (runs over seeds override both)


def test_rmsprop_variant_keeps_keras_rmsprop_defaults():
    r = scenarios.get("rmsprop")
    assert (r.learning_rate, r.rho, r.epsilon) == (1e-3, 0.9, 1e-7)


def test_report_recipe_exact_settings():
    r = scenarios.REPORT_RECIPE
    assert r.name == "report_recipe"
    expected = {
        "hidden": (128,),
        "init": "report_normal",
        "optimizer": "sgd",
        "learning_rate": 0.01,
        "batch_size": None,  # full batch
        "epochs": 50,
        "dropout": 0.0,
        "dtype": "float64",
        "seed": 42,
        "shuffle": False,
    }
    assert {k: getattr(r, k) for k in expected} == expected
    assert len(r.changes) == 4


def test_scenarios_are_frozen_and_round_trip_through_dicts():
    with pytest.raises(dataclasses.FrozenInstanceError):
        BASELINE.epochs = 3  # type: ignore[misc]
    swept = dataclasses.replace(BASELINE, batch_size=64, sweep=(("batch_size", "64"),))
    for scenario in [*scenarios.SCENARIOS.values(), swept]:
        d = json.loads(json.dumps(scenario.to_dict()))  # as a results file holds it
        assert all(isinstance(d[k], list) for k in ("hidden", "changes", "sweep"))
        tuples = {k: tuple(d[k]) for k in ("hidden", "changes")}
        rebuilt = Scenario(**{**d, **tuples, "sweep": tuple(map(tuple, d["sweep"]))})
        assert rebuilt == scenario == Scenario.from_dict(d)


def test_with_overrides_ignores_none_and_validates():
    assert BASELINE.with_overrides(epochs=None, batch_size=None) == BASELINE
    assert BASELINE.with_overrides(epochs=2).epochs == 2
    with pytest.raises(ConfigError):
        BASELINE.with_overrides(epochs=0)


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": -1}, "epochs"),
        ({"epochs": True}, "epochs"),
        ({"epochs": 2.0}, "epochs"),
        ({"batch_size": 0}, "batch size"),
        ({"batch_size": -32}, "batch size"),
        ({"learning_rate": 0}, "learning rate"),
        ({"learning_rate": -0.1}, "learning rate"),
        ({"learning_rate": math.nan}, "learning rate"),
        ({"learning_rate": math.inf}, "learning rate"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"dropout": math.nan}, "dropout"),
        ({"optimizer": "adagrad"}, "optimizer"),
        ({"init": "lecun_normal"}, "init"),
        ({"dtype": "float16"}, "dtype"),
        ({"hidden": ()}, "hidden"),
        ({"hidden": (0,)}, "hidden"),
        ({"beta_1": 1.0}, "beta_1"),
        ({"rho": -0.5}, "rho"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"seed": -1}, "seed"),
        ({"target_accuracy": 0.0}, "target accuracy"),
        ({"target_accuracy": 1.5}, "target accuracy"),
    ],
)
def test_bad_values_are_one_line_config_errors_naming_the_setting(overrides, setting):
    with pytest.raises(ConfigError) as info:
        dataclasses.replace(BASELINE, **overrides)
    message = str(info.value)
    assert setting in message
    assert "\n" not in message


def test_unknown_scenario_lists_the_valid_names():
    with pytest.raises(ConfigError) as info:
        scenarios.get("nope")
    message = str(info.value)
    assert "nope" in message and "\n" not in message
    for name in scenarios.SCENARIOS:
        assert name in message


def test_a_scenario_file_sets_its_target_accuracy_and_no_sweep_runs_over_it(tmp_path):
    from scenarios.files import load, parse_sweeps

    path = tmp_path / "s.toml"
    path.write_text("[quick]\nepochs = 2\ntarget_accuracy = 0.9\n", encoding="utf-8")
    (quick,) = load(path)
    assert quick.target_accuracy == 0.9 and BASELINE.target_accuracy == 0.97
    with pytest.raises(ConfigError, match="changes no training"):
        parse_sweeps(["target_accuracy=0.9,0.95"], {})
