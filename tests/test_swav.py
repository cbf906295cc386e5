"""SwAV, multi-crop and DINO's teacher-temperature warm-up.

The Sinkhorn-Knopp codes and the swapped-prediction loss against naive
loops written from the paper, the local views of multi-crop, and what the
estimators do with them. The common checks, persistence, fuzzing and
checkpoint tests reach SwAV through its row in ``tests/_instances.py``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _processes import run_ranks
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from sk_replearn import CollapseWarning, DINOTransformer, SwAVTransformer
from sk_replearn.losses import SwAVLoss, sinkhorn_knopp
from sk_replearn.objectives.clustering import SwAVObjective
from sk_replearn.objectives.dino import DINOObjective
from sk_replearn.views import ImageViews, SequenceViews, TabularViews

ATOL = 1e-10


def _randn(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).double()


def _naive_sinkhorn(scores, epsilon, n_iterations):
    """The paper's Algorithm (appendix A.1), element by element."""
    B, K = scores.shape
    Q = [[math.exp(scores[i, k].item() / epsilon) for i in range(B)] for k in range(K)]
    total = sum(map(sum, Q))
    Q = [[q / total for q in row] for row in Q]
    for _ in range(n_iterations):
        for k in range(K):
            r = sum(Q[k])
            Q[k] = [q / r / K for q in Q[k]]
        for i in range(B):
            c = sum(Q[k][i] for k in range(K))
            for k in range(K):
                Q[k][i] = Q[k][i] / c / B
    return torch.tensor(
        [[Q[k][i] * B for k in range(K)] for i in range(B)], dtype=torch.float64
    )


# -- Sinkhorn-Knopp ----------------------------------------------------------
@pytest.mark.parametrize(("epsilon", "n_iterations"), [(0.05, 3), (0.5, 1), (1.0, 7)])
def test_sinkhorn_matches_naive_loop(epsilon, n_iterations):
    scores = _randn(6, 4, seed=0).clamp(-1, 1)
    got = sinkhorn_knopp(scores, epsilon, n_iterations)
    want = _naive_sinkhorn(scores, epsilon, n_iterations).double()
    torch.testing.assert_close(got, want, rtol=1e-9, atol=ATOL)


def test_sinkhorn_codes_sum_to_one_and_prototypes_share_equally():
    scores = _randn(32, 8, seed=1).clamp(-1, 1)
    q = sinkhorn_knopp(scores, 0.05, 3)
    # the paper's constraints: each sample's code is a distribution ...
    torch.testing.assert_close(q.sum(1), torch.ones(32, dtype=q.dtype))
    assert (q >= 0).all()
    # ... and the prototypes tend to equal shares B / K as iterations go on
    shares = sinkhorn_knopp(scores, 0.05, 200).sum(0)
    torch.testing.assert_close(shares, torch.full((8,), 4.0, dtype=q.dtype))
    assert (q.sum(0) - 4).abs().max() < (scores.softmax(1).sum(0) - 4).abs().max()


def test_sinkhorn_spreads_a_collapsed_batch():
    # every sample prefers prototype 0: the softmax collapses, the codes do not
    scores = torch.zeros(16, 4, dtype=torch.float64)
    scores[:, 0] = 0.5
    scores += 1e-3 * _randn(16, 4, seed=2)
    q = sinkhorn_knopp(scores, 0.05, 50)
    torch.testing.assert_close(q.sum(0), torch.full((4,), 4.0, dtype=q.dtype))


def test_sinkhorn_large_scores_stay_finite():
    q = sinkhorn_knopp(torch.tensor([[300.0, -300.0], [250.0, 0.0]]), 0.05, 3)
    assert torch.isfinite(q).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"epsilon": 0.0}, "epsilon"), ({"n_iterations": 0}, "n_iterations")],
)
def test_sinkhorn_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sinkhorn_knopp(torch.randn(4, 3), **kwargs)


# -- the swapped-prediction loss ---------------------------------------------
def _naive_swav(scores, n_global, temperature, epsilon, n_iterations, queues=None):
    total, pairs = 0.0, 0
    for a in range(n_global):
        s = scores[a]
        if queues is not None:
            s = torch.cat([s, queues[a]])
        q = _naive_sinkhorn(s, epsilon, n_iterations)[: len(scores[a])]
        for b in range(len(scores)):
            if b == a:
                continue
            for i in range(len(q)):
                logits = [
                    scores[b][i, k].item() / temperature for k in range(q.shape[1])
                ]
                log_z = math.log(sum(math.exp(v) for v in logits))
                total -= sum(
                    q[i, k].item() * (logits[k] - log_z) for k in range(q.shape[1])
                ) / len(q)
            pairs += 1
    return total / pairs


