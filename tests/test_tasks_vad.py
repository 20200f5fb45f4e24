"""vad-silero: the pretrained silero-vad model, split at its own STFT, on svd-synth songs."""

import sys

import numpy as np
import pytest
import torch

from explbench.api import registry
from explbench.checks.evaluation import evaluate
from explbench.checks.task_checks import assert_task_conforms
from explbench.tasks.vad import silero
from explbench.tasks.vad.task import VADSilero


@pytest.fixture(scope="module")
def task():
    return VADSilero()


@pytest.fixture(scope="module")
def excerpts(task):
    return list(task.excerpts("test", 6, seed=5))


def test_loads_without_importing_the_package_or_changing_threads():
    threads = torch.get_num_threads()
    t = registry.tasks.get("vad-silero")()
    assert "silero_vad" not in sys.modules  # its import would set torch to one thread
    assert torch.get_num_threads() == threads
    assert t.domain_shape == (129, 200) and t.excerpt_samples == 35280
    assert len(t.model_hash()) == 16


def test_domain_and_classifier_compose_to_the_real_model_streamed(task, excerpts):
    audio = torch.from_numpy(np.stack([e.audio for e in excerpts[:3]]))
    with torch.no_grad():
        mine = task.chunk_probabilities(audio)
        a16 = task._frontend.at_16k(audio)
        model = silero.load_model()
        model.reset_states()
        real = torch.cat([model(a16[:, k * 512 : (k + 1) * 512], 16000) for k in range(50)], dim=1)
    assert mine.shape == real.shape == (3, 50)
    assert float((mine - real).abs().max()) < 1e-5


def test_check_task_passes(task):
    assert_task_conforms(task, n=8, seed=1)


def test_gradient_reaches_the_waveform_finite_even_at_silence_and_threads_come_back(task, excerpts):
    threads = torch.get_num_threads()
    wave = torch.from_numpy(np.stack([excerpts[0].audio, np.zeros(35280, np.float32)])).requires_grad_(True)
    p = task.classifier()(task.to_domain(wave))[:, 1]
    assert torch.get_num_threads() == threads
    p.sum().backward()
    assert torch.get_num_threads() == threads
    g = wave.grad
    assert torch.isfinite(g).all()
    assert float(g[0].abs().max()) > 0


def test_spectrogram_attack_space_maps_back_to_the_domain(task, excerpts):
    audio = torch.from_numpy(excerpts[1].audio)[None]
    with torch.no_grad():
        mag = task.magnitude(audio)
        assert mag.shape == (1, 129, 200) and float(mag.min()) > 0
        assert torch.allclose(task.magnitude_to_domain(mag), task.to_domain(audio), atol=1e-5)


def test_resynthesis_reaches_a_local_boost_and_sonify_removes_what_the_mask_drops(task, excerpts):
    a = excerpts[2].audio
    x = task.to_domain(torch.from_numpy(a)[None])[0].detach().numpy()
    np.testing.assert_allclose(task.resynthesize(a, x), a, atol=1e-5)
    target = x.copy()
    target[20:40, 50:100] += 2.0
    y = task.to_domain(torch.from_numpy(task.resynthesize(a, target))[None])[0].detach().numpy()
    assert 1.7 < float((y - x)[20:40, 50:100].mean()) < 2.1  # measured 1.92-1.96
    assert float(np.abs(y - x)[60:].mean()) < 0.15  # elsewhere almost untouched (measured 0.05-0.08)
    mask = np.ones_like(x)
    mask[:, 100:] = 0
    s = task.to_domain(torch.from_numpy(task.sonify(a, mask))[None])[0].detach().numpy()
    assert float(np.abs(s[:, :90] - x[:, :90]).max()) < 1e-3
    assert float(s[:, 110:].mean()) < float(x[:, 110:].mean()) - 5  # about 8 log units down


def test_quality_on_fresh_test_songs():
    # 400 excerpts, seed 0 (explbench evaluate vad-silero): accuracy 0.915, AUROC 0.972, no choir
    # patch heard as voice (32 of 32 no-voice choir excerpts right)
    scores = evaluate(VADSilero(), split="test", n=80, seed=2024, progress=False)
    assert scores["n"] == 80
    assert scores["accuracy"] >= 0.80, scores
    assert scores["auroc"] >= 0.90, scores
    choir = scores.get("by", {}).get("has_choir", {}).get("true", {}).get("no-voice")
    if choir:
        assert choir["accuracy"] >= 0.8, scores


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="warmup"):
        VADSilero(warmup=50)
    with pytest.raises(ValueError, match="threshold"):
        VADSilero(threshold=1.0)
