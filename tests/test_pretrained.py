"""Networks in and out: encoder= as a module, PretrainedTransformer, export_encoder.

The tests of real torchvision, timm and Hugging Face objects are skipped,
with the reason, where the library is absent (or, for torchvision, does not
import with this torch); CI runs them in a second environment
(``.ci/run``).
"""

from __future__ import annotations

import copy
import gc
import importlib.util
import io
import os
import pickle
import subprocess
import sys
import warnings
import weakref
from collections import OrderedDict

import numpy as np
import pytest
import torch
from _instances import INSTANCES, SEQUENCE_INSTANCES, make
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from torch import nn

from sk_replearn import (
    CollapseWarning,
    FineTuner,
    PretrainedTransformer,
    SimCLRTransformer,
    persistence,
)
from sk_replearn.nn.pretrained import (
    ExportedModule,
    HFTextBackbone,
    ImagePreprocess,
    PretrainedBackbone,
    pool_features,
    strip_classifier,
)
from sk_replearn.nn.surgery import encoder_blocks

RUN = {"max_epochs": 1, "batch_size": 16, "device": "cpu", "random_state": 0}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:160].astype(np.float32), y[:160]


class SmallNet(nn.Module):
    """A small "pre-trained" classification network: stem, two stages, fc."""

    def __init__(self, in_channels: int = 1, n_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU())
        self.stage1 = nn.Sequential(
            nn.Conv2d(8, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU()
        )
        self.stage2 = nn.Sequential(nn.Conv2d(12, 16, 3, stride=2), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, n_classes)

    def forward(self, x):
        h = self.stage2(self.stage1(self.stem(x)))
        return self.fc(self.pool(h).flatten(1))


def _small_net() -> nn.Module:
    torch.manual_seed(0)
    return SmallNet()


def _params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


# -- encoder= as a module instance or a factory ----------------------------------
def test_encoder_module_instance_is_copied_never_trained_in_place(digits):
    X, _ = digits
    net = nn.Sequential(
        nn.Conv2d(1, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    before = _params(net)
    est = SimCLRTransformer(encoder=net, input_shape=(1, 8, 8), **RUN).fit(X)
    assert est.transform(X).shape == (len(X), 6)
    assert _same(before, _params(net)), "fit trained the caller's module"
    trained = est.net_.module_.backbone
    assert trained is not net and not _same(before, _params(trained))
    # Clones (and a grid search's fits) each copy it again.
    search = GridSearchCV(
        Pipeline([("rep", est), ("clf", FunctionTransformer())]),
        {"rep__temperature": [0.1, 0.5]},
        cv=2,
        scoring=lambda *_: 0.0,
    ).fit(X)
    assert _same(before, _params(search.best_estimator_.named_steps["rep"].encoder))
    assert _same(before, _params(net))


def test_encoder_factory_is_called_at_each_fit(digits):
    X, _ = digits
    calls = []

    def factory():
        calls.append(1)
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 5))

    est = SimCLRTransformer(encoder=factory, input_shape=(1, 8, 8), **RUN)
    a = est.fit_transform(X)
    b = clone(est).fit_transform(X)
    assert a.shape == (len(X), 5) and len(calls) == 2
    np.testing.assert_array_equal(a, b)  # seeded by random_state


def test_encoder_module_of_the_wrong_shape_says_so(digits):
    X, _ = digits
    net = nn.Sequential(nn.Flatten(), nn.Linear(10, 3))  # takes 10 features, not 64
    est = SimCLRTransformer(encoder=net, input_shape=(1, 8, 8), **RUN)
    with pytest.raises(ValueError, match="failed on a zero batch"):
        est.fit(X)


# -- export_encoder ------------------------------------------------------------------
_NEURAL = [
    n
    for n in INSTANCES
    if n not in ("PCATransformer", "KMeansTransformer", "PretrainedTransformer")
]


def _fit_row(name, X, y):
    est = make(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollapseWarning)
        return est.fit(X, y) if name.startswith("FineTuner") else est.fit(X)


@pytest.mark.parametrize("name", _NEURAL)
def test_export_encoder_gives_transform_s_output(name, digits):
    X, y = digits
    est = _fit_row(name, X, y.astype(float) if name == "FineTunerRegressor" else y)
    encoder = est.export_encoder()
    assert isinstance(encoder, nn.Module) and not encoder.training
    with torch.no_grad():
        z = encoder(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(z, est.transform(X), rtol=1e-5, atol=1e-5)
    assert encoder.out_features == z.shape[1]
    # A copy: changing it leaves the estimator's transform as it was.
    before = est.transform(X[:5])
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(1.0)
    np.testing.assert_array_equal(est.transform(X[:5]), before)


def test_export_encoder_follows_transform_layer(digits):
    X, _ = digits
    est = SimCLRTransformer(input_shape=(1, 8, 8), transform_layer=0, **RUN).fit(X)
    with torch.no_grad():
        z = est.export_encoder()(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(z, est.transform(X), rtol=1e-5, atol=1e-6)
    assert z.shape[1] != est.n_components_


@pytest.mark.parametrize("name", sorted(SEQUENCE_INSTANCES))
def test_export_encoder_of_a_sequence_model_takes_token_ids(name):
    seqs = ["ACDEFG"[: 2 + i % 5] * (1 + i % 3) for i in range(40)]
    est = make(name).fit(seqs)
    data = est._token_data(seqs)
    ids = data.ids[:, : int(data.lengths.max())]
    with torch.no_grad():
        z = est.export_encoder()(ids).numpy()
    np.testing.assert_allclose(z, est.transform(seqs), rtol=1e-5, atol=1e-5)


def _export(module: nn.Module, example: torch.Tensor, path) -> None:
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, path)


_FRESH_PROCESS = """
import sys, numpy as np, torch
program = torch.export.load(sys.argv[1])
x = torch.from_numpy(np.load(sys.argv[2]))
np.save(sys.argv[3], program.module()(x).detach().numpy())
assert not any(m.startswith("sk_replearn") for m in sys.modules), "imported sk_replearn"
"""


@pytest.mark.parametrize("name", ["SimCLRTransformer", "MAETransformer", "FineTuner"])
def test_exported_encoder_runs_in_a_fresh_process_with_torch_alone(
    name, digits, tmp_path
):
    X, y = digits
    est = _fit_row(name, X, y)
    _export(est.export_encoder(), torch.from_numpy(X[:4]), tmp_path / "enc.pt2")
    np.save(tmp_path / "x.npy", X[:37])
    env = {**os.environ, "PYTHONPATH": ""}
    subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS, str(tmp_path / "enc.pt2"),
         str(tmp_path / "x.npy"), str(tmp_path / "z.npy")],
        check=True, cwd=tmp_path, env=env, capture_output=True, timeout=300,
    )  # fmt: skip
    np.testing.assert_allclose(
        np.load(tmp_path / "z.npy"), est.transform(X[:37]), rtol=1e-5, atol=1e-5
    )


def test_export_encoder_before_fit_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SimCLRTransformer().export_encoder()


# -- PretrainedTransformer ---------------------------------------------------------
def test_pretrained_gives_penultimate_features_not_class_scores(digits):
    X, _ = digits
    net = _small_net()
    # on the CPU, as the reference (cuDNN convolves float32 in TF32)
    rep = PretrainedTransformer(net, input_shape=(1, 8, 8), device="cpu").fit(X)
    assert rep.classifier_ == "fc" and rep.n_components_ == 16
    net.eval()
    with torch.no_grad():
        h = net.stage2(net.stage1(net.stem(torch.from_numpy(X).view(-1, 1, 8, 8))))
    np.testing.assert_allclose(rep.transform(X), h.mean((2, 3)).numpy(), atol=1e-6)
    assert isinstance(net.fc, nn.Linear), "the caller's network was changed"


def test_strip_classifier_replaces_the_last_child_of_a_classifier_name():
    # The classifier is the network's last such child: "fc" here is a hidden
    # layer. The first one (fc) was replaced, cutting the features too early.
    net = nn.Sequential(
        OrderedDict(body=nn.Linear(8, 6), fc=nn.Linear(6, 4), head=nn.Linear(4, 10))
    )
    assert strip_classifier(net) == "head"
    assert isinstance(net.head, nn.Identity)
    assert isinstance(net.fc, nn.Linear) and isinstance(net.body, nn.Linear)


def test_pretrained_layer_cut_equals_a_forward_hook(digits):
    X, _ = digits
    net = _small_net().eval()
    seen = []
    handle = net.stage1.register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        net(torch.from_numpy(X).view(-1, 1, 8, 8))
    handle.remove()
    rep = PretrainedTransformer(
        net, layer="stage1", input_shape=(1, 8, 8), device="cpu"
    ).fit(X)  # on the CPU, as the reference
    np.testing.assert_allclose(
        rep.transform(X), seen[0].mean((2, 3)).numpy(), atol=1e-6
    )
    assert rep.classifier_ is None
    flat = PretrainedTransformer(
        net, layer="stage1.2", pooling="flatten", input_shape=(1, 8, 8), device="cpu"
    ).fit(X)
    np.testing.assert_allclose(flat.transform(X), seen[0].flatten(1).numpy(), atol=1e-6)


def test_pretrained_wrong_layer_lists_the_valid_ones(digits):
    X, _ = digits
    rep = PretrainedTransformer(_small_net(), layer="stage3", input_shape=(1, 8, 8))
    with pytest.raises(
        ValueError, match=r"'stage3'.*Did you mean 'stage\d'.*stem, stem.0"
    ):
        rep.fit(X)


class _Volume(nn.Module):
    def forward(self, x):
        return x.reshape(len(x), 1, 1, 8, 8)


class _Scalar(nn.Module):
    def forward(self, x):
        return x.sum((1, 2, 3))


@pytest.mark.parametrize("net", [_Volume(), _Scalar()])
def test_pretrained_output_neither_2d_3d_nor_4d_raises(net, digits):
    X, _ = digits
    with pytest.raises(ValueError, match=r"returned an output of shape.*layer="):
        PretrainedTransformer(net, input_shape=(1, 8, 8)).fit(X)


@pytest.mark.parametrize(
    ("device", "match"),
    [("gpu", "'gpu' is not a device name"), ("cuda:7", "cuda:7")],
)
def test_pretrained_fit_refuses_a_device_as_every_fit_does(device, match, digits):
    # fit accepted them and transform raised, so a Pipeline or a grid search
    # failed a step later than for the trained estimators.
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that device")
    X, _ = digits
    with pytest.raises(ValueError, match=match):
        PretrainedTransformer(_small_net(), input_shape=(1, 8, 8), device=device).fit(X)


