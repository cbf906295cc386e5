"""save / load as data, pickling, and grid searches with failing fits."""

from __future__ import annotations

import os
import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from _damage import flip_a_bit_of
from _instances import INSTANCES, make
from sklearn.base import clone
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from sk_replearn import (
    AutoencoderTransformer,
    BarlowTwinsTransformer,
    FineTuner,
    FineTunerRegressor,
    MAETransformer,
    PCATransformer,
    SimCLRTransformer,
    persistence,
)
from sk_replearn.views import TabularViews


def _ae(**kw):
    return make("AutoencoderTransformer", **kw)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(96, 8)).astype(np.float32)
    y = np.where(X[:, 0] > 0, "yes", "no")
    return X, y


def _resave(payload: dict, path) -> None:
    """Write an edited file as ``save`` would, with a checksum of the edit."""
    payload.pop("checksum", None)
    persistence._files._atomic_save(payload, path)


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # collapse warnings of 1-epoch SSL runs
        if isinstance(est, FineTunerRegressor):
            return est.fit(X, X[:, 0] * 2.0)
        return est.fit(X, y)


def _outputs(est, X) -> dict:
    out = {"transform": est.transform(X)}
    for method in ("predict", "predict_proba", "inverse_transform", "reconstruct"):
        if hasattr(est, method):
            arg = out["transform"] if method == "inverse_transform" else X
            kw = {"random_state": 0} if isinstance(est, MAETransformer) else {}
            out[method] = getattr(est, method)(arg, **kw)
    return out


# The array estimators; test_sequences.py saves and loads GPT and BERT.
# PretrainedTransformer holds a network built elsewhere, which is code, not
# data: test_pretrained.py checks that save() says so and that it pickles.
@pytest.mark.parametrize("name", [n for n in INSTANCES if n != "PretrainedTransformer"])
def test_save_load_round_trip_gives_identical_outputs(name, data, tmp_path):
    X, y = data
    est = _fit(make(name), X, y)
    path = tmp_path / "model.pt"
    if hasattr(type(est), "save"):
        est.save(path)
        loaded = type(est).load(path)
    else:
        persistence.save(est, path)
        loaded = persistence.load(path)
    assert type(loaded) is type(est)
    assert repr(loaded.get_params(deep=False)) == repr(est.get_params(deep=False))
    before, after = _outputs(est, X), _outputs(loaded, X)
    assert before.keys() == after.keys()
    for method in before:
        np.testing.assert_array_equal(after[method], before[method], err_msg=method)
    if hasattr(est, "net_"):
        assert loaded.loss_curve_ == est.loss_curve_
        assert len(loaded.history_) == len(est.history_)
    # The file is plain data: torch's safe loader reads it.
    payload = torch.load(path, weights_only=True)
    assert payload["estimator"]["class"] == name


