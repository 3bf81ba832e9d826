// Fused elementwise CUDA kernels, loaded by kernels/cuda.py: each replaces a chain of
// NumPy/CuPy passes (one temporary array per step) by one pass over memory.
//
// Each kernel does its reference's operations in the reference's order and precision, so
// where no transcendental function is involved (leaky ReLU, the backward passes given the
// saved values) it equals the reference bit for bit. exp and log1p come from different math
// libraries (CUDA's, glibc's under emulation, NumPy's own vectorised ones), which may round
// differently in the last bit or two: there the tests allow a few units in the last place.
//
// References:
//   leaky ReLU     minigen/ops/activation.py          LeakyReLU
//   sigmoid-BCE    minigen/nn/functional.py           BCEWithLogits
//   reparameterise minigen/models/vae.py              reparameterize (and its autograd backward)

#include "common.cuh"

// ------------------------------------------------------------------------------ leaky ReLU
// y = x for x > 0, slope * x otherwise (a NaN stays NaN).
template <typename T>
__device__ void leaky_relu_forward(const T* x, T* y, T slope, long long total) {
    GRID_STRIDE_LOOP(k, total) { y[k] = x[k] > 0 ? x[k] : x[k] * slope; }
}

// dx = g * (1 for x > 0, slope otherwise)
template <typename T>
__device__ void leaky_relu_backward(const T* g, const T* x, T* gx, T slope, long long total) {
    GRID_STRIDE_LOOP(k, total) { gx[k] = g[k] * (x[k] > 0 ? T(1) : slope); }
}

// ------------------------------------------------------------------------------ sigmoid-BCE
// loss = max(x, 0) - x t + log(1 + e), e = exp(-|x|): never exponentiates a positive number and
// never takes log(0). e is kept for the backward.
template <typename T>
__device__ void bce_with_logits_forward(const T* x, const T* t, T* loss, T* e, long long total) {
    GRID_STRIDE_LOOP(k, total) {
        T xk = x[k];
        T ek = exp(-fabs(xk));
        e[k] = ek;
        loss[k] = ((xk < 0 ? T(0) : xk) - xk * t[k]) + log1p(ek);   // max(x, 0) keeps a NaN
    }
}

// dL/dx = g * (sigmoid(x) - t), sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0.
// g is one number (g_stride 0: a 'sum' or 'mean' loss) or one per element (g_stride 1).
template <typename T>
__device__ void bce_with_logits_backward(const T* g, long long g_stride, const T* x,
                                         const T* t, const T* e, T* gx, long long total) {
    GRID_STRIDE_LOOP(k, total) {
        T s = (x[k] >= 0 ? T(1) : e[k]) / (T(1) + e[k]);
        gx[k] = g[k * g_stride] * (s - t[k]);
    }
}

// ------------------------------------------------------------------------------ reparameterise
// z = mu + sigma * eps with sigma = exp(logvar / 2) (Kingma & Welling 2014, eq. 10); sigma
// is kept for the backward.
template <typename T>
__device__ void reparameterize_forward(const T* mu, const T* logvar, const T* eps, T* z,
                                       T* sigma, long long total) {
    GRID_STRIDE_LOOP(k, total) {
        T s = exp(T(0.5) * logvar[k]);
        sigma[k] = s;
        z[k] = mu[k] + s * eps[k];
    }
}

// dL/dlogvar = g * eps * sigma / 2, in the order autograd multiplies it out:
// ((g * eps) * sigma) * 0.5 (dL/dmu is g itself).
template <typename T>
__device__ void reparameterize_backward(const T* g, const T* eps, const T* sigma, T* glogvar,
                                        long long total) {
    GRID_STRIDE_LOOP(k, total) { glogvar[k] = g[k] * eps[k] * sigma[k] * T(0.5); }
}

// ------------------------------------------------------------------------------ entry points
#define ELEMENTWISE_KERNELS(T, SUFFIX)                                                        \
    extern "C" __global__ void leaky_relu_forward_##SUFFIX(const T* x, T* y, T slope,         \
                                                           long long total) {                 \
        leaky_relu_forward<T>(x, y, slope, total);                                            \
    }                                                                                         \
    extern "C" __global__ void leaky_relu_backward_##SUFFIX(const T* g, const T* x, T* gx,    \
                                                            T slope, long long total) {       \
        leaky_relu_backward<T>(g, x, gx, slope, total);                                       \
    }                                                                                         \
    extern "C" __global__ void bce_with_logits_forward_##SUFFIX(const T* x, const T* t,       \
                                                                T* loss, T* e,                \
                                                                long long total) {            \
        bce_with_logits_forward<T>(x, t, loss, e, total);                                     \
    }                                                                                         \
    extern "C" __global__ void bce_with_logits_backward_##SUFFIX(                             \
        const T* g, long long g_stride, const T* x, const T* t, const T* e, T* gx,            \
        long long total) {                                                                    \
        bce_with_logits_backward<T>(g, g_stride, x, t, e, gx, total);                         \
    }                                                                                         \
    extern "C" __global__ void reparameterize_forward_##SUFFIX(                               \
        const T* mu, const T* logvar, const T* eps, T* z, T* sigma, long long total) {        \
        reparameterize_forward<T>(mu, logvar, eps, z, sigma, total);                          \
    }                                                                                         \
    extern "C" __global__ void reparameterize_backward_##SUFFIX(                              \
        const T* g, const T* eps, const T* sigma, T* glogvar, long long total) {              \
        reparameterize_backward<T>(g, eps, sigma, glogvar, total);                            \
    }

ELEMENTWISE_KERNELS(float, f32)
ELEMENTWISE_KERNELS(double, f64)
