// CUDA kernels for convolution and pooling, loaded by kernels/cuda.py (CuPy RawModule).
//
// They compute exactly what the NumPy references in minigen/ops/conv.py compute, with the
// same layouts:
//   image    (N, C, H, W)
//   columns  (C, kH, kW, N, oH, oW)   -- the right operand of one GEMM: weight @ columns
//   argmax   (N, C, oH, oW) int64, flat index h * W + w inside the input plane
//
// Every kernel is a gather (see common.cuh). The sums (col2im, max-pool backward) add their
// terms in the reference's order, so the results equal the reference bit for bit.

#include "common.cuh"

__device__ inline int imax(int a, int b) { return a > b ? a : b; }
__device__ inline int imin(int a, int b) { return a < b ? a : b; }

// ------------------------------------------------------------------------------ im2col
// Column entry (c, i, j, n, oh, ow) is pixel (oh * sH + i * dH - pH, ow * sW + j * dW - pW)
// of plane (n, c), or 0 where that pixel lies in the zero padding.
template <typename T>
__device__ void im2col(const T* x, T* cols, int N, int C, int H, int W, int kH, int kW,
                       int sH, int sW, int pH, int pW, int dH, int dW, int oH, int oW,
                       long long total) {
    GRID_STRIDE_LOOP(k, total) {
        long long r = k;
        int ow = r % oW; r /= oW;
        int oh = r % oH; r /= oH;
        int n = r % N;   r /= N;
        int j = r % kW;  r /= kW;
        int i = r % kH;  r /= kH;
        int c = (int)r;
        int h = oh * sH + i * dH - pH;
        int w = ow * sW + j * dW - pW;
        bool inside = h >= 0 && h < H && w >= 0 && w < W;
        cols[k] = inside ? x[(((long long)n * C + c) * H + h) * W + w] : T(0);
    }
}

// ------------------------------------------------------------------------------ col2im
// The adjoint of im2col. Pixel (n, c, h, w) sums the column entries that read it: tap i of
// window oh reads row h when oh * sH = h + pH - i * dH, so for each tap there is at most one
// window row (and likewise one window column). Taps go in (i, j) order, as in the reference.
template <typename T>
__device__ void col2im(const T* cols, T* x, int N, int C, int H, int W, int kH, int kW,
                       int sH, int sW, int pH, int pW, int dH, int dW, int oH, int oW,
                       long long total) {
    GRID_STRIDE_LOOP(k, total) {
        long long r = k;
        int w = r % W; r /= W;
        int h = r % H; r /= H;
        int c = r % C; r /= C;
        int n = (int)r;
        T acc = T(0);
        for (int i = 0; i < kH; ++i) {
            int row = h + pH - i * dH;
            if (row < 0 || row % sH != 0 || row / sH >= oH) continue;
            int oh = row / sH;
            for (int j = 0; j < kW; ++j) {
                int col = w + pW - j * dW;
                if (col < 0 || col % sW != 0 || col / sW >= oW) continue;
                int ow = col / sW;
                acc += cols[((((long long)c * kH + i) * kW + j) * N + n) * oH * oW
                            + (long long)oh * oW + ow];
            }
        }
        x[k] = acc;
    }
}

// ------------------------------------------------------------------------------ max-pool
// One thread per window. Padding is never chosen: start from the window's first real pixel,
// then the first strictly larger value wins and the first NaN beats everything (np.argmax).
template <typename T>
__device__ void max_pool_forward(const T* x, T* out, long long* arg, int N, int C, int H,
                                 int W, int kH, int kW, int sH, int sW, int pH, int pW,
                                 int oH, int oW, long long total) {
    GRID_STRIDE_LOOP(k, total) {
        long long r = k;
        int ow = r % oW; r /= oW;
        int oh = r % oH; r /= oH;
        long long plane = r;  // n * C + c
        const T* xp = x + plane * H * W;
        int h0 = oh * sH - pH, w0 = ow * sW - pW;
        int h_lo = imax(h0, 0), h_hi = imin(h0 + kH, H);
        int w_lo = imax(w0, 0), w_hi = imin(w0 + kW, W);
        T best = xp[h_lo * W + w_lo];
        long long best_at = h_lo * W + w_lo;
        for (int h = h_lo; h < h_hi; ++h) {
            for (int w = w_lo; w < w_hi; ++w) {
                T v = xp[h * W + w];
                if (v > best || (v != v && best == best)) {
                    best = v;
                    best_at = h * W + w;
                }
            }
        }
        out[k] = best;
        arg[k] = best_at;
    }
}

