"""The shared base: devices, seeds, input shapes, batched transform."""

import warnings

import numpy as np
import pytest
import torch
from _instances import make

from sk_replearn import KMeansTransformer, PCATransformer
from sk_replearn.base import (
    BaseRepresentation,
    resolve_device,
    seed_from_random_state,
)
from sk_replearn.data import batch_slices


class _Scale(BaseRepresentation):
    """Smallest concrete estimator: multiplies by 2, in batches."""

    def __init__(
        self, *, input_shape=None, device="auto", batch_size=3, random_state=None
    ):
        self.input_shape = input_shape
        self.device = device
        self.batch_size = batch_size
        self.random_state = random_state

    def fit(self, X, y=None):
        self._validate_X(X, reset=True)
        return self

    def transform(self, X):
        X = self._validate_X(X, reset=False)
        self.batch_rows_ = []

        def fn(xb):
            self.batch_rows_.append(xb.shape[0])
            return 2 * xb

        return self._map_batches(X, fn, X.shape[1])

    @property
    def _n_features_out(self):
        return self.n_features_in_


def test_resolve_device_auto_is_cpu_without_cuda():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_resolve_device_missing_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA device is available"):
        resolve_device("cuda:1")


def test_resolve_device_rejects_nonsense():
    with pytest.raises(ValueError, match="device='gpu0' is not a device name"):
        resolve_device("gpu0")


def test_seed_from_random_state_is_repeatable():
    assert seed_from_random_state(3) == seed_from_random_state(3)
    assert seed_from_random_state(3) != seed_from_random_state(4)
    rng = np.random.RandomState(0)
    assert 0 <= seed_from_random_state(rng) < 2**31


def test_batch_slices_cover_everything_once():
    covered = np.concatenate([np.arange(10)[sl] for sl in batch_slices(10, 4)])
    np.testing.assert_array_equal(covered, np.arange(10))
    assert list(batch_slices(3, None)) == [slice(0, 3)]


def test_base_transform_runs_in_batches_and_keeps_float32():
    X = np.arange(20, dtype=np.float64).reshape(10, 2)
    est = _Scale(batch_size=3).fit(X)
    Z = est.transform(X)
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z, 2 * X)
    assert est.batch_rows_ == [3, 3, 3, 1]


def test_base_input_shape_from_nd_input_and_flat_equivalence():
    X = np.random.RandomState(0).rand(6, 1, 2, 3)
    est = _Scale().fit(X)
    assert est.input_shape_ == (1, 2, 3)
    assert est.n_features_in_ == 6
    np.testing.assert_allclose(est.transform(X), est.transform(X.reshape(6, -1)))
    with pytest.raises(ValueError, match="fitted on samples of shape"):
        est.transform(X.reshape(6, 1, 3, 2))
    # Images of another size: their shape, where the message counted features
    # ("X has 4 features, but ... is expecting 6").
    with pytest.raises(ValueError, match=r"samples of shape \(1, 2, 2\), but"):
        est.transform(X[:, :, :, :2])


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((8, 8, 3), r"channels first: 8 channels.*X.transpose\(0, 3, 1, 2\).*permute"),
        # square: not "more channels than time steps"
        (
            (10, 10),
            r"channels and length 10\. For one-channel.*X\[:, None\].*x\[None\]",
        ),
        # Keras's and tslearn's signals, (timesteps, channels)
        ((100, 1), r"100 channels and length 1: more.*X.transpose\(0, 2, 1\)"),
        ((40, 3), r"40 channels and length 3.*items x.T"),
        # a grey image taller than wide
        ((28, 20), r"28 channels and length 20.*X\[:, None\]"),
        # a grey image with its one channel last
        ((28, 28, 1), r"channels first: 28 channels of 28 x 1 images"),
    ],
)
def test_base_warns_of_samples_that_look_channels_last_or_without_channels(
    shape, match
):
    # Image libraries give (H, W, 3) and grey images (H, W): read channels
    # first, they trained without a word on a wrong picture of the data.
    X = np.random.RandomState(0).rand(6, *shape)
    with pytest.warns(UserWarning, match=match):
        assert _Scale().fit(X).input_shape_ == shape
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _Scale(input_shape=shape).fit(X)  # said so: no warning
        _Scale().fit(X.reshape(6, 1, *shape[:2], -1)[:, :, :, :, 0])
        _Scale().fit(np.zeros((6, 3, 40)))  # a 3-channel signal
        _Scale().fit(np.zeros((6, 4, 4)))  # too small to be an image
        _Scale().fit(np.zeros((6, 64, 256)))  # EEG: 64 channels of 256 steps
        _Scale().fit(np.zeros((6, 5, 2)))  # too short to tell
        _Scale().fit(np.zeros((6, 4, 32, 3)))  # 4 channels first (RGBA)
        # Models of flat rows give the same result whatever the axes mean.
        PCATransformer(2).fit(X)
        KMeansTransformer(2, n_init=1, random_state=0).fit(X)