def test_pretrained_pools_tokens_by_mean_or_first():
    out = torch.arange(24.0).reshape(2, 3, 4)
    assert torch.equal(pool_features(out, "cls"), out[:, 0])
    assert torch.equal(pool_features(out, "avg"), out.mean(1))
    with pytest.raises(ValueError, match="pooling='cls'.*feature map"):
        pool_features(torch.ones(2, 3, 4, 4), "cls")


def test_pretrained_wrong_input_shape_says_what_the_network_takes(digits):
    X, _ = digits
    net = SmallNet(in_channels=3)
    with pytest.raises(ValueError, match="input_shape"):
        PretrainedTransformer(net, preprocess=None, input_shape=(1, 8, 8)).fit(X)
    with pytest.raises(ValueError, match="input_shape"):
        PretrainedTransformer(net, preprocess=None).fit(X)  # tabular rows


def test_pretrained_preprocess_repeats_channels_and_resizes(digits):
    X, _ = digits
    net = SmallNet(in_channels=3)
    rep = PretrainedTransformer(net, image_size=16, input_shape=(1, 8, 8)).fit(X)
    prep = rep.encoder_.prep
    assert prep(torch.zeros(2, 1, 8, 8)).shape == (2, 3, 16, 16)
    assert rep.transform(X).shape == (len(X), 16)


def test_a_pickle_naming_the_image_adapter_where_it_was_defined_still_loads(digits):
    # ImagePreprocess was defined in nn/pretrained.py before it moved to
    # nn/_preprocess.py (public from pretrained still): a fitted transformer
    # pickled then names the old module.
    X, _ = digits
    net = SmallNet(in_channels=3)
    rep = PretrainedTransformer(net, image_size=16, input_shape=(1, 8, 8)).fit(X)
    text = pickle.dumps(rep, protocol=0)  # globals as "c<module>\n<name>\n"
    old = text.replace(
        b"csk_replearn.nn._preprocess\n", b"csk_replearn.nn.pretrained\n"
    )
    assert old != text
    np.testing.assert_array_equal(pickle.loads(old).transform(X), rep.transform(X))
    same = PretrainedTransformer(
        net,
        preprocess=lambda x: torch.nn.functional.interpolate(
            x.expand(-1, 3, -1, -1), size=(16, 16), mode="bilinear"
        ),
        input_shape=(1, 8, 8),
    ).fit(X)
    np.testing.assert_allclose(same.transform(X), rep.transform(X), atol=1e-6)


def test_a_pickle_naming_the_preprocessing_function_where_it_was_defined_loads(
    digits,
):
    # A function given as preprocess is kept in a module defined in
    # transfer/pretrained.py before the preprocessing moved to
    # transfer/_pretrained_preprocess.py: a pickle made then names the old module.
    X, _ = digits
    net = SmallNet(in_channels=1)
    rep = PretrainedTransformer(net, preprocess=torch.tanh, input_shape=(1, 8, 8))
    rep.fit(X)
    text = pickle.dumps(rep, protocol=0)  # globals as "c<module>\n<name>\n"
    old = text.replace(
        b"csk_replearn.transfer._pretrained_preprocess\n",
        b"csk_replearn.transfer.pretrained\n",
    )
    assert old != text
    np.testing.assert_array_equal(pickle.loads(old).transform(X), rep.transform(X))


def test_image_preprocess_maps_the_range_to_0_1_then_standardises():
    # [low, high] -> [0, 1], then (x - mean) / std: [-1, 0, 1] -> [0, .5, 1]
    # -> [-2, 0, 2]. Multiplying by std gave [-.125, 0, .125]; dropping low
    # from x - low gave [-4, -2, 0] (alike only for data of minimum 0).
    prep = ImagePreprocess(low=-1.0, high=1.0, mean=[0.5], std=[0.25])
    out = prep(torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 1, 3))
    assert out.flatten().tolist() == [-2.0, 0.0, 2.0]


def test_pretrained_preprocess_scales_pixels_by_their_range_then_by_imagenet():
    # With a network's mean/std hints, X is rescaled to [0, 1] by its fit
    # range, then standardised per channel: pixels 0..255 land in about
    # [-2.12, 2.64]. The range read as (max, min) turned the rescaling off,
    # and the raw pixels reached the network as values up to ~1133.
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    X = np.random.default_rng(0).uniform(0, 255, size=(4, 3, 8, 8))
    X = X.astype(np.float32)
    rep = PretrainedTransformer(nn.Sequential(nn.Conv2d(3, 4, 3)), image_size=None)
    rep._validate_X(X.reshape(4, -1), reset=True)
    rep.input_shape_ = (3, 8, 8)
    prep = rep._build_preprocess(
        X.reshape(4, -1), rep.model, {"mean": mean, "std": std}
    )
    out = prep(torch.from_numpy(X)).numpy()
    unit = (X.astype(np.float64) - X.min()) / (X.max() - X.min())
    expected = (unit - np.reshape(mean, (1, 3, 1, 1))) / np.reshape(std, (1, 3, 1, 1))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert -2.12 < out.min() and out.max() < 2.65


def test_pretrained_weights_file_is_loaded_and_checked(digits, tmp_path):
    X, _ = digits
    trained = _small_net()
    torch.save(trained.state_dict(), tmp_path / "w.pt")
    torch.manual_seed(1)
    rep = PretrainedTransformer(
        SmallNet(), weights=tmp_path / "w.pt", input_shape=(1, 8, 8)
    ).fit(X)
    ref = PretrainedTransformer(trained, input_shape=(1, 8, 8)).fit(X)
    np.testing.assert_array_equal(rep.transform(X), ref.transform(X))
    # Weights of another architecture: the keys are named.
    torch.save(nn.Linear(3, 2).state_dict(), tmp_path / "other.pt")
    with pytest.raises(
        ValueError, match=r"missing keys: stem.0.weight.*unexpected keys: weight"
    ):
        PretrainedTransformer(SmallNet(), weights=tmp_path / "other.pt").fit(X)
    wide = SmallNet(n_classes=3)
    torch.save(wide.state_dict(), tmp_path / "wide.pt")
    with pytest.raises(ValueError, match=r"shape mismatches: fc.weight \(3, 16\)"):
        PretrainedTransformer(SmallNet(), weights=tmp_path / "wide.pt").fit(X)


def test_pretrained_refuses_a_weights_file_that_would_run_code(digits, tmp_path):
    X, _ = digits
    torch.save(_small_net(), tmp_path / "pickled.pt")  # the whole object: code
    with pytest.raises(ValueError, match="weights_only=True"):
        PretrainedTransformer(SmallNet(), weights=tmp_path / "pickled.pt").fit(X)
    with pytest.raises(ValueError, match="is not a file"):
        PretrainedTransformer(SmallNet(), weights=tmp_path / "absent.pt").fit(X)


def test_pretrained_factory_is_seeded_by_random_state(digits):
    X, _ = digits
    a = PretrainedTransformer(SmallNet, input_shape=(1, 8, 8), random_state=0)
    b = PretrainedTransformer(SmallNet, input_shape=(1, 8, 8), random_state=1)
    za = a.fit_transform(X)
    np.testing.assert_array_equal(clone(a).fit_transform(X), za)
    assert not np.allclose(b.fit_transform(X), za)


def test_a_model_class_that_needs_arguments_says_how_to_pass_them(digits):
    # Called bare, it raised Python's "__init__() missing 1 required
    # positional argument" from inside fit.
    import functools

    X, _ = digits

    class Wide(torch.nn.Module):
        def __init__(self, width):
            super().__init__()
            self.layer = torch.nn.Linear(64, width)

        def forward(self, x):
            return self.layer(x)

    with pytest.raises(TypeError, match=r"model=Wide is called with no arguments.*"
                       r"'width'.*functools.partial\(Wide, ...\)"):  # fmt: skip
        PretrainedTransformer(Wide).fit(X)
    rep = PretrainedTransformer(functools.partial(Wide, 3)).fit(X)
    assert rep.transform(X).shape == (len(X), 3)
    with pytest.raises(TypeError, match=r"model=functools.partial\(.*Wide, \.\.\.\)"):
        PretrainedTransformer(functools.partial(Wide)).fit(X)


def test_pretrained_pickles_and_save_says_it_stores_no_code(digits, tmp_path):
    X, _ = digits
    rep = PretrainedTransformer(_small_net(), input_shape=(1, 8, 8)).fit(X)
    again = pickle.loads(pickle.dumps(rep))
    np.testing.assert_array_equal(again.transform(X), rep.transform(X))
    match = (
        r"This PretrainedTransformer is fitted \(model=<a SmallNet module>\).*no code"
    )
    with pytest.raises(TypeError, match=match):
        persistence.save(rep, tmp_path / "rep.pt")
    with pytest.raises(TypeError, match=match):
        rep.save(tmp_path / "rep.pt")


def test_pretrained_reads_an_exported_encoder_file(digits, tmp_path):
    X, _ = digits
    ssl = SimCLRTransformer(input_shape=(1, 8, 8), **RUN).fit(X)
    _export(ssl.export_encoder(), torch.from_numpy(X[:4]), tmp_path / "enc.pt2")
    rep = PretrainedTransformer(str(tmp_path / "enc.pt2")).fit(X)
    np.testing.assert_allclose(rep.transform(X), ssl.transform(X), atol=1e-6)
    again = pickle.loads(pickle.dumps(rep))  # the program travels as bytes
    np.testing.assert_allclose(again.transform(X), ssl.transform(X), atol=1e-6)
    with pytest.raises(ValueError, match="neither 'torchvision:<name>'"):
        PretrainedTransformer(str(tmp_path / "absent.pt2")).fit(X)
    # A path is data, but the network it names is not: save says so, for the
    # transformer and for a fine-tuner of it, where it named encoder_, a
    # fitted attribute, and advised a named option the user had already used.
    match = r"is fitted \(model='.*enc.pt2'\).*fit it again"
    with pytest.raises(TypeError, match=match):
        rep.save(tmp_path / "rep.pt")
    clf = FineTuner(rep, max_epochs=1, random_state=0).fit(X[:100], np.arange(100) % 3)
    with pytest.raises(TypeError, match="FineTuner.representation is a fitted Pre"):
        clf.save(tmp_path / "clf.pt")


