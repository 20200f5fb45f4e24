"""Re-running a seeded sample of a submission's explanations, and re-scoring every record from its own weights."""

from __future__ import annotations

from typing import Callable

import math
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
import numpy as np
from explbench.results.submission import Submission, record_name, sha256_hex
from explbench.results.submission_checks import Check, manifest_cases
from explbench.run.manifest import MANIFEST_FILE
from explbench.store.records import record_key
from explbench.store.run_store import RunStore


#: where progress notes go
Log = Callable[[str], None]


def sample_units(units: list[tuple[str, str]], fraction: float, seed: int, digest_: str,
                 salt: str = "") -> list[tuple[str, str]]:
    """The units to re-run: ``ceil(fraction * M)`` of the ``M`` units, at least 5 (all when
    fewer), drawn without replacement by a numpy Generator seeded from the run seed, the
    submission's digest and ``salt``; returned in the order of ``units``."""
    m = len(units)
    n = m if m <= 5 else min(m, max(5, math.ceil(fraction * m)))
    key = sha256_hex(f"explbench-rerun|{seed}|{digest_}|{salt}".encode())
    rng = np.random.default_rng(int(key[:16], 16))
    return [units[i] for i in sorted(rng.choice(m, size=n, replace=False).tolist())] if n else []


@contextmanager
def plugins_from(sub: Submission, log: Log) -> Iterator[dict[str, str]]:
    """Load the archive's plug-ins (written to a temporary folder under their original file
    names); yields registered name -> plug-in file, and unregisters them afterwards."""
    from explbench.api import registry
    from explbench.core.plugins import load_plugin
    from explbench.store.run_store import safe_name

    before = {kind: set(reg.names()) for kind, reg in registry.REGISTRIES.items()}
    modules = set(sys.modules)
    owner: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="explbench-verify-") as tmp:
        try:
            for i, entry in enumerate(sub.meta.get("plugins") or []):
                name = str(entry.get("file"))
                folder = Path(tmp) / str(i)
                folder.mkdir()
                target = folder / safe_name(Path(str(entry.get("path") or name)).name)
                target.write_bytes(sub.files.get(name, b""))
                seen = {k: set(r.names()) for k, r in registry.REGISTRIES.items()}
                load_plugin(target)
                for kind, reg in registry.REGISTRIES.items():
                    owner.update({n: name for n in set(reg.names()) - seen[kind]})
            yield owner
        finally:
            for kind, reg in registry.REGISTRIES.items():
                for n in set(reg.names()) - before[kind]:
                    reg.unregister(n)
            for m in set(sys.modules) - modules:
                if str(getattr(sys.modules[m], "__file__", "") or "").startswith(tmp):
                    del sys.modules[m]


def _cases_for(sub: Submission, config: object, prep: object, source: str | Path | None,
               log: Log) -> tuple[dict, list[str]]:
    """Cases with the content the records name (case id -> Case), and what is missing."""
    from explbench.core.cases import content_hash, load_cases
    from explbench.run.case_cache import build_cases
    from explbench.run.case_pack import load_pack

    want = {cid: h for cid, (_, h) in manifest_cases(sub.json(MANIFEST_FILE)).items()}
    if source is None:
        got, _ = build_cases(config, prep.task, prep.segments, progress=False, log=log,  # type: ignore[attr-defined]
                             identity=prep.identity)  # type: ignore[attr-defined]
        found, where = [c for cs in got.values() for c in cs], "regenerated"
    elif Path(source).is_dir():
        store = RunStore(Path(source))
        info = store.read_json("cases.json") if (Path(source) / "cases.json").is_file() else {}
        files = [store.case_file(e.get("cache_key", "")) for e in info.values()]
        if not any(f.is_file() for f in files):
            raise FileNotFoundError(f"--cases {source}: the run folder keeps no cases (cases/*.npz)")
        found = [c for f in files if f.is_file() for c in load_cases(f)[0]]
        where = f"from {source}"
    else:
        found, where = [c for cs in load_pack(source).cases.values() for c in cs], f"from {source}"
    have = {c.case_id: c for c in found if want.get(c.case_id) == content_hash(c)}
    problems = [f"case {cid}: no case {where} has the content {h} the records name"
                for cid, h in sorted(want.items()) if cid not in have]
    return have, problems


