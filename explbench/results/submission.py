"""Submissions: the new explainers of a run in one file that a maintainer can verify.

``explbench submit RUN --out FILE [--against BUNDLE]`` writes one ``.zip`` of JSON, CSV and
Python text files (:func:`write_submission`); ``explbench verify`` reads it back
(:func:`read_submission`) and checks it (:mod:`explbench.results.verify`). Layout::

    submission.json   what is submitted: explbench version, run id, explainers, plug-in
                      hashes, manifest digest, a SHA-256 of every other file and of every record
    config.json       the run's resolved suite, run id and plug-in list (as the run wrote it)
    provenance.json   the run identity (model, data, task parameters), versions, seeds
    cases.json        per generator: version, cache key, case count, generation statistics
    manifest.json     per generator: every case id and its content hash
    records.jsonl     the records of the submitted explainers, one per (case, explainer)
    metrics.csv       the run's metrics.csv rows of those explainers (bytes as the run wrote them)
    plugins/NAME.py   the plug-in files the run loaded (its copies in RUN/plugins/)

A zip rather than a ``.tar.gz``: its members are read one by one without unpacking the rest,
every OS opens it without extra tools, and each member carries a CRC, so a damaged transfer is
caught before any check. It is written deterministically (sorted members, fixed timestamp and
permissions): the same run gives the same bytes. Nothing is pickled, nothing is extracted to a
path the archive names. :func:`check_archive`, :func:`check_records` and
:func:`check_plugins` check what the file proves about itself.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from explbench import __version__
from explbench.run.manifest import MANIFEST_FILE
from explbench.store.records import record_key
from explbench.store.run_store import RunStore, safe_name

#: bumped when the layout of a submission changes
SUBMISSION_FORMAT = 1
SUBMISSION_KIND = "explbench-submission"
SUBMISSION_FILE = "submission.json"
RECORDS_FILE = "records.jsonl"
METRICS_FILE = "metrics.csv"
#: the run's files a submission carries as they are
RUN_FILES = ("config.json", "provenance.json", "cases.json", MANIFEST_FILE)
PLUGIN_DIR = "plugins/"
#: a submission larger than this (unpacked) is refused as unusable (a zip bomb, or not ours)
MAX_UNPACKED_BYTES = 2 * 1024 ** 3
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
#: problem lines a check shows (the count of the rest is given)
SHOWN = 20

Log = Callable[[str], None]


def sha256_hex(data: bytes) -> str:
    """The full SHA-256 of ``data`` as 64 hex digits."""
    return hashlib.sha256(data).hexdigest()


def record_line(record: dict) -> bytes:
    """A record as it is stored: one line of sorted-key JSON (what its hash is taken over)."""
    return (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()


def record_name(record: dict) -> str:
    """How a record is named in messages and in ``submission.json``: ``case_id | explainer``."""
    case_id, explainer = record_key(record)
    return f"{case_id} | {explainer}"


def submission_digest(files: dict[str, str], records: dict[str, str]) -> str:
    """SHA-256 (32 hex digits) over the file hashes and record hashes of a submission."""
    blob = json.dumps({"files": files, "records": records}, sort_keys=True).encode()
    return sha256_hex(blob)[:32]


def board_explainers(bundle: str | Path) -> set[str]:
    """The explainer (record) names a bundle ranks; FileNotFoundError when it is no run."""
    store = RunStore(Path(bundle))
    store.config()  # a FileNotFoundError naming the folder when it is not a run
    return {str(r.get("explainer")) for r in store.records(lambda s: None)}


def metric_rows(text: str, explainers: set[str]) -> str:
    """The header and the rows of ``metrics.csv`` text whose ``explainer`` is in ``explainers``,
    byte for byte as they were written."""
    lines = text.splitlines(keepends=True)
    if not lines:
        return ""
    header = next(csv.reader([lines[0]]))
    if "explainer" not in header:
        raise ValueError("metrics.csv has no 'explainer' column")
    col = header.index("explainer")
    keep = [lines[0]]
    for line in lines[1:]:
        row = next(csv.reader([line]), [])
        if len(row) > col and row[col] in explainers:
            keep.append(line)
    return "".join(keep)


def _required(folder: Path, name: str, advice: str) -> bytes:
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; {advice}")
    return path.read_bytes()


def write_submission(run: str | Path, out: str | Path, against: str | Path | None = None,
                     log: Log = print) -> dict:
    """Write the submission of a finished run folder.

    Parameters
    ----------
    run : path
        A finished run folder (``explbench run --out RUN``).
    out : path
        The file to write (``.zip``), atomically.
    against : path, optional
        The bundle to join: only the explainers it does not rank are submitted (else all).
    log : callable

    Returns
    -------
    dict
        The ``submission.json`` written.

    Raises
    ------
    FileNotFoundError
        When the run (or the bundle) lacks a file, naming it.
    ValueError
        When nothing is new to the board, or a plug-in copy changed after the run.
    """
    run, out = Path(run), Path(out)
    store = RunStore(run)
    config = store.config()
    files: dict[str, bytes] = {}
    for name in RUN_FILES:
        files[name] = _required(run, name, "a run written by this explbench has it; run the "
                                "suite again with --out (or finish it with --resume)")
    metrics_text = _required(run, METRICS_FILE, f"the run has not finished; continue it with "
                             f"explbench run --resume {run}").decode()
    records = sorted(store.records(log), key=record_key)
    if not records:
        raise ValueError(f"{run} holds no records to submit")
    names = sorted({str(r.get("explainer")) for r in records})
    if against is not None:
        board = board_explainers(against)
        new = [n for n in names if n not in board]
        if not new:
            raise ValueError(f"every explainer of {run} ({', '.join(names)}) is already on the "
                             f"board {against}; there is nothing new to submit")
        log(f"submitting {', '.join(new)}; already on {against}: "
            f"{', '.join(n for n in names if n in board) or 'none'}")
        names = new
    chosen = set(names)
    records = [r for r in records if str(r.get("explainer")) in chosen]
    files[RECORDS_FILE] = b"".join(record_line(r) for r in records)
    files[METRICS_FILE] = metric_rows(metrics_text, chosen).encode()
    plugins = []
    for entry in config.get("plugins") or []:
        copy = run / str(entry.get("copy", ""))
        if not entry.get("copy") or not copy.is_file():
            raise FileNotFoundError(f"{run} lists the plug-in {entry.get('path')} but keeps no "
                                    f"copy of it ({copy}); run the suite again with --plugin")
        data = copy.read_bytes()
        digest = sha256_hex(data)
        if entry.get("sha256") and entry["sha256"] != digest:
            raise ValueError(f"{copy} changed after the run loaded it (SHA-256 {digest[:12]}…, "
                             f"the run recorded {entry['sha256'][:12]}…); restore it or run again")
        name = PLUGIN_DIR + safe_name(copy.name)
        files[name] = data
        plugins.append({"file": name, "path": str(entry.get("path")), "sha256": digest})
    hashes = {name: sha256_hex(data) for name, data in sorted(files.items())}
    per_record = {record_name(r): sha256_hex(record_line(r)) for r in records}
    manifest = json.loads(files[MANIFEST_FILE])
    suite = config.get("suite") or {}
    meta = {
        "kind": SUBMISSION_KIND, "format": SUBMISSION_FORMAT, "explbench_version": __version__,
        "run_id": config.get("run_id"), "suite": suite.get("name"), "task": suite.get("task"),
        "seed": suite.get("seed"), "explainers": names, "plugins": plugins,
        "manifest_digest": manifest.get("digest"),
        "against": None if against is None else str(against),
        "files": hashes, "records": per_record,
        "digest": submission_digest(hashes, per_record),
    }
    files[SUBMISSION_FILE] = (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode()
    _write_zip(out, files)
    return meta


def _write_zip(out: Path, files: dict[str, bytes]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as z:
            for name in sorted(files):
                info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                z.writestr(info, files[name], compresslevel=9)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


@dataclass
class Submission:
    """A submission read into memory (nothing extracted to disk).

    Attributes
    ----------
    path : Path
    meta : dict
        ``submission.json``.
    files : dict of str to bytes
        Every other member, by its name in the archive.
    """

    path: Path
    meta: dict
    files: dict[str, bytes]

    def json(self, name: str) -> dict:
        """A JSON member; ValueError naming it when it is missing or not JSON."""
        if name not in self.files:
            raise ValueError(f"{self.path} holds no {name}; it is not a complete submission")
        try:
            return json.loads(self.files[name])
        except ValueError as exc:
            raise ValueError(f"{self.path}: {name} is not valid JSON ({exc})") from None

    def records(self) -> tuple[list[dict], list[int]]:
        """The submitted records in the archive's order, and the numbers of lines that are not
        records (reported by :func:`check_records`)."""
        good, bad = [], []
        for i, line in enumerate(self.files.get(RECORDS_FILE, b"").splitlines(), start=1):
            try:
                rec = json.loads(line)
            except ValueError:
                rec = None
            if isinstance(rec, dict) and "case_id" in rec and "explainer" in rec:
                good.append(rec)
            elif line.strip():
                bad.append(i)
        return good, bad

    @property
    def metrics_text(self) -> str:
        return self.files.get(METRICS_FILE, b"").decode()


def read_submission(path: str | Path) -> Submission:
    """Read a submission into memory and check that it is one (not its hashes).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When it is no zip or no submission, is damaged (a CRC error), holds a member outside
        the layout, or unpacks to more than :data:`MAX_UNPACKED_BYTES`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; make a submission with "
                                f"explbench submit RUN --out FILE")
    what = f"{path} is not an explbench submission"
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{what} (not a zip file); make one with explbench submit RUN --out FILE")
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
                raise ValueError(f"{what}: it unpacks to more than {MAX_UNPACKED_BYTES} bytes")
            names = [i.filename for i in infos]
            if SUBMISSION_FILE not in names:
                raise ValueError(f"{what} (it holds no {SUBMISSION_FILE})")
            for name in names:
                if not _allowed(name):
                    raise ValueError(f"{what}: it holds {name!r}, which no submission holds")
            data = {name: z.read(name) for name in names}
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path} is damaged ({exc}); ask for the file again") from None
    try:
        meta = json.loads(data.pop(SUBMISSION_FILE))
    except ValueError as exc:
        raise ValueError(f"{what}: {SUBMISSION_FILE} is not JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("kind") != SUBMISSION_KIND:
        raise ValueError(f"{what} ({SUBMISSION_FILE} does not say kind = {SUBMISSION_KIND!r})")
    if not isinstance(meta.get("format"), int) or meta["format"] > SUBMISSION_FORMAT:
        raise ValueError(f"{path} has submission format {meta.get('format')}; this explbench "
                         f"reads format {SUBMISSION_FORMAT} (upgrade explbench)")
    for key in ("files", "records", "explainers"):
        if not isinstance(meta.get(key), (dict, list)):
            raise ValueError(f"{what}: {SUBMISSION_FILE} has no {key!r}")
    return Submission(path, meta, data)


# -- integrity: what the file itself proves ------------------------------------------------------


__all__ = ["SUBMISSION_FILE", "SUBMISSION_FORMAT", "Submission", "board_explainers", "metric_rows", "read_submission", "record_line", "record_name", "sha256_hex", "submission_digest", "write_submission"]


def _allowed(name: str) -> bool:
    if name in (SUBMISSION_FILE, RECORDS_FILE, METRICS_FILE, *RUN_FILES):
        return True
    rest = name[len(PLUGIN_DIR):] if name.startswith(PLUGIN_DIR) else ""
    return bool(rest) and rest == safe_name(rest) and not rest.startswith(".")
