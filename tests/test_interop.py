"""``minigen.interop``: a minigen model's weights into the identically built PyTorch model and back,
giving the same float32 outputs both ways (to 1e-6): the VAE (MLP and conv), the feature
classifier (batch norm with running statistics), a DCGAN-style generator, and Embedding and
LayerNorm layers. The PyTorch twins of the VAE and the classifier are the benchmarks' own.
"""
import os
import sys

import numpy as np
import pytest

import minigen as mg
from minigen import interop, nn

torch = pytest.importorskip("torch", reason="torch not installed: nothing to exchange weights with")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
from bench_classifier import torch_twin as classifier_twin  # noqa: E402
from bench_vae import torch_models  # noqa: E402

TOL = dict(rtol=1e-6, atol=1e-6)


def images(n, seed=0, shape=(784,)):
    return np.random.default_rng(seed).random((n,) + shape, dtype=np.float32)


def scramble_torch(twin, seed):
    """Give the torch model weights (and batch-norm statistics) minigen never saw."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in twin.state_dict().items():
            if t.dtype.is_floating_point:
                t.copy_(torch.rand(t.shape, generator=gen) * 0.2 + (1.0 if "var" in name else -0.1))
            else:
                t.fill_(7)


def same_outputs(model, twin, forward_mg, forward_t, x):
    with torch.no_grad():
        expected = forward_t(twin, torch.from_numpy(x))
    with mg.no_grad():
        got = forward_mg(model, mg.tensor(x))
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a.numpy(), b.numpy(), **TOL)


def both_ways(model, twin, forward_mg, forward_t, x, seed=1):
    """minigen -> torch, then torch (changed) -> minigen; outputs equal each time."""
    interop.copy_weights(model, twin)
    same_outputs(model, twin, forward_mg, forward_t, x)
    scramble_torch(twin, seed)
    interop.copy_weights(twin, model)
    same_outputs(model, twin, forward_mg, forward_t, x)
    for key, value in model.state_dict().items():  # every buffer came back too
        np.testing.assert_array_equal(value, twin.state_dict()[key].numpy())


@pytest.mark.parametrize("conv", [False, True], ids=["mlp", "conv"])
def test_vae_round_trip(conv):
    from minigen.models.vae import ConvVAE, VAE
    TorchVAE, TorchConvVAE = torch_models()
    mg.manual_seed(0)
    model, twin = (ConvVAE(), TorchConvVAE()) if conv else (VAE(), TorchVAE())
    z = np.random.default_rng(3).standard_normal((5, 20)).astype(np.float32)

    def run(m, x, lib):
        mu, logvar = m.encode(x)
        return mu, logvar, m.decode(lib.tensor(z) if lib is mg else torch.from_numpy(z))
    both_ways(model, twin, lambda m, x: run(m, x, mg), lambda m, x: run(m, x, torch), images(5))


def test_classifier_round_trip_with_batch_norm_statistics():
    from minigen.metrics.classifier import ConvClassifier
    mg.manual_seed(1)
    model = ConvClassifier().eval()
    twin = classifier_twin(ConvClassifier()).eval()   # torch, built the same way
    x = images(4, shape=(1, 28, 28))
    both_ways(model, twin, lambda m, x: (m(x), m.features(x)),
              lambda m, x: (m(x), m.body(x)), x)


def _dcgan_generator(lib):
    """A DCGAN generator (Radford et al. 2015) written once for both libraries."""
    L = lib.nn
    return L.Sequential(
        L.ConvTranspose2d(8, 16, 4, 1, 0, bias=False), L.BatchNorm2d(16), L.ReLU(True),
        L.ConvTranspose2d(16, 8, 4, 2, 1, bias=False), L.BatchNorm2d(8), L.ReLU(True),
        L.ConvTranspose2d(8, 1, 4, 2, 1, bias=False), L.Tanh())


def test_a_model_interop_never_saw_works_unchanged():
    mg.manual_seed(2)
    model, twin = _dcgan_generator(mg).eval(), _dcgan_generator(torch).eval()
    z = np.random.default_rng(0).standard_normal((3, 8, 1, 1)).astype(np.float32)
    both_ways(model, twin, lambda m, x: (m(x),), lambda m, x: (m(x),), z)


def test_embedding_and_layer_norm_round_trip():
    def build(lib):
        class Net(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = lib.nn.Embedding(10, 6)
                self.norm = lib.nn.LayerNorm(6)
                self.out = lib.nn.Linear(6, 3)

            def forward(self, idx):
                return self.out(self.norm(self.emb(idx)))
        return Net()
    mg.manual_seed(4)
    model, twin = build(mg), build(torch)
    idx = np.array([[1, 9, 3], [0, 0, 5]])
    both_ways(model, twin, lambda m, x: (m(x),), lambda m, x: (m(x),), idx)


def test_state_dict_conversions():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    sd = interop.to_torch_state_dict(model)
    assert all(isinstance(v, torch.Tensor) for v in sd.values())
    assert sd["1.num_batches_tracked"].dtype == torch.int64 and sd["0.weight"].dtype == torch.float32
    back = interop.from_torch_state_dict(sd)
    assert all(isinstance(v, np.ndarray) for v in back.values())
    np.testing.assert_array_equal(back["0.weight"], model[0].weight.numpy())


def test_a_model_built_differently_is_named():
    mine = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Linear(5, 2), torch.nn.ReLU(),
                                 torch.nn.Linear(2, 2))
    with pytest.raises(ValueError) as e:
        interop.copy_weights(mine, theirs)
    text = str(e.value)
    assert "missing in the source: 3.weight, 3.bias" in text
    assert "0.weight: shape (3, 4) in the source, (5, 4) in the target" in text
    assert "1.weight: shape (2, 3) in the source, (2, 5) in the target" in text
