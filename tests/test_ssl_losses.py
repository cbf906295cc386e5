"""Contrastive and non-contrastive losses against naive loops from the papers."""

import math
from collections import deque

import pytest
import torch
from _processes import run_ranks
from torch import nn

from sk_replearn.losses import (
    BarlowTwinsLoss,
    DINOLoss,
    MultiViewInfoNCELoss,
    NegativeCosineLoss,
    SwAVLoss,
    VICRegLoss,
    collapse_std,
)
from sk_replearn.losses.contrastive import InfoNCELoss, MemoryQueue, NTXentLoss
from sk_replearn.nn.momentum import (
    copy_frozen,
    cosine_momentum,
    update_momentum,
)

TEMPERATURES = [0.05, 0.1, 0.5, 1.0]
BAD_TEMPERATURES = [0.0, -0.1, float("nan")]
ATOL = 1e-6


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).double()


# --- naive references, written from the papers' formulas -------------------


def _unit(v):
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def _naive_ntxent(z1, z2, tau):
    """SimCLR Algorithm 1: interleaved views, l(i, j) over k != i."""
    z = []
    for a, b in zip(z1.tolist(), z2.tolist()):
        z += [_unit(a), _unit(b)]
    n2 = len(z)

    def ell(i, j):
        num = math.exp(_dot(z[i], z[j]) / tau)
        den = sum(math.exp(_dot(z[i], z[k]) / tau) for k in range(n2) if k != i)
        return -math.log(num / den)

    return (
        sum(ell(2 * k, 2 * k + 1) + ell(2 * k + 1, 2 * k) for k in range(n2 // 2)) / n2
    )


def _naive_infonce(q, k, queue, tau):
    """MoCo eq. (1): one positive key, negatives from the queue or the batch."""
    q = [_unit(v) for v in q.tolist()]
    k = [_unit(v) for v in k.tolist()]
    total = 0.0
    for i, qi in enumerate(q):
        pos = math.exp(_dot(qi, k[i]) / tau)
        if queue is None:
            negs = [k[j] for j in range(len(k)) if j != i]
        else:
            negs = [_unit(v) for v in queue.tolist()]
        den = pos + sum(math.exp(_dot(qi, kj) / tau) for kj in negs)
        total += -math.log(pos / den)
    return total / len(q)


def _naive_negative_cosine(p, z):
    """SimSiam eq. (1): D(p, z) = -cos(p, z), averaged over the batch."""
    cosines = [_dot(_unit(a), _unit(b)) for a, b in zip(p.tolist(), z.tolist())]
    return -sum(cosines) / len(cosines)


def _naive_barlow(z1, z2, lam, eps):
    """Barlow Twins eq. (1)-(2) with a per-dimension batch standardisation."""
    a, b = z1.tolist(), z2.tolist()
    n, d = len(a), len(a[0])

    def standardize(x):
        out = [[0.0] * d for _ in range(n)]
        for j in range(d):
            mean = sum(x[i][j] for i in range(n)) / n
            var = sum((x[i][j] - mean) ** 2 for i in range(n)) / n
            for i in range(n):
                out[i][j] = (x[i][j] - mean) / math.sqrt(var + eps)
        return out

    a, b = standardize(a), standardize(b)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c_ij = sum(a[s][i] * b[s][j] for s in range(n)) / n
            loss += (1 - c_ij) ** 2 if i == j else lam * c_ij**2
    return loss


def _naive_vicreg(z1, z2, lam, mu, nu, gamma=1.0, eps=1e-4):
    """VICReg eq. (1)-(6), Algorithm 1 of Bardes et al., as plain loops."""
    a, b = z1.tolist(), z2.tolist()
    n, d = len(a), len(a[0])

    def variance(x):
        hinge = 0.0
        for j in range(d):
            mean = sum(x[i][j] for i in range(n)) / n
            var = sum((x[i][j] - mean) ** 2 for i in range(n)) / (n - 1)
            hinge += max(0.0, gamma - math.sqrt(var + eps))
        return hinge / d

    def covariance(x):
        means = [sum(x[i][j] for i in range(n)) / n for j in range(d)]
        total = 0.0
        for j in range(d):
            for k in range(d):
                if j != k:
                    c = sum(
                        (x[i][j] - means[j]) * (x[i][k] - means[k]) for i in range(n)
                    )
                    total += (c / (n - 1)) ** 2
        return total / d

    invariance = sum((a[i][j] - b[i][j]) ** 2 for i in range(n) for j in range(d))
    return (
        lam * invariance / (n * d)
        + mu * (variance(a) + variance(b))
        + nu * (covariance(a) + covariance(b))
    )


def _softmax(v, tau):
    m = max(x / tau for x in v)
    e = [math.exp(x / tau - m) for x in v]
    s = sum(e)
    return [x / s for x in e]


def _naive_dino(student, teacher, center, t_tau, s_tau):
    """DINO Algorithm 1: H(t, s) over teacher views a and student views b != a."""
    center = center.flatten().tolist()
    total, pairs = 0.0, 0
    for a, t in enumerate(teacher):
        for b, s in enumerate(student):
            if a == b:
                continue
            h = 0.0
            for tr, sr in zip(t.tolist(), s.tolist()):
                pt = _softmax([x - c for x, c in zip(tr, center)], t_tau)
                ps = _softmax(sr, s_tau)
                h += -sum(x * math.log(y) for x, y in zip(pt, ps))
            total += h / len(t)
            pairs += 1
    return total / pairs


# --- NT-Xent ---------------------------------------------------------------


@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("n", [2, 5])
def test_ntxent_matches_naive_loop(temperature, n):
    z1, z2 = _randn(n, 3, seed=1), _randn(n, 3, seed=2)
    got = NTXentLoss(temperature)(z1, z2)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(_naive_ntxent(z1, z2, temperature), abs=ATOL)


def test_ntxent_symmetric_in_views():
    z1, z2 = _randn(4, 3, seed=1), _randn(4, 3, seed=2)
    loss = NTXentLoss(0.3)
    torch.testing.assert_close(loss(z1, z2), loss(z2, z1))


def test_ntxent_rejects_single_sample():
    with pytest.raises(ValueError, match=r"N >= 2"):
        NTXentLoss()(torch.randn(1, 4), torch.randn(1, 4))


@pytest.mark.parametrize("temperature", BAD_TEMPERATURES)
def test_ntxent_rejects_bad_temperature(temperature):
    with pytest.raises(ValueError, match="temperature must be > 0"):
        NTXentLoss(temperature)


def test_ntxent_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"shape \(N, D\)"):
        NTXentLoss()(torch.randn(3, 4), torch.randn(3, 5))


def test_ntxent_alignment_lower_than_random():
    z = _randn(16, 8, seed=3)
    loss = NTXentLoss(0.1)
    assert loss(z, z) < loss(z, _randn(16, 8, seed=4))


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_ntxent_gradients_finite_small_temperature(scale):
    z1 = (scale * torch.randn(8, 4)).requires_grad_()
    z2 = (scale * torch.randn(8, 4)).requires_grad_()
    for a, b in [(z1, z2), (z1, z1)]:  # z1, z1: all logits at 1 / tau = 100
        loss = NTXentLoss(temperature=0.01)(a, b)
        (ga, gb) = torch.autograd.grad(loss, [z1, z2], allow_unused=True)
        assert torch.isfinite(loss)
        assert all(g is None or torch.isfinite(g).all() for g in (ga, gb))


def test_ntxent_half_precision_computes_in_float32():
    z1, z2 = torch.randn(4, 8).bfloat16(), torch.randn(4, 8).bfloat16()
    loss = NTXentLoss(0.01)(z1, z2)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


# --- InfoNCE ---------------------------------------------------------------


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_infonce_matches_naive_loop_with_queue(temperature):
    q, k, queue = _randn(4, 3, seed=1), _randn(4, 3, seed=2), _randn(6, 3, seed=5)
    got = InfoNCELoss(temperature)(q, k, 2.5 * queue)  # queue normalised inside
    want = _naive_infonce(q, k, queue, temperature)
    assert got.item() == pytest.approx(want, abs=ATOL)


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_infonce_matches_naive_loop_in_batch(temperature):
    q, k = _randn(5, 3, seed=1), _randn(5, 3, seed=2)
    got = InfoNCELoss(temperature)(q, k)
    assert got.item() == pytest.approx(
        _naive_infonce(q, k, None, temperature), abs=ATOL
    )


def test_infonce_single_sample_needs_queue():
    q, k = torch.randn(1, 4), torch.randn(1, 4)
    with pytest.raises(ValueError, match="N >= 2"):
        InfoNCELoss()(q, k)
    assert torch.isfinite(InfoNCELoss()(q, k, torch.randn(3, 4)))


@pytest.mark.parametrize("temperature", BAD_TEMPERATURES)
def test_infonce_rejects_bad_temperature(temperature):
    with pytest.raises(ValueError, match="temperature must be > 0"):
        InfoNCELoss(temperature)


def test_infonce_rejects_queue_of_wrong_width():
    with pytest.raises(ValueError, match=r"queue must have shape \(K, 4\)"):
        InfoNCELoss()(torch.randn(2, 4), torch.randn(2, 4), torch.randn(3, 5))


def test_infonce_alignment_lower_than_random():
    q, queue = _randn(8, 6, seed=1), _randn(32, 6, seed=2)
    loss = InfoNCELoss(0.2)
    assert loss(q, q, queue) < loss(q, _randn(8, 6, seed=3), queue)


def test_infonce_gradients_finite_small_temperature():
    q = (1e4 * torch.randn(8, 4)).requires_grad_()
    queue = torch.cat([q.detach(), torch.randn(8, 4)])  # logits up to 1 / tau
    for queue_ in (queue, None):
        loss = InfoNCELoss(temperature=0.01)(q, q.detach(), queue_)
        (g,) = torch.autograd.grad(loss, [q])
        assert torch.isfinite(loss) and torch.isfinite(g).all()


def test_infonce_queue_receives_no_gradient():
    q = torch.randn(3, 4, requires_grad=True)
    queue = torch.randn(5, 4, requires_grad=True)
    InfoNCELoss()(q, torch.randn(3, 4), queue).backward()
    assert queue.grad is None and q.grad is not None


# --- MemoryQueue -----------------------------------------------------------


def test_memory_queue_init_normalised():
    queue = MemoryQueue(dim=5, size=7)
    assert queue.queue.shape == (7, 5)
    torch.testing.assert_close(queue.queue.norm(dim=1), torch.ones(7))
    assert {"keys", "ptr"} <= set(queue.state_dict())


@pytest.mark.parametrize("size", [0, -3])
def test_memory_queue_rejects_bad_size(size):
    with pytest.raises(ValueError, match="size must be >= 1"):
        MemoryQueue(dim=4, size=size)


def test_memory_queue_rejects_wrong_key_width():
    with pytest.raises(ValueError, match=r"keys must have shape \(B, 4\)"):
        MemoryQueue(dim=4, size=8).enqueue(torch.randn(2, 3))


def _distinct_keys(start, b, dim=3):
    """Unit keys whose first coordinate encodes an id (ids start .. start+b-1)."""
    ids = torch.arange(start, start + b, dtype=torch.float32)
    keys = torch.zeros(b, dim)
    keys[:, 0] = torch.cos(ids / 100)
    keys[:, 1] = torch.sin(ids / 100)
    return keys


@pytest.mark.parametrize("size, batches", [(6, [2, 2, 2, 2]), (5, [2, 2, 2, 3, 1])])
def test_memory_queue_fifo_order_and_wraparound(size, batches):
    queue = MemoryQueue(dim=3, size=size)
    ref = deque(queue.queue.clone(), maxlen=size)  # one push per key
    start = 0
    for b in batches:
        keys = _distinct_keys(start, b)
        queue.enqueue(3.0 * keys)  # normalised on the way in
        ref.extend(keys)
        start += b
        torch.testing.assert_close(queue.queue, torch.stack(list(ref)))
    assert int(queue.ptr) == sum(batches) % size


def test_memory_queue_batch_larger_than_size_keeps_newest():
    queue = MemoryQueue(dim=3, size=4)
    queue.enqueue(_distinct_keys(0, 1))
    queue.enqueue(_distinct_keys(1, 6))
    torch.testing.assert_close(queue.queue, _distinct_keys(3, 4))


def test_memory_queue_enqueue_after_loss_keeps_backward_valid():
    queue = MemoryQueue(dim=4, size=8)
    q = torch.randn(3, 4, requires_grad=True)
    loss = InfoNCELoss()(q, torch.randn(3, 4), queue.queue)
    queue.enqueue(torch.randn(3, 4))  # in place, as in MoCo's training step
    loss.backward()
    assert torch.isfinite(q.grad).all()


# --- momentum --------------------------------------------------------------


def _net():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def _perturbed_copy(net):
    other = copy_frozen(net)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn_like(p))
        other[1].running_mean.fill_(7.0)
    return other


