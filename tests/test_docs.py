"""Every ```python block of README.md (and of any other Markdown file shipped in the repo) runs,
in order, in one namespace per file -- so a documented example can never silently break.

Blocks that import torch are skipped, saying so, where torch is not installed; nothing else is.
"""
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".venv", ".git", "build", "runs", ".pytest_cache", ".hypothesis", "node_modules"}
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```", re.M | re.S)


def markdown_files():
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        found += [Path(folder) / f for f in sorted(files) if f.endswith(".md")]
    return found


def python_blocks(text):
    return [m.group(1) for m in FENCE.finditer(text)]


def test_the_readme_has_examples():
    assert len(python_blocks((ROOT / "README.md").read_text())) >= 3


def test_block_extraction_catches_a_failing_example():
    """The extractor finds fenced blocks only, and a broken block would fail the run."""
    text = "intro\n```python\nx = 1\n```\n```bash\nexit 1\n```\n```python\nraise ValueError\n```\n"
    blocks = python_blocks(text)
    assert blocks == ["x = 1\n", "raise ValueError\n"]
    with pytest.raises(ValueError):
        run_blocks(blocks, "planted.md")


def run_blocks(blocks, name):
    namespace = {"__name__": "__readme__"}
    for i, block in enumerate(blocks, 1):
        code = compile(block, f"{name}, python block {i}", "exec")
        exec(code, namespace)  # noqa: S102 - running the documentation is the point


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_examples_run(path, tmp_path, monkeypatch):
    blocks = python_blocks(path.read_text())
    if any(re.search(r"^\s*(import torch|from torch)", b, re.M) for b in blocks):
        pytest.importorskip("torch", reason=f"torch not installed: {path.name} has PyTorch examples")
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    run_blocks(blocks, path.name)
