"""What save and warm_start count as "changed since fit", and damaged files.

A fitted estimator records the parameters of what it built; ``save`` refuses
to pair the fitted network with parameters that ``set_params`` changed since
(``load`` rebuilds the network from them), and a warm start refuses what it
would not apply. Equal settings of other types and functions or objects
unpickled in another process are no change.
"""

from __future__ import annotations

import functools
import importlib
import pickle
import re
import sys
import warnings
import zipfile

import numpy as np
import pytest
import torch
from _instances import make
from torch import nn

from sk_replearn import FineTuner, FineTunerRegressor, PCATransformer, persistence
from sk_replearn.views import TabularViews


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 8)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(int)


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # collapse warnings of 1-epoch fits
        if isinstance(est, FineTunerRegressor):
            return est.fit(X, X[:, 0] * 2.0)
        return est.fit(X, y)


class SmallEncoder:
    """An ``encoder=`` factory object without a repr of its own: its repr
    holds its address, another one in the copy that unpickling makes."""

    def __init__(self, width: int = 4) -> None:
        self.width = width

    def __call__(self) -> nn.Module:
        return nn.Sequential(nn.Linear(8, self.width), nn.Tanh())


# -- fine-tuners: what save refuses ----------------------------------------------
#: A change of each parameter that builds a fine-tuner's network or optimiser
#: (the head's shapes, the frozen blocks' parameter groups, the re-drawn
#: blocks, the optimiser's state) or its representation's.
_FINE_TUNER_CHANGES = [
    {"head": "mlp"},
    {"strategy": "frozen"},
    {"freeze_layers": 1},
    {"reinit_layers": 1},
    {"optimizer": "sgd"},
    {"representation__n_components": 3},
    {"representation__transform_layer": 0},
]

#: What a fine-tuner may change after fit and still save: how it trains, how
#: it reads its network, where its representation runs.
_NOT_BUILDING = {
    "lr": 0.5,
    "max_epochs": 3,
    "encoder_lr_scale": 0.5,
    "transform_layer": 0,
    "representation__device": "cpu",
    "representation__max_epochs": 2,
}


@pytest.mark.parametrize(
    "name, change",
    [("FineTuner", change) for change in _FINE_TUNER_CHANGES]
    + [("FineTunerRegressor", {"head": "mlp"})],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else v,
)
def test_fine_tuner_save_refuses_model_parameters_changed_since_fit(
    name, change, data, tmp_path
):
    # save wrote the file, and load refused it ("other shapes", blaming
    # another version; torch's "different number of parameter groups"), or
    # loaded parameters that do not describe the network.
    X, y = data
    est = _fit(make(name), X, y)
    ((key, value),) = change.items()
    fitted = est.get_params()[key]
    path = tmp_path / "ft.pt"
    with pytest.raises(
        ValueError,
        match=re.escape(f"set_params changed {key}={value!r} (fitted with {fitted!r})"),
    ):
        est.set_params(**change).save(path)
    assert not path.exists()
    # Set back, with only what does not build the network changed: saved.
    est.set_params(**{key: fitted}, **_NOT_BUILDING)
    est.save(path)
    loaded = persistence.load(path)
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))


def test_fine_tuner_save_refuses_a_fitted_representation_replaced_since_fit(
    data, tmp_path
):
    # A nested change replaces a fitted representation by an unfitted clone
    # (BaseFineTuner.set_params): the file's representation would not be
    # the one the network was fine-tuned from.
    X, y = data
    rep = _fit(make("AutoencoderTransformer"), X, None)
    est = _fit(make("FineTuner").set_params(representation=rep), X, y)
    path = tmp_path / "ft.pt"
    with pytest.raises(ValueError, match=r"representation__n_components=3 \(fitted"):
        est.set_params(representation__n_components=3).save(path)
    with pytest.raises(ValueError, match="representation=SimCLRTransformer"):
        est.set_params(representation=make("SimCLRTransformer")).save(path)
    assert not path.exists()