def test_base_tabular_input_shape_defaults_to_n_features():
    assert _Scale().fit(np.zeros((4, 5))).input_shape_ == (5,)


@pytest.mark.parametrize(
    "input_shape, match",
    [
        ((1, 8, 9), "holds 72 values per sample but X has 64 features"),
        ((1, 7, 9), "holds 63 values per sample but X has 64 features"),
        ((0, 64), "non-empty tuple of positive ints"),
        (("a", 2), "tuple of positive ints"),
        ((1.5, 2), "tuple of positive ints"),
        ((True, 64), "tuple of positive ints"),  # was read as (1, 64)
        ((), "non-empty tuple of positive ints"),
    ],
)
def test_base_bad_input_shape_is_a_clear_error(input_shape, match):
    with pytest.raises(ValueError, match=match):
        _Scale(input_shape=input_shape).fit(np.zeros((3, 64)))


@pytest.mark.parametrize("shape", [(0, 1, 8, 8), (0, 2, 5)])
def test_base_empty_nd_input_gets_scikit_learns_error(shape):
    # Not numpy's "cannot reshape array of size 0" from flattening.
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
        _Scale().fit(np.zeros(shape))
    est = _Scale().fit(np.zeros((3, *shape[1:])))
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
        est.transform(np.zeros(shape))


def test_base_input_shape_must_agree_with_nd_input():
    with pytest.raises(ValueError, match="does not match the shape of the samples"):
        _Scale(input_shape=(64,)).fit(np.zeros((3, 1, 8, 8)))


def test_base_accepts_torch_tensors():
    X = torch.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(_Scale().fit(X).transform(X), 2 * X.numpy())


def test_base_pandas_output():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    out = _Scale().set_output(transform="pandas").fit(X).transform(X)
    assert list(out.columns) == ["_scale0", "_scale1"]


@pytest.mark.skipif(
    tuple(int(v) for v in torch.__version__.split(".")[:2]) < (2, 4),
    reason="torch < 2.4 has no fused Adam on the CPU",
)
def test_named_adam_optimisers_take_the_fused_step():
    # "adamw" / "adam" take torch's one-kernel step; it updates the weights
    # as the loop over tensors does, up to rounding. A class passed in is
    # used as it is (it may not take ``fused``).
    from sk_replearn import SimCLRTransformer

    X = np.random.default_rng(0).random((96, 64), dtype=np.float32)
    params = {"input_shape": (1, 8, 8), "max_epochs": 3, "random_state": 0}
    for name, cls in (("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam)):
        fused = SimCLRTransformer(optimizer=name, **params).fit(X)
        loop = SimCLRTransformer(optimizer=cls, **params).fit(X)
        assert fused.net_.optimizer_.defaults["fused"] is True
        assert not loop.net_.optimizer_.defaults["fused"]
        np.testing.assert_allclose(fused.loss_curve_, loop.loss_curve_, rtol=1e-3)
        np.testing.assert_allclose(
            fused.transform(X), loop.transform(X), rtol=1e-2, atol=1e-3
        )


@pytest.mark.parametrize(
    "name", ["PCATransformer", "KMeansTransformer", "FineTunerRegressor"]
)
def test_a_list_is_read_as_the_float64_array_it_holds(name):
    # scikit-learn's convention: fit(X.tolist()) is fit(X) for float64 X. A
    # list used to become float32 while the array stayed float64, and the
    # two fits then differed (by 0.6 in a regressor's predictions here).
    import sk_replearn

    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 5))
    y = X @ [100.0, 50.0, 10.0, 1.0, 0.1] + rng.normal(size=100)
    if name == "FineTunerRegressor":
        make = lambda: sk_replearn.FineTunerRegressor(  # noqa: E731
            sk_replearn.PCATransformer(2), max_epochs=5, random_state=0
        )
        out = [make().fit(A, y).predict(A) for A in (X, X.tolist())]
    else:
        make = lambda: getattr(sk_replearn, name)(random_state=0)  # noqa: E731
        out = [make().fit(A).transform(A) for A in (X, X.tolist())]
    np.testing.assert_array_equal(out[0], out[1])


