"""Classifier quality of a task's model on held-out excerpts (``explbench evaluate``)."""

from __future__ import annotations

from typing import Iterable

import numpy as np
from tqdm import tqdm

from explbench.api.model_access import forward_batched
from explbench.api.task import Excerpt, Task


def predict_excerpts(task: Task, audio: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Class probabilities ``(N, C)`` for waveforms ``(N, task.excerpt_samples)``."""
    clf = task.classifier()
    device = getattr(task, "device", "cpu")
    return forward_batched(lambda wave: clf(task.to_domain(wave)), audio, batch_size, device).numpy()


def classification_scores(labels: np.ndarray, probabilities: np.ndarray,
                          decisions: np.ndarray | None = None) -> dict[str, float]:
    """Accuracy, balanced accuracy, F1 and AUROC (binary: of the last class; else macro one-vs-rest).

    Parameters
    ----------
    labels : np.ndarray, shape (N,), int
    probabilities : np.ndarray, shape (N, C)
    decisions : np.ndarray, shape (N,), int, optional
        The task's decisions; argmax of ``probabilities`` when None.
    """
    from sklearn import metrics as skm

    pred = probabilities.argmax(axis=1) if decisions is None else np.asarray(decisions)
    n_classes = probabilities.shape[1]
    binary = n_classes == 2
    if len(np.unique(labels)) < 2:
        auroc = float("nan")
    elif binary:
        auroc = skm.roc_auc_score(labels, probabilities[:, 1])
    elif len(np.unique(labels)) == n_classes:
        auroc = skm.roc_auc_score(labels, probabilities, multi_class="ovr", labels=list(range(n_classes)))
    else:  # one-vs-rest needs every class among the labels
        auroc = float("nan")
    return {
        "accuracy": float(skm.accuracy_score(labels, pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(labels, pred)),
        "f1": float(skm.f1_score(labels, pred, average="binary" if binary else "macro")),
        "auroc": float(auroc),
        "n": int(len(labels)),
    }


def breakdown(excerpts: list[Excerpt], labels: np.ndarray, decisions: np.ndarray,
              classes: Iterable[str]) -> dict[str, dict]:
    """Per value of every boolean ``Excerpt.info`` entry, per label: n and accuracy.

    E.g. ``{"has_choir": {"true": {"no-voice": {"n": 30, "accuracy": 0.97}, ...}, ...}}``; for
    svd-synth this says whether the General MIDI choir patches are heard as voice.
    """
    names = list(classes)
    keys = sorted({k for e in excerpts for k, v in (e.info or {}).items() if isinstance(v, (bool, np.bool_))})
    out: dict[str, dict] = {}
    for key in keys:
        values = np.array([bool((e.info or {}).get(key, False)) for e in excerpts])
        out[key] = {}
        for v in (True, False):
            per_label = {}
            for c, name in enumerate(names):
                sel = (values == v) & (labels == c)
                if sel.any():
                    per_label[name] = {"n": int(sel.sum()), "accuracy": float((decisions[sel] == c).mean())}
            out[key][str(v).lower()] = per_label
    return out


def evaluate(task: Task, split: str = "test", n: int = 400, seed: int = 0, progress: bool = True) -> dict:
    """Score the task's model on ``n`` excerpts of ``split`` drawn by ``seed``.

    Returns
    -------
    dict
        accuracy, balanced_accuracy, f1, auroc, n (of the task's own decisions), the mean
        probability per class, ``by`` (:func:`breakdown`), task, split, seed, model_hash.
    """
    import torch

    excerpts = list(tqdm(task.excerpts(split, n, seed), total=n, desc=f"rendering {split} excerpts",
                         disable=not progress))
    audio = np.stack([e.audio for e in excerpts]).astype(np.float32)
    labels = np.array([e.label for e in excerpts])
    probs = predict_excerpts(task, audio)
    decisions = task.decide(torch.from_numpy(probs)).numpy()
    scores = classification_scores(labels, probs, decisions)
    scores["mean_probability"] = {
        name: float(probs[labels == c, c].mean()) if (labels == c).any() else float("nan")
        for c, name in enumerate(task.classes)
    }
    by = breakdown(excerpts, labels, decisions, task.classes)
    if by:
        scores["by"] = by
    scores.update(task=task.name, split=split, seed=seed, model_hash=task.model_hash())
    return scores
