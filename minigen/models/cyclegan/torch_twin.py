"""The PyTorch twin of ``nets.py`` and ``training.py``: the same generator and discriminator
(the same module names, so state dicts copy across with ``minigen.interop``), the same
losses and the same two-part step, written with torch. The parity test steps both on the
same batches and compares every parameter. Needs torch (the ``bench`` extra).

Read beside the minigen version: every line has its counterpart.
"""
import numpy as np

from .pool import ImagePool


def _torch():
    import torch
    return torch


def networks(image_shape=(1, 28, 28), width=8, blocks=3, d_width=8):
    """{"G", "F", "D_X", "D_Y"} in torch, laid out like ``nets.build_cyclegan``'s."""
    torch = _torch()
    nn = torch.nn
    c, h, w = image_shape

    def conv_norm_relu(c_in, c_out, kernel, stride, padding, transposed=False):
        conv = nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding, output_padding=1,
                                  bias=False) if transposed else \
            nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)
        return [conv, nn.InstanceNorm2d(c_out), nn.ReLU()]

    class ResidualBlock(nn.Module):
        def __init__(self, ch):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.InstanceNorm2d(ch), nn.ReLU(),
                nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.InstanceNorm2d(ch))

        def forward(self, x):
            return x + self.body(x)

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                *conv_norm_relu(c, width, 7, 1, 0),
                *conv_norm_relu(width, 2 * width, 3, 2, 1),
                *conv_norm_relu(2 * width, 4 * width, 3, 2, 1),
                *[ResidualBlock(4 * width) for _ in range(blocks)],
                *conv_norm_relu(4 * width, 2 * width, 3, 2, 1, transposed=True),
                *conv_norm_relu(2 * width, width, 3, 2, 1, transposed=True),
                nn.Conv2d(width, c, 7, padding=3), nn.Tanh())

        def forward(self, x):
            image = nn.functional.pad(x.reshape(len(x), c, h, w), (3, 3, 3, 3), value=-1.0)
            return self.net(image).reshape(x.shape)

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                nn.Conv2d(c, d_width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(d_width, 2 * d_width, 4, stride=2, padding=1, bias=False),
                nn.InstanceNorm2d(2 * d_width), nn.LeakyReLU(0.2),
                nn.Conv2d(2 * d_width, 1, 3, padding=1))

        def forward(self, x):
            return self.net(x.reshape(len(x), c, h, w))

    return {"G": Generator(), "F": Generator(), "D_X": Discriminator(), "D_Y": Discriminator()}


def generator_step(nets, opt_G, x, y, cycle=10.0, identity=0.5):
    """``training.generator_step`` in torch: D_X, D_Y frozen, one step over G and F."""
    torch = _torch()
    l1 = torch.nn.functional.l1_loss
    G, F, D_X, D_Y = (nets[k] for k in ("G", "F", "D_X", "D_Y"))
    for D in (D_X, D_Y):
        D.requires_grad_(False)
    fake_y, fake_x = G(x), F(y)
    loss = (((D_Y(fake_y) - 1) ** 2).mean() + ((D_X(fake_x) - 1) ** 2).mean()
            + cycle * (l1(F(fake_y), x) + l1(G(fake_x), y)))
    if identity > 0:
        loss = loss + cycle * identity * (l1(G(y), y) + l1(F(x), x))
    opt_G.zero_grad()
    loss.backward()
    opt_G.step()
    for D in (D_X, D_Y):
        D.requires_grad_(True)
    return loss, fake_x.detach(), fake_y.detach()


def discriminator_step(nets, opt_D, x, y, fake_x, fake_y):
    """``training.discriminator_step`` in torch: LSGAN, halved, on the (pooled) fakes."""
    def d_loss(D, real, fake):
        return 0.5 * (((D(real) - 1) ** 2).mean() + (D(fake) ** 2).mean())

    loss = d_loss(nets["D_X"], x, fake_x) + d_loss(nets["D_Y"], y, fake_y)
    opt_D.zero_grad()
    loss.backward()
    opt_D.step()
    return loss


class Twins:
    """A minigen CycleGAN and its torch twin with the same initial weights, optimizers (Adam
    over G and F, Adam over D_X and D_Y) and image pools (same seeds), stepped on the same
    batches. ``max_relative_difference``: max |a - b| / max |b| over every tensor."""

    def __init__(self, config, lr=2e-4, betas=(0.5, 0.999), pool_size=50, weights=None,
                 dtype="float64", seed=0):
        import minigen as mg
        from ... import interop
        from ...optim import Adam
        from .nets import build_cyclegan
        from .training import Weights
        torch = _torch()
        self.torch, self.mg, self.dtype = torch, mg, dtype
        self.weights = weights or Weights()
        mg.manual_seed(seed)
        self.nets = build_cyclegan(config)
        self.twins = networks(tuple(config["image_shape"]), config["width"], config["blocks"],
                              config["d_width"])
        for name, net in self.nets.items():
            net.to(dtype=dtype)
            self.twins[name].to(getattr(torch, dtype))
            interop.copy_weights(net, self.twins[name])

        def params(nets, *names):
            return [p for n in names for p in nets[n].parameters()]

        self.opt_G = Adam(params(self.nets, "G", "F"), lr, betas)
        self.opt_D = Adam(params(self.nets, "D_X", "D_Y"), lr, betas)
        self.t_opt_G = torch.optim.Adam(params(self.twins, "G", "F"), lr, betas)
        self.t_opt_D = torch.optim.Adam(params(self.twins, "D_X", "D_Y"), lr, betas)
        self.pools = {k: ImagePool(pool_size, seed) for k in ("fake_x", "fake_y")}
        self.t_pools = {k: ImagePool(pool_size, seed) for k in ("fake_x", "fake_y")}

    def step(self, x, y):
        """One iteration of both on the NumPy batches x (domain X) and y (domain Y)."""
        from .training import cyclegan_step
        mg, torch = self.mg, self.torch
        cyclegan_step(self.nets, self.opt_G, self.opt_D, self.pools,
                      mg.tensor(x, dtype=self.dtype), mg.tensor(y, dtype=self.dtype),
                      self.weights)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        _, fake_x, fake_y = generator_step(self.twins, self.t_opt_G, tx, ty,
                                           self.weights.cycle, self.weights.identity)
        fake_x = torch.from_numpy(self.t_pools["fake_x"].query(fake_x.numpy()))
        fake_y = torch.from_numpy(self.t_pools["fake_y"].query(fake_y.numpy()))
        discriminator_step(self.twins, self.t_opt_D, tx, ty, fake_x, fake_y)

    def relative_differences(self):
        """[(tensor name, max|a - b| / max|b|)] over every parameter of the four networks."""
        rows = []
        for name, net in self.nets.items():
            ref = self.twins[name].state_dict()
            for key, a in net.state_dict().items():
                b = ref[key].detach().numpy().astype(np.float64)
                d = np.abs(np.asarray(a, np.float64) - b).max()
                rows.append((f"{name}.{key}", float(d) / max(float(np.abs(b).max()), 1e-300)))
        return rows

    def max_relative_difference(self):
        return max(r[1] for r in self.relative_differences())
