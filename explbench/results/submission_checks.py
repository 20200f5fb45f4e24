"""The checks of a submission's archive, records and plug-ins against its own hashes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from explbench import __version__
from explbench.run.manifest import MANIFEST_FILE
from explbench.store.records import record_key
from explbench.results.submission import RECORDS_FILE, SHOWN, SUBMISSION_FILE, Submission, record_line, record_name, sha256_hex, submission_digest


@dataclass
class Check:
    """The answer to one question about a submission.

    Attributes
    ----------
    name : str
    problems : list of str
        What is wrong and where, one each; empty when the check passed.
    detail : str
        What was checked and found, in words.
    skipped : bool
        Not run (``--rerun 0``): it neither passes nor fails the submission.
    """

    name: str
    problems: list[str] = field(default_factory=list)
    detail: str = ""
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return self.skipped or not self.problems

    def lines(self) -> list[str]:
        """One line for the check, then one per problem (at most :data:`SHOWN`)."""
        if self.skipped:
            return [f"skipped {self.name}: {self.detail}"]
        if not self.problems:
            return [f"ok      {self.name}: {self.detail}"]
        head = f"FAILED  {self.name}: {len(self.problems)} problem(s)" + (f"; {self.detail}" if self.detail else "")
        more = len(self.problems) - SHOWN
        return [head, *(f"        - {p}" for p in self.problems[:SHOWN])] + (
            [f"        - … and {more} more"] if more > 0 else [])


def check_archive(sub: Submission) -> Check:
    """Member hashes, unlisted members, the digest, the run id."""
    c = Check("archive")
    listed = sub.meta.get("files") or {}
    for name, want in sorted(listed.items()):
        if name not in sub.files:
            c.problems.append(f"{name} is listed in {SUBMISSION_FILE} but not in the archive")
        elif sha256_hex(sub.files[name]) != want:
            c.problems.append(f"{name}: SHA-256 {sha256_hex(sub.files[name])[:12]}… is not the "
                              f"{want[:12]}… that {SUBMISSION_FILE} lists (changed after submitting)")
    for name in sorted(set(sub.files) - set(listed)):
        c.problems.append(f"{name} is in the archive but not listed in {SUBMISSION_FILE}")
    if submission_digest(listed, sub.meta.get("records") or {}) != sub.meta.get("digest"):
        c.problems.append(f"{SUBMISSION_FILE}: its digest does not match its file and record hashes")
    config = sub.json("config.json")
    if config.get("run_id") != sub.meta.get("run_id"):
        c.problems.append(f"config.json has run id {config.get('run_id')!r}, {SUBMISSION_FILE} "
                          f"{sub.meta.get('run_id')!r}")
    version = sub.meta.get("explbench_version")
    c.detail = "" if c.problems else (
        f"{len(listed)} files of run {sub.meta.get('run_id')} match their SHA-256 (digest "
        f"{sub.meta.get('digest')}; made with explbench {version}"
        + ("" if version == __version__ else f", checked with {__version__}") + ")")
    return c


def manifest_cases(manifest: dict) -> dict[str, tuple[str, str]]:
    """case id -> (generator, content hash)."""
    return {cid: (g, h) for g, entry in (manifest.get("generators") or {}).items()
            for cid, h in (entry.get("cases") or {}).items()}


def check_records(sub: Submission, records: list[dict], bad_lines: list[int] = ()) -> Check:
    """Each record's own hash, its explainer, its case's content hash; one main record per
    (case, submitted explainer); ``bad_lines`` of records.jsonl that are no records."""
    from explbench.protocol.validate import split_name

    c = Check("records", [f"{RECORDS_FILE} line {i} is not a record" for i in bad_lines])
    hashes = dict(sub.meta.get("records") or {})
    explainers = set(sub.meta.get("explainers") or [])
    cases = manifest_cases(sub.json(MANIFEST_FILE))
    seen: set[tuple[str, str]] = set()
    for r in records:
        name = record_name(r)
        want = hashes.pop(name, None)
        if record_key(r) in seen:
            c.problems.append(f"record ({name}) appears twice")
        seen.add(record_key(r))
        if want is None:
            c.problems.append(f"record ({name}) is not listed in {SUBMISSION_FILE}")
        elif sha256_hex(record_line(r)) != want:
            c.problems.append(f"record ({name}): its content does not match its SHA-256 in "
                              f"{SUBMISSION_FILE} (edited after submitting)")
        if str(r.get("explainer")) not in explainers:
            c.problems.append(f"record ({name}): {r.get('explainer')!r} is not a submitted explainer")
        gen, h = cases.get(str(r.get("case_id")), (None, None))
        if h is None:
            c.problems.append(f"record ({name}): case {r.get('case_id')} is not in manifest.json")
        elif r.get("case_hash") != h or r.get("generator") != gen:
            c.problems.append(f"record ({name}): case hash {r.get('case_hash')} is not the "
                              f"manifest's {h} for {gen}")
    c.problems += [f"record ({name}) is listed in {SUBMISSION_FILE} but missing" for name in sorted(hashes)]
    bases = sorted({split_name(e)[0] for e in explainers})
    for base in bases:
        missing = sorted(cid for cid in cases if (cid, base) not in seen)
        if missing:
            c.problems.append(f"{base} has no record on {len(missing)} case(s) of the manifest "
                              f"({', '.join(missing[:3])}{' …' if len(missing) > 3 else ''})")
    c.detail = f"{len(records)} records of {', '.join(sorted(explainers))} on {len(cases)} cases"
    return c


def check_plugins(sub: Submission) -> Check:
    """Each plug-in file against ``submission.json`` and the run's own ``config.json``."""
    c = Check("plug-ins")
    listed = {p.get("file"): p for p in sub.meta.get("plugins") or []}
    ran = {Path(str(p.get("copy", ""))).name: p for p in sub.json("config.json").get("plugins") or []}
    in_archive = {n for n in sub.files if n.startswith("plugins/")}
    for name in sorted(in_archive - set(listed)):
        c.problems.append(f"plug-in {name} is in the archive but not listed in {SUBMISSION_FILE}")
    for name, entry in sorted(listed.items()):
        if name not in sub.files:
            c.problems.append(f"plug-in {name} is listed but not in the archive")
            continue
        got = sha256_hex(sub.files[name])
        if got != entry.get("sha256"):
            c.problems.append(f"plug-in {name}: SHA-256 {got[:12]}… is not the "
                              f"{str(entry.get('sha256'))[:12]}… that {SUBMISSION_FILE} lists")
        run = ran.pop(Path(name).name, None)
        if run is None:
            c.problems.append(f"plug-in {name} is not one the run loaded (config.json)")
        elif run.get("sha256") and run["sha256"] != got:
            c.problems.append(f"plug-in {name}: SHA-256 {got[:12]}… is not the "
                              f"{run['sha256'][:12]}… the run recorded when it loaded it")
        elif not Path(name).name.startswith(got[:8] + "-"):
            c.problems.append(f"plug-in {name}: its name does not start with its hash {got[:8]}")
    c.problems += [f"plug-in {p.get('path')} was loaded by the run but is not in the archive"
                   for p in ran.values()]
    c.detail = "" if c.problems else (
        "; ".join(f"{n}: SHA-256 {sha256_hex(sub.files[n])[:12]}… as the run recorded" for n in sorted(listed))
        or "no plug-ins (the submitted explainers ship with explbench)")
    return c


__all__ = ["Check", "check_archive", "check_plugins", "check_records", "manifest_cases"]
