"""Model-randomisation sanity check on a white-box toy whose answer is known by construction.

The toy classifier is ``Flatten -> fc1 (8 identical rows = a fixed pattern p) -> tanh -> fc2 ->
softmax`` on an 8 x 10 domain with a 5 x 4 grid (20 segments); the pattern gives segment i the
weight (i + 1). Its input gradient is therefore ``c(x) * p``: saliency ranks the segments by
index. Re-initialising fc2 alone only changes the scalar c, so saliency's ranking must survive it
exactly (rho = 1); re-initialising fc1 too makes the gradient a random direction (rho near 0). An
explainer that returns |x| per segment ignores the model: rho = 1 at every depth.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from explbench.api import Generator, registry
from explbench.core.cases import Case
from explbench.protocol.scorer import Scorer
from explbench.studies.sanity import check, sample_cases
from explbench.studies.sanity_result import COLUMNS, SanityError
from explbench.studies.randomise import Layer, layers_top_down, randomise, spearman
from explbench.studies.sanity_inputs import load_run
from explbench.core.segmentation import grid
from explbench.api.task import Task

SHAPE = (8, 10)
TASK = "sanity-toy"
GENERATOR = "sanity-toy-cases"

PLUGIN = '''
import numpy as np
from explbench import Explainer, Explanation, register_explainer

@register_explainer("abs-input")
class AbsInput(Explainer):
    """Mean |x| per segment: looks at the input only, never at the model."""
    query_cost = "0"

    def explain(self, model, x, target, segments, budget, rng, **context):
        dense = np.abs(np.asarray(x, dtype=np.float64))
        return Explanation(weights=segments.project(dense, "mean"), queries=0)
'''


class ToyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        seg = grid(SHAPE)
        pattern = sum((i + 1) * seg.masks[i].to(torch.float32) for i in range(seg.d)).reshape(-1)
        with torch.random.fork_rng(devices=[]):
            self.flat = nn.Flatten()
            self.fc1 = nn.Linear(pattern.numel(), 8)
            self.act = nn.Tanh()
            self.fc2 = nn.Linear(8, 2)
            self.softmax = nn.Softmax(dim=1)
        with torch.no_grad():
            self.fc1.weight.copy_(pattern.expand(8, -1) / pattern.sum())
            self.fc1.bias.zero_()
            self.fc2.weight.copy_(torch.tensor([[-1.0] * 8, [1.0] * 8]))
            self.fc2.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.fc2(self.act(self.fc1(self.flat(x)))))


class ToyTask(Task):
    """Two classes on an 8 x 10 domain, decided by the pattern-weighted mean of the input."""

    name = TASK
    version = "1"
    classes = ("off", "on")
    domain_shape = SHAPE
    domain_axes = ("band", "frame")

    def to_domain(self, audio):
        raise NotImplementedError

    def classifier(self) -> nn.Module:
        return ToyNet().eval().requires_grad_(False)

    def excerpts(self, split, n, seed):
        return iter(())

    def model_hash(self) -> str:
        return "sanity-toy-1"


def toy_cases(n: int, seed: int = 0, generator: str = GENERATOR) -> list[Case]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x = rng.standard_normal(SHAPE).astype(np.float32)
        delta = rng.standard_normal(SHAPE).astype(np.float32) * rng.random(SHAPE).astype(np.float32)
        out.append(Case(case_id=f"{generator}/{i:04d}", generator=generator, x=x, x_mod=x + delta,
                        original=0, target=1, domain="toy", info={"cluster": f"c{i}"}))
    return out


class ToyGenerator(Generator):
    """Cases straight from :func:`toy_cases` (the task is not consulted)."""

    def generate(self, task, segments, n, seed, split="test", progress=True):
        return toy_cases(n, seed), {"attempted": n}


@pytest.fixture
def toy_registered(tmp_path):
    plugin = tmp_path / "abs_plugin.py"
    plugin.write_text(PLUGIN)
    from explbench.core.plugins import load_plugin

    load_plugin(plugin)
    registry.tasks.add(TASK, ToyTask)
    registry.generators.add(GENERATOR, ToyGenerator)
    yield plugin
    registry.tasks.unregister(TASK)
    registry.generators.unregister(GENERATOR)
    registry.explainers.unregister("abs-input")


def make_scorer() -> Scorer:
    return Scorer(ToyTask(), grid(SHAPE), agnostic_samples=0, batch_size=8)


def explainers(*names: str) -> dict:
    return {n: registry.explainers.get(n)() for n in names}


# --------------------------------------------------------------------------- pieces


def test_spearman_known_values():
    a = np.arange(6.0)
    assert spearman(a, a * 3 + 1) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, np.array([0, 1, 2, 3, 5, 4.0])) == pytest.approx(1 - 6 * 2 / (6 * 35))
    assert np.isnan(spearman(a, np.ones(6)))


def test_layers_are_found_top_down_by_call_order():
    layers, kept = layers_top_down(ToyNet(), torch.zeros(1, *SHAPE))
    assert [(l.name, l.path, l.kind) for l in layers] == [("fc2", "fc2", "Linear"), ("fc1", "fc1", "Linear")]
    assert kept == []


def test_randomise_is_seeded_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a, b = ToyNet(), ToyNet()
    layer = Layer("fc1", "fc1", "Linear")
    randomise(a, layer, seed=3)
    randomise(b, layer, seed=3)
    assert torch.equal(a.fc1.weight, b.fc1.weight)
    assert not torch.equal(a.fc1.weight, ToyNet().fc1.weight)
    assert torch.equal(a.fc2.weight, ToyNet().fc2.weight)  # only the layer asked for
    c = ToyNet()
    randomise(c, layer, seed=4)
    assert not torch.equal(a.fc1.weight, c.fc1.weight)
    assert torch.equal(torch.get_rng_state(), state)


def test_sample_spreads_over_generators_and_clusters():
    a = toy_cases(6, generator="a")
    b = toy_cases(2, generator="b")
    for c in a[:3]:
        c.info["cluster"] = "shared"
    got = sample_cases({"a": a, "b": b}, 5, seed=0)
    assert [c.generator for c in got].count("b") == 2
    assert len({c.info["cluster"] for c in got}) == 5  # distinct clusters preferred
    assert [c.case_id for c in got] == [c.case_id for c in sample_cases({"a": a, "b": b}, 5, seed=0)]
    assert len(sample_cases({"a": a, "b": b}, 50, seed=0)) == 8


# --------------------------------------------------------------------------- the check


@pytest.fixture
def toy_result(toy_registered):
    scorer = make_scorer()
    trained = scorer.classify
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    state = torch.get_rng_state()
    result = check(scorer, explainers("saliency", "abs-input", "random", "oracle-norm"), toy_cases(12),
                   budget=64, seed=0, reference_seed=0, n_boot=200, progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    assert scorer.classify is trained
    assert all(torch.equal(v, before[k]) for k, v in trained.state_dict().items())
    return result


def rho(result, explainer: str, layer: str) -> pd.Series:
    rows = result.rows
    return rows[(rows.explainer == explainer) & (rows.layer == layer)].iloc[0]


def test_gradient_ranking_survives_top_layer_and_falls_at_full_randomisation(toy_result):
    assert list(toy_result.rows.layer.drop_duplicates()) == ["none", "fc2", "fc2+fc1"]
    assert rho(toy_result, "saliency", "none").rho == pytest.approx(1.0)
    top = rho(toy_result, "saliency", "fc2")
    assert top.rho == pytest.approx(1.0) and top.n == 12  # c(x) * p: same ranking by construction
    full = rho(toy_result, "saliency", "fc2+fc1")
    assert full.rho < 0.4 and full.n == 12 and full.ci_high < 0.6
    assert toy_result.needs_model["saliency"]


def test_model_free_explainers_keep_or_never_had_their_ranking(toy_result):
    for layer in ("none", "fc2", "fc2+fc1"):
        r = rho(toy_result, "abs-input", layer)
        assert r.rho == pytest.approx(1.0) and r.n == 12
        assert rho(toy_result, "oracle-norm", layer).rho == pytest.approx(1.0)
        assert abs(rho(toy_result, "random", layer).rho) < 0.4  # a fresh seed: unrelated weights
    assert not toy_result.needs_model["abs-input"]
    assert not toy_result.needs_model["random"] and not toy_result.needs_model["oracle-norm"]


def test_interval_brackets_the_mean_and_the_check_is_deterministic(toy_registered, toy_result):
    full = rho(toy_result, "saliency", "fc2+fc1")
    assert full.ci_low < full.rho < full.ci_high
    again = check(make_scorer(), explainers("saliency", "abs-input", "random", "oracle-norm"), toy_cases(12),
                  budget=64, seed=0, reference_seed=0, n_boot=200, progress=False)
    pd.testing.assert_frame_equal(again.rows, toy_result.rows)
    other = check(make_scorer(), explainers("saliency"), toy_cases(12), budget=64, seed=1,
                  reference_seed=0, n_boot=200, progress=False)
    assert rho(other, "saliency", "fc2+fc1").rho != full.rho  # another randomisation


def test_reference_explanations_use_the_runs_seed(toy_result):
    from explbench.core.seeding import seed_for

    case = toy_cases(12)[0]
    rng = np.random.default_rng(seed_for("explain", case.case_id, "random", base=0))
    assert np.array_equal(toy_result.reference[("random", case.case_id)], rng.standard_normal(20))


def test_failing_explainer_is_counted_not_fatal(toy_registered):
    from explbench.api.explainer import Explainer, Explanation

    class FailsOnRandomModels(Explainer):
        """Fails whenever the model's answer differs from the trained toy's (i.e. it is randomised)."""

        def explain(self, model, x, target, segments, budget, rng, **context):
            p = model.predict(x[None])
            if abs(float(p[0, 1]) - float(ToyNet().requires_grad_(False)(x[None])[0, 1])) > 1e-6:
                raise RuntimeError("randomised")
            return Explanation(weights=np.arange(segments.d, dtype=np.float64))

    result = check(make_scorer(), {"fragile": FailsOnRandomModels()}, toy_cases(12), budget=64,
                   seed=0, reference_seed=0, n_boot=200, progress=False)
    rows = result.rows.set_index("layer")
    assert rows.loc["none", "n"] == 12 and rows.loc["none", "rho"] == pytest.approx(1.0)
    assert rows.loc["fc2+fc1", "n"] == 0 and rows.loc["fc2+fc1", "n_failed"] == 12
    assert np.isnan(rows.loc["fc2+fc1", "rho"])
    assert any("24 re-explanations of a randomised model failed" in n for n in result.notes)
    assert result.needs_model["fragile"]


# --------------------------------------------------------------------------- a run folder and the CLI


@pytest.fixture
def toy_run(toy_registered, tmp_path, monkeypatch):
    from explbench.run.runner import execute
    from explbench.run.suite import SuiteConfig

    monkeypatch.setenv("EXPLBENCH_CACHE", str(tmp_path / "cache"))
    config = SuiteConfig(name="toy", task=TASK, seed=0, segmentation="grid:5x4", budget=64, n_boot=200,
                         agnostic_samples=0, explainers=["saliency", "random"],
                         generators={GENERATOR: {"n": 12}})
    out = tmp_path / "run"
    execute(config, out, progress=False, log=lambda s: None)
    return out


def cli(*args: str) -> int:
    from explbench.cli import main

    return main(["sanity", *args])


def test_cli_writes_the_table_and_explains_how_to_read_it(toy_run, toy_registered, capsys):
    assert cli(str(toy_run), "--n", "12", "--explainers", "saliency,abs-input,random",
               "--plugin", str(toy_registered), "--quiet") == 0
    out = capsys.readouterr().out
    table = pd.read_csv(toy_run / "sanity.csv")
    assert list(table.columns) == COLUMNS
    assert len(table) == 9 and set(table.layer) == {"none", "fc2", "fc2+fc1"}
    sal = table[table.explainer == "saliency"].set_index("layer")
    assert sal.loc["fc2", "rho"] == pytest.approx(1.0) and sal.loc["fc2+fc1", "rho"] < 0.5
    assert (table[table.explainer == "abs-input"].rho == 1.0).all()
    assert (table.n == 12).all()
    assert sal.loc["fc2+fc1", "ci_low"] < sal.loc["fc2+fc1", "rho"] < sal.loc["fc2+fc1", "ci_high"]
    saved = json.loads((toy_run / "sanity.json").read_text())
    assert saved["config"]["n_cases"] == 12 and len(saved["rows"]) == 9
    assert saved["needs_model"] == {"saliency": True, "abs-input": False, "random": False}
    assert [l["name"] for l in saved["config"]["layers"]] == ["fc2", "fc1"]
    assert "explains the input, not the model" in out and "needs no model" in out
    assert "saliency: rho 1.00 (none) -> " in out and "depends on the model (passes)" in out
    assert all(r["rho_abs"] is not None for r in saved["rows"])
    assert "fc2" in out and "saliency" in out and "all cases equal" in out  # abs-input: rho = 1 on each
    assert "does not reproduce" not in out  # the re-explained trained model matches the records


def test_cli_says_n_too_small_below_the_minimum(toy_run, capsys):
    assert cli(str(toy_run), "--n", "2", "--explainers", "saliency", "--quiet") == 0
    out = capsys.readouterr().out
    assert "n too small" in out
    table = pd.read_csv(toy_run / "sanity.csv")
    assert table.ci_low.isna().all() and (table.n == 2).all()


def test_cases_are_read_from_the_run_folder_then_the_cache(toy_run, tmp_path):
    import shutil

    key = json.loads((toy_run / "cases.json").read_text())[GENERATOR]["cache_key"]
    in_run, cached = toy_run / "cases" / f"{key}.npz", tmp_path / "cache" / "cases" / f"{key}.npz"
    if not in_run.exists():  # a runner that keeps cases only in the cache
        in_run.parent.mkdir(exist_ok=True)
        shutil.copy(cached, in_run)
    cached.unlink(missing_ok=True)
    assert sum(len(c) for c in load_run(toy_run).cases_by_generator.values()) == 12
    cached.parent.mkdir(parents=True, exist_ok=True)
    in_run.rename(cached)
    assert sum(len(c) for c in load_run(toy_run).cases_by_generator.values()) == 12
    cached.unlink()
    with pytest.raises(SanityError, match="no cases"):
        load_run(toy_run)


def test_cli_errors_name_the_problem(toy_run, tmp_path, capsys):
    assert cli(str(tmp_path / "nowhere")) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert cli(str(toy_run), "--explainers", "saliency,no-such-explainer", "--quiet") == 2
    assert "unknown explainer 'no-such-explainer'" in capsys.readouterr().err
    (toy_run / "cases.json").write_text("{}")
    assert cli(str(toy_run), "--quiet") == 2
    assert "no cases" in capsys.readouterr().err
