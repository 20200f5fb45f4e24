"""Deterministic "singing" with espeak-ng through ctypes.

espeak-ng keeps synthesis state in C statics that ``espeak_Terminate`` /
``espeak_Initialize`` do not reset (pitch-flutter phase, automatic gain, cycle
counters), so the same text synthesised twice in one process differs.  To make
songs bit-identical whatever was rendered before, each song gets a pristine
library instance: the shared library is copied once per process (lazily) to a
private file, and every :class:`EspeakSession` ``dlopen``\\ s that copy, renders
the song's syllables and ``dlclose``\\ s it again (~1 ms).  The random
generators espeak uses (its own and libc ``rand``) are re-seeded per syllable.
"""
from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass

import numpy as np

ESPEAK_RATE_HZ = 22050
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
# One session at a time: the library's statics and libc's rand() are process-wide.
_LOCK = threading.Lock()
_PRIVATE_LIB: list[str] = []  # lazily filled with the path of the private copy


@dataclass(frozen=True)
class VoiceSpec:
    """An espeak voice variant and its approximate pitch at espeak pitch 90 (Hz)."""

    variant: str
    hz_at_90: float


# Measured with pyin on a sustained "aa" (pitch range 0); pitch grows ~0.0157 octave
# per espeak pitch unit for every variant.
VOICE_VARIANTS: tuple[VoiceSpec, ...] = (
    VoiceSpec("m1", 131.5), VoiceSpec("m2", 150.2), VoiceSpec("m3", 143.4),
    VoiceSpec("m4", 125.5), VoiceSpec("m5", 141.7), VoiceSpec("m7", 138.5),
    VoiceSpec("Alex", 171.5), VoiceSpec("michel", 145.9),
    VoiceSpec("f1", 256.9), VoiceSpec("f2", 269.1), VoiceSpec("f3", 275.4),
    VoiceSpec("f4", 259.9), VoiceSpec("f5", 295.1), VoiceSpec("anika", 380.5),
    VoiceSpec("linda", 355.1), VoiceSpec("belinda", 535.1),
)
LANGUAGES: tuple[str, ...] = ("en", "en-us", "de", "fr", "it", "es", "pt", "nl")
OCTAVES_PER_PITCH_UNIT = 0.0157
PITCH_MIN, PITCH_MAX = 15, 99


def espeak_pitch_for_midi(midi: float, voice: VoiceSpec) -> int:
    """Map a MIDI note number to espeak's 0-100 pitch parameter (roughly) for ``voice``."""
    hz = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
    p = 90.0 + np.log2(hz / voice.hz_at_90) / OCTAVES_PER_PITCH_UNIT
    return int(np.clip(round(p), PITCH_MIN, PITCH_MAX))


def voice_midi_range(voice: VoiceSpec) -> tuple[float, float]:
    """MIDI range (low, high) the voice can reach with pitch in [PITCH_MIN, PITCH_MAX]."""
    def midi_at(p: float) -> float:
        hz = voice.hz_at_90 * 2.0 ** (OCTAVES_PER_PITCH_UNIT * (p - 90.0))
        return 69.0 + 12.0 * np.log2(hz / 440.0)
    return midi_at(PITCH_MIN), midi_at(PITCH_MAX)


def _private_library_path() -> str:
    """Copy libespeak-ng to a private temp file once per process; return its path."""
    if not _PRIVATE_LIB:
        import espeakng_loader

        tmp = tempfile.mkdtemp(prefix="explbench-espeak-")
        dst = os.path.join(tmp, "libespeak-ng-explbench.so")
        shutil.copyfile(espeakng_loader.get_library_path(), dst)
        atexit.register(shutil.rmtree, tmp, True)
        _PRIVATE_LIB.append(dst)
    return _PRIVATE_LIB[0]


def _declare(lib: ctypes.CDLL) -> None:
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
        ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
    ]


class EspeakSession:
    """A pristine espeak-ng instance for one song; use as a context manager.

    >>> with EspeakSession() as es:
    ...     wav = es.synth("la", "en+f2", pitch=50, rate=150, seed=1)
    """

    def __enter__(self) -> "EspeakSession":
        import _ctypes
        import espeakng_loader

        _LOCK.acquire()
        try:
            self._dlclose = _ctypes.dlclose
            self._lib = ctypes.CDLL(_private_library_path())
            self._libc = ctypes.CDLL(None)
            _declare(self._lib)
            self._chunks: list[np.ndarray] = []
            self._callback = _SYNTH_CALLBACK(self._collect)
            data = espeakng_loader.get_data_path().encode()
            sr = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
            if sr != ESPEAK_RATE_HZ:
                raise RuntimeError(f"espeak_Initialize returned {sr}, expected {ESPEAK_RATE_HZ}")
            self._lib.espeak_SetSynthCallback(self._callback)
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._release()

    def _release(self) -> None:
        lib = getattr(self, "_lib", None)
        try:
            if lib is not None:
                lib.espeak_Terminate()
                self._dlclose(lib._handle)
                self._lib = None
        finally:
            _LOCK.release()

    def _collect(self, wav, n: int, _events) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def synth(self, text: str, voice: str, pitch: int, rate: int, seed: int,
              volume: int = 60) -> np.ndarray:
        """Synthesise ``text`` on a flat pitch.

        Parameters
        ----------
        text : syllable or short word.
        voice : espeak voice name, e.g. ``"de+f3"``.
        pitch : espeak pitch 0-99 (pitch range is set to 0, so the note is flat).
        rate : words per minute, 80-450.
        seed : seed for espeak's and libc's random generators (breath noise).
        volume : espeak volume 0-200; 60 stays clear of espeak's clipping AGC.

        Returns
        -------
        np.ndarray, float32, shape (n,), at 22050 Hz, in [-1, 1].
        """
        lib = self._lib
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"unknown espeak voice {voice!r}")
        for param, value in ((_PARAM_RATE, rate), (_PARAM_VOLUME, volume),
                             (_PARAM_PITCH, pitch), (_PARAM_RANGE, 0)):
            lib.espeak_SetParameter(param, int(value), 0)
        lib.espeak_ng_SetRandSeed(int(seed))
        self._libc.srand(ctypes.c_uint(int(seed) & 0xFFFFFFFF))
        self._chunks = []
        buf = text.encode("utf-8") + b"\0"
        status = lib.espeak_Synth(buf, len(buf), 0, 0, 0, 0, None, None)
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status}")
        if not self._chunks:
            return np.zeros(0, np.float32)
        return (np.concatenate(self._chunks).astype(np.float32) / 32768.0)