def test_save_of_a_fine_tuner_names_the_fitted_copy_of_an_unfitted_pretrained(
    digits, tmp_path
):
    """An unfitted PretrainedTransformer given to a fine-tuner is data; the
    refusal names the fitted copy the fine-tuner holds, not the parameter."""
    X, _ = digits
    net = _small_net().eval()
    _export(net, torch.from_numpy(X[:4]).reshape(-1, 1, 8, 8), tmp_path / "net.pt2")
    rep = PretrainedTransformer(str(tmp_path / "net.pt2"), input_shape=(1, 8, 8))
    clf = FineTuner(rep, max_epochs=1, random_state=0).fit(X[:60], np.arange(60) % 3)
    with pytest.raises(TypeError, match=r"^FineTuner\.representation_ is a fitted"):
        clf.save(tmp_path / "clf.pt")


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # a user's file
def test_a_torch_save_file_as_model_is_named_without_torch_s_log(
    digits, tmp_path, caplog
):
    # torch.export.load logged its traceback (pages of "W... torch/export")
    # before the refusal; a state dict is told to go through weights=.
    X, _ = digits
    torch.save(_small_net().state_dict(), tmp_path / "weights.pt")
    torch.save(_small_net(), tmp_path / "module.pt")
    legacy = dict(_use_new_zipfile_serialization=False)  # a bare pickle
    torch.save(_small_net().state_dict(), tmp_path / "legacy.pt", **legacy)
    for name in ("weights.pt", "module.pt", "legacy.pt"):
        with pytest.raises(ValueError, match="is a file of torch.save .* weights="):
            PretrainedTransformer(str(tmp_path / name)).fit(X)
    scripted = torch.jit.script(torch.nn.Linear(64, 3))
    torch.jit.save(scripted, tmp_path / "script.pt")
    with pytest.raises(ValueError, match=r"is a TorchScript file \(torch.jit.save"):
        PretrainedTransformer(str(tmp_path / "script.pt")).fit(X)
    with pytest.raises(ValueError, match="is a TorchScript module"):  # not torch's
        PretrainedTransformer(scripted).fit(X)  # "only change requires_grad..."
    assert not [r for r in caplog.records if r.name.startswith("torch")]


def test_a_program_exported_for_one_batch_size_says_to_export_it_dynamic(
    digits, tmp_path
):
    # The advice was input_shape= or preprocess, which no setting can meet;
    # at the probe's own batch of 2 the fit passed and transform failed.
    X, _ = digits
    for batch in (4, 2):
        program = torch.export.export(torch.nn.Linear(64, 3), (torch.zeros(batch, 64),))
        torch.export.save(program, tmp_path / "fixed.pt2")
        match = rf"exported for batches of {batch} samples only.*Dim\('batch'"
        with pytest.raises(ValueError, match=match):
            PretrainedTransformer(str(tmp_path / "fixed.pt2")).fit(X)


def test_layer_of_an_exported_program_is_refused_and_blocks_group_it(digits, tmp_path):
    # layer="0" suggested "Did you mean 'graph.0'?", which then "did not
    # run in the forward pass": a program's modules never run one by one.
    # blocks only group its weights (freeze_layers, layer_decay), and do.
    X, _ = digits
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8)
    )
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(
        net, (torch.zeros(4, 64),), dynamic_shapes=({0: batch},)
    )
    torch.export.save(program, tmp_path / "net.pt2")
    path = str(tmp_path / "net.pt2")
    for layer in ("graph.0", "0"):
        with pytest.raises(ValueError, match=f"^layer='{layer}' cannot cut a prog"):
            PretrainedTransformer(path, layer=layer).fit(X)
    assert PretrainedTransformer(path).fit(X).transform(X).shape == (len(X), 8)
    rep = PretrainedTransformer(path, blocks=["graph.0", "graph.2"]).fit(X)
    clf = FineTuner(rep, freeze_layers=1, max_epochs=2, random_state=0)
    clf.fit(X[:60], np.arange(60) % 3)
    tuned = clf.net_.module_.encoder.state_dict()
    start = rep.export_encoder().state_dict()
    same = {k.split(".graph.")[1]: torch.equal(tuned[k], v) for k, v in start.items()}
    assert same == {
        "0.weight": True,
        "0.bias": True,
        "2.weight": False,
        "2.bias": False,
    }


def test_exported_module_trains_and_keeps_its_weights_through_pickle():
    lin = nn.Linear(3, 2)
    buf = io.BytesIO()
    torch.export.save(torch.export.export(lin, (torch.randn(4, 3),)), buf)
    module = ExportedModule(buf.getvalue())
    module(torch.randn(4, 3)).sum().backward()  # exported for batches of 4
    assert all(p.grad is not None for p in module.parameters())
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    x = torch.randn(4, 3)
    for copy_ in (
        pickle.loads(pickle.dumps(module)),
        __import__("copy").deepcopy(module),
    ):
        assert torch.equal(copy_(x), module(x))
    assert not torch.equal(module(x), lin(x))


def _exported_bytes(module, x, dynamic=False) -> bytes:
    shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic else None
    buf = io.BytesIO()
    program = torch.export.export(module, (x,), dynamic_shapes=shapes)
    torch.export.save(program, buf)
    return buf.getvalue()


def test_exported_module_casts_its_weights_as_a_module_does():
    lin = nn.Linear(3, 2)
    module = ExportedModule(_exported_bytes(lin, torch.randn(4, 3), dynamic=True))
    module = module.double()
    assert all(p.dtype == torch.float64 for p in module.parameters())
    x = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(module(x), lin.double()(x))


def test_exported_module_keeps_its_mode_through_pickle_and_deepcopy():
    module = ExportedModule(_exported_bytes(nn.Linear(3, 2), torch.randn(4, 3)))
    for mode in (False, True):
        module.train(mode)
        assert pickle.loads(pickle.dumps(module)).training is mode
        assert copy.deepcopy(module).training is mode


def test_an_exported_program_without_weights_moves_copies_and_pickles():
    # A fixed transform has no weight to read its device from.
    module = ExportedModule(_exported_bytes(nn.Flatten(), torch.randn(4, 3, 2)))
    x = torch.randn(4, 3, 2)
    assert torch.equal(module.to("cpu")(x), x.flatten(1))
    assert torch.equal(copy.deepcopy(module)(x), x.flatten(1))
    assert torch.equal(pickle.loads(pickle.dumps(module))(x), x.flatten(1))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_pretrained_reduced_precision_network_runs_in_it_and_gives_float32(
    dtype, digits
):
    # A bf16 or fp16 checkpoint fitted (the probe took the weights' dtype),
    # then transform fed it float32 batches and failed.
    X, _ = digits
    net = _small_net().to(dtype)
    rep = PretrainedTransformer(net, input_shape=(1, 8, 8), device="cpu").fit(X)
    Z = rep.transform(X)
    assert Z.dtype == np.float32 and Z.shape == (len(X), 16)
    penultimate = copy.deepcopy(net).eval()
    penultimate.fc = nn.Identity()
    with torch.no_grad():
        expected = penultimate(torch.from_numpy(X).reshape(-1, 1, 8, 8).to(dtype))
    np.testing.assert_allclose(Z, expected.float().numpy(), rtol=1e-2, atol=1e-2)
    cut = PretrainedTransformer(net, layer="stem", input_shape=(1, 8, 8), device="cpu")
    assert cut.fit_transform(X).dtype == np.float32
    # Its float32 features feed a fine-tuner's float32 head.
    clf = FineTuner(rep, strategy="frozen", max_epochs=1, device="cpu", random_state=0)
    assert clf.fit(X, np.arange(len(X)) % 3).predict(X).shape == (len(X),)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_fine_tuning_a_reduced_precision_network_takes_steps_of_lr(dtype, digits):
    # Trained in its own dtype, the network rounded AdamW's small steps away:
    # at lr=1e-5, 1% of an fp16 layer's weights and none of its biases moved.
    # The fine-tuner trains a float32 copy.
    X, y = digits
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU()).to(dtype)
    rep = PretrainedTransformer(net, input_shape=(1, 8, 8), device="cpu").fit(X)
    lr, steps = 1e-5, 2  # one batch an epoch
    clf = FineTuner(
        rep, strategy="full", lr=lr, max_epochs=steps, batch_size=len(X),
        device="cpu", random_state=0,
    ).fit(X, y % 3)  # fmt: skip
    before = rep.export_encoder().state_dict()
    after = clf.export_encoder().state_dict()
    for name, old in before.items():
        step = (after[name].float() - old.float()).abs()
        assert float((step > 0).float().mean()) > 0.5, name  # (dead units: 0)
        assert float(step.max()) <= 1.5 * lr * steps  # AdamW: about lr a step
    assert next(rep.encoder_.parameters()).dtype == dtype  # its own: untouched


def test_hugging_face_backbone_pools_a_reduced_precision_model_in_float32():
    # Its bf16 states gave bf16 features, which numpy cannot hold.
    class Text(nn.Module):
        config = type("Config", (), {"hidden_size": 4})

        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 4)

        def forward(self, input_ids, attention_mask):
            return type("Out", (), {"last_hidden_state": self.embed(input_ids)})

    model = Text().to(torch.bfloat16)
    ids = torch.tensor([[1, 2, 0], [3, 0, 0]])  # 0 pads
    rows = model.embed.weight.float()
    expected = {
        "avg": torch.stack([(rows[1] + rows[2]) / 2, rows[3]]),
        "max": torch.stack([torch.maximum(rows[1], rows[2]), rows[3]]),
        "cls": rows[[1, 3]],
    }
    for pooling, want in expected.items():
        with torch.no_grad():
            out = HFTextBackbone(model, 0, pooling)(ids)
        assert out.dtype == torch.float32, pooling
        torch.testing.assert_close(out, want, rtol=0, atol=0)


def test_pretrained_transform_on_a_device_leaves_the_fitted_encoder_on_the_cpu(
    digits, monkeypatch
):
    # transform moved encoder_ to its device in place: after a transform on
    # CUDA, the estimator's pickle held CUDA tensors, which a machine without
    # a GPU cannot load. The meta device stands in for CUDA; meta tensors
    # hold no values to copy back, so the batches' loop returns zeros.
    X, _ = digits
    rep = PretrainedTransformer(_small_net(), input_shape=(1, 8, 8), device="cpu")
    rep.fit(X)
    runs = []

    def on_device(self, X, fn, n_out, *, device, **kwargs):
        out = fn(torch.zeros(len(X), X.shape[1], device=device))
        runs.append((fn, out.device.type))
        return np.zeros((len(X), n_out), dtype=np.float32)

    monkeypatch.setattr(
        PretrainedTransformer, "_device", lambda self: torch.device("meta")
    )
    monkeypatch.setattr(PretrainedTransformer, "_map_batches", on_device)
    rep.transform(X[:4])
    rep.transform(X[:4])
    assert [kind for _, kind in runs] == ["meta", "meta"]
    assert runs[1][0] is runs[0][0], "the network was copied to the device twice"
    for est in (rep, pickle.loads(pickle.dumps(rep))):
        assert {t.device.type for t in est.encoder_.state_dict().values()} == {"cpu"}
    # A change of the fitted weights reaches the device: a new copy.
    with torch.no_grad():
        next(rep.encoder_.parameters()).add_(1.0)
    rep.transform(X[:4])
    assert runs[2][0] is not runs[1][0]
    # So does new data of the same tensor (.data =, as .half() assigns it).
    weight = next(rep.encoder_.parameters())
    weight.data = weight.data.clone()
    rep.transform(X[:4])
    assert runs[3][0] is not runs[2][0]
    # A refit frees the device's copy of the encoder it replaces.
    copied = weakref.ref(runs[3][0])
    runs.clear()
    rep.fit(X)
    gc.collect()
    assert copied() is None


