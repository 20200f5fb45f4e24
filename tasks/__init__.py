"""Tasks shipped with explbench; importing this package registers them."""

from explbench.tasks.svd import task as _svd  # noqa: F401  (registers svd-synth)
