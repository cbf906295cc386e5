"""How each two-view objective wires its networks into its loss.

tests/test_ssl_losses.py checks every loss against a loop from its paper;
these tests check what the objectives feed those losses. On a fixed batch of
two views (and two local views for DINO) the loss an objective returns must
equal the paper's formula computed here by hand from its sub-networks
(backbone, heads, momentum copies, DINO's centre), the gradient must be that
formula's, with its stop-gradients, and the momentum networks must follow
their EMA. A user relies on this: a swapped view, a lost stop-gradient or a
teacher shown the wrong crops still trains, and only the representation's
quality (which no other test pins exactly) would show it.

Every network runs on both views as one batch (batch normalisation pools
their statistics, see ``embed_pair``), so the hand computations do the same.
"""

import copy
import warnings
from inspect import signature

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _instances import PUBLIC_ESTIMATORS
from torch import nn

from sk_replearn.losses import BarlowTwinsLoss, VICRegLoss
from sk_replearn.methods.two_view import _TwoViewTransformer
from sk_replearn.nn.momentum import cosine_momentum
from sk_replearn.objectives.clustering import SwAVObjective
from sk_replearn.objectives.cmc import CMCObjective
from sk_replearn.objectives.contrastive import MoCoObjective, SimCLRObjective
from sk_replearn.objectives.dino import DINOObjective
from sk_replearn.objectives.noncontrastive import BYOLObjective, SimSiamObjective
from sk_replearn.objectives.redundancy import BarlowTwinsObjective, VICRegObjective

BATCH, LENGTH = 6, 16
SMALL = {
    "encoder": "cnn",
    "encoder_kwargs": {"channels": (4, 8)},
    "projection_dim": 8,
    "hidden_dim": 12,
}
RTOL, ATOL = 1e-5, 1e-8

# Non-default settings, so that a default hard-coded in place of the
# objective's own value shows.
OBJECTIVES = {
    "simclr": (SimCLRObjective, {"temperature": 0.3}),
    "moco": (MoCoObjective, {"temperature": 0.3, "queue_size": 32, "momentum": 0.8}),
    "byol": (BYOLObjective, {"momentum": 0.8}),
    "simsiam": (SimSiamObjective, {"predictor_dim": 3}),
    "barlow_twins": (BarlowTwinsObjective, {"lambd": 0.05}),
    "vicreg": (
        VICRegObjective,
        {"invariance_weight": 2.0, "variance_weight": 3.0, "covariance_weight": 0.5},
    ),
    "dino": (
        DINOObjective,
        {
            "n_local_views": 2,
            "bottleneck_dim": 5,
            "teacher_temp": 0.07,
            "student_temp": 0.2,
            "warmup_teacher_temp": 0.02,
            "warmup_teacher_temp_steps": 4,
            "center_momentum": 0.7,
            "momentum": 0.8,
        },
    ),
}

# (online, momentum copy) attribute pairs of the methods with an EMA network.
MOMENTUM_PAIRS = {
    "moco": [("backbone", "key_backbone"), ("projector", "key_projector")],
    "byol": [("backbone", "target_backbone"), ("projector", "target_projector")],
    "dino": [("backbone", "teacher_backbone"), ("head", "teacher_head")],
}


def _build(name, total_steps=8):
    """The objective in float64 and training mode, its online networks moved.

    Right after construction a momentum copy equals its online network, so
    a target fed by the online network (or the reverse) would go unseen:
    the online weights are nudged first, as an optimiser step would.
    """
    cls, params = OBJECTIVES[name]
    torch.manual_seed(0)
    obj = cls((1, LENGTH), total_steps=total_steps, **SMALL, **params).double()
    obj.train()
    frozen = {id(p) for _, t in MOMENTUM_PAIRS.get(name, []) for p in _params(obj, t)}
    with torch.no_grad():
        for p in obj.parameters():
            if id(p) not in frozen:
                p.add_(0.3 * torch.randn_like(p))
    if name == "dino":  # a centre of zero would hide a lost centring
        obj.criterion.center.normal_()
        obj.step.fill_(3)  # within the warm-up: 0.02 + (0.07 - 0.02) * 2 / 4
    return obj


def _params(obj, attr):
    return list(getattr(obj, attr).parameters())


