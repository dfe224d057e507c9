"""kdlib's layout: every module declares its public names (a typed ``__all__``), and ``import kdlib`` exports them."""

import importlib
import pkgutil

import kdlib


def test_every_module_has_a_typed_complete_all():
    modules = [m.name for m in pkgutil.iter_modules(kdlib.__path__)]
    assert len(modules) <= 14, modules  # issue 12: at most 14 modules
    for name in modules:
        mod = importlib.import_module(f"kdlib.{name}")
        assert mod.__annotations__.get("__all__") == "list[str]", f"kdlib.{name}.__all__ is not typed list[str]"
        assert all(hasattr(mod, n) for n in mod.__all__), f"kdlib.{name}.__all__ names something it lacks"
        public = {n for n, v in vars(mod).items()
                  if not n.startswith("_") and n != "main" and getattr(v, "__module__", None) == mod.__name__}  # main: a CLI
        assert public <= set(mod.__all__), f"kdlib.{name} defines {sorted(public - set(mod.__all__))} outside __all__"
        if name != "plots":  # kdlib.plots stays out of `import kdlib` (no matplotlib import)
            assert set(mod.__all__) <= set(kdlib.__all__), f"kdlib.__all__ lacks kdlib.{name}'s names"
            assert all(getattr(kdlib, n) is getattr(mod, n) for n in mod.__all__)
