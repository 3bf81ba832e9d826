"""Exercise files assembled from the library's own source code.

A solution is minigen's code itself -- the Function classes and functions of ``minigen/ops``,
``minigen/nn``, ``minigen/models`` -- copied into one file by ``inspect.getsource`` at the
moment it is printed; a stub is the same code with the parts the student writes cut out. So
there is one copy of every formula (the library's), and a stub or a solution can never drift
from it: a change to ``Sigmoid.backward`` changes the sigmoid solution with it.

Three kinds of piece make a file:

* ``Lib(obj, write={...})`` -- the source of a library class or function; ``write`` names the
  methods (or, for a function, the function itself) whose bodies the stub leaves to write,
  with a comment for each saying what to return;
* ``Text(code, namespace)`` -- code written for the exercise (a stub's given forward);
* the imports, computed: every global name the pieces use that the file does not define is
  looked up where the piece came from and imported from there (``from minigen.ops.reduce
  import sum``), so the file runs on its own.
"""
import ast
import builtins
import importlib
import inspect
import symtable
import sys
import textwrap
from dataclasses import dataclass, field

NOT_IMPLEMENTED = "NotImplementedError"


@dataclass
class Lib:
    """A library class or function, whole (solution) or with bodies cut out (stub)."""
    obj: object
    write: dict = field(default_factory=dict)  # method name (or "") -> what to write there
    uses: tuple = ()  # names the student will want at hand (imported although unused so far)

    @property
    def module(self):
        return inspect.getmodule(self.obj)

    @property
    def name(self):
        return self.obj.__name__

    def code(self, blank):
        source = textwrap.dedent(inspect.getsource(self.obj))
        source = _absolute_imports(source, self.module.__name__)
        return _blank(source, self.name, self.write) if blank else source


@dataclass
class Quote:
    """Library code shown for reading, as a comment block (a method the solution runs)."""
    obj: object
    title: str

    @property
    def module(self):
        return inspect.getmodule(self.obj)

    def code(self, blank):
        if blank:
            return ""
        source = textwrap.dedent(inspect.getsource(self.obj)).rstrip("\n")
        where = self.module.__name__.replace(".", "/") + ".py"
        head = [f"# {line}" for line in textwrap.wrap(f"{self.title} ({where}, "
                                                       f"{self.obj.__qualname__}):", 92)]
        return "\n".join(head + ["#"] + [f"#     {line}".rstrip() for line in
                                         source.splitlines()]) + "\n"


@dataclass
class Text:
    """Code written for the exercise; its free names are looked up in ``namespace``, and so
    are ``uses``: names the student will want at hand (imported although unused so far)."""
    text: str
    namespace: str = "minigen"
    uses: tuple = ()

    @property
    def module(self):
        return importlib.import_module(self.namespace)

    def code(self, blank):
        return textwrap.dedent(self.text).strip("\n") + "\n"


# ------------------------------------------------------------------ cutting out bodies
def _signature_end(node):
    """The last line of a def's signature (the line holding its ``:``)."""
    parts = [node.args] + ([node.returns] if node.returns is not None else [])
    return max([node.lineno] + [n.end_lineno for p in parts for n in ast.walk(p)
                                if getattr(n, "end_lineno", None)])


def _todo(qualname, what, indent):
    lines = [f"{indent}# TO WRITE: {line}" if i == 0 else f"{indent}#   {line}"
             for i, line in enumerate(textwrap.wrap(what, 84 - len(indent)))]
    lines.append(f'{indent}raise {NOT_IMPLEMENTED}("{qualname}")')
    return lines


def _blank(source, name, write):
    """``source`` with the bodies of the defs named in ``write`` replaced by a TO WRITE comment
    and ``raise NotImplementedError``. A class whose methods are cut loses its docstring too
    (it usually gives the answer away; the file's header states the exercise)."""
    if not write:
        return source
    tree = ast.parse(source)
    top = tree.body[0]
    lines = source.splitlines()
    cuts = []  # (first line, last line, replacement lines), 1-based inclusive
    if isinstance(top, ast.ClassDef):
        for node in top.body:
            if isinstance(node, ast.FunctionDef) and node.name in write:
                indent = " " * (node.col_offset + 4)
                cuts.append((_signature_end(node) + 1, node.end_lineno,
                             _todo(f"{name}.{node.name}", write[node.name], indent)))
        doc = top.body[0]
        if isinstance(doc, ast.Expr) and isinstance(getattr(doc, "value", None), ast.Constant) \
                and isinstance(doc.value.value, str):
            blank_after = doc.end_lineno < len(lines) and not lines[doc.end_lineno].strip()
            cuts.append((doc.lineno, doc.end_lineno + blank_after, []))
        missing = set(write) - {n.name for n in top.body if isinstance(n, ast.FunctionDef)}
    else:
        cuts.append((_signature_end(top) + 1, top.end_lineno,
                     _todo(name, write.get("", write.get(name, "")), " " * 4)))
        missing = set(write) - {"", name}
    if missing:
        raise ValueError(f"exercise source: {name} has no method {sorted(missing)}")
    for first, last, new in sorted(cuts, reverse=True):
        lines[first - 1:last] = new
    if isinstance(top, ast.ClassDef) and all(not l.strip() for l in lines[1:]):
        lines.append("    pass")
    return "\n".join(lines) + "\n"