class _HostTensor(torch.Tensor):
    """A tensor whose every ``.to()`` makes a copy, as a move to a GPU does."""

    copies = 0

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func is torch.Tensor.to:
            cls.copies += 1
            with torch._C.DisableTorchFunctionSubclass():
                return func(*args, **(kwargs or {})).clone()
        return super().__torch_function__(func, types, args, kwargs)


def test_each_batch_is_copied_to_the_device_once():
    # skorch hands a batch to the forward pass and to the loss, and each
    # moved it to the device: two host-to-device copies per batch on a GPU.
    from sk_replearn.objectives.reconstruction import AutoencoderObjective
    from sk_replearn.training import RepresentationNet

    torch.manual_seed(0)
    X = torch.randn(64, 4).as_subclass(_HostTensor)
    net = RepresentationNet(
        AutoencoderObjective(input_shape=(4,), n_components=2),
        max_epochs=2,
        batch_size=16,
        lr=1e-2,
        verbose=0,
        train_split=lambda dataset, y=None: (dataset, dataset),
    )
    _HostTensor.copies = 0
    net.fit(X, None)
    # 2 epochs of 4 training and 4 validation batches
    assert _HostTensor.copies == 16
    assert np.isfinite(net.history[:, "valid_loss"]).all()


@pytest.mark.parametrize("name", ["PCATransformer", "SimCLRTransformer"])
def test_unreadable_x_is_named_with_its_cause(name):
    # scikit-learn's check_array read None as NaN ("array=nan"), named no
    # column for a DataFrame's text, and printed the whole of complex data.
    pd = pytest.importorskip("pandas")
    import sk_replearn

    est = getattr(sk_replearn, name)()
    with pytest.raises(TypeError, match="got X=None; pass an array-like"):
        est.fit(None)
    frame = pd.DataFrame(
        {
            "a": [1.0, 2.0, 3.0, 4.0],
            "color": pd.Categorical(["x", "y", "x", "y"]),
            "digits": ["1", "2", "3", "4"],  # text that reads as numbers: fine
        }
    )
    with pytest.raises(ValueError, match=r"column\(s\) 'color' hold text.*OneHot"):
        est.fit(frame)
    big = np.full((50, 4), 1 + 2j)
    with pytest.raises(ValueError, match=r"Complex data not supported.*X\.real") as e:
        est.fit(big)
    assert len(str(e.value)) < 300  # not the array


def test_transforms_compute_as_without_the_callers_autocast():
    # An autocast block around a call must not turn our float32 (or float64)
    # computation into bfloat16: same outputs as outside it.
    X = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    for name in ("KMeansTransformer", "PCATransformer", "PretrainedTransformer"):
        est = make(name).fit(X)
        methods = [est.transform] + ([est.predict] if hasattr(est, "predict") else [])
        for method in methods:
            plain = method(X)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                np.testing.assert_array_equal(method(X), plain, err_msg=name)


def test_base_reads_nested_lists_of_booleans_as_samples_of_their_shape():
    X = np.random.default_rng(0).random((20, 2, 3)) > 0.5
    model = PCATransformer(n_components=2).fit(X.tolist())
    assert model.input_shape_ == (2, 3)
    np.testing.assert_allclose(model.transform(X.tolist()), model.transform(X))


def test_float_dtypes_of_an_array_like_without_a_dtype():
    # Read through __array__: float64 values stay float64, integers become
    # float32 (as an integer array does).
    from sk_replearn._validation import float_dtypes

    class Holder:
        def __init__(self, dtype):
            self.values = np.zeros((2, 2), dtype)

        def __array__(self, dtype=None, copy=None):
            return self.values

    assert float_dtypes(Holder(np.float64))[0] is np.float64
    assert float_dtypes(Holder(np.int64))[0] is np.float32


