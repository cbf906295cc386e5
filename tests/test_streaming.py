"""Data larger than memory: fitting memmaps and torch Datasets, batched transform,
and partial_fit over chunks of a memmap."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from sk_replearn import (
    AutoencoderTransformer,
    FineTuner,
    KMeansTransformer,
    PCATransformer,
    SimCLRTransformer,
)
from sk_replearn.data import (
    ArrayRows,
    input_rows,
    is_memory_mapped,
    scale_sample,
    training_samples,
)

N, D = 96, 8
TINY = dict(
    n_components=3,
    encoder_kwargs={"hidden_sizes": (16,)},
    max_epochs=3,
    batch_size=16,
    random_state=0,
    device="cpu",
)


def _data(n=N, d=D, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    X[:, :3] += 2 * rng.normal(size=(n, 1)).astype(np.float32)
    return X


@pytest.fixture
def memmap(tmp_path):
    """The rows of ``_data()`` in a read-only memmap on disk."""
    X = _data()
    path = tmp_path / "X.dat"
    out = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
    out[:] = X
    out.flush()
    del out
    return np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)


def test_autoencoder_fit_memmap_equals_in_memory(memmap):
    in_memory = AutoencoderTransformer(**TINY).fit(np.array(memmap))
    streamed = AutoencoderTransformer(**TINY).fit(memmap)
    assert streamed.loss_curve_ == in_memory.loss_curve_
    np.testing.assert_array_equal(
        streamed.transform(memmap), in_memory.transform(memmap)
    )


def test_autoencoder_memmap_rows_are_not_materialised(memmap):
    ae = AutoencoderTransformer(**TINY)
    X = input_rows(ae, memmap, reset=True)
    assert is_memory_mapped(X)  # validate_data kept a view of the mapping
    samples = training_samples(X, ae.input_shape_)
    assert isinstance(samples, ArrayRows) and samples.shape == (N, D)
    batch = samples[torch.tensor([5, 2])]
    np.testing.assert_array_equal(batch.numpy(), np.asarray(memmap)[[5, 2]])


def test_autoencoder_memmap_early_stopping_splits_lazily(memmap):
    # The validation split of a memmap reads the rows it drew, lazily: the
    # same training and validation losses as the array in memory. A subset
    # that read the file's first rows instead trained on the wrong rows and
    # validated on training rows, which finite losses alone did not show.
    params = {**TINY, "max_epochs": 4}
    split = dict(early_stopping=True, validation_fraction=0.25)
    in_memory = AutoencoderTransformer(**params, **split).fit(np.array(memmap))
    streamed = AutoencoderTransformer(**params, **split).fit(memmap)
    assert streamed.n_epochs_ == in_memory.n_epochs_ >= 1
    assert streamed.loss_curve_ == in_memory.loss_curve_
    valid = [ae.history_[:, "valid_loss"] for ae in (streamed, in_memory)]
    assert np.isfinite(valid[0]).all() and valid[0] == valid[1]
    np.testing.assert_array_equal(
        streamed.transform(memmap), in_memory.transform(memmap)
    )


def test_a_subset_of_array_rows_reads_its_own_rows():
    rows = ArrayRows(np.arange(12.0, dtype=np.float32).reshape(6, 2), (2,))
    part = rows.subset(torch.tensor([4, 1, 5]))
    assert len(part) == 3
    np.testing.assert_array_equal(part[torch.tensor([0, 2])], [[8, 9], [10, 11]])


def test_scale_sample_caps_the_rows_read(memmap):
    rows = ArrayRows(memmap, (D,))
    assert scale_sample(rows).shape == (N, D)  # small: read whole
    torch.manual_seed(0)
    sample = scale_sample(rows, max_values=10 * D)
    assert sample.shape == (10, D)


def test_autoencoder_fit_dataset_of_samples_and_pairs():
    X = torch.from_numpy(_data())
    for dataset in (
        torch.utils.data.TensorDataset(X),  # (sample,)
        torch.utils.data.TensorDataset(X, torch.zeros(N)),  # (sample, target)
    ):
        ae = AutoencoderTransformer(**TINY).fit(dataset)
        assert ae.n_features_in_ == D and ae.input_shape_ == (D,)
        assert ae.n_epochs_ == 3 and ae.loss_curve_[-1] < ae.loss_curve_[0]
        assert ae.transform(X.numpy()).shape == (N, 3)
        # transform (and score) read a Dataset too, batch by batch, in order.
        np.testing.assert_allclose(
            ae.transform(dataset), ae.transform(X.numpy()), rtol=1e-6, atol=1e-6
        )
        assert ae.score(dataset) == pytest.approx(ae.score(X.numpy()), rel=1e-6)
    with pytest.raises(ValueError, match="features"):
        ae.transform(torch.utils.data.TensorDataset(torch.ones(4, D + 1)))


class _Images(torch.utils.data.Dataset):
    """Images ``(1, 4, 4)`` made on the fly, as numpy arrays."""

    def __init__(self, n: int) -> None:
        self.X = _data(n, 16).reshape(n, 1, 4, 4)

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i]


def _mlp_simclr(hidden_sizes, **engine) -> SimCLRTransformer:
    """A small SimCLR on an MLP, without views (any input shape)."""
    return SimCLRTransformer(
        encoder="mlp",
        encoder_kwargs={"hidden_sizes": hidden_sizes},
        projection_dim=4,
        views=None,
        random_state=0,
        device="cpu",
        **engine,
    )


def test_simclr_fit_image_dataset_reads_shape_from_first_item():
    sim = _mlp_simclr((16, 4), max_epochs=2, batch_size=16).fit(_Images(48))
    assert sim.input_shape_ == (1, 4, 4) and sim.n_features_in_ == 16
    assert sim.transform(_Images(48).X).shape == (48, 4)
    assert np.isfinite(sim.collapse_std_)


def test_fit_dataset_errors():
    ae = AutoencoderTransformer(**TINY)
    with pytest.raises(ValueError, match="empty Dataset"):
        ae.fit(torch.utils.data.TensorDataset(torch.zeros(0, 3)))

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield from torch.zeros(4, 3)

    with pytest.raises(TypeError, match="map-style torch Dataset"):
        ae.fit(Stream())

    class Dicts(torch.utils.data.Dataset):  # Hugging Face style items
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return {"pixel_values": torch.ones(3), "label": 0}

    # Named as dicts, with the fix (the message said "a scalar").
    with pytest.raises(TypeError, match="are dicts.*item\\['pixel_values'\\]"):
        ae.fit(Dicts())
    bad = torch.ones(8, 3)
    bad[0, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        ae.fit(torch.utils.data.TensorDataset(bad))
    # A NaN outside the first failing batch: named before training, not
    # blamed on the learning rate once it has spread through the scaling.
    late = torch.ones(48, 3) + torch.arange(48.0)[:, None]
    late[40, 2] = float("inf")
    with pytest.raises(ValueError, match="input standardisation"):
        ae.fit(torch.utils.data.TensorDataset(late))
    with pytest.raises(ValueError, match="at least 2 samples"):
        ae.fit(torch.utils.data.TensorDataset(torch.ones(1, 3)))
    ae.set_params(warm_start=True).fit(torch.utils.data.TensorDataset(torch.ones(8, 3)))
    with pytest.raises(ValueError, match="X has 4 features"):
        ae.fit(torch.utils.data.TensorDataset(torch.ones(8, 4)))


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float16])
def test_a_memmap_of_integers_or_float16_is_read_in_batches(dtype, tmp_path):
    # Validation cast such a memmap to float32, a copy of the file in memory
    # (a 20 MB uint8 file of 80,000 x 256 took 94 MB more to transform).
    X = (np.abs(_data()) * 20).astype(dtype)
    path = tmp_path / "X.dat"
    out = np.memmap(path, dtype=dtype, mode="w+", shape=X.shape)
    out[:] = X
    out.flush()
    mapped = np.memmap(path, dtype=dtype, mode="r", shape=X.shape)
    ae = AutoencoderTransformer(**TINY)
    rows = input_rows(ae, mapped, reset=True)
    assert is_memory_mapped(rows) and rows.dtype == dtype
    batch = training_samples(rows, ae.input_shape_)[torch.tensor([5, 2])]
    assert batch.dtype == torch.float32
    np.testing.assert_array_equal(batch.numpy(), X[[5, 2]].astype(np.float32))
    streamed = ae.fit(mapped)
    in_memory = AutoencoderTransformer(**TINY).fit(X)
    assert streamed.loss_curve_ == in_memory.loss_curve_
    np.testing.assert_array_equal(streamed.transform(mapped), in_memory.transform(X))
    assert streamed.score(mapped) == in_memory.score(X)


def test_transform_memmap_is_batched_and_not_copied(memmap, monkeypatch):
    ae = AutoencoderTransformer(**TINY).fit(np.array(memmap))
    seen = []
    original = ae._map_batches

    def spy(X, *args, **kwargs):
        seen.append(is_memory_mapped(X))
        return original(X, *args, **kwargs)

    monkeypatch.setattr(ae, "_map_batches", spy)
    Z = ae.transform(memmap)
    assert seen == [True] and Z.shape == (N, 3) and Z.dtype == np.float32


def test_finetuner_fit_memmap(memmap):
    y = (np.asarray(memmap)[:, 0] > 0).astype(int)
    ft = FineTuner(
        PCATransformer(n_components=3).fit(memmap),
        max_epochs=2,
        batch_size=16,
        random_state=0,
        device="cpu",
    ).fit(memmap, y)
    assert ft.predict(memmap).shape == (N,)


# -- classical partial_fit over chunks of a memmap -----------------------------
def _chunks(X, size=25):
    for start in range(0, len(X), size):
        yield X[start : start + size]


def test_pca_partial_fit_memmap_chunks_equals_fit(memmap):
    full = PCATransformer(n_components=4, svd_solver="covariance_eigh", device="cpu")
    full.fit(np.array(memmap))
    inc = PCATransformer(n_components=4, device="cpu")
    for chunk in _chunks(memmap):
        inc.partial_fit(chunk)
    assert inc.n_samples_ == N
    np.testing.assert_allclose(inc.components_, full.components_, atol=1e-4)
    np.testing.assert_allclose(
        inc.explained_variance_, full.explained_variance_, rtol=1e-4
    )
    np.testing.assert_allclose(inc.transform(memmap), full.transform(memmap), atol=1e-4)


def test_kmeans_partial_fit_memmap_chunks(tmp_path):
    """Mini-batch k-means over a memmap's chunks: as over the same chunks in
    memory, and close to the full fit."""
    rng = np.random.default_rng(0)
    centers = 6 * rng.normal(size=(3, D))
    X = (centers[rng.integers(0, 3, 150)] + rng.normal(size=(150, D))).astype(
        np.float32
    )
    mm = np.memmap(tmp_path / "blobs.dat", dtype=np.float32, mode="w+", shape=X.shape)
    mm[:] = X
    on_disk = KMeansTransformer(n_clusters=3, random_state=0, device="cpu")
    in_memory = KMeansTransformer(n_clusters=3, random_state=0, device="cpu")
    for _ in range(3):
        for chunk in _chunks(mm, 50):
            on_disk.partial_fit(chunk)
            in_memory.partial_fit(np.array(chunk))
    np.testing.assert_array_equal(on_disk.cluster_centers_, in_memory.cluster_centers_)
    full = KMeansTransformer(n_clusters=3, random_state=0, device="cpu").fit(mm)
    assert -on_disk.score(mm) <= 1.05 * full.inertia_


def test_a_dataset_whose_items_change_shape_names_the_item():
    class Ragged(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return torch.zeros(64 if i < 5 else 32)

    with pytest.raises(ValueError, match=r"Item 5 of the Dataset has 32 values"):
        AutoencoderTransformer(max_epochs=1).fit(Ragged())


class _Items(torch.utils.data.Dataset):
    """A Dataset whose item ``i`` is ``make(i)``; counts its reads."""

    def __init__(self, n: int, make) -> None:
        self.n, self.make, self.reads = n, make, 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        self.reads += 1
        return self.make(i)


_SAMPLES = np.random.default_rng(1).normal(size=(20, 2, 4)).astype(np.float32)
_SMALL = dict(n_components=2, max_epochs=1, batch_size=8, random_state=0, device="cpu")


def test_a_dataset_of_nested_lists_keeps_every_row_of_a_sample():
    # A list item was read as a (sample, target) pair: its first row became
    # the sample, silently dropping the rest.
    lists = _Items(20, lambda i: _SAMPLES[i].tolist())
    ae = AutoencoderTransformer(**_SMALL).fit(lists)
    assert ae.input_shape_ == (2, 4) and ae.n_features_in_ == 8
    ref = AutoencoderTransformer(**_SMALL).fit(_Items(20, lambda i: _SAMPLES[i]))
    np.testing.assert_array_equal(ae.transform(lists), ref.transform(_SAMPLES))
    # A list whose first element is a tensor is still [sample, target].
    pairs = _Items(20, lambda i: [torch.from_numpy(_SAMPLES[i]), i % 2])
    assert AutoencoderTransformer(**_SMALL).fit(pairs).input_shape_ == (2, 4)


@pytest.mark.parametrize(
    "target", [lambda i: torch.zeros(i % 3 + 1), lambda i: None if i % 2 else 1]
)
def test_targets_a_loader_cannot_collate_are_left_out(target):
    # Boxes of varying sizes, or None for some items: the representation
    # ignores targets, but the DataLoader stacked them and failed.
    data = _Items(20, lambda i: (_SAMPLES[i], target(i)))
    ae = AutoencoderTransformer(**_SMALL).fit(data)
    ref = AutoencoderTransformer(**_SMALL).fit(_Items(20, lambda i: _SAMPLES[i]))
    np.testing.assert_array_equal(ae.transform(data), ref.transform(_SAMPLES))


def test_bfloat16_tensors_are_read_as_float32():
    X = torch.from_numpy(_SAMPLES).to(torch.bfloat16)
    ae = AutoencoderTransformer(**_SMALL).fit(X)
    ref = AutoencoderTransformer(**_SMALL).fit(X.float().numpy())
    np.testing.assert_array_equal(ae.transform(X), ref.transform(X.float().numpy()))
    data = torch.utils.data.TensorDataset(X)
    np.testing.assert_array_equal(ae.transform(data), ref.transform(X.float().numpy()))


def test_samples_as_nested_lists_are_the_array_they_hold():
    ae = AutoencoderTransformer(**_SMALL).fit(_SAMPLES.tolist())
    ref = AutoencoderTransformer(**_SMALL).fit(_SAMPLES.astype(np.float64))
    assert ae.input_shape_ == (2, 4)
    np.testing.assert_array_equal(
        ae.transform(_SAMPLES.tolist()), ref.transform(_SAMPLES)
    )


def test_two_view_score_takes_a_dataset():
    X = np.random.default_rng(0).normal(size=(24, 1, 16)).astype(np.float32)
    sim = _mlp_simclr((8, 4), max_epochs=1, batch_size=8).fit(X)
    data = torch.utils.data.TensorDataset(torch.from_numpy(X))
    assert sim.score(data) == sim.score(X)


def test_reconstructions_of_a_dataset_read_it_once_in_its_samples_shape():
    from sk_replearn import ContextEncoderTransformer, MAETransformer

    X = np.random.default_rng(0).normal(size=(24, 1, 16)).astype(np.float32)
    run = dict(input_shape=(1, 16), max_epochs=1, random_state=0, device="cpu")
    mae = MAETransformer(**run).fit(X)
    data = _Items(24, lambda i: (torch.from_numpy(X[i]), 0))
    rec, mask = mae.reconstruct(data, random_state=0)
    assert data.reads <= 24 + 1  # the first item is read once more, to check it
    ref, ref_mask = mae.reconstruct(X, random_state=0)
    assert rec.shape == (24, 1, 16)
    np.testing.assert_array_equal(rec, ref)
    np.testing.assert_array_equal(mask, ref_mask)
    ce = ContextEncoderTransformer(**run).fit(X)
    data.reads = 0
    filled = ce.reconstruct(data)
    assert data.reads <= 24 + 1 and filled.shape == (24, 1, 16)
    np.testing.assert_array_equal(filled, ce.reconstruct(X))


def test_array_rows_index_from_the_end_and_refuse_beyond():
    rows = ArrayRows(np.arange(12.0).reshape(6, 2), (2,))
    assert rows[-1].tolist() == rows[5].tolist() == [10.0, 11.0]
    with pytest.raises(IndexError, match="index 6 is out of range for 6 rows"):
        rows[6]


@pytest.mark.parametrize(
    "make", [lambda: PCATransformer(2), lambda: KMeansTransformer(2, device="cpu")]
)
def test_the_classical_estimators_refuse_a_dataset_with_the_fix(make):
    data = torch.utils.data.TensorDataset(torch.from_numpy(_data()))
    with pytest.raises(TypeError, match="not a torch Dataset: stack the"):
        make().fit(data)
    est = make().fit(_data())
    with pytest.raises(TypeError, match="not a torch Dataset"):
        est.transform(data)


def test_a_fine_tuner_refuses_a_dataset_as_x_and_names_pretrain_x():
    X = _data()
    y = (X[:, 0] > 0).astype(int)
    data = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    with pytest.raises(TypeError, match="pass it as pretrain_X"):
        FineTuner(max_epochs=1).fit(data, y)


def test_a_fine_tuners_dataset_pretrain_x_of_other_samples_is_refused_first():
    # Checked on arrays only: a Dataset of other samples was found out after
    # the whole pre-training ("X has 8 features, but ... fitted on 6").
    X = _data()
    y = (X[:, 0] > 0).astype(int)
    narrow = _Items(len(X), lambda i: X[i, :6])
    ae = AutoencoderTransformer(**TINY)
    with pytest.raises(ValueError, match=r"pretrain_X has samples of shape \(6,\)"):
        FineTuner(ae, max_epochs=1).fit(X, y, pretrain_X=narrow)
    assert narrow.reads == 1 and not hasattr(ae, "net_")
    same = _Items(len(X), lambda i: X[i])
    FineTuner(ae, max_epochs=1).fit(X, y, pretrain_X=same)


def test_a_dataset_of_read_only_arrays_trains_without_torchs_warning(tmp_path):
    # Rows of np.load(..., mmap_mode="r") and PIL images are read-only:
    # torch.as_tensor warned "The given NumPy array is not writable".
    path = tmp_path / "X.npy"
    np.save(path, _data())
    X = np.load(path, mmap_mode="r")
    rows = _Items(len(X), lambda i: X[i])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Z = AutoencoderTransformer(**TINY).fit(rows).transform(rows)
    in_memory = AutoencoderTransformer(**TINY).fit(_Items(len(X), lambda i: _data()[i]))
    np.testing.assert_array_equal(Z, in_memory.transform(rows))


def test_a_float64_dataset_that_float32_blurs_gets_the_arrays_warning():
    # Its items were cast to float32 before anything looked: at an offset
    # of 1e9 every sample trained to the same code, without the warning an
    # array or a memmap of the same values gets.
    X = _data().astype(np.float64) + 1e9
    with pytest.warns(UserWarning, match="feature 0 of X has values around 1e"):
        AutoencoderTransformer(**TINY).fit(_Items(len(X), lambda i: X[i]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AutoencoderTransformer(**TINY).fit(_Items(len(X), lambda i: X[i] - 1e9))
    # An item of another size is named by the training, not by numpy's stack.
    odd = _Items(len(X), lambda i: X[i, :5] if i == 30 else X[i])
    with pytest.raises(ValueError, match="Item 30 of the Dataset has 5 values"):
        AutoencoderTransformer(**TINY).fit(odd)


def test_a_dataset_item_that_is_a_ragged_list_says_how_to_return_it():
    # [row_as_list, label] is read as one ragged sample: numpy's bare
    # "inhomogeneous shape" error named neither the item nor the fix.
    X = _data()
    rows = _Items(len(X), lambda i: [list(X[i]), 0])
    with pytest.raises(ValueError, match="item of type list cannot be read.*tuple"):
        AutoencoderTransformer(**TINY).fit(rows)


@pytest.mark.parametrize(
    ("item", "match"),
    [
        ("ACDEFG", r"is a string \('ACDEFG'\).*GPTTransformer or BERTTransformer"),
        (b"ACDEFG", r"is bytes \(b'ACDEFG'\).*GPTTransformer or BERTTransformer"),
        (np.array(["a", "b"]), r"holds strings \('a', ...\).*GPT"),
        (np.array(["a", 1.0], object), r"holds strings \('a', ...\).*GPT"),
        (None, "is None; AutoencoderTransformer needs samples of numbers"),
        (np.array([1.0, None], object), "holds None; AutoencoderTransformer needs"),
        (3.0, r"is one number \(3.0\); AutoencoderTransformer needs"),
        (2j, r"is one number \(2j\); AutoencoderTransformer needs"),
        (np.zeros(4, "datetime64[D]"), "holds values of dtype datetime64.D., not real"),
        (np.zeros(4, np.complex64), "holds values of dtype complex64, not real"),
    ],
)
def test_a_dataset_of_no_numeric_samples_is_named_for_what_it_holds(item, match):
    # A string, None and a number were all "a scalar"; a string's fix is
    # another estimator.
    with pytest.raises(ValueError, match=match) as info:
        AutoencoderTransformer(**TINY).fit(_Items(8, lambda i: item))
    strings = isinstance(item, (str, bytes)) or (
        isinstance(item, np.ndarray) and item.dtype.kind in "OU" and None not in item
    )
    assert ("GPTTransformer" in str(info.value)) == strings


def test_a_dataset_of_object_arrays_of_numbers_trains_as_their_floats():
    # torch cannot read an object array: its "can't convert np.ndarray of
    # type numpy.object_" came from inside the training loop.
    X = _data()
    objects = _Items(len(X), lambda i: X[i].astype(object))
    floats = _Items(len(X), lambda i: X[i])
    a = AutoencoderTransformer(**TINY).fit(objects)
    b = AutoencoderTransformer(**TINY).fit(floats)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    odd = _Items(len(X), lambda i: np.array([1.0, "x"], object) if i else X[0])
    with pytest.raises(ValueError, match="Item [1-9][0-9]* of the Dataset holds str"):
        AutoencoderTransformer(**TINY).fit(odd)


@pytest.mark.parametrize(
    ("later", "match"),
    [
        # None read as NaN: "1 values (shape ())", or a NaN loss
        (None, "Item 40 of the Dataset holds None: every sample must be"),
        (np.r_[1.0, [None] * (D - 1)].astype(object), "Item 40 .* holds None"),
        # torch's own "can't convert np.ndarray of type numpy.datetime64"
        (np.zeros(D, "datetime64[D]"), "Item 40 .* dtype datetime64.D., not real"),
        # trained on its real part, with only torch's ComplexWarning
        (np.ones(D, np.complex64), "Item 40 .* dtype complex64, not real numbers"),
        (1.0, r"Item 40 of the Dataset has 1 value \(shape \(\)\)"),
        ([], r"Item 40 of the Dataset has 0 values \(shape \(0,\)\)"),
        (np.array([{"a": 1}] * D, object), r"Item 40 .* holds a dict \(\{'a': 1\}\)"),
    ],
)
def test_a_later_dataset_item_that_is_no_sample_of_numbers_is_named(later, match):
    X = _data()
    items = _Items(len(X), lambda i: later if i == 40 else X[i])
    with pytest.raises(ValueError, match=match):
        AutoencoderTransformer(**TINY).fit(items)


def test_dataset_samples_of_one_size_in_two_shapes_train_and_are_checked():
    # Training reads every sample in the first's shape; the collapse check
    # of the two-view methods stacked them as given, with numpy's "all input
    # arrays must have the same shape" after the whole fit.
    X = _data()
    items = _Items(len(X), lambda i: X[i] if i % 2 else X[i].reshape(2, 4))
    rep = SimCLRTransformer(**_SMALL).fit(items)
    assert rep.input_shape_ == (2, 4) and np.isfinite(rep.collapse_std_)


class _CountsWorkerReads(torch.utils.data.Dataset):
    """The rows of X; counts the reads made in DataLoader worker processes."""

    def __init__(self, X: np.ndarray, in_workers) -> None:
        self.X, self.in_workers = X, in_workers

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i):
        if torch.utils.data.get_worker_info() is not None:
            with self.in_workers.get_lock():
                self.in_workers.value += 1
        return self.X[i]


@pytest.mark.parametrize("cls", [AutoencoderTransformer, SimCLRTransformer])
def test_num_workers_reads_a_dataset_in_workers_and_trains_the_same_model(cls):
    import multiprocessing

    X = _data()
    kw = {**TINY, "early_stopping": True}  # the validation batches too
    if cls is SimCLRTransformer:
        kw = {**_SMALL, "batch_size": 16, "early_stopping": True}
    reads = multiprocessing.Value("i", 0)
    alone = cls(**kw).fit(_CountsWorkerReads(X, reads))
    assert reads.value == 0
    workers = cls(**kw, num_workers=2).fit(_CountsWorkerReads(X, reads))
    in_fit = reads.value
    assert in_fit >= len(X) * kw["max_epochs"]  # every sample, every epoch
    out = workers.transform(_CountsWorkerReads(X, reads))
    assert reads.value == in_fit + len(X)
    np.testing.assert_array_equal(out, alone.transform(X))
    np.testing.assert_array_equal(workers.transform(X), alone.transform(X))


def test_num_workers_is_where_a_model_runs_not_what_it_is(tmp_path):
    # Changed after fit it is saved as it is, and a warm start takes it.
    X = _data()
    ae = AutoencoderTransformer(**TINY).fit(X)
    ae.set_params(num_workers=2).save(tmp_path / "ae.pt")
    loaded = AutoencoderTransformer.load(tmp_path / "ae.pt")
    assert loaded.num_workers == 2
    np.testing.assert_array_equal(loaded.transform(X), ae.transform(X))
    ae.set_params(warm_start=True, max_epochs=1).fit(_Items(len(X), lambda i: X[i]))


def test_training_batches_shuffle_with_four_byte_indices_and_the_same_order():
    # An epoch's order is the one per-sample allocation of a fit beyond the
    # data: int32 halves it, and the batches are those an int64 permutation
    # from the same generator state gives (fits stay as they were).
    from sk_replearn.data import Batches, shuffled_order

    X = torch.arange(1000.0).reshape(500, 2)
    torch.manual_seed(3)
    batches = [xb for xb, _ in Batches(X, 64, training=True)]
    torch.manual_seed(3)
    order = torch.randperm(500)
    expected = [X[order[k * 64 : (k + 1) * 64]] for k in range(len(batches))]
    assert all(torch.equal(a, b) for a, b in zip(batches, expected, strict=True))
    assert shuffled_order(500).dtype == torch.int32
    rows = ArrayRows(X.numpy(), (2,))
    torch.manual_seed(3)
    assert torch.equal(next(iter(Batches(rows, 64, training=True)))[0], expected[0])


def test_scale_sample_counts_every_value_of_an_nd_sample():
    rows = ArrayRows(np.zeros((1000, 2, 5), np.float32), (2, 5))
    torch.manual_seed(0)
    assert scale_sample(rows, max_values=2000).shape == (200, 2, 5)


def test_a_dataset_is_refused_past_float32_by_each_samples_squares():
    # The limit is a sample's: squares summed over 10 features overflow
    # float32 above 5.8e18, whatever the number of samples.
    X = np.random.default_rng(0).uniform(-1, 1, size=(100, 10))
    fits = AutoencoderTransformer(n_components=2, max_epochs=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits.fit(torch.utils.data.TensorDataset(torch.from_numpy(X * 5e18)))
    assert np.isfinite(fits.loss_curve_).all()
    with pytest.raises(ValueError, match=r"values up to 9\.\d+e\+18.*above 5\.83e\+18"):
        AutoencoderTransformer(n_components=2, max_epochs=1).fit(
            torch.utils.data.TensorDataset(torch.from_numpy(X * 1e19))
        )


def test_generators_kept_puts_back_pythons_numpys_and_torchs():
    # A user's Dataset may draw from any of the three: numpy's legacy global
    # generator included.
    import random

    from sk_replearn.data import generators_kept

    random.seed(3)
    torch.manual_seed(3)
    numpy_before = np.random.get_state()[1].copy()  # noqa: NPY002
    python_before, torch_before = random.getstate(), torch.get_rng_state()
    with generators_kept():
        random.random(), np.random.random(), torch.rand(1)  # noqa: NPY002
    assert random.getstate() == python_before
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_before)  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), torch_before)


def test_a_dataset_of_flat_samples_takes_the_input_shape():
    # With input_shape, the flat samples of a Dataset are read in that shape,
    # as the rows of an array are: a CNN trains on them and codes them as
    # it codes the array.
    X = _data(24, 16)
    data = torch.utils.data.TensorDataset(torch.from_numpy(X))
    run = dict(
        TINY, input_shape=(1, 4, 4), encoder="cnn", encoder_kwargs={}, max_epochs=1
    )
    ae = AutoencoderTransformer(**run).fit(data)
    assert ae.input_shape_ == (1, 4, 4) and ae.n_features_in_ == 16
    np.testing.assert_array_equal(ae.transform(data), ae.transform(X))


def test_a_read_only_array_trains_without_torchs_warning():
    # An array torch would share read-only memory with (a joblib memory map,
    # flags.writeable=False) is copied: no "not writable" warning from torch.
    X = _data()
    X.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AutoencoderTransformer(**TINY).fit(X)


def test_items_that_are_mappings_are_named_as_dicts():
    # Hugging Face's BatchEncoding is a Mapping, not a dict: named the same.
    from collections import UserDict

    class Mappings(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return UserDict({"pixel_values": torch.ones(3)})

    with pytest.raises(TypeError, match="are dicts.*item\\['pixel_values'\\]"):
        AutoencoderTransformer(**TINY).fit(Mappings())


def test_batch_size_minus_one_is_one_batch_of_every_sample():
    # As in skorch, batch_size=-1 means the whole data in one batch, in
    # training and in evaluation.
    from sk_replearn.data import Batches

    X = torch.arange(20.0).reshape(10, 2)
    (train,) = [xb for xb, _ in Batches(X, -1, training=True)]
    (valid,) = [xb for xb, _ in Batches(X, -1, training=False)]
    assert torch.equal(valid, X)
    assert torch.equal(train.sum(0), X.sum(0)) and len(train) == 10


def test_eval_chunks_copy_only_read_only_rows_and_warn_nothing(memmap):
    # A read-only array (a memmap opened "r") is copied a batch at a time,
    # which torch takes without its "not writable" warning; a writable array
    # is read in place, without a copy.
    from sk_replearn.data import eval_chunks

    writable = np.array(memmap)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_only = list(eval_chunks(memmap, 40))
    in_place = list(eval_chunks(writable, 40))
    assert [sl for sl, _ in read_only] == [slice(0, 40), slice(40, 80), slice(80, N)]
    for (sl, a), (_, b) in zip(read_only, in_place, strict=True):
        np.testing.assert_array_equal(a.numpy(), writable[sl])
        assert not np.shares_memory(a.numpy(), memmap)
        assert np.shares_memory(b.numpy(), writable)


def test_eval_chunks_of_a_dataset_name_the_rows_of_each_batch():
    # The slices that come with a Dataset's batches are the batches' rows:
    # the last, shorter batch stops at the last sample.
    from sk_replearn.data import ArrayDataset, eval_chunks

    X = torch.arange(10.0).reshape(10, 1)
    chunks = list(eval_chunks(ArrayDataset(X), 4))
    assert [sl for sl, _ in chunks] == [slice(0, 4), slice(4, 8), slice(8, 10)]
    for sl, xb in chunks:
        assert torch.equal(xb, X[sl])


def test_a_dataset_of_array_target_lists_trains_on_the_arrays():
    # A list item whose first element is a numpy array is [sample, target],
    # as one whose first element is a tensor: the array is the sample.
    pairs = _Items(20, lambda i: [_SAMPLES[i], i % 2])
    ae = AutoencoderTransformer(**_SMALL).fit(pairs)
    assert ae.input_shape_ == (2, 4)
    ref = AutoencoderTransformer(**_SMALL).fit(_Items(20, lambda i: _SAMPLES[i]))
    np.testing.assert_array_equal(ae.transform(pairs), ref.transform(_SAMPLES))


def test_tensor_to_numpy_keeps_the_float_dtypes_numpy_has():
    # Only a dtype numpy lacks (bfloat16) is widened; half precision and
    # double precision tensors keep theirs (and their memory size).
    from sk_replearn.data import tensor_to_numpy

    for dtype in (torch.float16, torch.float32, torch.float64):
        x = torch.linspace(0, 1, 5, dtype=dtype)
        out = tensor_to_numpy(x)
        assert out.dtype == torch.empty(0, dtype=dtype).numpy().dtype
        np.testing.assert_array_equal(out, x.numpy())
    assert tensor_to_numpy(torch.ones(2, dtype=torch.bfloat16)).dtype == np.float32


def _row_batches(net, data, training):
    """The row numbers of each batch the net's iterator cuts from ``data``."""
    return [xb[0][:, 0].tolist() for xb in net.get_iterator(data, training=training)]