def test_update_momentum_m0_copies():
    online = _net()
    online[1].running_mean.fill_(3.0)
    target = _perturbed_copy(online)
    update_momentum(online, target, m=0.0)
    for a, b in zip(online.state_dict().values(), target.state_dict().values()):
        assert torch.equal(a, b)


def test_update_momentum_m1_keeps_parameters_copies_buffers():
    online, target = _net(), _net()
    online[1].running_mean.fill_(3.0)
    before = [p.clone() for p in target.parameters()]
    update_momentum(online, target, m=1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, target.parameters()))
    assert torch.equal(target[1].running_mean, online[1].running_mean)


def test_update_momentum_matches_ema_formula():
    online, target = _net(), _net()
    want = [0.9 * t + 0.1 * o for o, t in zip(online.parameters(), target.parameters())]
    update_momentum(online, target, m=0.9)
    for w, t in zip(want, target.parameters()):
        torch.testing.assert_close(t, w.detach())
    assert not any(p.grad_fn is not None for p in target.parameters())


@pytest.mark.parametrize("m", [-0.1, 1.5])
def test_update_momentum_rejects_bad_m(m):
    with pytest.raises(ValueError, match=r"m must be in \[0, 1\]"):
        update_momentum(_net(), _net(), m)


def test_update_momentum_rejects_mismatched_modules():
    with pytest.raises(ValueError, match="matching parameters"):
        update_momentum(nn.Linear(3, 2), nn.Linear(3, 4), 0.99)