def test_save_refuses_an_optimizer_changed_since_fit(data, tmp_path):
    # The file holds the fitted optimiser's state: loaded into another
    # optimiser, a warm start of the loaded model raised torch's KeyError.
    X, y = data
    ae = _fit(make("AutoencoderTransformer"), X, y)
    path = tmp_path / "ae.pt"
    with pytest.raises(ValueError, match=r"optimizer='sgd' \(fitted with 'adamw'\)"):
        ae.set_params(optimizer="sgd").save(path)
    ae.set_params(optimizer=torch.optim.AdamW).save(path)  # "adamw" by its class
    loaded = persistence.load(path).set_params(warm_start=True)
    assert _fit(loaded, X, y).n_epochs_ == 2


@pytest.mark.parametrize(
    "fitted, change",
    [
        ({}, {"tokenizer": "word"}),
        ({}, {"vocab_size": 3}),
        ({"tokenizer": "word"}, {"token_pattern": r"\w"}),
    ],
)
def test_save_refuses_a_vocabulary_changed_since_fit(fitted, change, tmp_path):
    # The vocabulary's parameters were left to the warm start's own check,
    # so a save after set_params(vocab_size=...) wrote parameters that the
    # fitted vocabulary was not built with.
    rng = np.random.default_rng(0)
    X = [" ".join(rng.choice(["AC", "GT", "TA"], size=6)) for _ in range(30)]
    gpt = make("GPTTransformer", **fitted).fit(X)
    name = next(iter(change))
    with pytest.raises(ValueError, match=f"Cannot save GPTTransformer.*{name}="):
        gpt.set_params(**change).save(tmp_path / "gpt.pt")
    with pytest.raises(ValueError, match="on the vocabulary of the first fit"):
        gpt.set_params(warm_start=True).fit(X)  # its own words, as before


def test_a_vocabulary_parameter_that_does_not_matter_is_no_change(tmp_path):
    rng = np.random.default_rng(0)
    X = ["".join(rng.choice(list("ACGT"), size=12)) for _ in range(30)]
    gpt = make("GPTTransformer").fit(X)  # characters: no token_pattern read
    gpt.set_params(token_pattern=r"\w").save(tmp_path / "gpt.pt")
    assert persistence.load(tmp_path / "gpt.pt").token_pattern == r"\w"


# -- what is no change ---------------------------------------------------------
@pytest.mark.parametrize(
    "name, fitted, now",
    [
        ("AutoencoderTransformer", {"n_components": np.int64(2)}, {"n_components": 2}),
        ("AutoencoderTransformer", {"noise": np.float64(0.25)}, {"noise": 0.25}),
        (
            "AutoencoderTransformer",
            {"encoder_kwargs": {"hidden_sizes": [8, 4], "activation": "gelu"}},
            {"encoder_kwargs": {"activation": "gelu", "hidden_sizes": (8, 4)}},
        ),
        (
            "SimCLRTransformer",
            {"views": TabularViews(corruption_rate=np.float64(0.25))},
            {"views": TabularViews(corruption_rate=0.25)},
        ),
    ],
    ids=["numpy-int", "numpy-float", "list-and-key-order", "views-object"],
)
def test_equal_values_of_another_type_are_no_change(name, fitted, now, data, tmp_path):
    # Compared by repr, a grid's numpy scalars, a JSON config's lists and
    # dicts in another order refused a save and a warm start.
    X, y = data
    est = _fit(make(name, **fitted, warm_start=True), X, y)
    est.set_params(**now).save(tmp_path / "est.pt")
    assert _fit(est, X, y).n_epochs_ == 2  # warm-started


