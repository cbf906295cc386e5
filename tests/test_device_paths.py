"""Dry runs of a user's module take zeros where the module computes.

A module on CUDA (or with bf16 weights) refused the CPU float32 zeros of a
probe, and the probe's error was reported as a shape the module does not
take. The meta device stands in for CUDA here: a layer with weights on it
refuses a CPU input, as a CUDA layer does.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sk_replearn.nn._user_modules import probe_zeros
from sk_replearn.nn.layers import block_widths
from sk_replearn.nn.surgery import TransferEncoder
from sk_replearn.objectives.two_view import TwoViewObjective
from sk_replearn.transfer._head import build_head


def _pooling_encoder() -> nn.Module:
    """Takes images of any size to 3 features: its Linear refuses CPU input on meta."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4, 3))


def test_probe_zeros_take_the_device_and_dtype_of_the_module():
    bf16 = probe_zeros(nn.Linear(3, 2).to(torch.bfloat16), 2, 3)
    assert (bf16.shape, bf16.dtype) == ((2, 3), torch.bfloat16)
    assert probe_zeros(nn.Linear(3, 2).to("meta"), 2, 3).device.type == "meta"
    # Without parameters, a floating buffer says where (not the long counter).
    norm = nn.BatchNorm1d(3, affine=False).to("meta", torch.float16)
    assert (probe_zeros(norm, 2, 3).device.type, norm.num_batches_tracked.dtype) == (
        "meta",
        torch.long,
    )
    assert probe_zeros(norm, 2, 3).dtype == torch.float16
    plain = probe_zeros(nn.ReLU(), 2, 3)
    assert (plain.device.type, plain.dtype) == ("cpu", torch.float32)


@pytest.mark.parametrize("training", [True, False])
def test_two_view_local_view_probe_runs_where_the_encoder_lives(training):
    encoder = _pooling_encoder().to("meta").train(training)
    obj = TwoViewObjective((1, 16, 16), encoder=encoder, n_local_views=2)
    assert obj.backbone.out_features == 3
    assert obj.backbone.training is training  # the probe's eval() undone


def test_two_view_local_view_probe_still_names_a_shape_the_encoder_refuses():
    flat = nn.Sequential(nn.Flatten(), nn.Linear(256, 3)).to("meta")
    with pytest.raises(ValueError, match=r"does not accept the local views"):
        TwoViewObjective((1, 16, 16), encoder=flat, n_local_views=2)


@pytest.mark.parametrize("training", [True, False])
def test_finetuner_head_probe_runs_where_the_head_lives(training):
    head = nn.Linear(6, 3).to("meta").train(training)
    for given in (head, lambda i, o: nn.Linear(i, o).to("meta").train(training)):
        module = build_head(given, 6, 3)
        assert module.weight.device.type == "meta"
        assert module.training is training
    with pytest.raises(ValueError, match=r"must map \(batch, 6\) to \(batch, 4\)"):
        build_head(head, 6, 4)


def test_block_widths_probe_takes_the_dtype_of_the_encoder():
    body = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4))
    encoder = TransferEncoder(body.to(torch.bfloat16), (6,), 4)
    assert block_widths(encoder) == [5, 4]
    assert encoder.training  # the probe's eval() undone


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_pretrained_after_a_cuda_transform_pickles_cpu_tensors():
    # Its encoder_ moved to CUDA in place at transform, so the pickle loaded
    # only on a machine with a GPU; a network given on CUDA stayed there too.
    import pickle

    import numpy as np

    from sk_replearn import PretrainedTransformer

    X = np.random.default_rng(0).normal(size=(20, 64)).astype(np.float32)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), _pooling_encoder())
    on_cpu = PretrainedTransformer(net, input_shape=(1, 8, 8), device="cpu").fit(X)
    rep = PretrainedTransformer(net.cuda(), input_shape=(1, 8, 8), device="cuda")
    Z = rep.fit(X).transform(X)
    np.testing.assert_allclose(Z, on_cpu.transform(X), rtol=1e-4, atol=1e-5)
    state = pickle.loads(pickle.dumps(rep)).encoder_.state_dict()
    assert {t.device.type for t in state.values()} == {"cpu"}


def test_probe_zeros_follow_the_weights_before_a_float32_buffer():
    """A bf16 module keeping a float32 buffer is probed in bf16, its weights' dtype."""

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2).to(torch.bfloat16)
            self.register_buffer("scale", torch.ones(3))  # float32

    assert probe_zeros(Scaled(), 2, 3).dtype == torch.bfloat16


def test_probe_zeros_skip_an_integer_buffer_registered_first():
    """A leading integer buffer (a counter) does not make the probe integer."""

    class Counted(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("count", torch.zeros((), dtype=torch.long))
            self.register_buffer("scale", torch.ones(3, dtype=torch.float16))

    probe = probe_zeros(Counted(), 2, 3)
    assert (probe.dtype, probe.shape) == (torch.float16, (2, 3))
