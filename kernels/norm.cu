// CUDA kernels for batch normalisation in training mode (Ioffe & Szegedy 2015, Algorithm 1
// and the backward of section 3), loaded by kernels/cuda.py. The references are in
// minigen/nn/functional.py: _moments (the batch statistics) and Normalize (the
// normalisation and its backward).
//
// Layout: x of shape (N, C, L) -- any (N, C, *spatial) input, L = the product of the spatial
// sizes (1 for an (N, C) input). Channel c holds count = N * L values; its k-th value is
// x[(n * C + c) * L + l] with n = k / L, l = k % L.
//
// Per-channel sums without atomics or shared memory: two launches, and the end of the first
// is the barrier between them.
//   1. channel_partial_sums: P threads per channel; thread (c, p) adds the channel's values
//      k = p, p + P, p + 2P, ... one after another, in double. Threads p and p + 1 read
//      neighbouring addresses, so a warp's loads are coalesced.
//   2. combine_partials: one thread per channel adds its P partial sums, p = 0, 1, ..., P - 1.
// Each sum is thus taken in an order fixed by (N, C, L, P) alone: the same bits on every run,
// on every GPU and under host emulation (atomicAdd would add in whatever order threads come).
// The sums run in double, more accurately than the float32 reference (NumPy adds float32 in
// float32, pairwise); so the statistics equal _moments to within float32 rounding, not bit
// for bit. The tests check the kernels' sums bit for bit against a NumPy sum in the same
// order, and the whole op against the library to a stated tolerance.
//
// The statistics are two-pass, like _moments: first the mean, then the mean of the squared
// deviations from it (E[x^2] - mean^2 cancels catastrophically when |mean| >> std).
//
// The elementwise kernels take the per-channel numbers in the dtype of x and do the
// reference's roundings in its order, so given the same statistics they equal Normalize
// bit for bit.

#include "common.cuh"

// Index in x of the k-th value of channel c.
__device__ inline long long channel_value(int c, long long k, int C, long long L) {
    return (k / L * C + c) * L + k % L;
}

// ------------------------------------------------------------------------------ the sums
// part[c * P + p] = sum over k = p, p + P, ... of x_k (centre == NULL), or of (x_k - centre[c])^2
// (centre = the channel means: the variance's pass).
template <typename T>
__device__ void channel_partial_sums(const T* x, const double* centre, double* part, int C,
                                     long long L, long long count, int P, long long total) {
    GRID_STRIDE_LOOP(i, total) {
        int c = (int)(i / P), p = (int)(i % P);
        double acc = 0.0;
        for (long long k = p; k < count; k += P) {
            double v = (double)x[channel_value(c, k, C, L)];
            if (centre != nullptr) {
                v -= centre[c];
                v *= v;
            }
            acc += v;
        }
        part[i] = acc;
    }
}

// The backward's two sums per channel, in the same order: sum g and sum g * xhat.
template <typename T>
__device__ void channel_partial_grad_sums(const T* g, const T* xhat, double* part_g,
                                          double* part_gx, int C, long long L, long long count,
                                          int P, long long total) {
    GRID_STRIDE_LOOP(i, total) {
        int c = (int)(i / P), p = (int)(i % P);
        double acc_g = 0.0, acc_gx = 0.0;
        for (long long k = p; k < count; k += P) {
            long long at = channel_value(c, k, C, L);
            acc_g += (double)g[at];
            acc_gx += (double)g[at] * (double)xhat[at];
        }
        part_g[i] = acc_g;
        part_gx[i] = acc_gx;
    }
}

// out[c] = part[c, 0] + part[c, 1] + ... + part[c, P - 1], one thread per channel.
extern "C" __global__ void combine_partials(const double* part, double* out, int P,
                                            long long total) {
    GRID_STRIDE_LOOP(c, total) {
        double acc = 0.0;
        for (int p = 0; p < P; ++p) acc += part[c * P + p];
        out[c] = acc;
    }
}

// ------------------------------------------------------------------------------ elementwise
// xhat = (x - mean) * inv_std, and y = xhat * weight + bias (weight == NULL: no affine part,
// y is not written), as Normalize.forward.
template <typename T>
__device__ void batch_norm_normalize(const T* x, const T* mean, const T* inv_std,
                                     const T* weight, const T* bias, T* xhat, T* y, int C,
                                     long long L, long long total) {
    GRID_STRIDE_LOOP(k, total) {
        int c = (int)(k / L % C);
        T h = (x[k] - mean[c]) * inv_std[c];
        xhat[k] = h;
        if (weight != nullptr) y[k] = h * weight[c] + bias[c];
    }
}

// dx = inv_std * (gh - mean(gh) - xhat * mean(gh * xhat)), gh = g * weight (g without affine
// part), as Normalize.backward; mean_gh and mean_ghx are the two per-channel means.
template <typename T>
__device__ void batch_norm_backward_input(const T* g, const T* xhat, const T* inv_std,
                                          const T* weight, const T* mean_gh,
                                          const T* mean_ghx, T* gx, int C, long long L,
                                          long long total) {
    GRID_STRIDE_LOOP(k, total) {
        int c = (int)(k / L % C);
        T gh = weight != nullptr ? g[k] * weight[c] : g[k];
        gx[k] = inv_std[c] * (gh - mean_gh[c] - xhat[k] * mean_ghx[c]);
    }
}

// ------------------------------------------------------------------------------ entry points
#define NORM_KERNELS(T, SUFFIX)                                                               \
    extern "C" __global__ void channel_partial_sums_##SUFFIX(                                 \
        const T* x, const double* centre, double* part, int C, long long L, long long count,  \
        int P, long long total) {                                                             \
        channel_partial_sums<T>(x, centre, part, C, L, count, P, total);                      \
    }                                                                                         \
    extern "C" __global__ void channel_partial_grad_sums_##SUFFIX(                            \
        const T* g, const T* xhat, double* part_g, double* part_gx, int C, long long L,       \
        long long count, int P, long long total) {                                            \
        channel_partial_grad_sums<T>(g, xhat, part_g, part_gx, C, L, count, P, total);        \
    }                                                                                         \
    extern "C" __global__ void batch_norm_normalize_##SUFFIX(                                 \
        const T* x, const T* mean, const T* inv_std, const T* weight, const T* bias, T* xhat, \
        T* y, int C, long long L, long long total) {                                          \
        batch_norm_normalize<T>(x, mean, inv_std, weight, bias, xhat, y, C, L, total);        \
    }                                                                                         \
    extern "C" __global__ void batch_norm_backward_input_##SUFFIX(                            \
        const T* g, const T* xhat, const T* inv_std, const T* weight, const T* mean_gh,       \
        const T* mean_ghx, T* gx, int C, long long L, long long total) {                      \
        batch_norm_backward_input<T>(g, xhat, inv_std, weight, mean_gh, mean_ghx, gx, C, L,   \
                                     total);                                                  \
    }

NORM_KERNELS(float, f32)
NORM_KERNELS(double, f64)