def test_copy_frozen_is_independent_and_frozen():
    online = _net()
    target = copy_frozen(online)
    assert all(p.requires_grad for p in online.parameters())
    assert not any(p.requires_grad for p in target.parameters())
    with torch.no_grad():
        target[0].weight.add_(1.0)
    assert not torch.equal(target[0].weight, online[0].weight)


def test_cosine_momentum_matches_byol_formula():
    total = 17
    for k in range(total + 1):
        want = 1 - (1 - 0.99) * (math.cos(math.pi * k / total) + 1) / 2
        assert cosine_momentum(k, total, base=0.99) == pytest.approx(want, abs=1e-12)
    assert cosine_momentum(0, 10) == pytest.approx(0.996)
    assert cosine_momentum(25, 10) == 1.0  # clipped past the end
    assert cosine_momentum(5, 10, base=0.9, final=0.99) == pytest.approx(0.945)


def test_cosine_momentum_rejects_zero_total_steps():
    with pytest.raises(ValueError, match="total_steps must be >= 1"):
        cosine_momentum(0, 0)


def test_cosine_momentum_of_one_step_and_before_the_first():
    # One step in all (one batch, one epoch) is a schedule: base, then final.
    assert cosine_momentum(0, 1) == pytest.approx(0.996)
    assert cosine_momentum(1, 1) == 1.0
    # A step before the start is clipped to it, as one past the end is.
    assert cosine_momentum(-5, 10) == pytest.approx(0.996)
    assert cosine_momentum(-25, 10, base=0.9) == pytest.approx(0.9)


