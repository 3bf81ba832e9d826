"""Stabilisers from the seeds (000: "Борьба с осцилляцией", "Борьба с затуханием градиента",
"Борьба с mode collapse"), each a small piece a training step can switch on:

* ``feature_matching_loss`` -- G matches the batch mean of an intermediate layer of D
  instead of maximising D's verdict (Salimans et al. 2016, section 3.1): against oscillation.
* ``MinibatchDiscrimination`` -- D sees how close each sample is to the rest of its batch
  (Salimans et al. 2016, section 3.2, the tensor T): a collapsed batch is easy to spot, so
  G is pushed to spread out. ``MinibatchStdDev`` is ProGAN's cheaper version (Karras et al.
  2018, section 3): one extra feature, the batch's average standard deviation.
* ``add_instance_noise`` / ``annealed_noise_std`` -- Gaussian noise on everything D sees,
  annealed to 0 (Sønderby et al. 2017; Arjovsky & Bottou 2017): the real and generated
  distributions overlap, so a perfect D and its vanishing gradients cannot arise early.
* one-sided label smoothing -- the ``real_label`` argument of ``losses.minimax_d_loss``
  (Salimans et al. 2016, section 3.4).
"""
from ... import nn
from ...ops import cat
from ...tensor import ones, randn_like


# ------------------------------------------------------------------ feature matching
def feature_matching_loss(real_features, fake_features):
    """|| E_x f(x) - E_z f(G(z)) ||_2^2 (Salimans et al. 2016, eq. in section 3.1), with f
    the features of an intermediate layer of D, (N, F) each. The expectations are batch
    means; the real features are a target (computed without gradient by the caller)."""
    diff = real_features.mean(dim=0) - fake_features.mean(dim=0)
    return (diff * diff).sum()


# ------------------------------------------------------------------ minibatch discrimination
class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016, section 3.2. For features f(x_i) in R^A of a batch:

        M_i = f(x_i) T               T in R^{A x B x C}, so M_i is B rows of length C
        c_b(x_i, x_j) = exp(-|| M_{i,b} - M_{j,b} ||_1)
        o(x_i)_b = sum_j c_b(x_i, x_j)                            (j runs over the batch, i too)

    and returns [f(x_i), o(x_i)] (N, A + B): B "closeness" features per sample, which are
    large when the batch holds near-copies of x_i. The N x N pairs make it quadratic in the
    batch size (keep B * C small for big batches). T starts N(0, 0.02^2) like a DCGAN's weights.
    """

    def __init__(self, in_features, num_kernels=16, kernel_dim=8):
        super().__init__()
        self.in_features, self.num_kernels, self.kernel_dim = in_features, num_kernels, kernel_dim
        self.T = nn.Parameter(ones(in_features, num_kernels * kernel_dim))
        nn.init.normal_(self.T, 0.0, 0.02)

    def forward(self, f):
        n, b = f.shape[0], self.num_kernels
        m = (f @ self.T).reshape(n, b, self.kernel_dim)                  # M_i: (N, B, C)
        l1 = 0
        for c in range(self.kernel_dim):  # || M_ib - M_jb ||_1, one coordinate at a time:
            mc = m[:, :, c]               # C passes over (N, N, B) are faster than one sum
            l1 = l1 + (mc.reshape(n, 1, b) - mc.reshape(1, n, b)).abs()  # over a short axis
        o = (-l1).exp().sum(dim=1)                                       # (N, B)
        return cat([f, o], dim=1)

    @property
    def out_features(self):
        return self.in_features + self.num_kernels

    def extra_repr(self):
        return f"{self.in_features}, num_kernels={self.num_kernels}, kernel_dim={self.kernel_dim}"


def minibatch_stddev(f, eps=1e-8):
    """[f, s] with s = mean over features of the batch standard deviation of each feature,
    sqrt(Var_n f + eps) (biased variance; Karras et al. 2018, section 3): one number that is
    ~0 for a collapsed batch, appended as a constant column (N, F + 1)."""
    centred = f - f.mean(dim=0, keepdim=True)
    s = ((centred * centred).mean(dim=0) + eps).sqrt().mean()
    return cat([f, s * ones(f.shape[0], 1, dtype=f.dtype, device=f.device)], dim=1)


class MinibatchStdDev(nn.Module):
    """``minibatch_stddev`` as a layer (no parameters)."""

    def __init__(self, in_features):
        super().__init__()
        self.in_features = in_features

    def forward(self, f):
        return minibatch_stddev(f)

    @property
    def out_features(self):
        return self.in_features + 1


# ------------------------------------------------------------------ instance noise
def annealed_noise_std(initial, progress):
    """Linear annealing: ``initial`` at progress 0, falling to 0 at progress >= 1."""
    return initial * max(0.0, 1.0 - progress)


def add_instance_noise(x, std, noise=None):
    """x + std * eps, eps ~ N(0, I) (drawn from minigen's generator unless ``noise`` is given).
    Applied to real and generated samples alike, whenever D looks at them."""
    if not std:
        return x
    return x + std * (randn_like(x) if noise is None else noise)
