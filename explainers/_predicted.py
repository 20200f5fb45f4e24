"""LIME's fit on all ``N`` masks of a neighbourhood, with the answers not yet queried predicted.

Used by ``n_samples = "auto"`` with ``predict_rest = True`` (:func:`explainers.lime.sample_adaptively`).

The weighted ridge fit of LIME is linear in the answers: on all ``N`` masks ``Z`` (known in
advance -- they are the rows the explainer's generator will draw) with kernel weights ``s``,
its weights are ``T = L y`` with ``L = (Zc' S Zc + alpha I)^-1 Zc' S`` (``Zc`` centred by the
s-weighted mean; the intercept is unpenalised). After ``n`` queries only ``y[:n]`` is known.
:class:`RestPredictor` fits a richer surrogate ``g`` -- intercept, the ``d`` components and
their ``d (d - 1) / 2`` pairwise products, weighted ridge -- to the queried answers, predicts
the other ``N - n``, and returns ``T_hat = L [y[:n], g(Z[n:])]`` with the covariance of its
error ``T - T_hat = L[:, n:] (y[n:] - g(Z[n:]))``:

* ``L_rest diag(sigma^2) L_rest'`` for the part of the unqueried answers no surrogate can
  predict, with ``sigma^2`` the s-weighted mean squared leave-one-out residual of ``g``;
* ``(L_rest F_rest) C (L_rest F_rest)'`` for the error of ``g`` itself, with ``C`` the
  sandwich covariance of its coefficients (leave-one-out residuals).

Where the model's answers depend on pairs of components (LIME's residuals are mostly that),
``g`` predicts the unqueried answers far better than LIME's own linear surrogate, so the
N-sample fit is known from fewer queries. With more than :data:`MAX_INTERACTION_COMPONENTS`
components the pairs are left out and ``g`` is linear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._common import ridge_system

#: most components for which the surrogate of the unqueried answers includes pairwise products
MAX_INTERACTION_COMPONENTS = 40


def interaction_features(z: np.ndarray, pairs: bool = True) -> np.ndarray:
    """Intercept, components and (optionally) their pairwise products.

    Parameters
    ----------
    z : np.ndarray, shape (n, d), {0, 1}
    pairs : bool

    Returns
    -------
    np.ndarray, shape (n, 1 + d + d (d - 1) / 2) with pairs, (n, 1 + d) without; float64
    """
    z = np.asarray(z, dtype=np.float64)
    parts = [np.ones((len(z), 1)), z]
    if pairs and z.shape[1] > 1:
        i, j = np.triu_indices(z.shape[1], 1)
        parts.append(z[:, i] * z[:, j])
    return np.concatenate(parts, axis=1)


def lime_linear_map(z: np.ndarray, sample_weight: np.ndarray, alpha: float) -> np.ndarray:
    """``L`` such that LIME's weighted ridge weights on ``z`` are ``L @ y``, shape (d, n).

    Parameters
    ----------
    z : np.ndarray, shape (n, d)
    sample_weight : np.ndarray, shape (n,)
    alpha : float
        Ridge penalty (the intercept is not penalised).
    """
    zc, a = ridge_system(z, sample_weight, alpha)
    return np.linalg.solve(a, (zc * np.asarray(sample_weight, dtype=np.float64)[:, None]).T)


@dataclass(frozen=True)
class PredictedFit:
    """LIME's fit on all ``N`` masks with the unqueried answers predicted (:meth:`RestPredictor.fit`).

    Attributes
    ----------
    weights : np.ndarray, shape (d,)
    intercept : float
    cov : np.ndarray, shape (d, d)
        Covariance of ``weights`` minus the fit on the true answers of all ``N`` masks.
    score : float
        Kernel-weighted R^2 of ``intercept + z @ weights`` on the queried answers.
    local_pred : float
        ``intercept + sum(weights)``: the surrogate at the instance (all components on).
    """

    weights: np.ndarray
    intercept: float
    cov: np.ndarray
    score: float
    local_pred: float


class RestPredictor:
    """The fit on all rows of ``z`` with the answers past the queried ones predicted.

    Built once per neighbourhood (the linear map ``L`` and the surrogate's features of all ``N``
    masks do not change between looks); :meth:`fit` is called at every look.

    Parameters
    ----------
    z : np.ndarray, shape (N, d), {0, 1}
        Every mask of the neighbourhood, in the order they are queried.
    sample_weight : np.ndarray, shape (N,)
        LIME's kernel weights of all ``N`` masks.
    alpha : float
        Ridge penalty of LIME's fit and of the surrogate that predicts the rest.
    """

    def __init__(self, z: np.ndarray, sample_weight: np.ndarray, alpha: float = 1.0) -> None:
        self.z = np.asarray(z, dtype=np.float64)
        self.s = np.asarray(sample_weight, dtype=np.float64)
        self.alpha = float(alpha)
        self.lmap = lime_linear_map(self.z, self.s, self.alpha)
        self.feats = interaction_features(self.z, pairs=self.z.shape[1] <= MAX_INTERACTION_COMPONENTS)
        self.zbar = self.s @ self.z / self.s.sum()

    def fit(self, y_queried: np.ndarray) -> PredictedFit:
        """The predicted N-sample fit from the answers on the first ``len(y_queried)`` masks.

        Parameters
        ----------
        y_queried : np.ndarray, shape (n,)
            The model's answers (the explained class's probability) on the first ``n`` masks.

        Returns
        -------
        PredictedFit
        """
        y = np.asarray(y_queried, dtype=np.float64)
        n, big_n = len(y), len(self.z)
        if not 0 < n <= big_n:
            raise ValueError(f"a predicted fit needs between 1 and {big_n} answers, got {n}")
        fo, so = self.feats[:n], self.s[:n]
        weighted = fo * so[:, None]
        gram = fo.T @ weighted
        gram[1:, 1:] += self.alpha * np.eye(fo.shape[1] - 1)
        ginv = np.linalg.pinv(gram, hermitian=True)
        theta = ginv @ (weighted.T @ y)
        resid = y - fo @ theta
        leverage = ((weighted @ ginv) * fo).sum(axis=1)
        loo = resid / np.clip(1.0 - leverage, 0.05, None)
        answers = np.concatenate([y, self.feats[n:] @ theta])
        weights = self.lmap @ answers
        intercept = float(self.s @ answers / self.s.sum() - self.zbar @ weights)
        l_rest = self.lmap[:, n:]
        m = l_rest @ self.feats[n:]
        score_rows = (so * loo)[:, None] * fo
        coef_cov = ginv @ (score_rows.T @ score_rows) @ ginv
        cov = float(np.average(loo**2, weights=so)) * (l_rest @ l_rest.T) + m @ coef_cov @ m.T
        fitted = intercept + self.z[:n] @ weights
        total = float(so @ (y - so @ y / so.sum()) ** 2)
        score = 1.0 - float(so @ (y - fitted) ** 2) / total if total > 0 else 1.0
        return PredictedFit(weights, intercept, cov, score, intercept + float(weights.sum()))
