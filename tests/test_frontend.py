import numpy as np
import torch

from explbench.tasks.svd.frontend import EXCERPT_SAMPLES, LogMel, n_frames
from explbench.tasks.svd.model import Probabilities, SchlueterCNN


def test_one_excerpt_is_80_by_115():
    x = LogMel()(torch.randn(3, EXCERPT_SAMPLES) * 0.1)
    assert x.shape == (3, 80, 115)
    assert n_frames(EXCERPT_SAMPLES) == 115 and n_frames(EXCERPT_SAMPLES - 1) == 114


def test_mel_bands_follow_frequency():
    t = np.arange(EXCERPT_SAMPLES) / 22050
    fe = LogMel()
    peaks = []
    for f in (200.0, 1000.0, 4000.0):
        x = fe(torch.from_numpy(np.sin(2 * np.pi * f * t).astype(np.float32))[None])
        peaks.append(int(x[0].mean(1).argmax()))
    assert peaks[0] < peaks[1] < peaks[2]


def test_cnn_has_4928_features_and_gradient_reaches_waveform():
    torch.manual_seed(0)
    net = SchlueterCNN().eval()
    model = Probabilities(net)
    wave = (torch.randn(2, EXCERPT_SAMPLES) * 0.1).requires_grad_(True)
    p = model(LogMel()(wave))
    assert p.shape == (2, 2)
    torch.testing.assert_close(p.sum(1), torch.ones(2))
    p[:, 1].sum().backward()
    g = wave.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
    assert net.classifier[2].in_features == 4928
