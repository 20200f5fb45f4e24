"""What the tests that run a docs page as written share: its code blocks and the CLI."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASK_DOC = ROOT / "docs" / "adding-a-task.md"


def block(name: str, lang: str = "python", doc: Path = TASK_DOC) -> str:
    """The code block the page introduces with "Save this as `name`:"."""
    code = re.search(rf"Save this as `{re.escape(name)}`:\n\n```{lang}\n(.*?)```", doc.read_text(), re.S)
    assert code, f"the walk-through lost its {name} block"
    return code.group(1)


def explbench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``explbench ARGS`` in ``cwd``, as a user types it (one torch thread: CI cores are shared)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "explbench.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
