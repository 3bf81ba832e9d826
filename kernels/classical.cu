// CUDA kernels for the classical models of seed lecture 002 -- K-means, SOM, RBM -- loaded by
// kernels/cuda.py. The references are the NumPy code of minigen/models/: distances.py
// (nearest_reference, to_one), som.py (som_online_epoch_reference), rbm.py
// (sigmoid_bias_reference, bernoulli_reference).
//
// Metric codes (minigen.models.distances): 0 Euclidean, 1 dot product, 2 Manhattan, 3 supremum.
//
// Equality with the references:
//   * nearest_from_gram: given the three terms the reference computes (X W^T, |x|^2, |w|^2)
//     it does the reference's roundings in its order, and takes the first smallest distance
//     (a NaN first, as np.argmin): bit for bit.
//   * sums over features (the SOM's distances, Manhattan) run one after another, where NumPy
//     adds pairwise (and BLAS as it likes): equal where the sums are exact, otherwise to a few
//     roundings -- which only matters when two units are that close to a tie.
//   * the SOM update and the RBM's sigmoid are elementwise in the reference's order; only
//     exp (Gaussian neighbourhood, sigmoid) may differ in the last bit between math libraries.

#include "common.cuh"

// ------------------------------------------------------------------------------ K-means / BMU
// d comes before best in np.argmin's order: smaller, or the first NaN (nothing beats a NaN).
__device__ inline bool before(double d, double best) {
    return d < best || (d != d && best == best);
}

// For each row i of gram = X W^T (N, K): the nearest unit and its distance (as double).
//   metric 0: d = sqrt(max((|x|^2 - 2 x.w) + |w|^2, 0)), metric 1: d = 1 - x.w
template <typename T>
__device__ void nearest_from_gram(const T* gram, const T* x_sq, const T* w_sq, int metric,
                                  long long* index, double* dist, int K, long long total) {
    GRID_STRIDE_LOOP(i, total) {
        long long arg = 0;
        double best = 0.0;
        for (int j = 0; j < K; ++j) {
            T g = gram[i * K + j];
            T d;
            if (metric == 0) {
                T s = x_sq[i] - T(2) * g + w_sq[j];
                d = sqrt(s < 0 ? T(0) : s);            // max(s, 0) keeps a NaN
            } else {
                d = T(1) - g;
            }
            if (j == 0 || before((double)d, best)) {
                best = (double)d;
                arg = j;
            }
        }
        index[i] = arg;
        dist[i] = best;
    }
}

// The distances without a matrix-product form, directly: Manhattan sum |x - w| and supremum
// max |x - w| (a NaN propagates), as distances.pairwise.
template <typename T>
__device__ T direct_distance(const T* x, const T* w, int D, int metric) {
    T acc = T(0);
    for (int f = 0; f < D; ++f) {
        T a = fabs(x[f] - w[f]);
        if (metric == 2) acc += a;
        else if (acc == acc && !(a <= acc)) acc = a;   // larger, or NaN; a NaN acc stays
    }
    return acc;
}

template <typename T>
__device__ void nearest_direct(const T* X, const T* W, int metric, long long* index,
                               double* dist, int K, int D, long long total) {
    GRID_STRIDE_LOOP(i, total) {
        long long arg = 0;
        double best = 0.0;
        for (int j = 0; j < K; ++j) {
            double d = (double)direct_distance(X + i * D, W + (long long)j * D, D, metric);
            if (j == 0 || before(d, best)) {
                best = d;
                arg = j;
            }
        }
        index[i] = arg;
        dist[i] = best;
    }
}

// ------------------------------------------------------------------------------ online SOM
// d(x, w) as distances.to_one: Euclidean sqrt(sum (w - x)^2) and Manhattan, supremum in the
// data's precision, the dot product 1 - w.x in double.
template <typename T>
__device__ double unit_distance(const T* x, const T* w, int D, int metric) {
    if (metric == 1) {
        double acc = 0.0;
        for (int f = 0; f < D; ++f) acc += (double)w[f] * (double)x[f];
        return 1.0 - acc;
    }
    if (metric != 0) return (double)direct_distance(x, w, D, metric);
    T acc = T(0);
    for (int f = 0; f < D; ++f) {
        T d = w[f] - x[f];
        acc += d * d;
    }
    return (double)sqrt(acc);
}

// h(d) for the squared grid distance d2 (som.neighbourhood): kind 0 Gaussian
// exp(-d^2 / (2 sigma^2)), 1 bubble 1[d <= sigma]; sigma <= 0 is winner-take-all.
__device__ inline double neighbourhood(double d2, double sigma, int kind) {
    if (sigma <= 0.0) return d2 == 0.0 ? 1.0 : 0.0;
    if (kind == 0) return exp(-d2 / (2.0 * sigma * sigma));
    return d2 <= sigma * sigma ? 1.0 : 0.0;
}

// The smallest normal number of T (FLT_MIN, DBL_MIN): a rate below it is set to 0, as
// som.unit_rates does (a subnormal rate moves no weight that matters).
template <typename T>
__device__ inline T smallest_normal() {
    return sizeof(T) == 4 ? (T)1.17549435e-38f : (T)2.2250738585072014e-308;
}

