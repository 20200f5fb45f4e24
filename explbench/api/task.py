"""The task contract: a named, versioned classifier problem and the excerpts it draws.

A :class:`Task` turns waveforms into the *explanation domain* (``to_domain``) and classifies
points of that domain (``classifier``); generators draw labelled :class:`Excerpt` objects from
it. ``docs/adding-a-task.md`` walks through writing one; ``explbench check-task NAME`` checks it
(:mod:`explbench.checks.task_checks`).

Required members
----------------
``name``, ``classes``, ``sample_rate``, ``excerpt_samples``, ``domain_shape``, ``domain_axes``,
``to_domain``, ``classifier``, ``excerpts``; ``decide`` (argmax) and ``cluster`` (the song) have
defaults that suit most tasks.

Optional hooks
--------------
Generators and explainers name the hooks they need (:data:`HOOKS`); a run whose suite needs a
hook the task lacks stops before it starts and says which generator needs which hook and how to
write it (:func:`explbench.run.requirements.require_hooks`). Every hook has a safe default here:
``magnitude`` / ``magnitude_to_domain`` (the spectrogram attack space; default ``None``: absent),
``attack_defaults`` (``{}``), ``band_frequencies`` (``None``), ``frame_rate`` (``None``),
``resynthesize`` and ``sonify`` (raise ``NotImplementedError``), ``stems`` (``()``: excerpts
carry no sources), ``device`` (``"cpu"``), ``unsupported`` (``{}``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator, Mapping

import numpy as np
import torch


@dataclass(frozen=True)
class Excerpt:
    """One labelled excerpt of audio.

    Attributes
    ----------
    audio : np.ndarray, shape (n_samples,), float32
        Mono waveform at the task's sample rate, in [-1, 1].
    label : int
        Ground-truth class index into ``Task.classes`` (svd: 0 = no voice, 1 = voice).
    song_seed : int
        Identifies the recording the excerpt was cut from (svd-synth: the song's seed; other
        tasks: any stable integer, e.g. the index of the file).
    offset : float
        Start of the excerpt in that recording, seconds.
    stems : dict of str to np.ndarray, optional
        Per-source waveforms of shape (n_samples,) that add up to ``audio``; their names are
        the task's ``stems``.
    group : str, optional
        The excerpt's unit of independence when it is not the recording (e.g. the artist or the
        album); :meth:`Task.cluster` returns it when set.
    info : mapping, optional
        JSON-serialisable details (svd-synth: ``has_choir``); ``explbench evaluate`` reports
        accuracy per value of every boolean entry.
    """

    audio: np.ndarray
    label: int
    song_seed: int
    offset: float
    stems: dict[str, np.ndarray] | None = None
    group: str | None = None
    info: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- domain axes

#: axis names a task may use in ``domain_axes``, by the kind of axis they are
AXIS_NAMES: dict[str, tuple[str, ...]] = {
    "frequency": ("frequency", "band", "mel band", "mel", "bin", "frequency bin", "channel"),
    "time": ("time", "frame", "sample", "chunk"),
}
#: the axis orders the harness handles, with what they are
AXIS_ORDERS: dict[tuple[str, ...], str] = {
    ("frequency", "time"): "band-major time-frequency domain (frequency rows x time frames, e.g. mel band x frame)",
    ("time", "frequency"): "time-major time-frequency domain (e.g. PANNs, AST: frame x mel band)",
    ("time",): "1-D waveform domain (e.g. wav2vec2: samples), scored with time segments",
}


def axis_kind(name: str) -> str:
    """``"frequency"`` or ``"time"`` for an axis name of ``domain_axes``.

    Raises
    ------
    ValueError
        For a name of neither kind, listing the names that are understood.
    """
    key = str(name).strip().lower()
    for kind, names in AXIS_NAMES.items():
        if key in names:
            return kind
    known = "; ".join(f"{kind}: {', '.join(repr(n) for n in names)}" for kind, names in AXIS_NAMES.items())
    raise ValueError(f"unknown axis name {name!r} in domain_axes; use one of {known}")


def axis_order(domain_axes: tuple[str, ...], domain_shape: tuple[int, ...] | None = None) -> tuple[str, ...]:
    """The kinds of a domain's axes, e.g. ``("frequency", "time")``; refuses an unknown order.

    Parameters
    ----------
    domain_axes : tuple of str
        A task's ``domain_axes``, e.g. ``("mel band", "frame")``.
    domain_shape : tuple of int, optional
        When given, must have one entry per axis.

    Raises
    ------
    ValueError
        For an unknown axis name, a length that does not match ``domain_shape``, or an order
        the harness does not handle (see :data:`AXIS_ORDERS`).
    """
    axes = tuple(domain_axes)
    if not axes:
        raise ValueError("domain_axes is empty; name every axis of the domain, e.g. "
                         "domain_axes = ('mel band', 'frame')")
    if domain_shape is not None and len(axes) != len(domain_shape):
        raise ValueError(f"domain_axes {axes} names {len(axes)} axes but domain_shape "
                         f"{tuple(domain_shape)} has {len(domain_shape)}; give one name per axis")
    kinds = tuple(axis_kind(a) for a in axes)
    if kinds not in AXIS_ORDERS:
        known = "; ".join(f"{' x '.join(k)} ({v})" for k, v in AXIS_ORDERS.items())
        raise ValueError(f"domain_axes {axes} is a {' x '.join(kinds)} domain, which the harness does "
                         f"not handle; the known orders are: {known}")
    return kinds


def time_axis(task: object) -> int | None:
    """The index of the time axis in ``task``'s domain, read from its ``domain_axes``.

    ``None`` for a task that declares no ``domain_axes`` (the harness then assumes frequency x
    time, as for svd-synth). Raises ValueError, as :func:`axis_order` does, for axes it cannot read.
    """
    return time_axis_of(getattr(task, "domain_axes", ()), getattr(task, "domain_shape", ()))


def time_axis_of(domain_axes: tuple[str, ...] | None, domain_shape: tuple[int, ...] | None = None) -> int | None:
    """:func:`time_axis` from the declarations themselves (e.g. as a run's provenance records them)."""
    axes = tuple(domain_axes or ())
    if not axes:
        return None
    return axis_order(axes, tuple(domain_shape or ()) or None).index("time")


def task_segmentation(task: object, spec: str, shape: tuple[int, ...] | None = None):
    """The segmentation ``spec`` (e.g. ``"grid:5x4"``) laid over ``task``'s domain, time axis and all.

    ``shape`` defaults to the task's ``domain_shape``; returns a
    :class:`explbench.core.segmentation.Segmentation`.
    """
    from explbench.core.segmentation import from_spec

    shape = tuple(shape if shape is not None else getattr(task, "domain_shape", ()))
    return from_spec(spec, shape, time_axis=time_axis(task))


# --------------------------------------------------------------------------- hooks


@dataclass(frozen=True)
class Hook:
    """An optional member of :class:`Task` that some generators or explainers need.

    Attributes
    ----------
    name : str
    signature : str
        How to write it, as it would appear in the task class.
    what : str
        What it is for, in plain words.
    """

    name: str
    signature: str
    what: str


#: every optional hook, by name; messages about missing hooks quote these
HOOKS: dict[str, Hook] = {h.name: h for h in (
    Hook("magnitude", "def magnitude(self, audio: torch.Tensor) -> torch.Tensor  # (B, n) -> (B, F, T) |STFT|",
         "the attack space of the spectrogram attack: a non-negative magnitude spectrogram of the waveform"),
    Hook("magnitude_to_domain", "def magnitude_to_domain(self, mag: torch.Tensor) -> torch.Tensor  # (B, F, T) -> (B, *domain_shape)",
         "maps that magnitude into the explanation domain, differentiably, so that "
         "magnitude_to_domain(magnitude(audio)) == to_domain(audio)"),
    Hook("attack_defaults", "attack_defaults = {'cw-waveform': {'eps': 0.01}, 'spectrogram': {'eps': 0.1}}",
         "attack parameters suited to the task, by generator name or attack space"),
    Hook("band_frequencies", "band_frequencies = np.array([...])  # Hz, one per frequency row, ascending",
         "the centre frequency of every frequency row of the domain (the planted patterns draw harmonics there)"),
    Hook("frame_rate", "frame_rate = 16000 / 128  # frames per second of the time axis",
         "frames per second of the domain's time axis"),
    Hook("resynthesize", "def resynthesize(self, audio: np.ndarray, target: np.ndarray) -> np.ndarray",
         "a waveform near `audio` whose domain image approximates `target` (hands listening "
         "explainers a waveform for an input modified in the domain)"),
    Hook("sonify", "def sonify(self, audio: np.ndarray, mask: np.ndarray) -> np.ndarray",
         "renders a domain mask back to sound (the report's listenable explanations)"),
    Hook("stems", "stems = ('vocals', 'accompaniment')  # and every Excerpt carries stems= these sources",
         "names of the sources every excerpt carries in Excerpt.stems, adding up to its audio"),
    Hook("device", "self.device = torch.device(device)  # where the classifier's weights live",
         "the torch device of the model"),
)}


class Task(ABC):
    """A named, versioned classifier problem.

    The explanation domain is what explainers perturb; ``to_domain`` maps waveforms into it
    (differentiably), and ``classifier`` maps it to class probabilities. A subclass sets the
    class attributes below and implements the three abstract methods; everything else has a
    default. See ``docs/adding-a-task.md``.
    """

    # -- required declarations ---------------------------------------------------------------
    #: registry name, e.g. "svd-synth"
    name: ClassVar[str] = ""
    #: one line shown by ``explbench list tasks``
    description: ClassVar[str] = ""
    #: bump when the task's definition changes (part of every case-cache key)
    version: ClassVar[str] = "0"
    #: class names; ``classifier`` returns one probability per class, in this order
    classes: ClassVar[tuple[str, ...]] = ()
    #: Hz, of ``Excerpt.audio`` and of the waveforms ``to_domain`` receives
    sample_rate: ClassVar[int] = 22050
    #: samples in one excerpt
    excerpt_samples: ClassVar[int] = 0
    #: shape of one input in the explanation domain, e.g. (80, 115)
    domain_shape: ClassVar[tuple[int, ...]] = ()
    #: names of the explanation domain's axes, e.g. ("mel band", "frame"); see :data:`AXIS_ORDERS`
    domain_axes: ClassVar[tuple[str, ...]] = ()
    #: True when classes are not exclusive (probabilities need not sum to 1)
    multi_label: ClassVar[bool] = False

    # -- optional hooks (safe defaults; see HOOKS) ---------------------------------------------
    #: ``magnitude(audio (B, n)) -> (B, F, T)``: the spectrogram attack's space; None: absent
    magnitude: ClassVar[Callable[..., torch.Tensor] | None] = None
    #: ``magnitude_to_domain(mag (B, F, T)) -> (B, *domain_shape)``; None: absent
    magnitude_to_domain: ClassVar[Callable[..., torch.Tensor] | None] = None
    #: attack parameters by generator name or attack space, e.g. {"cw-waveform": {"eps": 0.005}}
    attack_defaults: ClassVar[dict[str, dict[str, float]]] = {}
    #: centre frequency (Hz) of each frequency row of the domain, ascending; None: unknown
    band_frequencies: ClassVar[np.ndarray | None] = None
    #: frames per second of the domain's time axis; None: unknown
    frame_rate: ClassVar[float | None] = None
    #: names of the sources in every ``Excerpt.stems``; () when excerpts carry none
    stems: ClassVar[tuple[str, ...]] = ()
    #: torch device of the classifier (tasks that can move set ``self.device`` in ``__init__``)
    device: torch.device | str = "cpu"
    #: generators or explainers that cannot work on this task, with the reason, e.g.
    #: {"cw-spectrogram": "the model's input is a waveform; there is no magnitude to attack"}
    unsupported: ClassVar[dict[str, str]] = {}

    # -- required methods --------------------------------------------------------------------

    @abstractmethod
    def to_domain(self, audio: torch.Tensor) -> torch.Tensor:
        """Waveforms ``(B, excerpt_samples)`` to explanation-domain inputs ``(B, *domain_shape)``.

        Must be differentiable: the waveform attack and gradient checks send gradients through it.
        """

    @abstractmethod
    def classifier(self) -> torch.nn.Module:
        """Module mapping ``(B, *domain_shape)`` to class probabilities ``(B, C)``, C = len(classes).

        In eval mode (two forwards agree), with outputs independent of the batch size, and
        differentiable with respect to its input.
        """

    def decide(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Labels ``(B,)`` from probabilities ``(B, C)``; argmax unless a task says otherwise."""
        return probabilities.argmax(dim=-1)

    @abstractmethod
    def excerpts(self, split: str, n: int, seed: int) -> Iterator[Excerpt]:
        """``n`` labelled excerpts of ``split`` ('train', 'valid' or 'test'), drawn by ``seed``.

        The same arguments give the same excerpts; no recording appears in two splits. A task
        may offer fewer splits (a pretrained model needs only 'test'): it raises ValueError
        naming the splits it has. A task may also take ``per_cluster`` (at most that many
        excerpts of each class from one cluster).
        """

    def cluster(self, excerpt: Excerpt) -> str:
        """The unit of independence an excerpt belongs to (cases of one cluster are correlated).

        Default: ``excerpt.group`` when set, else ``str(excerpt.song_seed)`` (the recording).
        """
        return excerpt.group if excerpt.group is not None else str(excerpt.song_seed)

    # -- optional methods --------------------------------------------------------------------

    def sonify(self, audio: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Render a domain mask back to sound: keep what ``mask`` ``(*domain_shape)`` keeps.

        Returns a waveform of the same length as ``audio`` ``(excerpt_samples,)``. Tasks whose
        domain has no way back to audio raise NotImplementedError.
        """
        raise NotImplementedError(f"task {self.name!r} cannot render masks to audio")

    def resynthesize(self, audio: np.ndarray, target: np.ndarray) -> np.ndarray:
        """A waveform near ``audio`` whose domain image approximates ``target`` (domain shape).

        Used to hand sound-based explainers a waveform for inputs that were modified in the
        domain. Tasks without a way back to audio raise NotImplementedError.
        """
        raise NotImplementedError(f"task {self.name!r} cannot resynthesize audio")

    def model_hash(self) -> str:
        """Content hash of the model weights (provenance and case-cache keys)."""
        return "none"

    @classmethod
    def train(cls, out: str, *, steps: int | None = None, seed: int = 0, progress: bool = True) -> dict:
        """Train the task's model into folder ``out``; returns a JSON-serialisable record."""
        raise NotImplementedError(f"task {cls.name!r} has no training procedure in explbench")

    def data_version(self) -> str:
        """Version string of the data the excerpts come from (part of every case-cache key)."""
        return self.version


def has_hook(task: object, name: str) -> bool:
    """Whether ``task`` provides the optional hook ``name`` (see :data:`HOOKS`).

    A method hook counts when it is callable and, for ``resynthesize`` and ``sonify``, when the
    task overrides :class:`Task`'s default; a value hook counts when it is set.

    Raises
    ------
    ValueError
        For a name that is not a hook.
    """
    if name not in HOOKS:
        raise ValueError(f"unknown task hook {name!r}; hooks are {', '.join(HOOKS)}")
    if name in ("magnitude", "magnitude_to_domain"):
        return callable(getattr(task, name, None))
    if name in ("resynthesize", "sonify"):
        fn = getattr(type(task), name, None)
        return callable(fn) and fn is not getattr(Task, name)
    if name in ("band_frequencies", "frame_rate"):
        return getattr(task, name, None) is not None
    if name in ("stems", "attack_defaults"):
        return bool(getattr(task, name, None))
    return getattr(task, name, None) is not None  # device
