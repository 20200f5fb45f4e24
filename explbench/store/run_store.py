"""Run folders: resolved config, provenance, append-only records, metric tables.

Layout of a run folder::

    config.json        the resolved suite (what ran), its run id and its plug-in files
    provenance.json    versions, git revision, model hash, data version, seeds, machine,
                       batch size, time limit, explainers' resolved parameters, finished_at
    cases.json         per generator: cache key, case count and generation statistics
    cases/KEY.npz      the cases themselves (hard links into the case cache, or copies)
    plugins/           a copy of every --plugin file the run loaded
    records.jsonl      one JSON object per (case, explainer), appended as each finishes
    records.jsonl.gz   the same, compressed, in a committed bundle (read as it is; a resume
                       unpacks it to records.jsonl before appending)
    records.corrupt.jsonl  damaged lines moved out of records.jsonl on resume (rarely)
    metrics.csv        tidy table: METRIC_COLUMNS
    timing.csv         wall-clock seconds per explanation (kept apart: they differ between runs)
    run.lock           while a run writes the folder: its PID and host (explbench.store.lock)

Nothing is pickled; a run killed at any point keeps every record written before. Records are
keyed by (case_id, explainer): when a key appears twice the last record counts, once.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Callable

import pandas as pd

from explbench.metrics.aggregate import COLUMNS as _AGGREGATE_COLUMNS
from explbench.store.lock import RunLock, RunLocked  # noqa: F401 - RunLocked is part of this API
from explbench.store.records import RecordsRead, _parse, record_key

#: columns of ``metrics.csv``: the run and task, then the aggregator's columns in its order
METRIC_COLUMNS = ["run_id", "task", *_AGGREGATE_COLUMNS]


class RunFolderError(ValueError):
    """A run folder whose files cannot be used as they are; the message says how to go on."""


def _write_durably(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically, on disk before the rename (a kill leaves the old
    file or the new one, never a part)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class RunStore:
    """One run folder.

    Parameters
    ----------
    folder : Path
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @property
    def records_path(self) -> Path:
        return self.folder / "records.jsonl"

    @property
    def packed_records_path(self) -> Path:
        """``records.jsonl.gz``: a bundle's records, compressed (see :meth:`pack`)."""
        return self.folder / "records.jsonl.gz"

    def _records_bytes(self) -> bytes | None:
        """The bytes of records.jsonl, or of records.jsonl.gz unpacked when only it exists."""
        if self.records_path.exists():
            if self.packed_records_path.exists():
                raise ValueError(f"{self.folder} holds both records.jsonl and records.jsonl.gz; "
                                 f"keep one (a resume unpacks the .gz, so remove the .gz if it is the older)")
            return self.records_path.read_bytes()
        if self.packed_records_path.exists():
            try:
                return gzip.decompress(self.packed_records_path.read_bytes())
            except (OSError, EOFError) as exc:
                raise ValueError(f"{self.packed_records_path} is not a readable gzip file ({exc}); "
                                 f"restore it from the repository or re-run the suite") from exc
        return None

    def exists(self) -> bool:
        return (self.folder / "config.json").exists()

    def lock(self, log: Callable[[str], None] = print) -> RunLock:
        """The folder's writer lock (a context manager); creates the folder if needed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return RunLock(self.folder, log)

    def create(self, config: dict, prov: dict) -> None:
        """Start a new run; refuses a folder that already holds one (use resume)."""
        if self.exists():
            raise FileExistsError(
                f"{self.folder} already holds a run; continue it with --resume {self.folder} or "
                f"choose another --out")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.write_json("provenance.json", prov)
        self.write_json("config.json", config)  # last: its presence marks a run

    def write_json(self, name: str, obj: object) -> None:
        """Write a JSON file atomically."""
        tmp = self.folder / f".{name}.tmp"
        try:
            tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
            os.replace(tmp, self.folder / name)
        finally:
            if tmp.exists():
                tmp.unlink()

    def read_json(self, name: str) -> dict:
        """A JSON file of the run; a damaged one raises :class:`RunFolderError` naming it."""
        path = self.folder / name
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise RunFolderError(
                f"{path} is not valid JSON ({exc}); the run folder is damaged. Restore the file, "
                f"or start over with a new --out (delete {self.folder} if you no longer need it)"
            ) from None

    def config(self) -> dict:
        if not self.exists():
            raise FileNotFoundError(f"{self.folder} is not a run folder (no config.json)")
        config = self.read_json("config.json")
        if not isinstance(config, dict) or not isinstance(config.get("suite"), dict):
            raise RunFolderError(
                f"{self.folder / 'config.json'} holds no suite; the run folder is damaged. Start "
                f"over with a new --out (delete {self.folder} if you no longer need it)")
        return config

    # -- records ---------------------------------------------------------------------------------

    def read_records(self) -> RecordsRead:
        """Every valid record, one per (case_id, explainer) (the last written wins).

        A torn last line (a kill in the middle of a write) is ignored; a corrupt complete line
        is skipped and reported in the result, and the valid records after it are kept.
        """
        data = self._records_bytes()
        if data is None:
            return RecordsRead([])
        good, bad, torn = _parse(data)
        last: dict[tuple[str, str], int] = {}
        for j, (_, _, rec) in enumerate(good):
            last[record_key(rec)] = j
        keep = sorted(last.values())
        kept = set(keep)
        retried = sum(1 for j, (_, _, rec) in enumerate(good)
                      if j not in kept and rec.get("status") == "failed")
        return RecordsRead([good[j][2] for j in keep], [i for i, _ in bad], torn,
                           len(good) - len(keep) - retried, retried)

    def records(self, log: Callable[[str], None] | None = None) -> list[dict]:
        """The records of :meth:`read_records`; what was skipped goes to ``log`` (or a warning)."""
        read = self.read_records()
        for note in read.problems(self.records_path):
            if log is not None:
                log(note)
            else:
                warnings.warn(note, RecordsWarning, stacklevel=2)
        return read.records

    def repair(self, log: Callable[[str], None] = print) -> None:
        """Make ``records.jsonl`` clean for appending (call it holding the lock).

        A torn last line is cut. Corrupt complete lines are moved to ``records.corrupt.jsonl``
        (so nothing is destroyed) and the file is rewritten without them; their units run again.
        """
        p = self.records_path
        if not p.exists() and self.packed_records_path.exists():
            _write_durably(p, self._records_bytes())
            self.packed_records_path.unlink()
            log(f"{self.packed_records_path}: unpacked to records.jsonl to append to it")
        if not p.exists():
            return
        data = p.read_bytes()
        good, bad, torn = _parse(data)
        if bad:
            with open(self.folder / "records.corrupt.jsonl", "ab") as fh:
                for _, line in bad:
                    fh.write(line)
            _write_durably(p, b"".join((json.dumps(rec, sort_keys=True) + "\n").encode() for _, _, rec in good))
            log(f"{p}: line(s) {', '.join(str(i) for i, _ in bad)} were not valid records; "
                f"they are kept in records.corrupt.jsonl, the {len(good)} valid lines are kept, "
                f"and the units of the bad lines run again")
        elif torn:
            size = sum(len(line) for line in data.splitlines(keepends=True) if line.endswith(b"\n"))
            with open(p, "r+b") as fh:
                fh.truncate(size)
            log(f"{p}: dropped an incomplete last line (an interrupted write); its unit runs again")

    def pack(self, log: Callable[[str], None] = print) -> Path:
        """Compress records.jsonl into records.jsonl.gz (byte-stable: no name or time in the
        header) and remove the plain file, for a bundle that is committed; reading is unchanged.

        Raises
        ------
        RunFolderError
            When the folder has no records.
        """
        with self.lock(log):
            if not self.records_path.exists():
                if self.packed_records_path.exists():
                    return self.packed_records_path
                raise RunFolderError(f"{self.folder} has no records.jsonl to pack")
            data = self.records_path.read_bytes()
            _write_durably(self.packed_records_path, gzip.compress(data, compresslevel=9, mtime=0))
            self.records_path.unlink()
        return self.packed_records_path

    def append(self, record: dict) -> None:
        """Append one record as a single write, flushed to disk."""
        self.append_many([record])

    def append_many(self, records: list[dict]) -> None:
        """Append records in one write, flushed to disk; on a failed write (a full disk) the
        file is cut back to where it was, so no partial line stays behind."""
        data = b"".join((json.dumps(r, sort_keys=True, allow_nan=False) + "\n").encode()
                        for r in records)
        fd = os.open(self.records_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            start = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError:
                try:
                    os.ftruncate(fd, start)
                except OSError:
                    pass
                raise
        finally:
            os.close(fd)

    def write_wav(self, case_id: str, explainer: str, audio, sample_rate: int) -> str:
        """Write a listenable explanation as 16-bit WAV; returns its path relative to the run."""
        import soundfile as sf

        rel = Path("explanations") / safe_name(case_id) / f"{safe_name(explainer)}.wav"
        path = self.folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.wav")
        try:
            sf.write(tmp, audio, sample_rate, subtype="PCM_16")
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return str(rel)

    # -- cases and plug-ins kept with the run ----------------------------------------------------

    def case_file(self, key: str) -> Path:
        """Where the run keeps the cases of one generator: ``cases/<key>.npz``."""
        return self.folder / "cases" / f"{key}.npz"

    def keep_case_file(self, source: Path, key: str) -> Path:
        """Put a cached case file into the run folder (a hard link where possible, else a copy)."""
        dest = self.case_file(key)
        if dest.exists():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, dest)
        except OSError:
            tmp = dest.with_suffix(".tmp")
            try:
                shutil.copyfile(source, tmp)
                os.replace(tmp, dest)
            finally:
                if tmp.exists():
                    tmp.unlink()
        return dest

    def keep_plugin(self, path: Path) -> dict:
        """Copy a plug-in file into ``plugins/`` and describe it (path, copy, sha256)."""
        src = Path(path).resolve()
        data = src.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        rel = Path("plugins") / f"{digest[:8]}-{safe_name(src.name)}"
        dest = self.folder / rel
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, dest)
        return {"path": str(src), "copy": str(rel), "sha256": digest}

    # -- tables ----------------------------------------------------------------------------------

    def write_csv(self, name: str, df: pd.DataFrame) -> Path:
        """Write a table with a fixed float format so equal numbers give equal bytes."""
        path = self.folder / name
        tmp = self.folder / f".{name}.tmp"
        try:
            df.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return path

    def metrics(self) -> pd.DataFrame:
        path = self.folder / "metrics.csv"
        if not path.exists():
            raise FileNotFoundError(f"{self.folder} has no metrics.csv; the run has not finished "
                                    f"(continue it with --resume {self.folder})")
        return pd.read_csv(path, dtype={"k": "Int64"})


class RecordsWarning(UserWarning):
    """Lines of records.jsonl that were skipped or counted once."""


def safe_name(s: str) -> str:
    """``s`` as one file name: every character other than letters, digits, ``-_.`` replaced by
    ``_``, and leading dots too, so that no user-given name (a suite's, an explainer's) can
    climb out of its folder or hide ("../../x" gives "_._.._x")."""
    out = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in s)
    stripped = out.lstrip(".")
    return "_" * (len(out) - len(stripped)) + stripped if out else "_"
