"""The image history buffer of Shrivastava et al. 2017, as CycleGAN uses it (Zhu et al. 2017,
section 4, "Training details": "we update the discriminators using a history of generated
images rather than the ones produced by the latest generators ... an image buffer that
stores the 50 previously created images").

A discriminator shown only the newest fakes can chase the generator around in circles (it
forgets what older generators did, so the generator can go back to it). Mixing in older
fakes makes D remember. The rule of the reference code, one image at a time:

    while the buffer holds fewer than ``size`` images: store the new image and return it;
    then, with probability 1/2: return a stored image chosen uniformly and put the new one
                                in its place;
         otherwise:             return the new image (the buffer is unchanged).
"""
import json

import numpy as np

from ...backend import get_array_module, to_numpy, xp_for


class ImagePool:
    """``query(images)`` -> as many images, each the new one or an older one (module
    docstring). Works on NumPy or CuPy arrays (N, ...); ``size=0`` returns the batch itself.

    The coin flips and the choice of slot come from a NumPy generator of the pool's own
    (``seed``), saved by ``state_dict`` with the stored images, so a resumed run makes the
    same choices.
    """

    def __init__(self, size=50, seed=0):
        if size < 0:
            raise ValueError(f"ImagePool: size must be >= 0, got {size}")
        self.size = int(size)
        self.images = []
        self.rng = np.random.default_rng(seed)

    def query(self, images):
        if self.size == 0:
            return images
        xp = get_array_module(images)
        out = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image.copy())
                out.append(image)
            elif self.rng.random() < 0.5:
                slot = int(self.rng.integers(self.size))
                out.append(self.images[slot])
                self.images[slot] = image.copy()
            else:
                out.append(image)
        return xp.stack(out)

    def __len__(self):
        return len(self.images)

    def state_dict(self):
        """The stored images (one array) and the generator's state (JSON: 128-bit integers)."""
        stored = np.stack([to_numpy(i) for i in self.images]) if self.images else np.zeros(0)
        return {"size": self.size, "images": stored,
                "rng": json.dumps(self.rng.bit_generator.state)}

    def load_state_dict(self, state, device="cpu"):
        if int(state["size"]) != self.size:
            raise ValueError(f"ImagePool: a pool of size {int(state['size'])} cannot be loaded "
                             f"into one of size {self.size}")
        xp = xp_for(device)
        self.images = [xp.asarray(image) for image in np.asarray(state["images"])]
        rng = state["rng"]
        self.rng.bit_generator.state = json.loads(str(rng.item() if hasattr(rng, "item") else rng))
