"""One module per trainable model for the command line (``minigen train NAME``).

Each module defines

* ``add_arguments(parser)`` -- its options;
* ``train(args)`` -- the training run (a ``minigen.runs.Run`` folder);
* ``sample(args, state)`` -- optional: images from a checkpoint (``minigen sample``).
"""
import importlib

# model name -> module; the module's checkpoints carry "model": NAME so `sample` can find it
MODELS = {
    "vae": "minigen.commands.vae",
    "rbm": "minigen.commands.rbm",
    "som": "minigen.commands.som",
    "kmeans": "minigen.commands.kmeans",
    "gmm": "minigen.commands.gmm",
}


def load(name):
    return importlib.import_module(MODELS[name])


def available():
    """The models whose command module is present, in MODELS order."""
    found = {}
    for name in MODELS:
        try:
            found[name] = load(name)
        except ModuleNotFoundError as e:
            if e.name != MODELS[name]:
                raise
    return found
