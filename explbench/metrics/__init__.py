"""Metrics over protocol records; importing this package registers the built-in metrics.

Built-in metrics (registry name → reported ``metric`` values):

- veracity: ``flip-rate``, and the references ``flip-rate-norm`` (by energy) and
  ``flip-rate-absmean`` (by mean |delta|) (k = 1..d), ``positive-flip-rate``,
  ``positive-flip-rate-norm``, ``positive-count``;
- localisation: ``recovery`` and ``recovery-necessary`` (k = |S*|), ``recovery-dist``
  (reported as ``recovery-dist-{j}``), ``minimal-cause-rate``;
- fidelity (k = 1): ``fidelity-auc``, ``fidelity-pointbiserial``, ``fidelity-median-correct``,
  ``fidelity-median-wrong`` (the explainer's own score), the same four prefixed
  ``agnostic-`` (the harness's agnostic fidelity), ``correct-rate``;
- cost: ``queries``, ``seconds``; robustness: ``failure-rate``.

Metrics return per-case :class:`Scores`; :func:`aggregate` chooses every interval.
"""

from explbench.metrics import cost, fidelity, localisation, veracity  # noqa: F401  (registers)
from explbench.metrics.aggregate import COLUMNS, aggregate
from explbench.api.metric import HEADLINE_K, Metric, MetricValue, Scores
from explbench.metrics.records import metric_info
from explbench.protocol.agnostic import agnostic_fidelity

__all__ = ["COLUMNS", "HEADLINE_K", "Metric", "MetricValue", "Scores", "aggregate", "agnostic_fidelity", "metric_info"]
