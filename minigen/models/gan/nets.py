"""Generators and discriminators: the MLP pair (2-D toy data, 28x28) and DCGAN (28x28).

Every network here takes and returns flat rows, as the data loaders give them:

    G(z, y=None):  z (N, latent)  ->  samples (N, D)   images in [-1, 1] (tanh), or 2-D points
    D(x, y=None):  x (N, D)       ->  one logit / critic score per row, (N,)

and D is split in three parts, so the stabilisers can reach inside it:

    D(x) = head(minibatch(features(x)))
           features: the body's last hidden layer (feature matching compares its batch means)
           minibatch: Identity, MinibatchDiscrimination or MinibatchStdDev (stabilizers.py)
           head: Linear(., 1), no sigmoid -- the losses take logits

Conditional GAN (Mirza & Osindero 2014; seed 000 "CGAN", seed 003 "Условная генерация"):
``num_classes > 0`` feeds the label to both networks as a one-hot vector -- concatenated to
z in G, and to the input of D (for DCGAN as C constant planes beside the image), the
original paper's choice. One-hot rather than a learned embedding: nothing to learn, and the
first layer's weights for class k are then exactly "the embedding of k", so an embedding
would add nothing but parameters. Without the label in D, G could ignore it (seed 003).

DCGAN (Radford et al. 2015; seed 000 "DCGAN", seed 003 "Deep Convolutional GANs"):
strided (transposed) convolutions instead of pooling, no fully connected hidden layers (G's
first layer is the projection of z: a 7x7 transposed convolution of the 1x1 input), batch
norm in G and D except at G's output and D's input, ReLU in G with tanh at the output,
LeakyReLU(0.2) in D, weights N(0, 0.02^2) (``nn.init.dcgan_init_``).
"""
import numpy as np

from ... import nn
from ...ops import cat
from ..vae import one_hot
from .stabilizers import MinibatchDiscrimination, MinibatchStdDev

NORMS = ("batch", "layer", "none")
MINIBATCH = ("none", "discrimination", "stddev")


def _with_label(x, y, num_classes):
    """[x, one_hot(y)] along the features, or x itself for an unconditional net."""
    if not num_classes:
        return x
    if y is None:
        raise ValueError("this conditional GAN needs the labels y")
    return cat([x, one_hot(y, num_classes, x)], dim=1)


def _minibatch_layer(kind, in_features, num_kernels, kernel_dim):
    if kind == "none":
        return nn.Identity()
    if kind == "discrimination":
        return MinibatchDiscrimination(in_features, num_kernels, kernel_dim)
    if kind == "stddev":
        return MinibatchStdDev(in_features)
    raise ValueError(f"minibatch must be one of {MINIBATCH}, got {kind!r}")


class Discriminator(nn.Module):
    """What every D here shares: features -> minibatch layer -> linear head (a logit)."""

    def _finish(self, n_features, minibatch, kernels):
        self.minibatch = _minibatch_layer(minibatch, n_features, *kernels)
        out = n_features if minibatch == "none" else self.minibatch.out_features
        self.head = nn.Linear(out, 1)

    def forward(self, x, y=None):
        return self.head(self.minibatch(self.features(x, y))).reshape(x.shape[0])


# ================================================================== MLP pair
class MLPGenerator(nn.Module):
    """z (+ one-hot y) -> [Linear -> ReLU] x len(hidden) -> Linear -> tanh (images) or
    nothing (points: the toy data live in [-4, 4], beyond tanh's range)."""

    def __init__(self, latent, out_features, hidden=(128, 128), num_classes=0, tanh=True):
        super().__init__()
        self.latent, self.out_features, self.num_classes = latent, out_features, num_classes
        layers, width = [], latent + num_classes
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, out_features))
        if tanh:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z, y=None):
        return self.net(_with_label(z, y, self.num_classes))


class MLPDiscriminator(Discriminator):
    """x (+ one-hot y) -> [Linear -> LeakyReLU(0.2)] x len(hidden) = features -> head."""

    def __init__(self, in_features, hidden=(128, 128), num_classes=0, minibatch="none",
                 kernels=(8, 2)):
        super().__init__()
        self.in_features, self.num_classes = in_features, num_classes
        layers, width = [], in_features + num_classes
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        self.body = nn.Sequential(*layers)
        self._finish(width, minibatch, kernels)

    def features(self, x, y=None):
        return self.body(_with_label(x, y, self.num_classes))