def test_load_refuses_a_pickle_that_runs_code(tmp_path):
    marker = tmp_path / "code-ran"

    class Evil:
        def __reduce__(self):
            return (os.makedirs, (str(marker),))

    path = tmp_path / "evil.pt"
    torch.save({"format": "sk_replearn-estimator", "estimator": Evil()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    with pytest.raises(ValueError, match="holds more than data"):
        AutoencoderTransformer.load(path)
    with pytest.raises(ValueError, match="holds more than data"):
        persistence.load(path)
    assert not marker.exists()


def test_load_refuses_other_files(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a sk_replearn-estimator file"):
        persistence.load(path)
    path = tmp_path / "forged.pt"
    spec = {"__sk_replearn__": "estimator", "class": "os.system", "params": {}}
    torch.save({"format": "sk_replearn-estimator", "estimator": spec}, path)
    with pytest.raises(ValueError, match="not an sk_replearn estimator"):
        persistence.load(path)


@pytest.mark.parametrize(
    "content", [b"", b"hi", b"\x80\x02}q\x00.", b"PK, not a zip"], ids=repr
)
def test_load_of_a_file_torch_cannot_read_is_a_value_error(content, tmp_path):
    # A text file raised torch's KeyError, an empty one an IndexError of ours.
    path = tmp_path / "odd.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="is not a file written by sk_replearn"):
        persistence.load(path)
    with pytest.raises(FileNotFoundError):
        persistence.load(tmp_path / "missing.pt")


@pytest.mark.parametrize("name", ["PCATransformer", "SimCLRTransformer"])
def test_load_of_a_file_with_a_flipped_bit_is_refused(name, data, tmp_path):
    # torch.load does not check the CRCs of the zip it reads: a bit flipped
    # in a weight by a disk or a copy loaded silently, and transformed wrong.
    X, y = data
    est = _fit(make(name), X, y)
    path = tmp_path / "est.pt"
    est.save(path)  # the classical estimators have save and load too
    np.testing.assert_array_equal(type(est).load(path).transform(X), est.transform(X))
    flip_a_bit_of(next(_tensors(torch.load(path, weights_only=True))), path)
    with pytest.raises(ValueError, match="est.pt' is damaged.*not loaded"):
        persistence.load(path)


def _tensors(value):
    """The tensors in nested dicts and lists, depth first."""
    if isinstance(value, torch.Tensor) and value.numel() > 4:
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


def test_load_of_another_class_is_a_type_error(data, tmp_path):
    X, y = data
    _fit(_ae(), X, y).save(tmp_path / "ae.pt")
    with pytest.raises(TypeError, match="holds an AutoencoderTransformer"):
        SimCLRTransformer.load(tmp_path / "ae.pt")


def test_save_unfitted_raises(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        _ae().save(tmp_path / "x.pt")


def test_save_refuses_code_parameters(data, tmp_path):
    X, y = data
    clf = _fit(make("FineTuner", head=lambda i, o: nn.Linear(i, o)), X, y)
    with pytest.raises(TypeError, match="FineTuner.head=.*cannot be saved as data"):
        clf.save(tmp_path / "clf.pt")
    assert not (tmp_path / "clf.pt").exists()


def test_save_refuses_model_parameters_changed_since_fit(data, tmp_path):
    # The file pairs the weights with the parameters; load rebuilds the
    # network from the latter, so a width set after fit used to write a file
    # that load refused ("other shapes"), blaming another version.
    X, y = data
    path = tmp_path / "simclr.pt"
    simclr = _fit(make("SimCLRTransformer"), X, y)
    fitted = simclr.projection_dim
    simclr.set_params(projection_dim=fitted + 8)
    with pytest.raises(ValueError, match=f"projection_dim={fitted + 8} \\(fitted with"):
        simclr.save(path)
    assert not path.exists()
    # Where it runs is not what it is: a device set after fit is saved.
    simclr.set_params(projection_dim=fitted, device="cpu").save(path)
    loaded = persistence.load(path)
    np.testing.assert_array_equal(loaded.transform(X), simclr.transform(X))
    loaded.save(tmp_path / "again.pt")  # a loaded model saves as it came


@pytest.mark.parametrize(
    "name", ["AutoencoderTransformer", "ContextEncoderTransformer"]
)
def test_transform_keeps_the_fitted_width_after_set_params(name, data):
    # As the other methods do: set_params alone changes nothing fitted (the
    # autoencoders' transform had read the new n_components and failed).
    X, y = data
    est = _fit(make(name, n_components=4), X, y)
    before = est.transform(X)
    est.set_params(n_components=3)
    np.testing.assert_array_equal(est.transform(X), before)
    assert len(est.get_feature_names_out()) == 4


def test_save_drops_callbacks_with_a_warning(data, tmp_path):
    from skorch.callbacks import EpochTimer

    X, y = data
    est = _fit(_ae(callbacks=[("timer2", EpochTimer())]), X, y)
    with pytest.warns(UserWarning, match="callbacks=.* is not saved"):
        est.save(tmp_path / "ae.pt")
    loaded = AutoencoderTransformer.load(tmp_path / "ae.pt")
    assert loaded.callbacks is None
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))


def test_save_load_keeps_the_representation_and_nested_params(data, tmp_path):
    X, y = data
    rep = _fit(_ae(), X, None)
    # set_params, not make: make would clone the fitted representation unfitted.
    clf = _fit(make("FineTuner").set_params(representation=rep), X, y)
    clf.save(tmp_path / "clf.pt")
    loaded = FineTuner.load(tmp_path / "clf.pt")
    for kept in (loaded.representation, loaded.representation_):  # own copy
        np.testing.assert_array_equal(kept.transform(X), rep.transform(X))
    assert list(loaded.classes_) == ["no", "yes"]

    views = TabularViews(corruption_rate=0.3)
    simclr = _fit(
        make("SimCLRTransformer", views=views, optimizer=torch.optim.SGD), X, y
    )
    simclr.save(tmp_path / "simclr.pt")
    loaded = SimCLRTransformer.load(tmp_path / "simclr.pt")
    assert loaded.views.get_params() == views.get_params()
    assert loaded.optimizer is torch.optim.SGD


@pytest.mark.parametrize("strategy", ["full", "frozen"])
def test_save_load_of_a_fine_tuned_auto_mae(strategy, data, tmp_path):
    # A fine-tuner trains an "auto" MAE through the last block's patch mean
    # and reads a frozen one by every block: load must rebuild the same one.
    X, y = data
    rep = make("MAETransformer", depth=2)  # blocks: 2 x (class token, mean)
    clf = _fit(FineTuner(rep, strategy=strategy, max_epochs=1, random_state=0), X, y)
    assert clf.transform(X).shape[1] == (8 if strategy == "full" else 32)
    clf.save(tmp_path / "clf.pt")
    loaded = FineTuner.load(tmp_path / "clf.pt")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.transform(X), clf.transform(X))


def test_save_load_feature_names_and_refit(data, tmp_path):
    X, y = data
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    est = _ae(random_state=np.random.RandomState(3)).fit(df)
    est.save(tmp_path / "ae.pt")
    loaded = AutoencoderTransformer.load(tmp_path / "ae.pt", device="cpu")
    np.testing.assert_array_equal(loaded.feature_names_in_, est.feature_names_in_)
    np.testing.assert_array_equal(loaded.transform(df), est.transform(df))
    # The loaded estimator is an ordinary one: it can be fitted again, and
    # its RandomState goes on where the saved one stood (restored at the
    # start of its stream, the refits differed).
    assert loaded.fit(df).n_epochs_ == 1
    np.testing.assert_array_equal(loaded.transform(df), est.fit(df).transform(df))


@pytest.mark.parametrize("name", ["AutoencoderTransformer", "FineTuner"])
def test_joblib_pickle_round_trip(name, data, tmp_path):
    X, y = data
    est = _fit(make(name), X, y)
    joblib.dump(est, tmp_path / "est.joblib")
    loaded = joblib.load(tmp_path / "est.joblib")
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
    assert "joblib" in type(est).save.__doc__ and "trust" in type(est).save.__doc__


def test_a_pickle_naming_the_modules_before_their_split_still_loads(data):
    X, _ = data
    # A fitted net holds StopOnNonFiniteLoss and PrintLog's _silent sink,
    # which lived in training.py and methods/base.py before the callbacks
    # and the engine's helpers moved to modules of their own.
    est = AutoencoderTransformer(
        n_components=2, max_epochs=2, early_stopping=True, random_state=0
    ).fit(X)
    text = pickle.dumps(est, protocol=0)  # globals as "c<module>\n<name>\n"
    old = text.replace(
        b"csk_replearn.methods._engine\n", b"csk_replearn.methods.base\n"
    ).replace(b"csk_replearn._callbacks\n", b"csk_replearn.training\n")
    assert old != text
    np.testing.assert_array_equal(pickle.loads(old).transform(X), est.transform(X))


def test_a_pickle_naming_the_transformer_block_before_its_move_still_loads(data):
    X, y = data
    # An MAE's blocks are TransformerBlocks, defined in nn/transformer.py
    # before the block moved to nn/_block.py (public from transformer still).
    est = _fit(make("MAETransformer"), X, y)
    text = pickle.dumps(est, protocol=0)  # globals as "c<module>\n<name>\n"
    old = text.replace(b"csk_replearn.nn._block\n", b"csk_replearn.nn.transformer\n")
    assert old != text
    np.testing.assert_array_equal(pickle.loads(old).transform(X), est.transform(X))


def test_a_pickle_naming_the_signal_layers_where_they_were_defined_still_loads(data):
    X, _ = data
    # A convolutional encoder of signals is built of SignalConv and
    # SignalBatchNorm, defined in nn/conv.py before they moved to
    # nn/_signal_layers.py (public from conv still).
    est = AutoencoderTransformer(
        n_components=2, encoder="cnn", input_shape=(1, 8), max_epochs=1, random_state=0
    ).fit(X)
    text = pickle.dumps(est, protocol=0)  # globals as "c<module>\n<name>\n"
    old = text.replace(b"csk_replearn.nn._signal_layers\n", b"csk_replearn.nn.conv\n")
    assert old != text
    np.testing.assert_array_equal(pickle.loads(old).transform(X), est.transform(X))


@pytest.mark.parametrize(
    "name, module",
    [
        ("DINOTransformer", b"dino"),
        ("BarlowTwinsTransformer", b"redundancy"),
        ("VICRegTransformer", b"redundancy"),
    ],
)
def test_a_pickle_naming_the_non_contrastive_module_before_its_split_loads(
    name, module, data
):
    """DINO, Barlow Twins and VICReg, their objectives and losses were defined
    in the noncontrastive modules before they had modules of their own: a
    pickle naming those still loads."""
    X, y = data
    est = _fit(make(name), X, y)
    text = old = pickle.dumps(est, protocol=0)  # globals as "c<module>\n<name>\n"
    for package in (b"methods", b"objectives", b"losses"):
        new = b"csk_replearn." + package + b"." + module + b"\n"
        assert new in text
        old = old.replace(new, b"csk_replearn." + package + b".noncontrastive\n")
    np.testing.assert_array_equal(pickle.loads(old).transform(X), est.transform(X))


@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite")
def test_grid_search_in_parallel_survives_failing_fits(data):
    """8 fits on 2 processes; the 2 with an impossible input_shape fail cleanly."""
    X, _ = data
    y = (X[:, 0] > 0).astype(int)
    pipe = make_pipeline(StandardScaler(), _ae(max_epochs=2), LogisticRegression())
    grid = {"autoencodertransformer__input_shape": [None, (8,), (1, 8), (3, 3)]}
    search = GridSearchCV(pipe, grid, cv=2, n_jobs=2, error_score=np.nan)
    with pytest.warns(FitFailedWarning, match="2 fits failed out of a total of 8"):
        search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.isnan(scores[3])
    assert np.all(np.isfinite(scores[:3]))
    assert search.best_params_["autoencodertransformer__input_shape"] != (3, 3)
    with pytest.raises(ValueError, match=r"input_shape=\(3, 3\) holds 9 values"):
        pipe.set_params(autoencodertransformer__input_shape=(3, 3)).fit(X, y)


def _load_saved_without(estimator, name: str, path):
    """``estimator`` saved to ``path`` without the parameter ``name`` (as a
    version from before the parameter wrote it), then loaded."""
    estimator.save(path)
    payload = torch.load(path, weights_only=True)
    del payload["estimator"]["params"][name]
    _resave(payload, path)
    return type(estimator).load(path)


def test_load_of_a_file_saved_before_a_parameter_existed(tmp_path):
    # A GPT file from before conv_kernel_size: no such parameter, no mixer.
    from sk_replearn import GPTTransformer

    texts = ["abcab", "bcabc", "cabca", "aabbc"] * 4
    old = GPTTransformer(
        embed_dim=8, depth=1, num_heads=2, max_epochs=1, conv_kernel_size=None,
        random_state=0, device="cpu",
    ).fit(texts)  # fmt: skip
    loaded = _load_saved_without(old, "conv_kernel_size", tmp_path / "gpt.pt")
    assert loaded.conv_kernel_size is None
    np.testing.assert_array_equal(loaded.transform(texts), old.transform(texts))


def test_load_of_a_fine_tuner_file_saved_before_head_norm(tmp_path):
    # Before head_norm, every built-in head started with a CentredLayerNorm,
    # frozen encoder or not: such a file loads as head_norm="layer".
    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    rep = PCATransformer(n_components=3).fit(X)
    old = FineTuner(rep, strategy="frozen", head_norm="layer", max_epochs=2)
    loaded = _load_saved_without(old.fit(X, y), "head_norm", tmp_path / "ft.pt")
    assert loaded.head_norm == "layer"
    np.testing.assert_array_equal(loaded.predict_proba(X), old.predict_proba(X))
    with pytest.raises(ValueError, match="head_norm"):  # changed since fit
        old.set_params(head_norm="auto").save(tmp_path / "changed.pt")


def test_load_of_a_fine_tuner_file_saved_before_class_weight(tmp_path):
    # Before class_weight, every class weighed 1.
    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    old = FineTuner(PCATransformer(n_components=3), max_epochs=2, random_state=0)
    loaded = _load_saved_without(old.fit(X, y), "class_weight", tmp_path / "ft.pt")
    assert loaded.class_weight is None
    np.testing.assert_array_equal(loaded.predict_proba(X), old.predict_proba(X))


def test_load_of_a_barlow_twins_file_saved_before_the_narrower_projector(tmp_path):
    # hidden_dim=None meant projection_dim (40 here) before it meant the
    # encoder's width (20): a file from then holds 40-wide hidden layers.
    X = np.random.default_rng(0).normal(size=(32, 12)).astype(np.float32)
    kw = dict(encoder_kwargs={"hidden_sizes": (24, 20)}, projection_dim=40)
    old = BarlowTwinsTransformer(hidden_dim=40, max_epochs=1, random_state=0, **kw)
    old.fit(X)
    path = tmp_path / "barlow.pt"
    old.save(path)
    payload = torch.load(path, weights_only=True)
    payload["estimator"]["params"]["hidden_dim"] = None  # as the file was written
    _resave(payload, path)
    loaded = BarlowTwinsTransformer.load(path)
    assert loaded.hidden_dim == 40
    np.testing.assert_array_equal(loaded.transform(X), old.transform(X))
    # A file of the present default loads with hidden_dim=None, as saved.
    new = BarlowTwinsTransformer(max_epochs=1, random_state=0, **kw).fit(X)
    new.save(path)
    assert BarlowTwinsTransformer.load(path).hidden_dim is None


def test_load_of_a_network_of_other_shapes_is_a_clear_error(tmp_path):
    # Weights that the file's parameters no longer build: a ValueError that
    # says so, not torch's size mismatch.
    X = np.random.default_rng(0).normal(size=(32, 12)).astype(np.float32)
    est = SimCLRTransformer(
        encoder_kwargs={"hidden_sizes": (24, 20)}, max_epochs=1, random_state=0
    ).fit(X)
    path = tmp_path / "simclr.pt"
    est.save(path)
    payload = torch.load(path, weights_only=True)
    module = payload["estimator"]["state"]["net_"]["module"]
    module["projector.layers.0.weight"] = module["projector.layers.0.weight"][:5]
    _resave(payload, path)
    with pytest.raises(ValueError, match="network of other shapes"):
        SimCLRTransformer.load(path)


def test_save_into_a_missing_folder_names_the_folder(tmp_path):
    est = PCATransformer(2).fit(np.random.default_rng(0).normal(size=(20, 4)))
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        persistence.save(est, tmp_path / "no" / "such" / "model.pt")


def test_save_of_a_dataframe_parameter_says_to_pass_an_array(tmp_path):
    # It printed the whole frame and spoke of "a class or function".
    X = np.random.default_rng(0).normal(size=(40, 3))
    init = pd.DataFrame(X[:2], columns=["a", "b", "c"])
    km = make("KMeansTransformer", n_clusters=2, init=init).fit(X)
    with pytest.raises(
        TypeError, match=r"init is a DataFrame.*init=value.to_numpy\(\)"
    ):
        persistence.save(km, tmp_path / "km.pt")
    persistence.save(km.set_params(init=init.to_numpy()), tmp_path / "km.pt")


def _as_saved_on_a_gpu(plain):
    """A file's data with every ``device`` as a fit on a GPU saves it."""
    if isinstance(plain, dict):
        return {
            k: "cuda" if k == "device" and v is not None else _as_saved_on_a_gpu(v)
            for k, v in plain.items()
        }
    if isinstance(plain, (list, tuple)):
        return type(plain)(_as_saved_on_a_gpu(v) for v in plain)
    return plain


@pytest.mark.parametrize("representation", ["fitted", "unfitted"])
def test_load_on_the_cpu_moves_the_nested_representation_too(
    representation, data, tmp_path
):
    # A fine-tuner saved on a GPU, loaded with device="cpu" on a machine
    # without one: its representation was rebuilt on "cuda" and failed (a
    # fitted one) or kept device="cuda", so that a clone could not fit.
    X, y = data
    rep = _ae()
    if representation == "fitted":
        rep = _fit(rep, X, None)
    clf = _fit(make("FineTuner").set_params(representation=rep), X, y)
    path = tmp_path / "clf.pt"
    clf.save(path)
    _resave(_as_saved_on_a_gpu(torch.load(path, weights_only=True)), path)

    loaded = FineTuner.load(path, device="cpu")
    assert loaded.device == "cpu"
    assert loaded.representation.device == "cpu"
    assert loaded.representation_.device == "cpu"
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # A clone fits on the CPU (pre-training an unfitted representation anew).
    refit = _fit(clone(loaded), X, y)
    if representation == "unfitted":
        np.testing.assert_array_equal(refit.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda spec: spec["params"].update(bogus=1), "parameter\\(s\\) 'bogus'"),
        (lambda spec: spec.pop("params"), "without its parameters"),
        (
            lambda spec: spec["state"]["net_"].pop("optimizer"),
            "network entry that lacks 'optimizer'",
        ),
        (
            lambda spec: spec["state"]["net_"].pop("history"),
            "network entry that lacks 'history'",
        ),
        (lambda spec: spec.update(params=[]), "without its parameters"),
    ],
    ids=[
        "unknown-parameter",
        "no-parameters",
        "no-optimizer",
        "no-history",
        "parameters-not-a-dict",
    ],
)
def test_load_of_a_file_of_another_version_says_so(edit, match, data, tmp_path):
    # A TypeError of __init__ or a bare KeyError said neither which file
    # nor why.
    X, _ = data
    path = tmp_path / "ae.pt"
    _fit(_ae(), X, None).save(path)
    payload = torch.load(path, weights_only=True)
    edit(payload["estimator"])
    _resave(payload, path)
    with pytest.raises(
        ValueError,
        match=f"ae.pt'.*{match}.*another version of sk_replearn.*Load it with",
    ):
        AutoencoderTransformer.load(path)


