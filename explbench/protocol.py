"""The veracity protocol, one (case, explainer) unit at a time.

For a case with clean input ``x``, perturbation ``delta`` and target ``t``, an explainer explains
``x + delta`` for class ``t``. Its ranking of the scoring segments is then tested by applying
``delta`` on its top-k segments only, ``x + M(top-k) * delta``, and asking whether the decision
becomes ``t`` (label flip at k, for every k = 1..d). The same is done once per case with the
ranking by segment energy of ``delta`` (the "norm" reference).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from explbench import baselines
from explbench.api import (
    AudioContext,
    BudgetExceeded,
    Explainer,
    Explanation,
    ModelAccess,
    Task,
    forward_batched,
)
from explbench.cases import Case
from explbench.metrics.fidelity import agnostic_fidelity
from explbench.neighbourhood import kernel_weights
from explbench.segmentation import Segmentation, selection_matrix, top_k


class ExplainerFailure(RuntimeError):
    """An explanation the harness cannot score (wrong shape, NaN, …)."""


@dataclass
class CaseContext:
    """Per-case quantities shared by every explainer of the case (computed once).

    Attributes
    ----------
    flip_norm_at_k : np.ndarray, shape (d,), bool
    neighbourhood : np.ndarray, shape (m, d) or None — shared random masks for agnostic fidelity
    neighbourhood_y : np.ndarray, shape (m,) or None — target probability on each mask
    neighbourhood_w : np.ndarray, shape (m,) or None — LIME kernel weight of each mask
    """

    flip_norm_at_k: np.ndarray
    neighbourhood: np.ndarray | None = None
    neighbourhood_y: np.ndarray | None = None
    neighbourhood_w: np.ndarray | None = None


class Scorer:
    """Scores explanations of cases against one task's classifier.

    Parameters
    ----------
    task : Task
    segments : Segmentation
        The scoring segmentation.
    content : str
        Content type for the shared agnostic-fidelity neighbourhood.
    agnostic_samples : int
        Size of that neighbourhood (0 disables agnostic fidelity).
    batch_size : int, optional
        Batch size of the classifier forwards; measured on this machine when None
        (:func:`explbench.tuning.best_batch_size`).
    """

    def __init__(self, task: Task, segments: Segmentation, content: str = "mean",
                 agnostic_samples: int = 256, batch_size: int | None = None, device: str = "cpu") -> None:
        from explbench.tuning import best_batch_size

        self.task = task
        self.segments = segments
        self.content = baselines.get(content)
        self.agnostic_samples = agnostic_samples
        self.classify = task.classifier()
        self.device = device
        self.batch_size = batch_size or best_batch_size(self.classify, tuple(task.domain_shape),
                                                        task.model_hash(), device)

    def decide(self, inputs: torch.Tensor) -> np.ndarray:
        """Decisions ``(N,)`` for inputs ``(N, *domain_shape)``."""
        return self.task.decide(self.probabilities(inputs)).numpy()

    def probabilities(self, inputs: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(N, C)`` for inputs ``(N, *domain_shape)`` (not counted)."""
        return forward_batched(self.classify, inputs, self.batch_size, self.device)

    def flips(self, case: Case, order: np.ndarray) -> np.ndarray:
        """Whether ``x + M(first k of order) * delta`` is decided as the target, for k = 1..d."""
        z = selection_matrix(order, self.segments.d)
        x = torch.from_numpy(case.x)
        inputs = self.segments.apply_delta(x, torch.from_numpy(case.delta), z)
        return self.decide(inputs) == case.target

    def context(self, case: Case, seed: int) -> CaseContext:
        """Quantities shared by all explainers of ``case``."""
        order = top_k(self.segments.energy(case.delta), self.segments.d)
        ctx = CaseContext(flip_norm_at_k=self.flips(case, order))
        if self.agnostic_samples > 0 and case.true_segments is not None and len(case.true_segments) == 1:
            rng = np.random.default_rng(seed)
            z = (rng.random((self.agnostic_samples, self.segments.d)) < 0.5).astype(np.float32)
            z[0] = 1.0
            x_mod = torch.from_numpy(case.x_mod)
            inputs = self.segments.compose(x_mod, z, self.content(x_mod, rng))
            ctx.neighbourhood = z
            ctx.neighbourhood_y = self.probabilities(inputs)[:, case.target].double().numpy()
            ctx.neighbourhood_w = kernel_weights(z)
        return ctx

    def audio_context(self, case: Case) -> AudioContext:
        """The waveform of the case's modified input, with its sources.

        A waveform attack's own modified audio is used when the case's modified input is exactly
        its image; otherwise the task resynthesizes a waveform whose domain image approximates
        ``x_mod`` from the clean audio (keeping its phase). What the modification added beyond
        the clean stems becomes one more source, "perturbation", so the sources still add up.
        """
        if case.audio is None:
            raise ExplainerFailure(f"case {case.case_id} carries no audio; this explainer needs it")
        wave = None
        if case.audio_mod is not None and case.true_segments is None:
            wave = np.asarray(case.audio_mod, dtype=np.float32)
        if wave is None:
            wave = self.task.resynthesize(case.audio, case.x_mod)
        stems = None
        if case.stems:
            stems = {k: np.asarray(v, dtype=np.float32) for k, v in case.stems.items()}
            stems["perturbation"] = wave - sum(stems.values())
        return AudioContext(audio=wave, stems=stems, sample_rate=self.task.sample_rate,
                            to_domain=self.task.to_domain)

    def explain(self, explainer: Explainer, case: Case, budget: int | None,
                rng: np.random.Generator) -> Explanation:
        """Run the explainer on the case's modified input and validate what it returns."""
        access = ModelAccess(self.classify, budget=budget, batch_size=self.batch_size, device=self.device)
        x_mod = torch.from_numpy(case.x_mod.copy())
        kwargs: dict = {"delta": torch.from_numpy(case.delta)} if explainer.oracle else {}
        if getattr(explainer, "needs_audio", False):
            kwargs["audio"] = self.audio_context(case)
        t0 = time.perf_counter()
        try:
            exp = explainer.explain(access, x_mod, case.target, self.segments, budget, rng, **kwargs)
        except BudgetExceeded as exc:
            raise ExplainerFailure(str(exc)) from exc
        seconds = time.perf_counter() - t0
        if not isinstance(exp, Explanation):
            raise ExplainerFailure(f"explain() returned {type(exp).__name__}, not an Explanation")
        if exp.weights is None:
            if exp.dense is None:
                raise ExplainerFailure("the Explanation has neither weights nor a dense map")
            dense = np.asarray(exp.dense, dtype=np.float64)
            if dense.shape != self.segments.shape:
                raise ExplainerFailure(
                    f"dense map has shape {dense.shape}; expected the domain shape {self.segments.shape}")
            exp.weights = self.segments.project(dense)
        w = np.asarray(exp.weights, dtype=np.float64).reshape(-1) if np.ndim(exp.weights) else None
        if w is None or w.shape != (self.segments.d,):
            raise ExplainerFailure(
                f"weights have shape {np.shape(exp.weights)}; expected ({self.segments.d},), one per segment")
        if not np.all(np.isfinite(w)):
            raise ExplainerFailure(f"weights contain {int((~np.isfinite(w)).sum())} NaN or infinite values")
        exp.weights = w
        exp.queries = max(int(exp.queries), access.queries)
        exp.seconds = exp.seconds or seconds
        return exp

    def record(self, case: Case, explainer_name: str, explainer: Explainer, ctx: CaseContext,
               budget: int | None, rng: np.random.Generator,
               classes: tuple[str, ...]) -> tuple[dict, np.ndarray | None]:
        """One protocol record (a JSON-serialisable dict) for ``explainer`` on ``case``, and the
        explanation as sound when the explainer renders one.

        Failures of the explainer are recorded with status "failed" and the error, never raised.
        """
        base = {
            "case_id": case.case_id, "generator": case.generator,
            "direction": case.direction(classes), "explainer": explainer_name,
            "oracle": bool(explainer.oracle), "d": self.segments.d,
            "true_segments": None if case.true_segments is None else list(case.true_segments),
            "flip_norm_at_k": ctx.flip_norm_at_k.tolist(),
        }
        try:
            exp = self.explain(explainer, case, budget, rng)
        except Exception as exc:  # one failing explainer must not stop the suite
            return {**base, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}, None
        w = exp.weights
        flip = self.flips(case, top_k(w, self.segments.d))
        n_pos = int((w > 0).sum())
        agn = None
        if ctx.neighbourhood is not None:
            agn = float(agnostic_fidelity(ctx.neighbourhood, ctx.neighbourhood_y, ctx.neighbourhood_w, w))
        record = {
            **base, "status": "ok", "error": None,
            "weights": [float(v) for v in w],
            "score": None if exp.score is None or not math.isfinite(exp.score) else float(exp.score),
            "agnostic_score": agn,
            "intercept": None if exp.intercept is None else float(exp.intercept),
            "queries": int(exp.queries), "seconds": round(float(exp.seconds), 4),
            "flip_at_k": flip.tolist(),
            "n_positive": n_pos,
            "flip_positive": bool(flip[n_pos - 1]) if n_pos > 0 else False,
            "flip_norm_positive": bool(ctx.flip_norm_at_k[n_pos - 1]) if n_pos > 0 else False,
        }
        if exp.extra:
            record["extra"] = exp.extra
        audio = None if exp.audio is None else np.asarray(exp.audio, dtype=np.float32).reshape(-1)
        return record, audio
