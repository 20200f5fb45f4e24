"""The ground truth is the cause: generators on white-box models whose cause is known by construction.

The task's domain is an 8 x 10 "spectrogram" (the waveform of 80 samples, reshaped) on a 5 x 4
grid of 2 x 2 cells. Its classifier looks only at a known set V of segments: the score is the
sum (or the maximum) of the segment means over V, and the decision is 1 above a threshold.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pytest
import torch

from explbench.api import Excerpt, Task
from explbench.core.cases import CASE_FORMAT, Case, cache_key, load_cases, save_cases
from explbench.generators import CWSpectrogram, CWWaveform, Localized, Planted
from explbench.core.segmentation import Segmentation, grid

SHAPE = (8, 10)
SEG = grid(SHAPE)  # 20 segments, i = 4 t + f
BASE = 0.1  # clean level of every cell


class SegmentModel(torch.nn.Module):
    """Probabilities ``(B, 2)`` from the segment means over ``visible``: ``sum`` or ``max``."""

    def __init__(self, segments: Segmentation, visible: tuple[int, ...], threshold: float,
                 combine: str = "sum", gain: float = 5.0) -> None:
        super().__init__()
        m = segments.masks[list(visible)].reshape(len(visible), -1)
        self.register_buffer("weights", m / m.sum(dim=1, keepdim=True))  # (|V|, cells)
        self.threshold, self.combine, self.gain = threshold, combine, gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        means = x.reshape(x.shape[0], -1) @ self.weights.T  # (B, |V|)
        score = means.sum(dim=1) if self.combine == "sum" else means.max(dim=1).values
        z = self.gain * (score - self.threshold)
        return torch.stack([torch.sigmoid(-z), torch.sigmoid(z)], dim=1)  # no 1 - p: keeps tiny p


class WhiteBox(Task):
    """A task whose classifier sees only the segments ``visible``.

    Excerpts come ``per_song`` at a time from one song (``song_seed = i // per_song``),
    labels alternating 1, 0; a label-1 excerpt carries ``lift`` on every visible cell.
    """

    name = "white-box"
    classes = ("no", "yes")
    excerpt_samples = SHAPE[0] * SHAPE[1]
    domain_shape = SHAPE
    band_frequencies = np.geomspace(100.0, 4000.0, SHAPE[0])

    def __init__(self, visible: tuple[int, ...], threshold: float, combine: str = "sum",
                 per_song: int = 4, lift: float = 0.3) -> None:
        self.visible = tuple(visible)
        self.per_song = per_song
        self.lift = lift
        self._clf = SegmentModel(SEG, self.visible, threshold, combine).eval()

    def to_domain(self, audio: torch.Tensor) -> torch.Tensor:
        return audio.reshape(audio.shape[0], *SHAPE)

    def magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        return self.to_domain(audio)

    def magnitude_to_domain(self, magnitude: torch.Tensor) -> torch.Tensor:
        return magnitude

    def classifier(self) -> torch.nn.Module:
        return self._clf

    def excerpts(self, split: str, n: int, seed: int) -> Iterator[Excerpt]:
        seen = SEG.mask(np.isin(np.arange(SEG.d), self.visible).astype(np.float32)).numpy().ravel()
        for i in range(n):
            rng = np.random.default_rng([seed, i])
            label = 1 - i % 2
            audio = BASE + 0.01 * rng.random(self.excerpt_samples) + label * self.lift * seen
            yield Excerpt(audio.astype(np.float32), label=label, song_seed=i // self.per_song, offset=float(i))


class ByAlbum(WhiteBox):
    """Declares its own clusters: two songs make an album."""

    def cluster(self, excerpt: Excerpt) -> str:
        return f"album-{excerpt.song_seed // 2}"


def hand_case(delta_by_segment: dict[int, float], song_seed: int = 7) -> Case:
    """A parent case: clean ``BASE`` everywhere, plus a constant on each listed segment."""
    x = np.full(SHAPE, BASE, dtype=np.float32)
    z = np.zeros(SEG.d, dtype=np.float32)
    for s, v in delta_by_segment.items():
        z[s] = v
    return Case(case_id=f"hand/{song_seed:04d}", generator="hand", x=x, x_mod=x + SEG.mask(z).numpy(),
                original=0, target=1, domain="spectrogram", info={"song_seed": song_seed})


def decide(task: Task, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return task.decide(task.classifier()(torch.as_tensor(np.asarray(x, dtype=np.float32)))).numpy()


def check_claims(task: Task, cases: list[Case]) -> None:
    """Every claimed segment carries energy, S flips, and necessary_segments is exactly the set
    of segments whose removal un-flips (recomputed here, one forward at a time)."""
    for c in cases:
        energy = SEG.energy(c.delta)
        assert (energy[list(c.true_segments)] > 0).all(), (c.case_id, c.true_segments)
        assert decide(task, c.x_mod[None])[0] == c.target
        expect = []
        for s in c.true_segments:
            z = np.isin(np.arange(SEG.d), [t for t in c.true_segments if t != s]).astype(np.float32)
            if decide(task, (c.x + SEG.mask(z).numpy() * c.delta)[None])[0] != c.target:
                expect.append(s)
        assert c.necessary_segments == tuple(expect), c.case_id
        assert c.info["minimal"] == c.minimal == (set(expect) == set(c.true_segments))


# ------------------------------------------------------------------ (a) no empty segment claimed


def test_localized_never_claims_an_empty_segment():
    # the model sees segment 18 only; the parent's perturbation lives in segment 18 only
    task = WhiteBox(visible=(18,), threshold=0.5, combine="max")
    parent = hand_case({18: 1.0})
    assert decide(task, parent.x[None])[0] == 0 and decide(task, parent.x_mod[None])[0] == 1
    cases, stats = Localized(ks=(1, 3, 5)).derive(task, SEG, [parent], seed=0, progress=False)
    assert [(c.info["k"], c.true_segments) for c in cases] == [(1, (18,))]
    assert cases[0].necessary_segments == (18,) and cases[0].minimal
    assert cases[0].info["cluster"] == "7"  # the parent's song
    assert stats["per_k"]["k1"]["skipped_support"] == 0
    assert stats["per_k"]["k3"]["skipped_support"] == stats["per_k"]["k5"]["skipped_support"] == 1
    assert stats["per_k"]["k3"]["flipped"] == 0 and stats["per_k"]["k1"]["minimal"] == 1
    check_claims(task, cases)


def test_localized_support_three_segments():
    task = WhiteBox(visible=(0, 9, 18), threshold=0.5, combine="max")
    parent = hand_case({18: 1.0, 9: 0.8, 0: 0.6})
    cases, stats = Localized(ks=(1, 3, 5)).derive(task, SEG, [parent], seed=0, progress=False)
    assert [(c.info["k"], c.true_segments) for c in cases] == [(1, (18,)), (3, (18, 9, 0))]
    assert stats["per_k"]["k5"]["skipped_support"] == 1
    check_claims(task, cases)


# ------------------------------------------------------------------ (c) causes that are supersets


def test_localized_detects_unnecessary_segments():
    # the model needs segments 2 AND 7 (sum of their means above 1.5); segment 11 carries the
    # most energy but is invisible to it
    task = WhiteBox(visible=(2, 7), threshold=1.5)
    parent = hand_case({11: 3.0, 2: 1.2, 7: 1.0})
    cases, stats = Localized(ks=(1, 2, 3)).derive(task, SEG, [parent], seed=0, progress=False)
    assert [(c.info["k"], c.true_segments, c.necessary_segments) for c in cases] == [(3, (11, 2, 7), (2, 7))]
    assert not cases[0].minimal and cases[0].info["minimal"] is False
    assert stats["per_k"]["k3"]["flipped"] == 1 and stats["per_k"]["k3"]["minimal"] == 0
    check_claims(task, cases)
    kept, stats = Localized(ks=(1, 2, 3), minimal_only=True).derive(task, SEG, [parent], seed=0, progress=False)
    assert kept == [] and stats["per_k"]["k3"]["flipped"] == 1 and stats["per_k"]["k3"]["kept"] == 0


def test_localized_or_model_has_no_necessary_segment():
    # any one of 2, 7, 11 suffices: at k = 3 no single segment is necessary, at k = 1 it is
    task = WhiteBox(visible=(2, 7, 11), threshold=0.5, combine="max")
    parent = hand_case({11: 3.0, 2: 1.2, 7: 1.0})
    cases, stats = Localized(ks=(1, 3)).derive(task, SEG, [parent], seed=0, progress=False)
    by_k = {c.info["k"]: c for c in cases}
    assert by_k[1].necessary_segments == (11,) and by_k[1].minimal
    assert by_k[3].necessary_segments == () and not by_k[3].minimal
    assert (stats["per_k"]["k1"]["minimal"], stats["per_k"]["k3"]["minimal"]) == (1, 0)
    check_claims(task, cases)


# ------------------------------------------------------------------ (b) planted on a partly blind model

VISIBLE = tuple(range(8))  # time blocks 0 and 1; the model is blind to segments 8..19


def planted_task() -> WhiteBox:
    return WhiteBox(visible=VISIBLE, threshold=BASE * len(VISIBLE) + 1.0, per_song=1)


def planted(**kw) -> Planted:
    return Planted(ks=(1, 2), pattern="block", cap_factor=8, **kw)


def test_planted_necessity_excludes_unseen_segments():
    task = planted_task()
    cases, stats = planted().generate(task, SEG, 6, seed=1, progress=False)
    assert len(cases) == 6
    check_claims(task, cases)
    for c in cases:
        assert set(c.necessary_segments) == set(c.true_segments) & set(VISIBLE), c.case_id
    # with these seeds some planted pairs include a segment the model cannot see
    assert any(not c.minimal for c in cases)
    n_minimal = sum(c.minimal for c in cases)
    assert sum(v["minimal"] for v in stats["cases_per_k"].values()) == n_minimal
    assert stats["minimal"] >= n_minimal and stats["not_minimal"] == 0


def test_planted_minimal_only_drops_non_minimal():
    task = planted_task()
    cases, stats = planted(minimal_only=True).generate(task, SEG, 6, seed=1, progress=False)
    assert cases and all(c.minimal for c in cases)
    assert all(set(c.true_segments) <= set(VISIBLE) for c in cases)
    assert stats["not_minimal"] >= 1 and stats["minimal_only"] is True
    check_claims(task, cases)


# ------------------------------------------------------------------ (d) one excerpt per cluster


def attack(cls, **kw):
    return cls(eps=1.0, eta=0.02, max_iter=200, **kw)


@pytest.mark.parametrize("cls", [CWSpectrogram, CWWaveform])
def test_attacks_one_excerpt_per_cluster(cls):
    task = WhiteBox(visible=VISIBLE, threshold=BASE * len(VISIBLE) + 1.0, per_song=4)
    cases, stats = attack(cls).generate(task, SEG, 6, seed=0, progress=False)
    clusters = [c.info["cluster"] for c in cases]
    assert len(cases) == 6 and len(set(clusters)) == 6 == stats["n_clusters"]
    assert clusters == [str(c.info["song_seed"]) for c in cases]
    # without the limit, the four excerpts of a song are used together
    loose, stats = attack(cls, per_cluster=None).generate(task, SEG, 6, seed=0, progress=False)
    assert len(loose) == 6 and stats["n_clusters"] < 6
    two, stats = attack(cls, per_cluster=2).generate(task, SEG, 6, seed=0, progress=False)
    counts = np.unique([c.info["cluster"] for c in two], return_counts=True)[1]
    assert len(two) == 6 and counts.max() <= 2
    # localised cases inherit their parent's cluster
    loc, lstats = Localized(ks=(1, 3)).derive(task, SEG, cases, seed=0, progress=False)
    parents = {c.case_id: c for c in cases}
    assert all(c.info["cluster"] == parents[c.info["parent"]].info["cluster"] for c in loc)
    assert lstats["n_clusters"] == len({c.info["cluster"] for c in loc})


def test_task_declared_clusters():
    task = ByAlbum(visible=VISIBLE, threshold=BASE * len(VISIBLE) + 1.0, per_song=1)
    cases, stats = attack(CWWaveform).generate(task, SEG, 4, seed=0, progress=False)
    albums = [c.info["cluster"] for c in cases]
    assert len(cases) == 4 and all(a.startswith("album-") for a in albums) and len(set(albums)) == 4
    assert albums == [f"album-{c.info['song_seed'] // 2}" for c in cases]


class Spreading(WhiteBox):
    """A task that can be asked for a cluster-spread stream; records how it was asked."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.calls: list[tuple[int, int | None]] = []

    def excerpts(self, split: str, n: int, seed: int, per_cluster: int | None = None) -> Iterator[Excerpt]:
        self.calls.append((n, per_cluster))
        return super().excerpts(split, n, seed)


def test_stream_is_asked_for_clusters():
    # a task that takes per_cluster is asked for it (and for m excerpts); others for more excerpts
    spread = Spreading(visible=VISIBLE, threshold=BASE * len(VISIBLE) + 1.0, per_song=1)
    cases, _ = attack(CWWaveform).generate(spread, SEG, 4, seed=0, progress=False)
    assert spread.calls == [(3 * 4 * 2, 1)] and len(cases) == 4
    spread.calls.clear()
    attack(CWWaveform, per_cluster=None).generate(spread, SEG, 4, seed=0, progress=False)
    assert spread.calls == [(3 * 4 * 2, None)]


def test_planted_one_excerpt_per_cluster():
    task = WhiteBox(visible=VISIBLE, threshold=BASE * len(VISIBLE) + 1.0, per_song=4)
    cases, stats = planted().generate(task, SEG, 4, seed=1, progress=False)
    clusters = [c.info["cluster"] for c in cases]
    assert len(cases) == 4 and len(set(clusters)) == 4 == stats["n_clusters"]
    with pytest.raises(ValueError, match="per_cluster"):
        Planted(per_cluster=0)


# ------------------------------------------------------------------ (e) code version in the cache key


def test_code_version_changes_with_source(tmp_path):
    from explbench.generators.common import code_version

    src = tmp_path / "gen.py"
    src.write_text("def make():\n    return 1\n")
    v1 = code_version(src)
    assert v1 == code_version(src) and len(v1) == 16
    src.write_text("def make():\n    return 2\n")
    v2 = code_version(src)
    assert v2 != v1
    assert cache_key(generator="g", params={"version": v1}) != cache_key(generator="g", params={"version": v2})
    # a shared module counts too
    shared = tmp_path / "common.py"
    shared.write_text("X = 1\n")
    before = code_version(src, shared)
    shared.write_text("X = 2\n")
    assert code_version(src, shared) != before
    with pytest.raises(FileNotFoundError, match="missing.py"):
        code_version(tmp_path / "missing.py")


def test_generators_declare_a_case_set_version_and_key_the_cache_by_source():
    from explbench.run.case_cache import generator_identity, source_hash

    task = WhiteBox(visible=VISIBLE, threshold=1.0)
    for cls in (CWSpectrogram, CWWaveform, Localized, Planted):
        ident = generator_identity(cls(), task)
        assert ident["version"] == cls.version == "1"
        assert ident["source"] == source_hash(cls()) and len(ident["source"]) == 16
    assert source_hash(CWWaveform()) != source_hash(Planted()) != source_hash(Localized())

# ------------------------------------------------------------------ contract B: save / load


def test_necessary_segments_round_trip(tmp_path):
    task = WhiteBox(visible=(2, 7), threshold=1.5)
    cases, _ = Localized(ks=(3,)).derive(task, SEG, [hand_case({11: 3.0, 2: 1.2, 7: 1.0})], seed=0,
                                        progress=False)
    plain = Case(case_id="x/0", generator="x", x=cases[0].x, x_mod=cases[0].x_mod, original=0, target=1,
                 domain="spectrogram")
    save_cases(tmp_path / "c.npz", cases + [plain], {})
    loaded, _ = load_cases(tmp_path / "c.npz")
    assert loaded[0].necessary_segments == (2, 7) and loaded[0].true_segments == (11, 2, 7)
    assert loaded[0].info["cluster"] == "7" and loaded[0].minimal is False
    assert loaded[1].necessary_segments is None and loaded[1].minimal is None
    assert CASE_FORMAT != "1"