def test_save_never_touches_another_file_and_threads_may_save_at_once(tmp_path):
    # The temporary file has a name of its own: a user's file named as the
    # old scheme's (path + ".tmp" + pid) stays, and threads saving to one
    # path each write their own before the rename.
    from concurrent.futures import ThreadPoolExecutor

    X = np.random.default_rng(0).normal(size=(30, 4))
    pca = PCATransformer(n_components=2).fit(X)
    path = tmp_path / "pca.pt"
    mine = tmp_path / f"pca.pt.tmp{os.getpid()}"
    mine.write_text("the user's own file")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: pca.save(path), range(16)))
    assert mine.read_text() == "the user's own file"
    np.testing.assert_array_equal(
        PCATransformer.load(path).transform(X), pca.transform(X)
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pca.pt", mine.name]
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    """This process's umask (set and put back: read in a test only)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_numpy_labels_as_dict_keys_are_saved_as_numbers(tmp_path):
    # class_weight built from np.unique(y) has numpy integer keys.
    from sk_replearn import FineTuner
    from sk_replearn.persistence import from_plain, to_plain

    assert from_plain(to_plain({np.int64(1): 3.0, np.int32(0): 1.0}, "cw")) == {
        1: 3.0,
        0: 1.0,
    }
    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    y = np.repeat(np.array([0, 1], dtype=np.int64), 20)
    weights = {np.int64(0): 1.0, np.int64(1): 3.0}
    clf = FineTuner(
        PCATransformer(n_components=2), class_weight=weights, max_epochs=1,
        random_state=0,
    ).fit(X, y)  # fmt: skip
    persistence.save(clf, tmp_path / "clf.pt")
    assert persistence.load(tmp_path / "clf.pt").class_weight == {0: 1.0, 1: 3.0}


def test_an_array_of_strings_keeps_its_shape():
    from sk_replearn.persistence import from_plain, to_plain

    a = np.array([["a", "b", "c"], ["d", "e", "f"]])
    back = from_plain(to_plain(a, "x"))
    assert back.shape == (2, 3) and (back == a).all()


def test_a_loaded_net_keeps_its_optimiser_and_schedule(tmp_path):
    # Adam's moments and the cosine schedule's length (validation batches of
    # early stopping counted): a warm start after load goes on as without it.
    X = np.random.default_rng(0).normal(size=(100, 8)).astype(np.float32)
    est = AutoencoderTransformer(
        n_components=2, encoder="mlp", max_epochs=2, batch_size=16,
        early_stopping=True, lr_schedule="cosine", random_state=0,
    ).fit(X)  # fmt: skip
    persistence.save(est, tmp_path / "e.pt")
    back = persistence.load(tmp_path / "e.pt")

    def total_steps(e):
        return dict(e.net_.callbacks_)["lr_schedule"].lr_lambda.total_steps

    assert total_steps(back) == total_steps(est)
    a = est.net_.optimizer_.state_dict()["state"]
    b = back.net_.optimizer_.state_dict()["state"]
    assert a and a.keys() == b.keys()
    for k in a:
        for name, value in a[k].items():
            torch.testing.assert_close(
                torch.as_tensor(b[k][name]), torch.as_tensor(value)
            )


def test_the_save_function_refuses_an_unfitted_estimator(tmp_path):
    # As the save method does; else the file loads as an estimator that
    # lacks the fitted attributes it claims.
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        persistence.save(PCATransformer(n_components=2), tmp_path / "pca.pt")
    assert list(tmp_path.iterdir()) == []


def test_a_file_whose_tensors_were_saved_on_a_gpu_loads_on_the_cpu(tmp_path):
    # torch.load puts each tensor back on the device it was saved from, which
    # a machine without that GPU lacks. Here the file's storages are marked
    # "cuda:0" as a fit on a GPU writes them (pickle protocol 2 strings).
    import zipfile

    X = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    pca = PCATransformer(n_components=2).fit(X)
    persistence.save(pca, tmp_path / "cpu.pt")
    with (
        zipfile.ZipFile(tmp_path / "cpu.pt") as src,
        zipfile.ZipFile(tmp_path / "gpu.pt", "w") as out,
    ):
        for info in src.infolist():
            content = src.read(info)
            if info.filename.endswith("/data.pkl"):
                cpu, cuda = b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"
                assert cpu in content
                content = content.replace(cpu, cuda)
            out.writestr(info, content)
    back = persistence.load(tmp_path / "gpu.pt")
    np.testing.assert_array_equal(back.transform(X), pca.transform(X))


def test_a_file_that_may_not_be_read_raises_its_permission_error(tmp_path, monkeypatch):
    # No permission to read is not a damaged file (as root, chmod does not
    # stop reads: pretend).
    path = tmp_path / "pca.pt"
    X = np.random.default_rng(0).normal(size=(20, 4))
    persistence.save(PCATransformer(n_components=2).fit(X), path)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(PermissionError):
        persistence.load(path)


@pytest.mark.parametrize(
    ("version", "match"),
    [
        (10**6, r"written by a newer sk_replearn \(format version 1000000\)"),
        ("1", r"format version is '1', not a whole number"),
        (1.5, r"format version is 1.5, not a whole number"),
    ],
)
def test_a_file_of_a_version_this_one_cannot_read_is_refused_by_name(
    tmp_path, version, match
):
    path = tmp_path / "est.pt"
    torch.save({"format": "sk_replearn-estimator", "version": version}, path)
    with pytest.raises(ValueError, match=match):
        persistence.load(path)


def test_save_load_of_a_regressor_of_several_targets(tmp_path):
    """A regressor of several targets saves and loads with all its outputs."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4)).astype(np.float32)
    Y = np.c_[X[:, 0], X[:, 1] - X[:, 2], 3 * X[:, 3]]
    reg = FineTunerRegressor(
        PCATransformer(n_components=3), max_epochs=1, random_state=0
    )
    reg.fit(X, Y).save(tmp_path / "reg.pt")
    loaded = persistence.load(tmp_path / "reg.pt")
    assert loaded.predict(X).shape == (40, 3)
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))