@pytest.mark.parametrize(("n_views", "n_global"), [(2, 2), (4, 2), (3, 1)])
@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_swav_loss_matches_naive_loop(n_views, n_global, temperature):
    scores = [_randn(5, 3, seed=10 + v).clamp(-1, 1) for v in range(n_views)]
    loss = SwAVLoss(temperature, epsilon=0.05, sinkhorn_iterations=3)
    want = _naive_swav(scores, n_global, temperature, 0.05, 3)
    assert loss(scores, n_global=n_global).item() == pytest.approx(want, abs=1e-9)


def test_swav_loss_queue_joins_the_codes_only():
    scores = [_randn(4, 3, seed=20 + v).clamp(-1, 1) for v in range(3)]
    queues = [_randn(6, 3, seed=30 + a).clamp(-1, 1) for a in range(2)]
    got = SwAVLoss()(scores, n_global=2, queue_scores=queues).item()
    assert got == pytest.approx(_naive_swav(scores, 2, 0.1, 0.05, 3, queues), abs=1e-9)
    assert got != pytest.approx(SwAVLoss()(scores, n_global=2).item(), abs=1e-6)


def test_swav_loss_codes_carry_no_gradient():
    scores = [_randn(4, 3, seed=40 + v).requires_grad_() for v in range(2)]
    SwAVLoss()(scores).backward()
    # d loss / d s_b = (softmax(s_b / T) - q_a) / (T B), summed over the pairs
    q = [sinkhorn_knopp(s.detach()) for s in scores]
    for b, a in [(0, 1), (1, 0)]:
        want = (scores[b].detach().div(0.1).softmax(1) - q[a]) / (0.1 * 4) / 2
        torch.testing.assert_close(scores[b].grad, want)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ([torch.randn(4, 3)], {}, "at least 2"),
        ([torch.randn(4, 3), torch.randn(4, 2)], {}, "same shape"),
        ([torch.randn(4, 3)] * 2, {"n_global": 3}, "n_global"),
        ([torch.randn(0, 3)] * 2, {}, "B >= 1"),
        ([torch.randn(4, 3)] * 2, {"n_global": True}, "n_global"),
        ([torch.randn(4, 3)] * 2, {"n_global": 1.5}, "n_global"),
        (
            [torch.randn(4, 3)] * 2,
            {"queue_scores": [torch.randn(6, 2), None]},
            r"\(Q, 3\)",
        ),
        ([torch.randn(4, 3)] * 3, {"queue_scores": [torch.randn(6, 3)]}, "queue_sc"),
    ],
)
def test_swav_loss_rejects_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        SwAVLoss()(args, **kwargs)


# -- the objective -------------------------------------------------------------
def test_swav_objective_prototypes_unit_norm_and_frozen_at_first():
    torch.manual_seed(0)
    obj = SwAVObjective((6,), n_prototypes=5, freeze_prototypes_steps=1)
    x = torch.randn(16, 6)
    obj.loss(obj(x), x).backward()  # step 1: frozen
    assert torch.equal(obj.prototypes.weight.grad, torch.zeros(5, 128))
    torch.testing.assert_close(
        obj.prototypes.weight.norm(dim=1), torch.ones(5), rtol=0, atol=1e-6
    )
    obj.loss(obj(x), x).backward()  # step 2: learning
    assert obj.prototypes.weight.grad.abs().sum() > 0


def _swav_fit(X, **params) -> SwAVTransformer:
    """SwAV of 10 prototypes fitted on X in batches of 32."""
    return SwAVTransformer(
        n_prototypes=10, batch_size=32, random_state=0, **params
    ).fit(X)


def _swav_on_digits(**params) -> SwAVTransformer:
    """SwAV fitted on 64 digits (2 steps an epoch)."""
    return _swav_fit(load_digits().data[:64], input_shape=(1, 8, 8), **params)


