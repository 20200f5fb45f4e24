"""Metrics over protocol records; importing this package registers the built-in metrics.

Built-in metrics (registry name → reported ``metric`` values):

- veracity: ``flip-rate``, ``flip-rate-norm`` (k = 1..d), ``positive-flip-rate``,
  ``positive-flip-rate-norm``, ``positive-count``;
- localisation: ``recovery`` (k = |S*|), ``recovery-dist`` (reported as ``recovery-dist-{j}``);
- fidelity (k = 1): ``fidelity-auc``, ``fidelity-pointbiserial``, ``fidelity-median-correct``,
  ``fidelity-median-wrong``, ``correct-rate``;
- cost: ``queries``, ``seconds``; robustness: ``failure-rate``.
"""

from explbench.metrics import cost, fidelity, localisation, veracity  # noqa: F401  (registers)
from explbench.metrics.aggregate import COLUMNS, aggregate
from explbench.metrics.base import Metric, MetricValue, metric_info
from explbench.metrics.fidelity import agnostic_fidelity

__all__ = ["COLUMNS", "Metric", "MetricValue", "aggregate", "agnostic_fidelity", "metric_info"]