# -- FineTuner on a network pre-trained elsewhere -----------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"strategy": "frozen"},
        {"freeze_layers": 2},
        {"reinit_layers": 1},
        {"layer_decay": 0.5},
    ],
)
def test_finetuner_takes_every_strategy_on_a_pretrained_network(params, digits):
    X, y = digits
    net = _small_net()
    before = _params(net)
    rep = PretrainedTransformer(net, input_shape=(1, 8, 8))
    ft = FineTuner(rep, **{**RUN, "max_epochs": 2}, **params).fit(X, y)
    assert ft.n_blocks_ == 3  # stem, stage1, stage2: the children holding weights
    assert ft.predict(X).shape == (len(X),)
    assert _same(before, _params(net)), "fine-tuning changed the caller's network"
    encoder = ft.net_.module_.encoder
    start = rep.fit(X).encoder_.body.model
    stem_moved = not _same(_params(start.stem), _params(encoder.body.model.stem))
    assert stem_moved == (
        params.get("strategy") != "frozen" and "freeze_layers" not in params
    )


def test_finetuner_blocks_can_be_given(digits):
    X, y = digits
    rep = PretrainedTransformer(
        _small_net(), blocks=[["stem", "stage1"], "stage2"], input_shape=(1, 8, 8)
    )
    ft = FineTuner(rep, freeze_layers=1, **RUN).fit(X, y)
    assert ft.n_blocks_ == 2


def test_weights_a_blocks_list_leaves_out_join_the_block_where_they_run(digits):
    # They went to one extra block on top: reinit_layers=1 re-drew the stem's
    # batch norm from N(0, 0.02) (a scale near 0), and froze or decayed it
    # as the top layer.
    X, y = digits
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )  # fmt: skip
    for norm in (net[1], net[4]):
        nn.init.constant_(norm.weight, 5.0)
    rep = PretrainedTransformer(net, blocks=["0", "3"], input_shape=(1, 8, 8))
    ft = FineTuner(rep, reinit_layers=1, **RUN).fit(X, y)
    assert ft.n_blocks_ == 2  # conv 0 with its norm, conv 3 with its norm
    trained = ft.net_.module_.encoder.body.model
    assert torch.allclose(trained[4].weight, torch.ones(4), atol=0.05)  # re-drawn
    assert torch.allclose(trained[1].weight, torch.full((4,), 5.0), atol=0.05)


@pytest.mark.parametrize("size", [(0, 5), (32,), (32, 32, 3), (8.0, 8.0)])
def test_an_image_size_that_is_no_pair_of_sizes_is_named(size, digits):
    # It reached F.interpolate: "Input and output sizes should be greater
    # than 0", "must have the same number of spatial dimensions".
    X, _ = digits
    rep = PretrainedTransformer(_small_net(), image_size=size, input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match=r"image_size=.* a pair \(height, width\)"):
        rep.fit(X)


def test_grey_images_without_a_channel_axis_are_told_how_to_get_one(digits):
    # torch read a probe batch of two (H, W) samples as one 2-channel image:
    # "expected ... to have 3 channels, but got 2 channels instead".
    X, _ = digits
    images = X.reshape(-1, 8, 8)
    with pytest.raises(ValueError, match=r"without a channel axis.*X\[:, None\]"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # square: "read as signals" first
            PretrainedTransformer(_small_net()).fit(images)
    assert PretrainedTransformer(_small_net()).fit(images[:, None]).n_components_


class _DropoutNet(nn.Module):
    """Dropout between weighted layers, a direct child (as timm's ``pos_drop``)."""

    def __init__(self) -> None:
        super().__init__()
        self.drop_in = nn.Dropout(0.5)
        self.stem = nn.Linear(64, 16)
        self.drop = nn.Dropout(0.5)
        self.act = nn.ReLU()
        self.top = nn.Linear(16, 8)

    def forward(self, x):
        return self.top(self.act(self.drop(self.stem(self.drop_in(x.flatten(1))))))


def test_layers_without_weights_join_the_block_before_and_freeze_with_it(digits):
    # A dropout that is a direct child belonged to no block: freezing the
    # block before it left it dropping, so frozen features were noisy.
    X, y = digits
    torch.manual_seed(0)
    rep = PretrainedTransformer(_DropoutNet(), input_shape=(1, 8, 8))
    ft = FineTuner(rep, freeze_layers=1, **RUN).fit(X, y)
    net = ft.net_.module_.encoder.body.model
    blocks = encoder_blocks(ft.net_.module_.encoder)
    assert [b.modules for b in blocks] == [
        [net.drop_in, net.stem, net.drop, net.act],
        [net.top],
    ]
    module = ft.net_.module_.train()
    assert not net.drop_in.training and not net.drop.training and not net.act.training
    assert net.top.training
    assert module.training


def test_finetuner_fine_tunes_an_exported_encoder_file(digits, tmp_path):
    X, y = digits
    ssl = SimCLRTransformer(input_shape=(1, 8, 8), **RUN).fit(X)
    _export(ssl.export_encoder(), torch.from_numpy(X[:4]), tmp_path / "enc.pt2")
    ft = FineTuner(PretrainedTransformer(str(tmp_path / "enc.pt2")), **RUN).fit(X, y)
    assert ft.n_blocks_ > 1
    assert not np.allclose(ft.transform(X), ssl.transform(X))  # it trained
    again = pickle.loads(pickle.dumps(ft))
    np.testing.assert_array_equal(again.predict_proba(X), ft.predict_proba(X))


# -- real library objects, made locally ------------------------------------------------
def _library(name: str):
    try:
        return __import__(name)
    except Exception as exc:  # torchvision raises RuntimeError on a torch mismatch
        pytest.skip(f"{name} is not usable here ({type(exc).__name__}: {exc})")


def test_torchvision_resnet18_from_a_weights_file(tmp_path):
    tv = _library("torchvision")
    torch.manual_seed(0)
    resnet = tv.models.resnet18(weights=None)
    torch.save(resnet.state_dict(), tmp_path / "resnet18.pth")
    X = np.random.default_rng(0).random((6, 3, 32, 32)).astype(np.float32)
    rep = PretrainedTransformer(
        "torchvision:resnet18", weights=tmp_path / "resnet18.pth", image_size=None,
        device="cpu",  # as the reference: cuDNN convolves float32 in TF32
    ).fit(X)  # fmt: skip
    assert rep.n_components_ == 512 and rep.classifier_ == "fc"
    resnet.fc = nn.Identity()
    prep = rep.encoder_.prep  # [0, 1] by the fit range, then ImageNet statistics
    with torch.no_grad():
        ref = resnet.eval()(prep(torch.from_numpy(X))).numpy()
    np.testing.assert_allclose(rep.transform(X), ref, rtol=1e-4, atol=1e-5)
    cut = PretrainedTransformer(
        "torchvision:resnet18", weights=tmp_path / "resnet18.pth", layer="layer3",
        image_size=None,
    ).fit(X)  # fmt: skip
    assert cut.n_components_ == 256
    ft = FineTuner(cut, freeze_layers=3, max_epochs=1, batch_size=3, device="cpu",
                   random_state=0).fit(X, [0, 1, 0, 1, 0, 1])  # fmt: skip
    assert ft.n_blocks_ == 5  # conv1, bn1, layer1..layer3


def test_torchvision_weights_by_name_offline_says_how_to_pass_a_file(monkeypatch):
    tv = _library("torchvision")
    from urllib.error import URLError

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr(
        tv.models._api, "load_state_dict_from_url", offline, raising=False
    )
    X = np.zeros((2, 3, 32, 32), dtype=np.float32)
    with pytest.raises(ValueError, match=r"could not be downloaded.*weights='path/to"):
        PretrainedTransformer("torchvision:resnet18", weights="DEFAULT").fit(X)


def test_timm_tiny_model():
    _library("timm")
    X = np.random.default_rng(0).random((4, 3, 32, 32)).astype(np.float32)
    rep = PretrainedTransformer("timm:test_resnet", random_state=0).fit(X)
    Z = rep.transform(X)
    assert Z.shape == (4, rep.n_components_) and np.isfinite(Z).all()
    # The layer timm names its classifier ("classifier" was said of every
    # timm model); none for a model built without one.
    assert rep.classifier_ == "fc"
    timm = importlib.import_module("timm")
    headless = timm.create_model("test_resnet", pretrained=False, num_classes=0)
    assert PretrainedTransformer(headless).fit(X).classifier_ is None
    ft = FineTuner(rep, max_epochs=1, batch_size=2, device="cpu", random_state=0)
    assert ft.fit(X, [0, 1, 0, 1]).n_blocks_ > 1


@pytest.fixture
def tiny_bert(tmp_path):
    """A tiny Hugging Face BERT and its tokenizer, saved into a folder."""
    transformers = _library("transformers")
    vocab = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *"abcdefghijklmnopqrstuvwxyz",
    ]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab))
    try:  # transformers >= 5 takes the vocabulary itself
        tokenizer = transformers.BertTokenizerFast(
            vocab={t: i for i, t in enumerate(vocab)}
        )
    except TypeError:
        tokenizer = transformers.BertTokenizerFast(
            vocab_file=str(tmp_path / "vocab.txt")
        )
    assert tokenizer.vocab_size == len(vocab)
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.BertModel(config)
    folder = tmp_path / "tiny-bert"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, model.eval(), tokenizer


def test_hugging_face_text_model_from_a_local_folder(tiny_bert):
    folder, model, tokenizer = tiny_bert
    texts = ["a b c", "hello world", "x", "the quick brown fox jumps", ""]
    rep = PretrainedTransformer(f"hf:{folder}").fit(texts)
    Z = rep.transform(texts)
    assert Z.shape == (5, 16) and rep.n_components_ == 16
    # The mean of the last hidden states over the real tokens, one text at a time.
    for text, z in zip(texts, Z):
        enc = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            ref = model(**enc).last_hidden_state.mean(1)[0].numpy()
        np.testing.assert_allclose(z, ref, rtol=1e-4, atol=1e-5)
    cls = PretrainedTransformer(f"hf:{folder}", pooling="cls").fit(texts)
    enc = tokenizer(texts[1], return_tensors="pt")
    with torch.no_grad():
        ref = model(**enc).last_hidden_state[0, 0].numpy()
    np.testing.assert_allclose(cls.transform(texts)[1], ref, rtol=1e-4, atol=1e-5)
    again = pickle.loads(pickle.dumps(rep))
    np.testing.assert_allclose(again.transform(texts), Z, atol=1e-6)