def test_plain_data_keeps_complex_numbers_devices_and_arrays_of_bools():
    """Every kind of value to_plain takes, bytes too, survives torch's safe loader."""
    from sk_replearn.persistence import from_plain, to_plain

    value = {
        "complex": 1 + 2j,
        "scalar": np.float32(0.5),
        "device": torch.device("cpu"),
        "mask": np.array([[True, False], [False, True]]),
        "pair": (np.arange(2), "x"),
        "raw": b"ab",
        "byte_strings": np.array([[b"ab", b"c"]]),
    }
    import io

    buffer = io.BytesIO()
    torch.save(to_plain(value, "value"), buffer)
    buffer.seek(0)
    back = from_plain(torch.load(buffer, weights_only=True))
    assert type(back["complex"]) is complex and back["complex"] == 1 + 2j
    assert type(back["scalar"]) is float and back["scalar"] == 0.5
    assert isinstance(back["device"], torch.device)
    assert back["device"] == torch.device("cpu")
    assert back["mask"].dtype == np.bool_
    np.testing.assert_array_equal(back["mask"], value["mask"])
    assert isinstance(back["pair"], tuple) and back["pair"][1] == "x"
    assert isinstance(back["pair"][0], np.ndarray)
    np.testing.assert_array_equal(back["pair"][0], [0, 1])
    assert back["raw"] == b"ab"
    assert back["byte_strings"].dtype == np.dtype("S2")
    np.testing.assert_array_equal(back["byte_strings"], value["byte_strings"])