def _numbered(n):
    """A Dataset (not an array) whose sample i holds the number i."""
    return torch.utils.data.TensorDataset(torch.arange(float(n))[:, None])


def _net(**kwargs):
    from sk_replearn.objectives.reconstruction import AutoencoderObjective
    from sk_replearn.training import RepresentationNet

    objective = AutoencoderObjective(input_shape=(1,), n_components=1)
    return RepresentationNet(objective, verbose=0, **kwargs)


def test_a_datasets_training_batches_are_shuffled_and_evaluation_in_order():
    """A Dataset trains in a random order; evaluated in order, a batch of one merged."""
    net = _net(batch_size=4)
    torch.manual_seed(0)
    train = _row_batches(net, _numbered(10), training=True)
    assert [len(b) for b in train] == [4, 4, 2]
    rows = [i for b in train for i in b]
    assert sorted(rows) == list(range(10)) and rows != list(range(10))
    assert _row_batches(net, _numbered(9), training=False) == [
        [0.0, 1.0, 2.0, 3.0],
        [4.0, 5.0, 6.0, 7.0, 8.0],
    ]


def test_a_datasets_batches_follow_the_iterator_settings_and_minus_one():
    """iterator_train__/iterator_valid__batch_size size a Dataset's batches; -1: one."""
    net = _net(batch_size=4, iterator_train__batch_size=5, iterator_valid__batch_size=3)
    assert [len(b) for b in _row_batches(net, _numbered(10), training=True)] == [5, 5]
    assert [len(b) for b in _row_batches(net, _numbered(10), training=False)] == [
        3,
        3,
        4,
    ]
    whole = _net(batch_size=-1)
    for training in (True, False):
        (batch,) = _row_batches(whole, _numbered(7), training=training)
        assert sorted(batch) == list(range(7))