def test_the_optimiser_skips_the_frozen_prototypes():
    # The frozen prototypes' zero gradient counted as AdamW steps: after the
    # freeze, its bias correction made their first updates 1.3 to 2 times
    # too large. As SwAV's code does, the optimiser now skips them.
    net = _swav_on_digits(freeze_prototypes_epochs=1, max_epochs=3).net_
    prototypes = net.module_.prototypes.weight
    steps_per_epoch = 2
    others = [p for p in net.module_.parameters() if p is not prototypes]
    assert int(net.optimizer_.state[others[0]]["step"]) == 3 * steps_per_epoch
    assert int(net.optimizer_.state[prototypes]["step"]) == 2 * steps_per_epoch


def test_swav_objective_queue_fills_newest_first_then_serves_codes():
    torch.manual_seed(0)
    obj = SwAVObjective((6,), n_prototypes=5, queue_length=12)
    x = torch.randn(8, 6)
    scores, z = obj(x)
    obj.loss((scores, z), x)
    assert int(obj.queued) == 8
    torch.testing.assert_close(obj.queue[:, :8], z)
    obj.loss(obj(x), x)
    assert int(obj.queued) == 12  # full: the next batch's codes use it


def test_swav_objective_full_queue_joins_each_views_codes():
    # Once full, each global view's queue joins that view's Sinkhorn codes
    # (SwAV's per-crop queues): the loss is the criterion's with the queues'
    # scores against the unit prototypes, which differs from the loss
    # without them. Checked so far only by the queue's count.
    torch.manual_seed(0)
    obj = SwAVObjective((6,), n_prototypes=5, queue_length=12)
    for _ in range(2):
        x = torch.randn(8, 6)
        obj.loss(obj(x), x)
    assert int(obj.queued) == 12
    queue = obj.queue.clone()  # what the next loss reads, before it enqueues
    x = torch.randn(8, 6)
    out = obj(x)
    got = obj.loss(out, x)
    weight = F.normalize(obj.prototypes.weight.detach(), dim=1)
    scores = [s.detach() for s in out[0]]
    want = obj.criterion(scores, n_global=2, queue_scores=[q @ weight.T for q in queue])
    torch.testing.assert_close(got.detach(), want, rtol=1e-5, atol=1e-6)
    swapped = obj.criterion(
        scores, n_global=2, queue_scores=[q @ weight.T for q in queue.flip(0)]
    )
    alone = obj.criterion(scores, n_global=2)
    assert abs(float(alone) - float(want)) > 1e-3
    assert abs(float(swapped) - float(want)) > 1e-4


def test_swav_objective_renormalises_moved_prototypes_at_each_step():
    # An optimiser step moves the prototypes off the unit sphere; the next
    # training forward puts them back, so the scores stay cosines (as
    # SwAV's code does). The test above only saw the initial unit rows.
    torch.manual_seed(0)
    obj = SwAVObjective((6,), n_prototypes=5)
    x = torch.randn(8, 6)
    with torch.no_grad():
        obj.prototypes.weight.mul_(torch.arange(1.0, 6.0)[:, None])
    scores, z = obj(x)
    weight = obj.prototypes.weight.detach()
    torch.testing.assert_close(weight.norm(dim=1), torch.ones(5), rtol=0, atol=1e-6)
    torch.testing.assert_close(
        scores[0].detach(), z[0] @ weight.T, rtol=1e-5, atol=1e-6
    )


def test_swav_objective_eval_leaves_state_alone():
    obj = SwAVObjective((6,), n_prototypes=5, queue_length=4).eval()
    state = {k: v.clone() for k, v in obj.state_dict().items()}
    x = torch.randn(8, 6)
    obj.loss(obj(x), x)
    for k, v in obj.state_dict().items():
        assert torch.equal(v, state[k]), k


# -- multi-crop ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("views", "shape", "local"),
    [
        (ImageViews(), (5, 3, 12, 10), (5, 3, 6, 5)),
        (ImageViews(local_size=0.25), (5, 1, 8, 8), (5, 1, 2, 2)),
        (SequenceViews(), (5, 2, 40), (5, 2, 20)),
        (SequenceViews(local_size=1.0), (5, 1, 40), (5, 1, 40)),
    ],
)
def test_local_views_shape_and_reproducible(views, shape, local):
    x = torch.randn(*shape)
    torch.manual_seed(0)
    a = views.local(x)
    torch.manual_seed(0)
    assert a.shape == local and torch.equal(a, views.local(x))
    assert views.local(x[:0]).shape == (0, *local[1:])


