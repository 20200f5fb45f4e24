"""The suite's stated power, as the board repeats it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from explbench.results.ranking import ALPHA, Ranking
from explbench.run.suite import SuiteConfig
from explbench.store.runs import Run, n_clusters



def power_discordance(run: Run) -> float:
    """The discordance the run's power statement assumes (suite key ``power_discordance``,
    default 0.4: the share of cases on which two explainers disagree).

    Raises
    ------
    ValueError
        When the stored value is not a number in (0, 1].
    """
    v = run.suite.get("power_discordance")
    if v is None:
        return float(SuiteConfig.__dataclass_fields__["power_discordance"].default)
    try:
        x = float(v)
    except (TypeError, ValueError):
        x = math.nan
    if not (math.isfinite(x) and 0 < x <= 1):
        raise ValueError(f"{run.folder}/config.json: suite key 'power_discordance' is {v!r}; it must "
                         f"be a number in (0, 1], e.g. 0.4")
    return x


__all__ = ["power_discordance"]


def power_text(ref: Run, generators: Sequence[str], rankings: Mapping[str, Ranking]) -> str:
    """The minimum detectable difference per attack generator, with n and n_clusters.

    Parameters
    ----------
    ref : Run
        The board's reference run (its cases and stated discordance).
    generators : sequence of str
        The board's attack generators.
    rankings : mapping
        Generator → its :class:`~explbench.results.ranking.Ranking` (how many pairs share alpha).
    """
    from explbench.stats import power

    disc = power_discordance(ref)
    sizes = {g: n_clusters(ref, g) for g in generators}
    counts = "; ".join(f"{g}: n = {n}, n_clusters = {c}" for g, (n, c) in sizes.items())
    if not sizes:
        return "No attack generator: no power statement."
    units = {g: (c if c < n else n) for g, (n, c) in sizes.items() if n}
    line = power.describe(units, discordance=disc) if units else "no cases"
    note = ""
    if any(c < n for n, c in sizes.values()):
        note = (" Where cases share clusters, the figure is for the n_clusters independent units, "
                "a conservative stand-in.")
    def strictest(m: int) -> str:  # the MDD per generator when m tests share alpha
        out = []
        for g, n in sorted(units.items()):
            mdd = power.minimum_detectable_difference(n, disc, alpha=ALPHA / m)
            out.append(f"{g}: {'not detectable' if mdd is None else f'{mdd:.2f}'}")
        return "; ".join(out)

    pairs = max((len(r.tests) for r in rankings.values()), default=0)
    if pairs > 1 and units:
        note += (f" That is for one pair at alpha {ALPHA:g}; Holm over the {pairs} pairs tests the "
                 f"strictest pair at alpha {ALPHA:g}/{pairs}, where it is {strictest(pairs)}.")
        versus = max((len(r.vs_random) for r in rankings.values()), default=0)
        if versus > 1:
            note += (f" 'beats random' tests {versus} explainers against random, the strictest at "
                     f"alpha {ALPHA:g}/{versus}: {strictest(versus)}.")
    return f"Power: {line}. Cases: {counts}.{note}"
