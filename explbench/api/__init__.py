"""The plug-in surface: everything a plug-in author needs, importable from ``explbench.api``.

A :class:`Task` turns waveforms into the *explanation domain* (for singing-voice
detection: an 80 x 115 log-mel excerpt) and classifies points of that domain.
An :class:`Explainer` receives a :class:`ModelAccess` (the only way it may call
the model), an input in the explanation domain, a target class, and, by keyword, a
:class:`~explbench.core.segmentation.Segmentation`, a query budget, a random generator and an
:class:`ExplainContext`; it returns an :class:`Explanation`: one weight per segment, larger
meaning more evidence for the target. The harness counts the queries and measures the seconds
of every explanation itself (:func:`call_explain`).

One module per contract: :mod:`~explbench.api.explainer`, :mod:`~explbench.api.model_access`,
:mod:`~explbench.api.task`, :mod:`~explbench.api.generator`, :mod:`~explbench.api.metric`,
and :mod:`~explbench.api.registry` for the registries and their decorators.
"""

from __future__ import annotations

from explbench.api.explainer import (EXPLAIN_KEYWORDS, AudioContext, ContractError, ExplainContext,
                                     Explainer, Explanation, call_explain, signature_problem)
from explbench.api.model_access import BudgetExceeded, ModelAccess, forward_batched, one_torch_thread
from explbench.api.generator import Generator
from explbench.api.metric import Direction, Metric, MetricValue, Scores
from explbench.api.seeding import draw_seed, local_seed
from explbench.api.task import Excerpt, Task

__all__ = ["AudioContext", "BudgetExceeded", "ContractError", "EXPLAIN_KEYWORDS", "Excerpt",
           "ExplainContext", "Explainer", "Explanation", "Generator", "Direction", "Metric", "MetricValue",
           "ModelAccess", "Scores", "Task", "call_explain",
           "draw_seed", "forward_batched", "local_seed", "one_torch_thread", "signature_problem"]
