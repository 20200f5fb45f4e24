import os
import tempfile
from pathlib import Path

# Songs and cases are cached per machine; tests share one cache so repeated runs are fast,
# without touching the user's own cache.
os.environ.setdefault("EXPLBENCH_CACHE", str(Path(tempfile.gettempdir()) / "explbench-test-cache"))
