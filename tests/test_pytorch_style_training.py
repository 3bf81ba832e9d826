"""Whole training loops written the PyTorch way -- the shapes of pytorch/examples' ``vae/main.py``
and ``mnist/main.py``, on tiny data -- run with PyTorch and with minigen from the same code and
the same initial weights: the per-step losses and the test numbers agree.

What they exercise: ``nn.Module`` subclasses, ``x.view(-1, D)``, ``torch.randn_like`` noise
(fed the same numbers here), ``F.binary_cross_entropy(..., reduction='sum')``, the closed-form
KL, ``loss.item()``, ``torch.utils.data.DataLoader`` batches moved with ``.to(device)``,
``optim.Adadelta`` with ``lr_scheduler.StepLR``, ``torch.flatten``, ``F.max_pool2d``,
``F.log_softmax``/``F.nll_loss``, ``output.argmax(dim=1, keepdim=True)``,
``pred.eq(target.view_as(pred)).sum().item()`` and ``torch.no_grad()``.
"""
import numpy as np
import pytest

from test_pytorch_idioms import filled, libraries

torch = pytest.importorskip("torch", reason="torch not installed: nothing to compare with")

RNG = np.random.default_rng(0)
IMAGES = RNG.random((48, 1, 10, 10), dtype=np.float32)
LABELS = (IMAGES.reshape(48, -1)[:, :50].mean(1) > 0.5).astype(np.int64) * 3 + RNG.integers(0, 3, 48)
NOISE = [RNG.standard_normal((16, 4)).astype(np.float32) for _ in range(6)]


def vae_run(T):
    """vae/main.py, shrunk: 100 -> 32 -> (4, 4) -> 32 -> 100, Adam, BCE(sum) + KLD."""
    class VAE(T.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = T.nn.Linear(100, 32)
            self.fc21 = T.nn.Linear(32, 4)
            self.fc22 = T.nn.Linear(32, 4)
            self.fc3 = T.nn.Linear(4, 32)
            self.fc4 = T.nn.Linear(32, 100)
            self.noise = iter(NOISE)

        def encode(self, x):
            h1 = T.F.relu(self.fc1(x))
            return self.fc21(h1), self.fc22(h1)

        def reparameterize(self, mu, logvar):
            std = T.torch.exp(0.5 * logvar)
            eps = T.torch.from_numpy(next(self.noise)).to(std.device)  # randn_like, fixed here
            return mu + eps * std

        def decode(self, z):
            h3 = T.F.relu(self.fc3(z))
            return T.torch.sigmoid(self.fc4(h3))

        def forward(self, x):
            mu, logvar = self.encode(x.view(-1, 100))
            z = self.reparameterize(mu, logvar)
            return self.decode(z), mu, logvar

    def loss_function(recon_x, x, mu, logvar):
        bce = T.F.binary_cross_entropy(recon_x, x.view(-1, 100), reduction="sum")
        kld = -0.5 * T.torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return bce + kld

    device = T.torch.device("cpu")
    model = filled(T, VAE()).to(device)
    optimizer = T.optim.Adam(model.parameters(), lr=1e-3)
    loader = T.data.DataLoader(T.data.TensorDataset(T.torch.from_numpy(IMAGES[:48])),
                               batch_size=16)
    losses = []
    model.train()
    for epoch in range(2):
        for batch_idx, (data,) in enumerate(loader):
            data = data.to(device)
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = loss_function(recon_batch, data, mu, logvar)
            loss.backward()
            losses.append(loss.item() / len(data))
            optimizer.step()
    model.eval()
    with T.torch.no_grad():
        sample = model.decode(T.torch.from_numpy(NOISE[0][:8]).to(device)).cpu()
    return losses, sample.view(8, 1, 10, 10).numpy()


def cnn_run(T):
    """mnist/main.py, shrunk to 10x10 images: Adadelta + StepLR, NLL loss, accuracy."""
    class Net(T.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = T.nn.Conv2d(1, 4, 3, 1)
            self.conv2 = T.nn.Conv2d(4, 8, 3, 1)
            self.dropout1 = T.nn.Dropout(0.0)   # p = 0: the two libraries draw different masks
            self.fc1 = T.nn.Linear(72, 16)
            self.fc2 = T.nn.Linear(16, 6)

        def forward(self, x):
            x = F.relu(self.conv1(x))
            x = F.relu(self.conv2(x))
            x = F.max_pool2d(x, 2)
            x = self.dropout1(x)
            x = T.torch.flatten(x, 1)
            x = F.relu(self.fc1(x))
            x = self.fc2(x)
            return F.log_softmax(x, dim=1)

    F = T.F
    device = T.torch.device("cuda" if T.torch.cuda.is_available() else "cpu")
    data = T.data.TensorDataset(T.torch.from_numpy(IMAGES), T.torch.from_numpy(LABELS))
    train_loader = T.data.DataLoader(data, batch_size=12)
    test_loader = T.data.DataLoader(data, batch_size=24)
    model = filled(T, Net()).to(device)
    optimizer = T.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = T.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    losses, tests = [], []
    for epoch in range(1, 4):
        model.train()
        for batch_idx, (x, target) in enumerate(train_loader):
            x, target = x.to(device), target.to(device)
            optimizer.zero_grad()
            output = model(x)
            loss = F.nll_loss(output, target)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        test_loss, correct = 0, 0
        with T.torch.no_grad():
            for x, target in test_loader:
                x, target = x.to(device), target.to(device)
                output = model(x)
                test_loss += F.nll_loss(output, target, reduction="sum").item()
                pred = output.argmax(dim=1, keepdim=True)
                correct += pred.eq(target.view_as(pred)).sum().item()
        tests.append((test_loss / len(test_loader.dataset), correct))
        scheduler.step()
    return losses, tests, scheduler.get_last_lr()


@pytest.mark.parametrize("run", [vae_run, cnn_run], ids=["vae_example", "mnist_example"])
def test_the_same_training_loop_gives_the_same_numbers(run):
    mine, theirs = libraries()
    ours, reference = run(mine), run(theirs)
    np.testing.assert_allclose(ours[0], reference[0], rtol=2e-5)     # every step's loss
    assert ours[0][-1] < ours[0][0]                                   # and it learned
    if run is cnn_run:
        for (loss_a, correct_a), (loss_b, correct_b) in zip(ours[1], reference[1]):
            assert correct_a == correct_b and abs(loss_a - loss_b) < 1e-4 * abs(loss_b)
        np.testing.assert_allclose(ours[2], reference[2], rtol=1e-15)
    else:
        np.testing.assert_allclose(ours[1], reference[1], rtol=1e-4, atol=1e-6)
