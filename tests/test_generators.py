"""Ground-truth generators on a small fake task (random Schlüter CNN, synthetic audio)."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pytest
import torch

from explbench.api import Excerpt, Task
from explbench.core.cases import load_cases, save_cases
from explbench.generators import CWSpectrogram, CWWaveform, Localized, Planted
from explbench.api.registry import generators
from explbench.core.segmentation import grid, top_k
from explbench.tasks.svd.frontend import EXCERPT_FRAMES, EXCERPT_SAMPLES, N_MELS, SAMPLE_RATE, LogMel
from explbench.tasks.svd.model import Probabilities, SchlueterCNN


def synthetic_excerpt(rng: np.random.Generator, label: int) -> dict[str, np.ndarray]:
    """Seeded stems: noise and steady sines ("accompaniment"), and (label 1) a harmonic tone
    with vibrato ("voice"); each of shape (EXCERPT_SAMPLES,), float32."""
    t = np.arange(EXCERPT_SAMPLES) / SAMPLE_RATE
    acc = rng.normal(0, 0.02, EXCERPT_SAMPLES)
    for f in rng.uniform(80, 1000, size=3):
        acc += 0.05 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3))
    voice = np.zeros(EXCERPT_SAMPLES)
    if label:
        f0 = rng.uniform(150, 300)
        phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.02 * np.sin(2 * np.pi * 5.5 * t))) / SAMPLE_RATE
        for h in range(1, 8):
            voice += 0.08 / h * np.sin(h * phase)
    return {"accompaniment": acc.astype(np.float32), "voice": voice.astype(np.float32)}


class FakeTask(Task):
    """svd-like task: the real front-end and a random (seeded) Schlüter CNN, bias-calibrated so
    that the decisions on its synthetic excerpts split about evenly."""

    name = "fake-svd"
    classes = ("no-voice", "voice")
    sample_rate = SAMPLE_RATE
    excerpt_samples = EXCERPT_SAMPLES
    domain_shape = (N_MELS, EXCERPT_FRAMES)

    def __init__(self, model_seed: int = 0, gain: float = 30.0) -> None:
        self.frontend = LogMel()
        with torch.random.fork_rng():
            torch.manual_seed(model_seed)
            net = SchlueterCNN()
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        with torch.inference_mode():
            net.classifier[-1].weight *= gain  # a sharper random model: easier to attack
            x = self.to_domain(torch.from_numpy(np.stack([e.audio for e in self.excerpts("valid", 32, 99)])))
            net.classifier[-1].bias -= net(x).median()
        self.net = net
        self._clf = Probabilities(net).eval()

    def to_domain(self, audio: torch.Tensor) -> torch.Tensor:
        return self.frontend(audio)

    def magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        return self.frontend.magnitude(audio)

    def magnitude_to_domain(self, magnitude: torch.Tensor) -> torch.Tensor:
        return self.frontend.mel_log(magnitude)

    def classifier(self) -> torch.nn.Module:
        return self._clf

    def excerpts(self, split: str, n: int, seed: int) -> Iterator[Excerpt]:
        base = {"train": 0, "valid": 1, "test": 2}[split]
        for i in range(n):
            stems = synthetic_excerpt(np.random.default_rng([seed, base, i]), i % 2)
            yield Excerpt(stems["accompaniment"] + stems["voice"], label=i % 2, song_seed=1000 * base + i,
                          offset=0.0, stems=stems)


# --------------------------------------------------------------------------- fixtures

N = 4


@pytest.fixture(scope="module")
def task() -> FakeTask:
    return FakeTask()


@pytest.fixture(scope="module")
def seg():
    return grid((N_MELS, EXCERPT_FRAMES))


@pytest.fixture(scope="module")
def spec_run(task, seg):
    return CWSpectrogram(max_iter=150).generate(task, seg, N, seed=3, progress=False)


@pytest.fixture(scope="module")
def wave_run(task, seg):
    return CWWaveform(max_iter=150).generate(task, seg, N, seed=3, progress=False)


@pytest.fixture(scope="module")
def planted_run(task, seg):
    return Planted().generate(task, seg, N, seed=5, progress=False)


def decisions(task: Task, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return task.decide(task.classifier()(torch.from_numpy(np.asarray(x, dtype=np.float32)))).numpy()


def assert_flips(task: Task, cases) -> None:
    assert cases
    clean = decisions(task, np.stack([c.x for c in cases]))
    mod = decisions(task, np.stack([c.x_mod for c in cases]))
    for c, d0, d1 in zip(cases, clean, mod):
        assert d0 == c.original and d1 == c.target and c.target != c.original, c.case_id


# --------------------------------------------------------------------------- tests


def test_registered():
    assert generators.get("cw-spectrogram") is CWSpectrogram
    assert generators.get("cw-waveform") is CWWaveform
    assert generators.get("localized") is Localized
    assert generators.get("planted") is Planted


@pytest.mark.parametrize("run_name", ["spec_run", "wave_run"])
def test_attacks_flip_within_eps(request, task, run_name):
    cases, stats = request.getfixturevalue(run_name)
    assert_flips(task, cases)
    eps = stats["config"]["eps"]
    dirs = stats["directions"]
    assert set(dirs) == {"no-voice-to-voice", "voice-to-no-voice"}
    # balanced: N/2 cases per direction (the fake model is easy to attack)
    for name, d in dirs.items():
        assert d["succeeded"] == N // 2 == sum(c.direction(task.classes) == name for c in cases)
        assert 0 < d["success_rate"] <= 1
    assert stats["n_clusters"] == len({c.info["cluster"] for c in cases}) == len(cases)
    for i, c in enumerate(cases):
        assert c.case_id == f"{stats['generator']}/{i:04d}"
        assert c.x.shape == c.x_mod.shape == task.domain_shape
        assert 0 < c.info["linf"] <= eps + 1e-6
        assert c.audio.shape == (task.excerpt_samples,)
        if stats["attack_space"] == "waveform":
            d = c.audio_mod - c.audio
            assert np.abs(d).max() <= eps + 1e-6
            with torch.no_grad():
                x_mod = task.to_domain(torch.from_numpy(c.audio_mod)[None])[0].numpy()
            np.testing.assert_allclose(x_mod, c.x_mod, atol=1e-4)
        else:
            assert c.audio_mod is None
    assert json_roundtrip(stats) == stats


def json_roundtrip(obj):
    import json

    return json.loads(json.dumps(obj))


def test_attack_deterministic(task, seg, spec_run):
    cases, _ = CWSpectrogram(max_iter=150).generate(task, seg, N, seed=3, progress=False)
    ref, _ = spec_run
    assert [c.case_id for c in cases] == [c.case_id for c in ref]
    for a, b in zip(cases, ref):
        np.testing.assert_array_equal(a.x_mod, b.x_mod)
        assert a.info == b.info


def test_task_attack_defaults(task, seg):
    class Tuned(FakeTask):
        attack_defaults = {"cw-waveform": {"eps": 0.002, "max_iter": 7}}

    t = Tuned.__new__(Tuned)
    t.__dict__.update(task.__dict__)
    cfg = CWWaveform().config(t)
    assert (cfg.eps, cfg.max_iter, cfg.eta) == (0.002, 7, 3e-4)
    assert CWWaveform(eps=0.005).config(t).eps == 0.005


def test_localized(task, seg, spec_run, wave_run):
    parents = spec_run[0] + wave_run[0]
    cases, stats = Localized(ks=(1, 3, 5)).derive(task, seg, parents, seed=0, progress=False)
    assert cases, stats
    assert_flips(task, cases)
    by_id = {p.case_id: p for p in parents}
    for c in cases:
        p = by_id[c.info["parent"]]
        k = c.info["k"]
        assert c.case_id == f"localized-k{k}/{p.case_id}"
        energy = seg.energy(p.delta)
        assert list(c.true_segments) == top_k(energy, k).tolist()
        assert (energy[list(c.true_segments)] > 0).all()  # never a segment without perturbation
        m = seg.mask(np.isin(np.arange(seg.d), c.true_segments).astype(np.float32)).numpy()
        np.testing.assert_array_equal(c.x_mod, p.x + m * p.delta)
        assert not (c.delta * (1 - m)).any()
        assert c.info["cluster"] == p.info["cluster"] == str(p.info["song_seed"])
        assert_necessity(task, seg, c)
    for k in (1, 3, 5):
        e = stats["per_k"][f"k{k}"]
        mine = [c for c in cases if c.info["k"] == k]
        assert e["flipped"] == e["kept"] == len(mine)
        assert e["minimal"] == sum(c.minimal for c in mine)
        assert e["skipped_support"] == sum(int((seg.energy(p.delta) > 0).sum() < k) for p in parents)
    assert all(c.minimal for c in cases if c.info["k"] == 1)
    assert stats["n_clusters"] == len({c.info["cluster"] for c in cases})
    only, ostats = Localized(ks=(1, 3, 5), minimal_only=True).derive(task, seg, parents, seed=0, progress=False)
    assert [c.case_id for c in only] == [c.case_id for c in cases if c.minimal]
    assert ostats["per_k"]["k3"]["minimal"] == stats["per_k"]["k3"]["minimal"]


def assert_necessity(task, seg, c) -> None:
    """``necessary_segments`` is exactly the set of claimed segments whose removal un-flips."""
    expect = []
    for s in c.true_segments:
        z = np.isin(np.arange(seg.d), [t for t in c.true_segments if t != s]).astype(np.float32)
        if decisions(task, (c.x + seg.mask(z).numpy() * c.delta)[None])[0] != c.target:
            expect.append(s)
    assert c.necessary_segments == tuple(expect), c.case_id
    assert c.minimal == c.info["minimal"] == (set(expect) == set(c.true_segments))


def test_planted(task, seg, planted_run):
    cases, stats = planted_run
    assert_flips(task, cases)
    # successes beyond n are trimmed in draw order, so `succeeded` may exceed the case count
    assert stats["n_cases"] == len(cases) <= stats["succeeded"] and 0 < stats["success_rate"] <= 1
    for c in cases:
        assert (c.original, c.target) == (0, 1)
        assert 1 <= len(c.true_segments) <= 3
        e = seg.energy(c.delta)
        inside = np.isin(np.arange(seg.d), c.true_segments)
        assert not e[~inside].any() and (e[inside] > 0).all()
        assert 0 < c.info["amplitude"] <= Planted().max_amplitude
        assert_necessity(task, seg, c)
    assert stats["n_clusters"] == len({c.info["cluster"] for c in cases}) == len(cases)
    assert sum(v["minimal"] for v in stats["cases_per_k"].values()) == sum(c.minimal for c in cases)


def test_planted_deterministic(task, seg, planted_run):
    cases, _ = Planted().generate(task, seg, N, seed=5, progress=False)
    ref, _ = planted_run
    assert [c.true_segments for c in cases] == [c.true_segments for c in ref]
    for a, b in zip(cases, ref):
        np.testing.assert_array_equal(a.x_mod, b.x_mod)


def test_save_load_roundtrip(tmp_path, task, seg, wave_run, planted_run):
    cases = wave_run[0] + planted_run[0]
    stats = {"wave": wave_run[1], "planted": planted_run[1]}
    save_cases(tmp_path / "c.npz", cases, stats)
    loaded, lstats = load_cases(tmp_path / "c.npz")
    assert lstats == json_roundtrip(stats)
    assert len(loaded) == len(cases)
    for a, b in zip(cases, loaded):
        for name in ("x", "x_mod", "audio", "audio_mod"):
            va, vb = getattr(a, name), getattr(b, name)
            assert (va is None) == (vb is None)
            if va is not None:
                np.testing.assert_array_equal(va, vb)
        assert a.stems is not None and sorted(a.stems) == sorted(b.stems) == ["accompaniment", "voice"]
        for k in a.stems:
            np.testing.assert_array_equal(a.stems[k], b.stems[k])
        assert (a.case_id, a.generator, a.original, a.target, a.domain, a.true_segments,
                a.necessary_segments) == (b.case_id, b.generator, b.original, b.target, b.domain,
                                          b.true_segments, b.necessary_segments)
        assert json_roundtrip(a.info) == b.info


def test_empty_results(task, seg):
    cases, stats = CWWaveform(max_iter=0).generate(task, seg, 2, seed=0, progress=False)
    assert cases == [] and stats["empty"] and stats["success_rate"] == 0 and "message" in stats
    cases, stats = CWSpectrogram().generate(task, seg, 0, seed=0, progress=False)
    assert cases == [] and stats["empty"]
    cases, stats = Planted(min_amplitude=1e-6, max_amplitude=1e-5, steps=2).generate(
        task, seg, 2, seed=0, progress=False)
    assert cases == [] and stats["empty"] and stats["attempted"] > 0
    cases, stats = Localized().derive(task, seg, [], seed=0, progress=False)
    assert cases == [] and stats["empty"]


def test_spectrogram_attack_needs_magnitude(seg):
    class NoMagnitude(Task):
        name = "no-mag"

        def to_domain(self, audio):
            return audio

        def classifier(self):
            return torch.nn.Identity()

        def excerpts(self, split, n, seed):
            return iter(())

    with pytest.raises(TypeError, match="magnitude"):
        CWSpectrogram().generate(NoMagnitude(), seg, 2, 0, progress=False)


def test_attack_precision_and_threads_are_generator_parameters():
    from explbench.api import registry
    from explbench.run.case_cache import generator_identity

    task = registry.tasks.get("svd-synth")()
    cw = registry.generators.get("cw-spectrogram")
    cfg = cw(precision="float32", threads=1).config(task)
    assert (cfg.precision, cfg.threads) == ("float32", 1)
    assert cw().config(task).precision in ("float32", "bfloat16")  # "auto", resolved for this machine
    assert generator_identity(cw(precision="float32"), task) != generator_identity(cw(precision="bfloat16"), task)
    with pytest.raises(ValueError, match="precision 'fp16'"):
        cw(precision="fp16")
    with pytest.raises(ValueError, match="threads must be >= 0"):
        cw(threads=-1)
