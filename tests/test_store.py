import json

import pytest

from explbench.store import RunStore


def test_append_read_and_torn_line_repair(tmp_path):
    s = RunStore(tmp_path / "run")
    s.create({"a": 1}, {"p": 2})
    for i in range(3):
        s.append({"case_id": f"c{i}", "explainer": "e", "v": i})
    with open(s.records_path, "ab") as fh:  # a kill in the middle of a write
        fh.write(b'{"case_id": "c3", "expl')
    assert [r["v"] for r in s.records()] == [0, 1, 2]
    s.repair()
    s.append({"case_id": "c3", "explainer": "e", "v": 3})
    assert [r["v"] for r in s.records()] == [0, 1, 2, 3]
    assert s.done() == {(f"c{i}", "e") for i in range(4)}
    lines = s.records_path.read_text().splitlines()
    assert all(json.loads(line) for line in lines)


def test_existing_run_is_not_overwritten(tmp_path):
    s = RunStore(tmp_path / "run")
    s.create({}, {})
    with pytest.raises(FileExistsError, match="--resume"):
        RunStore(tmp_path / "run").create({}, {})


def test_nan_is_refused_in_records(tmp_path):
    s = RunStore(tmp_path / "run")
    s.create({}, {})
    with pytest.raises(ValueError):
        s.append({"v": float("nan")})
