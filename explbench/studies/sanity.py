"""Model-randomisation sanity check (Adebayo et al., 2018) of a run's explainers.

An explanation of a classifier should depend on the classifier. The check re-explains a sample
of a run's cases with the classifier's weights re-initialised *cumulatively from the top*: first
the output layer, then the output layer and the one below it, and so on until every layer with
parameters is random. For each explainer and each depth it measures how far the segment ranking
moved: Spearman's rho between the weights under the trained model and under the randomised one
(mean over cases, with a 95 % bootstrap interval).

How the numbers are made
------------------------
* The *reference* explanation is the trained model's, with the run's own explanation seed
  (``seed_for("explain", case_id, explainer, base=run seed)``), so for an explainer of the run
  it equals the recorded weights.
* Every re-explanation uses one fresh seed per (case, explainer),
  ``seed_for("sanity-explain", case_id, explainer, base=seed)``, the same at every depth. The
  first row, layer ``"none"``, re-explains the *trained* model with that fresh seed: it is how
  far the ranking moves from the explainer's own randomness alone (1 for deterministic
  explainers, about 0 for ``random``); the randomised rows are read against it.
* Layers are the modules that own parameters and have ``reset_parameters()``, ordered by a
  forward pass (hooks), top = the last one called. Each is re-initialised by its own
  ``reset_parameters()`` under a torch generator seeded with
  ``seed_for("sanity-init", module path, base=seed)``, inside ``torch.random.fork_rng`` so no
  global random state is left changed; the trained model itself is never modified (a deep copy
  is randomised). Buffers (e.g. input normalisation statistics) are kept.
* rho is computed on the signed weights (the ranking the protocol scores), ties get average
  ranks; a case where either ranking is constant has no rho and is counted as undefined.
  ``sanity.json`` adds ``rho_abs``, the same on |weights| (Adebayo et al. report both): a
  randomised output layer often just flips the sign of a signed explanation.
* Explainers whose reference explanations used no model query (``random``, ``oracle-norm``)
  *need no model*: they are reported, and flagged, as references.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from explbench.api import registry
from explbench.api import Explainer
from explbench.core.cases import Case, load_cases
from explbench.stats.intervals import MIN_CLUSTERS, cluster_bootstrap, seed_for

#: columns of ``sanity.csv`` (Contract F)
COLUMNS = ["explainer", "layer", "rho", "ci_low", "ci_high", "n"]
#: cases sampled by default: a little above the fewest clusters that get an interval
#: (explbench.stats.intervals.MIN_CLUSTERS), so a failed case or two still leave an interval
DEFAULT_N = MIN_CLUSTERS + 2
#: rule of thumb of the verdict: rho at full randomisation above this "does not move"
MOVED_BELOW = 0.5
#: the label of the un-randomised row
NONE = "none"

_PREFIX = {"Linear": "fc", "Bilinear": "fc", "LazyLinear": "fc", "Embedding": "emb",
           "LSTM": "rnn", "GRU": "rnn", "RNN": "rnn", "LayerNorm": "ln", "GroupNorm": "gn"}


class SanityError(ValueError):
    """A sanity check that cannot be run, with the thing at fault and the fix."""


class NotARunFolder(SanityError, FileNotFoundError):
    """The folder given is not a run folder written by ``explbench run``."""


# --------------------------------------------------------------------------- layers


@dataclass(frozen=True)
class Layer:
    """One re-initialisable layer of a classifier.

    Attributes
    ----------
    name : str
        Short name, numbered by kind in forward order: ``conv1``, ..., ``fc1``, ``fc2``, ...
    path : str
        Module path inside the classifier (``model.get_submodule(path)``).
    kind : str
        The module's class name.
    """

    name: str
    path: str
    kind: str


def _prefix(kind: str) -> str:
    if kind in _PREFIX:
        return _PREFIX[kind]
    if kind.startswith("ConvTranspose"):
        return "deconv"
    if kind.startswith("Conv"):
        return "conv"
    if kind.startswith(("BatchNorm", "InstanceNorm")):
        return "bn" if kind.startswith("Batch") else "in"
    return kind.lower()


def layers_top_down(model: torch.nn.Module, example: torch.Tensor) -> tuple[list[Layer], list[str]]:
    """The re-initialisable layers of ``model``, output layer first.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(B, *domain_shape)`` to probabilities.
    example : torch.Tensor, shape (1, *domain_shape)
        One input; a forward pass on it fixes the order in which layers are called.

    Returns
    -------
    layers : list of Layer
        Modules that own parameters and have ``reset_parameters()``, in reverse call order.
    kept : list of str
        Paths of called modules that own parameters but cannot be re-initialised (no
        ``reset_parameters()``): they stay trained at every depth.
    """
    owners = {path: m for path, m in model.named_modules()
              if any(True for _ in m.parameters(recurse=False))}
    order: list[str] = []
    handles = []
    for path, m in owners.items():
        def hook(_module, _inp, _out, path=path):  # noqa: ANN001 - torch hook signature
            if path not in order:
                order.append(path)
        handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    counts: dict[str, int] = {}
    layers, kept = [], []
    for path in order:
        m = owners[path]
        if not callable(getattr(m, "reset_parameters", None)):
            kept.append(path)
            continue
        kind = type(m).__name__
        p = _prefix(kind)
        counts[p] = counts.get(p, 0) + 1
        layers.append(Layer(f"{p}{counts[p]}", path, kind))
    return layers[::-1], kept


def randomise(model: torch.nn.Module, layer: Layer, seed: int) -> None:
    """Re-initialise one layer of ``model`` in place, reproducibly, leaving global RNGs as they were.

    The layer's ``reset_parameters()`` draws from torch's default generator of the device its
    parameters live on; that generator is seeded with ``seed_for("sanity-init", layer.path,
    base=seed)`` inside ``torch.random.fork_rng``, which restores it afterwards.
    """
    module = model.get_submodule(layer.path)
    device = next(module.parameters()).device
    s = seed_for("sanity-init", layer.path, base=seed)
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        if cuda:
            torch.cuda.manual_seed(s)
        else:
            torch.default_generator.manual_seed(s)
        with torch.no_grad():
            module.reset_parameters()


# --------------------------------------------------------------------------- statistics


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two weight vectors ``(d,)`` (average ranks for ties); NaN when either
    ranking is constant."""
    from scipy.stats import rankdata

    ra, rb = rankdata(np.asarray(a, dtype=np.float64)), rankdata(np.asarray(b, dtype=np.float64))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = math.sqrt(float((ra ** 2).sum() * (rb ** 2).sum()))
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


