"""Generative models: VAE, GAN family, RBM, SOM, K-means, Gaussian mixtures."""

# variational autoencoders (seed 002's task): trained by autograd on the ELBO
from .vae import (VAE, ConditionalVAE, ConvVAE, build_vae, kl_standard_normal,  # noqa: F401
                  reparameterize)

# classical models: trained by their own update rules (seed 002), not by autograd
from .gmm import GaussianMixture  # noqa: E402,F401
from .kmeans import KMeans  # noqa: E402,F401
from .rbm import RBM  # noqa: E402,F401
from .som import SOM  # noqa: E402,F401

# the GAN family (seeds 000, 001, 003): trained by autograd, two networks in turn
from .gan import (DCGANDiscriminator, DCGANGenerator, MLPDiscriminator,  # noqa: E402,F401
                  MLPGenerator, build_gan)