def test_an_in_memory_hugging_face_text_model_is_sent_to_its_folder(tiny_bert):
    # As a module it read strings as numbers ("could not convert string to
    # float") or ran its embedding on float zeros.
    folder, model, _ = tiny_bert

    class Mine(type(model)):  # a subclass, as remote code's models are
        pass

    mine = Mine(model.config)
    for net in (model, mine, type(model)):  # the class too: a factory
        for X in (["a b c", "hello"], np.zeros((2, 8))):
            with pytest.raises(ValueError, match=r"a Hugging Face text model.*'hf:"):
                PretrainedTransformer(net).fit(X)
    assert PretrainedTransformer(f"hf:{folder}").fit(["a b c"]).n_components_ == 16


def test_a_hugging_face_text_model_is_cut_at_a_named_layer(tiny_bert):
    # layer= was ignored for "hf:" models (the guide's own example,
    # "encoder.layer.5", returned the last layer's features), and blocks= and a
    # name of no module were accepted without a word.
    folder, model, tokenizer = tiny_bert
    texts = ["a b c", "hello world", "the quick brown fox"]
    first = PretrainedTransformer(f"hf:{folder}", layer="encoder.layer.0")
    Z = first.fit(texts).transform(texts)
    for text, z in zip(texts, Z):
        enc = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            states = model(**enc, output_hidden_states=True).hidden_states
        np.testing.assert_allclose(z, states[1].mean(1)[0].numpy(), atol=1e-5)
    last = PretrainedTransformer(f"hf:{folder}", layer="encoder.layer.1")
    full = PretrainedTransformer(f"hf:{folder}")
    np.testing.assert_allclose(
        last.fit_transform(texts), full.fit_transform(texts), atol=1e-6
    )
    with pytest.raises(ValueError, match="'encoder.lyer.0' is not a module.*Did you"):
        PretrainedTransformer(f"hf:{folder}", layer="encoder.lyer.0").fit(texts)
    with pytest.raises(ValueError, match="blocks=.*Leave blocks=None"):
        PretrainedTransformer(f"hf:{folder}", blocks=["embeddings"]).fit(texts)
    # A single string's message offered token ids, which it then refused.
    with pytest.raises(TypeError, match=r"Series\); got a single str"):
        PretrainedTransformer(f"hf:{folder}").fit(texts).transform("a b c")


def test_finetuner_on_a_hugging_face_model_learns_from_strings(tiny_bert):
    folder, _, _ = tiny_bert
    rng = np.random.default_rng(0)
    # Letters apart: the tiny WordPiece vocabulary has no "##" pieces.
    texts = [
        " ".join(rng.choice(list("abc" if i % 2 else "xyz"), 6)) for i in range(60)
    ]
    y = np.arange(60) % 2
    ft = FineTuner(PretrainedTransformer(f"hf:{folder}"), max_epochs=20, lr=3e-3,
                   device="cpu", random_state=0).fit(texts, y)  # fmt: skip
    assert ft.n_blocks_ == 3  # embeddings, then the two layers
    assert (ft.predict(texts) == y).mean() > 0.9
    assert ft.transform(texts).shape == (60, 16)


def test_hugging_face_name_offline_says_how_to_pass_a_folder(monkeypatch):
    transformers = _library("transformers")

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", offline)
    with pytest.raises(ValueError, match="save_pretrained.*hf:path/to/folder"):
        PretrainedTransformer("hf:bert-base-uncased").fit(["a text"])


def test_block_reset_redraws_untyped_layers_by_their_names():
    from sk_replearn.nn.surgery import Block

    # The layers of a program loaded by torch.export.load are plain modules.
    layer, norm, loose = nn.Module(), nn.Module(), nn.Module()
    layer.weight = nn.Parameter(torch.full((4, 3), 5.0))
    layer.bias = nn.Parameter(torch.full((4,), 5.0))
    norm.weight = nn.Parameter(torch.full((4,), 5.0))
    loose.token = nn.Parameter(torch.full((1, 4), 5.0))
    Block.of(layer, norm, loose).reset_parameters()
    bound = 1 / 3**0.5  # nn.Linear's draw for 3 inputs
    assert 0 < layer.weight.abs().max() <= bound
    assert torch.equal(layer.bias, torch.zeros(4))
    assert torch.equal(norm.weight, torch.ones(4))
    assert 0 < loose.token.abs().max() < 0.2  # a normal of std 0.02


def test_a_missing_hf_library_is_named_with_the_hf_prefix():
    if importlib.util.find_spec("transformers") is not None:
        pytest.skip("transformers is installed")
    with pytest.raises(
        ImportError, match=r"model='hf:\.\.\.' needs transformers"
    ) as err:
        PretrainedTransformer("hf:some/model").fit(["a text", "another"])
    assert "torchvision" not in str(err.value)


def test_an_exported_program_that_creates_tensors_follows_its_module_to_a_device():
    # The program records the device of the tensors its graph creates: moving
    # the weights alone (to CUDA, say; here the meta device) broke the forward.
    pytest.importorskip("torch.export.passes")

    class Positions(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            return self.lin(x) + torch.arange(x.shape[1], device=x.device)

    buf = io.BytesIO()
    torch.export.save(torch.export.export(Positions(), (torch.randn(2, 4),)), buf)
    holder = nn.Sequential(ExportedModule(buf.getvalue())).to("meta")
    assert holder(torch.randn(2, 4, device="meta")).device.type == "meta"
    module = ExportedModule(buf.getvalue())
    x = torch.randn(2, 4)
    torch.testing.assert_close(copy.deepcopy(module)(x), module(x), rtol=0, atol=0)


def test_a_network_that_gives_nan_is_named_not_its_training(digits):
    # A frozen network's NaN was blamed on weights grown in fit, with the
    # advice to lower lr and check loss_curve_: it has neither.
    class Log(nn.Module):
        def forward(self, x):
            return torch.log(x.flatten(1) - 1.0)  # NaN below 1

    X, _ = digits
    rep = PretrainedTransformer(Log(), input_shape=(1, 8, 8), device="cpu").fit(X)
    with pytest.raises(ValueError, match="network itself produces them") as e:
        rep.transform(X)
    assert "lr" not in str(e.value) and "loss_curve_" not in str(e.value)


def test_weights_of_a_training_checkpoint_under_model_are_read(tmp_path):
    # The usual training-script file: {"model": state_dict, "epoch": ...}.
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 5))
    torch.save({"model": net.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    X = load_digits().data[:20].astype(np.float32)
    fresh = nn.Sequential(nn.Flatten(), nn.Linear(64, 5))
    rep = PretrainedTransformer(fresh, weights=tmp_path / "ckpt.pt").fit(X)
    expected = net(torch.from_numpy(X)).detach().numpy()
    np.testing.assert_allclose(rep.transform(X), expected, atol=1e-5)


def test_image_size_of_booleans_is_refused():
    X = np.random.default_rng(0).normal(size=(10, 64)).astype(np.float32)
    net = nn.Sequential(nn.Flatten(), nn.Linear(8, 4))
    rep = PretrainedTransformer(net, input_shape=(1, 8, 8), image_size=(True, 8))
    with pytest.raises(ValueError, match="image_size"):
        rep.fit(X)


def test_a_first_frozen_block_keeps_its_batch_norm_statistics():
    # freeze_layers=1 with a batch norm in the first block: its running
    # statistics stay the pre-trained ones (the block runs in eval mode).
    X, y = load_digits(return_X_y=True)
    X, y = X[:120].astype(np.float32), y[:120]
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU()),
        nn.Sequential(nn.Conv2d(4, 8, 3), nn.ReLU()),
    )
    before = net[0][1].running_mean.clone()
    rep = PretrainedTransformer(net, input_shape=(1, 8, 8))
    clf = FineTuner(rep, freeze_layers=1, max_epochs=1, random_state=0).fit(X, y)
    after = clf.net_.module_.encoder.state_dict()
    key = next(k for k in after if k.endswith("running_mean"))
    torch.testing.assert_close(after[key].cpu(), before)


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_a_1d_convnet_is_pooled_over_the_length_of_its_feature_maps(pooling):
    # (B, C, L) out of a Conv1d was read as tokens (B, T, D) and averaged
    # over its channels: a width of the signal's length, not the channels.
    X = np.random.default_rng(0).normal(size=(10, 2, 16)).astype(np.float32)
    net = nn.Sequential(
        nn.Conv1d(2, 4, 3), nn.BatchNorm1d(4), nn.ReLU(), nn.Conv1d(4, 6, 3)
    ).eval()
    maps = net(torch.from_numpy(X)).detach()
    rep = PretrainedTransformer(net, pooling=pooling).fit(X)
    by_hand = maps.mean(2) if pooling == "avg" else maps.amax(2)
    np.testing.assert_allclose(rep.transform(X), by_hand.numpy(), atol=1e-6)
    cut = PretrainedTransformer(net, layer="2").fit(X)  # after the ReLU
    assert cut.transform(X).shape == (10, 4)
    with pytest.raises(ValueError, match="pooling='cls'.*feature map"):
        PretrainedTransformer(net, pooling="cls").fit(X)
    # A transformer's tokens (B, T, D) stay pooled over the tokens.
    layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, dropout=0.0)
    tokens = PretrainedTransformer(layer).fit(X)
    expected = layer.eval()(torch.from_numpy(X)).detach().mean(1)
    np.testing.assert_allclose(tokens.transform(X), expected.numpy(), atol=1e-5)


def test_a_fine_tuned_reduced_precision_program_keeps_its_float32_weights(
    digits, tmp_path
):
    # FineTuner trains a float32 copy of a bfloat16 network; pickling or
    # copying the fitted fine-tuner must keep those weights, not round them
    # to the dtype the program was exported in.
    X, y = digits
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU()).to(torch.bfloat16)
    _export(net, torch.zeros(4, 1, 8, 8, dtype=torch.bfloat16), tmp_path / "bf16.pt2")
    rep = PretrainedTransformer(str(tmp_path / "bf16.pt2"), input_shape=(1, 8, 8))
    ft = FineTuner(rep, **RUN).fit(X, y)
    for again in (pickle.loads(pickle.dumps(ft)), copy.deepcopy(ft)):
        np.testing.assert_array_equal(again.predict_proba(X), ft.predict_proba(X))
    module = ExportedModule(_exported_bytes(nn.Linear(3, 2), torch.randn(4, 3), True))
    x = torch.randn(5, 3, dtype=torch.float64)
    module = module.double()
    for again in (pickle.loads(pickle.dumps(module)), copy.deepcopy(module)):
        assert all(p.dtype == torch.float64 for p in again.parameters())
        torch.testing.assert_close(again(x), module(x), rtol=0, atol=0)


