"""Reading a run's append-only records: one JSON line each, a torn last line repaired, a record's unit key."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RecordsRead:
    """What :meth:`RunStore.read_records` found in ``records.jsonl``.

    Attributes
    ----------
    records : list of dict
        One record per (case_id, explainer): the last one written for that key.
    corrupt_lines : list of int
        1-based numbers of complete lines that are not a JSON object.
    torn : bool
        Whether the file ends in an incomplete line (an interrupted write).
    duplicates : int
        Records dropped because a later record has the same (case_id, explainer), not counting
        ``retried``.
    retried : int
        Failed records replaced by a later one (``--retry-failed``): expected, not a problem.
    """

    records: list[dict]
    corrupt_lines: list[int] = field(default_factory=list)
    torn: bool = False
    duplicates: int = 0
    retried: int = 0

    def problems(self, path: Path) -> list[str]:
        """Plain-language notes about what was skipped, for the user."""
        out = []
        if self.corrupt_lines:
            lines = ", ".join(str(i) for i in self.corrupt_lines[:10])
            more = f" and {len(self.corrupt_lines) - 10} more" if len(self.corrupt_lines) > 10 else ""
            out.append(f"{path}: line(s) {lines}{more} are not valid records and were skipped; "
                       f"the {len(self.records)} valid records around them are kept")
        if self.duplicates:
            out.append(f"{path}: {self.duplicates} record(s) repeat a (case, explainer) already "
                       f"recorded; each unit is counted once (its last record)")
        return out


def record_key(record: dict) -> tuple[str, str]:
    """The identity of a record: (case_id, explainer)."""
    return (str(record.get("case_id")), str(record.get("explainer")))


def _parse(data: bytes) -> tuple[list[tuple[int, int, dict]], list[tuple[int, bytes]], bool]:
    """(line number, byte offset, record) of valid lines, (line number, bytes) of corrupt
    complete lines, and whether the last line is torn."""
    good, bad = [], []
    offset = 0
    torn = False
    for i, line in enumerate(data.splitlines(keepends=True), start=1):
        if not line.endswith(b"\n"):
            torn = True
            break
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and "case_id" in obj and "explainer" in obj:
            good.append((i, offset, obj))
        elif line.strip():
            bad.append((i, line))
        offset += len(line)
    return good, bad, torn