def _views(obj):
    """Two global views and, for DINO, the stacked local views."""
    gen = torch.Generator().manual_seed(1)
    v1, v2 = torch.randn(2, BATCH, 1, LENGTH, generator=gen, dtype=torch.float64)
    if not obj.n_local_views:
        return (v1, v2)
    local_len = obj.views.local_shape((LENGTH,))[0]
    shape = (obj.n_local_views * BATCH, 1, local_len)
    return (v1, v2, torch.randn(shape, generator=gen, dtype=torch.float64))


def _state(obj):
    """What the loss reads besides the networks: MoCo's queue, DINO's centre."""
    state = {}
    if hasattr(obj, "queue"):
        state["queue"] = obj.queue.queue.clone()  # (K, D), oldest first
    if isinstance(obj, DINOObjective):
        state["center"] = obj.criterion.center.clone()  # (1, K)
    return state


def _module_loss(obj, views):
    out = obj.forward_views(*views)
    return obj.loss(out, views[0]), out


def _pair(net, v1, v2):
    """``net`` on both views in one batch, split back into the two views."""
    return net(torch.cat([v1, v2])).chunk(2)  # 2 x (B, D)


# --- the papers' formulas, by hand ------------------------------------------


def _neg_cos(p, z):
    """Mean negative cosine of rows."""
    return -F.cosine_similarity(p, z, dim=1).mean()


def _simclr(obj, views, state):
    """SimCLR eq. (1): each of 2N projections against the other 2N - 1."""
    z1, z2 = _pair(lambda v: obj.projector(obj.backbone(v)), *views)
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2N, D)
    sim = z @ z.T / obj.criterion.temperature  # (2N, 2N)
    eye = torch.eye(len(z), dtype=torch.bool)
    sim = sim.masked_fill(eye, float("-inf"))
    other = torch.arange(len(z)).roll(BATCH)  # anchor i -> its other view
    return (torch.logsumexp(sim, 1) - sim[torch.arange(len(z)), other]).mean()


def _infonce(q, k, queue, tau):
    q, k, queue = (F.normalize(t, dim=1) for t in (q, k, queue))
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.T], 1) / tau
    return (torch.logsumexp(logits, 1) - logits[:, 0]).mean()


def _moco(obj, views, state):
    """MoCo eq. (1), symmetrised: queries of one view, momentum keys of the
    other, the queue as it was before this batch as the negatives."""
    q1, q2 = _pair(lambda v: obj.projector(obj.backbone(v)), *views)
    with torch.no_grad():
        k1, k2 = _pair(lambda v: obj.key_projector(obj.key_backbone(v)), *views)
    tau = obj.criterion.temperature
    return (
        _infonce(q1, k2, state["queue"], tau) + _infonce(q2, k1, state["queue"], tau)
    ) / 2


def _byol(obj, views, state):
    """BYOL eq. (2) symmetrised: ‖q̄(v) − z̄'(v')‖² + ‖q̄(v') − z̄'(v)‖²,
    the online predictor against the EMA target's projection of the other
    view, batch means."""
    p1, p2 = _pair(lambda v: obj.predictor(obj.projector(obj.backbone(v))), *views)
    with torch.no_grad():
        t1, t2 = _pair(lambda v: obj.target_projector(obj.target_backbone(v)), *views)

    def sq(p, t):
        return (F.normalize(p, dim=1) - F.normalize(t, dim=1)).pow(2).sum(1).mean()

    return sq(p1, t2) + sq(p2, t1)


def _simsiam(obj, views, state, stop_gradient=True):
    """SimSiam eq. (3): D(p1, stopgrad(z2)) / 2 + D(p2, stopgrad(z1)) / 2."""
    z1, z2 = _pair(lambda v: obj.projector(obj.backbone(v)), *views)
    p1, p2 = _pair(obj.predictor, z1, z2)
    if stop_gradient:
        z1, z2 = z1.detach(), z2.detach()
    return _neg_cos(p1, z2) / 2 + _neg_cos(p2, z1) / 2


def _barlow_twins(obj, views, state):
    """Barlow Twins Algorithm 1: batch-normalised projections (no affine),
    C = z1ᵀ z2 / N, Σ (1 − C_ii)² + λ Σ_{i≠j} C_ij²."""
    z1, z2 = _pair(lambda v: obj.projector(obj.backbone(v)), *views)
    n1, n2 = (F.batch_norm(z, None, None, training=True, eps=1e-5) for z in (z1, z2))
    c = n1.T @ n2 / BATCH  # (D, D)
    on = (torch.diagonal(c) - 1).pow(2).sum()
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on + obj.criterion.lambd * off