def test_local_sequence_views_are_short_crops():
    ramp = torch.linspace(0, 1, 40).expand(64, 1, 40)
    views = SequenceViews(
        max_shift=0.0, scale_range=(1, 1), noise_std=0, local_crop_scale=(0.3, 0.4)
    )
    out = views.local(ramp)  # (64, 1, 20)
    span = out[..., -1] - out[..., 0]
    assert (span > 0.3 * 19 / 20 - 0.05).all() and (span < 0.4).all()
    assert (out.diff(dim=-1) > 0).all()


def test_local_image_views_are_small_crops():
    ramp = torch.linspace(-1, 1, 32).expand(64, 1, 32, 32)
    views = ImageViews(jitter_prob=0.0, local_crop_scale=(0.1, 0.2))
    out = views.local(ramp)  # (64, 1, 16, 16)
    span = out.amax(dim=(1, 2, 3)) - out.amin(dim=(1, 2, 3))
    assert out.shape == (64, 1, 16, 16)
    assert (span < 2 * math.sqrt(0.2 * 4 / 3)).all()


def test_global_views_unchanged_by_the_local_parameters():
    x = torch.randn(6, 1, 40)
    torch.manual_seed(0)
    a = SequenceViews()(x)
    torch.manual_seed(0)
    assert torch.equal(a, SequenceViews(local_crop_scale=(0.1, 0.2), local_size=0.3)(x))


@pytest.mark.parametrize(
    ("views", "match"),
    [
        (SequenceViews(local_size=0.0), "local_size"),
        (SequenceViews(local_crop_scale=(0.5, 0.2)), "local_crop_scale"),
        (SequenceViews(local_crop_scale=(0.5, 1.5)), "local_crop_scale"),
    ],
)
def test_local_views_reject_bad_parameters(views, match):
    with pytest.raises(ValueError, match=match):
        views.local(torch.randn(4, 1, 40))


def test_local_shape_rounds_to_the_nearest_size_and_checks_local_size():
    # 0.75 of 9 steps is 6.75 steps: 7; 0.3 of 10 x 6 pixels is 3 x 1.8: 3 x 2.
    assert SequenceViews(local_size=0.75).local_shape((9,)) == (7,)
    assert ImageViews(local_size=0.3).local_shape((10, 6)) == (3, 2)
    assert ImageViews(local_size=0.05).local_shape((8, 8)) == (1, 1)  # >= 1
    for local_size in (0.0, 1.5):  # a fraction of the input's size
        with pytest.raises(ValueError, match="local_size"):
            SequenceViews(local_size=local_size).local_shape((40,))


def test_local_views_need_an_encoder_that_takes_them():
    with pytest.raises(ValueError, match="does not accept the local views"):
        SwAVObjective((1, 40), encoder="mlp", n_local_views=2)
    est = SwAVTransformer(encoder="mlp", input_shape=(1, 40), max_epochs=1)
    X = np.random.default_rng(0).normal(size=(20, 40))
    assert est.fit(X).net_.module_.n_local_views == 0  # "auto": none for an MLP


@pytest.mark.parametrize("objective", [SwAVObjective, DINOObjective])
def test_a_vit_whose_patches_do_not_divide_the_local_views_is_explained(objective):
    # The ViT's own patch check (a ValueError) went past the local-view
    # message and named patch_size, which the user never set.
    with pytest.raises(
        ValueError, match=r"n_local_views=2: the encoder does not accept.*patch_size"
    ):
        objective((1, 28, 28), encoder="vit", n_local_views=2)


def test_local_views_need_a_family_with_crops():
    with pytest.raises(ValueError, match="n_local_views=2 needs views with local"):
        SwAVObjective((6,), views=TabularViews(), n_local_views=2)
    # the error quotes the views as given, not the function None stands for
    with pytest.raises(ValueError, match=r"views=None \(the input as it is\) has"):
        SwAVObjective((1, 8, 8), views=None, n_local_views=2)
    with pytest.raises(ValueError, match=r"views='auto' \(TabularViews here\)"):
        SwAVObjective((6,), n_local_views=2)
    with pytest.raises(ValueError, match="n_local_views=1 needs views with local"):
        SwAVTransformer(encoder="mlp", n_local_views=1, max_epochs=1).fit(
            np.random.default_rng(0).normal(size=(20, 6))
        )


