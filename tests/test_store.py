import json

import pytest

from explbench.store.run_store import RunStore


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
    assert {(r['case_id'], r['explainer']) for r in s.records()} == {(f"c{i}", "e") for i in range(4)}
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


def test_corrupt_middle_line_is_skipped_reported_and_quarantined(tmp_path):
    s = RunStore(tmp_path / "run")
    s.create({}, {})
    s.append({"case_id": "c0", "explainer": "e", "v": 0})
    with open(s.records_path, "ab") as fh:
        fh.write(b"garbage\n")
    s.append({"case_id": "c1", "explainer": "e", "v": 1})
    read = s.read_records()
    assert [r["v"] for r in read.records] == [0, 1] and read.corrupt_lines == [2]
    with pytest.warns(UserWarning, match=r"line\(s\) 2 are not valid records"):
        assert len(s.records()) == 2
    notes = []
    s.repair(notes.append)
    assert "records.corrupt.jsonl" in notes[0]
    assert (s.folder / "records.corrupt.jsonl").read_bytes() == b"garbage\n"
    assert s.read_records().corrupt_lines == [] and {(r['case_id'], r['explainer']) for r in s.records()} == {("c0", "e"), ("c1", "e")}


def test_duplicates_count_once_the_last_wins_and_retries_are_not_reported(tmp_path):
    s = RunStore(tmp_path / "run")
    s.create({}, {})
    s.append_many([{"case_id": "c0", "explainer": "e", "status": "failed"},
                   {"case_id": "c1", "explainer": "e", "status": "ok", "v": 1}])
    s.append({"case_id": "c0", "explainer": "e", "status": "ok", "v": 2})  # a retry
    read = s.read_records()
    assert [r.get("v") for r in read.records] == [1, 2]
    assert read.retried == 1 and read.duplicates == 0 and read.problems(s.records_path) == []
    s.append({"case_id": "c1", "explainer": "e", "status": "ok", "v": 3})  # a second writer's
    read = s.read_records()
    assert read.duplicates == 1 and [r["v"] for r in read.records] == [2, 3]


def test_one_writer_per_folder_and_a_stale_lock_is_taken_over(tmp_path):
    import os
    import subprocess
    import sys

    from explbench.store.lock import RunLocked

    s = RunStore(tmp_path / "run")
    with s.lock():
        with pytest.raises(RunLocked, match=rf"PID {os.getpid()} on .*--resume"):
            s.lock().acquire()
    assert not (s.folder / "run.lock").exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (s.folder / "run.lock").write_text(json.dumps({"pid": int(dead), "host": "h", "started_at": "t"}))
    notes = []
    with s.lock(notes.append):
        assert json.loads((s.folder / "run.lock").read_text())["pid"] == os.getpid()
    assert notes == [f"taking over the lock of {s.folder} left by PID {dead} on h, started t, "
                     f"which is no longer running"]


def test_damaged_json_names_the_file_and_the_way_out(tmp_path):
    from explbench.store.run_store import RunFolderError

    s = RunStore(tmp_path / "run")
    s.create({"suite": {}}, {})
    (s.folder / "config.json").write_text("{")
    with pytest.raises(RunFolderError, match=r"config\.json is not valid JSON .*new --out"):
        s.config()


def test_case_and_plugin_files_are_kept_in_the_run(tmp_path):
    s = RunStore(tmp_path / "run")
    s.create({}, {})
    src = tmp_path / "cache.npz"
    src.write_bytes(b"cases")
    kept = s.keep_case_file(src, "abc")
    assert kept == s.folder / "cases" / "abc.npz" and kept.read_bytes() == b"cases"
    plugin = tmp_path / "p.py"
    plugin.write_text("x = 1\n")
    entry = s.keep_plugin(plugin)
    assert entry["path"] == str(plugin.resolve()) and (s.folder / entry["copy"]).read_text() == "x = 1\n"


def test_packed_records_read_the_same_and_a_resume_unpacks_them(tmp_path):
    s = RunStore(tmp_path / "run")
    s.create({}, {})
    for i in range(5):
        s.append({"case_id": f"c{i}", "explainer": "e", "v": i})
    before = s.records()
    plain = s.records_path.read_bytes()
    packed = s.pack(log=lambda *_: None)
    assert packed.name == "records.jsonl.gz" and not s.records_path.exists()
    assert packed.stat().st_size < len(plain)
    assert s.records() == before and {(r['case_id'], r['explainer']) for r in s.records()} == {(f"c{i}", "e") for i in range(5)}
    first = packed.read_bytes()
    s.repair(log=lambda *_: None)  # what a resume does before it appends
    assert s.records_path.read_bytes() == plain and not packed.exists()
    s.append({"case_id": "c5", "explainer": "e", "v": 5})
    assert [r["v"] for r in s.records()] == [0, 1, 2, 3, 4, 5]
    s.pack(log=lambda *_: None)
    s2 = RunStore(tmp_path / "again")
    s2.create({}, {})
    for i in range(5):
        s2.append({"case_id": f"c{i}", "explainer": "e", "v": i})
    assert s2.pack(log=lambda *_: None).read_bytes() == first  # no name or time in the header


def test_packed_and_plain_records_together_or_a_broken_gzip_are_refused(tmp_path):
    s = RunStore(tmp_path / "run")
    s.create({}, {})
    s.append({"case_id": "c0", "explainer": "e", "v": 0})
    s.packed_records_path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="both records.jsonl and records.jsonl.gz"):
        s.records()
    s.records_path.unlink()
    with pytest.raises(ValueError, match="not a readable gzip file"):
        s.records()
    empty = RunStore(tmp_path / "empty")
    empty.create({}, {})
    with pytest.raises(ValueError, match="no records.jsonl to pack"):
        empty.pack(log=lambda *_: None)
