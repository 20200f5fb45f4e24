"""Classifier quality of a task's model on held-out excerpts."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from explbench.api import Task, forward_batched


def predict_excerpts(task: Task, audio: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Class probabilities ``(N, C)`` for waveforms ``(N, task.excerpt_samples)``."""
    clf = task.classifier()
    return forward_batched(lambda wave: clf(task.to_domain(wave)), audio, batch_size).numpy()


def classification_scores(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, F1 and AUROC (binary: of the last class; else macro one-vs-rest).

    Parameters
    ----------
    labels : np.ndarray, shape (N,), int
    probabilities : np.ndarray, shape (N, C)
    """
    from sklearn import metrics as skm

    pred = probabilities.argmax(axis=1)
    binary = probabilities.shape[1] == 2
    if len(np.unique(labels)) < 2:
        auroc = float("nan")
    elif binary:
        auroc = skm.roc_auc_score(labels, probabilities[:, 1])
    else:
        auroc = skm.roc_auc_score(labels, probabilities, multi_class="ovr")
    return {
        "accuracy": float(skm.accuracy_score(labels, pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(labels, pred)),
        "f1": float(skm.f1_score(labels, pred, average="binary" if binary else "macro")),
        "auroc": float(auroc),
        "n": int(len(labels)),
    }


def evaluate(task: Task, split: str = "test", n: int = 400, seed: int = 0, progress: bool = True) -> dict:
    """Score the task's model on ``n`` excerpts of ``split`` drawn by ``seed``."""
    excerpts = list(tqdm(task.excerpts(split, n, seed), total=n, desc=f"rendering {split} excerpts",
                         disable=not progress))
    audio = np.stack([e.audio for e in excerpts]).astype(np.float32)
    labels = np.array([e.label for e in excerpts])
    probs = predict_excerpts(task, audio)
    scores = classification_scores(labels, probs)
    scores.update(task=task.name, split=split, seed=seed, model_hash=task.model_hash())
    return scores
