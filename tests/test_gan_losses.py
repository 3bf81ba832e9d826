"""The GAN family's losses and stabilisers: exact values on tiny inputs worked out by hand,
gradients (and gradients of gradients) against finite differences, planted mistakes caught."""
import math

import numpy as np
import pytest

import minigen as mg
from minigen.models.gan import (LSGAN_BINARY, LSGAN_PEARSON, MinibatchDiscrimination,
                                MinibatchStdDev, Recipe, add_instance_noise, annealed_noise_std,
                                feature_matching_loss, gradient_penalty, hinge_d_loss,
                                hinge_g_loss, lsgan_d_loss, lsgan_g_loss, minibatch_stddev,
                                minimax_d_loss, minimax_g_loss, ns_g_loss, wasserstein_d_loss,
                                wasserstein_g_loss)

LN3 = math.log(3.0)


def f64(a, requires_grad=False):
    return mg.tensor(np.asarray(a, dtype=np.float64), dtype="float64", requires_grad=requires_grad)


def value(t):
    return float(t.item())


# ------------------------------------------------------------------ logistic GAN
# logits 0 and ln 3 give D = 1/2 and 3/4; logits 0 and -ln 3 give D = 1/2 and 1/4
REAL, FAKE = [0.0, LN3], [0.0, -LN3]


def test_minimax_d_loss_is_minus_the_value_function():
    # -[mean(log 1/2, log 3/4) + mean(log(1 - 1/2), log(1 - 1/4))] = ln 2 + ln 4/3 = ln 8/3
    assert value(minimax_d_loss(f64(REAL), f64(FAKE))) == pytest.approx(math.log(8 / 3),
                                                                       rel=1e-15)


def test_one_sided_label_smoothing_moves_only_the_real_target():
    # real target 0.9: -(0.9 log D + 0.1 log(1 - D)) per real sample; fakes keep target 0
    real_terms = [math.log(2), -(0.9 * math.log(3 / 4) + 0.1 * math.log(1 / 4))]
    fake_terms = [math.log(2), math.log(4 / 3)]
    expected = np.mean(real_terms) + np.mean(fake_terms)
    assert value(minimax_d_loss(f64(REAL), f64(FAKE), real_label=0.9)) == \
        pytest.approx(expected, rel=1e-14)
    assert value(Recipe("ns", real_label=0.9).d_loss(f64(REAL), f64(FAKE))) == \
        pytest.approx(expected, rel=1e-14)


def test_generator_losses_minimax_and_non_saturating():
    # minimax: E log(1 - D(G(z))) = mean(log 1/2, log 3/4) = ln(3/8) / 2
    assert value(minimax_g_loss(f64(FAKE))) == pytest.approx(0.5 * math.log(3 / 8), rel=1e-15)
    # non-saturating: -E log D(G(z)) = -mean(log 1/2, log 1/4) = 3/2 ln 2
    assert value(ns_g_loss(f64(FAKE))) == pytest.approx(1.5 * math.log(2), rel=1e-15)


def test_logistic_losses_are_stable_at_huge_logits():
    assert value(minimax_d_loss(f64([1000.0]), f64([-1000.0]))) == 0.0
    assert value(ns_g_loss(f64([-1000.0]))) == 1000.0
    assert value(minimax_g_loss(f64([-1000.0]))) == 0.0
    assert np.isfinite(value(minimax_d_loss(f64([-800.0]), f64([800.0]))))  # 1600, no inf


def test_minimax_generator_loss_saturates_where_non_saturating_does_not():
    # seed 000: when D rejects a fake (logit -10), d/dl E log(1 - D) = -sigmoid(-10) ~ -4.5e-5,
    # while d/dl -log D = -(1 - sigmoid(-10)) ~ -1: the better generator loss keeps learning
    for loss, expected in ((minimax_g_loss, -1 / (1 + math.exp(10))),
                           (ns_g_loss, -1 / (1 + math.exp(-10)))):
        logit = f64([-10.0], requires_grad=True)
        loss(logit).backward()
        assert logit.grad.numpy()[0] == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------ WGAN, LSGAN, hinge