def test_plain_data_is_a_detached_copy_of_arrays_and_tensors():
    """Changing an array or tensor after to_plain leaves the plain value as it was."""
    from sk_replearn.persistence import from_plain, to_plain

    array, weight = np.arange(3.0), torch.zeros(2, requires_grad=True)
    plain = to_plain({"array": array, "weight": weight}, "value")
    array[0] = 9.0
    with torch.no_grad():
        weight[0] = 9.0
    assert not plain["weight"].requires_grad
    assert plain["weight"].tolist() == [0.0, 0.0]
    assert from_plain(plain)["array"].tolist() == [0.0, 1.0, 2.0]


def test_a_random_state_comes_back_where_its_stream_stood():
    """A RandomState, with a normal draw cached, goes on with the same draws."""
    import copy

    from sk_replearn.persistence import from_plain, to_plain

    rs = np.random.RandomState(2**31 + 5)
    rs.normal(size=3)  # an odd number of normals leaves one cached
    rs.randint(0, 2**32 - 1, size=700, dtype=np.uint64)  # key words past 2**31
    expected = copy.deepcopy(rs)
    back = from_plain(to_plain(rs, "random_state"))
    np.testing.assert_array_equal(back.normal(size=5), expected.normal(size=5))
    np.testing.assert_array_equal(back.randint(0, 100, 5), expected.randint(0, 100, 5))