@pytest.mark.parametrize("objective", [SwAVObjective, DINOObjective])
def test_multi_crop_objectives_see_every_view(objective):
    obj = objective((1, 40), n_local_views=3, projection_dim=16)
    x = torch.randn(8, 1, 40)
    out = obj(x)
    student = out[0]  # DINO: logits over 16 prototypes; SwAV: scores over 100
    assert len(student) == 5
    assert all(s.shape == student[0].shape and len(s) == 8 for s in student)
    assert obj.loss(out, x).isfinite()


@pytest.mark.parametrize(
    ("cls", "input_shape", "n_local"),
    [
        (SwAVTransformer, (1, 8, 8), 2),
        (DINOTransformer, (1, 8, 8), 2),
        (SwAVTransformer, (1, 64), 0),  # 1-D signals: more epochs instead
        (DINOTransformer, (1, 64), 0),
        (SwAVTransformer, None, 0),  # tables: nothing to crop
    ],
)
def test_auto_local_views_by_input_kind(cls, input_shape, n_local):
    X, _ = load_digits(return_X_y=True)
    kw = {} if input_shape else {"encoder": "mlp"}
    est = cls(
        input_shape=input_shape, max_epochs=1, batch_size=64, random_state=0, **kw
    )
    est.fit(X[:128])
    assert est.net_.module_.n_local_views == n_local


@pytest.mark.parametrize(
    ("input_shape", "center_momentum", "epochs_on_4000"),
    [((1, 8, 8), 0.9, 30), ((1, 64), 0.8, 33)],
)
def test_dino_auto_settings_by_input_kind(input_shape, center_momentum, epochs_on_4000):
    # 1-D signals: no local views, a faster center and 33 epochs on 4,000
    # samples (the Notes' measurements); images keep the paper's center.
    X, _ = load_digits(return_X_y=True)
    dino = DINOTransformer(
        input_shape=input_shape, max_epochs=1, batch_size=64, random_state=0
    ).fit(X[:128])
    assert dino.net_.module_.criterion.center_momentum == center_momentum
    dino.set_params(max_epochs="auto")._resolve_epochs(4000)
    assert dino.max_epochs_ == epochs_on_4000
    explicit = DINOTransformer(
        input_shape=input_shape,
        center_momentum=0.5,
        n_local_views=1,
        max_epochs=1,
        batch_size=64,
        random_state=0,
    ).fit(X[:128])
    assert explicit.net_.module_.criterion.center_momentum == 0.5
    assert explicit.net_.module_.n_local_views == 1


# -- DINO's teacher temperature warm-up ----------------------------------------
def test_dino_teacher_temp_rises_linearly_then_stays():
    obj = DINOObjective(
        (6,), teacher_temp=0.07, warmup_teacher_temp=0.04,
        warmup_teacher_temp_steps=3, projection_dim=8,
    )  # fmt: skip
    x = torch.randn(8, 6)
    temps = []
    for _ in range(5):
        obj.loss(obj(x), x)
        temps.append(obj.criterion.teacher_temp)
    assert temps == pytest.approx([0.04, 0.05, 0.06, 0.07, 0.07])
    obj.eval()
    obj.loss(obj(x), x)
    assert obj.criterion.teacher_temp == 0.07


@pytest.mark.parametrize(("teacher_temp", "start"), [(0.05, None), (0.05, 0.03)])
def test_dino_warm_up_starts_at_teacher_temp_unless_set(teacher_temp, start):
    X = np.random.default_rng(0).normal(size=(64, 6))
    dino = DINOTransformer(
        encoder="mlp", teacher_temp=teacher_temp, warmup_teacher_temp=start,
        max_epochs=2, batch_size=32, projection_dim=8, random_state=0,
    ).fit(X)  # fmt: skip
    module = dino.net_.module_
    assert module.teacher_temp == teacher_temp
    # None: the teacher stays at teacher_temp from the first step
    assert module.warmup_teacher_temp == (teacher_temp if start is None else start)


@pytest.mark.parametrize(
    ("epochs", "max_epochs", "steps"),
    # "auto" is 30 % of the epochs, rounded: 2 epochs warm up for 1 (0.6),
    # not for none.
    [("auto", 10, 3 * 2), ("auto", 2, 1 * 2), (4, 10, 4 * 2), (99, 10, 10 * 2)],
)
def test_dino_warmup_epochs_to_steps(epochs, max_epochs, steps):
    X = np.random.default_rng(0).normal(size=(64, 6))
    dino = DINOTransformer(
        encoder="mlp", warmup_teacher_temp_epochs=epochs, max_epochs=max_epochs,
        batch_size=32, projection_dim=8, random_state=0,
    ).fit(X)  # fmt: skip
    assert dino.net_.module_.warmup_teacher_temp_steps == steps