def _vicreg(obj, views, state):
    """VICReg eq. (6) on the two expansions, the invariance term as the
    authors' code has it (the mean squared difference)."""
    z1, z2 = _pair(lambda v: obj.projector(obj.backbone(v)), *views)
    d = z1.shape[1]

    def variance(z):
        return torch.relu(1 - torch.sqrt(z.var(0) + 1e-4)).mean()

    def covariance(z):
        zc = z - z.mean(0)
        cov = zc.T @ zc / (BATCH - 1)  # (D, D)
        return (cov.pow(2).sum() - torch.diagonal(cov).pow(2).sum()) / d

    crit = obj.criterion
    return (
        crit.invariance_weight * (z1 - z2).pow(2).mean()
        + crit.variance_weight * (variance(z1) + variance(z2))
        + crit.covariance_weight * (covariance(z1) + covariance(z2))
    )


def _dino(obj, views, state, *, evaluation=False):
    """DINO eq. (3) and Algorithm 1: the EMA teacher sees the two global
    views only, centred and sharpened; the student sees all four views; the
    cross-entropy is averaged over the (teacher view, other student view)
    pairs. In evaluation the teacher is centred on its own mean over the
    global views, at the temperature after the warm-up."""
    v1, v2, local = views
    features = torch.cat([obj.backbone(torch.cat([v1, v2])), obj.backbone(local)])
    student = obj.head(features).chunk(4)  # 4 x (B, K): global views first
    with torch.no_grad():
        teacher = _pair(lambda v: obj.teacher_head(obj.teacher_backbone(v)), v1, v2)
    done = int(obj.step) - 1  # the forward counts the step it trains
    tau_t = 0.02 + (0.07 - 0.02) * done / 4  # the warm-up, by hand
    center = state["center"]
    if evaluation:
        tau_t, center = 0.07, torch.cat(teacher).mean(0, keepdim=True)
    total, pairs = 0.0, 0
    for a, t in enumerate(teacher):
        q = F.softmax((t - center) / tau_t, dim=1)  # (B, K)
        for b, s in enumerate(student):
            if a != b:
                total = total - (q * F.log_softmax(s / 0.2, dim=1)).sum(1).mean()
                pairs += 1
    assert pairs == 2 * 3  # each teacher view against the 3 other views
    return total / pairs


BY_HAND = {
    "simclr": _simclr,
    "moco": _moco,
    "byol": _byol,
    "simsiam": _simsiam,
    "barlow_twins": _barlow_twins,
    "vicreg": _vicreg,
    "dino": _dino,
}


def _run(name):
    """The objective, its views, its state before the step, and its loss."""
    obj = _build(name)
    views = _views(obj)
    state = _state(obj)
    loss, _ = _module_loss(obj, views)
    return obj, views, state, loss


# --- tests -------------------------------------------------------------------


#: Two-view objectives not wired by hand here, and what tests them instead.
NOT_HERE = {
    SwAVObjective: "test_swav.py: its loss against a loop, the prototypes, "
    "the queue and the codes' stop-gradient, not the objective's whole loss",
    CMCObjective: "test_cmc.py: its loss against a loop over view pairs, "
    "not the objective's whole loss",
}


def test_every_two_view_objective_is_wired_here_or_named():
    # A new method adds its row to OBJECTIVES and its formula to BY_HAND.
    used = {
        cls._objective
        for cls in PUBLIC_ESTIMATORS.values()
        if issubclass(cls, _TwoViewTransformer)
    }
    here = {cls for cls, _ in OBJECTIVES.values()}
    assert used == here | set(NOT_HERE)


# A value other than the default for each hyperparameter an estimator hands
# its objective (by name; a new one gets a row here).
ESTIMATOR_SETTINGS = {
    "hidden_dim": 12,
    "projection_dim": 6,
    "temperature": 0.3,
    "momentum": 0.8,
    "queue_size": 48,
    "lambd": 0.05,
    "predictor_dim": 3,
    "bottleneck_dim": 5,
    "teacher_temp": 0.07,
    "student_temp": 0.2,
    "warmup_teacher_temp": 0.02,
    "center_momentum": 0.7,
    "invariance_weight": 2.0,
    "variance_weight": 3.0,
    "covariance_weight": 0.5,
    "epsilon": 0.1,
    "sinkhorn_iterations": 5,
    "n_prototypes": 7,
    "queue_length": 32,
}
TWO_VIEW_ESTIMATORS = [
    name
    for name, cls in PUBLIC_ESTIMATORS.items()
    if issubclass(cls, _TwoViewTransformer) and cls._objective is not CMCObjective
]  # CMC's views, graph and core view: test_cmc.py