def test_update_momentum_rejects_parameters_of_other_shapes_and_equal_sizes():
    # A (2, 3) weight and a (3, 2) one have as many values, but no EMA.
    online, target = nn.Linear(3, 2, bias=False), nn.Linear(2, 3, bias=False)
    with pytest.raises(ValueError, match="matching parameters"):
        update_momentum(online, target, 0.9)


# --- negative cosine (BYOL / SimSiam) --------------------------------------


def test_negative_cosine_matches_naive_loop():
    p, z = _randn(6, 4, seed=1), _randn(6, 4, seed=2)
    got = NegativeCosineLoss()(p, z)
    assert got.item() == pytest.approx(_naive_negative_cosine(p, z), abs=ATOL)


def test_negative_cosine_is_affine_in_byol_loss():
    p, z = _randn(6, 4, seed=1), _randn(6, 4, seed=2)
    pn, zn = nn.functional.normalize(p, dim=1), nn.functional.normalize(z, dim=1)
    byol = (pn - zn).pow(2).sum(dim=1).mean()  # 2 - 2 cos
    torch.testing.assert_close(2 + 2 * NegativeCosineLoss()(p, z), byol)


def test_negative_cosine_stop_gradient():
    p = torch.randn(5, 4, requires_grad=True)
    z = torch.randn(5, 4, requires_grad=True)
    NegativeCosineLoss()(p, z).backward()
    assert z.grad is None
    assert p.grad is not None and p.grad.abs().sum() > 0


def test_negative_cosine_aligned_is_minus_one():
    p = _randn(5, 4, seed=1)
    assert NegativeCosineLoss()(p, 3 * p).item() == pytest.approx(-1.0, abs=ATOL)


# --- Barlow Twins ----------------------------------------------------------


@pytest.mark.parametrize("lambd", [0.0, 5e-3, 1.0])
@pytest.mark.parametrize("eps", [0.0, 1e-5])
def test_barlow_twins_matches_naive_loop(lambd, eps):
    z1, z2 = _randn(6, 4, seed=1), _randn(6, 4, seed=2)
    got = BarlowTwinsLoss(lambd=lambd, eps=eps)(z1, z2)
    want = _naive_barlow(z1, z2, lambd, eps)
    assert got.item() == pytest.approx(want, abs=ATOL)


def test_barlow_twins_zero_for_decorrelated_identical_views():
    # Columns 1-3 of the 4x4 Hadamard matrix: zero mean, unit (biased)
    # variance, mutually orthogonal, i.e. whitened; scaled and shifted so
    # that the standardisation is exercised.
    h = torch.tensor(
        [[1, 1, 1], [-1, 1, -1], [1, -1, -1], [-1, -1, 1]], dtype=torch.float64
    )
    z = 3.0 * h + torch.tensor([1.0, -2.0, 5.0], dtype=torch.float64)
    assert BarlowTwinsLoss(lambd=1.0, eps=0.0)(z, z).item() == pytest.approx(
        0.0, abs=1e-12
    )
    assert BarlowTwinsLoss(lambd=1.0)(z, z).item() < 1e-9  # eps ~ 1e-5 on var 9
    assert BarlowTwinsLoss()(z, z.flip(0)).item() > 1.0  # views no longer aligned


def test_barlow_twins_rejects_single_sample():
    with pytest.raises(ValueError, match="N >= 2"):
        BarlowTwinsLoss()(torch.randn(1, 4), torch.randn(1, 4))


def test_barlow_twins_rejects_negative_lambda():
    with pytest.raises(ValueError, match="lambd must be >= 0"):
        BarlowTwinsLoss(lambd=-1.0)