# -- learning happens --------------------------------------------------------
def test_swav_beats_a_random_encoder_on_digits():
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, stratify=y, random_state=0)

    def probe(Z_tr, Z_te):
        return LogisticRegression(max_iter=2000).fit(Z_tr, y_tr).score(Z_te, y_te)

    # The untrained twin gets the same passes at lr=0 (batch-norm statistics
    # fitted alike). Measured at seeds 0, 1, 2: trained 0.987, 0.982, 0.984,
    # untrained 0.962, 0.971, 0.962, raw pixels 0.958.
    kw = dict(input_shape=(1, 8, 8), batch_size=128, n_prototypes=30, random_state=0)
    kw["max_epochs"] = 12
    trained = SwAVTransformer(**kw).fit(X_tr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollapseWarning)
        untrained = SwAVTransformer(lr=0, **kw).fit(X_tr)
    score = probe(trained.transform(X_tr), trained.transform(X_te))
    assert score > probe(untrained.transform(X_tr), untrained.transform(X_te)) + 0.01
    assert score > probe(X_tr, X_te) + 0.015
    assert trained.loss_curve_[-1] < trained.loss_curve_[0]


@pytest.mark.parametrize(
    "cls, param",
    [(SwAVTransformer, "n_prototypes"), (DINOTransformer, "projection_dim")],
)
def test_one_prototype_that_would_learn_nothing_is_refused(cls, param):
    # A softmax over one output is 1: the loss was 0 at every step.
    X = np.random.default_rng(0).normal(size=(32, 8)).astype(np.float32)
    with pytest.raises(ValueError, match=f"'{param}' parameter .* range \\[2, inf\\)"):
        cls(**{param: 1}, max_epochs=1).fit(X)


def test_a_queue_longer_than_the_fit_queues_is_warned_of():
    # The queue joins the codes once full: one longer than every embedding
    # the fit queues was silently never used.
    X = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    params = {"n_prototypes": 4, "batch_size": 16, "max_epochs": 2}
    swav = SwAVTransformer(queue_length=81, **params, random_state=0)
    with pytest.warns(UserWarning, match=r"queue_length=81 is more than the 80 "):
        swav.fit(X)
    assert int(swav.net_.module_.queued) == 80 < 81  # indeed never full
    # warm_start continues a queue only where there is one: a first fit
    # with warm_start=True starts from an empty queue as any first fit.
    first = SwAVTransformer(queue_length=81, warm_start=True, **params, random_state=0)
    with pytest.warns(UserWarning, match=r"queue_length=81 is more than the 80 "):
        first.fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        full = SwAVTransformer(queue_length=80, **params, random_state=0).fit(X)
    assert int(full.net_.module_.queued) == 80


def _swav_ddp_rank(rank: int, world: int, out) -> None:
    from torch.nn.parallel import DistributedDataParallel

    torch.manual_seed(0)  # the same initial weights in both processes
    objective = SwAVObjective(
        (1, 40), n_prototypes=10, projection_dim=8, queue_length=16, encoder="mlp"
    )
    ddp = DistributedDataParallel(objective)  # broadcasts buffers, as accelerate's
    X = torch.randn(2, 3, 8, 1, 40, generator=torch.Generator().manual_seed(1))
    for step in range(3):
        x = X[rank, step]
        objective.loss(ddp(x), x).backward()  # enqueues 8 embeddings a view
    # The older half holds the previous step's embeddings: this process's
    # own, unless a broadcast replaced the queue with process 0's first.
    torch.save(objective.queue[:, 8:].clone(), out / f"queue{rank}.pt")


def test_each_process_keeps_its_own_swav_queue(tmp_path):
    # DistributedDataParallel broadcast process 0's buffers, the queue
    # included, before every forward: every process used process 0's queue.
    run_ranks(_swav_ddp_rank, tmp_path)
    queues = [torch.load(tmp_path / f"queue{r}.pt") for r in (0, 1)]
    assert queues[0].abs().sum() > 0 and queues[1].abs().sum() > 0
    assert not torch.equal(queues[0], queues[1])