@pytest.mark.parametrize("name", TWO_VIEW_ESTIMATORS)
def test_every_hyperparameter_of_an_estimator_reaches_its_objective(name, monkeypatch):
    # An estimator that forgot one in its _objective_params trained silently
    # with the objective's default (BYOL's momentum, SwAV's Sinkhorn
    # iterations) while get_params reported the user's value.
    cls = PUBLIC_ESTIMATORS[name]
    objective = cls._objective
    shared = set(signature(objective).parameters) & set(cls().get_params())
    shared -= {"input_shape"}  # the objective gets the fitted input_shape_
    assert shared <= set(ESTIMATOR_SETTINGS), "add the new hyperparameter above"
    settings = {key: ESTIMATOR_SETTINGS[key] for key in shared}
    received = {}

    def recording(**kwargs):
        received.update(kwargs)
        return objective(**kwargs)

    monkeypatch.setattr(cls, "_objective", staticmethod(recording))
    est = cls(encoder="mlp", max_epochs=1, batch_size=16, random_state=0, **settings)
    X = np.random.default_rng(0).normal(size=(32, 6)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X)
    assert {key: received[key] for key in shared} == settings


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_objective_loss_is_the_papers_formula_of_its_networks(name):
    # What a user trains is the paper's loss of the right networks on the
    # right views: a swapped target view, keys from the online encoder or a
    # queue read after this batch's keys went in all change the number.
    obj, views, state, loss = _run(name)
    expected = BY_HAND[name](obj, views, state)
    assert loss.dtype == torch.float64
    torch.testing.assert_close(loss, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_objective_gradient_is_the_papers_with_its_stop_gradients(name):
    # The stop-gradients define BYOL, SimSiam, MoCo and DINO: the gradient
    # reaches only the online networks, exactly as the formula's does, and
    # never a momentum copy (frozen, and left without a .grad).
    obj, views, state, loss = _run(name)
    loss.backward()
    trainable = [(n, p) for n, p in obj.named_parameters() if p.requires_grad]
    expected = torch.autograd.grad(
        BY_HAND[name](obj, views, state),
        [p for _, p in trainable],
        allow_unused=True,
    )
    for (param_name, p), g in zip(trainable, expected):
        assert p.grad is not None, param_name
        torch.testing.assert_close(p.grad, g, rtol=RTOL, atol=ATOL, msg=param_name)
    for _, attr in MOMENTUM_PAIRS.get(name, []):
        for p in _params(obj, attr):
            assert not p.requires_grad and p.grad is None, attr


def test_simsiam_gradient_stops_at_the_other_views_projection():
    # SimSiam's only guard against collapse is the stop-gradient on the
    # target projection; without it the gradient differs (checked here, so
    # that the test above could tell the two apart).
    obj = _build("simsiam")
    views = _views(obj)
    loss, _ = _module_loss(obj, views)
    params = list(obj.parameters())
    got = torch.autograd.grad(loss, params)
    with_stop = torch.autograd.grad(_simsiam(obj, views, {}), params)
    without = torch.autograd.grad(_simsiam(obj, views, {}, stop_gradient=False), params)
    for g, w in zip(got, with_stop):
        torch.testing.assert_close(g, w, rtol=RTOL, atol=ATOL)
    assert any(
        not torch.allclose(w, wo, rtol=1e-3) for w, wo in zip(with_stop, without)
    )


@pytest.mark.parametrize("name", list(MOMENTUM_PAIRS))
def test_momentum_network_follows_the_ema_of_the_online_one(name):
    # The target is untouched by the optimiser and, at the next training
    # forward, moves to m·ξ + (1 − m)·θ with BYOL's cosine-scheduled m.
    obj = _build(name, total_steps=8)
    views = _views(obj)
    opt = torch.optim.SGD(obj.parameters(), lr=0.5)  # all of them, as skorch
    loss, _ = _module_loss(obj, views)
    before = {t: [p.clone() for p in _params(obj, t)] for _, t in MOMENTUM_PAIRS[name]}
    opt.zero_grad()
    loss.backward()
    opt.step()
    obj.step.fill_(2)
    m = cosine_momentum(2, 8, base=obj.momentum)
    assert 0.8 < m < 0.9  # the schedule is under way, not at either end
    targets = {t: [p.clone() for p in _params(obj, t)] for _, t in MOMENTUM_PAIRS[name]}
    online = {
        o: [p.detach().clone() for p in _params(obj, o)]
        for o, _ in MOMENTUM_PAIRS[name]
    }
    for _, t in MOMENTUM_PAIRS[name]:  # the optimiser step left them alone
        for b, a in zip(before[t], targets[t]):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    obj.forward_views(*views)
    moved = False
    for o, t in MOMENTUM_PAIRS[name]:
        for xi, theta, new in zip(targets[t], online[o], _params(obj, t)):
            torch.testing.assert_close(
                new, m * xi + (1 - m) * theta, rtol=RTOL, atol=ATOL
            )
            moved |= not torch.equal(new, xi)
    assert moved


def test_moco_queues_the_momentum_keys_of_both_views():
    # The negatives of the next batch are this batch's keys, from the
    # momentum encoder, L2-normalised, after the older entries.
    obj = _build("moco")
    views = _views(obj)
    old = obj.queue.queue.clone()  # (32, D)
    obj.forward_views(*views)
    with torch.no_grad():
        k1, k2 = _pair(lambda v: obj.key_projector(obj.key_backbone(v)), *views)
    keys = F.normalize(torch.cat([k1, k2]), dim=1)  # (2B, D)
    expected = torch.cat([old[2 * BATCH :], keys])
    torch.testing.assert_close(obj.queue.queue, expected, rtol=RTOL, atol=ATOL)


def test_dino_center_moves_towards_the_teachers_global_outputs():
    # The centre is an EMA of the teacher's mean output over the two global
    # views: c ← m c + (1 − m) mean(t), not of the student's outputs.
    obj = _build("dino")
    views = _views(obj)
    c = obj.criterion.center.clone()
    _module_loss(obj, views)
    with torch.no_grad():
        t = torch.cat(
            _pair(lambda v: obj.teacher_head(obj.teacher_backbone(v)), *views[:2])
        )
    expected = 0.7 * c + 0.3 * t.mean(0, keepdim=True)
    torch.testing.assert_close(obj.criterion.center, expected, rtol=RTOL, atol=ATOL)
    assert not torch.allclose(obj.criterion.center, c)


# --- evaluation mode: score and a validation split -------------------------
# Batch normalisation uses its running statistics there, while MoCo's
# queued keys and DINO's running centre come from training mode: compared
# with them, a network's loss fell as it got worse (MoCo's score on held-out
# digits -4.34 after 1 epoch, -4.96 after 30). In evaluation the loss reads
# the batch alone, and leaves the training state as it was.


def test_moco_in_evaluation_contrasts_the_batch_and_leaves_the_queue():
    obj = _build("moco").eval()
    views = _views(obj)
    old = obj.queue.queue.clone()
    loss, _ = _module_loss(obj, views)
    q1, q2 = _pair(lambda v: obj.projector(obj.backbone(v)), *views)
    with torch.no_grad():
        k1, k2 = _pair(lambda v: obj.key_projector(obj.key_backbone(v)), *views)
    tau = obj.criterion.temperature

    def in_batch(q, k):  # MoCo v3: the other samples' keys are the negatives
        logits = F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / tau  # (B, B)
        return F.cross_entropy(logits, torch.arange(len(q)))

    expected = (in_batch(q1, k2) + in_batch(q2, k1)) / 2
    torch.testing.assert_close(loss, expected, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(obj.queue.queue, old, rtol=0, atol=0)


def test_dino_in_evaluation_centres_the_teacher_on_its_own_mean():
    obj = _build("dino").eval()
    views = _views(obj)
    state = _state(obj)  # a running centre far from zero (_build)
    loss, _ = _module_loss(obj, views)
    expected = _dino(obj, views, state, evaluation=True)
    torch.testing.assert_close(loss, expected, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(obj.criterion.center, state["center"], rtol=0, atol=0)


# --- what the settings build --------------------------------------------------


def _linear_sizes(module):
    """(in, out) of each linear layer of ``module``, in order."""
    return [
        (m.in_features, m.out_features)
        for m in module.modules()
        if isinstance(m, nn.Linear)
    ]


@pytest.mark.parametrize("hidden_dim", [12, None])
def test_heads_have_the_widths_their_settings_ask_for(hidden_dim):
    """hidden_dim, projection_dim and predictor_dim size every head as
    documented; None gives the documented default width."""
    common = {"encoder": "cnn", "encoder_kwargs": {"channels": (4, 8)}}
    kw = {**common, "projection_dim": 8, "hidden_dim": hidden_dim}
    byol = BYOLObjective((1, LENGTH), **kw)
    w = byol.backbone.out_features
    h = hidden_dim or w  # BYOL, Barlow Twins: None is the encoder's width
    assert _linear_sizes(byol.projector) == [(w, h), (h, 8)]
    assert _linear_sizes(byol.predictor) == [(8, h), (h, 8)]
    barlow = BarlowTwinsObjective((1, LENGTH), **kw)
    assert _linear_sizes(barlow.projector) == [(w, h), (h, h), (h, 8)]
    vicreg = VICRegObjective((1, LENGTH), **kw)
    e = hidden_dim or 8  # VICReg: None is projection_dim
    assert _linear_sizes(vicreg.projector) == [(w, e), (e, e), (e, 8)]
    dino = DINOObjective((1, LENGTH), **kw, bottleneck_dim=5)
    h = hidden_dim or w
    assert _linear_sizes(dino.head[0]) == [(w, h), (h, h), (h, 5)]
    assert dino.head(torch.randn(3, w)).shape == (3, 8)
    for predictor_dim, bottleneck in [(3, 3), (None, 2)]:  # None: projection_dim // 4
        simsiam = SimSiamObjective((1, LENGTH), **kw, predictor_dim=predictor_dim)
        assert _linear_sizes(simsiam.projector) == [(w, h), (h, h), (h, 8)]
        assert _linear_sizes(simsiam.predictor) == [(8, bottleneck), (bottleneck, 8)]
        last = simsiam.projector.layers[-1]  # the projection is batch-normalised
        assert isinstance(last, nn.BatchNorm1d) and not last.affine


@pytest.mark.parametrize("name", ["barlow_twins", "vicreg"])
def test_objective_loss_uses_the_weights_it_was_given(name):
    """The loss is the criterion built with the objective's own weights
    (lambd; invariance, variance and covariance weights), not the defaults."""
    obj, views, _, loss = _run(name)
    z1, z2 = _pair(lambda v: obj.projector(obj.backbone(v)), *views)
    params = OBJECTIVES[name][1]
    if name == "barlow_twins":
        expected = BarlowTwinsLoss(lambd=params["lambd"])(z1, z2)
    else:
        expected = VICRegLoss(**params)(z1, z2)
    torch.testing.assert_close(loss, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", list(MOMENTUM_PAIRS))
def test_evaluation_leaves_the_momentum_networks_as_they_were(name):
    """A forward in evaluation mode (score, a validation split) does not move
    the EMA target or teacher towards the online networks."""
    obj = _build(name).eval()
    targets = [t for _, t in MOMENTUM_PAIRS[name]]
    before = {t: copy.deepcopy(getattr(obj, t).state_dict()) for t in targets}
    obj.forward_views(*_views(obj))
    for t in targets:
        for key, value in getattr(obj, t).state_dict().items():
            torch.testing.assert_close(value, before[t][key], rtol=0, atol=0, msg=key)


def test_dino_teacher_temperature_warms_up_linearly_then_stays():
    """The teacher temperature goes linearly from warmup_teacher_temp to
    teacher_temp over warmup_teacher_temp_steps training steps, then stays;
    with no warm-up steps it is teacher_temp from the first step."""
    obj = _build("dino")  # warm-up 0.02 -> 0.07 over 4 steps
    got = []
    for step in range(1, 8):  # the forward of step s has counted it
        obj.step.fill_(step)
        got.append(obj.scheduled_teacher_temp())
    want = [0.02, 0.0325, 0.045, 0.0575, 0.07, 0.07, 0.07]
    assert got == pytest.approx(want)
    obj.eval()
    obj.step.fill_(1)
    assert obj.scheduled_teacher_temp() == pytest.approx(0.07)
    cls, params = OBJECTIVES["dino"]
    no_steps = cls((1, LENGTH), **SMALL, **{**params, "warmup_teacher_temp_steps": 0})
    no_steps.train().step.fill_(1)
    assert no_steps.scheduled_teacher_temp() == pytest.approx(0.07)


@pytest.mark.parametrize("value", [0.0, -0.02, float("nan")])
def test_dino_refuses_a_warmup_teacher_temp_that_is_not_positive(value):
    """A warm-up temperature must be > 0: the error names it when the
    objective is built, not the teacher temperature at the first step."""
    cls, params = OBJECTIVES["dino"]
    with pytest.raises(ValueError, match="warmup_teacher_temp must be > 0"):
        cls((1, LENGTH), **SMALL, **{**params, "warmup_teacher_temp": value})


@pytest.mark.parametrize("steps", [-3, 2.7, True, None])
def test_dino_refuses_warmup_steps_that_are_not_a_count(steps):
    """A negative or fractional warm-up length is refused by name, not read
    as no warm-up or cut to a whole step."""
    cls, params = OBJECTIVES["dino"]
    with pytest.raises(
        ValueError, match=r"warmup_teacher_temp_steps=.* must be an int >= 0"
    ):
        cls((1, LENGTH), **SMALL, **{**params, "warmup_teacher_temp_steps": steps})


@pytest.mark.parametrize("hidden_dim", [12, None])
def test_contrastive_and_swav_heads_have_the_widths_their_settings_ask_for(hidden_dim):
    """SimCLR's, MoCo's (and its key copy's) and SwAV's projection heads are
    encoder width -> hidden_dim (None: the encoder's width) -> projection_dim,
    and SwAV's prototypes live in the projection_dim-wide space."""
    kw = {
        "encoder": "cnn",
        "encoder_kwargs": {"channels": (4, 8)},
        "projection_dim": 8,
        "hidden_dim": hidden_dim,
    }
    simclr = SimCLRObjective((1, LENGTH), **kw)
    w = simclr.backbone.out_features
    h = hidden_dim or w
    assert _linear_sizes(simclr.projector) == [(w, h), (h, 8)]
    moco = MoCoObjective((1, LENGTH), queue_size=16, **kw)
    assert _linear_sizes(moco.projector) == [(w, h), (h, 8)]
    assert _linear_sizes(moco.key_projector) == [(w, h), (h, 8)]
    assert moco.queue.queue.shape == (16, 8)
    swav = SwAVObjective((1, LENGTH), n_prototypes=5, **kw)
    assert _linear_sizes(swav.projector) == [(w, h), (h, 8)]
    assert _linear_sizes(swav.prototypes) == [(8, 5)]


@pytest.mark.parametrize("name", ["simclr", "moco"])
def test_contrastive_objectives_use_the_temperature_they_were_given(name):
    """SimCLR's and MoCo's losses divide by the objective's own temperature,
    not the loss's default: the formula by hand with that temperature."""
    obj, views, state, loss = _run(name)
    tau = OBJECTIVES[name][1]["temperature"]
    assert obj.criterion.temperature == tau
    if name == "moco":
        q1, q2 = _pair(lambda v: obj.projector(obj.backbone(v)), *views)
        with torch.no_grad():
            k1, k2 = _pair(lambda v: obj.key_projector(obj.key_backbone(v)), *views)
        queue = state["queue"]
        expected = (_infonce(q1, k2, queue, tau) + _infonce(q2, k1, queue, tau)) / 2
    else:
        expected = _simclr(obj, views, state)
    torch.testing.assert_close(loss, expected, rtol=RTOL, atol=ATOL)


def _moco_rank(rank: int, world: int, out) -> None:
    torch.manual_seed(0)  # the same networks and queue in both processes
    obj = MoCoObjective((6,), encoder="mlp", projection_dim=4, queue_size=32)
    x = torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(1))[rank]
    obj.train()(x)
    torch.save((int(obj.queue.ptr), obj.queue.queue.clone()), out / f"q{rank}.pt")


def test_moco_queues_the_keys_of_every_process(tmp_path):
    """In data-parallel training each process queues the keys of every
    process's batch (MoCo's concat_all_gather): the queues stay equal."""
    from _processes import run_ranks

    run_ranks(_moco_rank, tmp_path)
    (ptr0, queue0), (ptr1, queue1) = (torch.load(tmp_path / f"q{r}.pt") for r in (0, 1))
    assert ptr0 == ptr1 == 2 * 2 * 5  # two views of 5 samples, in 2 processes
    torch.testing.assert_close(queue0, queue1, rtol=0, atol=0)
