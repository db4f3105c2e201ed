"""Starting without TensorFlow when the dialog model uses none of it.

Rasa 3.6 imports TensorFlow whole from its core modules (policies -> featurizers -> training utils),
whatever the model: measured, ~2 s of CPU, about 40% of the bot's start on a two-core machine. This
bot's model (dialogs/config.yml: count vectors, logistic regression, memoization and rules) runs no
TensorFlow code. When every component the model file names is one known to be TensorFlow-free, a
stand-in is imported instead: it satisfies what Rasa's modules do with TensorFlow while they are
imported (base classes, decorators, type hints; also for Rasa modules imported later, such as the
dialog check's), and once the model is loaded any TensorFlow operation raises, so nothing can run on
it unnoticed. Any other model (DIET, TED, ...) gets the real TensorFlow.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import sys
import tarfile
import types
from pathlib import Path

# The components of this bot's model, read from the model file: none of them calls TensorFlow.
TENSORFLOW_FREE = frozenset({
    "rasa.core.policies.ensemble.DefaultPolicyPredictionEnsemble",
    "rasa.core.policies.memoization.MemoizationPolicy",
    "rasa.core.policies.rule_policy.RulePolicy",
    "rasa.graph_components.converters.nlu_message_converter.NLUMessageConverter",
    "rasa.graph_components.providers.domain_provider.DomainProvider",
    "rasa.graph_components.providers.rule_only_provider.RuleOnlyDataProvider",
    "rasa.nlu.classifiers.fallback_classifier.FallbackClassifier",
    "rasa.nlu.classifiers.logistic_regression_classifier.LogisticRegressionClassifier",
    "rasa.nlu.classifiers.regex_message_handler.RegexMessageHandler",
    "rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer.CountVectorsFeaturizer",
    "rasa.nlu.featurizers.sparse_featurizer.lexical_syntactic_featurizer.LexicalSyntacticFeaturizer",
    "rasa.nlu.featurizers.sparse_featurizer.regex_featurizer.RegexFeaturizer",
    "rasa.nlu.tokenizers.whitespace_tokenizer.WhitespaceTokenizer",
})
_STOOD_IN = ("tensorflow", "keras", "tensorflow_addons", "tensorflow_hub", "tensorflow_text", "tensorflow_probability")
_state = {"sealed": False}


class NotLoaded(RuntimeError):
    """TensorFlow was used after Rasa was imported without it."""


def uses_no_tensorflow(model: Path) -> bool:
    """Whether every component the model file runs is known to be TensorFlow-free (a model it cannot read: no)."""
    try:
        with tarfile.open(model, "r:gz") as archive:
            member = next(m for m in archive if m.name.lstrip("/") == "metadata.json")
            metadata = json.load(archive.extractfile(member))
        used = {node["uses"] for node in metadata["predict_schema"]["nodes"].values()}
    except (OSError, tarfile.TarError, StopIteration, ValueError, KeyError, TypeError, AttributeError, EOFError):
        return False  # the model's own check (ivr.dialog.model) says what is wrong with it
    return bool(used) and used <= TENSORFLOW_FREE


def stand_in() -> bool:
    """Import the stand-in instead of TensorFlow from now on, unless TensorFlow is already here. True if it is."""
    if any(name in sys.modules for name in _STOOD_IN):
        return False
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    return True


def seal() -> None:
    """Rasa is imported and the model loaded: from now on, any TensorFlow operation raises NotLoaded."""
    _state["sealed"] = True


def _refuse(what: str) -> None:
    if _state["sealed"]:
        raise NotLoaded(f"{what}: TensorFlow is not loaded in this process, as the dialog model uses none of it "
                        f"(ivr/dialog/tensorflow_free.py); add its component to TENSORFLOW_FREE only if it runs "
                        f"no TensorFlow")


class _StandInClass(type):
    """A class (Rasa's modules subclass TensorFlow's) whose every attribute is another stand-in; calling
    one is an operation (refused once sealed), except as a decorator, which leaves the function as it is."""

    def __getattr__(cls, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _stand_in_class(f"{cls.__qualname__}.{name}")

    def __call__(cls, *args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]  # a decorator such as @tf.function
        _refuse(f"{cls.__qualname__}()")
        return _stand_in_class(f"{cls.__qualname__}()")

    def __getitem__(cls, item):  # type hints such as tf.Tensor[...]
        return cls

    def __or__(cls, other):  # type hints such as tf.Tensor | None
        return cls

    __ror__ = __or__


def _stand_in_class(qualname: str) -> type:
    made = _StandInClass(qualname.rsplit(".", 1)[-1].strip("()") or "StandIn", (), {})
    made.__qualname__ = qualname
    return made


class _StandInModule(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _stand_in_class(f"{self.__name__}.{name}")


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in _STOOD_IN:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StandInModule(spec.name)
        module.__path__ = []
        module.__version__ = "2.12.0"  # the release Rasa 3.6 pins, for version checks at import
        return module

    def exec_module(self, module) -> None:
        pass
