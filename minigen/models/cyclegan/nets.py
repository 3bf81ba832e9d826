"""CycleGAN's networks, scaled from 256x256 photos to 28x28 grey images and 2 CPU cores.

Zhu et al. 2017 (appendix 7.2) use Johnson et al.'s ResNet generator and a 70x70 PatchGAN
discriminator. The same shapes, smaller:

    ResnetGenerator (width w, B residual blocks; paper: w = 64, B = 6 or 9, 256x256 input)
        c7s1-w    conv 7x7, stride 1 - instance norm - ReLU            w x 28 x 28
        d2w       conv 3x3, stride 2 - instance norm - ReLU           2w x 14 x 14
        d4w       conv 3x3, stride 2 - instance norm - ReLU           4w x 7 x 7
        R4w x B   x + [conv 3x3 - IN - ReLU - conv 3x3 - IN](x)       4w x 7 x 7
        u2w       transposed conv 3x3, stride 2 - IN - ReLU           2w x 14 x 14
        uw        transposed conv 3x3, stride 2 - IN - ReLU            w x 28 x 28
        c7s1-C    conv 7x7, stride 1 - tanh                            C x 28 x 28

    PatchDiscriminator (paper: C64-C128-C256-C512, then a conv to one channel: a 30x30 map
    of verdicts on overlapping 70x70 patches)
        Cw        conv 4x4, stride 2 - LeakyReLU(0.2)  (no norm on the input layer)   14x14
        C2w       conv 4x4, stride 2 - instance norm - LeakyReLU(0.2)                 7x7
        out       conv 3x3, stride 1 -> one score per patch                           7x7

    Each of the 49 scores sees an 18x18 patch of the 28x28 image (receptive field
    (3 - 1) * 2 + 4 = 8 pixels of the 14x14 map, (8 - 1) * 2 + 4 = 18 of the image): the
    verdict is on local texture and shape, not on the whole picture, as in the paper.

Instance norm (Ulyanov et al. 2016) as in the paper: each image is normalised on its own,
so a translation does not depend on the other images of the batch (a batch of one, the
paper's setting, is the same computation). Convolutions followed by instance norm have no
bias: the norm subtracts each channel's mean at once (the reference code keeps the bias; it
changes nothing but the parameter count). The paper pads with reflections to avoid seams at
the borders; here the generator's input is padded with -1, the black background that lines
every Fashion-MNIST border (in the tanh range), which is what a reflection of those borders
gives, and the inner layers pad with zeros. Weights start N(0, 0.02^2), biases 0 (the
paper's code).

Both networks take images as flat rows (N, C*H*W) -- as the data loaders give them -- or
as (N, C, H, W); G returns the shape it was given, D a map of patch scores (N, 1, h, w).
"""
import numpy as np

from ... import nn
from ...ops import pad

BACKGROUND = -1.0  # black in the tanh range [-1, 1]: the value the input is padded with


class ResidualBlock(nn.Module):
    """x + [conv 3x3 - IN - ReLU - conv 3x3 - IN](x): the block learns a correction to x."""

    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.InstanceNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.InstanceNorm2d(channels))

    def forward(self, x):
        return x + self.body(x)


def _conv_norm_relu(c_in, c_out, kernel, stride, padding, transposed=False):
    conv = nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding, output_padding=1, bias=False) \
        if transposed else nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)
    return [conv, nn.InstanceNorm2d(c_out), nn.ReLU()]


class ResnetGenerator(nn.Module):
    """An image-to-image translator (the layer table in the module docstring)."""

    def __init__(self, image_shape=(1, 28, 28), width=8, blocks=3):
        super().__init__()
        c, h, w = image_shape
        if h % 4 or w % 4:
            raise ValueError(f"ResnetGenerator: image sides must be divisible by 4, got {h}x{w}")
        self.image_shape = tuple(image_shape)
        self.net = nn.Sequential(
            *_conv_norm_relu(c, width, 7, 1, 0),   # its padding of 3 is done in forward
            *_conv_norm_relu(width, 2 * width, 3, 2, 1),
            *_conv_norm_relu(2 * width, 4 * width, 3, 2, 1),
            *[ResidualBlock(4 * width) for _ in range(blocks)],
            *_conv_norm_relu(4 * width, 2 * width, 3, 2, 1, transposed=True),
            *_conv_norm_relu(2 * width, width, 3, 2, 1, transposed=True),
            nn.Conv2d(width, c, 7, padding=3), nn.Tanh())

    def forward(self, x):
        image = pad(x.reshape(x.shape[0], *self.image_shape), (3, 3, 3, 3), value=BACKGROUND)
        return self.net(image).reshape(x.shape)


class PatchDiscriminator(nn.Module):
    """One LSGAN score per 18x18 patch (the layer table in the module docstring)."""

    def __init__(self, image_shape=(1, 28, 28), width=8):
        super().__init__()
        c, h, w = image_shape
        self.image_shape = tuple(image_shape)
        self.net = nn.Sequential(
            nn.Conv2d(c, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),
            nn.InstanceNorm2d(2 * width), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, padding=1))

    def forward(self, x):
        return self.net(x.reshape(x.shape[0], *self.image_shape))


def build_cyclegan(config):
    """{"G": X -> Y, "F": Y -> X, "D_X", "D_Y"} from a config dict (``image_shape``,
    ``width``, ``blocks``, ``d_width``), weights N(0, 0.02^2)."""
    shape = tuple(config["image_shape"])
    nets = {"G": ResnetGenerator(shape, config["width"], config["blocks"]),
            "F": ResnetGenerator(shape, config["width"], config["blocks"]),
            "D_X": PatchDiscriminator(shape, config["d_width"]),
            "D_Y": PatchDiscriminator(shape, config["d_width"])}
    for net in nets.values():
        nn.init.dcgan_init_(net)
    return nets


def count_parameters(module):
    return int(sum(np.prod(p.shape) for p in module.parameters()))