def test_barlow_twins_gradients_finite_constant_dimension():
    z1 = torch.randn(8, 4)
    z1[:, 0] = 1.0  # a collapsed dimension: variance 0, eps keeps it finite
    z1.requires_grad_()
    z2 = torch.randn(8, 4, requires_grad=True)
    loss = BarlowTwinsLoss()(z1, z2)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z1.grad).all()


# --- DINO ------------------------------------------------------------------


def _dino_views(n_global=2, n_local=2, b=3, k=5):
    teacher = [_randn(b, k, seed=10 + i) * 3 for i in range(n_global)]
    student = [_randn(b, k, seed=20 + i) * 3 for i in range(n_global + n_local)]
    return student, teacher


@pytest.mark.parametrize("teacher_temp, student_temp", [(0.04, 0.1), (0.07, 0.2)])
def test_dino_matches_naive_loop(teacher_temp, student_temp):
    student, teacher = _dino_views()
    loss = DINOLoss(5, teacher_temp, student_temp).double()
    loss.center.copy_(_randn(1, 5, seed=99))
    want = _naive_dino(student, teacher, loss.center, teacher_temp, student_temp)
    assert loss(student, teacher).item() == pytest.approx(want, abs=ATOL)


def test_dino_center_update_is_ema_of_teacher_mean():
    student, teacher = _dino_views()
    loss = DINOLoss(5, center_momentum=0.8).double()
    c0 = _randn(1, 5, seed=99)
    loss.center.copy_(c0)
    value = loss(student, teacher)
    # the loss used the center before the update
    want = _naive_dino(student, teacher, c0, 0.04, 0.1)
    assert value.item() == pytest.approx(want, abs=ATOL)
    batch_mean = torch.cat(teacher).mean(0, keepdim=True)
    torch.testing.assert_close(loss.center, 0.8 * c0 + 0.2 * batch_mean)


def test_dino_center_frozen_in_eval_mode():
    student, teacher = _dino_views()
    loss = DINOLoss(5).double().eval()
    loss(student, teacher)
    assert torch.equal(loss.center, torch.zeros(1, 5, dtype=torch.float64))


def test_dino_teacher_temp_warmup_attribute():
    student, teacher = _dino_views()
    loss = DINOLoss(5, teacher_temp=0.04).double().eval()
    before = loss(student, teacher).item()
    loss.teacher_temp = 0.07  # what the estimator sets during warm-up
    after = loss(student, teacher).item()
    assert after != pytest.approx(before)
    assert after == pytest.approx(
        _naive_dino(student, teacher, loss.center, 0.07, 0.1), abs=ATOL
    )
    loss.teacher_temp = 0.0
    with pytest.raises(ValueError, match="teacher_temp must be > 0"):
        loss(student, teacher)


def test_dino_teacher_receives_no_gradient():
    student = [torch.randn(3, 5, requires_grad=True) for _ in range(3)]
    teacher = [torch.randn(3, 5, requires_grad=True) for _ in range(2)]
    DINOLoss(5)(student, teacher).backward()
    assert all(t.grad is None for t in teacher)
    assert all(torch.isfinite(s.grad).all() for s in student)


def test_dino_rejects_wrong_output_dim_and_single_view():
    with pytest.raises(ValueError, match=r"\(B, 5\)"):
        DINOLoss(5)([torch.randn(3, 4)] * 2, [torch.randn(3, 4)])
    with pytest.raises(ValueError, match="at least 2 student views"):
        DINOLoss(5)([torch.randn(3, 5)], [torch.randn(3, 5)])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"teacher_temp": 0.0}, "teacher_temp"),
        ({"student_temp": -1.0}, "student_temp"),
        ({"center_momentum": 1.5}, "center_momentum"),
        ({"out_dim": 0}, "out_dim"),
    ],
)
def test_dino_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DINOLoss(**{"out_dim": 5, **kwargs})


# --- collapse --------------------------------------------------------------


def test_collapse_std_healthy_vs_collapsed():
    d = 16
    healthy = collapse_std(_randn(2000, d, seed=1))
    assert healthy.item() == pytest.approx(1 / math.sqrt(d), rel=0.05)
    collapsed = _randn(1, d, seed=2).repeat(50, 1) + 1e-6 * _randn(50, d, seed=3)
    assert collapse_std(collapsed).item() < 1e-5
    with pytest.raises(ValueError, match="N >= 2"):
        collapse_std(torch.randn(1, d))


@pytest.mark.parametrize(("lam", "mu", "nu"), [(25.0, 25.0, 1.0), (1.0, 0.0, 3.0)])
def test_vicreg_matches_naive_loop(lam, mu, nu):
    gen = torch.Generator().manual_seed(3)
    z1 = torch.randn(9, 5, generator=gen, dtype=torch.float64)
    z2 = z1 + 0.3 * torch.randn(9, 5, generator=gen, dtype=torch.float64)
    got = VICRegLoss(lam, mu, nu)(z1, z2)
    assert got.item() == pytest.approx(_naive_vicreg(z1, z2, lam, mu, nu), abs=ATOL)