def test_the_width_probe_runs_a_1d_convnet_once():
    # Finding that the output is a 1-D feature map, and its pooled width,
    # takes one forward pass of zeros, whatever the network costs.
    net = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Conv1d(4, 6, 3))
    calls = []
    net.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape))
    backbone = PretrainedBackbone(net)
    assert backbone.infer_width((2, 16)) == 6 and backbone.signal_maps
    assert calls == [torch.Size([2, 2, 16])]
    with pytest.raises(ValueError, match="pooling='cls'.*feature map"):
        PretrainedBackbone(net, pooling="cls").infer_width((2, 16))


# -- cutting, pooling and the blocks of a network, piece by piece --------------
def test_pool_features_takes_the_maximum_over_tokens_or_space():
    """ "max" is the largest value of each feature over the tokens or the map."""
    tokens = torch.tensor([[[1.0, 5.0], [3.0, -2.0], [2.0, 0.0]]])  # (1, 3, 2)
    assert pool_features(tokens, "max").tolist() == [[3.0, 5.0]]
    maps = torch.arange(8.0).reshape(1, 2, 2, 2)  # channels 0..3 and 4..7
    assert pool_features(maps, "max").tolist() == [[3.0, 7.0]]
    assert pool_features(maps, "avg").tolist() == [[1.5, 5.5]]


def test_strip_classifier_replaces_the_last_linear_of_a_sequential_head():
    """A head ``Sequential(Linear, ReLU, Linear)`` loses its output layer only."""
    net = nn.Sequential(
        OrderedDict(
            body=nn.Linear(8, 6),
            head=nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 10)),
        )
    )
    assert strip_classifier(net) == "head.2"
    assert isinstance(net.head[0], nn.Linear) and isinstance(net.head[2], nn.Identity)
    assert net(torch.zeros(3, 8)).shape == (3, 5)


def test_strip_classifier_resets_a_timm_style_model_by_its_own_method():
    """A model with timm's ``reset_classifier`` is named by its ``default_cfg``."""

    class TimmLike(nn.Module):
        default_cfg = {"classifier": "head.fc"}

        def __init__(self, num_classes):
            super().__init__()
            self.num_classes = num_classes
            self.head = nn.Linear(4, num_classes) if num_classes else nn.Identity()

        def reset_classifier(self, num_classes):
            self.num_classes = num_classes
            self.head = nn.Identity()

    net = TimmLike(10)
    assert strip_classifier(net) == "head.fc"
    assert net.num_classes == 0 and isinstance(net.head, nn.Identity)
    assert strip_classifier(TimmLike(0)) is None  # built without a classifier


class _Probe(nn.Module):
    """Counts its calls; its output is its input."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x


def test_pretrained_backbone_does_not_run_the_layers_after_its_cut():
    """Cut at a layer, the network's later layers are skipped."""
    after = _Probe()
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), after, nn.Linear(3, 2))
    backbone = PretrainedBackbone(net, layer="1")
    x = torch.randn(5, 4)
    assert backbone.infer_width((4,)) == 3
    torch.testing.assert_close(backbone(x), torch.relu(net[0](x)))
    assert after.calls == 0
    net(x)  # the network itself, called afterwards, runs whole and unhooked
    assert after.calls == 1


def test_pretrained_backbone_pools_the_first_tensor_of_a_tuple_output():
    """A network returning ``(features, extra)`` is read by its features."""

    class TwoOut(nn.Module):
        def forward(self, x):
            return x * 2, torch.zeros(len(x), 7)

    x = torch.randn(3, 5)
    torch.testing.assert_close(PretrainedBackbone(TwoOut())(x), x * 2)


def test_pretrained_backbone_refuses_a_bad_pooling_or_layer_when_built():
    """A wrong ``pooling`` or ``layer`` name fails at construction, named."""
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    with pytest.raises(ValueError, match=r"pooling='mean' must be one of"):
        PretrainedBackbone(net, pooling="mean")
    for layer in ("2", ""):
        with pytest.raises(ValueError, match=rf"layer='{layer}' is not a module"):
            PretrainedBackbone(net, layer=layer)


def test_a_layer_the_forward_pass_never_calls_is_named():
    """Cutting at an unused sub-module says that it did not run."""

    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(64, 4)
            self.spare = nn.Linear(64, 4)

        def forward(self, x):
            return self.used(x.flatten(1))

    X = np.zeros((4, 64), dtype=np.float32)
    with pytest.raises(ValueError, match=r"layer='spare' did not run in the forward"):
        PretrainedTransformer(Unused(), layer="spare").fit(X)


def test_cls_pooling_of_a_feature_map_is_not_blamed_on_the_input_shape(digits):
    """The pooling's own error reaches the user, without an input-shape hint."""
    X, _ = digits
    with pytest.raises(ValueError, match="pooling='cls'.*feature map") as info:
        PretrainedTransformer(
            _small_net(), layer="stage1", pooling="cls", input_shape=(1, 8, 8)
        ).fit(X)
    assert "zero batch" not in str(info.value)


class _Transpose(nn.Module):
    def forward(self, x):
        return x.transpose(1, 2)


def test_tokens_made_by_a_linear_after_a_1d_convolution_are_pooled_as_tokens():
    """Only the last weighted layer tells feature maps from tokens."""
    net = nn.Sequential(nn.Conv1d(2, 4, 3), _Transpose(), nn.Linear(4, 6)).eval()
    backbone = PretrainedBackbone(net)
    assert backbone.infer_width((2, 16)) == 6 and not backbone.signal_maps
    x = torch.randn(3, 2, 16)
    torch.testing.assert_close(backbone(x), net(x).mean(1))


def _block_names(net: nn.Module, blocks) -> list[list[str]]:
    name = {id(p): n for n, p in net.named_parameters()}
    return [sorted(name[id(p)] for p in b.params) for b in blocks]


def test_transfer_blocks_end_at_the_cut_and_hold_every_weight_once():
    """Blocks run up to the cut layer; the unused layers after it join the last."""
    net = nn.Sequential(
        nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)
    )
    blocks = PretrainedBackbone(net, layer="2").transfer_blocks()
    assert _block_names(net, blocks) == [
        ["0.bias", "0.weight"],
        ["2.bias", "2.weight", "4.bias", "4.weight"],
    ]
    assert blocks[1].modules == [net[2], net[3], net[4]]


class _WithToken(nn.Module):
    """A class token of its own, then one or two weighted children."""

    def __init__(self, n_children: int) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 4))
        self.body = nn.Linear(4, 4)
        if n_children == 2:
            self.top = nn.Linear(4, 4)

    def forward(self, x):
        h = self.body(x + self.token)
        return self.top(h) if hasattr(self, "top") else h


def test_a_networks_own_weights_join_its_first_block():
    """A class token of the network itself feeds, and joins, the first block."""
    two = _WithToken(2)
    assert _block_names(two, PretrainedBackbone(two).transfer_blocks()) == [
        ["body.bias", "body.weight", "token"],
        ["top.bias", "top.weight"],
    ]
    one = _WithToken(1)  # not a mere wrapper of its one child: its token counts
    assert _block_names(one, PretrainedBackbone(one).transfer_blocks()) == [
        ["body.bias", "body.weight", "token"]
    ]


def test_image_preprocess_changes_only_what_it_is_told_to():
    """A range of one value is no rescaling; channels repeat a grey image only."""
    x = torch.full((1, 1, 2, 2), 3.0)
    assert torch.equal(ImagePreprocess(low=3.0, high=3.0)(x), x)  # not 0 / 0
    prep = ImagePreprocess(channels=3)
    assert torch.equal(prep(x), x.expand(1, 3, 2, 2))
    two = torch.randn(1, 2, 2, 2)
    assert torch.equal(prep(two), two)


