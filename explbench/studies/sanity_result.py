"""What the model-randomisation check finds, per explainer and layer, and the rules it is judged by."""

from __future__ import annotations

from dataclasses import dataclass, field
import numpy as np
import pandas as pd
from explbench.stats.clusters import MIN_CLUSTERS
from explbench.studies.randomise import Layer


COLUMNS = ["explainer", "layer", "rho", "ci_low", "ci_high", "n"]


#: cases sampled by default: a little above the fewest clusters that get an interval
#: (explbench.stats.clusters.MIN_CLUSTERS), so a failed case or two still leave an interval
DEFAULT_N = MIN_CLUSTERS + 2


#: rule of thumb of the verdict: rho at full randomisation above this "does not move"
MOVED_BELOW = 0.5


#: the label of the un-randomised row
NONE = "none"


class SanityError(ValueError):
    """A sanity check that cannot be run, with the thing at fault and the fix."""


def min_clusters() -> int:
    """Fewest clusters (cases) for which an interval is reported."""
    return MIN_CLUSTERS


def interval_method() -> str:
    return "cluster bootstrap (explbench.stats.bootstrap.cluster_bootstrap)"


@dataclass
class SanityResult:
    """What :func:`check` measured.

    Attributes
    ----------
    rows : pd.DataFrame
        One row per (explainer, depth): the :data:`COLUMNS` plus ``depth`` (0 = none),
        ``randomised`` (the layer added at this depth), ``rho_abs`` (the same on |weights|: a
        ranking that only flipped sign keeps it high), ``n_clusters``, ``constant`` (every
        case gave the same rho: no interval to draw), ``n_undefined``
        (cases with a constant ranking), ``n_failed`` and ``needs_model``.
    per_case : pd.DataFrame
        explainer, depth, layer, case_id, generator, cluster, rho and rho_abs (NaN when
        undefined or failed), error.
    layers : list of Layer
        Output layer first.
    kept : list of str
        Modules with parameters that could not be re-initialised.
    needs_model : dict of str to bool
        False for explainers whose reference explanations made no model query.
    reference : dict of (str, str) to np.ndarray
        The trained model's weights ``(d,)`` per (explainer, case_id).
    notes : list of str
    config : dict
        Sample size, seeds, interval method, ... (JSON-serialisable).
    """

    rows: pd.DataFrame
    per_case: pd.DataFrame
    layers: list[Layer]
    kept: list[str]
    needs_model: dict[str, bool]
    reference: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """The Contract-F table (``sanity.csv``)."""
        return self.rows[COLUMNS]