def test_wasserstein_losses():
    real, fake = f64([1.0, 3.0]), f64([0.5, 1.5])
    assert value(wasserstein_d_loss(real, fake)) == -1.0   # E f(G(z)) - E f(x) = 1 - 2
    assert value(wasserstein_g_loss(fake)) == -1.0          # -E f(G(z))


def test_lsgan_both_codings():
    real, fake = f64([1.0, 3.0]), f64([0.0, -1.0])
    a, b, c = LSGAN_BINARY  # (0, 1, 1): mean(0, 4) + mean(0, 1) = 2.5;  G: mean(1, 4) = 2.5
    assert (a, b, c) == (0.0, 1.0, 1.0)
    assert value(lsgan_d_loss(real, fake, a, b)) == 2.5
    assert value(lsgan_g_loss(fake, c)) == 2.5
    a, b, c = LSGAN_PEARSON  # (-1, 1, 0): mean(0, 4) + mean(1, 0) = 2.5;  G: mean(0, 1) = 0.5
    assert (a, b, c) == (-1.0, 1.0, 0.0)
    assert value(lsgan_d_loss(real, fake, a, b)) == 2.5
    assert value(lsgan_g_loss(fake, c)) == 0.5
    assert value(Recipe("lsgan", lsgan_abc=LSGAN_PEARSON).g_loss(fake)) == 0.5


def test_hinge_losses():
    # relu(1 - (0.5, 2)) = (0.5, 0) -> 0.25;  relu(1 + (-2, 0)) = (0, 1) -> 0.5
    assert value(hinge_d_loss(f64([0.5, 2.0]), f64([-2.0, 0.0]))) == 0.75
    assert value(hinge_g_loss(f64([-2.0, 0.0]))) == 1.0


@pytest.mark.parametrize("name", ["minimax", "ns", "wgan", "lsgan", "hinge"])
def test_every_recipe_loss_gradcheck_and_gradgradcheck(name):
    rng = np.random.default_rng(1)
    real, fake = (f64(rng.standard_normal(5) * 2, requires_grad=True) for _ in range(2))
    recipe = Recipe(name, lsgan_abc=LSGAN_PEARSON, real_label=0.9)
    assert mg.gradcheck(recipe.d_loss, [real, fake], atol=1e-8, rtol=1e-7)
    assert mg.gradcheck(recipe.g_loss, [fake], atol=1e-8, rtol=1e-7)
    if name not in ("wgan", "hinge"):  # piecewise linear: second derivatives are 0 a.e.
        assert mg.gradgradcheck(recipe.d_loss, [real, fake], atol=1e-8, rtol=1e-7)
        assert mg.gradgradcheck(recipe.g_loss, [fake], atol=1e-8, rtol=1e-7)


# ------------------------------------------------------------------ WGAN-GP's penalty
def test_penalty_of_a_linear_critic_is_lambda_times_norm_minus_one_squared():
    # f(x) = x . w has gradient w everywhere: penalty = 10 (|(3, 4)| - 1)^2 = 160 for any alpha
    w = f64([[3.0], [4.0]])
    critic = lambda x: (x @ w).reshape(x.shape[0])  # noqa: E731
    real, fake = f64([[1.0, 2.0], [0.0, 5.0]]), f64([[-1.0, 0.0], [2.0, 2.0]])
    assert value(gradient_penalty(critic, real, fake)) == pytest.approx(160.0, rel=1e-15)


def test_penalty_is_taken_at_the_interpolates():
    # f(x) = |x|^2 / 2 has gradient x: at x^ = 0.5 (3, 4) + 0.5 (0, 0) = (1.5, 2), |x^| = 2.5,
    # and at x^ = 0.25 (0, 2) + 0.75 (0, 0) = (0, 0.5): penalty = 10 mean(1.5^2, 0.5^2) = 12.5
    critic = lambda x: 0.5 * (x * x).sum(dim=1)  # noqa: E731
    real, fake = f64([[3.0, 4.0], [0.0, 2.0]]), f64([[0.0, 0.0], [0.0, 0.0]])
    alpha = f64([[0.5], [0.25]])
    assert value(gradient_penalty(critic, real, fake, alpha)) == pytest.approx(12.5, rel=1e-15)
    assert value(gradient_penalty(critic, real, fake, alpha, weight=1.0)) == \
        pytest.approx(1.25, rel=1e-15)