class _Tied(nn.Module):
    """Its output layer shares the input layer's weight."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 4)
        self.mid = nn.Linear(4, 4)
        self.out = nn.Linear(4, 4)
        self.out.weight = self.embed.weight

    def forward(self, x):
        return self.out(self.mid(self.embed(x)))


def test_a_weight_shared_by_two_layers_is_in_one_block_only():
    """A tied weight, left out of ``blocks``, is not placed twice."""
    net = _Tied()
    blocks = PretrainedBackbone(net, blocks=["embed", "mid"]).transfer_blocks()
    held = [id(p) for b in blocks for p in b.params]
    assert len(held) == len(set(held)) == len(list(net.parameters()))
    assert any(p is net.out.bias for p in blocks[1].params)


class _FakeLayer(nn.Module):
    """A transformer-like layer: each token plus the mean of the real tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Linear(4, 4)

    def forward(self, hidden, mask):
        m = mask[..., None].to(hidden.dtype)
        context = (hidden * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp_min(
            1
        )
        return self.dense(hidden) + context, None  # (states, attention)


class _FakeTextModel(nn.Module):
    """A stand-in for a Hugging Face ``AutoModel`` of the BERT family."""

    config = type("Config", (), {"hidden_size": 4})

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embeddings = nn.Embedding(10, 4)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList([_FakeLayer(), _FakeLayer()])
        self.pooler = nn.Linear(4, 4)

    def forward(self, input_ids, attention_mask=None):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.embeddings(input_ids)
        for layer in self.encoder.layer:
            hidden = layer(hidden, attention_mask)[0]
        return type("Out", (), {"last_hidden_state": hidden})


def test_hugging_face_backbone_features_ignore_padding():
    """A padded sequence gives the features it gives alone, at any cut."""
    model = _FakeTextModel().eval()
    padded = torch.tensor([[5, 6, 7, 0, 0], [8, 9, 0, 0, 0]])  # 0 pads
    for layer in (None, "encoder.layer.0"):
        for pooling in ("avg", "max", "cls"):
            backbone = HFTextBackbone(model, 0, pooling, layer)
            with torch.no_grad():
                both = backbone(padded)
                alone = [backbone(padded[:1, :3]), backbone(padded[1:, :2])]
            torch.testing.assert_close(
                both, torch.cat(alone), msg=f"{layer}, {pooling}"
            )
    cut = HFTextBackbone(model, 0, "avg", "encoder.layer.0")
    ids = padded[:1, :3]
    with torch.no_grad():
        by_hand = model.encoder.layer[0](model.embeddings(ids), ids != 0)[0].mean(1)
        torch.testing.assert_close(cut(ids), by_hand)
        # A row of padding alone has no token to average: zeros, not NaN.
        assert torch.equal(
            HFTextBackbone(model, 0)(torch.zeros(1, 3).long()), torch.zeros(1, 4)
        )


def test_hugging_face_backbone_refuses_bad_settings_and_cuts_without_states():
    """A wrong pooling or layer name, or a cut without token states, is named."""
    model = _FakeTextModel()
    with pytest.raises(ValueError, match="pooling='flatten' is not available"):
        HFTextBackbone(model, 0, "flatten")
    with pytest.raises(ValueError, match=r"layer='encoder.layer.2' is not a module"):
        HFTextBackbone(model, 0, layer="encoder.layer.2")

    class Summary(_FakeTextModel):
        def forward(self, input_ids, attention_mask=None):
            hidden = super().forward(input_ids, attention_mask).last_hidden_state
            return type("Out", (), {"last_hidden_state": self.pooler(hidden[:, 0])})

    cut = HFTextBackbone(Summary(), 0, layer="pooler")
    with pytest.raises(ValueError, match=r"layer='pooler'.*gives no hidden states"):
        cut(torch.tensor([[5, 6, 7]]))


def test_hugging_face_backbone_blocks_are_embeddings_then_layers():
    """One block for the embeddings, one per layer; the unused pooler joins the top."""
    model = _FakeTextModel()
    blocks = HFTextBackbone(model, 0).transfer_blocks()
    layers = model.encoder.layer
    assert [b.modules for b in blocks] == [[model.embeddings], [layers[0]], [layers[1]]]
    pooler = list(model.pooler.parameters())
    assert all(any(p is q for q in blocks[-1].params) for p in pooler)
    assert sum(len(b.params) for b in blocks) == len(list(model.parameters()))

    class Plain(nn.Module):  # no embeddings and encoder.layer: its children
        config = _FakeTextModel.config

        def __init__(self):
            super().__init__()
            self.embeddings = nn.Embedding(10, 4)
            self.act = nn.ReLU()
            self.top = nn.Linear(4, 4)

    plain = Plain()
    assert [b.modules for b in HFTextBackbone(plain, 0).transfer_blocks()] == [
        [plain.embeddings],
        [plain.top],
    ]


def test_block_reset_draws_untyped_weights_with_the_spread_of_torchs_layers():
    """An untyped layer's matrix and kernel are re-drawn uniform within
    nn.Linear's and nn.Conv2d's bound 1/sqrt(fan_in), with its spread."""
    from sk_replearn.nn.surgery import Block

    torch.manual_seed(0)
    layer, conv = nn.Module(), nn.Module()
    layer.weight = nn.Parameter(torch.full((64, 48), 5.0))  # fan_in 48
    conv.weight = nn.Parameter(torch.full((32, 3, 4, 4), 5.0))  # fan_in 48
    Block.of(layer, conv).reset_parameters()
    bound = 1 / 48**0.5
    for w in (layer.weight.detach(), conv.weight.detach()):
        assert float(w.abs().max()) <= bound
        # uniform on [-bound, bound]: standard deviation bound / sqrt(3)
        assert float(w.std()) == pytest.approx(bound / 3**0.5, rel=0.1)


class _FailingImport:
    """A finder whose import of ``name`` fails as a broken install's does."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname, path=None, target=None):
        if fullname == self.name:
            raise ImportError("undefined symbol: _ZN3c104impl")
        return None


@pytest.mark.parametrize("library", ["torchvision", "timm"])
def test_a_vision_library_that_does_not_import_is_named_with_the_extra(
    library, monkeypatch
):
    """A "torchvision:" or "timm:" model whose library fails to import names
    that library and the vision extra; torchvision's adds its torch pairing."""
    monkeypatch.delitem(sys.modules, library, raising=False)
    monkeypatch.setattr(sys, "meta_path", [_FailingImport(library), *sys.meta_path])
    X = np.zeros((2, 3, 8, 8), dtype=np.float32)
    with pytest.raises(ImportError) as err:
        PretrainedTransformer(f"{library}:resnet18").fit(X)
    message = str(err.value)
    assert f"model='{library}:...' needs {library}" in message
    assert "undefined symbol" in message and "sk_replearn[vision]" in message
    torch_pairing = "torchvision needs the torch version it was built for"
    assert (torch_pairing in message) is (library == "torchvision")


@pytest.mark.parametrize("source", ["torchvision", "timm"])
def test_a_library_prefix_without_a_network_name_says_what_to_write(source, digits):
    """model="torchvision:" (or "timm:") alone is refused with an example name."""
    X, _ = digits
    match = rf"model='{source}:' names no network; e\.g\. '{source}:resnet18'"
    with pytest.raises(ValueError, match=match):
        PretrainedTransformer(f"{source}:").fit(X)


def test_a_model_given_as_a_path_object_is_the_file_it_names(digits, tmp_path):
    """model= as a pathlib.Path reads the exported program, and is refused
    as its str would be when absent or a torch.save file."""
    X, _ = digits
    torch.manual_seed(0)
    lin = nn.Linear(64, 3)
    _export(lin, torch.zeros(4, 64), tmp_path / "lin.pt2")
    rep = PretrainedTransformer(tmp_path / "lin.pt2").fit(X)
    expected = lin(torch.from_numpy(X)).detach().numpy()
    np.testing.assert_allclose(rep.transform(X), expected, atol=1e-5)
    with pytest.raises(ValueError, match="neither 'torchvision:<name>'"):
        PretrainedTransformer(tmp_path / "absent.pt2").fit(X)
    torch.save(lin.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="is a file of torch.save .* weights="):
        PretrainedTransformer(tmp_path / "weights.pt").fit(X)


def test_a_missing_weights_file_names_the_network_by_its_class(digits, tmp_path):
    """The refusal of an absent weights file names model= by its class, not
    by the module's whole printout."""
    X, _ = digits
    with pytest.raises(ValueError) as err:
        PretrainedTransformer(SmallNet(), weights=tmp_path / "absent.pt").fit(X)
    assert "is not a file. For model=SmallNet weights must be" in str(err.value)
    assert "Conv2d" not in str(err.value)


class _Preset:
    """The transforms() of a torchvision weights entry: what the entry says."""

    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]

    def __init__(self, crop_size) -> None:
        self.crop_size = crop_size


def _fake_torchvision(monkeypatch, crop_size=(24,)):
    """A torchvision with one network, "tiny", whose weights entries set its
    weight to their value (V1: 1, V2 = DEFAULT: 2)."""
    import enum
    import types

    class Weights(enum.Enum):
        V1 = 1.0
        V2 = 2.0
        DEFAULT = 2.0  # an alias of V2, as torchvision's

        def transforms(self):
            return _Preset(crop_size)

    def get_model(name, weights=None):
        net = nn.Linear(4, 3)
        if weights is not None:
            nn.init.constant_(net.weight, weights.value)
        return net

    models = types.SimpleNamespace(
        list_models=lambda: ["tiny"],
        get_model=get_model,
        get_model_weights=lambda name: Weights,
    )
    fake = types.SimpleNamespace(models=models)
    monkeypatch.setitem(sys.modules, "torchvision", fake)


@pytest.mark.parametrize("crop_size, size", [((24,), (24, 24)), ([20, 28], (20, 28))])
def test_torchvision_weights_by_name_bring_their_normalisation_and_crop(
    crop_size, size, monkeypatch
):
    """A torchvision weights name loads that entry, with its mean, std and
    crop size (a square for one number) as the preprocessing hints."""
    from sk_replearn.transfer._loading import _load_network

    _fake_torchvision(monkeypatch, crop_size)
    for weights, value in (("V1", 1.0), ("DEFAULT", 2.0)):
        network, hints = _load_network("torchvision:tiny", weights)
        assert torch.equal(network.weight, torch.full((3, 4), value))
        assert hints == {"mean": (0.5, 0.4, 0.3), "std": (0.2, 0.25, 0.3), "size": size}
    with pytest.raises(ValueError, match=r"'V3' is not a weights name.*\['V1', 'V2'\]"):
        _load_network("torchvision:tiny", "V3")
    with pytest.raises(ValueError, match="torchvision model. Did you mean 'tiny'"):
        _load_network("torchvision:tinny", None)


def test_torchvision_weights_from_a_file_take_imagenet_normalisation(
    monkeypatch, tmp_path
):
    """A torchvision network with weights from a file is normalised with
    ImageNet's statistics and keeps the input size it is given."""
    from sk_replearn.transfer._loading import _load_network

    _fake_torchvision(monkeypatch)
    torch.manual_seed(0)
    saved = nn.Linear(4, 3)
    torch.save(saved.state_dict(), tmp_path / "tiny.pth")
    network, hints = _load_network("torchvision:tiny", tmp_path / "tiny.pth")
    assert torch.equal(network.weight, saved.weight)
    assert hints == {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
    unloaded, hints = _load_network("torchvision:tiny", None)
    assert hints == {}


@pytest.mark.parametrize("weights", ["checkpoints/tiny", "TINY.PTH"])
def test_a_torchvision_weights_path_that_is_absent_is_named_as_a_file(
    weights, monkeypatch, tmp_path
):
    """Weights that look like a path (a folder in it, or a weights suffix in
    any case) are a missing file, not an unknown weights name."""
    from sk_replearn.transfer._loading import _load_network

    _fake_torchvision(monkeypatch)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="is not a file. For model='torchvision:tiny'"):
        _load_network("torchvision:tiny", weights.replace("/", os.sep))


def _fake_timm(monkeypatch, calls: list):
    """A timm with one network, "tiny", whose pretrained config asks for
    20x24 inputs; each create_model call is recorded."""
    import types

    def create_model(name, pretrained=False):
        calls.append((name, pretrained))
        net = nn.Linear(4, 3)
        net.pretrained_cfg = {
            "mean": (0.1, 0.2, 0.3),
            "std": (0.4, 0.5, 0.6),
            "input_size": (3, 20, 24),
        }
        return net

    def list_models(pattern=""):
        return ["tiny"] if pattern in ("", "tiny") else []

    timm = types.SimpleNamespace(list_models=list_models, create_model=create_model)
    monkeypatch.setitem(sys.modules, "timm", timm)


def test_timm_weights_by_tag_or_file_build_the_network_they_name(monkeypatch, tmp_path):
    """A timm weights tag is created pretrained as "name.tag" ("default": the
    name alone), with its config's normalisation and input size; a file's
    weights load into the unpretrained network, the input size left free."""
    from sk_replearn.transfer._loading import _load_network

    calls: list = []
    _fake_timm(monkeypatch, calls)
    hinted = {"mean": (0.1, 0.2, 0.3), "std": (0.4, 0.5, 0.6), "size": (20, 24)}
    _, hints = _load_network("timm:tiny", "in1k")
    assert calls == [("tiny.in1k", True)] and hints == hinted
    _, hints = _load_network("timm:tiny", "default")
    assert calls[1:] == [("tiny", True)] and hints == hinted
    _, hints = _load_network("timm:tiny", None)
    assert calls[2:] == [("tiny", False)] and hints == {}
    torch.manual_seed(0)
    saved = nn.Linear(4, 3)
    torch.save(saved.state_dict(), tmp_path / "tiny.pth")
    network, hints = _load_network("timm:tiny", tmp_path / "tiny.pth")
    assert calls[3:] == [("tiny", False)]
    assert torch.equal(network.weight, saved.weight)
    assert hints == {"mean": (0.1, 0.2, 0.3), "std": (0.4, 0.5, 0.6)}
    with pytest.raises(ValueError, match="'timm:tinny' is not a timm model"):
        _load_network("timm:tinny", None)