def test_to_plain_refuses_what_would_load_as_something_else():
    """A key that marks the file's own values, or a lookalike class, is not saved."""
    from sk_replearn.persistence import from_plain, to_plain

    with pytest.raises(TypeError, match="only str and number keys"):
        to_plain({"__sk_replearn__": "ndarray", "data": torch.zeros(1)}, "d")

    class Adam(torch.optim.Adam):  # a user's optimizer with torch's name
        pass

    with pytest.raises(TypeError, match="Net.optimizer=.*cannot be saved as data"):
        to_plain(Adam, "Net.optimizer")
    assert from_plain(to_plain(torch.optim.Adam, "o")) is torch.optim.Adam

    class Tokenizer:  # not Hugging Face's
        def to_str(self):
            return "{}"

    with pytest.raises(TypeError, match="cannot be saved as data"):
        to_plain(Tokenizer(), "Net.tokenizer")


def test_load_onto_a_device_keeps_views_which_have_no_device(tmp_path):
    """load(device=...) sets the estimators' device and leaves views, without one."""
    X = np.random.default_rng(0).normal(size=(32, 6)).astype(np.float32)
    views = TabularViews(corruption_rate=0.3)
    simclr = SimCLRTransformer(
        encoder_kwargs={"hidden_sizes": (8, 4)}, projection_dim=4, views=views,
        max_epochs=1, batch_size=16, random_state=0,
    ).fit(X)  # fmt: skip
    simclr.save(tmp_path / "simclr.pt")
    loaded = SimCLRTransformer.load(tmp_path / "simclr.pt", device="cpu")
    assert loaded.device == "cpu"
    assert loaded.views.get_params() == views.get_params()
    np.testing.assert_array_equal(loaded.transform(X), simclr.transform(X))