def _mlp_critic(W1, b1, w2):
    """A smooth critic x -> tanh(x W1 + b1) w2, its weights given as arguments."""
    return lambda x: ((x @ W1 + b1).tanh() @ w2).reshape(x.shape[0])


def _critic_weights(rng):
    return [f64(rng.standard_normal((3, 4)), True), f64(rng.standard_normal(4), True),
            f64(rng.standard_normal((4, 1)), True)]


def test_penalty_gradient_reaches_the_critic_gradcheck_and_gradgradcheck():
    rng = np.random.default_rng(2)
    real, fake = f64(rng.standard_normal((5, 3))), f64(rng.standard_normal((5, 3)))
    alpha = f64(rng.random((5, 1)))
    f = lambda *w: gradient_penalty(_mlp_critic(*w), real, fake, alpha)  # noqa: E731
    weights = _critic_weights(rng)
    # the penalty's gradient in the weights is a double backward through the critic ...
    assert mg.gradcheck(f, weights, atol=1e-8, rtol=1e-6)
    # ... and its own derivative (a third derivative of the critic) is right too
    assert mg.gradgradcheck(f, weights, atol=1e-8, rtol=1e-6)


def test_penalty_through_a_convolutional_critic():
    # the DCGAN critic's case: gradients of gradients through conv2d and leaky_relu
    rng = np.random.default_rng(3)
    real, fake = f64(rng.standard_normal((2, 1, 5, 5))), f64(rng.standard_normal((2, 1, 5, 5)))
    alpha = f64(rng.random((2, 1, 1, 1)))
    w_conv, w_out = f64(rng.standard_normal((2, 1, 3, 3)), True), f64(rng.standard_normal(8), True)

    def critic(x, wc, wo):
        h = mg.nn.functional.conv2d(x, wc, stride=2).leaky_relu(0.2)    # (N, 2, 2, 2)
        return h.reshape(x.shape[0], 8) @ wo

    f = lambda wc, wo: gradient_penalty(lambda x: critic(x, wc, wo), real, fake, alpha)  # noqa
    assert mg.gradcheck(f, [w_conv, w_out], atol=1e-8, rtol=1e-6)


def _penalty_without_create_graph(critic, real, fake, alpha, weight=10.0):
    """The classic mistake: the critic's gradient taken as a constant."""
    x_hat = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)
    (g,) = mg.grad(critic(x_hat).sum(), x_hat)  # create_graph forgotten
    return weight * (((g * g).sum(dim=1).sqrt() - 1) ** 2).mean()


def test_a_penalty_without_create_graph_is_caught():
    rng = np.random.default_rng(4)
    real, fake = f64(rng.standard_normal((4, 3))), f64(rng.standard_normal((4, 3)))
    alpha = f64(rng.random((4, 1)))
    weights = _critic_weights(rng)
    planted = lambda *w: _penalty_without_create_graph(_mlp_critic(*w), real, fake, alpha)  # noqa
    # same value ...
    ours = gradient_penalty(_mlp_critic(*weights), real, fake, alpha)
    assert value(planted(*weights)) == pytest.approx(value(ours), rel=1e-14)
    # ... but no gradient reaches the critic, and gradcheck says so
    with pytest.raises(mg.GradcheckError, match="analytic"):
        mg.gradcheck(planted, weights, atol=1e-8, rtol=1e-6)


# ------------------------------------------------------------------ stabilisers
def test_feature_matching_loss():
    # batch means (2, 3) and (1, 1): |(1, 2)|^2 = 5
    real, fake = f64([[1.0, 2.0], [3.0, 4.0]]), f64([[0.0, 0.0], [2.0, 2.0]], True)
    loss = feature_matching_loss(real, fake)
    assert value(loss) == 5.0
    loss.backward()  # d/d fake_ij = -2 diff_j / N = -(1, 2) for each row
    np.testing.assert_array_equal(fake.grad.numpy(), [[-1.0, -2.0], [-1.0, -2.0]])
    rng = np.random.default_rng(5)
    a, b = f64(rng.standard_normal((4, 3)), True), f64(rng.standard_normal((4, 3)), True)
    assert mg.gradcheck(feature_matching_loss, [a, b], atol=1e-8, rtol=1e-7)
    assert mg.gradgradcheck(feature_matching_loss, [a, b], atol=1e-8, rtol=1e-7)