def min_clusters() -> int:
    """Fewest clusters (cases) for which an interval is reported."""
    return MIN_CLUSTERS


def interval_method() -> str:
    return "cluster bootstrap (explbench.stats.intervals.cluster_bootstrap)"


def mean_interval(values: np.ndarray, clusters: np.ndarray, rng: np.random.Generator,
                  n_boot: int = 1000, level: float = 0.95) -> tuple[float, float]:
    """95 % interval of the mean of per-case ``values`` ``(n,)`` with clusters ``(n,)``.

    The cluster bootstrap of :mod:`explbench.stats.intervals`. ``(nan, nan)`` below :func:`min_clusters` clusters ("n too small") and for a
    constant sample (no spread to resample).
    """
    values = np.asarray(values, dtype=np.float64)
    clusters = np.asarray(clusters)
    if len(set(clusters.tolist())) < min_clusters() or np.ptp(values) == 0:
        return (float("nan"), float("nan"))
    lo, hi = cluster_bootstrap((values,), clusters, "mean", rng, n_boot=n_boot, level=level)
    return (float(lo), float(hi))


# --------------------------------------------------------------------------- cases


def sample_cases(cases_by_generator: dict[str, list[Case]], n: int, seed: int) -> list[Case]:
    """A seeded sample of ``n`` cases spread over generators and, within that, over clusters.

    Generators take turns (in the order given); each contributes its next case in a seeded
    random order, preferring one whose cluster is not in the sample yet.
    """
    if n < 1:
        raise SanityError(f"--n must be at least 1, got {n}")
    pools = []
    for g, cases in cases_by_generator.items():
        order = np.random.default_rng(seed_for("sanity-sample", g, base=seed)).permutation(len(cases))
        pools.append([cases[i] for i in order])
    chosen: list[Case] = []
    used: set[str] = set()
    while len(chosen) < n and any(pools):
        for pool in pools:
            if not pool or len(chosen) >= n:
                continue
            pick = next((c for c in pool if c.cluster not in used), pool[0])
            pool.remove(pick)
            chosen.append(pick)
            used.add(pick.cluster)
    return chosen