def _fitted_pca():
    from sk_replearn import PCATransformer

    X = np.random.default_rng(0).normal(size=(20, 4))
    return PCATransformer(n_components=2).fit(X), X


def test_from_plain_refuses_tags_and_optimizers_it_does_not_know():
    """A forged or foreign tagged value is a ValueError, not a value passed on."""
    from sk_replearn.persistence import from_plain

    with pytest.raises(ValueError, match="Unknown tagged value 'pickle'"):
        from_plain({"__sk_replearn__": "pickle", "data": "x"})
    for name in ("lr_scheduler", "Adamm"):
        with pytest.raises(ValueError, match=f"torch.optim.{name}, which does not"):
            from_plain({"__sk_replearn__": "optimizer", "name": name})


def test_save_refuses_a_subclass_named_as_a_public_estimator():
    """A user's subclass under a public estimator's name is not saved as the parent."""
    from sk_replearn.persistence import to_plain

    subclass = type("AutoencoderTransformer", (AutoencoderTransformer,), {})
    with pytest.raises(TypeError, match="stores only sk_replearn's public estimators"):
        to_plain(subclass(), "representation")


def test_save_writes_format_version_1_and_load_reads_it(tmp_path):
    """The file is marked as an estimator of format version 1, which load reads."""
    pca, X = _fitted_pca()
    persistence.save(pca, tmp_path / "pca.pt")
    payload = torch.load(tmp_path / "pca.pt", weights_only=True)
    assert payload["format"] == "sk_replearn-estimator" and payload["version"] == 1
    np.testing.assert_array_equal(
        persistence.load(tmp_path / "pca.pt").transform(X), pca.transform(X)
    )


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ([1, 2], "is not a sk_replearn-estimator file"),
        ({"format": "sk_replearn-estimator", "version": 1}, "holds no estimator"),
    ],
    ids=["a-list", "no-estimator"],
)
def test_load_of_a_file_without_an_estimator_is_a_value_error(payload, match, tmp_path):
    """A file of other data, or of the format without an estimator, says so."""
    path = tmp_path / "other.pt"
    torch.save(payload, path)
    with pytest.raises(ValueError, match=f"other.pt' {match}"):
        persistence.load(path)


def test_load_of_a_training_checkpoint_says_it_is_not_an_estimator_file(tmp_path):
    """A checkpoint written during a fit is not taken for a saved estimator."""
    X = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    AutoencoderTransformer(
        n_components=2, max_epochs=1, random_state=0, checkpoint_dir=tmp_path
    ).fit(X)
    with pytest.raises(ValueError, match="is not a sk_replearn-estimator file"):
        persistence.load(tmp_path / "checkpoint.pt")