def test_vicreg_variance_term_penalises_collapse():
    z = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    collapsed = torch.zeros(16, 4)
    only_variance = VICRegLoss(invariance_weight=0.0, covariance_weight=0.0)
    # each view: mean over dimensions of max(0, 1 - sqrt(0 + eps)) = 0.99
    want = 25.0 * 2 * (1 - math.sqrt(1e-4))
    assert only_variance(collapsed, collapsed).item() == pytest.approx(want)
    assert only_variance(3 * z, 3 * z).item() < 1.0


def test_vicreg_rejects_bad_weights_and_single_sample():
    with pytest.raises(ValueError, match="variance_weight must be >= 0"):
        VICRegLoss(variance_weight=-1.0)
    with pytest.raises(ValueError, match="N >= 2"):
        VICRegLoss()(torch.randn(1, 4), torch.randn(1, 4))


@pytest.mark.parametrize(
    "loss, n_inputs",
    [
        (lambda: VICRegLoss(), 2),
        (lambda: BarlowTwinsLoss(), 2),
        (lambda: NTXentLoss(0.2), 2),
        (lambda: InfoNCELoss(0.2), 2),
        (lambda: MultiViewInfoNCELoss(0.2), 3),
    ],
)
def test_losses_compute_their_products_in_float32_under_autocast(loss, n_inputs):
    # Under float16 autocast a product of float32 tensors still ran in
    # float16: VICReg's covariance of 256 embeddings of spread 20 overflowed
    # (the loss was NaN). The loss of float16 inputs under autocast must be
    # the float32 loss of the same values.
    g = torch.Generator().manual_seed(0)
    zs = [(torch.randn(256, 64, generator=g) * 20).half() for _ in range(n_inputs)]
    criterion = loss()

    def call(tensors):  # the multi-view loss takes a list of views
        return criterion(tensors) if n_inputs > 2 else criterion(*tensors)

    reference = call([z.float() for z in zs])
    with torch.autocast("cpu", dtype=torch.float16):
        low = call(zs)
    assert torch.isfinite(low)
    torch.testing.assert_close(low.float(), reference, rtol=1e-5, atol=0)


# -- bad values and batches the losses refuse ------------------------------------
def test_an_infinite_temperature_is_refused():
    # It gave a constant loss with no gradient: nothing to learn, silently.
    with pytest.raises(ValueError, match="temperature must be > 0 and finite"):
        NTXentLoss(float("inf"))


def test_empty_batches_are_refused_not_nan():
    empty = torch.zeros(0, 4)
    with pytest.raises(ValueError, match=r"no samples \(N=0\)"):
        NegativeCosineLoss()(empty, empty)
    with pytest.raises(ValueError, match=r"no samples \(N=0\)"):
        InfoNCELoss(0.1)(empty, empty, torch.randn(8, 4))
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        DINOLoss(4)([empty, empty], [empty, empty])
    with pytest.raises(ValueError, match="B >= 1"):
        SwAVLoss()([torch.zeros(0, 3), torch.zeros(0, 3)])


def test_dino_refuses_more_teacher_views_than_student_views():
    s, t = torch.randn(8, 32), torch.randn(8, 32)
    with pytest.raises(ValueError, match="the student has only 2"):
        DINOLoss(32)([s, s], [t, t, t])


def test_swav_checks_its_queue_scores_and_n_global():
    scores = [torch.randn(8, 3), torch.randn(8, 3)]
    with pytest.raises(ValueError, match=r"one tensor \(Q, 3\) or None"):
        SwAVLoss()(scores, queue_scores=[torch.randn(16, 5), None])
    with pytest.raises(ValueError, match=r"one tensor \(Q, 3\) or None"):
        SwAVLoss()(scores, n_global=2, queue_scores=[torch.randn(16, 3)])
    with pytest.raises(ValueError, match="n_global must be an int"):
        SwAVLoss()(scores, n_global=1.5)


def test_cmc_loss_follows_a_changed_temperature():
    # The pairwise InfoNCE kept the temperature given at construction.
    zs = [torch.randn(8, 5, generator=torch.Generator().manual_seed(v)) for v in (0, 1)]
    loss = MultiViewInfoNCELoss(0.07)
    loss.temperature = 0.5
    torch.testing.assert_close(loss(zs), MultiViewInfoNCELoss(0.5)(zs))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        loss.temperature = 0.0


# -- DINO's center over several processes ------------------------------------------
def _dino_rank(rank: int, world: int, out) -> None:
    teacher = _dino_teacher()
    half = [t[rank * 4 : (rank + 1) * 4] for t in teacher]
    loss = DINOLoss(6).train()
    loss.update_center(half)
    torch.save(loss.center, out / f"center{rank}.pt")


def _dino_teacher() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(8, 6, generator=g) + 3 * v for v in range(2)]