# --------------------------------------------------------------------------- the check


@dataclass
class SanityResult:
    """What :func:`check` measured.

    Attributes
    ----------
    rows : pd.DataFrame
        One row per (explainer, depth): the :data:`COLUMNS` plus ``depth`` (0 = none),
        ``randomised`` (the layer added at this depth), ``rho_abs`` (the same on |weights|: a
        ranking that only flipped sign keeps it high), ``n_clusters``, ``constant`` (every
        case gave the same rho: no interval to draw), ``n_undefined``
        (cases with a constant ranking), ``n_failed`` and ``needs_model``.
    per_case : pd.DataFrame
        explainer, depth, layer, case_id, generator, cluster, rho and rho_abs (NaN when
        undefined or failed), error.
    layers : list of Layer
        Output layer first.
    kept : list of str
        Modules with parameters that could not be re-initialised.
    needs_model : dict of str to bool
        False for explainers whose reference explanations made no model query.
    reference : dict of (str, str) to np.ndarray
        The trained model's weights ``(d,)`` per (explainer, case_id).
    notes : list of str
    config : dict
        Sample size, seeds, interval method, ... (JSON-serialisable).
    """

    rows: pd.DataFrame
    per_case: pd.DataFrame
    layers: list[Layer]
    kept: list[str]
    needs_model: dict[str, bool]
    reference: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """The Contract-F table (``sanity.csv``)."""
        return self.rows[COLUMNS]


def _labels(layers: Sequence[Layer]) -> list[str]:
    """Cumulative layer labels from the top: none, fc3, fc3+fc2, ..."""
    return [NONE] + ["+".join(l.name for l in layers[: i + 1]) for i in range(len(layers))]


def check(scorer: object, explainers: dict[str, Explainer], cases: Sequence[Case], *,
          budget: int | None, seed: int, reference_seed: int, n_boot: int = 1000,
          progress: bool = True) -> SanityResult:
    """Re-explain ``cases`` under cumulative randomisation of ``scorer.classify``.

    Parameters
    ----------
    scorer : explbench.protocol.scorer.Scorer
        Its ``classify`` is temporarily replaced by a randomised deep copy (restored after).
    explainers : dict of str to Explainer
    cases : sequence of Case
    budget : int or None
        Query budget per explanation (the run's).
    seed : int
        Seed of the randomisation, of the re-explanations and of the bootstrap.
    reference_seed : int
        The run's seed: the trained model's explanation uses the run's explanation seed.
    n_boot : int
        Bootstrap resamples per interval.
    progress : bool
        Show a progress bar on stderr.
    """
    if not cases:
        raise SanityError("no case to re-explain")
    trained = scorer.classify
    example = torch.from_numpy(np.asarray(cases[0].x_mod, dtype=np.float32)[None])
    layers, kept = layers_top_down(trained, example)
    if not layers:
        raise SanityError("the classifier has no layer with parameters and reset_parameters(); "
                          "there is nothing to randomise")
    labels = _labels(layers)
    names = list(explainers)
    total = len(cases) * len(names) * (len(labels) + 1)
    bar = tqdm(total=total, desc="sanity", unit="expl", disable=not progress, file=sys.stderr)

    def explain(name: str, case: Case, rng: np.random.Generator) -> tuple[np.ndarray | None, int, str | None]:
        bar.set_postfix_str(f"{name} on {case.case_id}")
        try:
            exp = scorer.explain(explainers[name], case, budget, rng)
            return np.asarray(exp.weights, dtype=np.float64), int(exp.queries), None
        except Exception as exc:  # a failing explanation is counted, never fatal
            return None, 0, f"{type(exc).__name__}: {exc}"
        finally:
            bar.update(1)

    reference: dict[tuple[str, str], np.ndarray] = {}
    queries: dict[str, int] = {n: 0 for n in names}
    ref_errors: dict[tuple[str, str], str] = {}
    per_case = []
    try:
        for case in cases:
            for name in names:
                rng = np.random.default_rng(seed_for("explain", case.case_id, name, base=reference_seed))
                w, q, err = explain(name, case, rng)
                queries[name] += q
                if w is None:
                    ref_errors[(name, case.case_id)] = err or "failed"
                else:
                    reference[(name, case.case_id)] = w
        model = copy.deepcopy(trained)
        scorer.classify = model
        for depth, label in enumerate(labels):
            if depth > 0:
                randomise(model, layers[depth - 1], seed)
            for case in cases:
                for name in names:
                    rng = np.random.default_rng(seed_for("sanity-explain", case.case_id, name, base=seed))
                    ref = reference.get((name, case.case_id))
                    if ref is None:
                        bar.update(1)
                        w, err = None, f"reference explanation failed: {ref_errors[(name, case.case_id)]}"
                    else:
                        w, _, err = explain(name, case, rng)
                    rho = spearman(ref, w) if w is not None else float("nan")
                    rho_abs = spearman(np.abs(ref), np.abs(w)) if w is not None else float("nan")
                    per_case.append({"explainer": name, "depth": depth, "layer": label,
                                     "case_id": case.case_id, "generator": case.generator,
                                     "cluster": case.cluster, "rho": rho, "rho_abs": rho_abs,
                                     "error": err})
    finally:
        scorer.classify = trained
        bar.close()

    pc = pd.DataFrame(per_case)
    # an explainer that never succeeded on the trained model is not called model-free
    needs_model = {n: queries[n] > 0 or not any(k[0] == n for k in reference) for n in names}
    rows = _summarise(pc, names, labels, layers, needs_model, seed, n_boot)
    notes = []
    if kept:
        notes.append(f"kept trained at every depth (parameters but no reset_parameters()): {', '.join(kept)}")
    for name in names:
        n_ref = sum(1 for (e, _c) in ref_errors if e == name)
        if n_ref:
            notes.append(f"{name}: the trained-model explanation failed on {n_ref} of {len(cases)} cases "
                         f"(left out at every depth)")
        failed = pc[(pc.explainer == name) & pc.error.notna() & ~pc.error.fillna("").str.startswith("reference")]
        if len(failed):
            notes.append(f"{name}: {len(failed)} re-explanations of a randomised model failed and are left "
                         f"out (e.g. {failed.iloc[0].layer}: {failed.iloc[0].error})")
    config = {"n_cases": len(cases), "seed": seed, "reference_seed": reference_seed, "budget": budget,
              "n_boot": n_boot, "interval": interval_method(), "min_clusters": min_clusters(),
              "explainers": names, "layers": [vars(l) for l in layers], "kept": kept,
              "cases": [{"case_id": c.case_id, "generator": c.generator, "cluster": c.cluster}
                        for c in cases]}
    return SanityResult(rows, pc, layers, kept, needs_model, reference, notes, config)


