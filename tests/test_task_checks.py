"""check-task on white-box toy tasks: a correct one passes every check, and each typical mistake
fails exactly the check that names it, in plain words."""

import numpy as np
import pytest
import torch

from explbench.api.task import Excerpt, Task, axis_order, has_hook
from explbench.checks.task_checks import assert_task_conforms, check_task
from explbench.run.requirements import MissingHookError, missing_hooks, require_hooks, required_hooks

N = 1000  # samples per excerpt
BANDS, FRAMES = 4, 10
BASE = {"train": 0, "valid": 10_000, "test": 20_000}


def clip(i: int) -> np.ndarray:
    """Noise whose energy sits in the top band (odd clips) or the bottom band (even clips)."""
    rng = np.random.default_rng(i)
    t = np.arange(N)
    f = 0.45 if i % 2 else 0.05  # cycles per sample: near Nyquist or low
    return (0.3 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) + 0.01 * rng.standard_normal(N)).astype(np.float32)


class Toy(Task):
    """Domain: log energy in 4 equal bands x 10 frames of 100 samples. Class 1 ("high") is
    decided by the top band against the bottom band, so the answer is known by construction."""

    name = "toy"
    classes = ("low", "high")
    sample_rate = 1000
    excerpt_samples = N
    domain_shape = (BANDS, FRAMES)
    domain_axes = ("band", "frame")

    def to_domain(self, audio):
        frames = audio.reshape(audio.shape[0], FRAMES, N // FRAMES)
        power = torch.fft.rfft(frames, dim=-1).abs().pow(2)[..., 1:49]  # (B, 10, 48)
        bands = power.reshape(audio.shape[0], FRAMES, BANDS, -1).mean(-1)
        return torch.log(bands.clamp_min(1e-7)).transpose(1, 2)

    def classifier(self):
        class Net(torch.nn.Module):
            def forward(self, x):
                p = torch.sigmoid(0.5 * (x[:, 3].mean(1) - x[:, 0].mean(1)))
                return torch.stack([1 - p, p], dim=1)

        return Net().eval()

    def excerpts(self, split, n, seed):
        if split not in BASE:
            raise ValueError(f"unknown split {split!r}")
        rng = np.random.default_rng([seed, list(BASE).index(split)])
        pairs = rng.choice(1000, size=(n + 1) // 2, replace=False)
        for i in range(n):
            c = BASE[split] + 2 * int(pairs[i // 2]) + i % 2
            yield Excerpt(audio=clip(c), label=c % 2, song_seed=c, offset=0.0)


def run(task, **kw):
    kw.setdefault("suite", None)
    kw.setdefault("generators", [])
    kw.setdefault("explainers", [])
    return {r.name: r for r in check_task(task, n=8, **kw)}


def failing(results):
    return sorted(name for name, r in results.items() if not r.passed)


def test_a_correct_toy_task_passes_every_check():
    res = run(Toy())
    assert failing(res) == [], {k: r.message for k, r in res.items() if not r.passed}
    assert len(res) == 11
    assert "accuracy 1.000" in res["accuracy"].message
    assert_task_conforms(Toy(), n=8, suite=None, generators=[], explainers=[])


def test_one_class_fails_the_declarations():
    class OneClass(Toy):
        classes = ("only",)

    res = run(OneClass())
    assert "declarations" in failing(res)
    assert "two or more distinct class names" in res["declarations"].message


def test_an_unknown_axis_name_is_refused_and_a_wrong_count_too():
    class Weird(Toy):
        domain_axes = ("band", "time step")

    res = run(Weird())
    assert failing(res) == ["axis order"]
    assert "'time step'" in res["axis order"].message and "'frame'" in res["axis order"].message

    class Short(Toy):
        domain_axes = ("band",)

    assert "one name per axis" in run(Short())["axis order"].message


def test_axis_orders_known_and_refused():
    assert axis_order(("mel band", "frame")) == ("frequency", "time")
    assert axis_order(("frame", "mel band")) == ("time", "frequency")
    assert axis_order(("sample",)) == ("time",)
    with pytest.raises(ValueError, match="does not handle"):
        axis_order(("frame", "frame"))
    with pytest.raises(ValueError, match="does not handle"):
        axis_order(("band", "frame", "sample"))


def test_excerpts_from_global_random_state_fail_determinism():
    class Global(Toy):
        def excerpts(self, split, n, seed):
            for _ in range(n):
                c = int(np.random.randint(0, 1000)) + BASE[split]
                yield Excerpt(audio=clip(c), label=c % 2, song_seed=c, offset=0.0)

    res = run(Global())
    assert "excerpts" in failing(res)
    assert "seeded by `seed`" in res["excerpts"].message


def test_wrong_length_and_label_out_of_range_are_named():
    class Long(Toy):
        def excerpts(self, split, n, seed):
            for e in super().excerpts(split, n, seed):
                yield Excerpt(audio=np.concatenate([e.audio, e.audio]), label=e.label, song_seed=e.song_seed, offset=0)

    assert "(2000,)" in run(Long())["excerpts"].message

    class Label(Toy):
        def excerpts(self, split, n, seed):
            for e in super().excerpts(split, n, seed):
                yield Excerpt(audio=e.audio, label=e.label + 1, song_seed=e.song_seed, offset=0)

    assert "label 2" in run(Label())["excerpts"].message


def test_splits_sharing_a_recording_fail():
    class Shared(Toy):
        def excerpts(self, split, n, seed):
            return super().excerpts("test", n, seed)  # every split is the test split

    res = run(Shared())
    assert failing(res) == ["splits"]
    assert "share" in res["splits"].message


def test_logits_instead_of_probabilities_fail():
    class Logits(Toy):
        def classifier(self):
            class Net(torch.nn.Module):
                def forward(self, x):
                    z = 0.5 * (x[:, 3].mean(1) - x[:, 0].mean(1))
                    return torch.stack([-z, z], dim=1)

            return Net()

    res = run(Logits())
    assert "probabilities" in failing(res)
    assert "Softmax" in res["probabilities"].message


def test_dropout_left_on_fails_eval_mode():
    class Train(Toy):
        def classifier(self):
            inner = super().classifier()
            return torch.nn.Sequential(torch.nn.Dropout(0.5), inner).train()

    res = run(Train())
    assert "eval mode" in failing(res)
    assert "module.eval()" in res["eval mode"].message


def test_batch_statistics_fail_batch_invariance():
    class BatchNormed(Toy):
        def classifier(self):
            inner = super().classifier()

            class Net(torch.nn.Module):
                def forward(self, x):
                    return inner(x - x.mean(dim=0, keepdim=True) + x.mean())

            return Net()

    res = run(BatchNormed())
    assert "batch invariance" in failing(res)
    assert "batch size" in res["batch invariance"].message


def test_a_detached_front_end_and_a_nan_at_silence_fail_the_gradient():
    class Detached(Toy):
        def to_domain(self, audio):
            return super().to_domain(audio).detach()

    assert "no gradient reached the waveform" in run(Detached())["gradient to the waveform"].message

    class Sqrt(Toy):
        def to_domain(self, audio):
            frames = audio.reshape(audio.shape[0], FRAMES, N // FRAMES)
            spec = torch.fft.rfft(frames, dim=-1)[..., 1:49]
            mag = torch.sqrt(spec.real**2 + spec.imag**2)  # NaN gradient at 0
            bands = mag.reshape(audio.shape[0], FRAMES, BANDS, -1).mean(-1)
            return torch.log(bands.clamp_min(1e-7)).transpose(1, 2)

    res = run(Sqrt())
    assert failing(res) == ["gradient to the waveform"]
    assert "all-zero waveform" in res["gradient to the waveform"].message


def test_swapped_classes_fail_accuracy():
    class Swapped(Toy):
        def excerpts(self, split, n, seed):
            for e in super().excerpts(split, n, seed):
                yield Excerpt(audio=e.audio, label=1 - e.label, song_seed=e.song_seed, offset=0)

    res = run(Swapped())
    assert failing(res) == ["accuracy"]
    assert "accuracy 0.000" in res["accuracy"].message and "output order" in res["accuracy"].message


def test_missing_hooks_name_generator_hook_and_how_to_write_it():
    assert required_hooks("cw-spectrogram") == ["magnitude", "magnitude_to_domain"]
    assert required_hooks("cw-waveform") == []
    task = Toy()
    assert not has_hook(task, "magnitude") and not has_hook(task, "resynthesize")
    problems = missing_hooks(task, ["cw-waveform", "cw-spectrogram", "localized"])
    assert len(problems) == 2
    assert all("generator 'cw-spectrogram'" in p for p in problems)
    assert "def magnitude(self, audio" in problems[0] and "def magnitude_to_domain(self, mag" in problems[1]
    with pytest.raises(MissingHookError, match="cw-spectrogram"):
        require_hooks(task, ["cw-spectrogram"])
    require_hooks(task, ["cw-waveform", "localized"])  # nothing needed
    res = run(task, generators=["cw-spectrogram"])
    assert failing(res) == ["hooks"] and "magnitude" in res["hooks"].message


def test_planted_needs_band_frequencies_and_a_band_major_domain():
    class TimeMajor(Toy):
        domain_shape = (FRAMES, BANDS)
        domain_axes = ("frame", "band")
        band_frequencies = np.array([62.5, 187.5, 312.5, 437.5])

        def to_domain(self, audio):
            return super().to_domain(audio).transpose(1, 2)

    problems = missing_hooks(TimeMajor(), ["planted"])
    assert len(problems) == 1 and "frequency x time" in problems[0]
    assert "band_frequencies" in missing_hooks(Toy(), ["planted"])[0]


def test_a_spectrogram_hook_that_disagrees_with_to_domain_fails():
    class Off(Toy):
        def magnitude(self, audio):
            frames = audio.reshape(audio.shape[0], FRAMES, N // FRAMES)
            return torch.fft.rfft(frames, dim=-1).abs()[..., 1:49]

        def magnitude_to_domain(self, mag):
            bands = mag.pow(2).reshape(mag.shape[0], FRAMES, BANDS, -1).mean(-1)
            return torch.log(bands.clamp_min(1e-7)).transpose(1, 2) + 1.0  # off by one log unit

    res = run(Off(), generators=["cw-spectrogram"])
    assert failing(res) == ["hooks"] and "differs from to_domain(audio) by 1" in res["hooks"].message


def test_unsupported_generators_and_listening_explainers_are_reported():
    class Picky(Toy):
        unsupported = {"cw-spectrogram": "the model's input is a waveform"}

    problems = missing_hooks(Picky(), ["cw-spectrogram"], ["audiolime"])
    assert "generator 'cw-spectrogram': task 'toy' declares it unsupported: the model's input is a waveform" in problems[0]
    assert "explainer 'audiolime'" in problems[1] and "resynthesize" in problems[1]
    assert missing_hooks(Toy(), ["cw-waveform"], ["audiolime"]) == []  # waveform cases carry their audio


def test_a_task_that_cannot_be_built_is_one_failed_check():
    class Broken(Toy):
        def __init__(self, folder=None):
            raise ValueError("folder is required")

    res = check_task(Broken, suite=None, generators=[], explainers=[], n=2)
    assert len(res) == 1 and not res[0].passed
    assert res[0].name == "construction" and "folder is required" in res[0].message


class Wave(Toy):
    """The toy model explained on its waveform: a 1-D domain."""

    domain_shape = (N,)
    domain_axes = ("sample",)

    def to_domain(self, audio):
        return audio

    def classifier(self):
        net, front = super().classifier(), super().to_domain
        class OnWave(torch.nn.Module):
            def forward(self, wave):
                return net(front(wave))

        return OnWave().eval()


def test_a_run_leaves_out_what_a_domain_cannot_host_and_says_so():
    from explbench.run.prepare import fit_to_task
    from explbench.run.suite import SuiteConfig
    from explbench.run.requirements import inapplicable

    config = SuiteConfig(name="t", task="toy", segmentation="grid:5x4", explainers=["lime", "slime-freq"],
                         generators={"cw-spectrogram": {"n": 4}, "cw-waveform": {"n": 4}, "planted": {"n": 2},
                                     "localized": {"from": ["cw-spectrogram", "cw-waveform"], "ks": [1]}})
    said = []
    fitted, left = fit_to_task(config, Wave(), said.append)
    assert list(fitted.generators) == ["cw-waveform", "localized"]
    assert fitted.generators["localized"]["from"] == ["cw-waveform"]
    assert fitted.explainers == ["lime"] and fitted.segmentation == "time:20"
    assert set(left) == {"cw-spectrogram", "planted", "slime-freq"}
    assert "no magnitude hooks" in left["cw-spectrogram"] and "frequency x time" in left["planted"]
    assert len(said) == 4 and any("'time:20'" in s for s in said)
    assert config.segmentation == "grid:5x4"  # the suite itself is not changed
    # a band-major task keeps all; one that declares a generator unsupported loses just that
    assert fit_to_task(config, Toy(), said.append) == (config, {})

    class Picky(Toy):
        unsupported = {"cw-waveform": "no waveform attacks here"}

    assert inapplicable(Picky(), ["cw-waveform", "cw-spectrogram"]) == {
        "cw-waveform": "task 'toy' declares it unsupported: no waveform attacks here"}


def test_a_missing_hook_stops_the_run_before_anything_is_written(tmp_path):
    from explbench.api import registry
    from explbench.run.prepare import prepare
    from explbench.run.suite import SuiteConfig, SuiteError

    registry.tasks.add("toy-no-magnitude", Toy)
    config = SuiteConfig(name="t", task="toy-no-magnitude", explainers=["random"],
                         generators={"cw-spectrogram": {"n": 2}})
    with pytest.raises(SuiteError, match="magnitude_to_domain"):
        prepare(config, log=lambda *_: None)


def test_the_time_axis_comes_from_domain_axes_or_from_a_run_record():
    from explbench.results.report import _time_axis
    from explbench.api.task import task_segmentation, time_axis, time_axis_of

    class TimeMajor(Toy):
        domain_shape = (FRAMES, BANDS)
        domain_axes = ("frame", "band")

    assert time_axis(Toy()) == 1 and time_axis(TimeMajor()) == 0 and time_axis(Wave()) == 0
    seg = task_segmentation(TimeMajor(), "grid:5x2")
    assert seg.time_dim == 0 and seg.masks[0, :2, :2].all() and not seg.masks[0, 2:].any()
    assert time_axis_of(None) is None
    # the report rebuilds segments without the task, from what provenance.json recorded
    assert _time_axis(None, {"domain_axes": ["frame", "mel band"], "domain_shape": [115, 80]}) == 0
    assert _time_axis(None, {"domain_axes": ["mel band", "frame"]}) == 1
    assert _time_axis(None, {}) is None and _time_axis(None, {"domain_axes": ["pitch"]}) is None
    assert _time_axis(TimeMajor(), {"domain_axes": ["mel band", "frame"]}) == 0  # the task wins
