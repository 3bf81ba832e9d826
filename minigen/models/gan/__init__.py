"""The GAN family: minimax / non-saturating GAN, WGAN, WGAN-GP, LSGAN, hinge; DCGAN, CGAN;
the stabilisers of the seeds; mode coverage on the toy mixtures.

Read in this order:

* ``losses.py``      every loss as one small function, beside its formula
* ``training.py``    ``discriminator_step`` and ``generator_step``: the papers' algorithm box
* ``nets.py``        the MLP pair and DCGAN (conditional when ``num_classes > 0``)
* ``stabilizers.py`` feature matching, minibatch discrimination / stddev, instance noise
* ``coverage.py``    modes captured and high-quality fraction on the ring and the grid
* ``torch_twin.py``  the same DCGAN and steps in PyTorch (parity tests, benchmarks)

``minigen train gan`` (``minigen/commands/gan.py``) puts them together.
"""
from .coverage import Coverage, mode_coverage, toy_coverage
from .losses import (LSGAN_BINARY, LSGAN_PEARSON, gradient_penalty, hinge_d_loss, hinge_g_loss,
                     lsgan_d_loss, lsgan_g_loss, minimax_d_loss, minimax_g_loss, ns_g_loss,
                     wasserstein_d_loss, wasserstein_g_loss)
from .nets import (DCGANDiscriminator, DCGANGenerator, Discriminator, MLPDiscriminator,
                   MLPGenerator, build_gan)
from .stabilizers import (MinibatchDiscrimination, MinibatchStdDev, add_instance_noise,
                          annealed_noise_std, feature_matching_loss, minibatch_stddev)
from .training import LOSSES, Recipe, discriminator_step, frozen, generator_step

__all__ = [
    "minimax_d_loss", "minimax_g_loss", "ns_g_loss", "wasserstein_d_loss", "wasserstein_g_loss",
    "gradient_penalty", "lsgan_d_loss", "lsgan_g_loss", "LSGAN_BINARY", "LSGAN_PEARSON",
    "hinge_d_loss", "hinge_g_loss",
    "Recipe", "LOSSES", "discriminator_step", "generator_step", "frozen",
    "MLPGenerator", "MLPDiscriminator", "DCGANGenerator", "DCGANDiscriminator", "Discriminator",
    "build_gan",
    "feature_matching_loss", "MinibatchDiscrimination", "MinibatchStdDev", "minibatch_stddev",
    "add_instance_noise", "annealed_noise_std",
    "Coverage", "mode_coverage", "toy_coverage",
]
