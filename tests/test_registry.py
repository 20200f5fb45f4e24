import sys
import textwrap

import pytest

from explbench.api import registry
from explbench.api.registry import Registry, UnknownName


def test_decorator_registers_and_describes():
    reg = Registry("widgets")

    @reg.register("blue")
    class Blue:
        """A blue widget.

        More text."""

    assert reg.get("blue") is Blue
    assert reg.entries()[0].description == "A blue widget."


def test_unknown_name_lists_known_ones_and_suggests():
    reg = Registry("widgets")
    reg.add("alpha", object())
    reg.add("beta", object())
    with pytest.raises(UnknownName) as err:
        reg.get("alpah")
    msg = str(err.value)
    assert "unknown widget 'alpah'" in msg and "alpha, beta" in msg and "Did you mean 'alpha'" in msg


def test_duplicate_name_is_refused():
    reg = Registry("widgets")
    reg.add("x", int)
    reg.add("x", int)  # the same object again is harmless (re-import)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("x", float)


def test_entry_points_are_discovered(tmp_path, monkeypatch):
    pkg = tmp_path / "my_ext.py"
    pkg.write_text(textwrap.dedent('''
        class Thing:
            """A thing from an installed package."""
    '''))
    dist = tmp_path / "my_ext-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-ext\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[explbench.gadgets]\nthing = my_ext:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("gadgets")
    assert reg.names() == ["thing"]
    assert reg.get("thing").__doc__.strip().startswith("A thing")
    sys.modules.pop("my_ext", None)


def test_broken_entry_point_names_itself(tmp_path, monkeypatch):
    dist = tmp_path / "bad_ext-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bad-ext\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[explbench.gizmos]\nbroken = no_such_module_xyz:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(registry.BrokenPlugin), pytest.raises(ImportError, match="entry point 'broken'.*no_such_module_xyz"):
        Registry("gizmos").get("broken")


def test_builtin_registries_hold_the_shipped_task():
    assert "svd-synth" in registry.tasks
    with pytest.raises(UnknownName, match="svd-synth"):
        registry.tasks.get("svd-jamendo-typo")


def test_broken_entry_point_does_not_hide_the_others(tmp_path, monkeypatch):
    (tmp_path / "good_ext.py").write_text('class Good:\n    """A working plug-in."""\n')
    dist = tmp_path / "mixed_ext-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mixed-ext\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[explbench.doohickeys]\na-broken = no_such_module_abc:Thing\nb-good = good_ext:Good\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("doohickeys")
    with pytest.warns(registry.BrokenPlugin, match="entry point 'a-broken'.*no_such_module_abc"):
        assert reg.names() == ["b-good"]
    assert reg.get("b-good").__name__ == "Good"
    assert "a-broken" in reg.broken
    with pytest.raises(ImportError, match="entry point 'a-broken'"):
        reg.get("a-broken")
    sys.modules.pop("good_ext", None)
