"""Training the singing-voice CNN on synthetic songs (``explbench train svd-synth``)."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from explbench.api.model_access import forward_batched
from explbench.tasks.svd.data import CENTRE, RenderedSong, load_song, song_seeds
from explbench.tasks.svd.frontend import EXCERPT_FRAMES, LogMel
from explbench.tasks.svd.model import Probabilities, SchlueterCNN


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model.

    ``steps_per_epoch`` defines the "epoch" of the learning-rate schedule: the rate is
    multiplied by ``lr_decay`` after each of them.
    """

    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    lr_decay: float = 0.85
    steps_per_epoch: int = 200
    label_smoothing: float = 0.05
    gain_db: float = 6.0
    train_songs: int = 160
    valid_excerpts: int = 400
    song_duration: float = 20.0
    seed: int = 0


def band_statistics(songs: list[RenderedSong]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-band mean and standard deviation ``(80,)`` of the songs' log-mel spectrograms."""
    cat = torch.cat([s.logmel for s in songs], dim=1)
    return cat.mean(dim=1), cat.std(dim=1).clamp_min(1e-3)


class BatchSampler:
    """Balanced random excerpts from pre-computed song spectrograms.

    Each batch holds half voice and half no-voice excerpts (by centre frame), with a random
    gain of ±``gain_db`` applied in the log domain.
    """

    def __init__(self, songs: list[RenderedSong], rng: np.random.Generator, gain_db: float) -> None:
        self.songs = songs
        self.rng = rng
        self.gain = gain_db * np.log(10.0) / 20.0
        self.pool: dict[int, np.ndarray] = {}
        for cls in (0, 1):
            refs = []
            for i, s in enumerate(songs):
                n_starts = len(s.labels) - EXCERPT_FRAMES + 1
                starts = np.flatnonzero(s.labels[CENTRE : CENTRE + n_starts] == cls)
                refs.append(np.stack([np.full_like(starts, i), starts], axis=1))
            self.pool[cls] = np.concatenate(refs)

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for cls in (0, 1):
            idx = self.rng.integers(0, len(self.pool[cls]), size=size // 2 + (cls * (size % 2)))
            for song_i, start in self.pool[cls][idx]:
                xs.append(self.songs[song_i].logmel[:, start : start + EXCERPT_FRAMES])
                ys.append(cls)
        x = torch.stack(xs)
        x = x + torch.from_numpy(self.rng.uniform(-self.gain, self.gain, (len(xs), 1, 1)).astype(np.float32))
        return x, torch.tensor(ys, dtype=torch.float32)


def evaluate_logits(net: torch.nn.Module, x: torch.Tensor, batch: int = 16) -> np.ndarray:
    """Voice probabilities ``(N,)`` for log-mel excerpts ``(N, 80, 115)``."""
    return forward_batched(Probabilities(net).eval(), x, batch)[:, 1].numpy()


def train(config: TrainConfig, out: Path, progress: bool = True) -> dict:
    """Train the CNN and write ``model.safetensors`` and ``training.json`` into ``out``.

    Returns
    -------
    dict
        The training record (config, seconds, best validation accuracy, history).
    """
    from safetensors.torch import save_file

    from explbench.tasks.svd.render import RENDERER_VERSION
    from explbench.tasks.svd.task import SVDSynth

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)  # weight initialisation and dropout
    rng = np.random.default_rng(config.seed)
    frontend = LogMel()
    t0 = time.perf_counter()
    seeds = song_seeds("train", config.train_songs, config.seed)
    songs = [load_song(int(s), frontend, config.song_duration)
             for s in tqdm(seeds, desc="rendering training songs", disable=not progress)]
    valid = list(SVDSynth(song_duration=config.song_duration).excerpts("valid", config.valid_excerpts, config.seed))
    with torch.inference_mode():
        vx = frontend(torch.from_numpy(np.stack([e.audio for e in valid])))
    vy = np.array([e.label for e in valid])
    render_seconds = time.perf_counter() - t0

    net = SchlueterCNN()
    net.band_mean, net.band_std = band_statistics(songs)
    net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=config.steps_per_epoch, gamma=config.lr_decay)
    sampler = BatchSampler(songs, rng, config.gain_db)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    eps = config.label_smoothing
    history, best = [], (-1.0, None)
    t1 = time.perf_counter()
    bar = tqdm(range(1, config.steps + 1), desc="training", disable=not progress)
    running = None
    for step in bar:
        net.train()
        x, y = sampler.batch(config.batch_size)
        loss = loss_fn(net(x), y * (1 - 2 * eps) + eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % config.steps_per_epoch == 0 or step == config.steps:
            net.eval()
            acc = float(((evaluate_logits(net, vx) > 0.5) == vy).mean())
            history.append({"step": step, "loss": round(running, 4), "valid_accuracy": acc})
            if acc > best[0]:  # saved at once, so an interrupted run still leaves its best model
                best = (acc, {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()})
                save_file(best[1], str(out / "model.safetensors"))
            bar.set_postfix(loss=f"{running:.3f}", valid_acc=f"{acc:.3f}")
    train_seconds = time.perf_counter() - t1
    record = {
        "config": asdict(config),
        "renderer_version": RENDERER_VERSION,
        "render_seconds": round(render_seconds, 1),
        "train_seconds": round(train_seconds, 1),
        "best_valid_accuracy": best[0],
        "history": history,
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor()} ({torch.get_num_threads()} threads)",
    }
    (out / "training.json").write_text(json.dumps(record, indent=2))
    return record
