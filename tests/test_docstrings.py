"""Every public module class of speechbrain_ext.nnet is documented as upstream's are:
an Arguments section (when it takes arguments), a runnable Example, a docstring on
its forward."""

import importlib
import inspect
import pkgutil

import pytest

import speechbrain_ext.nnet

MODULES = [importlib.import_module(f"speechbrain_ext.nnet.{m.name}")
           for m in pkgutil.iter_modules(speechbrain_ext.nnet.__path__)]
CLASSES = [(module.__name__, name, cls) for module in MODULES
           for name, cls in vars(module).items()
           if inspect.isclass(cls) and cls.__module__ == module.__name__
           and not name.startswith("_")]


def test_the_nnet_package_has_classes():
    assert len(CLASSES) >= 15


@pytest.mark.parametrize("module,name,cls", CLASSES, ids=[f"{m}.{n}" for m, n, _ in CLASSES])
def test_public_class_is_documented(module, name, cls):
    doc = inspect.getdoc(cls) or ""
    params = [p for p in inspect.signature(cls.__init__).parameters.values()
              if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if params:
        assert "Arguments\n---------" in doc, f"{module}.{name}: no Arguments section"
        for param in params:
            assert f"{param.name} :" in doc or f", {param.name}" in doc or \
                f"{param.name}," in doc, f"{module}.{name}: argument {param.name} undocumented"
    assert "Example\n-------" in doc and ">>>" in doc, f"{module}.{name}: no Example"
    if "forward" in vars(cls):
        assert (cls.forward.__doc__ or "").strip(), f"{module}.{name}.forward has no docstring"
