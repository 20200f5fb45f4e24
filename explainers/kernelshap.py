"""``kernelshap``: shap's KernelExplainer on the d binary segment features.

A coalition ``z`` in {0, 1}^d is evaluated as ``predict(compose(x, z, b))[:, target]`` with
``b`` from a content type; the background is one all-zeros row ("every segment absent") and
the explained instance the all-ones row. shap draws its coalitions from ``np.random``; that
runs inside :func:`~._common.local_seed`, seeded from ``rng``.

Queries: one for the background (when the explainer is built), one for the instance, and at
most ``nsamples`` coalitions, so ``nsamples = min(n_samples, budget - 2)``.

``n_samples = "auto"``. shap's sampler is not incremental (its coalitions for ``nsamples = 2n``
are not those for ``n`` plus more), so the rounds run shap afresh with ``nsamples`` growing
through :meth:`~._common.AutoSampling.schedule`, every round with the *same* global seed, so
the last round is exactly fixed sampling at its ``nsamples`` with that seed. Coalitions are
answered from a cache (:class:`CoalitionCache`), so a coalition evaluated in an earlier round
costs no query: shap enumerates whole subset sizes first (all coalitions of one or two
segments and their complements), and those repeat from round to round. After each round the
top-k set is tested as for LIME (:func:`~._common.settle`), with the sandwich covariance of
shap's constrained weighted least squares (:func:`shap_covariance`); since a round is a fresh
sample rather than a part of the next one, the test is against the population's order
(``fraction = 0``), not against the last round's answer as LIME's nested rounds can be. A
round whose new coalitions would exceed the budget is not run (the cache counts them before
any query); the previous round stands. shap already pairs every sampled coalition with its
complement (antithetic sampling). Costs: rounds that do not settle are spent, so a run to
``max_samples`` costs up to about ``1.65 x`` the queries of fixed sampling at ``max_samples``
(measured on a 20-segment grid: 13558 against 8194); an early stop costs a fraction of it.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import torch

with warnings.catch_warnings():  # shap's plotting colours warn about matplotlib deprecations on import
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    import shap

from explbench.api.explainer import ExplainContext, Explainer, Explanation
from explbench.api.model_access import ModelAccess
from explbench.api.registry import register_explainer
from explbench.core.segmentation import Segmentation

from ._common import (AUTO, AutoSampling, _sandwich, as_input, check_sampling, content_baseline,
                      draw_seed, local_seed, quiet_logger, settle, sized)

#: queries shap adds beyond ``nsamples``: f(background) and f(instance)
FIXED_QUERIES = 2


@register_explainer("kernelshap")
class KernelShap(Explainer):
    """KernelSHAP on the scoring grid.

    Parameters
    ----------
    n_samples : int or "auto"
        Coalitions to evaluate (shap's ``nsamples``), reduced to fit the budget; ``"auto"``
        grows them in rounds until the top-k set (k = ``ExplainContext.headline_k``) is
        settled, up to ``max_samples`` (see the module notes).
    content : str
        Content type shown for absent segments.
    l1_reg : bool, float or str
        shap's feature selection; ``False`` (default) keeps all d features. shap's own default
        ``"num_features(10)"`` would keep only 10. ``"auto"`` sampling needs ``False``.
    max_samples, first_samples, growth, confidence
        ``"auto"``'s most coalitions, its first round, the growth per round (each round is a
        fresh shap run, so a large factor wastes fewer queries) and the confidence that the
        top-k set returned is the population's, at each look (:meth:`AutoSampling.level`).
    """

    description = "KernelSHAP (shap.KernelExplainer) on the scoring grid, absent = content type"
    model_agnostic = True
    query_cost = "n_samples + 2 (\"auto\": distinct coalitions over its rounds, up to max_samples + 2)"

    def __init__(self, n_samples: int | Literal["auto"] = 1024, content: str = "mean",
                 l1_reg: bool | float | str = False, max_samples: int = 8192, first_samples: int = 256,
                 growth: float = 2.0, confidence: float = 0.95) -> None:
        check_sampling("KernelShap", n_samples, max_samples, first_samples, growth, confidence)
        if n_samples == AUTO and l1_reg is not False:
            raise ValueError(f"KernelShap: n_samples = \"auto\" needs l1_reg = False (its stopping "
                             f"rule is for the full least-squares fit), got l1_reg = {l1_reg!r}")
        self.n_samples = n_samples
        self.content = content
        self.l1_reg = l1_reg
        self.max_samples = max_samples
        self.first_samples = first_samples
        self.growth = growth
        self.confidence = confidence

    def explain(
        self,
        model: ModelAccess,
        x: torch.Tensor,
        target: int,
        *,
        segments: Segmentation,
        budget: int | None,
        rng: np.random.Generator,
        context: ExplainContext,
    ) -> Explanation:
        x = as_input(x)
        baseline = content_baseline(self.content, x, rng)

        def f(z: np.ndarray) -> np.ndarray:
            """Target probability for coalitions ``z`` of shape (n, d) -> (n,)."""
            out = model.predict(segments.compose(x, np.asarray(z, dtype=np.float32), baseline))
            return out[:, target].numpy().astype(np.float64)

        if self.n_samples == AUTO:
            return self._auto(f, segments.d, budget, draw_seed(rng), context.headline_k)
        nsamples = sized(self.n_samples, budget, extra=FIXED_QUERIES, what="coalitions")
        with local_seed(rng), _quiet():
            explainer = shap.KernelExplainer(f, np.zeros((1, segments.d)))
            phi = explainer.shap_values(
                np.ones((1, segments.d)), nsamples=nsamples, l1_reg=self.l1_reg, silent=True
            )
        return Explanation(
            weights=np.asarray(phi, dtype=np.float64).reshape(-1),
            intercept=float(np.ravel(explainer.expected_value)[0]),
            extra={"nsamples": nsamples},
        )

    def _auto(self, f, d: int, budget: int | None, seed: int, k: int) -> Explanation:
        """``n_samples = "auto"``: shap in rounds on a coalition cache (see the module notes)."""
        cache = CoalitionCache(f, budget)
        auto = AutoSampling(self.max_samples, self.first_samples, self.growth, self.confidence)
        cap = self.max_samples if budget is None else sized(self.max_samples, budget,
                                                            extra=FIXED_QUERIES, what="coalitions")
        sizes = auto.schedule(cap)
        level = auto.level()
        done: tuple[int, np.ndarray, float, float] | None = None  # nsamples, phi, expected value, p_change
        reason, rounds = "max_samples", 0
        with local_seed(seed), _quiet():
            explainer = shap.KernelExplainer(cache, np.zeros((1, d)))
        for nsamples in sizes:
            try:
                with local_seed(seed), _quiet():
                    phi = np.asarray(explainer.shap_values(np.ones((1, d)), nsamples=nsamples,
                                                           l1_reg=False, silent=True),
                                     dtype=np.float64).reshape(-1)
            except _OverBudget:
                reason = "budget"
                break
            rounds += 1
            # each round is a fresh shap sample, not a part of the next: the test is against
            # the population's order (fraction 0), not the last round's as for LIME
            verdict = settle(phi, shap_covariance(explainer, phi), k, level, fraction=0.0)
            done = (nsamples, phi, float(np.ravel(explainer.expected_value)[0]), verdict.p_change)
            if verdict.settled:
                reason = "settled"
                break
        else:
            if budget is not None and sizes[-1] < self.max_samples:
                reason = "budget"
        if done is None:
            raise ValueError(f"a query budget of {budget} is too small for kernelshap's first round "
                             f"of {sizes[0]} coalitions; raise the budget or lower first_samples")
        nsamples, phi, expected, p_change = done
        return Explanation(
            weights=phi, intercept=expected,
            extra={"nsamples": nsamples, "rounds": rounds, "stopped_because": reason,
                   "p_change": float(f"{p_change:.4g}"), "distinct_coalitions": len(cache)},
        )


def _quiet():
    """shap's logging and deprecation warnings silenced for the duration."""
    import contextlib

    stack = contextlib.ExitStack()
    stack.enter_context(quiet_logger("shap"))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore", category=DeprecationWarning)
    return stack