def _summarise(per_case: pd.DataFrame, names: Sequence[str], labels: Sequence[str],
               layers: Sequence[Layer], needs_model: dict[str, bool], seed: int,
               n_boot: int) -> pd.DataFrame:
    """One row per (explainer, depth): mean rho over the cases with a rho, and its interval."""
    rows = []
    for name in names:
        for depth, label in enumerate(labels):
            sub = per_case[(per_case.explainer == name) & (per_case.depth == depth)]
            finite = np.isfinite(sub.rho.to_numpy(dtype=float))
            vals = sub.rho.to_numpy(dtype=float)[finite]
            clusters = sub.cluster.to_numpy()[finite]
            rng = np.random.default_rng(seed_for("sanity-bootstrap", name, depth, base=seed))
            lo, hi = (mean_interval(vals, clusters, rng, n_boot=n_boot)
                      if vals.size else (float("nan"), float("nan")))
            absolute = sub.rho_abs.to_numpy(dtype=float)
            absolute = absolute[np.isfinite(absolute)]
            rows.append({"explainer": name, "layer": label,
                         "rho": float(vals.mean()) if vals.size else float("nan"),
                         "rho_abs": float(absolute.mean()) if absolute.size else float("nan"),
                         "ci_low": lo, "ci_high": hi, "n": int(vals.size), "depth": depth,
                         "randomised": NONE if depth == 0 else layers[depth - 1].name,
                         "n_clusters": len(set(clusters.tolist())),
                         "constant": bool(vals.size > 1 and np.ptp(vals) == 0),
                         "n_undefined": int((sub.error.isna().to_numpy() & ~finite).sum()),
                         "n_failed": int(sub.error.notna().sum()),
                         "needs_model": needs_model[name]})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- a run folder