def test_two_view_score_of_a_dataset_of_items_equals_the_arrays():
    """score reads a Dataset's items in the order of its rows: each sample
    meets the same seeded random views as in the array, and the score is
    the same."""
    X = np.random.default_rng(0).normal(size=(24, 1, 16)).astype(np.float32)
    sim = _mlp_simclr((8, 4), max_epochs=1, batch_size=8).set_params(views="auto")
    sim.fit(X)
    data = _Items(24, lambda i: (torch.from_numpy(X[i]), 0))
    assert sim.score(data) == sim.score(X)


def test_scale_sample_reads_its_rows_in_file_order():
    """A subset read to set the standardisation comes in the order of the file."""
    rows = ArrayRows(np.arange(1000, dtype=np.float32)[:, None], (1,))
    torch.manual_seed(0)
    sample = scale_sample(rows, max_values=100)[:, 0]
    assert len(sample) == 100
    assert (sample.diff() > 0).all()


def test_an_infinite_dataset_value_after_the_first_sample_is_named_up_front():
    """An infinite value in a later sample is refused as such before training."""
    X = np.random.default_rng(0).uniform(-1, 1, size=(40, 10)).astype(np.float32)
    X[25, 3] = np.inf
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X))
    with pytest.raises(
        ValueError, match=r"NaN or infinite values \(found among the samples read"
    ):
        AutoencoderTransformer(n_components=2, max_epochs=1).fit(dataset)


