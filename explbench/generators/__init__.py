"""Ground-truth generators; importing this package registers them.

``cw-spectrogram`` and ``cw-waveform`` (adversarial, :mod:`.cw`), ``localized`` (derived k-segment
cases, :mod:`.localized`) and ``planted`` (voice-like patterns drawn into chosen segments,
:mod:`.planted`).
"""

from explbench.generators import cw as _cw  # noqa: F401
from explbench.generators import localized as _localized  # noqa: F401
from explbench.generators import planted as _planted  # noqa: F401
from explbench.generators.cw import CWSpectrogram, CWWaveform
from explbench.generators.localized import Localized
from explbench.generators.planted import Planted

__all__ = ["CWSpectrogram", "CWWaveform", "Localized", "Planted"]
