"""audio-folder on a tiny folder written here: WAV files at 22.05 kHz, a labels CSV and a
TorchScript model whose answer is known by construction (high tones against low tones)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from explbench.core.audio import AudioError
from explbench.checks.task_checks import assert_task_conforms, check_task
from explbench.tasks.audio_folder.labels import LabelsError
from explbench.tasks.audio_folder.task import AudioFolder

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch 2.13 deprecates TorchScript

FILE_RATE = 22050  # the files' rate; the task resamples to 16 kHz
SR, N_FFT, HOP, N_MELS = 16000, 512, 160, 32


def tone(f0: float, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FILE_RATE)) / FILE_RATE
    return (0.3 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


class FolderModel(torch.nn.Module):
    """log-mel (B, 32, 97) -> [P(low), P(high)] with its front-end and attack space exported."""

    def __init__(self, mel: torch.Tensor, w: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT))
        self.register_buffer("mel", mel)
        self.register_buffer("w", w)

    @torch.jit.export
    def magnitude(self, wave: torch.Tensor) -> torch.Tensor:
        return torch.stft(wave, 512, 160, window=self.window, center=False, return_complex=True).abs()

    @torch.jit.export
    def magnitude_to_domain(self, mag: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.clamp(self.mel @ mag, min=1e-7))

    @torch.jit.export
    def to_domain(self, wave: torch.Tensor) -> torch.Tensor:
        return self.magnitude_to_domain(self.magnitude(wave))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(2.0 * (torch.matmul(x.mean(dim=2), self.w) + 1.0))
        return torch.stack([1 - p, p], dim=1)


def folder_model() -> FolderModel:
    hz = librosa.mel_frequencies(N_MELS + 2, fmax=SR / 2)[1:-1]
    high, low = (hz > 500) & (hz < 2000), (hz > 80) & (hz < 400)
    w = torch.tensor(high / high.sum() - low / low.sum(), dtype=torch.float32)
    mel = torch.from_numpy(librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS))
    return FolderModel(mel, w).eval()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    rows = ["file,start,end,label,group"]
    for i in range(6):
        f0 = (150 + 20 * i) if i % 2 == 0 else (900 + 100 * i)
        sf.write(root / f"clip{i}.wav", tone(f0, 2.0, i), FILE_RATE)
        rows.append(f"clip{i}.wav,,,{'low' if i % 2 == 0 else 'high'},album-{i // 2}")
    both = np.concatenate([tone(200, 1.5, 10), tone(1200, 1.5, 11)])
    sf.write(root / "both.flac", both, FILE_RATE)
    rows += ["both.flac,0,1.5,low,album-3", "both.flac,1.5,3.0,high,album-3"]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    torch.jit.save(torch.jit.script(folder_model()), str(root / "model.pt"))
    return root


@pytest.fixture(scope="module")
def task(folder):
    return AudioFolder(folder=folder, classes=["low", "high"])


def test_reads_the_folder_and_infers_the_domain(task):
    assert task.classes == ("low", "high") and task.sample_rate == 16000 and task.excerpt_samples == 16000
    assert task.domain_shape == (32, 97) and task.domain_axes == ("frequency", "time")
    assert len(task.regions) == 8 and task.files[0] == "both.flac"


def test_excerpts_are_deterministic_balanced_and_inside_their_regions(task):
    ex = list(task.excerpts("test", 10, seed=3))
    assert [e.label for e in ex] == [0, 1] * 5
    again = list(task.excerpts("test", 10, seed=3))
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(ex, again))
    for e in ex:
        assert e.audio.shape == (16000,)
        assert task.cluster(e) == next(r.group for r in task.regions if r.line == e.info["line"])
        if e.info["file"] == "both.flac":  # low in 0-1.5 s, high in 1.5-3 s: the excerpt stays inside
            assert (e.offset + 1.0 <= 1.5 + 1e-9) if e.label == 0 else (e.offset >= 1.5 - 1e-9)
    with pytest.raises(ValueError, match="no rows"):
        list(task.excerpts("train", 2, seed=0))


def test_check_task_passes_on_the_folder(task):
    assert_task_conforms(task, n=8)


def test_a_plugin_module_instead_of_torchscript(folder, tmp_path):
    (tmp_path / "my_model.py").write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_tasks_audio_folder import folder_model

        _model = folder_model()
        to_domain = _model.to_domain
        def classifier():
            return _model
    """))
    t = AudioFolder(folder=folder, plugin=str(tmp_path / "my_model.py"), classes="low,high")
    res = {r.name: r for r in check_task(t, n=8, suite=None, generators=["cw-waveform"], explainers=[])}
    assert all(r.passed for r in res.values()), {k: r.message for k, r in res.items() if not r.passed}
    assert t.model_hash() != AudioFolder(folder=folder).model_hash()