def _absolute_imports(source, module_name):
    """``from .reduce import sum`` inside a method, made absolute for a file outside the
    package: ``from minigen.ops.reduce import sum``."""
    out = []
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("from ."):
            dots = len(stripped[5:]) - len(stripped[5:].lstrip("."))
            base = module_name.split(".")
            base = base[:len(base) - dots]
            rest = stripped[5 + dots:]
            line = line[:len(line) - len(stripped)] + "from " + ".".join(base) + \
                ("." if not rest.startswith(" ") else "") + rest
        out.append(line)
    return "\n".join(out) + ("\n" if source.endswith("\n") else "")


# ------------------------------------------------------------------ imports
def _global_names(code):
    """Names a piece of module code reads from the module's globals (or the builtins)."""
    top = symtable.symtable(code, "<exercise>", "exec")
    used = set()

    def walk(table):
        for sym in table.get_symbols():
            if sym.is_referenced() and (table is top or sym.is_global()):
                used.add(sym.get_name())
        for child in table.get_children():
            walk(child)

    walk(top)
    return used


def _defined_names(code):
    tree = ast.parse(code)
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _import_line(name, obj, namespace):
    """How a file imports ``obj`` under ``name``: from where it is defined when it is found
    there under that name, else from the module the piece came from."""
    if inspect.ismodule(obj):
        return f"import {obj.__name__}" + (f" as {name}" if obj.__name__ != name else "")
    home = getattr(obj, "__module__", None)
    if home and getattr(sys.modules.get(home), name, None) is obj and not home.startswith("_"):
        return f"from {home} import {name}"
    return f"from {namespace.__name__} import {name}"


def imports(pieces, codes, hide=()):
    """The import block for ``pieces`` (their code in ``codes``), leaving out ``hide``."""
    defined = set().union(*(_defined_names(c) for c in codes)) | set(hide)
    found = {}
    for piece, code in zip(pieces, codes):
        if isinstance(piece, Quote):
            continue
        namespace = piece.module
        for name in sorted((_global_names(code) | set(getattr(piece, "uses", ()))) - defined):
            if name in vars(namespace):
                obj = vars(namespace)[name]
            elif hasattr(builtins, name):
                continue
            else:
                raise NameError(f"exercise source: {name!r} (used by {piece!r:.60}) is not a "
                                f"global of {namespace.__name__}")
            if name in found and found[name][0] is not obj:
                raise NameError(f"exercise source: {name!r} means two things in one file")
            found[name] = (obj, namespace)
    plain = sorted({_import_line(n, o, ns) for n, (o, ns) in found.items()
                    if inspect.ismodule(o)})
    froms = {}
    for n, (o, ns) in found.items():
        if not inspect.ismodule(o):
            where = _import_line(n, o, ns).split()[1]
            froms.setdefault(where, []).append(n)
    lines = plain + [""] * bool(plain and froms)
    for where in sorted(froms):
        line = f"from {where} import " + ", ".join(sorted(froms[where]))
        if len(line) > 96:
            line = f"from {where} import (" + ", ".join(sorted(froms[where])) + ")"
        lines.append(line)
    return "\n".join(lines)


def assemble(header, pieces, blank, trailer="", hide=()):
    """A complete Python file: ``header`` (a docstring and assignments), the imports, the
    pieces (stub bodies cut out when ``blank``), and ``trailer``. ``hide``: names a stub must
    not import (the library helper that *is* the answer)."""
    codes = [p.code(blank) for p in pieces]
    # the imports of a stub are those its pieces need once written as the library writes
    # them: the student has the names at hand (and a hint of which ops will do)
    import_block = imports(pieces, [p.code(False) for p in pieces], hide)
    parts = [header.rstrip("\n"), import_block] + [c.rstrip("\n") for c in codes]
    if trailer:
        parts.append(trailer.rstrip("\n"))
    return "\n\n\n".join(p for p in parts if p) + "\n"
