"""The CuPy path of the core: the same code gives the same numbers on 'cuda' as on 'cpu'.

Marked `gpu`: skipped (with the reason) where no CUDA device and CuPy are present; run on a
lent device with `pytest -m gpu`.
"""
import numpy as np
import pytest

import minigen as mg

pytestmark = pytest.mark.gpu


def _both(shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    return (mg.tensor(x, dtype="float64", requires_grad=True),
            mg.tensor(x, dtype="float64", device="cuda", requires_grad=True))


@pytest.mark.parametrize("f", [
    lambda a, b: (a * b + a.exp()).sum(),
    lambda a, b: (a @ b.T).tanh().mean(),
    lambda a, b: a.log_softmax(1)[[0, 1, 1], [2, 0, 0]].sum(),
    lambda a, b: mg.cat([a, b], 0).logsumexp(0).sum(),
    lambda a, b: (a.sigmoid() * b.softplus()).var(),
])
def test_cuda_matches_cpu(f):
    a_cpu, a_gpu = _both((3, 4), 0)
    b_cpu, b_gpu = _both((3, 4), 1)
    out_cpu, out_gpu = f(a_cpu, b_cpu), f(a_gpu, b_gpu)
    assert out_gpu.device == "cuda"
    out_cpu.backward()
    out_gpu.backward()
    np.testing.assert_allclose(out_gpu.numpy(), out_cpu.numpy(), rtol=1e-12)
    np.testing.assert_allclose(a_gpu.grad.numpy(), a_cpu.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b_gpu.grad.numpy(), b_cpu.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_gradcheck_on_cuda():
    _, x = _both((2, 3), 2)
    assert mg.gradcheck(lambda t: (t * t).sigmoid(), [x])


def test_mixing_devices_is_an_error():
    _, x = _both((2,), 3)
    with pytest.raises(RuntimeError, match="different devices"):
        x + mg.ones(2, dtype="float64")


def test_to_device_round_trip_is_differentiable():
    x, _ = _both((3,), 4)
    y = (x.to("cuda") * 2).to("cpu").sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2.0)
