from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugin_utils import install_fake_distribution, uninstall
from xlbench.errors import ConfigError
from xlbench.method import METHODS, get_method
from xlbench.registry import Registry

GROUP = "xlbench.test_things"


@pytest.fixture
def fake_dists(tmp_path: Path):
    roots = []

    def make(dist: str, eps: dict[str, str], modules: dict[str, str]) -> None:
        root = tmp_path / dist
        install_fake_distribution(root, dist, "1.2.3", {GROUP: eps}, modules)
        roots.append((root, list(modules)))

    yield make
    for root, mods in roots:
        uninstall(root, mods)


def test_builtins_are_entry_points_of_xlbench() -> None:
    reg = METHODS.registration("crosslingual")
    assert reg.distribution == "xlbench"
    assert reg.target == "xlbench_baselines.bounds:CrossLingual"
    assert {"crosslingual", "multilingual", "pseudolabel", "dann", "nnpm"} <= set(METHODS.names())


def test_lazy_loading_imports_only_on_use(fake_dists) -> None:
    fake_dists("lazy-plugin", {"thing": "lazy_plugin_mod:Thing"}, {"lazy_plugin_mod": "class Thing:\n    value = 42\n"})
    import sys

    reg: Registry = Registry(GROUP, "thing")
    assert reg.names() == ["thing"]
    assert "lazy_plugin_mod" not in sys.modules  # listing does not import
    assert reg.registration("thing").status == "not loaded"
    assert reg.get("thing").value == 42
    assert reg.registration("thing").status == "ok"
    assert reg.registration("thing").distribution == "lazy-plugin"
    assert reg.registration("thing").version == "1.2.3"


def test_broken_plugin_is_listed_and_fails_only_when_used(fake_dists) -> None:
    fake_dists("good-plugin", {"good": "good_mod:Good"}, {"good_mod": "class Good: ...\n"})
    fake_dists("bad-plugin", {"bad": "bad_mod:Bad"}, {"bad_mod": "import does_not_exist_anywhere\n"})
    reg: Registry = Registry(GROUP, "thing")
    listing = {r.name: r for r in reg.try_load_all()}
    assert listing["good"].status == "ok"
    assert listing["bad"].status == "broken"
    assert "does_not_exist_anywhere" in listing["bad"].error
    assert reg.get("good").__name__ == "Good"
    with pytest.raises(ConfigError, match=r"'bad' \(from bad-plugin\) failed to load: ModuleNotFoundError"):
        reg.get("bad")


def test_duplicate_name_is_an_error_naming_both_distributions(fake_dists) -> None:
    fake_dists("first-dist", {"same": "first_mod:A"}, {"first_mod": "class A: ...\n"})
    fake_dists("second-dist", {"same": "second_mod:B"}, {"second_mod": "class B: ...\n"})
    reg: Registry = Registry(GROUP, "thing")
    assert reg.registration("same").status == "conflict"
    with pytest.raises(ConfigError) as err:
        reg.get("same")
    msg = str(err.value)
    assert "registered twice" in msg and "first-dist" in msg and "second-dist" in msg


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"unknown method 'pseudolable' \(did you mean 'pseudolabel'\?\)"):
        get_method("pseudolable")
    with pytest.raises(ConfigError, match="known: "):
        get_method("zzzz")


def test_register_in_code_and_conflict() -> None:
    reg: Registry = Registry(GROUP + ".empty", "widget")
    reg.register("w", int, distribution="mine")
    assert reg.get("w") is int
    reg.register("w", float, distribution="theirs")
    with pytest.raises(ConfigError, match="mine and by theirs"):
        reg.get("w")
