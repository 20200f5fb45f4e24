"""Deterministic synthetic songs for the singing-voice-detection task ``svd-synth``.

A song is a General MIDI accompaniment (a Bach chorale window or a generated chord
progression, rendered with tinysoundfont) plus, in vocal sections, an espeak-ng voice
"singing" the melody syllable by syllable at per-note pitches.  GM choir patches
(Choir Aahs, Voice Oohs, Synth Vox) appear in the accompaniment of about 30 % of the
songs as no-voice hard negatives.  Everything derives from the integer seed.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import accompaniment as acc
from .accompaniment import BLOCK, CHOIR_PROGRAMS, NoteB, NoteEvent, load_tinysoundfont
from .espeak import (
    LANGUAGES, VOICE_VARIANTS, EspeakSession, VoiceSpec, espeak_pitch_for_midi, voice_midi_range,
)

RENDERER_VERSION = "r1"
SAMPLE_RATE = 22050

__all__ = ["RENDERER_VERSION", "SAMPLE_RATE", "Song", "render_song", "frame_labels",
           "load_tinysoundfont", "cache_path", "default_cache_dir"]

# Tunables of the song distribution.
CHOIR_PROBABILITY = 0.3
LOW_VOICE_PROBABILITY = 0.12  # songs with very little voice
VOCAL_DB_RANGE = (-2.0, 10.0)  # voice-to-accompaniment RMS ratio where the voice sounds
MAX_SYLLABLE_S = 0.85  # longer notes are sung as repeated syllables
MIN_SYLLABLE_SAMPLES = 2 * BLOCK
PEAK_TARGET = 0.9
SYLLABLES = ("la", "na", "da", "ma", "lo", "no", "do", "re", "mi", "fa", "so", "ti", "oh",
             "ah", "lu", "nu", "ba", "ya", "wo", "ka", "te", "se", "vi", "mo", "ri", "love",
             "day", "sun", "moon", "home", "sky")
_SILENCE_REL = 0.01  # espeak output below 1 % of the syllable peak counts as silence


@dataclass(frozen=True)
class Song:
    """A rendered song.

    Attributes
    ----------
    seed : the integer seed it was rendered from.
    mix : (n,) float32 at 22050 Hz, equal to ``stems["vocals"] + stems["accompaniment"]``.
    stems : ``{"vocals": (n,), "accompaniment": (n,)}`` float32.
    voice_intervals : (m, 2) float64 seconds, sorted and non-overlapping: where the
        vocal stem sounds.
    info : JSON-serialisable metadata (instruments, has_choir, tempo, voices, vocal_db, source).
    """

    seed: int
    mix: np.ndarray
    stems: dict[str, np.ndarray]
    voice_intervals: np.ndarray
    info: dict


# ----------------------------------------------------------------------------- public API

def render_song(seed: int, duration: float = 20.0, cache_dir: str | os.PathLike | None = None,
                use_cache: bool = True) -> Song:
    """Render (or load from the on-disk cache) the song for ``seed``.

    Parameters
    ----------
    seed : integer seed; the same seed always gives bit-identical arrays.
    duration : length in seconds (rounded to a multiple of 64 samples).
    cache_dir : cache root; defaults to ``$EXPLBENCH_CACHE/songs`` or
        ``~/.cache/explbench/songs``. Files live under ``cache_dir/RENDERER_VERSION``.
    use_cache : read and write the cache.

    Returns
    -------
    Song with ``mix`` and stems of shape (round(duration * 22050 / 64) * 64,).
    """
    path = cache_path(seed, duration, cache_dir)
    if use_cache and path.exists():
        try:
            return _load(path)
        except (OSError, ValueError, KeyError):
            pass  # unreadable or partial file: render again and overwrite
    song = _synthesise(int(seed), float(duration))
    if use_cache:
        _save_atomic(song, path)
    return song


def frame_labels(song: Song, hop: int = 315, frame: int = 1024,
                 sr: int = SAMPLE_RATE) -> np.ndarray:
    """Frame-wise voice labels: frame j is voice when sample ``j*hop + frame//2`` is sung.

    Returns
    -------
    np.ndarray, int8, shape (1 + (len(song.mix) - frame) // hop,), 1 = voice.
    """
    n_frames = max(0, 1 + (len(song.mix) - frame) // hop)
    centres = np.arange(n_frames, dtype=np.int64) * hop + frame // 2
    iv = np.round(np.asarray(song.voice_intervals, np.float64).reshape(-1, 2) * sr).astype(np.int64)
    idx = np.searchsorted(iv[:, 0], centres, side="right") - 1
    inside = (idx >= 0) & (centres < iv[np.maximum(idx, 0), 1]) if len(iv) else np.zeros(n_frames, bool)
    return inside.astype(np.int8)


def default_cache_dir() -> Path:
    """``$EXPLBENCH_CACHE/songs`` if set, else ``~/.cache/explbench/songs``."""
    root = os.environ.get("EXPLBENCH_CACHE")
    return Path(root) / "songs" if root else Path.home() / ".cache" / "explbench" / "songs"


def cache_path(seed: int, duration: float = 20.0, cache_dir: str | os.PathLike | None = None) -> Path:
    """Cache file of a song: ``cache_dir/RENDERER_VERSION/{seed}.npz`` (other durations
    than 20 s get a ``-{ms}ms`` suffix so they never collide)."""
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    suffix = "" if _n_samples(duration) == _n_samples(20.0) else f"-{round(duration * 1000)}ms"
    return base / RENDERER_VERSION / f"{int(seed)}{suffix}.npz"


# ----------------------------------------------------------------------------- cache I/O

def _save_atomic(song: Song, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(
                fh, seed=np.int64(song.seed), mix=song.mix, vocals=song.stems["vocals"],
                accompaniment=song.stems["accompaniment"], voice_intervals=song.voice_intervals,
                info=np.array(json.dumps(song.info, sort_keys=True)),
            )
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _load(path: Path) -> Song:
    with np.load(path, allow_pickle=False) as z:
        stems = {"vocals": z["vocals"], "accompaniment": z["accompaniment"]}
        return Song(seed=int(z["seed"]), mix=z["mix"], stems=stems,
                    voice_intervals=z["voice_intervals"], info=json.loads(str(z["info"])))


# ----------------------------------------------------------------------------- synthesis

def _n_samples(duration: float) -> int:
    return max(1, int(round(duration * SAMPLE_RATE / BLOCK))) * BLOCK


def _to_block(seconds: float) -> int:
    """Seconds -> samples, rounded to a multiple of 64."""
    return int(round(seconds * SAMPLE_RATE / BLOCK)) * BLOCK


def _synthesise(seed: int, duration: float) -> Song:
    load_tinysoundfont()  # fail early with the install hint
    rng = np.random.default_rng(seed)
    n = _n_samples(duration)
    arrangement, tempo = _choose_arrangement(rng, n / SAMPLE_RATE)
    sec_per_beat = 60.0 / tempo
    vocal_sections = _plan_sections(rng, n / SAMPLE_RATE / sec_per_beat, tempo)
    sung, played_lead = _split_melody(arrangement.melody, vocal_sections)
    voice = _choose_voice(rng)
    programs, roles = _choose_programs(rng, len(arrangement.parts))
    events, gains = _accompaniment_events(rng, arrangement, played_lead, sec_per_beat, n)
    accomp = acc.render_events(events, programs, gains, n).astype(np.float64)
    vocals, intervals = _sing(rng, sung, voice, sec_per_beat, n)
    vocal_db = float(rng.uniform(*VOCAL_DB_RANGE))
    vocals *= _vocal_gain(vocals, accomp, intervals, vocal_db)
    vocals32, accomp32, mix = _normalise(rng, vocals, accomp)
    info = {
        "source": arrangement.source, "tempo": round(float(tempo), 3),
        "instruments": sorted({int(p) for p in programs.values()}), "programs": roles,
        "has_choir": any(p in CHOIR_PROGRAMS for p in programs.values()),
        "voice": voice[0], "voices": [voice[0]], "vocal_db": round(vocal_db, 3),
        "duration": n / SAMPLE_RATE, "renderer_version": RENDERER_VERSION,
        "voice_fraction": round(float(np.sum(intervals[:, 1] - intervals[:, 0])) / n, 4) if len(intervals) else 0.0,
    }
    return Song(seed=seed, mix=mix, stems={"vocals": vocals32, "accompaniment": accomp32},
                voice_intervals=intervals.astype(np.float64) / SAMPLE_RATE, info=info)


def _choose_arrangement(rng: np.random.Generator, seconds: float) -> tuple[acc.Arrangement, float]:
    """Chorale (60 %) or generated progression, and a tempo in quarter-notes per minute."""
    if rng.random() < 0.6:
        tempo = float(rng.uniform(66, 110))
        arr = acc.chorale_arrangement(rng, seconds * tempo / 60.0 + 1)
        if arr is not None and arr.melody:
            return arr, tempo
    tempo = float(rng.uniform(80, 140))
    return acc.progression_arrangement(rng, seconds * tempo / 60.0 + 1), tempo


def _plan_sections(rng: np.random.Generator, n_beats: float, tempo: float) -> list[tuple[float, float]]:
    """Vocal sections as (start, end) beats; the rest of the song is instrumental."""
    if rng.random() < LOW_VOICE_PROBABILITY:
        p_vocal = rng.uniform(0.05, 0.25)
    else:
        p_vocal = rng.uniform(0.45, 0.85)
    sections, t = [], 0.0
    while t < n_beats:
        length = float(max(2, round(rng.uniform(2.5, 6.0) * tempo / 60.0)))
        if rng.random() < p_vocal:
            sections.append((t, t + length))
        t += length
    return sections


def _split_melody(melody: list[NoteB], vocal: list[tuple[float, float]]) -> tuple[list[NoteB], list[NoteB]]:
    """Melody notes whose onset lies in a vocal section are sung; the others are played."""
    def in_vocal(on: float) -> bool:
        return any(a <= on < b for a, b in vocal)
    sung = [n for n in melody if in_vocal(n[0])]
    played = [n for n in melody if not in_vocal(n[0])]
    return sung, played


def _choose_voice(rng: np.random.Generator) -> tuple[str, VoiceSpec]:
    """An espeak voice name ``lang+variant`` and the variant's pitch calibration."""
    spec = VOICE_VARIANTS[int(rng.integers(len(VOICE_VARIANTS)))]
    lang = LANGUAGES[int(rng.integers(len(LANGUAGES)))]
    return f"{lang}+{spec.variant}", spec


def _choose_programs(rng: np.random.Generator, n_parts: int) -> tuple[dict[int, int], dict[str, int]]:
    """GM program per channel: 0 = lead (melody in instrumental sections), 1.. = parts.

    With probability CHOIR_PROBABILITY a choir patch takes the lead and/or a harmony part.
    """
    programs = {0: int(rng.choice(acc.LEAD_PROGRAMS))}
    for i in range(n_parts):
        pool = acc.BASS_PROGRAMS if (i == n_parts - 1 and n_parts > 1) else acc.HARMONY_PROGRAMS
        programs[i + 1] = int(rng.choice(pool))
    if rng.random() < CHOIR_PROBABILITY:
        where = rng.choice(["lead", "harmony", "both"])
        if where in ("lead", "both"):
            programs[0] = int(rng.choice(CHOIR_PROGRAMS))
        if where in ("harmony", "both") or n_parts == 1:
            programs[1 + int(rng.integers(max(1, n_parts - 1)))] = int(rng.choice(CHOIR_PROGRAMS))
    roles = {("lead" if c == 0 else f"part{c}"): p for c, p in programs.items()}
    return programs, roles


def _accompaniment_events(rng: np.random.Generator, arr: acc.Arrangement, lead: list[NoteB],
                          sec_per_beat: float, n: int) -> tuple[list[NoteEvent], dict[int, float]]:
    """Note events (64-sample grid) for the lead line and every harmony part, with levels."""
    events: list[NoteEvent] = []
    gains: dict[int, float] = {}
    for chan, notes in enumerate([lead] + list(arr.parts)):
        gains[chan] = float(rng.uniform(-9.0, 0.0))
        base_vel = int(rng.integers(60, 110))
        shift = 12 if (chan == len(arr.parts) and arr.source != "progression" and rng.random() < 0.3) else 0
        for on, dur, midi in notes:
            start, end = _to_block(on * sec_per_beat), _to_block((on + dur) * sec_per_beat)
            if start >= n or end <= start:
                continue
            vel = int(np.clip(base_vel + rng.integers(-8, 9), 1, 127))
            events.append(NoteEvent(start, min(end, n), chan, int(midi) - shift, vel))
    return events, gains


def _fit_register(notes: list[NoteB], voice: VoiceSpec) -> list[NoteB]:
    """Transpose by octaves so the melody sits in the voice's range, folding outliers."""
    if not notes:
        return notes
    lo, hi = voice_midi_range(voice)
    centre = (lo + hi) / 2
    shift = 12 * round((centre - float(np.median([m for _, _, m in notes]))) / 12)
    out = []
    for on, dur, m in notes:
        m = m + shift
        while m > hi:
            m -= 12
        if m < lo:  # the range spans more than an octave, so this lands inside or just above
            m += 12
        out.append((on, dur, int(m)))
    return out


def _syllable_notes(notes: list[NoteB], sec_per_beat: float, n: int) -> list[tuple[int, int, int]]:
    """(start, end, midi) in samples, long notes split into repeated syllables."""
    out = []
    for on, dur, midi in notes:
        start, end = _to_block(on * sec_per_beat), min(_to_block((on + dur) * sec_per_beat), n)
        pieces = max(1, int(np.ceil((end - start) / (MAX_SYLLABLE_S * SAMPLE_RATE))))
        bounds = [start + _to_block(k * (end - start) / pieces / SAMPLE_RATE) for k in range(pieces)] + [end]
        out += [(a, b, midi) for a, b in zip(bounds[:-1], bounds[1:]) if b - a >= MIN_SYLLABLE_SAMPLES]
    return out


def _sing(rng: np.random.Generator, notes: list[NoteB], voice: tuple[str, VoiceSpec],
          sec_per_beat: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Render the sung notes. Returns the vocal stem (n,) float64 and the sounding
    intervals as an (m, 2) int64 array of samples."""
    name, spec = voice
    vocals = np.zeros(n, np.float64)
    intervals: list[tuple[int, int]] = []
    syllables = list(rng.choice(SYLLABLES, size=int(rng.integers(3, 9)), replace=False))
    rate_scale = float(rng.uniform(0.85, 1.1))
    todo = _syllable_notes(_fit_register(notes, spec), sec_per_beat, n)
    if not todo:
        return vocals, np.zeros((0, 2), np.int64)
    with EspeakSession() as es:
        for start, end, midi in todo:
            text = str(syllables[int(rng.integers(len(syllables)))])
            target = (end - start) / SAMPLE_RATE * rng.uniform(0.85, 1.05)
            rate = int(np.clip(round(175 * 0.33 / target * rate_scale), 80, 450))
            wav = es.synth(text, name, espeak_pitch_for_midi(midi, spec), rate,
                           seed=int(rng.integers(1, 2**31 - 1)))
            seg = _trim_and_fit(wav, end - start)
            if seg is None:
                continue
            vocals[start:start + len(seg)] = seg
            intervals.append((start, start + len(seg)))
    return vocals, _merge(intervals)


def _trim_and_fit(wav: np.ndarray, max_len: int) -> np.ndarray | None:
    """Cut espeak's leading/trailing silence, shorten to ``max_len`` samples and to a
    multiple of 64, and fade the edges. None when too little sound is left."""
    if wav.size == 0:
        return None
    loud = np.flatnonzero(np.abs(wav) > _SILENCE_REL * np.abs(wav).max())
    if loud.size == 0:
        return None
    seg = wav[loud[0]:loud[-1] + 1].astype(np.float64)
    length = (min(len(seg), max_len) // BLOCK) * BLOCK
    if length < MIN_SYLLABLE_SAMPLES:
        return None
    cut = length < len(seg)
    seg = seg[:length].copy()
    fade_in, fade_out = BLOCK // 2, (min(256, length // 4) if cut else BLOCK // 2)
    seg[:fade_in] *= np.linspace(0.0, 1.0, fade_in, endpoint=False) + 1.0 / fade_in
    seg[length - fade_out:] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, fade_out))
    return seg


def _merge(intervals: list[tuple[int, int]]) -> np.ndarray:
    """Sort and merge touching/overlapping sample intervals into an (m, 2) int64 array."""
    merged: list[list[int]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return np.array(merged, np.int64).reshape(-1, 2)


def _vocal_gain(vocals: np.ndarray, accomp: np.ndarray, intervals: np.ndarray, vocal_db: float) -> float:
    """Gain that puts the voice ``vocal_db`` dB above the accompaniment where it sounds."""
    if len(intervals) == 0:
        return 1.0
    mask = np.zeros(len(vocals), bool)
    for a, b in intervals:
        mask[a:b] = True
    v_rms = np.sqrt(np.mean(vocals[mask] ** 2))
    a_rms = np.sqrt(np.mean(accomp[mask] ** 2))
    if v_rms <= 0:
        return 1.0
    if a_rms <= 1e-6:
        a_rms = max(np.sqrt(np.mean(accomp ** 2)), 0.05)
    return float(10 ** (vocal_db / 20) * a_rms / v_rms)


def _normalise(rng: np.random.Generator, vocals: np.ndarray,
               accomp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale both stems by one factor so the mix peaks at 0.9 * U(0.4, 1); return float32
    stems and their exact float32 sum."""
    peak = float(np.max(np.abs(vocals + accomp)))
    scale = PEAK_TARGET * float(rng.uniform(0.4, 1.0)) / peak if peak > 0 else 1.0
    v32 = (vocals * scale).astype(np.float32)
    a32 = (accomp * scale).astype(np.float32)
    return v32, a32, v32 + a32
