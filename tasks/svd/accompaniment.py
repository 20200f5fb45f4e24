"""Accompaniment for synthetic songs: Bach chorales or generated progressions, rendered
with the General MIDI soundfont shipped in pretty_midi through tinysoundfont.

Musical material is expressed in beats as ``(onset_beat, duration_beats, midi)`` tuples;
``render.py`` turns beats into samples.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 22050
BLOCK = 64  # tinysoundfont renders in 64-sample blocks; event times are multiples of it
TSF_FIX = "pip install --no-deps tinysoundfont==0.3.7"

NoteB = tuple[float, float, int]  # (onset in beats, duration in beats, MIDI pitch)

# General MIDI programs (0-based) by role.
CHOIR_PROGRAMS = (52, 53, 54)  # Choir Aahs, Voice Oohs, Synth Vox: never labelled voice
LEAD_PROGRAMS = (0, 1, 4, 6, 11, 16, 19, 22, 24, 25, 26, 40, 41, 56, 60, 64, 65, 68, 71, 73, 80, 81)
HARMONY_PROGRAMS = (0, 1, 2, 4, 5, 16, 17, 19, 24, 25, 27, 46, 48, 49, 50, 61, 88, 89, 90, 91, 94)
BASS_PROGRAMS = (32, 33, 34, 35, 38, 42, 43, 58, 70)


@dataclass(frozen=True)
class Arrangement:
    """Musical content of one song, in beats: a melody and accompanying parts."""

    melody: list[NoteB]
    parts: list[list[NoteB]]  # harmony parts, lowest (bass) last
    source: str


@dataclass(frozen=True)
class NoteEvent:
    """One note of the accompaniment, in samples (multiples of BLOCK)."""

    start: int
    end: int
    channel: int
    midi: int
    velocity: int


def load_tinysoundfont():
    """Import tinysoundfont, or raise ImportError naming the install command."""
    try:
        import tinysoundfont  # noqa: F401
    except ImportError as err:  # also raised when sys.modules entry is None
        raise ImportError(
            "tinysoundfont is required to render svd-synth songs; install it with "
            f"`{TSF_FIX}` (its metadata requires pyaudio, which offline rendering never uses)"
        ) from err
    return tinysoundfont


def soundfont_path() -> str:
    """Path of the General MIDI soundfont (TimGM6mb.sf2) that ships inside pretty_midi."""
    import pretty_midi

    return os.path.join(os.path.dirname(pretty_midi.__file__), "TimGM6mb.sf2")


@functools.lru_cache(maxsize=1)
def chorale_names() -> tuple[str, ...]:
    """Corpus names of music21's four-part Bach chorales (listed once per process)."""
    from music21 import corpus

    return tuple(corpus.chorales.Iterator(returnType="filename"))


@functools.lru_cache(maxsize=64)
def load_chorale(name: str) -> tuple[tuple[NoteB, ...], ...] | None:
    """Parse one chorale into up to four parts of (onset, duration, midi) beats, top first.

    Returns None when fewer than three parts with notes are found.
    """
    from music21 import corpus

    score = corpus.parse(name)
    parts = []
    for part in score.parts:
        notes = []
        for n in part.stripTies().flatten().notes:
            dur = float(n.quarterLength)
            if dur <= 0:
                continue
            notes.append((float(n.offset), dur, int(max(p.midi for p in n.pitches))))
        if notes:
            parts.append(tuple(notes))
    return tuple(parts[:4]) if len(parts) >= 3 else None


def _window(notes: tuple[NoteB, ...], length: float, start: float, n_beats: float) -> list[NoteB]:
    """Notes in [start, start + n_beats) of a piece looped every ``length`` beats."""
    out: list[NoteB] = []
    rep = 0
    while rep * length < start + n_beats:
        for on, dur, midi in notes:
            t = on + rep * length - start
            if 0 <= t < n_beats:
                out.append((t, min(dur, n_beats - t), midi))
        rep += 1
    return sorted(out)


def chorale_arrangement(rng: np.random.Generator, n_beats: float) -> Arrangement | None:
    """A window of ``n_beats`` beats from a chorale chosen by ``rng`` (None if unusable)."""
    names = chorale_names()
    name = names[int(rng.integers(len(names)))]
    parts = load_chorale(name)
    if parts is None:
        return None
    length = max(on + dur for p in parts for on, dur, _ in p)
    length = float(np.ceil(length))
    start = float(rng.integers(0, max(1, int(length - n_beats) + 1)))
    windows = [_window(p, length, start, n_beats) for p in parts]
    return Arrangement(melody=windows[0], parts=windows[1:], source=f"chorale:{name}")


_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
_PROGRESSIONS = (
    (0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 0), (5, 3, 0, 4), (0, 3, 0, 4),
    (1, 4, 0, 0), (0, 5, 1, 4), (0, 2, 3, 4), (3, 4, 2, 5),
)