@dataclass
class RunInputs:
    """What the check needs from a run folder."""

    folder: Path
    config: object  # explbench.run.suite.SuiteConfig
    provenance: dict
    cases_by_generator: dict[str, list[Case]]
    notes: list[str]


def _case_file(folder: Path, entry: dict) -> Path | None:
    """The first existing case file of a ``cases.json`` entry: the file the run names, then
    ``RUN/cases/<key>.npz``, then the case cache."""
    from explbench.store.run_store import cache_dir

    key = entry["cache_key"]
    candidates = [folder / entry["file"]] if entry.get("file") else []
    candidates += [folder / "cases" / f"{key}.npz", cache_dir() / "cases" / f"{key}.npz"]
    return next((p for p in candidates if p.is_file()), None)


def load_run(folder: str | Path) -> RunInputs:
    """The resolved suite, provenance and cases of a run folder.

    Keys come from ``RUN/cases.json``; each generator's cases are read from the file its entry
    names (``"file"``, relative to the run), else ``RUN/cases/<key>.npz``, else the case cache
    ``cache_dir()/cases/<key>.npz``.

    Raises
    ------
    NotARunFolder
        When ``folder`` has no ``config.json``.
    SanityError
        When the run has no cases (or none can be found).
    """
    from explbench.run.suite import SuiteConfig

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise NotARunFolder(f"{folder} is not a run folder (no config.json); pass a folder written by "
                            f"'explbench run --out RUN'")
    stored = json.loads((folder / "config.json").read_text())
    config = SuiteConfig.from_dict(stored["suite"])
    prov_path = folder / "provenance.json"
    prov = json.loads(prov_path.read_text()) if prov_path.exists() else {}
    if not (folder / "cases.json").is_file():
        raise SanityError(f"{folder} has no cases.json: the run stopped before its cases were made; "
                          f"continue it with 'explbench run --resume {folder}'")
    info = json.loads((folder / "cases.json").read_text())
    cases_by_gen: dict[str, list[Case]] = {}
    notes: list[str] = []
    for gen, entry in info.items():
        key = (entry or {}).get("cache_key")
        if not key or not (entry or {}).get("n_cases", 1):
            continue
        path = _case_file(folder, entry)
        if path is None:
            notes.append(f"the cases of {gen} are neither in {folder / 'cases'} nor in the case cache; "
                         f"'explbench run --resume {folder}' regenerates them")
            continue
        cases, _ = load_cases(path)
        if cases:
            cases_by_gen[gen] = cases
    if not cases_by_gen:
        raise SanityError(f"{folder} has no cases to re-explain" + (": " + "; ".join(notes) if notes else
                          " (every generator produced none)"))
    return RunInputs(folder, config, prov, cases_by_gen, notes)


def _make_scorer(task: object, segments: object, config: object, batch_size: int | None, device: str):
    """The run's Scorer, built as the runner builds it (no agnostic neighbourhood: unused here)."""
    from explbench.protocol.scorer import Scorer

    params = set(inspect.signature(Scorer).parameters)
    kwargs = {"content": config.content, "agnostic_samples": 0, "device": device, "seed": config.seed}
    if batch_size:
        kwargs["batch_size"] = int(batch_size)
    for key in ("aggregation",):  # suite settings the scorer may take
        if key in params and hasattr(config, key):
            kwargs[key] = getattr(config, key)
    return Scorer(task, segments, **{k: v for k, v in kwargs.items() if k in params})


