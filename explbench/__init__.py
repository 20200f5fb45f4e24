"""explbench: a benchmark and evaluation harness for audio explainers."""

from explbench.api import Excerpt, Task
from explbench.api.explainer import AudioContext, ExplainContext, Explainer, Explanation
from explbench.api.model_access import BudgetExceeded, ModelAccess
from explbench.api.registry import (
    register_explainer,
    register_generator,
    register_metric,
    register_task,
)

__version__ = "0.1.0"

__all__ = [
    "AudioContext",
    "BudgetExceeded",
    "Excerpt",
    "ExplainContext",
    "Explainer",
    "Explanation",
    "ModelAccess",
    "Task",
    "register_explainer",
    "register_generator",
    "register_metric",
    "register_task",
    "__version__",
]