def test_a_waveform_model_gets_a_time_domain(folder, tmp_path):
    class OnWave(torch.nn.Module):
        def forward(self, wave: torch.Tensor) -> torch.Tensor:
            e = wave.abs().mean(dim=1)
            return torch.stack([1 - torch.sigmoid(e), torch.sigmoid(e)], dim=1)

    torch.jit.save(torch.jit.script(OnWave()), str(tmp_path / "wave.pt"))
    t = AudioFolder(folder=folder, model=str(tmp_path / "wave.pt"))
    assert t.domain_shape == (16000,) and t.domain_axes == ("sample",)
    assert {r.name: r for r in check_task(t, n=4, suite=None, generators=[], explainers=[])}["axis order"].passed


def test_bad_labels_name_the_line_and_the_fix(folder, tmp_path):
    def labels(text):
        (folder / "bad.csv").write_text(text)
        return lambda: AudioFolder(folder=folder, labels="bad.csv")

    with pytest.raises(LabelsError, match="missing column"):
        labels("file,start\nclip0.wav,0\n")()
    with pytest.raises(LabelsError, match="line 3: audio file 'nope.wav' not found"):
        labels("file,label\nclip0.wav,low\nnope.wav,high\n")()
    with pytest.raises(LabelsError, match="line 2: end 1.0 s is not after start 2.0 s"):
        labels("file,start,end,label\nclip0.wav,2,1,low\nclip1.wav,,,high\n")()
    with pytest.raises(LabelsError, match="group 'g' appears in splits test and train"):
        labels("file,label,group,split\nclip0.wav,low,g,train\nclip1.wav,high,g,test\n")()
    labels("file,label\nclip0.wav,low\nclip1.wav,loud\n")
    with pytest.raises(LabelsError, match="label 'loud' is not one of the classes"):
        AudioFolder(folder=folder, labels="bad.csv", classes=["low", "high"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        AudioFolder(folder=tmp_path / "missing")


def test_bad_audio_is_refused_with_the_audio_rules(folder):
    sf.write(folder / "stereo.wav", np.zeros((32000, 2), np.float32) + 0.1, FILE_RATE)
    sf.write(folder / "silent.wav", np.zeros(44100, np.float32), FILE_RATE)
    sf.write(folder / "short.wav", tone(300, 0.5, 0), FILE_RATE)
    for name, words in (("stereo.wav", "2 channels"), ("silent.wav", "silent"), ("short.wav", "one excerpt needs")):
        (folder / "one.csv").write_text(f"file,label\n{name},low\nclip1.wav,high\n")
        t = AudioFolder(folder=folder, labels="one.csv", classes=["low", "high"])
        with pytest.raises(AudioError, match=words):
            list(t.excerpts("test", 2, seed=0))


def test_data_version_follows_the_labels(folder):
    a = AudioFolder(folder=folder).data_version()
    (folder / "other.csv").write_text("file,label\nclip0.wav,low\nclip1.wav,high\n")
    assert AudioFolder(folder=folder, labels="other.csv").data_version() != a


def test_a_smoke_sized_suite_runs_on_the_folder(folder, tmp_path):
    suite = tmp_path / "folder.toml"
    suite.write_text(textwrap.dedent(f"""
        name = "folder-tiny"
        task = "audio-folder"
        budget = 64
        n_boot = 200
        agnostic_samples = 32
        explainers = ["random", "lime", "oracle-norm"]

        [task-params]
        folder = {str(folder)!r}
        classes = ["low", "high"]

        [explainer.lime]
        n_samples = 64

        [generator.cw-spectrogram]
        n = 4
        eps = 5.0
        eta = 0.25
        alpha = 1000
        max_iter = 200

        [generator.cw-waveform]
        n = 4
        eps = 0.1
        eta = 0.005
        alpha = 1000
        max_iter = 200

        [generator.localized]
        from = ["cw-spectrogram", "cw-waveform"]
        ks = [1, 3]
    """))
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # shared cores: thread pools only stall
    res = subprocess.run([sys.executable, "-m", "explbench.cli", "run", "--suite", str(suite), "--out", str(out),
                          "--quiet"], capture_output=True, text=True, timeout=900, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    m = pd.read_csv(out / "metrics.csv")
    assert set(m["task"]) == {"audio-folder"}
    assert {"cw-spectrogram", "cw-waveform"} <= set(m["generator"])
    assert m[m.metric == "flip-rate"]["value"].between(0, 1).all()


def test_the_folder_can_come_from_the_environment(folder, monkeypatch):
    monkeypatch.setenv("EXPLBENCH_AUDIO_FOLDER", str(folder))
    assert AudioFolder().folder == folder.resolve()
    monkeypatch.delenv("EXPLBENCH_AUDIO_FOLDER")
    with pytest.raises(ValueError, match=r"\[task-params\]"):
        AudioFolder()


def test_check_task_from_the_command_line(folder):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "explbench.cli", "check-task", "audio-folder", "--task-param",
                          f"folder={folder}", "--task-param", 'classes=["low", "high"]', "--n", "8"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "all checks passed" in res.stdout and "✗" not in res.stdout
    bad = subprocess.run([sys.executable, "-m", "explbench.cli", "check-task", "audio-folder", "--task-param",
                          f"folder={folder}", "--task-param", "classes=loud,soft", "--n", "4"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert bad.returncode == 1 and "✗ construction" in bad.stdout and "not one of the classes" in bad.stdout
