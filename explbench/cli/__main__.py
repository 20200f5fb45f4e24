"""``python -m explbench.cli``: the same command as ``explbench``."""

from explbench.cli import main

raise SystemExit(main())
