"""Golden cases: a few cases of every shipped generator from a fixed seed, by content hash.

``tests/data/case_hashes.json`` holds, per generator, its case-set ``version`` and the content
hashes of the cases below. ``tests/test_case_versions.py`` makes them again and fails, naming
the generator, when the output changed but the version did not. After a deliberate change:
bump the generator's ``version``, regenerate the committed boards that use it, and rewrite the
file:

    python tests/golden_cases.py --write
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from explbench.api import registry
from explbench.core.cases import content_hash
from explbench.core.segmentation import grid

GOLDEN = Path(__file__).resolve().parent / "data" / "case_hashes.json"
SEED = 20261208
#: (generator, constructor arguments, n); small and quick, but every code path of each generator
RECIPES = {
    "cw-spectrogram": ({"max_iter": 300}, 3),
    "cw-waveform": ({"max_iter": 300}, 3),
    "planted": ({"steps": 8, "refine": 2}, 2),
    "localized": ({"ks": (1, 3, 5)}, None),
}


def golden_hashes() -> dict[str, dict]:
    """Per generator: ``{"version": ..., "hashes": [content hash of each case, in order]}``."""
    torch.set_num_threads(1)  # one thread: the same float rounding on every machine of a kind
    task = registry.tasks.get("svd-synth")()
    segments = grid(tuple(task.domain_shape), 5, 4)
    out: dict[str, dict] = {}
    made: dict[str, list] = {}
    for name, (params, n) in RECIPES.items():
        gen = registry.generators.get(name)(**params)
        if gen.derived:
            parents = made["cw-spectrogram"] + made["cw-waveform"]
            cases, _ = gen.derive(task, segments, parents, SEED, progress=False)
        else:
            cases, _ = gen.generate(task, segments, n, SEED, split="test", progress=False)
        made[name] = cases
        out[name] = {"version": str(gen.version), "hashes": [content_hash(c) for c in cases]}
    return out


if __name__ == "__main__":
    got = golden_hashes()
    if "--write" in sys.argv:
        GOLDEN.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
        print(f"wrote {GOLDEN}")
    print(json.dumps({k: {"version": v["version"], "n": len(v["hashes"])} for k, v in got.items()}))