def test_float32_precision_warns_of_a_step_past_a_sixteenth_of_the_spread():
    """The warning comes when float32's step exceeds a sixteenth of the spread."""
    from sk_replearn.data import check_float32_precision

    noise = np.random.default_rng(0).standard_normal((1000, 1))
    noise = (noise - noise.mean()) / noise.std()  # a spread of exactly 1
    # float32's step at 1e9 is 64: a sixteenth of 768 is 48, of 1100 is 68.75
    with pytest.warns(UserWarning, match="feature 0"):
        check_float32_precision(1e9 + 768 * noise, "Est")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_float32_precision(1e9 + 1100 * noise, "Est")


def test_float32_precision_warns_of_a_negative_offset_too():
    """Values around -1e9 lose their differences as those around 1e9 do."""
    from sk_replearn.data import check_float32_precision

    noise = np.random.default_rng(0).standard_normal((1000, 2))
    with pytest.warns(UserWarning, match="feature 1 of X has values around -1e"):
        check_float32_precision(noise * [1, 512] + [0, -1e9], "Est")


def test_input_rows_reads_in_memory_integers_as_float32():
    """Integers in memory are cast to float32 rows; only a memmap keeps its dtype."""
    ae = AutoencoderTransformer(input_shape=(1, 2, 2))
    X = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rows = input_rows(ae, X, reset=True)
    assert rows.dtype == np.float32
    np.testing.assert_array_equal(rows, X)


