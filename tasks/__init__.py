"""Tasks shipped with explbench; importing this package registers them."""

from explbench.tasks.audio_folder import task as _audio_folder  # noqa: F401  (registers audio-folder)
from explbench.tasks.svd import jamendo as _jamendo  # noqa: F401  (registers svd-jamendo)
from explbench.tasks.svd import task as _svd  # noqa: F401  (registers svd-synth)
from explbench.tasks.vad import task as _vad  # noqa: F401  (registers vad-silero)
