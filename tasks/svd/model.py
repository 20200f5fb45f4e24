"""The Schlüter–Lehner singing-voice CNN, with per-band normalisation in front of it."""

from __future__ import annotations

import torch
from torch import nn

from explbench.tasks.svd.frontend import EXCERPT_FRAMES, N_MELS


class SchlueterCNN(nn.Module):
    """Log-mel excerpts ``(B, 80, 115)`` to the logit of "voice" ``(B,)``.

    conv 64, conv 32, pool 3x3, conv 128, conv 64, pool 3x3 (3x3 valid convolutions, leaky ReLU),
    dense 256, dense 64, dense 1 with dropout 0.5 before each dense layer; 4928 features enter
    the first dense layer. Inputs are normalised per mel band with statistics of the training
    data, stored as buffers so the checkpoint carries them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("band_mean", torch.zeros(N_MELS))
        self.register_buffer("band_std", torch.ones(N_MELS))
        def act() -> nn.Module:  # one module per use: captum's DeepLift refuses reused modules
            return nn.LeakyReLU(0.01)

        self.features = nn.Sequential(
            nn.Conv2d(1, 64, 3), act(),
            nn.Conv2d(64, 32, 3), act(),
            nn.MaxPool2d(3),
            nn.Conv2d(32, 128, 3), act(),
            nn.Conv2d(128, 64, 3), act(),
            nn.MaxPool2d(3),
        )
        n_features = 64 * ((((N_MELS - 4) // 3) - 4) // 3) * ((((EXCERPT_FRAMES - 4) // 3) - 4) // 3)
        assert n_features == 4928, n_features
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.5), nn.Linear(n_features, 256), act(),
            nn.Dropout(0.5), nn.Linear(256, 64), act(),
            nn.Dropout(0.5), nn.Linear(64, 1),
        )

    def normalise(self, logmel: torch.Tensor) -> torch.Tensor:
        return (logmel - self.band_mean[:, None]) / self.band_std[:, None]

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        x = self.normalise(logmel).unsqueeze(1)
        if x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        return self.classifier(self.features(x)).squeeze(-1)


class Probabilities(nn.Module):
    """Wraps a logit model into class probabilities ``(B, 2)``: [no voice, voice]."""

    def __init__(self, net: SchlueterCNN) -> None:
        super().__init__()
        self.net = net
        self.sigmoid = nn.Sigmoid()  # a module, so DeepLift applies its rule to it

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        p = self.sigmoid(self.net(logmel))
        return torch.stack([1.0 - p, p], dim=-1)
