"""The classifier a running qloop uses: the shipped one, or one retrained with people's corrections.

The shipped model is fitted on the whole labelled corpus (train and test parts: the held-out
figures in BENCHMARKS.md come from fits on the train part alone, see ``evaluate.py``) the first
time it is needed in a process, about a second on one core, and kept for the life of the process.
A retrained model (``qloop feedback retrain``) is a pickle file named by the ``feedback_model``
setting; pickles run code when loaded, so only load files qloop wrote.
"""

from __future__ import annotations

import functools
import pickle
import threading
from pathlib import Path

from cloud.feedback.classify import FeedbackClassifier
from cloud.feedback.labelled import load_corpus
from contract.errors import QloopError


class ModelFileError(QloopError, ValueError):
    """A model file that cannot be read or is not a fitted classifier."""


_FITTING = threading.Lock()


def shipped_classifier() -> FeedbackClassifier:
    """The classifier fitted on the shipped corpus (once per process, even when the first
    requests arrive while the background warm-up is still fitting it)."""
    with _FITTING:
        return _shipped()


@functools.cache
def _shipped() -> FeedbackClassifier:
    return FeedbackClassifier().fit(load_corpus())


def load_classifier(path: Path | None) -> FeedbackClassifier:
    """The classifier in ``path`` (from :func:`save_classifier`), or the shipped one for None."""
    if path is None:
        return shipped_classifier()
    try:
        with Path(path).open("rb") as f:
            model = pickle.load(f)  # noqa: S301 - a file qloop wrote, named by the operator
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as e:
        raise ModelFileError(f"cannot read the feedback model {path}: {e}") from None
    if not isinstance(model, FeedbackClassifier):
        raise ModelFileError(f"{path} holds a {type(model).__name__}, not a feedback classifier")
    return model


def save_classifier(model: FeedbackClassifier, path: Path) -> None:
    """Write ``model`` to ``path`` atomically (a reader never sees half a file)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
