"""One-off: give bundles made before the run identity held the model's code hash that hash.

It is attached only when the bundle's recorded model (state_dict) and data hashes equal the ones
computed now, i.e. the bundle ran on today's weights and data.

    python scripts/attach_model_code.py leaderboards/runs/*/
"""
import json, sys
from datetime import datetime, timezone
from pathlib import Path
from explbench.run.prepare import make_task
from explbench.run.suite import SuiteConfig
from explbench.run.identity import task_identity
from explbench.store.run_store import RunStore
for b in sys.argv[1:]:
    store = RunStore(Path(b))
    cfg = SuiteConfig.from_dict(store.config()["suite"])
    prov = store.read_json("provenance.json")
    ident = task_identity(make_task(cfg), cfg.split)
    rec = prov["identity"]
    assert rec["model"] == ident.model and rec["data"] == ident.data, (b, rec["model"], ident.model)
    rec["model_code"] = ident.code
    prov["identity_model_code_attached"] = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "why": "the identity gained the model's code hash after this run; its model and data hashes equal today's, so the code hash is today's"}
    store.write_json("provenance.json", prov)
    man = store.read_json("manifest.json")
    man["task"]["model_code"] = ident.code
    store.write_json("manifest.json", man)
    print(b, ident.code)