@pytest.mark.parametrize("layout", ["array", "memmap"])
def test_integer_x_far_from_zero_is_warned_of_as_float64_x_is(layout, tmp_path):
    """Integers that float32 rounds (timestamps) get float64's warning, once."""
    from sk_replearn import FineTuner, FineTunerRegressor

    base = np.random.default_rng(0).integers(0, 16, size=(64, 4))
    X = 1_700_000_000 + base  # float32 steps of 128 there: all one value
    if layout == "memmap":
        mapped = np.lib.format.open_memmap(
            tmp_path / "x.npy", mode="w+", dtype=np.int64, shape=X.shape
        )
        mapped[:] = X
        mapped.flush()
        X = np.load(tmp_path / "x.npy", mmap_mode="r")
    y = np.arange(64) % 2
    rep = AutoencoderTransformer(n_components=2, max_epochs=1, random_state=0)
    fits = [(rep, (X,)), (FineTuner(rep, max_epochs=1, random_state=0), (X, y))]
    if layout == "array":  # the fine-tuners take in-memory arrays
        fits.append((FineTunerRegressor(max_epochs=1, random_state=0), (X, y)))
    else:
        fits = fits[:1]
    for est, args in fits:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(*args)
        messages = [str(w.message) for w in caught if w.category is UserWarning]
        assert len(messages) == 1, messages
        assert messages[0].startswith(f"{type(est).__name__}: feature 0 of X")
        assert "resolves steps of 128" in messages[0]
    for small in (base, base.astype(np.uint8)):  # exact in float32: no warning
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            AutoencoderTransformer(n_components=2, max_epochs=1).fit(small)
            FineTuner(max_epochs=1, random_state=0).fit(small, y)


