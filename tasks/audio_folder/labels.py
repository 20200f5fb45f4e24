"""The labels CSV of an audio-folder task: which file, which part of it, which class, which group.

Columns (header row required, any order)::

    file,start,end,label,group,split
    song1.wav,0.0,2.5,voice,album-a,test
    song2.flac,,,music,album-b,test

``file`` and ``label`` are required. ``start``/``end`` (seconds) delimit the labelled region
(empty: the whole file). ``group`` is the unit of independence (default: the file). ``split``
is train, valid or test (default: test, the only split a pretrained model needs).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("file", "start", "end", "label", "group", "split")
REQUIRED = ("file", "label")
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Region:
    """One labelled row of the CSV.

    Attributes
    ----------
    file : str
        Path relative to the folder.
    start, end : float or None
        Seconds; None for the start or end of the file.
    label : int
        Class index.
    group : str
        Unit of independence.
    split : str
    line : int
        Line of the CSV (for messages).
    """

    file: str
    start: float | None
    end: float | None
    label: int
    group: str
    split: str
    line: int


class LabelsError(ValueError):
    """A labels CSV that cannot be used, with the file and line at fault."""


def _seconds(value: str, column: str, where: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        t = float(value)
    except ValueError:
        raise LabelsError(f"{where}: {column} {value!r} is not a number of seconds") from None
    if not math.isfinite(t) or t < 0:
        raise LabelsError(f"{where}: {column} {value!r} must be a finite, non-negative number of seconds")
    return t


def read_labels(path: Path, folder: Path, classes: tuple[str, ...] | None = None) -> tuple[list[Region], tuple[str, ...]]:
    """Read and check a labels CSV.

    Parameters
    ----------
    path : Path
        The CSV file.
    folder : Path
        Where the audio files are (``file`` is relative to it).
    classes : tuple of str, optional
        Class names in the model's output order; labels may be these names or their indices.
        Default: the sorted distinct labels of the CSV.

    Returns
    -------
    regions : list of Region
    classes : tuple of str

    Raises
    ------
    LabelsError
        Naming the file, the line and what to fix.
    """
    if not path.is_file():
        raise LabelsError(f"labels file {str(path)!r} does not exist; write a CSV with a header row "
                          f"'file,start,end,label,group,split' (file and label required)")
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise LabelsError(f"{path}: empty; write a header row 'file,label' (optionally start, end, group, "
                          f"split) and one row per labelled file or region")
    header = [h.strip().lower() for h in rows[0]]
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise LabelsError(f"{path}, line 1: unknown column(s) {unknown}; the columns are {', '.join(COLUMNS)}")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise LabelsError(f"{path}, line 1: missing column(s) {missing}; a header row names at least file and label")
    raw_labels = [r[header.index("label")].strip() for r in rows[1:] if len(r) > header.index("label")]
    if classes is None:
        if all(v.isdigit() for v in raw_labels):
            classes = tuple(str(i) for i in range(max(int(v) for v in raw_labels) + 1))
        else:
            classes = tuple(sorted(set(raw_labels)))
    classes = tuple(classes)
    regions = []
    for i, row in enumerate(rows[1:], start=2):
        where = f"{path}, line {i}"
        if len(row) != len(header):
            raise LabelsError(f"{where}: {len(row)} fields for {len(header)} columns ({', '.join(header)})")
        rec = {h: v.strip() for h, v in zip(header, row)}
        if not rec["file"]:
            raise LabelsError(f"{where}: empty file name")
        if not (folder / rec["file"]).is_file():
            raise LabelsError(f"{where}: audio file {rec['file']!r} not found in {str(folder)!r}")
        label = rec["label"]
        if label in classes:
            index = classes.index(label)
        elif label.isdigit() and int(label) < len(classes):
            index = int(label)
        else:
            raise LabelsError(f"{where}: label {label!r} is not one of the classes {classes} (or an index 0..{len(classes) - 1})")
        start = _seconds(rec.get("start", ""), "start", where)
        end = _seconds(rec.get("end", ""), "end", where)
        if start is not None and end is not None and end <= start:
            raise LabelsError(f"{where}: end {end} s is not after start {start} s")
        split = rec.get("split", "") or "test"
        if split not in SPLITS:
            raise LabelsError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
        regions.append(Region(rec["file"], start, end, index, rec.get("group", "") or rec["file"], split, i))
    if not regions:
        raise LabelsError(f"{path}: a header row but no labelled rows")
    if len(classes) < 2:
        raise LabelsError(f"{path}: only one class {classes}; a classifier needs at least two (give classes= "
                          f"in the task parameters when the CSV holds fewer than the model knows)")
    groups_by_split: dict[str, set[str]] = {}
    for r in regions:
        groups_by_split.setdefault(r.split, set()).add(r.group)
    splits = sorted(groups_by_split)
    for a in splits:
        for b in splits:
            both = groups_by_split[a] & groups_by_split[b] if a < b else set()
            if both:
                raise LabelsError(f"{path}: group {sorted(both)[0]!r} appears in splits {a} and {b}; a group "
                                  f"(default: the file) must stay in one split")
    return regions, classes