@pytest.mark.parametrize(
    "encoder, shape, local",
    [
        ("auto", (1, 8, 8), 2),
        ("cnn", (1, 8, 8), 2),
        ("resnet", (1, 8, 8), 2),  # was left out of the pooled encoders once
        ("mlp", (1, 8, 8), 0),  # no pooling: a small crop is another input
        ("auto", (1, 40), 0),  # signals take no local views
    ],
)
def test_auto_local_views_go_to_pooled_image_encoders(encoder, shape, local):
    X = np.random.default_rng(0).normal(size=(64, math.prod(shape))).astype(np.float32)
    est = _swav_fit(X, input_shape=shape, encoder=encoder, max_epochs=1, device="cpu")
    assert est.net_.module_.n_local_views == local


def test_an_encoder_whose_width_depends_on_the_view_size_is_refused_for_local_views():
    # Without global pooling a smaller crop gives another width: the local
    # views cannot share the prototypes.
    from torch import nn

    flat = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten())
    with pytest.raises(ValueError, match="maps the local views"):
        SwAVObjective((1, 16, 16), encoder=flat, n_local_views=2)


def test_sequenceviews_whole_local_views_are_the_rolled_signal_resized():
    """A local view of the whole signal is it rolled by whole steps and resized."""
    torch.manual_seed(0)
    x = torch.randn(64, 2, 40)
    views = SequenceViews(
        scale_range=(1, 1), noise_std=0, max_shift=0.25, local_crop_scale=(1.0, 1.0)
    )
    out = views.local(x)  # (64, 2, 20)
    shifts = set()
    for xi, oi in zip(x, out):
        match = [
            k
            for k in range(-10, 11)
            if torch.allclose(
                oi,
                F.interpolate(xi.roll(k, dims=-1)[None], size=20, mode="linear")[0],
                atol=1e-6,
            )
        ]
        assert match, "each local view must be x rolled by at most 10 steps, resized"
        shifts.add(match[0] % 2)
    assert shifts == {0, 1}  # odd shifts too: the interpolation wraps around


def test_sinkhorn_rejects_scores_that_are_not_a_matrix():
    """Scores must be (B, K): a vector is refused by name, not transposed."""
    with pytest.raises(ValueError, match=r"scores must be \(B, K\)"):
        sinkhorn_knopp(torch.randn(4))


def test_swav_loss_uses_its_epsilon_and_sinkhorn_iterations():
    """The codes are sinkhorn_knopp's with the loss's own epsilon and number
    of iterations, and the loss is the naive loop's with them."""
    scores = [_randn(5, 3, seed=50 + v).clamp(-1, 1) for v in range(3)]
    loss = SwAVLoss(temperature=0.5, epsilon=0.3, sinkhorn_iterations=7)
    torch.testing.assert_close(
        loss.codes(scores[0]), _naive_sinkhorn(scores[0], 0.3, 7), rtol=1e-9, atol=ATOL
    )
    want = _naive_swav(scores, 2, 0.5, 0.3, 7)
    assert loss(scores, n_global=2).item() == pytest.approx(want, abs=1e-9)
    assert repr(loss) == "SwAVLoss(temperature=0.5, epsilon=0.3, sinkhorn_iterations=7)"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"epsilon": -0.1}, "epsilon"),
        ({"sinkhorn_iterations": 0}, "sinkhorn_iterations"),
    ],
)
def test_swav_loss_rejects_bad_parameters(kwargs, match):
    """A temperature or epsilon that is not > 0, or no iteration, is refused
    when the loss is built."""
    with pytest.raises(ValueError, match=match):
        SwAVLoss(**kwargs)


def test_swav_objective_queues_the_unit_embeddings_of_the_global_views():
    """With local views too, the embeddings the objective returns (and
    queues) are the global views' unit rows whose cosines with the unit
    prototypes are the global views' scores."""
    torch.manual_seed(0)
    obj = SwAVObjective((1, 40), n_prototypes=5, projection_dim=8, n_local_views=2)
    scores, z = obj(10 * torch.randn(16, 1, 40))
    assert len(scores) == 4 and z.shape == (2, 16, 8)
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(2, 16), rtol=0, atol=1e-6)
    weight = obj.prototypes.weight.detach()
    for view in range(2):
        torch.testing.assert_close(
            scores[view].detach(), z[view] @ weight.T, rtol=1e-5, atol=1e-6
        )


