"""kzoo's classes known to ``keras.saving`` as soon as Keras is imported, whichever kzoo module was.

``import kzoo`` does not import Keras (the command line chooses the backend
first), and kzoo's classes register themselves with
``@keras.saving.register_keras_serializable(package="kzoo")`` only when their
module is imported. So that ``import kzoo; keras.models.load_model("vat.keras")``
works in a fresh process, ``import kzoo`` calls :func:`install`:

* if Keras is already imported, every name of :data:`SERIALIZABLES` is entered
  in Keras' custom objects now;
* otherwise a one-shot import hook enters them right after ``keras`` itself has
  been imported (whatever imports it: the user, the CLI, a kzoo module).

An entry is a stand-in that imports the kzoo module defining the class on
first use (``from_config``) and hands over to the real class, which has by
then replaced the stand-in in the registry. Nothing of kzoo is imported while
Keras is being imported, so no import cycle can arise. This module itself uses
the standard library only.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

# Keras' registered name -> the module whose import registers it (tests/test_saving.py checks both ways).
SERIALIZABLES = {
    "kzoo>Regularized": "kzoo.core",
    "kzoo>Sum": "kzoo.core",
    "kzoo>SGDWithL2": "kzoo.ops",
    "kzoo>LinearDecay": "kzoo.ops",
    "kzoo>StepDecay": "kzoo.ops",
    "kzoo>VAT": "kzoo.vat",
    "kzoo>RPT": "kzoo.vat",
    "kzoo>AdversarialTraining": "kzoo.vat",
    "kzoo>EntropyMinimization": "kzoo.vat",
    "kzoo>ManifoldMixup": "kzoo.mixup",
    "kzoo>InputMixup": "kzoo.mixup",
    "kzoo>MeanTeacher": "kzoo.consistency",
    "kzoo>FixMatch": "kzoo.consistency",
    "kzoo>ManifoldGAN": "kzoo.gan",
    "kzoo>AmbientSmoothness": "kzoo.gan",
    "kzoo>WeightNormDense": "kzoo.networks.gan",
    "kzoo>WeightNormConv2D": "kzoo.networks.gan",
    "kzoo>WeightNormConv2DTranspose": "kzoo.networks.gan",
    "kzoo>Maxout": "kzoo.networks.ali",
    "kzoo>ChannelMaxout": "kzoo.networks.ali",
    "kzoo>ALI": "kzoo.ali",
    "kzoo>LVAT": "kzoo.lvat",
    "kzoo>VAE": "kzoo.networks.vae",
    "kzoo>ActNorm": "kzoo.networks.glow",
    "kzoo>InvertibleConv1x1": "kzoo.networks.glow",
    "kzoo>AffineCoupling": "kzoo.networks.glow",
    "kzoo>FlowStep": "kzoo.networks.glow",
    "kzoo>Glow": "kzoo.networks.glow",
}

# kzoo 0.1 saved a regularizer as {"class_name": "kzoo.vat.VAT", "config": ...}: the same table, by full name.
LEGACY_NAMES = {f"{module}.{name.partition('>')[2]}": name for name, module in SERIALIZABLES.items()}


def _names_kzoo(config):
    module, name, registered = (config.get(k) for k in ("module", "class_name", "registered_name"))
    return any(isinstance(v, str) and (v == "kzoo" or v.startswith(prefix))
               for v, prefix in ((module, "kzoo."), (name, "kzoo."), (name, "kzoo>"), (registered, "kzoo>")))


def registered_name(config):
    """The registered name (a key of :data:`SERIALIZABLES`) of a saved ``config`` that names a kzoo class.

    None when ``config`` names no kzoo class (not a dict, or a Keras or user class). A config that names kzoo
    in its ``module``, ``class_name`` or ``registered_name`` must name, consistently, a class of the fixed
    table (module included); anything else raises ``InvalidArgumentError`` naming the class. Nothing is
    imported: a file never chooses which module loads.
    """
    if not isinstance(config, dict) or not _names_kzoo(config):
        return None
    module, name, registered = (config.get(k) for k in ("module", "class_name", "registered_name"))
    shown = ".".join(str(v) for v in (module, name) if v) or repr(registered)
    if registered is None and module is None:
        registered = LEGACY_NAMES.get(name)
    elif registered is None and isinstance(name, str) and name.startswith("kzoo>"):
        registered = name
    ok = (registered in SERIALIZABLES and (module is None or module == SERIALIZABLES[registered])
          and name in (registered, registered.partition(">")[2], f"{SERIALIZABLES[registered]}."
                       f"{registered.partition('>')[2]}"))
    if not ok:
        from kzoo.errors import InvalidArgumentError  # (``import kzoo`` imports this module only)

        raise InvalidArgumentError(
            f"refusing to load {shown}: it is not a class kzoo registered (kzoo loads only its own classes, "
            "from a fixed table, and never imports a module a file names); was this file crafted, or saved "
            "by another kzoo version?")
    return registered


def check_config(config):
    """Walk a saved config (nested dicts and lists) and check every kzoo class it names
    (:func:`registered_name`); raises ``InvalidArgumentError`` on the first unknown one. Returns ``config``."""
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            registered_name(item)
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return config


def lookup(registered):
    """The class registered under ``registered`` (a key of :data:`SERIALIZABLES`), its module imported if
    needed (Keras must be imported)."""
    cls = sys.modules["keras"].saving.get_custom_objects().get(registered)
    if cls is None:
        cls = _Deferred(registered, SERIALIZABLES[registered])
    return cls.resolve() if isinstance(cls, _Deferred) else cls


class _Deferred:
    """Stands in Keras' registry for a kzoo class whose module is not imported yet."""

    def __init__(self, registered_name, module):
        self.registered_name, self.module = registered_name, module

    def resolve(self):
        importlib.import_module(self.module)
        import keras

        cls = keras.saving.get_custom_objects().get(self.registered_name)
        if cls is None or isinstance(cls, _Deferred):
            raise TypeError(f"importing {self.module} did not register {self.registered_name!r} with keras.saving "
                            "(kzoo.serialization.SERIALIZABLES is out of date)")
        return cls

    def from_config(self, config, *args, **kwargs):
        return self.resolve().from_config(config, *args, **kwargs)

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __getattr__(self, name):
        if name.startswith("__") or name in ("registered_name", "module"):
            raise AttributeError(name)
        return getattr(self.resolve(), name)

    def __repr__(self):
        return f"<kzoo class {self.registered_name} (from {self.module}, not imported yet)>"