# ================================================================== DCGAN
class DCGANGenerator(nn.Module):
    """z (N, latent) -> (N, latent, 1, 1)
        -> ConvT 7x7 (4w) -> BN -> ReLU                  4w x 7 x 7   (the projection of z)
        -> ConvT 4x4/2 (2w) -> BN -> ReLU                2w x 14 x 14
        -> ConvT 4x4/2 (C) -> tanh                        C x 28 x 28  (no BN at the output)
    for images (C, H, W) with H and W divisible by 4 (the first kernel is H/4 x W/4).
    Convolutions followed by batch norm have no bias: BN's shift replaces it.
    """

    def __init__(self, latent=100, image_shape=(1, 28, 28), width=32, num_classes=0):
        super().__init__()
        c, h, w = image_shape
        if h % 4 or w % 4:
            raise ValueError(f"DCGANGenerator: image sides must be divisible by 4, got {h}x{w}")
        self.latent, self.image_shape, self.num_classes = latent, tuple(image_shape), num_classes
        self.out_features = int(np.prod(image_shape))
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent + num_classes, 4 * width, (h // 4, w // 4), bias=False),
            nn.BatchNorm2d(4 * width), nn.ReLU(),
            nn.ConvTranspose2d(4 * width, 2 * width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.ConvTranspose2d(2 * width, c, 4, stride=2, padding=1), nn.Tanh())

    def forward(self, z, y=None):
        zc = _with_label(z, y, self.num_classes)
        return self.net(zc.reshape(z.shape[0], -1, 1, 1)).reshape(z.shape[0], -1)


class DCGANDiscriminator(Discriminator):
    """x (N, C*H*W) -> (N, C, H, W) (+ one-hot planes)
        -> Conv 4x4/2 (w) -> LeakyReLU(0.2)                   w x 14 x 14   (no BN at the input)
        -> Conv 4x4/2 (2w) -> norm -> LeakyReLU(0.2)           2w x 7 x 7
        -> flatten = features -> minibatch layer -> Linear -> logit

    ``norm``: "batch" (DCGAN), "layer" (LayerNorm over the whole feature map, Gulrajani et
    al.'s replacement in a WGAN-GP critic, where batch norm would make each score depend on
    the rest of the batch and break the per-example penalty) or "none". The final Linear
    over the flattened 2w x 7 x 7 map is the DCGAN paper's "flattened and fed into a single
    sigmoid output" (the sigmoid is in the loss), i.e. a 7x7 convolution to one channel.
    """

    def __init__(self, image_shape=(1, 28, 28), width=32, num_classes=0, norm="batch",
                 minibatch="none", kernels=(16, 8)):
        super().__init__()
        c, h, w = image_shape
        if h % 4 or w % 4:
            raise ValueError(f"DCGANDiscriminator: image sides must be divisible by 4, got {h}x{w}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.image_shape, self.num_classes, self.norm = tuple(image_shape), num_classes, norm
        feature_map = (2 * width, h // 4, w // 4)
        normalise = {"batch": lambda: nn.BatchNorm2d(2 * width),
                     "layer": lambda: nn.LayerNorm(feature_map),
                     "none": nn.Identity}[norm]
        self.body = nn.Sequential(
            nn.Conv2d(c + num_classes, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=norm == "none"),
            normalise(), nn.LeakyReLU(0.2), nn.Flatten())
        self._finish(int(np.prod(feature_map)), minibatch, kernels)

    def features(self, x, y=None):
        n = x.shape[0]
        img = x.reshape(n, *self.image_shape)
        if self.num_classes:
            planes = one_hot(y, self.num_classes, x).reshape(n, self.num_classes, 1, 1)
            img = cat([img, planes.broadcast_to(n, self.num_classes, *self.image_shape[1:])],
                      dim=1)
        return self.body(img)


# ================================================================== from a config
def build_gan(config):
    """(G, D) from a plain config dict (as stored in checkpoints): ``arch`` ("mlp" or
    "dcgan"), ``data_shape`` ((C, H, W) images or (2,) points), ``latent``, ``width``,
    ``num_classes``, and for D ``d_norm``, ``minibatch`` and ``minibatch_kernels`` (B, C of
    minibatch discrimination; default (16, 8) for DCGAN, (8, 2) for an MLP). DCGAN weights
    start N(0, 0.02^2) (batch-norm scales N(1, 0.02^2)); MLPs keep PyTorch's default init."""
    shape = tuple(config["data_shape"])
    latent, width = config["latent"], config["width"]
    classes = config.get("num_classes", 0)
    minibatch = config.get("minibatch", "none")
    kernels = config.get("minibatch_kernels")
    if config["arch"] == "dcgan":
        if len(shape) != 3:
            raise ValueError(f"DCGAN needs image data (C, H, W), got data of shape {shape}")
        G = DCGANGenerator(latent, shape, width, classes)
        D = DCGANDiscriminator(shape, width, classes, config.get("d_norm", "batch"), minibatch,
                               tuple(kernels or (16, 8)))
        nn.init.dcgan_init_(G)
        nn.init.dcgan_init_(D)
        return G, D
    if config["arch"] != "mlp":
        raise ValueError(f"arch must be 'mlp' or 'dcgan', got {config['arch']!r}")
    d = int(np.prod(shape))
    hidden = (width, width)
    G = MLPGenerator(latent, d, hidden, classes, tanh=len(shape) == 3)
    D = MLPDiscriminator(d, hidden, classes, minibatch, tuple(kernels or (8, 2)))
    return G, D