def test_only_hugging_face_models_of_token_ids_are_sent_to_their_folder(digits):
    """A Hugging Face text model of remote code, given as a module, is refused
    with the "hf:<folder>" advice; a Hugging Face model of pixels runs."""
    X, _ = digits

    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 4)

        def forward(self, x):
            return self.fc(x.flatten(1))

    remote_text = type("RemoteBert", (Flat,), {"main_input_name": "input_ids"})
    remote_text.__module__ = "transformers_modules.someone.bert.modeling"
    with pytest.raises(ValueError, match=r"RemoteBert\(...\) is a Hugging Face text"):
        PretrainedTransformer(remote_text()).fit(X)
    pixels = type("TinyViT", (Flat,), {"main_input_name": "pixel_values"})
    pixels.__module__ = "transformers.models.vit.modeling_vit"
    rep = PretrainedTransformer(pixels()).fit(X)  # its fc, a classifier, stripped
    assert rep.transform(X).shape == (len(X), 64)


def test_a_hugging_face_model_that_cannot_be_loaded_says_how_to_pass_a_folder(
    monkeypatch, tmp_path
):
    """A Hugging Face name is fetched (a folder read offline); one that
    cannot be loaded is a ValueError telling how to pass a saved folder."""
    import types

    from sk_replearn.transfer._loading import _hf_model

    calls = []

    class Tokenizer:  # cached
        @staticmethod
        def from_pretrained(name, local_files_only):
            calls.append(("tokenizer", name, local_files_only))
            return object()

    class Model:  # not cached, and no network
        @staticmethod
        def from_pretrained(name, local_files_only):
            calls.append(("model", name, local_files_only))
            raise OSError("We couldn't connect to 'https://huggingface.co'")

    fake = types.SimpleNamespace(AutoTokenizer=Tokenizer, AutoModel=Model)
    monkeypatch.setitem(sys.modules, "transformers", fake)
    for name, local in (("bert-base-uncased", False), (str(tmp_path), True)):
        with pytest.raises(ValueError, match=r"could not be loaded \(We couldn't"):
            _hf_model(name)
        assert calls == [("tokenizer", name, local), ("model", name, local)]
        calls.clear()
    with pytest.raises(ValueError, match="save_pretrained.*model='hf:path/to/folder'"):
        PretrainedTransformer("hf:bert-base-uncased").fit(["a text", "another"])


def test_weights_under_state_dict_are_read_and_other_values_are_refused(tmp_path):
    """A checkpoint holding the weights under "state_dict" is read; a dict
    of tensors and other values is refused as no state dict."""
    from sk_replearn.transfer.pretrained import load_weights

    torch.manual_seed(0)
    saved = nn.Linear(3, 2)
    torch.save({"state_dict": saved.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    fresh = nn.Linear(3, 2)
    load_weights(fresh, tmp_path / "ckpt.pt")
    assert torch.equal(fresh.weight, saved.weight)
    assert torch.equal(fresh.bias, saved.bias)
    torch.save({**saved.state_dict(), "epoch": 3}, tmp_path / "mixed.pt")
    with pytest.raises(ValueError, match=r"does not hold a state dict \(a dict of"):
        load_weights(nn.Linear(3, 2), tmp_path / "mixed.pt")


def test_weights_of_another_network_list_five_keys_then_count_the_rest(tmp_path):
    """The refusal of mismatched weights names the first five keys of each
    kind and counts the others."""
    from sk_replearn.transfer.pretrained import load_weights

    torch.save({}, tmp_path / "empty.pt")
    five = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2, bias=False))
    with pytest.raises(ValueError) as err:
        load_weights(five, tmp_path / "empty.pt")
    listed = "missing keys: 0.weight, 0.bias, 1.weight, 1.bias, 2.weight"
    assert str(err.value).endswith(f"Sequential: {listed}.")
    six = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2))
    with pytest.raises(ValueError) as err:
        load_weights(six, tmp_path / "empty.pt")
    assert str(err.value).endswith(f"Sequential: {listed} and 1 more.")


def test_a_zip_file_of_no_torch_format_is_named_as_no_exported_program(
    digits, tmp_path
):
    """A zip archive that no torch function wrote is refused as unreadable
    by torch.export.load, not mistaken for a torch.save file."""
    import zipfile

    X, _ = digits
    with zipfile.ZipFile(tmp_path / "table.zip", "w") as archive:
        archive.writestr("table/values.csv", "1,2,3\n")
    match = r"could not be read as a program saved by torch.export.save"
    with pytest.raises(ValueError, match=match):
        PretrainedTransformer(str(tmp_path / "table.zip")).fit(X)


def test_a_pickled_module_as_weights_is_told_to_save_its_state_dict(tmp_path):
    """Weights saved as a whole module are refused as holding code, with the
    advice to save the module's state dict instead."""
    from sk_replearn.transfer.pretrained import load_weights

    torch.save(nn.Linear(3, 2), tmp_path / "module.pt")
    match = r"holds more than tensors .* Save the weights with torch.save\(module"
    with pytest.raises(ValueError, match=match):
        load_weights(nn.Linear(3, 2), tmp_path / "module.pt")


def test_a_weights_file_of_a_bare_tensor_or_list_is_refused_as_no_state_dict(
    tmp_path,
):
    """A weights file holding a tensor or a list of tensors, not a dict, is a
    ValueError saying how to save a state dict."""
    from sk_replearn.transfer.pretrained import load_weights

    weights = list(nn.Linear(3, 2).state_dict().values())
    for name, content in (("tensor.pt", weights[0]), ("list.pt", weights)):
        torch.save(content, tmp_path / name)
        with pytest.raises(ValueError, match=r"does not hold a state dict .* torch.s"):
            load_weights(nn.Linear(3, 2), tmp_path / name)


def test_default_weights_are_named_in_either_case_for_both_libraries(monkeypatch):
    """ "default" and "DEFAULT" give each library's default weights (timm's: the
    network's name alone), never a tag "tiny.DEFAULT" reported as a download."""
    from sk_replearn.transfer._loading import _load_network

    _fake_torchvision(monkeypatch)
    for weights in ("DEFAULT", "default", "Default"):
        network, _ = _load_network("torchvision:tiny", weights)
        assert torch.equal(network.weight, torch.full((3, 4), 2.0))
    calls: list = []
    _fake_timm(monkeypatch, calls)
    for weights in ("default", "DEFAULT"):
        _load_network("timm:tiny", weights)
    assert calls == [("tiny", True), ("tiny", True)]


def test_a_torchvision_network_without_weights_by_name_says_what_to_pass(monkeypatch):
    """A network torchvision lists but has no weights enum for is a ValueError
    naming it and the two choices left, not an error about an unbound name."""
    from sk_replearn.transfer._loading import _load_network

    _fake_torchvision(monkeypatch)

    def no_weights(name):
        raise ValueError(f"The model {name} has no weights")

    models = sys.modules["torchvision"].models  # the fake
    monkeypatch.setattr(models, "get_model_weights", no_weights)
    with pytest.raises(ValueError, match=r"torchvision:tiny has no weights by name"):
        _load_network("torchvision:tiny", "DEFAULT")


def test_exported_module_keeps_its_own_copy_of_the_program():
    """Changing the buffer it was given afterwards leaves the module intact."""
    data = bytearray(_exported_bytes(nn.Linear(3, 2), torch.randn(4, 3), True))
    module = ExportedModule(data)
    data[:] = b""
    x = torch.randn(5, 3)
    for again in (pickle.loads(pickle.dumps(module)), copy.deepcopy(module)):
        torch.testing.assert_close(again(x), module(x), rtol=0, atol=0)


def test_exported_module_passes_keyword_arguments_to_the_program():
    """A program exported with a keyword input takes it by keyword."""

    class Scaled(nn.Module):
        def forward(self, x, *, scale):
            return x * scale

    program = torch.export.export(
        Scaled(), (torch.randn(4, 3),), {"scale": torch.tensor(2.0)}
    )
    buf = io.BytesIO()
    torch.export.save(program, buf)
    x = torch.randn(4, 3)
    out = ExportedModule(buf.getvalue())(x, scale=torch.tensor(3.0))
    torch.testing.assert_close(out, 3 * x)


def test_exported_module_keeps_cast_buffers_through_pickle_and_deepcopy():
    """Batch-norm statistics cast to float64 stay float64 and exact when copied."""
    norm = nn.BatchNorm1d(3).eval()
    with torch.no_grad():
        norm.running_mean.normal_()
        norm.running_var.uniform_(0.5, 2.0)
    module = ExportedModule(_exported_bytes(norm, torch.randn(4, 3), True)).double()
    with torch.no_grad():
        module.graph.running_mean.add_(1e-12)  # not representable in float32
    x = torch.randn(5, 3, dtype=torch.float64)
    for again in (pickle.loads(pickle.dumps(module)), copy.deepcopy(module)):
        assert all(
            b.dtype == torch.float64 for b in again.buffers() if b.is_floating_point()
        )
        torch.testing.assert_close(again(x), module(x), rtol=0, atol=0)


def test_exported_module_with_a_non_persistent_buffer_pickles_and_copies():
    """A buffer left out of the state dict does not stop pickling or copying."""

    class Offset(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)
            self.register_buffer("shift", torch.ones(2), persistent=False)

        def forward(self, x):
            return self.lin(x) + self.shift

    module = ExportedModule(_exported_bytes(Offset(), torch.randn(4, 3), True))
    x = torch.randn(5, 3)
    for again in (pickle.loads(pickle.dumps(module)), copy.deepcopy(module)):
        torch.testing.assert_close(again(x), module(x), rtol=0, atol=0)


def test_static_batch_is_the_first_inputs_batch_size():
    """static_batch reads the first input of a program of several inputs."""

    class Pair(nn.Module):
        def forward(self, x, y):
            return x.sum() + y.sum()

    program = torch.export.export(Pair(), (torch.randn(4, 3), torch.randn(2, 3)))
    buf = io.BytesIO()
    torch.export.save(program, buf)
    assert ExportedModule(buf.getvalue()).static_batch == 4


def test_a_cast_exported_module_moved_to_another_device_keeps_its_dtype():
    """Rebuilding the program on another device keeps the weights' dtype."""
    pytest.importorskip("torch.export.passes")
    module = ExportedModule(_exported_bytes(nn.Linear(3, 2), torch.randn(4, 3), True))
    moved = module.double().to("meta")
    assert all(p.device.type == "meta" for p in moved.parameters())
    assert all(p.dtype == torch.float64 for p in moved.parameters())