def test_an_infinite_value_in_a_float64_dataset_is_named_without_numpys_warning():
    """The clear error alone: no 'invalid value' RuntimeWarning before it."""
    X = np.random.default_rng(0).uniform(-1, 1, (40, 10))
    X[25, 3] = np.inf
    data = torch.utils.data.TensorDataset(torch.from_numpy(X))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="NaN or infinite"):
            AutoencoderTransformer(n_components=2, max_epochs=1).fit(data)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_pca_of_an_integer_memmap_equals_pca_of_the_same_values_in_memory(tmp_path):
    """PCA fitted and applied on an integer memmap equals PCA of the same array."""
    values = np.random.default_rng(0).integers(0, 10, size=(40, 5)).astype(np.int16)
    mapped = np.memmap(tmp_path / "x.dat", dtype=np.int16, mode="w+", shape=(40, 5))
    mapped[:] = values
    mapped.flush()
    mapped = np.memmap(tmp_path / "x.dat", dtype=np.int16, mode="r", shape=(40, 5))
    params = dict(n_components=2, random_state=0)
    expected = PCATransformer(**params).fit(values).transform(values)
    got = PCATransformer(**params).fit(mapped).transform(mapped)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_dataset_without_len_is_named_as_not_map_style():
    """A Dataset with __getitem__ but no __len__ gets the map-style error."""

    class NoLength(torch.utils.data.Dataset):
        def __getitem__(self, i):
            return torch.ones(3)

    with pytest.raises(TypeError, match="map-style torch Dataset with __len__"):
        AutoencoderTransformer(**TINY).fit(NoLength())