def _triad(tonic: int, scale: tuple[int, ...], degree: int) -> list[int]:
    """MIDI pitches of the diatonic triad on ``degree`` (root position, root near tonic)."""
    out = []
    for k in (0, 2, 4):
        d = degree + k
        out.append(tonic + scale[d % 7] + 12 * (d // 7))
    return out


def _accompaniment_pattern(rng: np.random.Generator, chords: list[list[int]],
                           beats_per_chord: int) -> list[NoteB]:
    """Chord notes in one of three patterns: block, arpeggio, or broken (pulse)."""
    pattern = rng.choice(["block", "arpeggio", "pulse"])
    out: list[NoteB] = []
    for i, chord in enumerate(chords):
        t0 = i * beats_per_chord
        if pattern == "block":
            out += [(t0, beats_per_chord * 0.95, m) for m in chord]
        elif pattern == "arpeggio":
            seq = chord + [chord[1], chord[0] + 12, chord[2]]
            for j in range(beats_per_chord * 2):
                out.append((t0 + j * 0.5, 0.5, seq[j % len(seq)]))
        else:
            for j in range(beats_per_chord):
                out += [(t0 + j, 0.45, m) for m in chord]
    return out


def _progression_melody(rng: np.random.Generator, tonic: int, scale: tuple[int, ...],
                        degrees: list[int], beats_per_chord: int) -> list[NoteB]:
    """A stepwise melody over the progression, favouring chord tones on strong beats."""
    rhythms = ((1, 1, 1, 1), (2, 1, 1), (1, 1, 2), (2, 2), (1.5, 0.5, 2), (0.5, 0.5, 1, 2), (3, 1), (4,))
    out: list[NoteB] = []
    step = 7 + 2  # scale step index of the current note (around the 3rd above the tonic + octave)
    for i, deg in enumerate(degrees):
        t = float(i * beats_per_chord)
        rhythm = rhythms[int(rng.integers(len(rhythms)))]
        scale_steps = [r * beats_per_chord / 4 for r in rhythm]
        for j, dur in enumerate(scale_steps):
            if j == 0:
                chord_steps = [deg + k + 7 * o for k in (0, 2, 4) for o in (0, 1, 2)]
                step = min(chord_steps, key=lambda s: abs(s - step))
            else:
                step += int(rng.choice([-2, -1, -1, 1, 1, 2]))
            step = int(np.clip(step, 4, 16))
            out.append((t, dur, tonic + scale[step % 7] + 12 * (step // 7)))
            t += dur
    return out


def progression_arrangement(rng: np.random.Generator, n_beats: float) -> Arrangement:
    """A generated song: random key and mode, looped 4-chord progression, melody, bass."""
    tonic = int(rng.integers(43, 55))  # G2..F#3, chords sit an octave above
    scale = _MAJOR if rng.random() < 0.65 else _MINOR
    prog = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
    beats_per_chord = int(rng.choice([2, 4, 4]))
    n_chords = int(np.ceil(n_beats / beats_per_chord))
    degrees = [prog[i % len(prog)] for i in range(n_chords)]
    chords = [[m + 12 for m in _triad(tonic, scale, d)] for d in degrees]
    harmony = _accompaniment_pattern(rng, chords, beats_per_chord)
    bass_step = beats_per_chord if rng.random() < 0.5 else 1
    bass = [(float(i * beats_per_chord + k), bass_step * 0.9, _triad(tonic, scale, d)[0] - 12 + 12 * (tonic < 48))
            for i, d in enumerate(degrees) for k in range(0, beats_per_chord, bass_step)]
    melody = _progression_melody(rng, tonic, scale, degrees, beats_per_chord)
    clip = lambda notes: [(on, min(d, n_beats - on), m) for on, d, m in notes if on < n_beats]  # noqa: E731
    return Arrangement(melody=clip(melody), parts=[clip(harmony), clip(bass)], source="progression")


def render_events(events: list[NoteEvent], programs: dict[int, int], gains_db: dict[int, float],
                  n_samples: int) -> np.ndarray:
    """Render note events with tinysoundfont (GM soundfont) to a mono signal.

    Parameters
    ----------
    events : note events with sample times that are multiples of ``BLOCK``.
    programs : channel -> GM program (0-based).
    gains_db : channel -> channel volume in dB (applied as MIDI CC7), <= 0.
    n_samples : output length in samples (multiple of ``BLOCK``).

    Returns
    -------
    np.ndarray, float32, shape (n_samples,), 22050 Hz.
    """
    tsf = load_tinysoundfont()
    synth = tsf.Synth(gain=-6.0, samplerate=SAMPLE_RATE)
    sfid = synth.sfload(soundfont_path())
    for chan, prog in programs.items():
        synth.program_select(chan, sfid, 0, int(prog))
        cc7 = int(np.clip(round(127 * 10 ** (gains_db.get(chan, 0.0) / 40)), 1, 127))
        synth.control_change(chan, 7, cc7)  # CC7 volume is ~40*log10 dB in GM
    timeline = sorted([(e.start, 1, e) for e in events] + [(e.end, 0, e) for e in events],
                      key=lambda x: (x[0], x[1]))
    out = np.zeros((n_samples, 2), np.float32)
    pos = 0
    for t, is_on, ev in timeline:
        t = min(t, n_samples)
        if t > pos:
            out[pos:t] = _generate(synth, t - pos)
            pos = t
        if t >= n_samples:
            break
        if is_on:
            synth.noteon(ev.channel, ev.midi, ev.velocity)
        else:
            synth.noteoff(ev.channel, ev.midi)
    if pos < n_samples:
        out[pos:] = _generate(synth, n_samples - pos)
    return out.mean(axis=1)


def _generate(synth, n: int) -> np.ndarray:
    """Render ``n`` stereo frames as an (n, 2) float32 array."""
    buf = synth.generate_simple(n)
    return np.frombuffer(buf, dtype=np.float32).reshape(n, 2)
