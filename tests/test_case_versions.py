"""Case sets are versioned by hand: changed output without a version bump fails here.

The golden hashes (``tests/data/case_hashes.json``, written by ``tests/golden_cases.py``) are
the content of a few cases of every shipped generator from a fixed seed. Editing a comment or
refactoring a generator changes none of them; changing what it makes changes them, and then
its ``version`` must change too (and the committed boards that use it are regenerated).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from golden_cases import GOLDEN, golden_hashes

from explbench.api import registry
from explbench.run.manifest import digest, read_manifest

BUNDLES = Path(__file__).resolve().parent.parent / "leaderboards" / "runs"


@pytest.fixture(scope="module")
def made():
    return golden_hashes()



def test_every_shipped_generator_has_golden_cases():
    golden = json.loads(GOLDEN.read_text())
    shipped = {e.name for e in registry.generators.entries()
               if e.obj.__module__.startswith("explbench.generators.")}  # not the tests' plug-ins
    assert set(golden) == shipped
    assert all(len(v["hashes"]) >= 2 for v in golden.values()), golden


@pytest.mark.parametrize("name", sorted(json.loads(GOLDEN.read_text())))
def test_output_changes_only_with_the_version(made, name):
    golden = json.loads(GOLDEN.read_text())[name]
    got = made[name]
    if got["version"] == golden["version"]:
        assert got["hashes"] == golden["hashes"], (
            f"generator {name!r} now makes other cases than its version {golden['version']} "
            f"did. If that is intended: bump {name}'s version, regenerate the committed boards "
            f"that use it, and run `python tests/golden_cases.py --write`; if not, the change "
            f"broke the case set")
    else:
        pytest.fail(f"generator {name!r} is at version {got['version']} but the golden cases are "
                    f"of version {golden['version']}: run `python tests/golden_cases.py --write`")


def test_a_comment_in_a_generator_changes_its_cache_key_only(tmp_path, monkeypatch):
    """The cache keys by source, the comparison by content: two copies of a generator that
    differ by a comment have other source hashes (the cache is not reused) and the same
    version. That their cases keep their content, so no pairing changes, is
    tests/test_faults.py::test_the_identity_sees_code_edits_but_not_comments."""
    import importlib.util

    from explbench.run.case_cache import source_hash

    code = ("from explbench import Generator\n\n\nclass Lift(Generator):\n"
            "    def generate(self, task, segments, n, seed, **kw):\n        return [], {}\n")
    gens = []
    for i, text in enumerate((code, code.replace("        return", "        # nothing to make\n        return"))):
        path = tmp_path / f"lift{i}.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location(f"lift{i}", path)
        mod = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, f"lift{i}", mod)  # inspect finds a class's file there
        spec.loader.exec_module(mod)
        gens.append(mod.Lift())
    assert source_hash(gens[0]) != source_hash(gens[1])
    assert gens[0].version == gens[1].version == "1"


@pytest.mark.parametrize("bundle", sorted(p.name for p in BUNDLES.iterdir() if p.is_dir()))
def test_every_committed_bundle_was_made_by_todays_generator_versions(bundle):
    folder = BUNDLES / bundle
    manifest = read_manifest(folder)
    assert manifest["digest"] == digest(manifest), f"{bundle}: manifest edited by hand"
    info = json.loads((folder / "cases.json").read_text())
    for name, entry in manifest["generators"].items():
        today = str(registry.generators.get(name).version)
        assert entry["version"] == today == info[name]["version"], (
            f"{bundle}: {name} cases are version {entry['version']}, today's generator makes "
            f"version {today}; regenerate the bundle")
        assert entry["n_cases"] == len(entry["cases"]) == info[name]["n_cases"]
    # every record names a case of the manifest, by id and content
    by_id = {cid: h for g in manifest["generators"].values() for cid, h in g["cases"].items()}
    from explbench.store.run_store import RunStore

    for rec in RunStore(folder).records():
        assert by_id.get(rec["case_id"]) == rec.get("case_hash"), (bundle, rec["case_id"])