def _same(a: object, b: object, rtol: float, atol: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=rtol, abs_tol=atol) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, rtol, atol) for x, y in zip(a, b))
    return a == b


#: record fields the re-scoring takes from the record itself (or that differ between runs)
_GIVEN = {"seconds", "queries", "score", "intercept", "extra", "weights", "error", "status",
          "aggregation", "audio_file", "traceback"}


def _rescored(scorer: object, case: object, r: dict, explainer: object, ctx: object,
              classes: tuple) -> dict:
    """The record that ``r``'s own weights give when scored again (the protocol's own code)."""
    from explbench.api.explainer import Explanation
    from explbench.core.jsonsafe import sanitise_record

    name = str(r["explainer"])
    if r.get("status") != "ok":
        return sanitise_record(scorer.failure(case, name, explainer, ctx, classes, ""))  # type: ignore[attr-defined]
    w = np.asarray(r.get("weights"), dtype=np.float64)
    exp = Explanation(weights=w, score=r.get("score"), intercept=r.get("intercept"))
    return sanitise_record(scorer._scored(case, name, explainer, ctx, classes, exp, w,  # type: ignore[attr-defined]
                                          r.get("aggregation")))


def rerun_checks(sub: Submission, records: list[dict], *, fraction: float,
                 cases: str | Path | None, rtol: float, atol: float, salt: str, device: str,
                 log: Log) -> list[Check]:
    """``rescore`` (every record scored again from its weights) and ``rerun`` (a seeded sample
    of units explained again with the archive's plug-ins); a plug-in that cannot be loaded or
    an explainer that cannot be built fails both."""
    from explbench.protocol.unit import case_context, params_of
    from explbench.protocol.validate import split_name
    from explbench.run.loop import make_scorer, resolve_timeout, unit_state
    from explbench.run.prepare import prepare
    from explbench.run.suite import SuiteConfig

    rescore, rerun = Check("rescore"), Check("rerun")
    quiet: Log = lambda s: None  # noqa: E731
    suite = dict(sub.json("config.json")["suite"])
    prov = sub.json("provenance.json")
    identity = prov.get("identity") or {}
    by_case: dict[str, list[dict]] = {}
    for r in records:
        by_case.setdefault(str(r["case_id"]), []).append(r)
    by_key = {record_key(r): r for r in records}
    submitted = {split_name(str(r["explainer"]))[0] for r in records}
    bases = [e for e in suite.get("explainers", []) if e in submitted]
    units = sorted(k for k, r in by_key.items() if r.get("status") == "ok" and k[1] in bases)
    chosen = sample_units(units, fraction, int(suite.get("seed", 0)), str(sub.meta.get("digest")), salt)
    stats = {"top": 0, "close": 0, "dw": 0.0, "done": 0}
    try:
        with plugins_from(sub, log) as owner:
            config = SuiteConfig.from_dict({**suite, "explainers": bases})
            prep = prepare(config, device, quiet)
            if identity.get("model") and prep.identity.model != identity.get("model"):
                raise ValueError(f"this machine's {config.task} model is {prep.identity.model}, "
                                 f"the run's {identity.get('model')}; nothing can be re-run on it")
            for name, explainer in prep.explainers.items():
                ran = (prov.get("explainers") or {}).get(name)
                if ran is not None and params_of(explainer) != ran:
                    rerun.problems.append(f"{name}{_from(owner, name)}: built here with "
                                          f"{params_of(explainer)}, the run used {ran}")
            scorer = make_scorer(prep, int(identity.get("batch_size") or 64), quiet)
            state = unit_state(prep, scorer, resolve_timeout(config), quiet)
            have, missing = _cases_for(sub, config, prep, cases, log)
            rescore.problems += missing
            for cid in sorted(set(by_case) & set(have)):
                case = have[cid]
                ctx = case_context(state, case)
                for r in by_case[cid]:
                    explainer = prep.explainers[split_name(str(r["explainer"]))[0]]
                    try:
                        new = _rescored(scorer, case, r, explainer, ctx, tuple(prep.task.classes))
                    except Exception as exc:  # noqa: BLE001 - a record edited into nonsense
                        rescore.problems.append(f"record ({record_name(r)}) cannot be scored "
                                                f"again: {type(exc).__name__}: {exc}")
                        continue
                    rescore.problems += [
                        f"record ({record_name(r)}): {k} is {_short(r.get(k))} in the record, "
                        f"{_short(new[k])} when its weights are scored again"
                        for k in sorted(new) if k not in _GIVEN and not _same(r.get(k), new[k], rtol, atol)]
                for unit in (u for u in chosen if u[0] == cid):
                    rerun.problems += _rerun_unit(state, case, unit[1], ctx, by_key, rtol, atol,
                                                  _from(owner, unit[1]), stats)
    except (ImportError, ValueError, KeyError, RuntimeError) as exc:
        msg = f"cannot re-run the submission here: {exc}"
        return [Check("rescore", [msg]), Check("rerun", [msg])]
    scored = sum(len(by_case[c]) for c in by_case if c in have)
    rescore.detail = f"{scored} of {len(records)} records scored again from their weights"
    rerun.detail = (f"re-ran {stats['done']} of {len(units)} explanations: {stats['top']} agree on "
                    f"top-3, {stats['close']} within rtol {rtol:g} and atol {atol:g}, max |Δw| = "
                    f"{stats['dw']:.3g} (sample seeded by the run seed and the submission digest"
                    f"{' and a salt' if salt else ''})")
    if stats["done"] < len(chosen):
        rerun.problems.append(f"{len(chosen) - stats['done']} sampled unit(s) had no case to run on "
                              f"(--cases must hold the submission's cases; without it they are regenerated)")
    return [rescore, rerun]


