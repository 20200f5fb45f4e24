"""Ground-truth generators; importing this package registers them.

``cw-spectrogram`` and ``cw-waveform`` (adversarial, :mod:`.cw`), ``localized`` (derived k-segment
cases, :mod:`.localized`) and ``planted`` (voice-like patterns drawn into chosen segments,
:mod:`.planted`).

Every case carries ``info["cluster"]`` (its unit of independence); the base generators take at
most ``per_cluster`` excerpts from one cluster. Localised and planted cases record which of
their claimed segments are individually necessary (``Case.necessary_segments``). Every generator
class has a ``version``, a hash of its source and the sources it depends on
(:func:`.common.generator_version`), which the runner puts into the case-cache key.
"""

from explbench.generators import cw as _cw  # noqa: F401
from explbench.generators import localized as _localized  # noqa: F401
from explbench.generators import planted as _planted  # noqa: F401
from explbench.generators.cw import CWSpectrogram, CWWaveform
from explbench.generators.localized import Localized
from explbench.generators.planted import Planted

__all__ = ["CWSpectrogram", "CWWaveform", "Localized", "Planted"]
