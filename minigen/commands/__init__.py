"""One module per trainable model for the command line (``minigen train NAME``).

Each module defines

* ``add_arguments(parser)`` -- its options;
* ``train(args)`` -- the training run (a ``minigen.runs.Run`` folder);
* ``sample(args, state)`` -- optional: images from a checkpoint (``minigen sample``);
* ``draw(state, n, seed=0, device="cpu")`` and ``image_shape(state)`` -- optional: the raw
  samples as a float32 (n, D) array (``minigen sample --format npy``, ``minigen eval``).
"""
import importlib

# model name -> module; the module's checkpoints carry "model": NAME so `sample` can find it
MODELS = {
    "vae": "minigen.commands.vae",
    "gan": "minigen.commands.gan",
    "aae": "minigen.commands.aae",
    "vaegan": "minigen.commands.vaegan",
    "catvae": "minigen.commands.catvae",
    "rbm": "minigen.commands.rbm",
    "som": "minigen.commands.som",
    "kmeans": "minigen.commands.kmeans",
    "gmm": "minigen.commands.gmm",
    "classifier": "minigen.commands.classifier",
    "dann": "minigen.commands.dann",
    "cyclegan": "minigen.commands.cyclegan",
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


def load_images(name, subset=None):
    """(train X, train y, test X, test y) of an image dataset, or a one-line ``CLIError``
    that says how to get the data (the loader's own message lists every folder it tried)."""
    from ..data import DataNotFoundError, load_dataset
    from ..runs import CLIError
    try:
        x, y = load_dataset(name, "train")
        xt, yt = load_dataset(name, "test")
    except DataNotFoundError as e:
        hint = ("sudo apt-get install dataset-fashion-mnist, or put the four IDX files in a "
                "folder D and set MINIGEN_DATA=D" if name == "fashion-mnist" else
                "put the four IDX files in D/mnist/ and set MINIGEN_DATA=D")
        raise CLIError(f"{name} data not found ({str(e).splitlines()[0].split(': looked')[0]}) "
                       f"and could not be downloaded; to get it: {hint}") from None
    if subset:
        x, y, xt, yt = x[:subset], y[:subset], xt[:subset], yt[:subset]
    return x, y, xt, yt