def _from(owner: dict[str, str], name: str) -> str:
    return f" (plug-in {owner[name]})" if name in owner else ""


def _rerun_unit(state: object, case: object, name: str, ctx: object, by_key: dict, rtol: float,
                atol: float, where: str, stats: dict) -> list[str]:
    """Explain one unit again and compare each of its records with the submitted one;
    returns the disagreements and adds to ``stats`` (done, top, close, dw)."""
    from explbench.core.segmentation import top_k
    from explbench.protocol.unit import evaluate_unit

    problems: list[str] = []
    top_ok = close_ok = True
    for rec, _ in evaluate_unit(state, case, name, ctx):
        old = by_key.get(record_key(rec))
        label = f"{rec['case_id']} | {rec['explainer']}{where}"
        if rec.get("status") != "ok" or old is None or old.get("weights") is None:
            why = f"failed: {rec.get('error')}" if rec.get("status") != "ok" else "has no submitted weights"
            problems.append(f"{label}: the re-run {why}")
            top_ok = close_ok = False
            continue
        a, b = np.asarray(old["weights"], float), np.asarray(rec["weights"], float)
        if a.shape != b.shape:
            problems.append(f"{label}: {a.size} weights recorded, {b.size} re-run")
            top_ok = close_ok = False
            continue
        dw = float(np.max(np.abs(a - b))) if a.size else 0.0
        stats["dw"] = max(stats["dw"], dw)
        tie = state.scorer.ties_rng  # type: ignore[attr-defined]
        ta = sorted(int(i) for i in top_k(a, 3, tie(case, rec["explainer"])))
        tb = sorted(int(i) for i in top_k(b, 3, tie(case, rec["explainer"])))
        close = bool(np.allclose(b, a, rtol=rtol, atol=atol))
        if ta != tb or not close:
            problems.append(f"{label}: top-3 {ta} recorded, {tb} re-run; max |Δw| = {dw:.3g}")
        top_ok &= ta == tb
        close_ok &= close
    stats["done"] += 1
    stats["top"] += int(top_ok)
    stats["close"] += int(close_ok)
    return problems


def _short(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "…"


__all__ = ["rerun_checks", "sample_units"]
