"""CycleGAN (Zhu et al. 2017; seed 003, "Cycle GANs"): unpaired image-to-image translation.

Read in this order:

* ``training.py``   the losses (adversarial LSGAN, cycle consistency, identity) and the step
* ``nets.py``       the ResNet generator and the PatchGAN discriminator, scaled to 28x28
* ``pool.py``       the history of 50 generated images the discriminators learn from
* ``torch_twin.py`` the same networks and step in PyTorch (the parity test)

``minigen train cyclegan`` (``minigen/commands/cyclegan.py``) puts them together.
"""
from .nets import PatchDiscriminator, ResidualBlock, ResnetGenerator, build_cyclegan
from .pool import ImagePool
from .training import (NETS, Weights, cycle_loss, cyclegan_step, discriminator_losses,
                       discriminator_step, generator_losses, generator_step, identity_loss,
                       lr_factor)

__all__ = ["PatchDiscriminator", "ResidualBlock", "ResnetGenerator", "build_cyclegan",
           "ImagePool", "NETS", "Weights", "cycle_loss", "cyclegan_step", "discriminator_losses",
           "discriminator_step", "generator_losses", "generator_step", "identity_loss",
           "lr_factor"]
