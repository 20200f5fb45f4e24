"""Tests of the svd-synth song renderer (real rendering, no mocks)."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from explbench.tasks.svd import render
from explbench.tasks.svd.accompaniment import CHOIR_PROGRAMS
from explbench.tasks.svd.render import SAMPLE_RATE, frame_labels, render_song

SEEDS = (0, 1, 2, 3, 4, 5, 6, 7)
HOP, FRAME = 315, 1024


@pytest.fixture(scope="module")
def songs() -> dict[int, render.Song]:
    return {s: render_song(s, use_cache=False) for s in SEEDS}


def _frame_rms(x: np.ndarray, n_frames: int) -> np.ndarray:
    idx = np.arange(n_frames)[:, None] * HOP + np.arange(FRAME)[None, :]
    return np.sqrt(np.mean(x.astype(np.float64)[idx] ** 2, axis=1))


def test_same_seed_is_bit_identical_even_after_other_songs(songs):
    again = render_song(3, use_cache=False)  # rendered after seeds 0..7
    ref = songs[3]
    assert np.array_equal(again.mix, ref.mix)
    for k in ("vocals", "accompaniment"):
        assert np.array_equal(again.stems[k], ref.stems[k])
    assert np.array_equal(again.voice_intervals, ref.voice_intervals)
    assert again.info == ref.info


def test_different_seeds_give_different_songs(songs):
    assert not np.array_equal(songs[0].mix, songs[1].mix)
    assert len({s.mix.tobytes() for s in songs.values()}) == len(songs)


def test_stems_add_up_to_mix_and_shapes(songs):
    for song in songs.values():
        v, a = song.stems["vocals"], song.stems["accompaniment"]
        assert v.dtype == a.dtype == song.mix.dtype == np.float32
        assert v.shape == a.shape == song.mix.shape == (render._n_samples(20.0),)
        assert np.max(np.abs(v + a - song.mix)) <= 1e-6
        assert np.all(np.isfinite(song.mix)) and np.max(np.abs(song.mix)) <= 1.0
        iv = song.voice_intervals
        assert iv.dtype == np.float64 and iv.ndim == 2 and iv.shape[1] == 2
        assert np.all(iv[:, 1] > iv[:, 0]) and np.all(iv[1:, 0] >= iv[:-1, 1])
        assert np.allclose(np.round(iv * SAMPLE_RATE) % 64, 0)


def test_vocal_stem_is_silent_outside_intervals(songs):
    for song in songs.values():
        mask = np.zeros(len(song.mix), bool)
        for a, b in np.round(song.voice_intervals * SAMPLE_RATE).astype(int):
            mask[a:b] = True
        assert np.all(song.stems["vocals"][~mask] == 0)


def test_labels_agree_with_vocal_energy(songs):
    fractions, near_zero, voiced_rms, unvoiced_rms = [], [], [], []
    for song in songs.values():
        lab = frame_labels(song, HOP, FRAME)
        assert lab.dtype == np.int8 and lab.shape == (1 + (len(song.mix) - FRAME) // HOP,)
        fractions.append(lab.mean())
        rms = _frame_rms(song.stems["vocals"], len(lab))
        if lab.any() and not lab.all():
            voiced_rms.append(np.median(rms[lab == 1]))
            unvoiced_rms.append(np.median(rms[lab == 0]))
            near_zero.append(rms[lab == 0] < 0.1 * np.median(rms[lab == 1]))
    assert len(voiced_rms) >= 4
    assert all(v > 10 * u for v, u in zip(voiced_rms, unvoiced_rms))
    assert np.concatenate(near_zero).mean() >= 0.9
    assert 0.2 <= np.mean(fractions) <= 0.8


def test_voice_is_audible_against_accompaniment(songs):
    for song in songs.values():
        lab = frame_labels(song).astype(bool)
        if lab.sum() < 20:
            continue
        v = _frame_rms(song.stems["vocals"], len(lab))[lab]
        a = _frame_rms(song.stems["accompaniment"], len(lab))[lab]
        ratio_db = 20 * np.log10(np.sqrt(np.mean(v ** 2)) / np.sqrt(np.mean(a ** 2)))
        assert ratio_db > -6.0, (song.seed, ratio_db)


def test_choir_patches_appear_and_are_never_voice():
    short = [render_song(s, duration=3.0, use_cache=False) for s in range(30)]
    choir = [song for song in short if song.info["has_choir"]]
    assert 3 <= len(choir) <= 18  # ~30 %
    for song in choir:
        assert any(p in CHOIR_PROGRAMS for p in song.info["instruments"])
        # labels come only from the vocal stem: no label where it is silent
        lab = frame_labels(song).astype(bool)
        rms = _frame_rms(song.stems["vocals"], len(lab))
        assert np.all(rms[lab] > 0)
        mask = np.zeros(len(song.mix), bool)
        for a, b in np.round(song.voice_intervals * SAMPLE_RATE).astype(int):
            mask[a:b] = True
        assert np.all(song.stems["vocals"][~mask] == 0)
    # a choir song without a sung note has no voice label at all
    assert all(not frame_labels(s).any() for s in choir if len(s.voice_intervals) == 0)


def test_cache_round_trip(tmp_path, monkeypatch):
    first = render_song(11, duration=4.0, cache_dir=tmp_path)
    path = render.cache_path(11, 4.0, tmp_path)
    assert path.exists() and path.parent == tmp_path / render.RENDERER_VERSION
    assert not list(path.parent.glob("*.tmp"))
    monkeypatch.setattr(render, "_synthesise", lambda *a, **k: pytest.fail("not cached"))
    second = render_song(11, duration=4.0, cache_dir=tmp_path)
    assert np.array_equal(first.mix, second.mix)
    assert np.array_equal(first.stems["vocals"], second.stems["vocals"])
    assert np.array_equal(first.voice_intervals, second.voice_intervals)
    assert first.info == second.info and second.seed == 11


def test_default_duration_cache_name_and_version(tmp_path, monkeypatch):
    assert render.cache_path(5, 20.0, tmp_path) == tmp_path / render.RENDERER_VERSION / "5.npz"
    monkeypatch.setattr(render, "RENDERER_VERSION", "r-test")
    assert render.cache_path(5, 20.0, tmp_path) == tmp_path / "r-test" / "5.npz"
    monkeypatch.setenv("EXPLBENCH_CACHE", str(tmp_path / "env"))
    assert render.cache_path(5) == tmp_path / "env" / "songs" / "r-test" / "5.npz"


def test_missing_tinysoundfont_names_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "tinysoundfont", None)
    with pytest.raises(ImportError, match=r"pip install --no-deps tinysoundfont==0\.3\.7"):
        render.load_tinysoundfont()
