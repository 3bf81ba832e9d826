"""Large temporaries kept for the next training step instead of freed and made again.

A fresh array of megabytes is fresh memory: the C library's malloc maps new pages for it, or
takes back pages it returned to the system a moment ago, and the first write to each 4 KB
page is a page fault. Whether it does depends on its heap's history: the same conv step,
2 threads, 60 steps, took 24.4 ms with 6,457 page faults per step, and 15.3 ms with none
(malloc told, for the whole process, never to return memory). The largest of those arrays is
im2col's columns (12.8 MB in benchmarks/bench_conv.py's discriminator), made anew at every
step, with the same shape every time. So ``take`` keeps a few such arrays and hands one out
again once nobody holds it any more -- what PyTorch's caching allocator does for GPU memory.

"Nobody holds it" is read from the reference count: the list here, the loop's variable and
``sys.getrefcount``'s own argument make 3. Anything else -- a Function that saved the columns
for its backward, a view of them (a NumPy view keeps its base alive) -- makes more, and then
the array is not handed out.
"""
import math
import sys

import numpy as np

MIN_BYTES = 1 << 20  # smaller arrays come from malloc's heap without faults: not kept
KEEP = 16            # arrays kept, the most recently used: a DCGAN iteration makes about a
                     # dozen large ones, some alive at once (the graph keeps what backward needs)
_kept = []


def take(shape, dtype):
    """An uninitialised array of ``shape`` and ``dtype``: a kept one nobody else holds, or a
    new one (kept from then on when it is large)."""
    dtype = np.dtype(dtype)
    if math.prod(shape) * dtype.itemsize < MIN_BYTES:
        return np.empty(shape, dtype)
    # the most recently used first (the likeliest still in cache); by index, not enumerate,
    # whose reused (i, a) tuple would hold the array too
    for i in range(len(_kept) - 1, -1, -1):
        a = _kept[i]
        if a.shape == shape and a.dtype == dtype and sys.getrefcount(a) == 3:
            _kept.append(_kept.pop(i))  # most recently used last
            return a
    a = np.empty(shape, dtype)
    _kept.append(a)
    if len(_kept) > KEEP:
        del _kept[0]
    return a


def clear():
    """Let go of every kept array (their memory returns when nothing else holds them)."""
    _kept.clear()
