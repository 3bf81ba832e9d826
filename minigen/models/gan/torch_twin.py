"""The PyTorch twin of ``nets.py`` and ``training.py``: the same networks (same module
names, so state dicts copy across), the same losses and the same two steps, written with
torch. Used by the parity test (every parameter equal after 20 alternating steps) and the
benchmarks (time per iteration; Fashion-MNIST runs). Needs torch (the ``bench`` extra).

Reading it beside the minigen version is a good exercise: every line has its counterpart.
"""
import numpy as np


def _torch():
    import torch
    return torch


def _with_label(torch, x, y, num_classes):
    if not num_classes:
        return x
    return torch.cat([x, torch.nn.functional.one_hot(y, num_classes).to(x.dtype)], dim=1)


def dcgan_pair(latent=100, image_shape=(1, 28, 28), width=32, num_classes=0, norm="batch"):
    """(G, D) in torch, laid out like ``nets.DCGANGenerator`` / ``nets.DCGANDiscriminator``
    (minibatch layer: Identity)."""
    torch = _torch()
    nn = torch.nn
    c, h, w = image_shape

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                nn.ConvTranspose2d(latent + num_classes, 4 * width, (h // 4, w // 4), bias=False),
                nn.BatchNorm2d(4 * width), nn.ReLU(),
                nn.ConvTranspose2d(4 * width, 2 * width, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(2 * width), nn.ReLU(),
                nn.ConvTranspose2d(2 * width, c, 4, stride=2, padding=1), nn.Tanh())

        def forward(self, z, y=None):
            zc = _with_label(torch, z, y, num_classes)
            return self.net(zc.reshape(len(z), -1, 1, 1)).reshape(len(z), -1)

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            fmap = (2 * width, h // 4, w // 4)
            normalise = {"batch": lambda: nn.BatchNorm2d(2 * width),
                         "layer": lambda: nn.LayerNorm(fmap), "none": nn.Identity}[norm]
            self.body = nn.Sequential(
                nn.Conv2d(c + num_classes, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=norm == "none"),
                normalise(), nn.LeakyReLU(0.2), nn.Flatten())
            self.minibatch = nn.Identity()
            self.head = nn.Linear(int(np.prod(fmap)), 1)

        def features(self, x, y=None):
            img = x.reshape(len(x), c, h, w)
            if num_classes:
                planes = nn.functional.one_hot(y, num_classes).to(x.dtype)
                img = torch.cat([img, planes[:, :, None, None].expand(-1, -1, h, w)], dim=1)
            return self.body(img)

        def forward(self, x, y=None):
            return self.head(self.minibatch(self.features(x, y))).reshape(len(x))

    return Generator(), Discriminator()


def copy_weights(source, target):
    """Load a minigen module's state dict into its torch twin (dtype of the twin's tensors)."""
    torch = _torch()
    dtypes = {k: v.dtype for k, v in target.state_dict().items()}
    target.load_state_dict({k: torch.tensor(np.asarray(v)).to(dtypes[k])
                            for k, v in source.state_dict().items()})


# ------------------------------------------------------------------ losses and steps
def d_loss(recipe, real, fake):
    torch = _torch()
    F = torch.nn.functional
    if recipe.loss in ("minimax", "ns"):
        return (F.binary_cross_entropy_with_logits(real, torch.full_like(real, recipe.real_label))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    if recipe.loss in ("wgan", "wgan-gp"):
        return fake.mean() - real.mean()
    if recipe.loss == "lsgan":
        a, b, _ = recipe.lsgan_abc
        return ((real - b) ** 2).mean() + ((fake - a) ** 2).mean()
    return torch.relu(1 - real).mean() + torch.relu(1 + fake).mean()


def g_loss(recipe, fake):
    torch = _torch()
    F = torch.nn.functional
    if recipe.loss == "minimax":
        return -F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    if recipe.loss == "ns":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if recipe.loss == "lsgan":
        return ((fake - recipe.lsgan_abc[2]) ** 2).mean()
    return -fake.mean()


def gradient_penalty(critic, real, fake, alpha, weight=10.0, labels=None):
    torch = _torch()
    x_hat = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)
    scores = critic(x_hat, labels)
    (g,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norm = (g * g).reshape(len(g), -1).sum(dim=1).sqrt()
    return weight * ((norm - 1) ** 2).mean()


def discriminator_step(G, D, opt_D, real, z, recipe, labels=None, alpha=None):
    """``training.discriminator_step`` in torch (no instance noise)."""
    torch = _torch()
    with torch.no_grad():
        fake = G(z, labels)
    loss = d_loss(recipe, D(real, labels), D(fake, labels))
    if recipe.loss == "wgan-gp":
        if alpha is None:
            alpha = torch.rand(len(real), *([1] * (real.dim() - 1)), dtype=real.dtype)
        loss = loss + gradient_penalty(D, real, fake, alpha, recipe.gp_weight, labels)
    opt_D.zero_grad()
    loss.backward()
    opt_D.step()
    if recipe.loss == "wgan":
        with torch.no_grad():
            for p in D.parameters():
                p.clamp_(-recipe.clip, recipe.clip)
    return loss


def generator_step(G, D, opt_G, z, recipe, labels=None):
    """``training.generator_step`` in torch (D frozen the same way)."""
    for p in D.parameters():
        p.requires_grad_(False)
    loss = g_loss(recipe, D(G(z, labels), labels))
    opt_G.zero_grad()
    loss.backward()
    opt_G.step()
    for p in D.parameters():
        p.requires_grad_(True)
    return loss


# ------------------------------------------------------------------ the pair, stepped together
class Twins:
    """A minigen DCGAN pair and its torch twin with the same initial weights and optimizers,
    stepped on the same numbers (x, z, alpha given as NumPy arrays). ``max_relative_difference``
    compares every parameter and batch-norm statistic: max |a - b| / max |b| per tensor."""

    def __init__(self, config, recipe, lr, betas, dtype="float64", seed=0):
        import minigen as mg
        from ...optim import Adam
        from .nets import build_gan
        torch = _torch()
        self.torch, self.mg, self.recipe, self.dtype = torch, mg, recipe, dtype
        mg.manual_seed(seed)
        self.G, self.D = build_gan(config)
        self.tG, self.tD = dcgan_pair(config["latent"], tuple(config["data_shape"]),
                                      config["width"], config.get("num_classes", 0),
                                      config.get("d_norm", "batch"))
        for ours, theirs in ((self.G, self.tG), (self.D, self.tD)):
            ours.to(dtype=dtype)
            theirs.to(getattr(torch, dtype))
            copy_weights(ours, theirs)
        self.opt_G, self.opt_D = (Adam(m.parameters(), lr, betas) for m in (self.G, self.D))
        self.t_opt_G, self.t_opt_D = (torch.optim.Adam(m.parameters(), lr, betas)
                                      for m in (self.tG, self.tD))

    def _mg(self, a):
        return None if a is None else self.mg.tensor(a, dtype=self.dtype)

    def _torch(self, a):
        return None if a is None else self.torch.from_numpy(a)

    def d_step(self, x, z, alpha=None):
        from .training import discriminator_step as ours
        ours(self.G, self.D, self.opt_D, self._mg(x), self._mg(z), self.recipe,
             alpha=self._mg(alpha))
        discriminator_step(self.tG, self.tD, self.t_opt_D, self._torch(x), self._torch(z),
                           self.recipe, alpha=self._torch(alpha))

    def g_step(self, z):
        from .training import generator_step as ours
        ours(self.G, self.D, self.opt_G, self._mg(z), self.recipe)
        generator_step(self.tG, self.tD, self.t_opt_G, self._torch(z), self.recipe)

    def relative_differences(self):
        """[(tensor name, max|a - b| / max|b|, ||a - b|| / ||b||)] over every parameter and
        batch-norm statistic of G and D (an all-zero b: the absolute difference)."""
        rows = []
        for prefix, ours, theirs in (("G", self.G, self.tG), ("D", self.D, self.tD)):
            ref = theirs.state_dict()
            for name, a in ours.state_dict().items():
                b = ref[name].detach().numpy().astype(np.float64)
                if b.dtype.kind == "f" and ref[name].is_floating_point():
                    d = a.astype(np.float64) - b
                    rows.append((f"{prefix}.{name}",
                                 float(np.abs(d).max()) / max(float(np.abs(b).max()), 1e-300),
                                 float(np.linalg.norm(d)) / max(float(np.linalg.norm(b)), 1e-300)))
        return rows

    def max_relative_difference(self):
        return max(r[1] for r in self.relative_differences())
