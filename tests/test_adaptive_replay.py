"""scripts/adaptive_replay.py answers LIME's adaptive rounds from a recording exactly as the model would."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from explbench.explainers._common import AutoSampling
from explbench.explainers.lime import sample_adaptively
from explbench.core.neighbourhood import MaskStream

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "adaptive_replay.py"
D = 20
# a white-box model: the target probability rises with segments 3, 7 and 12 (known top-3), a
# little with the others, plus a fixed nonlinearity so the fit is not exact
W = np.full(D, 0.01)
W[[3, 7, 12]] = [0.30, 0.20, 0.12]


def model(masks: np.ndarray) -> np.ndarray:
    p = 1.0 / (1.0 + np.exp(-(masks.astype(np.float64) @ W * 4.0 - 1.0 + 0.05 * np.sin(masks.sum(1)))))
    return np.stack([1.0 - p, p], axis=1)


@pytest.mark.parametrize("paired", [False, True], ids=["iid", "paired"])
def test_replay_of_a_recording_is_the_live_adaptive_run(paired):
    spec = importlib.util.spec_from_file_location("adaptive_replay", SCRIPT)
    replay = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(replay)
    auto = AutoSampling(max_samples=2048, first=64, growth=1.25, confidence=0.97)
    settled = 0
    for seed in range(3):
        live = sample_adaptively(model, MaskStream(np.random.default_rng(seed), D, paired), 1, k=3, auto=auto,
                                 cap=2048)
        z = MaskStream(np.random.default_rng(seed), D, paired).take(2048).astype(bool)  # what `record` keeps
        y = model(z).astype(np.float32)
        again = sample_adaptively(replay._answers(z, y), replay.RecordedStream(z, paired), 1, k=3, auto=auto,
                                  cap=2048)
        assert again.queried == live.queried and again.rounds == live.rounds and again.stopped_because == live.stopped_because
        np.testing.assert_allclose(again.fit.weights, live.fit.weights, rtol=1e-5, atol=1e-6)
        assert replay.top_set(again.fit.weights, 3) == frozenset({3, 7, 12})
        settled += live.stopped_because == "settled" and live.queried < 2048
    assert settled == 3  # the rounds stopped early, so the replay had to stop where they did
