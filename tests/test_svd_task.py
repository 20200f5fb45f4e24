"""svd-synth: splits, excerpts, training mechanics, and the committed model's quality on songs it
never saw (rendered here, from test-split seeds)."""

import json

import numpy as np
import pytest
import torch

from explbench.api import registry
from explbench.checks.evaluation import evaluate
from explbench.tasks.svd.data import SPLIT_BASE, SPLIT_SIZE, song_seeds, split_of
from explbench.tasks.svd.frontend import EXCERPT_SAMPLES
from explbench.tasks.svd.task import DEFAULT_WEIGHTS, SVDSynth, load_weights


def test_splits_never_share_a_song_seed():
    seen = {}
    for split in SPLIT_BASE:
        for seed in (0, 1, 99):
            s = song_seeds(split, 500, seed)
            assert len(set(s)) == 500
            assert all(split_of(int(v)) == split for v in s)
            seen.setdefault(split, set()).update(s.tolist())
    assert not (seen["train"] & seen["valid"]) and not (seen["train"] & seen["test"])
    assert not (seen["valid"] & seen["test"])
    assert SPLIT_SIZE <= SPLIT_BASE["valid"] - SPLIT_BASE["train"]


def test_excerpts_are_balanced_labelled_and_carry_stems():
    task = SVDSynth()
    ex = list(task.excerpts("test", 10, seed=3))
    assert [e.label for e in ex].count(1) == 5 and len(ex) == 10
    for e in ex:
        assert e.audio.shape == (EXCERPT_SAMPLES,) and split_of(e.song_seed) == "test"
        np.testing.assert_allclose(sum(e.stems.values()), e.audio, atol=1e-6)
    again = list(task.excerpts("test", 10, seed=3))
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(ex, again))


def test_committed_weights_load_without_pickle_and_are_small():
    assert DEFAULT_WEIGHTS.exists(), "run `explbench train svd-synth` and commit the weights"
    assert DEFAULT_WEIGHTS.stat().st_size < 10 * 2**20
    state = load_weights(DEFAULT_WEIGHTS)
    assert "band_mean" in state and state["band_std"].min() > 0


def test_committed_model_quality_on_fresh_test_songs():
    scores = evaluate(SVDSynth(), split="test", n=160, seed=2024, progress=False)
    assert scores["n"] == 160
    assert scores["accuracy"] >= 0.90, scores
    assert scores["auroc"] >= 0.95, scores


def test_unknown_task_lists_known_ones():
    # other tests may register toy tasks in this process, so check the shipped ones are named
    with pytest.raises(registry.UnknownName, match="Did you mean 'svd-jamendo'") as err:
        registry.tasks.get("svd-jamendo-nope")
    known = str(err.value).split("Known tasks: ", 1)[1]
    assert {"audio-folder", "svd-jamendo", "svd-synth", "vad-silero"} <= {
        t.strip() for t in known.split(",")}


def test_svd_synth_passes_check_task_and_declares_its_hooks():
    from explbench.api.task import has_hook
    from explbench.checks.task_checks import assert_task_conforms

    task = SVDSynth()
    assert_task_conforms(task, n=8, seed=4)
    for hook in ("magnitude", "magnitude_to_domain", "band_frequencies", "resynthesize", "sonify", "stems"):
        assert has_hook(task, hook), hook
    assert task.band_frequencies.shape == (80,) and 27.5 < task.band_frequencies[0] < task.band_frequencies[-1] < 8000


def test_per_cluster_limits_excerpts_per_song_and_class():
    from collections import Counter

    ex = list(SVDSynth().excerpts("test", 12, seed=3, per_cluster=1))
    per = Counter((e.song_seed, e.label) for e in ex)
    assert max(per.values()) == 1 and len(ex) == 12
    assert all(isinstance(e.info["has_choir"], bool) for e in ex)


def test_training_runs_and_writes_loadable_weights(tmp_path):
    from explbench.tasks.svd.model import SchlueterCNN
    from explbench.tasks.svd.train import TrainConfig, train

    cfg = TrainConfig(steps=4, batch_size=8, steps_per_epoch=2, train_songs=2, valid_excerpts=8)
    record = train(cfg, tmp_path, progress=False)
    assert len(record["history"]) == 2 and np.isfinite(record["history"][-1]["loss"])
    net = SchlueterCNN()
    net.load_state_dict(load_weights(tmp_path / "model.safetensors"))
    assert json.loads((tmp_path / "training.json").read_text())["config"]["steps"] == 4
    task = SVDSynth(weights=tmp_path / "model.safetensors")
    p = task.classifier()(torch.zeros(2, 80, 115))
    assert p.shape == (2, 2)