def test_the_dict_items_error_lists_their_keys():
    """Items that are dicts are refused with their keys listed, to pick from."""

    class Dicts(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return {"pixel_values": torch.ones(3), "labels": 0}

    with pytest.raises(TypeError, match=r"\(keys 'pixel_values', 'labels'\)"):
        AutoencoderTransformer(**TINY).fit(Dicts())


def test_the_evaluation_sampler_merges_a_last_batch_of_one_and_says_so_in_len():
    """EvalBatchSampler yields batches in order, a last one of one sample joined
    to the one before, and its len is the number of batches it yields."""
    from sk_replearn.data import EvalBatchSampler

    sampler = EvalBatchSampler(9, 4)
    assert list(sampler) == [[0, 1, 2, 3], [4, 5, 6, 7, 8]]
    assert len(sampler) == 2
    loader = torch.utils.data.DataLoader(torch.arange(9), batch_sampler=sampler)
    assert [b.tolist() for b in loader] == list(sampler)
    assert len(loader) == 2


@pytest.mark.parametrize("n", [0, 1, 5])
@pytest.mark.parametrize("batch_size", [None, 0, 1, 2, 7])
def test_batch_slices_cover_every_row_once_in_nonempty_chunks(n, batch_size):
    """batch_slices cuts range(n) into consecutive non-empty chunks, one chunk
    for None, a chunk size below 1 read as 1, and nothing for no rows."""
    from sk_replearn.data import batch_slices

    slices = list(batch_slices(n, batch_size))
    assert [i for sl in slices for i in range(sl.start, sl.stop)] == list(range(n))
    assert all(sl.stop > sl.start for sl in slices)
    size = n if batch_size is None else max(batch_size, 1)
    assert all(sl.stop - sl.start <= size for sl in slices)


def test_a_batch_size_below_one_reads_as_batches_of_one():
    """Batches and EvalBatchSampler given batch_size=0 serve one sample a batch."""
    from sk_replearn.data import Batches, EvalBatchSampler

    X = torch.arange(3.0)
    assert [xb.tolist() for xb, _ in Batches(X, 0, training=False)] == [[0], [1], [2]]
    assert len(list(Batches(X, 0, training=True))) == 3
    assert list(EvalBatchSampler(3, 0)) == [[0], [1], [2]]


def test_batches_of_no_rows_are_none_whatever_the_batch_size():
    """Empty data gives no batch, batch_size=-1 (the whole data) included."""
    from sk_replearn.data import Batches
    from sk_replearn.tokens import TokenBatches, TokenDataset

    tokens = TokenDataset(torch.zeros((0, 4), dtype=torch.int32), torch.zeros(0).long())
    for batch_size in (-1, 1, 8):
        for training in (True, False):
            rows = Batches(torch.zeros(0, 3), batch_size, training=training)
            assert len(rows) == 0 and list(rows) == []
            sequences = TokenBatches(tokens, batch_size, training=training)
            assert len(sequences) == 0 and list(sequences) == []


def test_array_rows_subsets_compose_take_slices_and_report_their_shape():
    """A subset of a subset, or by a slice, reads its own rows and has their shape."""
    rows = ArrayRows(np.arange(12.0, dtype=np.float32).reshape(6, 2), (1, 2))
    part = rows.subset(torch.tensor([4, 1, 5]))
    assert part.shape == (3, 1, 2)
    inner = part.subset(torch.tensor([2, 0]))  # rows 5 and 4 of the array
    assert len(inner) == 2 and inner.shape == (2, 1, 2)
    np.testing.assert_array_equal(inner[0:2], [[[10, 11]], [[8, 9]]])
    sliced = rows.subset(slice(1, 4))  # rows 1, 2 and 3
    assert sliced.shape == (3, 1, 2)
    np.testing.assert_array_equal(sliced[torch.tensor([2, 0])], [[[6, 7]], [[2, 3]]])


def test_array_rows_take_numpy_integers_and_the_first_row_from_the_end():
    """rows[np.int64(i)] is sample i, and rows[-n] the first of n rows."""
    rows = ArrayRows(np.arange(12.0).reshape(6, 2), (2,))
    assert rows[np.int64(5)].tolist() == rows[5].tolist() == [10.0, 11.0]
    assert rows[-6].tolist() == [0.0, 1.0]
    with pytest.raises(IndexError, match="index -7 is out of range for 6 rows"):
        rows[-7]
    with pytest.raises(IndexError, match="index 6 is out of range for 6 rows"):
        rows[np.int64(6)]


def test_array_rows_batches_are_copies_not_views_of_the_array():
    """Changing a sample or batch read from ArrayRows leaves the array as it was."""
    array = np.arange(12.0, dtype=np.float32).reshape(6, 2)
    rows = ArrayRows(array, (2,))
    batch, sample = rows[1:3], rows[4]
    batch += 100
    sample += 100
    np.testing.assert_array_equal(array, np.arange(12.0).reshape(6, 2))


def test_dataset_items_come_with_their_target_or_a_zero_that_collates_to_n():
    """Items are (sample, target i); unlabelled ones a 0-d zero, batched as (B,)."""
    from sk_replearn.data import ArrayDataset, SampleDataset

    X, y = torch.arange(8.0).reshape(4, 2), torch.tensor([3, 1, 4, 1])
    labelled = ArrayDataset(X, y)
    assert [int(labelled[i][1]) for i in range(4)] == [3, 1, 4, 1]
    assert labelled[2][0].tolist() == [4.0, 5.0]
    samples = SampleDataset(torch.utils.data.TensorDataset(X, y), [1, 2])
    assert samples[3][0].tolist() == [[6.0, 7.0]]
    for data in (ArrayDataset(X), samples):
        assert data[0][1].shape == () and float(data[0][1]) == 0.0
        _, yb = next(iter(torch.utils.data.DataLoader(data, batch_size=4)))
        assert yb.shape == (4,)
    odd = SampleDataset(torch.utils.data.TensorDataset(torch.zeros(2, 3)), [1, 2])
    with pytest.raises(ValueError, match=r"the samples have shape \(1, 2\), as"):
        odd[1]


def test_is_memory_mapped_sees_an_array_read_from_an_mmap_buffer(tmp_path):
    """An ndarray built on an mmap.mmap's buffer is memory-mapped, as a memmap is."""
    import mmap

    path = tmp_path / "x.dat"
    path.write_bytes(np.arange(8, dtype=np.float32).tobytes())
    with open(path, "rb") as f:
        buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    X = np.ndarray((4, 2), np.float32, buffer=buffer)
    assert is_memory_mapped(X) and is_memory_mapped(X[1:])
    assert not is_memory_mapped(np.array(X))
    # np.frombuffer's base is a memoryview of the mmap: read rows on demand
    # too, not copied whole into memory by the fit.
    flat = np.frombuffer(buffer, np.float32)
    assert is_memory_mapped(flat) and is_memory_mapped(flat.reshape(4, 2)[1:])
    assert not is_memory_mapped(np.frombuffer(bytearray(8), np.float32))
    del X, flat
    buffer.close()


def test_tensor_to_numpy_reads_tensors_that_require_grad_and_keeps_integers():
    """A tensor with autograd history is read; integers and bools keep their dtype."""
    from sk_replearn.data import tensor_to_numpy

    x = torch.linspace(0, 1, 4, requires_grad=True) * 2
    np.testing.assert_array_equal(tensor_to_numpy(x), x.detach().numpy())
    big = torch.tensor([2**24 + 1, -3])  # not a float32 value
    out = tensor_to_numpy(big)
    assert out.dtype == np.int64 and out.tolist() == [2**24 + 1, -3]
    assert tensor_to_numpy(torch.tensor([True, False])).dtype == np.bool_


def test_a_dataset_of_boolean_samples_trains_on_zeros_and_ones():
    """Boolean samples (masks) are read as the 0.0 / 1.0 floats they hold."""
    masks = _Items(20, lambda i: _SAMPLES[i] > 0)
    ae = AutoencoderTransformer(**_SMALL).fit(masks)
    assert ae.input_shape_ == (2, 4)
    floats = (_SAMPLES > 0).astype(np.float32)
    np.testing.assert_array_equal(ae.transform(masks), ae.transform(floats))