def _minibatch_layer(T):
    layer = MinibatchDiscrimination(2, num_kernels=T.shape[1] // 2, kernel_dim=2)
    layer.to(dtype=np.float64)
    layer.T.data[...] = T
    return layer


def test_minibatch_discrimination_by_hand():
    # T = [I | 2I]: kernel 1 sees f, kernel 2 sees 2f. f1 = (0, 0), f2 = (1, 2):
    # L1 distances 3 and 6, so o_b = exp(0) + exp(-3) and exp(0) + exp(-6) for both rows
    layer = _minibatch_layer(np.hstack([np.eye(2), 2 * np.eye(2)]))
    out = layer(f64([[0.0, 0.0], [1.0, 2.0]])).numpy()
    o = [1 + math.exp(-3), 1 + math.exp(-6)]
    np.testing.assert_allclose(out, [[0.0, 0.0, *o], [1.0, 2.0, *o]], rtol=1e-15)
    assert layer.out_features == 4
    # a batch of copies scores the batch size in every kernel: collapse is visible
    copies = layer(f64([[0.5, -1.0]] * 3)).numpy()
    np.testing.assert_array_equal(copies[:, 2:], 3.0)


def test_minibatch_discrimination_gradcheck():
    rng = np.random.default_rng(6)
    layer = _minibatch_layer(rng.standard_normal((2, 6)))
    layer.T.requires_grad_(True)
    f = f64(rng.standard_normal((4, 2)), True)
    T = layer.T
    assert mg.gradcheck(lambda x, t: layer(x), [f, T], atol=1e-8, rtol=1e-6)
    assert mg.gradgradcheck(lambda x, t: layer(x), [f, T], atol=1e-8, rtol=1e-6)


def test_minibatch_stddev_by_hand():
    # feature 1: (1, 3), biased std 1; feature 2: (0, 0), std 0; s = (sqrt(1+e) + sqrt(e)) / 2
    out = minibatch_stddev(f64([[1.0, 0.0], [3.0, 0.0]])).numpy()
    s = (math.sqrt(1 + 1e-8) + math.sqrt(1e-8)) / 2
    np.testing.assert_allclose(out, [[1.0, 0.0, s], [3.0, 0.0, s]], rtol=1e-15)
    assert MinibatchStdDev(2).out_features == 3
    rng = np.random.default_rng(7)
    f = f64(rng.standard_normal((4, 3)), True)
    assert mg.gradcheck(minibatch_stddev, [f], atol=1e-8, rtol=1e-6)
    assert mg.gradgradcheck(minibatch_stddev, [f], atol=1e-8, rtol=1e-6)


def test_instance_noise_and_its_annealing():
    x, eps = f64([[1.0, 2.0]]), f64([[0.5, -2.0]])
    np.testing.assert_array_equal(add_instance_noise(x, 0.5, eps).numpy(), [[1.25, 1.0]])
    state = mg.get_rng_state()
    assert add_instance_noise(x, 0.0) is x          # off: no noise drawn at all
    assert mg.get_rng_state() == state
    assert annealed_noise_std(0.2, 0.0) == 0.2
    assert annealed_noise_std(0.2, 0.25) == pytest.approx(0.15)
    assert annealed_noise_std(0.2, 1.0) == 0.0
    assert annealed_noise_std(0.2, 7.0) == 0.0
    # drawn noise has the asked-for scale
    mg.manual_seed(8)
    noisy = add_instance_noise(mg.zeros(20000, 2), 0.3).numpy()
    assert noisy.std() == pytest.approx(0.3, rel=0.02)


def test_recipe_refuses_an_unknown_loss():
    with pytest.raises(ValueError, match="loss must be one of"):
        Recipe("wasserstein")
