"""Draw the README's example graph: a two-layer classifier's loss after backward, with the
parameters named and the norm of each gradient shown.

    python benchmarks/figures/graph_example.py      # writes benchmarks/figures/graph_example.svg

Needs Graphviz's `dot` (apt-get install graphviz).
"""
import os

import numpy as np

import minigen as mg
from minigen import nn

HERE = os.path.dirname(os.path.abspath(__file__))


def main(path=os.path.join(HERE, "graph_example.svg")):
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    x = mg.randn(5, 4)
    y = np.array([0, 1, 1, 0, 1])
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward(retain_graph=True)          # keep the graph to draw it with its gradients
    names = dict(model.named_parameters(), x=x)
    mg.viz.draw_graph(loss, path, params=names, grads=True,
                      title="cross_entropy(model(x), y) after backward")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
