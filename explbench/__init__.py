"""explbench: a benchmark and evaluation harness for audio explainers.

The names here are the plug-in surface (:mod:`explbench.api`) and its registration decorators.
"""

from explbench.api import (AudioContext, BudgetExceeded, Direction, Excerpt, ExplainContext,
                           Explainer, Explanation, Generator, Metric, MetricValue, ModelAccess,
                           Scores, Task)
from explbench.api.registry import register_explainer, register_generator, register_metric, register_task

__version__ = "0.1.0"

__all__ = [
    "AudioContext",
    "BudgetExceeded",
    "Direction",
    "Excerpt",
    "ExplainContext",
    "Explainer",
    "Explanation",
    "Generator",
    "Metric",
    "MetricValue",
    "ModelAccess",
    "Scores",
    "Task",
    "register_explainer",
    "register_generator",
    "register_metric",
    "register_task",
    "__version__",
]