class _OverBudget(Exception):
    """A round whose new coalitions would exceed the budget (raised before any query)."""


class CoalitionCache:
    """``f`` on coalitions (n, d) -> (n,), each distinct coalition evaluated once.

    Parameters
    ----------
    f : callable
        The model on coalitions (counted queries).
    budget : int or None
        A call whose *new* coalitions would take the queries made through this cache past
        ``budget`` raises :class:`_OverBudget` before querying anything.
    """

    def __init__(self, f, budget: int | None = None) -> None:
        self.f, self.budget = f, budget
        self.values: dict[bytes, float] = {}

    def __len__(self) -> int:
        return len(self.values)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z)
        keys = [row.tobytes() for row in np.packbits(z > 0.5, axis=1)]
        fresh: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if key not in self.values and key not in fresh:
                fresh[key] = i
        if self.budget is not None and len(self.values) + len(fresh) > self.budget:
            raise _OverBudget(f"{len(fresh)} new coalitions past a budget of {self.budget}")
        if fresh:
            rows = list(fresh.values())
            for key, v in zip(fresh, self.f(z[rows])):
                self.values[key] = float(v)
        return np.array([self.values[key] for key in keys], dtype=np.float64)


def shap_covariance(explainer: "shap.KernelExplainer", phi: np.ndarray) -> np.ndarray:
    """Sandwich covariance ``(d, d)`` of the Shapley values of shap's last ``shap_values`` run.

    shap solves a weighted least squares problem on its coalitions ``Z`` (n, d) with kernel
    weights ``w`` under the constraint ``sum(phi) = f(x) - f(background)``, eliminating the
    last feature: ``y - Z_d c = (Z_{<d} - Z_d) b``, ``phi = (b, c - sum(b))``. The covariance of
    ``b`` is ``A^-1 B A^-1`` with ``A = X' W X`` and ``B`` summed over the *sampled*
    coalitions, a coalition and its complement (drawn together) as one unit; whole subset sizes
    that shap enumerated carry no sampling noise and are left out of ``B`` (the sizes whose every
    coalition is present, counting up from one). Repeated draws that shap merged into one
    coalition with a larger weight count as one unit (an over-estimate, on the safe side).

    Parameters
    ----------
    explainer : shap.KernelExplainer
        After ``shap_values`` on one instance with one output, ``l1_reg=False``.
    phi : np.ndarray, shape (d,)
        The Shapley values it returned.

    Returns
    -------
    np.ndarray, shape (d, d), float64
    """
    try:
        Z = np.asarray(explainer.maskMatrix, dtype=np.float64)
        w = np.asarray(explainer.kernelWeights, dtype=np.float64)
        ey = np.asarray(explainer.ey, dtype=np.float64)[:, 0]
        total = float(np.ravel(explainer.fx)[0] - np.ravel(explainer.fnull)[0])
        fnull = float(np.ravel(explainer.fnull)[0])
    except AttributeError as exc:  # a shap version with other internals
        raise RuntimeError(f"kernelshap's n_samples = \"auto\" reads shap.KernelExplainer's "
                           f"maskMatrix, kernelWeights, ey, fx and fnull, which this shap "
                           f"({shap.__version__}) does not have ({exc}); use an integer n_samples") from None
    n, d = Z.shape
    phi = np.asarray(phi, dtype=np.float64)
    y = ey - fnull - Z[:, -1] * total
    X = Z[:, :-1] - Z[:, -1:]
    r = y - X @ phi[:-1]
    A = X.T @ (w[:, None] * X)
    size = Z.sum(axis=1).round().astype(int)
    full = 0
    from math import comb

    for s in range(1, d // 2 + 1):
        if all(int((size == t).sum()) == comb(d, s) for t in {s, d - s}):
            full = s
        else:
            break
    sampled = (size > full) & (size < d - full)
    canon = np.where(Z[:, :1] > 0.5, Z, 1.0 - Z)  # a coalition and its complement: one unit
    keys = np.unique(np.packbits(canon[sampled] > 0.5, axis=1), axis=0, return_inverse=True)[1]
    cov_b = _sandwich(A, (w * r)[sampled, None] * X[sampled], keys.reshape(-1)) if sampled.any() \
        else np.zeros((d - 1, d - 1))
    L = np.vstack([np.eye(d - 1), -np.ones((1, d - 1))])
    return L @ cov_b @ L.T
