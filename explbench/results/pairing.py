"""Which cases two runs share: matched by the content hash of each case, never by id or key.

A case's content hash (:func:`explbench.core.cases.content_hash`) covers its arrays and its
cause, so two runs that hold a hash explained the very same question. Case ids and cache keys
are recipes: the same recipe can give other bytes on another machine, and another recipe can
give the same bytes. Within one run, a case id names one case, so a run is always paired with
itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: the records' column holding each case's content hash
HASH = "case_hash"


def hashes_of(records: pd.DataFrame) -> dict[str, str]:
    """Case id → content hash of every case in ``records`` that carries one.

    Parameters
    ----------
    records : DataFrame
        Records with ``case_id`` and, from runs that store it, ``case_hash``.
    """
    if records.empty or HASH not in records.columns:
        return {}
    sel = records[["case_id", HASH]].dropna().drop_duplicates("case_id")
    return dict(zip(sel["case_id"].astype(str), sel[HASH].astype(str)))


@dataclass(frozen=True)
class CaseMatch:
    """How the cases of one generator in two runs correspond.

    Attributes
    ----------
    generator : str
    n_a, n_b : int
        Cases of the generator in each run.
    shared : int
        Cases whose content is in both runs (what a paired comparison uses).
    same_id_other_content : int
        Case ids present in both runs whose content differs.
    unhashed : bool
        A run holds cases without a content hash (written before hashes existed).
    same_run : bool
    """

    generator: str
    n_a: int
    n_b: int
    shared: int
    same_id_other_content: int
    unhashed: bool
    same_run: bool = False

    @property
    def paired(self) -> bool:
        return self.same_run or self.shared > 0

    def reason(self) -> str:
        """Why the comparison is unpaired, or partly paired, in words ("" when fully paired)."""
        if self.same_run or (self.shared == self.n_a == self.n_b):
            return ""
        if self.unhashed:
            return (f"{self.generator}: a run's records carry no case content hashes (written "
                    f"before they existed), so its cases cannot be matched; re-run it")
        parts = [f"{self.generator}: {self.shared} of {self.n_a} vs {self.n_b} cases have the "
                 "same content"]
        if self.same_id_other_content:
            parts.append(f"{self.same_id_other_content} case ids appear in both runs with other "
                         "content (another machine or BLAS, another generator version, another "
                         "model or seed)")
        return "; ".join(parts)


def match(records_a: pd.DataFrame, records_b: pd.DataFrame, generator: str,
          same_run: bool = False) -> CaseMatch:
    """The :class:`CaseMatch` of ``generator``'s cases in two runs' records."""
    ra = records_a[records_a["generator"] == generator] if not records_a.empty else records_a
    rb = records_b[records_b["generator"] == generator] if not records_b.empty else records_b
    ids_a = set(ra["case_id"].astype(str)) if not ra.empty else set()
    ids_b = set(rb["case_id"].astype(str)) if not rb.empty else set()
    if same_run:
        return CaseMatch(generator, len(ids_a), len(ids_b), len(ids_a & ids_b), 0, False, True)
    ha, hb = hashes_of(ra), hashes_of(rb)
    unhashed = len(ha) < len(ids_a) or len(hb) < len(ids_b)
    shared = len(set(ha.values()) & set(hb.values()))
    other = sum(1 for c in set(ha) & set(hb) if ha[c] != hb[c])
    return CaseMatch(generator, len(ids_a), len(ids_b), shared, other, unhashed)


def join(ra: pd.DataFrame, rb: pd.DataFrame, same_run: bool = False) -> pd.DataFrame:
    """Rows of A and B on the same cases, side by side (suffixes ``_a`` and ``_b``).

    Joined on the content hash, or on the case id within one run. ``case_id`` is A's.
    """
    on = "case_id" if same_run else HASH
    if on not in ra.columns or on not in rb.columns:
        return pd.DataFrame()
    a = ra.dropna(subset=[on])
    b = rb.dropna(subset=[on])
    j = a.merge(b, on=on, suffixes=("_a", "_b"))
    if on == HASH:
        j["case_id"] = j["case_id_a"]
    return j


def aligned(ids_a: np.ndarray, keys_a: np.ndarray, ids_b: np.ndarray, keys_b: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(ia, ib)`` of the cases both hold, matched on ``keys`` (content hashes).

    Parameters
    ----------
    ids_a, ids_b : np.ndarray of str, shape (n_a,), (n_b,)
        Case ids (used for a stable order: A's id order).
    keys_a, keys_b : np.ndarray of str or None
        The cases' content hashes; a None never matches.
    """
    pos_b: dict[str, int] = {}
    for i, k in enumerate(keys_b):
        if k is not None and not (isinstance(k, float) and np.isnan(k)):
            pos_b.setdefault(str(k), i)
    ia, ib = [], []
    for i in np.argsort(ids_a, kind="mergesort"):
        k = keys_a[i]
        if k is None or (isinstance(k, float) and np.isnan(k)):
            continue
        j = pos_b.get(str(k))
        if j is not None:
            ia.append(int(i))
            ib.append(j)
    return np.asarray(ia, dtype=int), np.asarray(ib, dtype=int)


__all__ = ["CaseMatch", "HASH", "aligned", "hashes_of", "join", "match"]
