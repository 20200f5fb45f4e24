"""Ground-truth generators; importing this package registers them.

``cw-spectrogram`` and ``cw-waveform`` (adversarial, :mod:`.cw`), ``localized`` (derived k-segment
cases, :mod:`.localized`) and ``planted`` (voice-like patterns drawn into chosen segments,
:mod:`.planted`).

Every case carries ``info["cluster"]`` (its unit of independence); the base generators take at
most ``per_cluster`` excerpts from one cluster. Localised and planted cases record which of
their claimed segments are individually necessary (``Case.necessary_segments``). Every generator
is a :class:`explbench.api.generator.Generator` with a hand-kept case-set ``version`` (bumped
when its output changes; ``tests/test_case_versions.py`` holds golden content hashes). The hash
of its source files (:data:`.common.SHARED_SOURCES` and its own module) only keys the case
cache, so that edited code never reuses stale cases; it never decides what may be compared.
"""

from explbench.generators import cw as _cw  # noqa: F401
from explbench.generators import localized as _localized  # noqa: F401
from explbench.generators import planted as _planted  # noqa: F401
from explbench.generators.cw import CWSpectrogram, CWWaveform
from explbench.generators.localized import Localized
from explbench.generators.planted import Planted

__all__ = ["CWSpectrogram", "CWWaveform", "Localized", "Planted"]
