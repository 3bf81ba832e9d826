// cuda_host.h -- the CUDA C kernels of kernels/*.cu, compiled for the CPU (host emulation).
//
// No GPU is needed to run a kernel: kernels/emulation.py compiles the very source that nvcc
// compiles for the GPU with g++, this header in front of it, and calls it through ctypes.
// The tests (`pytest -k emulat`) check every kernel that way against its NumPy reference.
//
// What the header does
//   * __global__, __device__, __host__ and __forceinline__ lose their meaning: a kernel becomes
//     an ordinary C++ function and its helpers ordinary inline functions;
//   * threadIdx, blockIdx, blockDim and gridDim become global variables;
//   * launch() below runs a grid the simple way: block after block and, inside each block,
//     thread after thread, setting the four variables and calling the kernel once per thread.
//     It can also run everything backwards (last block, last thread first): a kernel whose
//     result depends on the order in which its threads run has a race, and shows it there.
//
// Why running threads one at a time gives the GPU's answer
//   Every kernel in kernels/ is a gather: one thread per element it writes, reading only its
//   inputs and writing only its own outputs (no atomics, no thread reads what another one
//   writes). Such threads are independent, so any order -- all at once on a GPU, one after
//   another here -- computes the same numbers. The arithmetic is IEEE on both sides, and
//   neither compiler may fuse a * b + c into one rounding (nvcc gets --fmad=false,
//   g++ -ffp-contract=off), so the only last-bit differences left are the math library's
//   (expf, log1pf, ...: CUDA's, glibc's and NumPy's each round a little differently).
//
// Shared memory and __syncthreads(): avoided by design, not emulated
//   A barrier cannot be honoured when threads run one at a time: thread 0 would have to stop
//   half-way and wait for threads it has not started yet. (An emulator could run each
//   block's threads phase by phase, as coroutines switching at every barrier; nothing here
//   needs it.) The one place where threads must combine their work -- batch norm's
//   per-channel sums -- uses two launches instead: many threads write partial sums, then one
//   thread per channel adds them up, and the end of the first launch is the barrier (see
//   kernels/norm.cu). A kernel that uses __shared__ or __syncthreads() stops the emulation
//   build with the message below, so it cannot slip in untested.

#ifndef MINIGEN_CUDA_HOST_H
#define MINIGEN_CUDA_HOST_H

#include <math.h>

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#ifdef MINIGEN_EMULATION_SCAN
// emulation.py preprocesses a source with this defined to list its kernels by this marker
#define __global__ minigen_kernel
#else
#define __global__
#endif
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ \
    static_assert(false, "cuda_host.h: __shared__ memory is not emulated (see the header)");
#define __syncthreads() \
    static_assert(false, "cuda_host.h: __syncthreads() is not emulated (see the header)")

struct uint3 { unsigned int x, y, z; };
struct dim3 { unsigned int x, y, z; };

// The thread's coordinates, set by launch() before each call of the kernel.
static uint3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;

namespace emulation {

// ------------------------------------------------------------------ argument types
// A kernel's parameter types as NumPy type codes ("f" float, "q" long long, "f*" float*,
// "const f*" const float*), so that emulation.py can check every argument it is given the
// way a strict CuPy would: right number, right scalar type, array of the right dtype.
template <typename T> struct code;
template <> struct code<float> { static const char* get() { return "f"; } };
template <> struct code<double> { static const char* get() { return "d"; } };
template <> struct code<int> { static const char* get() { return "i"; } };
template <> struct code<unsigned int> { static const char* get() { return "I"; } };
template <> struct code<long> { static const char* get() { return "l"; } };
template <> struct code<long long> { static const char* get() { return "q"; } };
template <> struct code<unsigned long long> { static const char* get() { return "Q"; } };
template <> struct code<bool> { static const char* get() { return "?"; } };
template <> struct code<unsigned char> { static const char* get() { return "B"; } };

template <typename T> struct code<T*> {
    static std::string get() {
        return std::string(std::is_const<T>::value ? "const " : "")
               + code<typename std::remove_cv<T>::type>::get() + "*";
    }
};

template <typename T>
std::string type_code() { return code<typename std::remove_cv<T>::type>::get(); }

template <typename... Args>
const char* signature(void (*)(Args...)) {
    static const std::string joined = [] {
        std::string s;
        for (const std::string& c : {std::string(), type_code<Args>()...})
            if (!c.empty()) s += (s.empty() ? "" : ",") + c;
        return s;
    }();
    return joined.c_str();
}

// ------------------------------------------------------------------ the launcher
// params[i] points at the value of argument i, as in CUDA's cuLaunchKernel (and CuPy).
template <typename... Args, std::size_t... I>
void call(void (*kernel)(Args...), void** params, std::index_sequence<I...>) {
    kernel(*static_cast<typename std::remove_reference<Args>::type*>(params[I])...);
}

template <typename... Args>
void launch(void (*kernel)(Args...), const unsigned int* grid, const unsigned int* block,
            int backwards, void** params) {
    gridDim = {grid[0], grid[1], grid[2]};
    blockDim = {block[0], block[1], block[2]};
    const unsigned long long blocks = 1ull * grid[0] * grid[1] * grid[2];
    const unsigned long long threads = 1ull * block[0] * block[1] * block[2];
    for (unsigned long long b = 0; b < blocks; ++b) {
        const unsigned long long bb = backwards ? blocks - 1 - b : b;
        blockIdx = {unsigned(bb % grid[0]), unsigned(bb / grid[0] % grid[1]),
                    unsigned(bb / grid[0] / grid[1])};
        for (unsigned long long t = 0; t < threads; ++t) {
            const unsigned long long tt = backwards ? threads - 1 - t : t;
            threadIdx = {unsigned(tt % block[0]), unsigned(tt / block[0] % block[1]),
                         unsigned(tt / block[0] / block[1])};
            call(kernel, params, std::index_sequence_for<Args...>{});
        }
    }
}

}  // namespace emulation

// One line per kernel, written by emulation.py after the source: two C entry points that
// ctypes can call, the kernel's signature and its launcher.
#define MINIGEN_EMULATE(name)                                                                  \
    extern "C" const char* minigen_signature_##name() { return emulation::signature(name); }   \
    extern "C" void minigen_launch_##name(const unsigned int* grid, const unsigned int* block, \
                                          int backwards, void** params) {                      \
        emulation::launch(name, grid, block, backwards, params);                               \
    }

#endif  // MINIGEN_CUDA_HOST_H
