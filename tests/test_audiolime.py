"""audioLIME: source components that add up, the right source found, a listenable answer."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

import explbench.explainers  # noqa: F401 - registers the explainers
from explbench.api.explainer import AudioContext, ExplainContext
from explbench.api.model_access import ModelAccess
from explbench.core.cases import Case
from explbench.checks.explainer_checks import assert_conforms
from explbench.checks.fixtures import toy_audio
from explbench.explainers.audiolime import (
    AudioLime,
    AudioLimeOracle,
    build_components,
    time_windows,
    write_wav,
)
from explbench.protocol.scorer import Scorer
from explbench.explainers.separators import complete, hpss, nmf
from explbench.core.segmentation import grid
from explbench.tasks.svd.frontend import EXCERPT_SAMPLES, SAMPLE_RATE, LogMel

SEG = grid((80, 115))
HIGH = slice(60, 80)  # mel bands above ~3.7 kHz: only stem "b" reaches them


def stems(seed: int = 0) -> dict[str, np.ndarray]:
    """A low harmonic tone "a" (220 Hz) and a high chirp "b" (4 -> 6 kHz), one excerpt long."""
    rng = np.random.default_rng(seed)
    t = np.arange(EXCERPT_SAMPLES) / SAMPLE_RATE
    a = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 440 * t + rng.uniform(0, 6))
    f = 4000 + 2000 * t / t[-1]
    b = 0.1 * np.sin(2 * np.pi * np.cumsum(f) / SAMPLE_RATE)
    return {"a": a.astype(np.float32), "b": b.astype(np.float32)}


def high_band_model(threshold: float) -> nn.Module:
    """p(class 1) = sigmoid(2 (mean log-mel over the high bands - threshold)), (N, 80, 115) -> (N, 2)."""
    m = torch.zeros(80, 115)
    m[HIGH] = 1.0 / (20 * 115)
    with torch.random.fork_rng(devices=[]):
        lin = nn.Linear(80 * 115, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.stack([-m.reshape(-1), m.reshape(-1)]))
        lin.weight.mul_(2.0)
        lin.bias.copy_(torch.tensor([2 * threshold, -2 * threshold]))
    return nn.Sequential(nn.Flatten(), lin, nn.Softmax(dim=1)).eval().requires_grad_(False)


def context(src: dict[str, np.ndarray] | None = None, with_stems: bool = True) -> AudioContext:
    src = stems() if src is None else src
    return AudioContext(audio=src["a"] + src["b"], stems=src if with_stems else None,
                        sample_rate=SAMPLE_RATE, to_domain=LogMel().eval())


def domain(ctx: AudioContext) -> torch.Tensor:
    with torch.no_grad():
        return ctx.to_domain(torch.from_numpy(ctx.audio)[None])[0]


# --------------------------------------------------------------------------- components


def test_time_windows_sum_to_one_and_cover_their_segments():
    win = time_windows(EXCERPT_SAMPLES, 5, 110)
    assert win.shape == (5, EXCERPT_SAMPLES)
    np.testing.assert_allclose(win.sum(axis=0), 1.0, atol=1e-12)
    assert win.min() >= 0 and win.max() <= 1
    seg = EXCERPT_SAMPLES // 5
    assert win[0, : seg - 60].min() == 1.0 and win[0, seg + 60 :].max() == 0.0
    assert 0.0 < win[0, seg] < 1.0  # the crossfade


@pytest.mark.parametrize("separate", ["oracle", "nmf", "hpss"])
def test_components_add_up_to_the_audio(separate):
    ctx = context()
    sources = {"oracle": lambda w: complete(ctx.stems, w), "nmf": nmf, "hpss": hpss}[separate](ctx.audio)
    assert all(s.shape == ctx.audio.shape and s.dtype == np.float32 for s in sources.values())
    np.testing.assert_allclose(sum(sources.values()), ctx.audio, atol=1e-6)
    comps, names = build_components(sources, 5, SAMPLE_RATE)
    assert comps.shape == (5 * len(sources), EXCERPT_SAMPLES) and len(names) == len(comps)
    np.testing.assert_allclose(comps.sum(axis=0), ctx.audio, atol=1e-5)
    if separate == "hpss":
        assert set(sources) == {"harmonic", "percussive", "residual"}


def test_separator_mismatch_becomes_a_residual_source():
    audio = context().audio
    out = complete({"half": 0.5 * audio}, audio)
    assert list(out) == ["half", "residual"]
    np.testing.assert_allclose(out["residual"], 0.5 * audio, atol=1e-7)
    with pytest.raises(ValueError, match="shape"):
        complete({"short": audio[:100]}, audio)


# --------------------------------------------------------------------------- explaining


def explain(ctx: AudioContext, model: nn.Module, seed: int = 0, budget: int | None = None,
            oracle: bool = False, **params):
    access = ModelAccess(model, batch_size=256)
    ex = AudioLimeOracle(**params) if oracle else AudioLime(**params)
    e = ex.explain(access, domain(ctx), 1, segments=SEG, budget=budget, rng=np.random.default_rng(seed),
                   context=ExplainContext(audio=ctx))
    return e, access


def threshold_between(ctx: AudioContext) -> float:
    """Midway between the high-band mean log-mel with and without stem "b"."""
    with torch.no_grad():
        x = ctx.to_domain(torch.from_numpy(np.stack([ctx.audio, ctx.stems["a"]])))
    with_b, without_b = (float(v) for v in x[:, HIGH].mean(dim=(1, 2)))
    assert with_b > without_b + 3  # stem "a" really stays out of the high bands
    return 0.5 * (with_b + without_b)


def test_audiolime_oracle_finds_the_source_the_model_listens_to():
    ctx = context()
    model = high_band_model(threshold_between(ctx))
    e, access = explain(ctx, model, n_samples=256, oracle=True)
    names, w = e.extra["components"], np.asarray(e.extra["component_weights"])
    assert len(names) == 10 and e.extra["separator"] == "oracle"
    assert names[int(np.argmax(w))].startswith("b, ")
    assert w[5:].min() > w[:5].max()  # every "b" component above every "a" component
    assert e.weights is None and e.dense.shape == (80, 115) and np.all(np.isfinite(e.dense))
    assert e.dense.sum() == pytest.approx(w.sum(), rel=1e-6)  # the projection conserves weight
    # the map puts b's weight where b sounds: the high bands
    assert e.dense[HIGH].sum() > 0.9 * w[5:].sum()
    assert access.queries == 256 and 0 <= e.score <= 1
    assert all(t.startswith("b, ") for t in e.extra["top"]) and len(e.extra["top"]) == 3
    corr = {k: abs(np.corrcoef(e.audio, s)[0, 1]) for k, s in ctx.stems.items()}
    assert corr["b"] > corr["a"]


def test_budget_separators_and_determinism():
    ctx = context()
    model = high_band_model(threshold_between(ctx))
    e1, a1 = explain(ctx, model, seed=3, budget=40, n_samples=1024, separator="hpss", n_time=2)
    e2, _ = explain(ctx, model, seed=3, budget=40, n_samples=1024, separator="hpss", n_time=2)
    assert a1.queries == 40 and e1.extra["n_samples"] == 40
    np.testing.assert_array_equal(e1.dense, e2.dense)
    np.testing.assert_array_equal(e1.audio, e2.audio)
    assert len(e1.extra["components"]) == 6 and e1.extra["separator"] == "hpss"

    e3, _ = explain(context(with_stems=False), model, n_samples=64, n_time=2)
    assert e3.extra["separator"] == "nmf"  # the default: blind to any stems
    with pytest.raises(ValueError, match="needs the sources"):
        explain(context(with_stems=False), model, n_samples=16, oracle=True)
    with pytest.raises(ValueError, match="audiolime-oracle"):
        AudioLime(separator="oracle")

    def by_band(w: np.ndarray) -> dict[str, np.ndarray]:
        spec = np.fft.rfft(w)
        low = np.fft.irfft(np.where(np.fft.rfftfreq(len(w), 1 / SAMPLE_RATE) < 2000, spec, 0), n=len(w))
        return {"low": low.astype(np.float32), "high": (w - low).astype(np.float32)}

    e4, _ = explain(ctx, model, n_samples=128, separator=by_band)
    assert e4.extra["separator"] == "by_band" and e4.extra["top"][0].startswith("high, ")


def test_silent_sources_are_dropped():
    src = {**stems(), "quiet": np.zeros(EXCERPT_SAMPLES, dtype=np.float32)}
    ctx = AudioContext(audio=src["a"] + src["b"], stems=src, sample_rate=SAMPLE_RATE,
                       to_domain=LogMel().eval())
    e, _ = explain(ctx, high_band_model(threshold_between(ctx)), n_samples=32, n_time=2, oracle=True)
    assert e.extra["silent"] == ["quiet"] and len(e.extra["components"]) == 4


@pytest.mark.parametrize("name", ["audiolime", "audiolime-oracle"])
def test_audiolime_conforms(name):
    assert_conforms(name)


# --------------------------------------------------------------------------- who sees the answer


class MixTask:
    """A task around the conformance check's log band spectrogram (80 x 115) and a classifier
    that listens only to the bands above ~7.5 kHz."""

    name, classes, sample_rate, domain_shape = "mix", ("off", "on"), 22050, (80, 115)

    def __init__(self, threshold: float) -> None:
        self._ctx = toy_audio()
        m = torch.zeros(80, 115)
        m[55:] = 1.0 / (25 * 115)
        with torch.random.fork_rng(devices=[]):
            lin = nn.Linear(80 * 115, 2)
        with torch.no_grad():
            lin.weight.copy_(torch.stack([-m.reshape(-1), m.reshape(-1)]) * 2)
            lin.bias.copy_(torch.tensor([2 * threshold, -2 * threshold]))
        self._model = nn.Sequential(nn.Flatten(), lin, nn.Softmax(dim=1)).eval().requires_grad_(False)

    def to_domain(self, wave):
        return self._ctx.to_domain(wave)

    def classifier(self):
        return self._model

    def decide(self, p):
        return p.argmax(dim=-1)

    def model_hash(self):
        return "mix"


def attacked_case() -> tuple[Case, MixTask]:
    """A waveform "attack": a quiet 9 kHz tone added to a mix of two low stems flips the decision."""
    ctx = toy_audio()
    t = np.arange(len(ctx.audio)) / 22050
    stems = {"tone": ctx.stems["tone"], "hum": (0.1 * np.sin(2 * np.pi * 100 * t)).astype(np.float32)}
    audio = stems["tone"] + stems["hum"]
    pert = (0.01 * np.sin(2 * np.pi * 9000 * t)).astype(np.float32)
    with torch.no_grad():
        x, x_mod = ctx.to_domain(torch.from_numpy(np.stack([audio, audio + pert]))).numpy()
    task = MixTask(threshold=0.5 * float(x[55:].mean() + x_mod[55:].mean()))
    case = Case("mix/0", "cw-waveform", x, x_mod, 0, 1, "waveform", audio=audio,
                audio_mod=audio + pert, stems=stems)
    return case, task


def test_ranked_audiolime_separates_the_modified_mix_blind_and_the_oracle_sees_the_answer():
    case, task = attacked_case()
    scorer = Scorer(task, SEG, agnostic_samples=0, batch_size=64)
    assert scorer.decide(torch.from_numpy(case.x)[None])[0] == 0
    assert scorer.decide(torch.from_numpy(case.x_mod)[None])[0] == 1
    heard = []

    def spy(wave: np.ndarray) -> dict[str, np.ndarray]:
        heard.append(wave.copy())
        return {"all": wave}

    ranked = scorer.explain(AudioLime(n_samples=32, n_time=2, separator=spy), case, 32, np.random.default_rng(0))
    np.testing.assert_array_equal(heard[0], case.audio_mod)  # the modified mix, nothing else
    assert ranked.extra["separator"] == "spy"
    assert [c.split(",")[0] for c in ranked.extra["components"]] == ["all", "all"]
    default = scorer.explain(AudioLime(n_samples=32, n_time=2), case, 32, np.random.default_rng(0))
    assert default.extra["separator"] == "nmf"
    assert not any(c.startswith("perturbation") for c in default.extra["components"] + default.extra["silent"])
    assert scorer.audio_context(case).stems is None  # ranked explainers never get the stems

    oracle = scorer.explain(AudioLimeOracle(n_samples=64, n_time=2), case, 64, np.random.default_rng(0))
    assert AudioLimeOracle.oracle and not AudioLime.oracle
    names = oracle.extra["components"]
    assert {n.split(",")[0] for n in names} == {"tone", "hum", "perturbation"}
    w = np.asarray(oracle.extra["component_weights"])
    assert names[int(np.argmax(w))].startswith("perturbation")
    stems = scorer.audio_context(case, oracle=True).stems
    np.testing.assert_allclose(sum(stems.values()), case.audio_mod, atol=1e-6)
    no_stems = Case(**{**case.__dict__, "stems": None})
    assert set(scorer.audio_context(no_stems, oracle=True).stems) == {"clean", "perturbation"}


def test_write_wav(tmp_path):
    ctx = context()
    e, _ = explain(ctx, high_band_model(threshold_between(ctx)), n_samples=32)
    path = write_wav(tmp_path / "sub" / "explanation.wav", e, SAMPLE_RATE)
    info = sf.info(str(path))
    assert info.samplerate == SAMPLE_RATE and info.frames == EXCERPT_SAMPLES and info.subtype == "PCM_16"
    e.audio = None
    with pytest.raises(ValueError, match="no audio"):
        write_wav(tmp_path / "none.wav", e, SAMPLE_RATE)


# --------------------------------------------------------------------------- real svd-synth


def test_real_svd_synth_excerpt_through_the_scorer(tmp_path):
    from explbench.tasks.svd.task import DEFAULT_WEIGHTS, SVDSynth

    if not DEFAULT_WEIGHTS.exists():
        pytest.skip(f"svd-synth weights {DEFAULT_WEIGHTS} not trained yet (`explbench train svd-synth`)")
    task = SVDSynth()
    ex = next(iter(task.excerpts("test", 1, seed=0)))
    with torch.inference_mode():
        x = task.to_domain(torch.from_numpy(ex.audio)[None])[0].cpu().numpy()
    scorer = Scorer(task, SEG, agnostic_samples=0, batch_size=64)
    decision = int(scorer.decide(torch.from_numpy(x)[None])[0])
    case = Case(case_id="real/0", generator="none", x=x, x_mod=x.copy(), original=decision,
                target=decision, domain="none", audio=ex.audio, stems=ex.stems)
    e = scorer.explain(AudioLimeOracle(n_samples=64), case, budget=64, rng=np.random.default_rng(0))
    assert e.weights.shape == (SEG.d,) and np.all(np.isfinite(e.weights)) and e.queries == 64
    found = {n.split(",")[0] for n in e.extra["components"]} | set(e.extra["silent"])
    assert found == set(ex.stems) | {"perturbation"}
    ranked = scorer.explain(AudioLime(n_samples=64), case, budget=64, rng=np.random.default_rng(0))
    assert {n.split(",")[0] for n in ranked.extra["components"]} <= {f"nmf{i}" for i in range(4)} | {"residual"}
    path = write_wav(tmp_path / "real.wav", e, task.sample_rate)
    info = sf.info(str(path))
    assert path.exists() and info.samplerate == 22050 and info.frames == len(ex.audio)
