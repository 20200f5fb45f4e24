"""svd-jamendo on a tiny tree fabricated in the published Jamendo layout (audio/, filelists/,
labels/*.lab) from svd-synth songs, stored as stereo 44.1 kHz OGG like the corpus."""

import shutil

import librosa
import numpy as np
import pytest
import soundfile as sf

from explbench.api import registry
from explbench.checks.task_checks import check_task
from explbench.tasks.svd.frontend import EXCERPT_FRAMES, FRAME, HOP
from explbench.tasks.svd.jamendo import JamendoLayoutError, SVDJamendo, read_lab
from explbench.tasks.svd.render import render_song

SPLITS = {"train": [0, 1], "valid": [2], "test": [3, 4]}


def write_lab(path, intervals, duration):
    lines, t = [], 0.0
    for a, b in intervals:
        if a > t:
            lines.append(f"{t:.3f} {a:.3f} nosing")
        lines.append(f"{a:.3f} {b:.3f} sing")
        t = b
    if t < duration:
        lines.append(f"{t:.3f} {duration:.3f} nosing")
    path.write_text("\n".join(lines) + "\n")


def merged(intervals, gap=0.3):
    """Syllables closer than ``gap`` seconds merged into phrases, as a human annotator would."""
    out = []
    for a, b in intervals:
        if out and a - out[-1][1] < gap:
            out[-1][1] = b
        else:
            out.append([a, b])
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("jamendo")
    for sub in ("audio", "filelists", "labels"):
        (root / sub).mkdir()
    for split, songs in SPLITS.items():
        names = []
        for k in songs:
            song = render_song(2_000_100 + k, duration=12.0)
            stereo = librosa.resample(song.mix, orig_sr=22050, target_sr=44100)
            name = f"{k:02d} - Artist {k} - Song {k}.ogg"
            sf.write(root / "audio" / name, np.stack([stereo, stereo], axis=1), 44100, format="OGG", subtype="VORBIS")
            write_lab(root / "labels" / f"{k:02d} - Artist {k} - Song {k}.lab", merged(song.voice_intervals), 12.0)
            names.append(name)
        (root / "filelists" / split).write_text("\n".join(names) + "\n")
    return root


def test_excerpts_follow_the_lab_files_and_splits_are_disjoint(root):
    task = registry.tasks.get("svd-jamendo")(root=str(root))
    ex = list(task.excerpts("test", 8, seed=1))
    assert len(ex) == 8 and sorted(e.label for e in ex) == [0] * 4 + [1] * 4
    centre = ((EXCERPT_FRAMES // 2) * HOP + FRAME // 2) / 22050
    for e in ex:
        assert e.audio.shape == (task.excerpt_samples,) and e.audio.dtype == np.float32
        name = task.cluster(e)
        sung = read_lab(root / "labels" / name.replace(".ogg", ".lab"))
        t = e.offset + centre
        assert int(any(a <= t < b for a, b in sung)) == e.label
    again = list(task.excerpts("test", 8, seed=1))
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(ex, again))
    clusters = {s: {task.cluster(e) for e in task.excerpts(s, 4, seed=0)} for s in SPLITS}
    assert not (clusters["train"] & clusters["test"]) and not (clusters["valid"] & clusters["test"])


def test_check_task_passes_with_svd_synth_model(root):
    res = {r.name: r for r in check_task(SVDJamendo(root=str(root)), n=8)}
    assert all(r.passed for r in res.values()), {k: r.message for k, r in res.items() if not r.passed}


def test_a_missing_folder_says_what_goes_where(tmp_path, monkeypatch):
    monkeypatch.delenv("EXPLBENCH_JAMENDO", raising=False)
    with pytest.raises(JamendoLayoutError) as info:
        SVDJamendo(root=str(tmp_path / "nowhere"))
    text = str(info.value)
    for words in ("does not exist", "audio/", "filelists/", "labels/", "sing|nosing", "61 / 16 / 16", "root ="):
        assert words in text, text
    with pytest.raises(JamendoLayoutError, match="no root was given"):
        SVDJamendo()


def test_layout_faults_are_named(root, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    (bad / "filelists" / "valid").unlink()
    with pytest.raises(JamendoLayoutError, match="filelists/valid is missing"):
        SVDJamendo(root=str(bad))
    (bad / "filelists" / "valid").write_text("ghost.ogg\n")
    with pytest.raises(JamendoLayoutError, match="lists 'ghost.ogg', which is not in audio/"):
        SVDJamendo(root=str(bad))
    (bad / "filelists" / "valid").write_text((root / "filelists" / "valid").read_text())
    next((bad / "labels").glob("02*.lab")).unlink()
    with pytest.raises(JamendoLayoutError, match="has no labels/02 - Artist 2 - Song 2.lab"):
        SVDJamendo(root=str(bad))


def test_a_malformed_lab_line_is_named(tmp_path):
    p = tmp_path / "x.lab"
    p.write_text("0.0 1.5 sing\n1.5 2.0 singing\n")
    with pytest.raises(ValueError, match="line 2"):
        read_lab(p)
    p.write_text("0.0 1.5 sing\n1.5 3.0 nosing\n3.0 4.0 sing\n")
    np.testing.assert_allclose(read_lab(p), [[0.0, 1.5], [3.0, 4.0]])