def test_dino_center_is_the_mean_over_every_process(tmp_path):
    # Each process averaged its own rows only, so the processes' centers
    # drifted apart (and DDP kept process 0's).
    run_ranks(_dino_rank, tmp_path)
    whole = DINOLoss(6).train()
    whole.update_center(_dino_teacher())
    for r in (0, 1):
        center = torch.load(tmp_path / f"center{r}.pt")
        torch.testing.assert_close(center, whole.center, rtol=1e-6, atol=1e-7)


def test_collapse_std_refuses_embeddings_that_are_not_2d():
    # The batch is the first axis and the features the second: anything else
    # is refused, not averaged along the wrong axis.
    for shape in [(8,), (8, 4, 3)]:
        with pytest.raises(ValueError, match=r"shape \(N, D\)"):
            collapse_std(torch.randn(shape))


def test_collapse_std_is_the_sample_std_of_unit_vectors_by_hand():
    # Two opposite unit vectors: per dimension the sample std (n - 1 in the
    # denominator, as SimSiam's torch.std) is sqrt(2) along the first axis
    # and 0 along the second; the mean over the two dimensions is sqrt(2)/2.
    z = torch.tensor([[3.0, 0.0], [-5.0, 0.0]])
    assert collapse_std(z).item() == pytest.approx(math.sqrt(2) / 2)


@pytest.mark.parametrize(
    "params",
    [
        {"lambd": float("nan")},
        {"eps": float("nan")},
        {"variance_weight": float("nan")},
        {"covariance_weight": -1.0},
    ],
)
def test_loss_weights_must_be_non_negative_numbers(params):
    # A nan weight would make every loss nan from the first step.
    loss = BarlowTwinsLoss if "lambd" in params or "eps" in params else VICRegLoss
    with pytest.raises(ValueError, match=f"{next(iter(params))} must be >= 0"):
        loss(**params)


def test_pair_losses_refuse_embeddings_that_are_not_2d():
    # (N, D) embeddings of each view: a 3-D pair of the same shape is refused
    # with the expected shape, by every loss of a pair of views.
    z = torch.randn(4, 3, 2)
    for loss in [NTXentLoss(), BarlowTwinsLoss(), VICRegLoss(), NegativeCosineLoss()]:
        with pytest.raises(ValueError, match=r"shape \(N, D\)"):
            loss(z, z.clone())


# -- settings at their bounds, and their checks ------------------------------------
@pytest.mark.parametrize("gamma, eps", [(2.0, 1e-4), (0.5, 0.0)])
def test_vicreg_hinge_floors_the_std_at_gamma(gamma, eps):
    """The variance term is the hinge max(0, gamma - sqrt(Var + eps)) of the
    given target std gamma, not of 1."""
    gen = torch.Generator().manual_seed(3)
    z1 = 0.8 * torch.randn(9, 5, generator=gen, dtype=torch.float64)
    z2 = z1 + 0.3 * torch.randn(9, 5, generator=gen, dtype=torch.float64)
    got = VICRegLoss(1.0, 2.0, 0.5, gamma=gamma, eps=eps)(z1, z2)
    want = _naive_vicreg(z1, z2, 1.0, 2.0, 0.5, gamma=gamma, eps=eps)
    assert got.item() == pytest.approx(want, abs=ATOL)
    collapsed = torch.zeros(16, 4, dtype=torch.float64)
    only_variance = VICRegLoss(0.0, 1.0, 0.0, gamma=gamma, eps=eps)
    assert only_variance(collapsed, collapsed).item() == pytest.approx(
        2 * (gamma - math.sqrt(eps))
    )


@pytest.mark.parametrize(
    "params, match",
    [
        ({"gamma": 0.0}, "gamma must be > 0"),
        ({"gamma": float("nan")}, "gamma must be > 0"),
        ({"eps": -1e-4}, "eps must be >= 0"),
        ({"invariance_weight": -1.0}, "invariance_weight must be >= 0"),
    ],
    ids=["gamma-zero", "gamma-nan", "eps-negative", "weight-negative"],
)
def test_vicreg_refuses_a_bad_target_std_or_eps(params, match):
    """VICReg's target std must be positive and its eps non-negative (a
    negative eps makes the std of a collapsed dimension NaN)."""
    with pytest.raises(ValueError, match=match):
        VICRegLoss(**params)


@pytest.mark.parametrize("momentum", [0.0, 1.0])
def test_dino_center_momentum_at_its_bounds(momentum):
    """center_momentum=1 keeps the center fixed, 0 sets it to the teacher's
    batch mean: both ends of [0, 1] are valid settings."""
    student, teacher = _dino_views()
    loss = DINOLoss(5, center_momentum=momentum).double()
    c0 = _randn(1, 5, seed=99)
    loss.center.copy_(c0)
    loss(student, teacher)
    want = c0 if momentum == 1.0 else torch.cat(teacher).mean(0, keepdim=True)
    torch.testing.assert_close(loss.center, want)