@pytest.mark.parametrize(
    "name, start, change, match",
    [
        (
            "AutoencoderTransformer",
            {},
            {"encoder_kwargs": {"hidden_sizes": (8, 5)}},
            r"encoder_kwargs=\{'hidden_sizes': \(8, 5\)\} \(fitted with",
        ),
        (
            "SimCLRTransformer",
            {"views": TabularViews(corruption_rate=0.25)},
            {"views": TabularViews(corruption_rate=0.5)},
            r"views=TabularViews\(corruption_rate=0.5\) \(fitted with "
            r"TabularViews\(corruption_rate=0.25\)\)",
        ),
        (
            "AutoencoderTransformer",
            {"encoder": SmallEncoder(), "encoder_kwargs": None},
            {"encoder": SmallEncoder(width=3)},
            r"encoder=<test_saved_params.SmallEncoder object \{'width': 3\}> "
            r"\(fitted with <test_saved_params.SmallEncoder object \{'width': 4\}>\)",
        ),
    ],
    ids=["hidden-sizes", "views", "encoder-object"],
)
def test_a_change_of_value_is_still_refused(name, start, change, match, data, tmp_path):
    X, y = data
    est = _fit(make(name, **start), X, y)
    est.set_params(**change)
    with pytest.raises(
        ValueError, match=f"Cannot save {name}: set_params changed {match}"
    ):
        est.save(tmp_path / "est.pt")
    with pytest.raises(ValueError, match="warm_start=True continues the fitted model"):
        _fit(est.set_params(warm_start=True), X, y)


def _encoder_with(activation):
    def build():
        return nn.Sequential(nn.Linear(8, 4), activation())

    return build


def test_a_closure_of_another_value_is_a_change(data):
    # Functions were compared by name once addresses were left out: another
    # closure of one factory (Tanh -> ReLU) passed a warm start, which went
    # on training the Tanh network that get_params no longer described.
    X, y = data
    est = make(
        "AutoencoderTransformer", encoder=_encoder_with(nn.Tanh), encoder_kwargs=None
    )
    est = _fit(est, X, y)
    est.set_params(encoder=_encoder_with(nn.Tanh), warm_start=True)
    _fit(est, X, y)  # the same closure again: no change
    with pytest.raises(ValueError, match="warm_start=True continues the fitted model"):
        _fit(est.set_params(encoder=_encoder_with(nn.ReLU)), X, y)


def _layers(width, activation):
    return nn.Sequential(nn.Linear(8, width), activation())


def test_a_partial_of_the_same_keywords_in_another_order_is_no_change(data):
    # save() refuses code, so only a warm start compares these: the same
    # settings written in another order continue the fit; other settings
    # are refused.
    X, y = data
    est = make(
        "AutoencoderTransformer",
        encoder=functools.partial(_layers, width=4, activation=nn.Tanh),
        encoder_kwargs=None,
        warm_start=True,
    )
    est = _fit(est, X, y)
    est.set_params(encoder=functools.partial(_layers, activation=nn.Tanh, width=4))
    assert _fit(est, X, y).n_epochs_ == 2
    est.set_params(encoder=functools.partial(_layers, activation=nn.ReLU, width=4))
    with pytest.raises(ValueError, match="warm_start=True continues the fitted model"):
        _fit(est, X, y)


def test_ids_fitted_sequences_save_after_tokenizer_changes(tmp_path):
    # Integer ids use no tokenizer: a change of the vocabulary's parameters
    # is no change, as the warm start already treats it.
    ids = [[1, 2, 3, 4], [2, 3], [4, 4, 1]] * 10
    gpt = make("GPTTransformer").fit(ids)
    gpt.set_params(tokenizer="word", vocab_size=50).save(tmp_path / "gpt.pt")


def test_warm_start_of_an_unpickled_encoder_object_goes_on(data):
    # Unpickling makes a new object, at another address: its repr changed,
    # and the warm start was refused although nothing had.
    X, y = data
    est = make("AutoencoderTransformer", encoder=SmallEncoder(), encoder_kwargs=None)
    est = _fit(est, X, y)
    again = pickle.loads(pickle.dumps(est)).set_params(warm_start=True)
    assert _fit(again, X, y).n_epochs_ == 2