def test_load_of_a_path_that_cannot_be_opened_raises_its_os_error(tmp_path):
    """A file name too long to open is an OSError, not a damaged file."""
    with pytest.raises(OSError, match="too long"):
        persistence.load(tmp_path / ("m" * 300 + ".pt"))


def test_a_damaged_file_is_named_so_whatever_torchs_error_says(tmp_path, monkeypatch):
    """A cut-off file is called damaged even when torch's error has no message."""
    pca, _ = _fitted_pca()
    path = tmp_path / "pca.pt"
    persistence.save(pca, path)
    path.write_bytes(path.read_bytes()[:100])

    def fails(*args, **kwargs):
        raise RuntimeError()

    monkeypatch.setattr(torch, "load", fails)
    with pytest.raises(ValueError, match=r"pca.pt' is damaged.*\(RuntimeError: -\)"):
        persistence.load(path)


def test_a_failed_save_leaves_no_file_behind_and_the_old_one_whole(
    tmp_path, monkeypatch
):
    """A write that fails midway leaves the folder as it was."""
    pca, X = _fitted_pca()
    path = tmp_path / "pca.pt"
    persistence.save(pca, path)
    before = path.read_bytes()

    def fails(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", fails)
    with pytest.raises(OSError, match="No space left"):
        persistence.save(pca, path)
    assert [p.name for p in tmp_path.iterdir()] == ["pca.pt"]
    assert path.read_bytes() == before


def test_save_to_a_bare_file_name_writes_into_the_working_folder(tmp_path, monkeypatch):
    """save("model.pt") writes into the current folder."""
    pca, X = _fitted_pca()
    monkeypatch.chdir(tmp_path)
    persistence.save(pca, "pca.pt")
    np.testing.assert_array_equal(
        persistence.load(tmp_path / "pca.pt").transform(X), pca.transform(X)
    )


def test_save_keeps_where_it_runs_when_changed_since_fit(tmp_path):
    """compile and a representation's device set after fit are saved as set."""
    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    ae = AutoencoderTransformer(
        n_components=2, max_epochs=1, random_state=0, device="cpu"
    ).fit(X)
    ae.set_params(compile=True).save(tmp_path / "ae.pt")
    assert persistence.load(tmp_path / "ae.pt").compile is True
    rep = AutoencoderTransformer(n_components=2, max_epochs=1, device="auto")
    ft = FineTuner(rep, max_epochs=1, random_state=0).fit(X, y)
    ft.set_params(representation__device="cpu").save(tmp_path / "ft.pt")
    loaded = persistence.load(tmp_path / "ft.pt")
    assert loaded.representation.device == "cpu"
    np.testing.assert_array_equal(loaded.predict_proba(X), ft.predict_proba(X))


def test_a_loaded_warm_started_net_keeps_the_schedule_of_its_last_fit(tmp_path):
    """After warm starts on data of other sizes, load keeps the last fit's schedule."""
    X = np.random.default_rng(0).normal(size=(100, 6)).astype(np.float32)
    est = AutoencoderTransformer(
        n_components=2, max_epochs=1, batch_size=10, lr_schedule="cosine",
        warm_start=True, random_state=0,
    ).fit(X).fit(X[:40])  # fmt: skip
    persistence.save(est, tmp_path / "e.pt")
    back = persistence.load(tmp_path / "e.pt")

    def total_steps(e):
        return dict(e.net_.callbacks_)["lr_schedule"].lr_lambda.total_steps

    assert total_steps(back) == total_steps(est)


def test_a_value_that_is_not_data_is_quoted_whole_up_to_80_characters():
    """The error quotes a repr of up to 80 characters whole, a longer one cut."""
    from sk_replearn.persistence import to_plain

    class Opaque:
        def __init__(self, width: int) -> None:
            self.width = width

        def __repr__(self) -> str:
            return "r" * self.width

    with pytest.raises(TypeError) as short:
        to_plain(Opaque(80), "Net.param")
    assert f"Net.param={'r' * 80} cannot be saved" in str(short.value)
    with pytest.raises(TypeError) as long:
        to_plain(Opaque(81), "Net.param")
    assert f"Net.param={'r' * 80}... cannot be saved" in str(long.value)
    with pytest.raises(TypeError, match=r"Net.param=<a Linear module> cannot be saved"):
        to_plain(torch.nn.Linear(2, 2), "Net.param")


def test_load_of_a_barlow_twins_file_with_a_broken_network_entry_says_so(tmp_path):
    """A Barlow Twins file whose network entry is not a table names another version."""
    X = np.random.default_rng(0).normal(size=(32, 6)).astype(np.float32)
    est = BarlowTwinsTransformer(
        encoder_kwargs={"hidden_sizes": (8, 4)}, projection_dim=4, max_epochs=1,
        random_state=0,
    ).fit(X)  # fmt: skip
    path = tmp_path / "barlow.pt"
    est.save(path)
    payload = torch.load(path, weights_only=True)
    payload["estimator"]["state"]["net_"] = None
    _resave(payload, path)
    with pytest.raises(ValueError, match="barlow.pt'.*lacks 'module'.*another version"):
        BarlowTwinsTransformer.load(path)
