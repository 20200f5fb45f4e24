"""A run's cases: made once per generator, cached on disk under a recipe key, reused by every explainer."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

from explbench.api import registry
from explbench.api import Task
from explbench.api.generator import Generator
from explbench.generators.common import code_version
from explbench.core.cases import Case, cache_key, load_cases, save_cases
from explbench.run.identity import TaskIdentity, task_identity
from explbench.core.segmentation import Segmentation
from explbench.core.seeding import seed_for
from explbench.store.run_store import RunStore
from explbench.store.provenance import cache_dir
from explbench.run.suite import SuiteConfig, _generator_order
from explbench.run.suite_files import accepts_per_cluster, generator_kwargs
from explbench.run.case_pack import Pack
from explbench.stats.power import describe
from explbench.run.prepare import Log, RunError


def generator_identity(gen: object, task: Task) -> dict:
    """Everything that determines a generator's cases: its resolved configuration, defaults
    included (and, where it has one, the configuration it resolves against the task), plus its
    ``version`` and its :func:`source_hash`. The case-cache key, so changing a default or the
    code never reuses stale cases."""
    ident = {"params": gen.get_params(), "version": str(gen.version), "source": source_hash(gen)}
    resolve = getattr(gen, "config", None)
    if callable(resolve):
        cfg = resolve(task)
        ident["resolved"] = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    return ident


def source_hash(gen: Generator) -> str:
    """Hash of a generator's module and its declared ``shared_sources``: a cache detail.

    It keys the case cache, so that edited generator code never serves cases made by the old
    code; pairing and compatibility never read it (they read content hashes and ``version``).
    """
    cls = type(gen)
    return code_version(inspect.getfile(cls), *cls.shared_sources)


def _load_cases_file(path: Path, log: Log) -> tuple[list[Case], dict] | None:
    try:
        return load_cases(path)
    except Exception as exc:  # noqa: BLE001 - a damaged file is made again
        log(f"the case file {path} cannot be read ({type(exc).__name__}: {exc}); making its cases again")
        return None


def build_cases(config: SuiteConfig, task: Task, segments: Segmentation, progress: bool = True,
                log: Log = print, *, store: RunStore | None = None,
                identity: TaskIdentity | None = None,
                pack: Pack | None = None) -> tuple[dict[str, list[Case]], dict[str, dict]]:
    """Cases of every generator in the suite, from the content-addressed cache when present.

    The cache key covers the task's model and data (:func:`explbench.run.identity.task_identity`).
    With ``store``, each generator's case file is also kept in the run folder
    (``RUN/cases/<key>.npz``), and a case file already there is what the run uses. A task whose
    model cannot be identified gets no cache: its cases are made for the run and kept only in
    the run folder.

    With ``pack`` (:func:`explbench.run.case_pack.load_pack`, every hash already verified), the
    cases of every generator are the pack's and nothing is generated; the pack must hold every
    generator of the suite, at the generator's version, made for this task's model.
    """
    identity = identity or task_identity(task, config.split)
    if pack is not None:
        check_pack(pack, config, identity)
    if identity.uncacheable:
        log(f"note: {identity.uncacheable}")
    all_cases: dict[str, list[Case]] = {}
    info: dict[str, dict] = {}
    keys: dict[str, str] = {}
    for name in _generator_order(config.generators):
        table = config.generators[name]
        n = int(table.get("n", 16))
        parents = list(table.get("from", []))
        cls = registry.generators.get(name)
        gen = cls(**generator_kwargs(config, name))
        extra = {}
        if accepts_per_cluster(cls) == "generate":
            extra["per_cluster"] = int(table.get("per_cluster", 1))
        seed = seed_for("generator", name, base=config.seed)
        parts = dict(task=task.name, task_version=task.version, model=identity.model, code=identity.code,
                     data=identity.data, generator=name, params=generator_identity(gen, task),
                     n=n, seed=seed, split=config.split, segmentation=segments.kind,
                     parents=[keys[p] for p in parents])
        if extra:
            parts["per_cluster"] = extra["per_cluster"]
        if identity.uncacheable:
            parts["uncached"] = True
        key = cache_key(**parts)
        keys[name] = key
        cached = cache_dir() / "cases" / f"{key}.npz"
        loaded = None
        if store is not None and store.case_file(key).exists():
            loaded = _load_cases_file(store.case_file(key), log)
            where = "the run folder"
        if pack is not None:
            loaded = (pack.cases.get(name, []), {"from_pack": str(pack.path)})
            where = f"the pack {pack.path.name}"
        if loaded is None and not identity.uncacheable and cached.exists():
            loaded = _load_cases_file(cached, log)
            where = f"the cache ({cached.name})"
        if loaded is not None:
            cases, stats = loaded
            log(f"{name}: {len(cases)} cases from {where}")
        else:
            try:
                if parents:
                    parent_cases = [c for p in parents for c in all_cases[p]]
                    cases, stats = gen.derive(task, segments, parent_cases, seed, progress=progress)
                else:
                    cases, stats = gen.generate(task, segments, n, seed, split=config.split,
                                                progress=progress, **extra)
            except Exception as exc:  # noqa: BLE001 - a generator or task plug-in
                where = f" ({store.folder} holds no records yet)" if store is not None else ""
                raise RunError(f"generator {name!r} failed on task {task.name!r}: "
                               f"{type(exc).__name__}: {exc}{where}. If the suite is at fault, "
                               f"change it and start a new run; if the task is, fix it and "
                               f"continue with --resume") from None
            target = store.case_file(key) if (identity.uncacheable and store is not None) else cached
            if not identity.uncacheable or store is not None:
                save_cases(target, cases, stats)
            log(f"{name}: {len(cases)} cases generated" + (" — no successful case; the run goes on "
                "with none for it" if not cases else ""))
        if store is not None and not store.case_file(key).exists():
            if pack is not None:
                save_cases(store.case_file(key), cases, stats)
            elif not identity.uncacheable:
                store.keep_case_file(cached, key)
        all_cases[name] = cases
        info[name] = {"version": str(gen.version), "cache_key": key, "n_cases": len(cases),
                      "stats": stats, "from": parents,
                      "file": f"cases/{key}.npz" if store is not None else None,
                      "cached": not identity.uncacheable}
    return all_cases, info


def check_pack(pack: Pack, config: SuiteConfig, identity: TaskIdentity) -> None:
    """Refuse a pack that does not fit the suite: a generator it lacks or holds at another
    version, or cases made for another task or model."""
    made_for = pack.manifest.get("task") or {}
    if made_for.get("task") not in (None, config.task):
        raise RunError(f"the pack {pack.path} holds cases of task {made_for.get('task')!r}, not "
                       f"{config.task!r}; run it with --task {made_for.get('task')}")
    if made_for.get("model") and identity.model and made_for["model"] != identity.model:
        raise RunError(f"the pack {pack.path} was made for model {made_for['model']}, but this "
                       f"task's model is {identity.model}: its cases would not flip this model. "
                       f"Use the weights the pack was made with, or regenerate the cases")
    have = pack.manifest.get("generators") or {}
    for name in config.generators:
        if name not in have:
            raise RunError(f"the pack {pack.path} holds no cases of generator {name!r} (it holds "
                           f"{', '.join(sorted(have)) or 'none'}); drop it with --generators or use "
                           f"a pack of the whole suite")
        want = str(registry.generators.get(name).version)
        if str(have[name].get("version")) != want:
            raise RunError(f"the pack {pack.path} holds {name!r} cases of version "
                           f"{have[name].get('version')}; this explbench makes version {want}, so "
                           f"they are another case set. Use a pack of version {want}, or the "
                           f"explbench release that made the pack")


def power_statement(cases_by_gen: dict[str, list[Case]], discordance: float) -> tuple[dict, str | None]:
    """The attack generators' case counts and the minimum-detectable-difference statement."""
    n_by = {g: len(cs) for g, cs in cases_by_gen.items()
            if cs and all(c.true_segments is None for c in cs)}
    if not n_by:
        return n_by, None
    return n_by, describe(n_by, discordance)
