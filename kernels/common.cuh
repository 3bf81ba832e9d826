// common.cuh -- what every kernel source in kernels/ shares. Included by each .cu with
// #include "common.cuh"; cuda.py pastes it into the source before CuPy compiles the string.
//
// Conventions of the kernels (see also cuda_host.h for how the tests run them on the CPU):
//   * gather: one thread per element a kernel writes; no two threads write one address and
//     no thread reads what another writes, so no atomics and no barriers are needed, and the
//     result does not depend on the order in which threads run;
//   * every entry point ends in `long long total`, its number of work items, and covers them
//     with a grid-stride loop, so any grid does all the work: a small grid loops, a large one
//     leaves threads idle;
//   * each template is instantiated for float and double as <name>_f32 and <name>_f64.

#ifndef MINIGEN_COMMON_CUH
#define MINIGEN_COMMON_CUH

// Work items k = thread, thread + (all threads), ... below total.
#define GRID_STRIDE_LOOP(k, total)                                                     \
    for (long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x; k < (total); \
         k += (long long)blockDim.x * gridDim.x)

#endif  // MINIGEN_COMMON_CUH