// dist[j] = d(X[order[t]], W_j): the distances the first winner is chosen from.
template <typename T>
__device__ void som_distances(const T* X, const long long* order, long long t, const T* W,
                              double* dist, int D, int metric, long long total) {
    GRID_STRIDE_LOOP(j, total) {
        dist[j] = unit_distance(X + order[t] * D, W + j * D, D, metric);
    }
}

// Step t of the online epoch, one thread per unit j (K = total units):
//   competition   c = argmin_j dist_in[j] (every thread finds the same c)
//   adaptation    W_j += alpha_t h(d_jc, sigma_t) (x_t - W_j)
// and, fused with it, dist_out[j] = d(x_{t+1}, W_j) for the next step's competition (the
// host swaps dist_in and dist_out between launches). Thread 0 records the winner.
template <typename T>
__device__ void som_update(const T* X, const long long* order, long long t, long long n, T* W,
                           const double* grid_d2, const double* alphas, const double* sigmas,
                           int metric, int kind, const double* dist_in, double* dist_out,
                           long long* winners, int D, long long total) {
    GRID_STRIDE_LOOP(j, total) {
        int c = 0;
        for (int u = 1; u < total; ++u)
            if (before(dist_in[u], dist_in[c])) c = u;
        T rate = (T)(alphas[t] * neighbourhood(grid_d2[c * total + j], sigmas[t], kind));
        if (rate < smallest_normal<T>()) rate = T(0);
        const T* x = X + order[t] * D;
        T* w = W + j * D;
        for (int f = 0; f < D; ++f) w[f] += rate * (x[f] - w[f]);
        if (t + 1 < n) dist_out[j] = unit_distance(X + order[t + 1] * D, w, D, metric);
        if (j == 0) winners[t] = c;
    }
}

// ------------------------------------------------------------------------------ RBM
// probs = sigmoid(pre + bias) = 1 / (1 + exp(-(pre + bias))), bias (M,) added to each row.
template <typename T>
__device__ T sigmoid_of_sum(T pre, T bias) {
    return T(1) / (T(1) + exp(-(pre + bias)));
}

template <typename T>
__device__ void sigmoid_bias(const T* pre, const T* bias, T* probs, int M, long long total) {
    GRID_STRIDE_LOOP(k, total) { probs[k] = sigmoid_of_sum(pre[k], bias[k % M]); }
}

// The Gibbs step's draw: sample = 1[u < probs], from uniforms u drawn on the host by the
// seeded generator (so a GPU run draws what a CPU run draws).
template <typename T>
__device__ void sigmoid_bernoulli(const T* pre, const T* bias, const float* u, T* probs,
                                  T* sample, int M, long long total) {
    GRID_STRIDE_LOOP(k, total) {
        T p = sigmoid_of_sum(pre[k], bias[k % M]);
        probs[k] = p;
        sample[k] = u[k] < p ? T(1) : T(0);
    }
}

// ------------------------------------------------------------------------------ entry points
#define CLASSICAL_KERNELS(T, SUFFIX)                                                          \
    extern "C" __global__ void nearest_from_gram_##SUFFIX(                                    \
        const T* gram, const T* x_sq, const T* w_sq, int metric, long long* index,            \
        double* dist, int K, long long total) {                                               \
        nearest_from_gram<T>(gram, x_sq, w_sq, metric, index, dist, K, total);                \
    }                                                                                         \
    extern "C" __global__ void nearest_direct_##SUFFIX(const T* X, const T* W, int metric,    \
                                                       long long* index, double* dist, int K, \
                                                       int D, long long total) {              \
        nearest_direct<T>(X, W, metric, index, dist, K, D, total);                            \
    }                                                                                         \
    extern "C" __global__ void som_distances_##SUFFIX(const T* X, const long long* order,     \
                                                      long long t, const T* W, double* dist,  \
                                                      int D, int metric, long long total) {   \
        som_distances<T>(X, order, t, W, dist, D, metric, total);                             \
    }                                                                                         \
    extern "C" __global__ void som_update_##SUFFIX(                                           \
        const T* X, const long long* order, long long t, long long n, T* W,                   \
        const double* grid_d2, const double* alphas, const double* sigmas, int metric,        \
        int kind, const double* dist_in, double* dist_out, long long* winners, int D,         \
        long long total) {                                                                    \
        som_update<T>(X, order, t, n, W, grid_d2, alphas, sigmas, metric, kind, dist_in,      \
                      dist_out, winners, D, total);                                           \
    }                                                                                         \
    extern "C" __global__ void sigmoid_bias_##SUFFIX(const T* pre, const T* bias, T* probs,   \
                                                     int M, long long total) {                \
        sigmoid_bias<T>(pre, bias, probs, M, total);                                          \
    }                                                                                         \
    extern "C" __global__ void sigmoid_bernoulli_##SUFFIX(const T* pre, const T* bias,        \
                                                          const float* u, T* probs,           \
                                                          T* sample, int M,                   \
                                                          long long total) {                  \
        sigmoid_bernoulli<T>(pre, bias, u, probs, sample, M, total);                          \
    }

CLASSICAL_KERNELS(float, f32)
CLASSICAL_KERNELS(double, f64)