def register():
    """Enter every name of :data:`SERIALIZABLES` in Keras' custom objects (Keras must be imported)."""
    keras = sys.modules["keras"]
    registry = keras.saving.get_custom_objects()
    for name, module in SERIALIZABLES.items():
        if name not in registry:  # an imported module has registered the real class already
            registry[name] = _Deferred(name, module)


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """A one-shot finder: lets ``keras`` load as usual, then calls :func:`register`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        self._remove()
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _RegisterAfterExec(spec.loader)
        return spec

    def _remove(self):
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass


class _RegisterAfterExec(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        module.__loader__ = self._loader  # nothing after the import sees this wrapper
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        _register_quietly()

    def __getattr__(self, name):
        return getattr(self._loader, name)


def _register_quietly():
    try:
        register()
    except Exception as e:  # noqa: BLE001  (never break `import keras`; loading kzoo models then needs an import)
        warnings.warn(f"kzoo could not register its classes with keras.saving ({type(e).__name__}: {e}); "
                      "import kzoo.core and the kzoo modules your model uses before loading it", stacklevel=2)


def install():
    """Register now if Keras is imported, else as soon as it is (idempotent)."""
    if "keras" in sys.modules and hasattr(sys.modules["keras"], "saving"):
        _register_quietly()
    elif not any(isinstance(f, _AfterKerasImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasImport())