def run_sanity(folder: str | Path, *, n: int = DEFAULT_N, explainers: Sequence[str] | None = None,
               seed: int | None = None, device: str = "cpu", n_boot: int = 1000,
               progress: bool = True, log: Callable[[str], None] = print) -> SanityResult:
    """Run the check on a run folder and write ``RUN/sanity.csv`` and ``RUN/sanity.json``.

    Parameters
    ----------
    folder : path
        A run folder written by ``explbench run``.
    n : int
        Cases to sample (spread over generators and clusters).
    explainers : sequence of str, optional
        Registered explainer names (default: the run's). Explainers the run did not use are
        explained afresh with their defaults and the run's content type.
    seed : int, optional
        Seed of the sample, the randomisation and the re-explanations (default: the run's seed).
    device : str
        Torch device.
    """
    from explbench.run.runner import make_explainer, make_task
    from explbench.api.task import task_segmentation
    from explbench.store.run_store import RunStore

    inputs = load_run(folder)
    config = inputs.config
    names = list(explainers) if explainers else list(config.explainers)
    if not names:
        raise SanityError("no explainer to check: the run lists none; name some with --explainers a,b")
    for name in names:
        registry.explainers.get(name)  # UnknownName with the known names and a close match
    seed = int(config.seed if seed is None else seed)
    notes = list(inputs.notes)
    task = make_task(config, device)
    ran_with = (inputs.provenance.get("task") or {}).get("model_hash")
    if ran_with and ran_with != task.model_hash():
        notes.append(f"the task's model ({task.model_hash()}) is not the one the run used ({ran_with}); "
                     f"the check describes the current model")
    segments = task_segmentation(task, config.segmentation)
    scorer = _make_scorer(task, segments, config, inputs.provenance.get("batch_size"), device)
    built = {name: make_explainer(config, name) for name in names}
    cases = sample_cases(inputs.cases_by_generator, n, seed)
    available = sum(len(c) for c in inputs.cases_by_generator.values())
    if len(cases) < n:
        notes.append(f"the run has {available} cases; all are used (asked for {n})")
    n_run_clusters = len({c.cluster for cs in inputs.cases_by_generator.values() for c in cs})
    if n_run_clusters < min_clusters():
        notes.append(f"the run's cases come from {n_run_clusters} clusters (songs) only; intervals need "
                     f"{min_clusters()}, so no --n gives one: rerun the suite with cases from more clusters")
    elif len({c.cluster for c in cases}) < min_clusters():
        notes.append(f"the sample covers fewer than {min_clusters()} clusters; raise --n for intervals")
    log(f"sanity: {len(cases)} cases, explainers {', '.join(names)}")
    result = check(scorer, built, cases, budget=config.budget, seed=seed,
                   reference_seed=int(config.seed), n_boot=n_boot, progress=progress)
    result.notes = notes + result.notes + _compare_with_records(inputs.folder, result)
    result.config.update({"run": str(inputs.folder), "task": config.task,
                          "segmentation": config.segmentation, "content": config.content,
                          "device": device, "n_requested": n})
    store = RunStore(inputs.folder)
    store.write_csv("sanity.csv", result.table())
    store.write_json("sanity.json", {"config": result.config, "rows": _json_rows(result.rows),
                                     "needs_model": result.needs_model, "notes": result.notes,
                                     "per_case": _json_rows(result.per_case)})
    return result


def _compare_with_records(folder: Path, result: SanityResult) -> list[str]:
    """Notes for explainers whose trained-model re-explanation differs from the run's record."""
    from explbench.store.run_store import RunStore

    try:
        records = RunStore(folder).records()
    except Exception:  # noqa: BLE001 - a damaged journal only loses this cross-check
        return []
    differ: dict[str, list[str]] = {}
    compared: dict[str, int] = {}
    for r in records:
        key = (r.get("explainer"), r.get("case_id"))
        if r.get("status") != "ok" or key not in result.reference or r.get("weights") is None:
            continue
        compared[key[0]] = compared.get(key[0], 0) + 1
        if not np.allclose(result.reference[key], np.asarray(r["weights"], dtype=np.float64),
                           rtol=1e-4, atol=1e-6):
            differ.setdefault(key[0], []).append(key[1])
    return [f"{name}: re-explaining the trained model does not reproduce the run's weights on "
            f"{len(ids)} of {compared[name]} cases (e.g. {ids[0]}); the explainer, its parameters or "
            f"the model changed since the run" for name, ids in differ.items()]


def _json_rows(df: pd.DataFrame) -> list[dict]:
    out = []
    for row in df.to_dict(orient="records"):
        out.append({k: (None if isinstance(v, float) and not math.isfinite(v) else
                        (v.item() if hasattr(v, "item") else v)) for k, v in row.items()})
    return out


# --------------------------------------------------------------------------- text


def _fmt(v: float) -> str:
    return "—" if not math.isfinite(v) else f"{v:+.2f}".replace("+", " ")


def _interval_text(row: pd.Series) -> str:
    if row["n"] == 0:
        return "no case"
    if math.isfinite(row["ci_low"]) and math.isfinite(row["ci_high"]):
        return f"[{_fmt(row['ci_low']).strip()}, {_fmt(row['ci_high']).strip()}]"
    if row["n_clusters"] < min_clusters():
        return "n too small"
    return "all cases equal" if row["constant"] else "no interval"


