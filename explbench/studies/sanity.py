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
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from explbench.api import registry
from explbench.api.explainer import Explainer
from explbench.core.cases import Case
from explbench.stats.bootstrap import cluster_bootstrap

#: columns of ``sanity.csv``
from explbench.core.seeding import seed_for
from explbench.results.compat import identity_of
from explbench.run.identity import task_identity
from explbench.studies.sanity_inputs import _make_scorer, load_run
from explbench.studies.sanity_text import _json_rows
from explbench.studies.randomise import Layer, layers_top_down, randomise, spearman
from explbench.studies.sanity_result import DEFAULT_N, NONE, SanityError, SanityResult, interval_method, min_clusters


# --------------------------------------------------------------------------- layers


# --------------------------------------------------------------------------- statistics


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
    from explbench.run.prepare import make_explainer, make_task
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
    ran_with = identity_of(inputs.provenance).get("model")  # the run identity, as compat reads it
    now = task_identity(task, config.split).model
    if ran_with and now and ran_with != now:
        notes.append(f"the task's model ({now}) is not the one the run used ({ran_with}); "
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


# --------------------------------------------------------------------------- text