// The adjoint of "gather at argmax": pixel (h, w) sums the gradients of the windows that
// chose it. The windows holding row h are oh in [ceil((h + pH - kH + 1) / sH), (h + pH) / sH],
// visited in (oh, ow) order as the reference's np.add.at does.
template <typename T>
__device__ void max_pool_backward(const T* g, const long long* arg, T* gx, int N, int C,
                                  int H, int W, int kH, int kW, int sH, int sW, int pH,
                                  int pW, int oH, int oW, long long total) {
    GRID_STRIDE_LOOP(k, total) {
        long long r = k;
        int w = r % W; r /= W;
        int h = r % H; r /= H;
        long long plane = r;
        long long here = (long long)h * W + w;
        int oh_lo = imax(0, (h + pH - kH + sH) / sH);  // ceil((h + pH - kH + 1) / sH), >= 0
        int oh_hi = imin(oH - 1, (h + pH) / sH);
        int ow_lo = imax(0, (w + pW - kW + sW) / sW);
        int ow_hi = imin(oW - 1, (w + pW) / sW);
        T acc = T(0);
        for (int oh = oh_lo; oh <= oh_hi; ++oh) {
            for (int ow = ow_lo; ow <= ow_hi; ++ow) {
                long long o = (plane * oH + oh) * oW + ow;
                if (arg[o] == here) acc += g[o];
            }
        }
        gx[k] = acc;
    }
}

// ------------------------------------------------------------------------------ entry points
#define CONV_KERNELS(T, SUFFIX)                                                              \
    extern "C" __global__ void im2col_##SUFFIX(                                              \
        const T* x, T* cols, int N, int C, int H, int W, int kH, int kW, int sH, int sW,     \
        int pH, int pW, int dH, int dW, int oH, int oW, long long total) {                   \
        im2col<T>(x, cols, N, C, H, W, kH, kW, sH, sW, pH, pW, dH, dW, oH, oW, total);       \
    }                                                                                        \
    extern "C" __global__ void col2im_##SUFFIX(                                              \
        const T* cols, T* x, int N, int C, int H, int W, int kH, int kW, int sH, int sW,     \
        int pH, int pW, int dH, int dW, int oH, int oW, long long total) {                   \
        col2im<T>(cols, x, N, C, H, W, kH, kW, sH, sW, pH, pW, dH, dW, oH, oW, total);       \
    }                                                                                        \
    extern "C" __global__ void max_pool_forward_##SUFFIX(                                    \
        const T* x, T* out, long long* arg, int N, int C, int H, int W, int kH, int kW,      \
        int sH, int sW, int pH, int pW, int oH, int oW, long long total) {                   \
        max_pool_forward<T>(x, out, arg, N, C, H, W, kH, kW, sH, sW, pH, pW, oH, oW, total); \
    }                                                                                        \
    extern "C" __global__ void max_pool_backward_##SUFFIX(                                   \
        const T* g, const long long* arg, T* gx, int N, int C, int H, int W, int kH, int kW, \
        int sH, int sW, int pH, int pW, int oH, int oW, long long total) {                   \
        max_pool_backward<T>(g, arg, gx, N, C, H, W, kH, kW, sH, sW, pH, pW, oH, oW, total); \
    }

CONV_KERNELS(float, f32)
CONV_KERNELS(double, f64)