def verdict(rows: pd.DataFrame, name: str, needs_model: bool) -> str:
    """One plain sentence on how ``name``'s ranking reacted to full randomisation.

    The rule: at full randomisation the ranking *moves* when rho's interval lies below
    :data:`MOVED_BELOW`, *keeps* its ranking when the interval lies above it; without an
    interval the mean is read the same way and the sentence says that no interval backs it.
    """
    sub = rows[rows.explainer == name].sort_values("depth")
    first, last = sub.iloc[0], sub.iloc[-1]
    moved = f"rho {_fmt(first.rho).strip()} ({NONE}) -> {_fmt(last.rho).strip()} (all {int(last.depth)} layers)"
    if not needs_model:
        return (f"{name}: needs no model (no query): {moved}; a reference, not a verdict — its "
                f"ranking cannot depend on the weights")
    if last.n == 0:
        return f"{name}: no case could be scored at full randomisation"
    moves = (f"falls below {MOVED_BELOW} — its ranking depends on the model")
    keeps = (f"stays above {MOVED_BELOW} — much of its ranking survives without the trained model: "
             f"it explains the input more than the model")
    lo, hi = last.ci_low, last.ci_high
    if math.isfinite(lo) and math.isfinite(hi):
        if hi < MOVED_BELOW:
            return f"{name}: {moved}; {moves} (passes)"
        if lo > MOVED_BELOW:
            return f"{name}: {moved}; {keeps} (fails)"
        return f"{name}: {moved}; the interval straddles {MOVED_BELOW}: undecided at this n (raise --n)"
    why = (f"{int(last.n_clusters)} clusters, intervals need {min_clusters()}"
           if last.n_clusters < min_clusters() else "no interval")
    return f"{name}: {moved}; by its mean it {moves if last.rho < MOVED_BELOW else keeps} — not backed " \
           f"by an interval ({why})"


def to_text(result: SanityResult) -> str:
    """The randomisation table, what it means, and one verdict per explainer."""
    rows = result.rows
    n_layers = len(result.layers)
    lines = [
        "Model randomisation (Adebayo et al., 2018): Spearman rho between each explainer's segment "
        "weights under the trained model and under the model with its top layers re-initialised "
        f"(cumulative from the output); mean over {result.config.get('n_cases')} cases, 95 % "
        f"interval by {result.config.get('interval')}.",
        "",
    ]
    head = f"{'explainer':<22} {'randomised (cumulative)':<30} {'rho':>6}  {'95 % interval':<16} {'n':>3}"
    lines += [head, "-" * len(head)]
    for name in rows.explainer.drop_duplicates():
        sub = rows[rows.explainer == name].sort_values("depth")
        tag = name + ("" if result.needs_model.get(name, True) else " *")
        for i, (_, r) in enumerate(sub.iterrows()):
            if r.depth == 0:
                what = "none (trained, fresh seed)"
            else:
                what = f"+ {r.randomised}" + (f" (all {n_layers})" if r.depth == n_layers else "")
            lines.append(f"{(tag if i == 0 else ''):<22} {what:<30} {_fmt(r.rho):>6}  "
                         f"{_interval_text(r):<16} {int(r.n):>3}")
    if not all(result.needs_model.values()):
        lines.append("* needs no model: its explanations made no model query")
    lines += [
        "",
        "How to read it: rho = 1 means the ranking of segments did not change, 0 that it is "
        "unrelated to the trained model's. The 'none' row re-explains the trained model with a "
        "fresh seed: the explainer's own noise. An explainer whose ranking does not move as the "
        "layers are randomised — rho near 1 at full randomisation — explains the input, not the "
        "model. References: random should give rho ≈ 0 and oracle-norm rho = 1 at every depth "
        "(neither uses the model). Rule of thumb used below: at full randomisation the ranking "
        f"depends on the model when rho's interval lies below {MOVED_BELOW} (passes) and survives "
        f"without it when the interval lies above {MOVED_BELOW} (fails).",
        "",
    ]
    lines += [verdict(rows, name, result.needs_model.get(name, True))
              for name in rows.explainer.drop_duplicates()]
    if result.notes:
        lines += [""] + [f"note: {n}" for n in result.notes]
    return "\n".join(lines) + "\n"
