"""minigen.viz.draw_graph: the DOT text's structure (nodes, edges, shapes), module collapsing,
gradient norms, rendering and its errors."""
import re
import shutil

import numpy as np
import pytest

import minigen as mg
from minigen import nn
from minigen.models.vae import ConvVAE


def parse(dot):
    """{node id: (shape, label)} and [(from, to)] from draw_graph's DOT text."""
    nodes = {m[0]: (m[1], m[2]) for m in re.findall(
        r'^\s+(n\d+) \[shape=(\w+),.*?label="(.*?)"\];$', dot, flags=re.M | re.S)}
    edges = re.findall(r"^\s+(n\d+) -> (n\d+);$", dot, flags=re.M)
    return nodes, edges


def ops(nodes):
    return sorted(label for shape, label in nodes.values() if shape == "box")


def by_label(nodes, text):
    return [k for k, (_, label) in nodes.items() if text in label]


def test_x_times_y_plus_z():
    x = mg.randn(3, 4, requires_grad=True)
    y = mg.randn(3, 4, requires_grad=True)
    z = mg.randn(4)
    dot = mg.viz.draw_graph(x * y + z, params={"x": x, "y": y, "z": z})
    assert dot.startswith("digraph minigen {") and dot.rstrip().endswith("}")
    nodes, edges = parse(dot)
    assert ops(nodes) == ["Add", "Mul"]
    records = {label for shape, label in nodes.values() if shape == "record"}
    assert records == {"{x|(3, 4) float32|requires_grad}", "{y|(3, 4) float32|requires_grad}",
                       "{z|(4,) float32|no grad}", "{(3, 4) float32|requires_grad}",
                       "{output|(3, 4) float32|requires_grad}"}
    (mul,), (add,) = by_label(nodes, "Mul"), by_label(nodes, "Add")
    (x_id,), (y_id,), (z_id,) = by_label(nodes, "{x|"), by_label(nodes, "{y|"), by_label(nodes, "{z|")
    (out,) = by_label(nodes, "output")
    (mid,) = [k for k, (_, label) in nodes.items() if label == "{(3, 4) float32|requires_grad}"]
    assert sorted(edges) == sorted([(x_id, mul), (y_id, mul), (mul, mid), (mid, add),
                                    (z_id, add), (add, out)])


def test_shared_input_has_one_node_and_constants_show_their_value():
    x = mg.randn(2, dtype="float64", requires_grad=True)
    nodes, edges = parse(mg.viz.draw_graph((x * x).sum() * 3, params={"x": x}))
    assert ops(nodes) == ["Mul", "Mul", "Sum"]
    (x_id,) = by_label(nodes, "{x|(2,) float64|requires_grad}")
    (square,) = [b for a, b in edges if a == x_id]          # x feeds one op, twice: one edge
    assert nodes[square][1] == "Mul"
    assert by_label(nodes, "= 3|() float64|no grad")


def mlp():
    mg.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


def test_gradient_norms_after_backward():
    model = mlp()
    loss = model(mg.randn(4, 6)).pow(2).mean()
    loss.backward(retain_graph=True)
    nodes, _ = parse(mg.viz.draw_graph(loss, params=model, grads=True))
    w = model[0].weight
    label = nodes[by_label(nodes, "{0.weight|")[0]][1]
    norm = float(np.linalg.norm(w.grad.numpy().astype(np.float64)))
    assert label == f"{{0.weight|(5, 6) float32|requires_grad||grad| = {norm:.4g}}}".replace(
        "||grad|", "|\\|grad\\|")


def test_collapse_makes_one_node_per_module_call():
    model = mlp()
    with mg.viz.trace_modules(model) as trace:
        loss = model(mg.randn(4, 6)).sum()
    full, _ = parse(mg.viz.draw_graph(loss, params=model))
    nodes, edges = parse(mg.viz.draw_graph(loss, collapse=trace))
    calls = [label for shape, label in nodes.values() if shape == "box" and ": " in label]
    assert sorted(c.split("\n")[0] for c in calls) == ["0: Linear", "1: ReLU", "2: Linear"]
    assert "params: 0.weight (5, 6), 0.bias (5,)" in "".join(calls).replace("0.bias (5,), 0.weight (5, 6)",
                                                                         "0.weight (5, 6), 0.bias (5,)")
    assert not by_label(nodes, "0.weight|")          # folded into the module's node
    assert len(nodes) < len(full)
    assert model[0].forward.__func__ is nn.Linear.forward   # the wrappers are gone


def test_a_module_called_twice_gives_two_nodes():
    layer = nn.Linear(3, 3)
    model = nn.Sequential(layer)
    with mg.viz.trace_modules(model) as trace:
        out = model(model(mg.randn(2, 3)))
    nodes, _ = parse(mg.viz.draw_graph(out, collapse=trace))
    heads = sorted(label.split("\n")[0] for shape, label in nodes.values() if shape == "box")
    assert heads == ["0: Linear", "0: Linear (call 2)"]


def test_a_whole_conv_vae_loss():
    mg.manual_seed(0)
    model = ConvVAE(image_shape=(1, 8, 8), hidden=8, latent=2, channels=(2, 3))
    x = mg.rand(2, 64)
    with mg.viz.trace_modules(model) as trace:
        loss = model.elbo_parts(x)["loss"]
    nodes, edges = parse(mg.viz.draw_graph(loss, params=model))
    assert {"Conv2d", "ConvTranspose2d", "Exp", "BCEWithLogits"} <= set(ops(nodes))
    assert by_label(nodes, "{conv1.weight|(2, 1, 4, 4) float32|requires_grad}")
    collapsed, _ = parse(mg.viz.draw_graph(loss, collapse=trace))
    # 2 conv_transpose2d modules (conv op, bias op; 2 weights; 1 tensor inside), 2 conv2d
    # ones (one op, its bias inside; 2 weights) and 5 linear ones (one op, 2 weights) each
    # become one node
    assert len(collapsed) == len(nodes) - 2 * 4 - 2 * 2 - 5 * 2
    assert {"conv1: Conv2d", "deconv2: ConvTranspose2d"} <= {
        label.split("\n")[0] for _, label in collapsed.values()}


def test_a_freed_graph_is_explained():
    x = mg.randn(3, requires_grad=True)
    loss = (x * 2).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="freed by backward.*retain_graph=True"):
        mg.viz.draw_graph(loss)


def test_render_writes_dot_and_svg(tmp_path):
    x = mg.randn(2, requires_grad=True)
    y = x.exp()
    dot_path = tmp_path / "g.dot"
    text = mg.viz.draw_graph(y, str(dot_path))
    assert dot_path.read_text() == text
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot not installed: SVG rendering not checked")
    svg = tmp_path / "g.svg"
    mg.viz.draw_graph(y, str(svg))
    assert "<svg" in svg.read_text() and "Exp" in svg.read_text()


def test_render_without_graphviz_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        mg.viz.draw_graph(mg.randn(2, requires_grad=True).exp(), str(tmp_path / "g.png"))
    with pytest.raises(ValueError, match=r"\.dot, \.svg, \.png or \.pdf"):
        mg.viz.draw_graph(mg.randn(2, requires_grad=True).exp(), str(tmp_path / "g.jpg"))