def test_swav_objective_in_evaluation_scores_against_unit_prototypes():
    """In evaluation (score, a validation split) the batch's and the full
    queue's scores are cosines with the normalised prototypes, whose
    parameter is left as it is."""
    torch.manual_seed(0)
    obj = SwAVObjective((6,), n_prototypes=5, projection_dim=8, queue_length=8)
    x = torch.randn(8, 6)
    obj.loss(obj(x), x)  # training: the queue is full
    with torch.no_grad():  # as an optimiser step leaves them: off the sphere
        obj.prototypes.weight.mul_(torch.arange(1.0, 6.0)[:, None])
    moved = obj.prototypes.weight.detach().clone()
    obj.eval()
    scores, z = obj(x)
    got = obj.loss((scores, z), x)
    torch.testing.assert_close(obj.prototypes.weight.detach(), moved, rtol=0, atol=0)
    unit = F.normalize(moved, dim=1)
    torch.testing.assert_close(scores[0], z[0] @ unit.T, rtol=1e-5, atol=1e-6)
    queue_scores = [q @ unit.T for q in obj.queue]
    want = obj.criterion(list(scores), n_global=2, queue_scores=queue_scores)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_swav_objective_loss_uses_its_temperature_epsilon_and_iterations():
    """The objective's loss is SwAVLoss built with the objective's own
    temperature, epsilon and Sinkhorn iterations, not the defaults."""
    torch.manual_seed(0)
    params = {"temperature": 0.3, "epsilon": 0.2, "sinkhorn_iterations": 7}
    obj = SwAVObjective((6,), n_prototypes=5, projection_dim=8, **params)
    x = torch.randn(8, 6)
    out = obj(x)
    got = obj.loss(out, x)
    scores = [s.detach() for s in out[0]]
    want = SwAVLoss(**params)(scores, n_global=2)
    torch.testing.assert_close(got.detach(), want, rtol=1e-5, atol=1e-6)
    assert abs(float(SwAVLoss()(scores, n_global=2)) - float(want)) > 1e-3


def test_a_warm_start_that_continues_a_queue_is_not_warned_of():
    """A warm start continues the fitted queue, which fills over the two
    fits: only the first fit warns that its queue never fills."""
    X = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    swav = SwAVTransformer(
        queue_length=81,
        warm_start=True,
        n_prototypes=4,
        batch_size=16,
        max_epochs=2,
        random_state=0,
    )
    with pytest.warns(UserWarning, match=r"queue_length=81 is more than the 80 "):
        swav.fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        swav.fit(X)
    assert int(swav.net_.module_.queued) == 81  # full: now in use


@pytest.mark.parametrize(
    ("input_shape", "views"), [((1, 8, 8), None), (None, "auto")], ids=["none", "table"]
)
def test_auto_local_views_need_views_that_make_them(input_shape, views):
    """n_local_views="auto" gives no local views, instead of an error, where
    the views cannot make them: views=None on images, or tables (whose
    "auto" views have no crops) with the default encoder."""
    X = np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32)
    est = _swav_fit(X, input_shape=input_shape, views=views, max_epochs=1, device="cpu")
    assert est.net_.module_.n_local_views == 0


def _sinkhorn_rank(rank: int, world: int, out) -> None:
    scores = 300 * _randn(8, 4, seed=60).clamp(-1, 1)  # far from cosines
    torch.save(sinkhorn_knopp(scores[rank * 4 : (rank + 1) * 4]), out / f"q{rank}.pt")


def test_sinkhorn_over_processes_of_large_scores_equals_one_process(tmp_path):
    """Split over two processes, the codes of scores far from cosines are
    the rows of one process's codes of the whole batch, and finite."""
    run_ranks(_sinkhorn_rank, tmp_path)
    got = torch.cat([torch.load(tmp_path / f"q{r}.pt") for r in (0, 1)])
    want = sinkhorn_knopp(300 * _randn(8, 4, seed=60).clamp(-1, 1))
    assert torch.isfinite(want).all()
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_prototypes_train_from_the_first_step_without_a_freeze():
    """freeze_prototypes_epochs=0 (no freeze) is accepted and the optimiser
    updates the prototypes at every step."""
    net = _swav_on_digits(freeze_prototypes_epochs=0, max_epochs=2).net_
    assert net.module_.freeze_prototypes_steps == 0
    assert int(net.optimizer_.state[net.module_.prototypes.weight]["step"]) == 2 * 2
