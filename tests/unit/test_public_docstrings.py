"""Every public function, class and method that the API reference (docs/api.md) documents has
a docstring of its own, so the generated reference never shows an empty entry."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

API_PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def documented_modules() -> list[str]:
    """The modules named by the ``::: module`` directives of the API reference page."""
    return re.findall(r"^:::\s*([\w.]+)\s*$", API_PAGE.read_text(encoding="utf-8"), re.M)


def public_objects(module: ModuleType) -> dict[str, object]:
    """What the reference shows of a module: its ``__all__``, else its own public names."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return {name: getattr(module, name) for name in names}
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module.__name__
    }


def own_doc(obj: object) -> str | None:
    """The docstring written for ``obj`` itself: not inherited, not made by ``dataclass``."""
    if inspect.isclass(obj):
        doc = vars(obj).get("__doc__")
        generated = dataclasses.is_dataclass(obj) and (doc or "").startswith(f"{obj.__name__}(")
        return None if generated else doc
    return getattr(obj, "__doc__", None)


def public_methods(cls: type) -> dict[str, object]:
    """Methods and properties defined in ``cls`` itself (inherited ones are the parent's)."""
    methods: dict[str, object] = {}
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, (staticmethod, classmethod)):
            methods[name] = member.__func__
        elif isinstance(member, property):
            methods[name] = member.fget
        elif inspect.isfunction(member):
            methods[name] = member
    return methods


def undocumented(module: ModuleType) -> list[str]:
    """``module:name`` (or ``module:Class.method``) of every public object without a docstring."""
    missing = []
    for name, obj in public_objects(module).items():
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue  # constants and instances carry no docstring of their own
        if not (own_doc(obj) or "").strip():
            missing.append(f"{module.__name__}:{name}")
        if inspect.isclass(obj):
            for method, function in public_methods(obj).items():
                if not (own_doc(function) or "").strip():
                    missing.append(f"{module.__name__}:{name}.{method}")
    return missing


def test_the_reference_names_the_public_api() -> None:
    assert "nuclei.api" in documented_modules()


@pytest.mark.parametrize("module_name", documented_modules())
def test_every_public_object_has_a_docstring(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert (module.__doc__ or "").strip(), f"{module_name} has no module docstring"
    assert undocumented(module) == []


def test_a_missing_docstring_is_found() -> None:
    """The check itself fails on an undocumented function, method and dataclass."""
    module = ModuleType("fake_module", "A module.")

    def documented() -> None:
        """Has one."""

    def bare() -> None:
        pass

    @dataclasses.dataclass
    class Settings:
        size: int = 1

        def method(self) -> None:
            pass

    for obj in (documented, bare, Settings):
        obj.__module__ = module.__name__
        setattr(module, obj.__name__, obj)

    assert undocumented(module) == [
        "fake_module:bare",
        "fake_module:Settings",
        "fake_module:Settings.method",
    ]
