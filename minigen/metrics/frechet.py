"""Fréchet distance between Gaussians, and FID (Heusel et al. 2017, "GANs trained by a two
time-scale update rule converge to a local Nash equilibrium", its definition of FID;
seed 000, "FID").

Fit a Gaussian N(mu, Sigma) to the features of real images and one to the features of
generated images; the Fréchet (2-Wasserstein) distance between them is

    d^2 = ||mu_1 - mu_2||^2 + Tr(Sigma_1 + Sigma_2 - 2 (Sigma_1 Sigma_2)^{1/2})

(Dowson and Landau 1982). FID is d^2 on the penultimate features of a fixed classifier:
Inception-v3's 2048 pool features in the paper, the 128 features of minigen's shipped
Fashion-MNIST classifier here (``minigen.metrics.features``), so numbers are comparable
between minigen runs, not with Inception FIDs.

The only delicate part is Tr (Sigma_1 Sigma_2)^{1/2}. Sigma_1 Sigma_2 is not symmetric, and a
general matrix square root (scipy's ``sqrtm``, Schur based; or Newton-Schulz iterations)
can return complex entries or diverge when the product is near singular -- which it is
whenever features are dead (zero variance) or there are fewer images than features.
``trace_sqrt_product`` never leaves symmetric matrices instead:

1. Each covariance's symmetric square root from its eigen-decomposition:
   Sigma = U diag(w) U^T  ->  R = U diag(sqrt(w)) U^T  (``eigh``; R R = Sigma).
2. Sigma_1 Sigma_2 = R_1 (R_1 Sigma_2) has the same eigenvalues as the symmetric positive
   semi-definite product M = R_1 Sigma_2 R_1 (XY and YX always share eigenvalues), so
   Tr (Sigma_1 Sigma_2)^{1/2} = sum_i sqrt(lambda_i(M)).
3. M = (R_1 R_2)(R_1 R_2)^T, so sqrt(lambda_i(M)) are the singular values of R_1 R_2:
   Tr (Sigma_1 Sigma_2)^{1/2} = sum_i s_i(R_1 R_2), its nuclear norm. Taking the singular
   values of R_1 R_2 directly, rather than the eigenvalues of M and then their square
   roots, keeps the accuracy: forming M squares the condition number, and a small
   eigenvalue of M carries an error of 1e-16 lambda_max(M), whose square root is 1e-8
   sqrt(lambda_max) -- with a few dozen dead features that was 1e-4 on FID(test, test),
   against 1e-13 this way.

Everything is real; no imaginary part can appear. Rounding can still leave an eigenvalue
that is truly 0 (a singular covariance) as +-1e-16 times the largest; its square root
would be +-1e-8 times the largest's. So, like ``numpy.linalg.matrix_rank``, eigenvalues
below  D * eps * (largest eigenvalue)  are taken as exactly 0 before the square root
(negative ones included); a true eigenvalue that small is below what float64 can resolve
beside the largest anyway. Near-singular covariances need no other regularisation (no
eps added to the diagonal, as pytorch-fid does when sqrtm fails): nothing is inverted.
"""
from ..backend import get_array_module


def gaussian_statistics(features):
    """(mu, Sigma) of the rows of ``features`` (N, D), in float64; Sigma with N - 1 in the
    denominator (``numpy.cov``'s default, as pytorch-fid uses)."""
    xp = get_array_module(features)
    f = xp.asarray(features, dtype=xp.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"gaussian_statistics: expected features (N, D) with N >= 2, got "
                         f"shape {tuple(f.shape)}")
    if not bool(xp.isfinite(f).all()):
        raise ValueError("gaussian_statistics: features contain NaN or infinity")
    mu = f.mean(axis=0)
    centred = f - mu
    return mu, centred.T @ centred / (f.shape[0] - 1)


def _sqrt_eigenvalues(w):
    """sqrt of the eigenvalues ``w`` of a PSD matrix, those below D eps max(w) taken as 0
    (rounding noise around a true 0; see the module docstring)."""
    xp = get_array_module(w)
    tol = w.shape[0] * xp.finfo(w.dtype).eps * max(float(w.max()), 0.0)
    return xp.sqrt(xp.where(w > tol, w, 0.0))


def sqrtm_psd(sigma):
    """The symmetric square root R (R R = Sigma) of a symmetric positive semi-definite matrix,
    U diag(sqrt(w)) U^T from its eigen-decomposition Sigma = U diag(w) U^T."""
    w, u = get_array_module(sigma).linalg.eigh(sigma)
    return (u * _sqrt_eigenvalues(w)) @ u.T


def trace_sqrt_product(sigma1, sigma2):
    """Tr (Sigma_1 Sigma_2)^{1/2} = sum_i sqrt(lambda_i(R_1 Sigma_2 R_1)) = sum of the singular
    values of R_1 R_2, R_k = Sigma_k^{1/2} (see the module docstring: exact and stable)."""
    xp = get_array_module(sigma1, sigma2)
    return xp.linalg.svd(sqrtm_psd(sigma1) @ sqrtm_psd(sigma2), compute_uv=False).sum()


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^{1/2}) as a float (float64 math).

    Arguments in pytorch-fid's order (``calculate_frechet_distance``); covariances are
    symmetrised ((S + S^T) / 2) before use. A result can be about -1e-12 instead of 0
    for identical statistics: it is rounding, left visible rather than clipped.
    """
    xp = get_array_module(mu1, sigma1, mu2, sigma2)
    mu1, mu2 = (xp.atleast_1d(xp.asarray(m, dtype=xp.float64)) for m in (mu1, mu2))
    sigma1, sigma2 = (xp.atleast_2d(xp.asarray(s, dtype=xp.float64)) for s in (sigma1, sigma2))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"frechet_distance: expected mu1, mu2 of shape (D,) and sigma1, sigma2 "
                         f"of shape (D, D), got {tuple(mu1.shape)}, {tuple(sigma1.shape)}, "
                         f"{tuple(mu2.shape)}, {tuple(sigma2.shape)}")
    if not all(bool(xp.isfinite(a).all()) for a in (mu1, sigma1, mu2, sigma2)):
        raise ValueError("frechet_distance: the statistics contain NaN or infinity")
    sigma1, sigma2 = 0.5 * (sigma1 + sigma1.T), 0.5 * (sigma2 + sigma2.T)
    diff = mu1 - mu2
    return float(diff @ diff + xp.trace(sigma1) + xp.trace(sigma2)
                 - 2.0 * trace_sqrt_product(sigma1, sigma2))


def fid(images_a, images_b, model=None, batch_size=500):
    """FID between two sets of images (N, 784) / (N, 1, 28, 28) with pixels in [0, 1], on the
    penultimate features of the shipped Fashion-MNIST classifier (or ``model``)."""
    from .features import embed
    stats = [gaussian_statistics(embed(images, model=model, batch_size=batch_size)[0])
             for images in (images_a, images_b)]
    return frechet_distance(*stats[0], *stats[1])
