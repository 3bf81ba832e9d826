"""Generative models: VAE, GAN family, RBM, SOM, K-means, Gaussian mixtures."""