_ENCODER_MODULE = """
from torch import nn


def small_encoder():
    return nn.Sequential(nn.Linear(8, 4), nn.Tanh())
"""


def test_warm_start_of_an_unpickled_encoder_function_goes_on(data, tmp_path):
    # A function's repr holds its address, another in every process: a model
    # pickled (the route for code parameters, which save refuses) could not
    # be warm-started, nor saved, in another process. Importing the
    # function's module anew, as another process does, gives it another one.
    X, y = data
    (tmp_path / "saved_encoder.py").write_text(_ENCODER_MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("saved_encoder")
        est = make(
            "SimCLRTransformer", encoder=module.small_encoder, encoder_kwargs=None
        )
        est = _fit(est, X, y)
        pickled = pickle.dumps(est)
        del sys.modules["saved_encoder"]
        again = pickle.loads(pickled)  # imports the module anew
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("saved_encoder", None)
    assert again.encoder is not est.encoder
    again.set_params(warm_start=True)
    assert _fit(again, X, y).n_epochs_ == 2


# -- damaged files -------------------------------------------------------------
@pytest.mark.parametrize("keep", [0.5, -1], ids=["half", "all-but-a-byte"])
def test_load_of_a_cut_off_file_says_it_is_damaged(keep, data, tmp_path):
    # torch's zip reader raises a bare OSError (EINVAL) for a file cut off
    # past its first kilobyte, which load passed on as "Invalid argument".
    X, y = data
    path = tmp_path / "ae.pt"
    _fit(make("AutoencoderTransformer"), X, y).save(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)] if keep > 0 else raw[:keep])
    with pytest.raises(ValueError, match=r"ae.pt' is damaged.*cut off.*not loaded"):
        persistence.load(path)


@pytest.mark.parametrize("keep", [0.5, 100], ids=["half", "first-100-bytes"])
def test_load_of_a_small_file_cut_off_says_it_is_damaged(keep, tmp_path):
    # Cut within its first kilobyte, a zip archive makes torch raise a
    # RuntimeError, which load called "not a file written by sk_replearn".
    X = np.random.default_rng(0).normal(size=(40, 6))
    path = tmp_path / "pca.pt"
    PCATransformer(n_components=2).fit(X).save(path)
    raw = path.read_bytes()
    assert len(raw) < 8192  # a few kilobytes: the case of a small model
    path.write_bytes(raw[: int(len(raw) * keep)] if keep < 1 else raw[:keep])
    with pytest.raises(ValueError, match=r"pca.pt' is damaged.*cut off.*not loaded"):
        persistence.load(path)


def test_load_of_another_zip_archive_is_not_called_damaged(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "not a model")
    with pytest.raises(ValueError, match=r"not a file written by sk_replearn"):
        persistence.load(path)


def test_load_of_a_file_it_cannot_open_raises_the_os_error(data, tmp_path, monkeypatch):
    X, y = data
    path = tmp_path / "ae.pt"
    _fit(make("AutoencoderTransformer"), X, y).save(path)
    with pytest.raises(FileNotFoundError):
        persistence.load(tmp_path / "missing.pt")
    with pytest.raises(IsADirectoryError):
        persistence.load(tmp_path)

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(torch, "load", refused)
    with pytest.raises(PermissionError):
        persistence.load(path)


def test_fine_tuner_save_after_training_only_changes_since_fit(tmp_path):
    """Views, layer decay and class weights changed after fit still save."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    est = FineTuner(PCATransformer(n_components=2), max_epochs=1, random_state=0)
    est.fit(X, y).set_params(
        views=TabularViews(), layer_decay=0.5, class_weight="balanced"
    )
    est.save(tmp_path / "ft.pt")
    loaded = persistence.load(tmp_path / "ft.pt")
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