def test_dino_refuses_views_of_different_batch_sizes():
    """Every view, of the student and of the teacher, must hold the same B
    samples: a mismatch is a ValueError, not a broadcast or a torch error."""
    loss = DINOLoss(5)
    a, b = torch.randn(4, 5), torch.randn(3, 5)
    with pytest.raises(ValueError, match="student_out must be"):
        loss([a, a, b], [a, a])
    with pytest.raises(ValueError, match="teacher_out must be"):
        loss([a, a, a], [a, b])
    with pytest.raises(ValueError, match="same batch size"):
        loss([b, b, b], [a, a])


def test_loss_modules_print_their_settings():
    """The repr of a loss with state shows the values it was built with."""
    dino = DINOLoss(7, teacher_temp=0.05, student_temp=0.3, center_momentum=0.8)
    assert repr(dino) == (
        "DINOLoss(out_dim=7, teacher_temp=0.05, student_temp=0.3, center_momentum=0.8)"
    )
    assert repr(MemoryQueue(dim=3, size=5)) == "MemoryQueue(dim=3, size=5)"


def test_memory_queue_rejects_bad_dim():
    """A key of width 0 is refused when the queue is built."""
    with pytest.raises(ValueError, match="dim must be >= 1"):
        MemoryQueue(dim=0, size=4)


@pytest.mark.parametrize("queue_shape", [(3,), (6, 1, 3)])
def test_infonce_refuses_a_queue_that_is_not_2d(queue_shape):
    """The queue is (K, D): a 1-D or 3-D tensor is a ValueError naming it."""
    q, k = torch.randn(4, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"queue must have shape \(K, 3\)"):
        InfoNCELoss()(q, k, torch.randn(queue_shape))


@pytest.mark.parametrize("with_queue", [True, False])
def test_infonce_gradient_reaches_the_keys_as_given(with_queue):
    """Keys that require grad get the gradient of the formula (in-batch
    negatives and the positive alike); only the queue is a constant."""
    q = _randn(5, 3, seed=1).requires_grad_()
    k = _randn(5, 3, seed=2).requires_grad_()
    queue = _randn(6, 3, seed=5) if with_queue else None
    gq, gk = torch.autograd.grad(InfoNCELoss(0.3)(q, k, queue), [q, k])
    qn, kn = nn.functional.normalize(q, dim=1), nn.functional.normalize(k, dim=1)
    if with_queue:
        neg = qn @ nn.functional.normalize(queue, dim=1).T
        logits = torch.cat([(qn * kn).sum(1, keepdim=True), neg], 1) / 0.3
        want = (torch.logsumexp(logits, 1) - logits[:, 0]).mean()
    else:
        logits = qn @ kn.T / 0.3
        want = (torch.logsumexp(logits, 1) - logits.diagonal()).mean()
    wq, wk = torch.autograd.grad(want, [q, k])
    torch.testing.assert_close(gq, wq)
    torch.testing.assert_close(gk, wk)
    assert gk.abs().sum() > 0


def test_infonce_accepts_a_queue_of_another_float_dtype():
    """A float32 queue (a MemoryQueue's default) with float64 queries gives
    the float64 loss of the same values."""
    q, k, queue = _randn(4, 3, seed=1), _randn(4, 3, seed=2), _randn(6, 3, seed=5)
    got = InfoNCELoss(0.2)(q, k, queue.float())
    want = _naive_infonce(q, k, queue.float().double(), 0.2)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(want, abs=1e-6)


# -- NT-Xent over several processes ------------------------------------------------
def _ntxent_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)


def _ntxent_rank(rank: int, world: int, out) -> None:
    z1, z2 = _ntxent_batch()
    half = slice(rank * 4, (rank + 1) * 4)
    loss = NTXentLoss(0.5)
    losses = {"train": loss.train()(z1[half], z2[half])}
    losses["eval"] = loss.eval()(z1[half], z2[half])
    torch.save(losses, out / f"ntxent{rank}.pt")


def test_ntxent_contrasts_the_global_batch_in_training_only(tmp_path):
    """On two processes, training scores each rank's anchors against the
    whole batch (the ranks' mean loss is one process's loss on all of it);
    evaluation scores each rank's own batch alone."""
    run_ranks(_ntxent_rank, tmp_path)
    z1, z2 = _ntxent_batch()
    got = [torch.load(tmp_path / f"ntxent{r}.pt") for r in (0, 1)]
    whole = NTXentLoss(0.5)(z1, z2)
    torch.testing.assert_close((got[0]["train"] + got[1]["train"]) / 2, whole)
    for r in (0, 1):
        half = slice(r * 4, (r + 1) * 4)
        torch.testing.assert_close(got[r]["eval"], NTXentLoss(0.5)(z1[half], z2[half]))


def test_collapse_std_is_detached_and_in_at_least_float32():
    """The diagnostic carries no graph, and low-precision embeddings give a float32."""
    z = torch.tensor([[3.0, 0.0], [-5.0, 0.0], [0.0, 2.0]], requires_grad=True)
    out = collapse_std(z)
    assert not out.requires_grad and out.grad_fn is None
    low = collapse_std(z.detach().bfloat16())
    assert low.dtype == torch.float32
    assert low.item() == pytest.approx(out.item(), rel=1e-6)