@pytest.mark.parametrize("sign", [1, -1])
def test_base_values_past_float32_are_refused_whatever_their_sign(sign):
    from sk_replearn import AutoencoderTransformer

    X = np.random.default_rng(0).normal(size=(20, 3))
    X[0, 0] = sign * 1e20
    with pytest.raises(ValueError, match=r"values up to 1e\+20"):
        AutoencoderTransformer(n_components=2, max_epochs=1).fit(X)


def test_check_flag_takes_numpy_booleans():
    from sk_replearn._validation import check_flag

    check_flag(np.True_, "return_mask")
    check_flag(False, "return_mask")
    with pytest.raises(TypeError, match="return_mask"):
        check_flag("no", "return_mask")


def test_store_params_in_an_init_that_calls_super_keeps_the_class():
    # Python puts __class__ among the locals of a method that uses super():
    # stored, it turned a subclass's instance into its parent.
    from sk_replearn.base import store_params

    class Parent:
        def __init__(self, *, a=1):
            super().__init__()
            store_params(self, locals())

    class Child(Parent):
        pass

    obj = Child(a=2)
    assert type(obj) is Child and obj.a == 2


def test_get_feature_names_out_checks_the_input_features_it_is_given():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(20, 3)), columns=list("abc"))
    model = PCATransformer(n_components=2).fit(X)
    names = ["pcatransformer0", "pcatransformer1"]
    assert list(model.get_feature_names_out(["a", "b", "c"])) == names
    with pytest.raises(ValueError, match="input_features is not equal"):
        model.get_feature_names_out(["x", "y", "z"])


def test_keyed_draws_differ_between_samples():
    # Each sample's draws (BERT's and MAE's masks) come from its own bytes:
    # hundreds of distinct samples get as many distinct draws.
    from sk_replearn._seeding import keyed_uniform

    keys = [i.to_bytes(2, "little") for i in range(600)]
    draws = keyed_uniform(keys, 0, [4] * len(keys), 4)
    assert len({tuple(row.tolist()) for row in draws}) == len(keys)


def test_messages_name_a_class_with_the_spoken_article():
    # "an" before a vowel sound, an initialism by its letters' names.
    from sk_replearn._util import with_article

    assert with_article("FFTEncoder") == "an FFTEncoder"
    assert with_article("UMAPTransformer") == "a UMAPTransformer"
    assert with_article("int") == "an int"
    assert with_article("object") == "an object"
    assert with_article("list") == "a list"


def test_unreadable_frame_names_every_text_column_and_no_boolean_one():
    """The error names each text column of a DataFrame, not its boolean ones."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "a": [1.0, 2.0, 3.0, 4.0],
            "flag": [True, False, True, False],
            "color": ["x", "y", "x", "y"],
            "name": ["p", "q", "r", "s"],
        }
    )
    with pytest.raises(ValueError, match=r"column\(s\) 'color', 'name' hold text"):
        PCATransformer(n_components=2).fit(frame)


def test_flatten_samples_reads_lists_of_integers_as_float64():
    """Lists of numbers, integers included, become the float64 array they hold."""
    from sk_replearn.base import flatten_samples

    rows, shape = flatten_samples([[1, 2], [3, 4]])
    assert rows.dtype == np.float64 and shape is None
    samples, shape = flatten_samples([[[1, 2]], [[3, 4]]])
    assert samples.dtype == np.float64 and shape == (1, 2)
    np.testing.assert_array_equal(samples, [[1, 2], [3, 4]])


@pytest.mark.skipif(
    torch.backends.mps.is_available(), reason="needs a machine without Apple MPS"
)
def test_resolve_device_missing_mps_is_a_clear_error():
    """device='mps' on a machine without Apple MPS is refused by name."""
    with pytest.raises(ValueError, match="device='mps' asks for Apple MPS"):
        resolve_device("mps")


def test_seed_from_random_state_is_numpys_draw_below_2_to_the_31_minus_1():
    """The seed is an int drawn as randint(0, 2**31 - 1) by the random_state."""
    for state in (0, 5, 123):
        expected = np.random.RandomState(state).randint(0, 2**31 - 1)
        seed = seed_from_random_state(state)
        assert type(seed) is int and seed == expected
    rng = np.random.RandomState(1)
    first, second = seed_from_random_state(rng), seed_from_random_state(rng)
    reference = np.random.RandomState(1).randint(0, 2**31 - 1, size=2)
    assert [first, second] == reference.tolist()  # the instance's stream goes on
