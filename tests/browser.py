"""What the tests that open a page in headless Chromium share: finding it, and the check."""

import importlib.util
import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
#: CI sets it: a missing browser fails the browser checks instead of skipping them
REQUIRE = "EXPLBENCH_REQUIRE_BROWSER"


def chromium() -> str:
    """The Chromium to use; skips the test without one, fails instead when it is required."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{REQUIRE}=1 but there is no Chromium at {CHROMIUM}: the HTML board must be "
                    f"checked in a real browser here (apt-get install -y chromium)")
    pytest.skip(f"headless check needs Chromium at {CHROMIUM} (apt-get install -y chromium); "
                f"set {REQUIRE}=1 to make its absence a failure")


def browser_check():
    path = Path(__file__).resolve().parent.parent / "scripts" / "browser_check.py"
    spec = importlib.util.spec_from_file_location("browser_check", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
