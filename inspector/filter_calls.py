"""Calls in a filter expression: flax's filter constructors, their arguments checked first.

Arguments are checked here, before any flax object is built, for two reasons: flax's own error
for a bad filter object is itself broken (``Invalid format specifier``), and some mistakes only
fail later, when a path is compared (``PathIn(['a'])`` is unhashable, ``PathIn('a/b')`` silently
matches nothing). Each refusal says which argument is wrong and how to write it.

>>> from inspector.filters import parse_filter
>>> parse_filter("PathContains('bn', exact=False)").text
"nnx.PathContains('bn', exact=False)"
"""

from __future__ import annotations

import ast
import difflib
from typing import TYPE_CHECKING, Any

from flax.nnx import filterlib

if TYPE_CHECKING:
    from inspector.filters import _Reader

CONSTRUCTORS: dict[str, type] = {
    "Any": filterlib.Any, "All": filterlib.All, "Not": filterlib.Not,
    "Everything": filterlib.Everything, "Nothing": filterlib.Nothing, "OfType": filterlib.OfType,
    "WithTag": filterlib.WithTag, "PathContains": filterlib.PathContains, "PathIn": filterlib.PathIn}
# Keyword names as flax spells them; None: positional only (variadic, or Not's ``/``).
_PARAMETERS: dict[str, tuple[str, ...] | None] = {
    "Any": None, "All": None, "Not": None, "Everything": (), "Nothing": (), "OfType": ("type",),
    "WithTag": ("tag",), "PathContains": ("key", "exact"), "PathIn": None}
_INT_LIMIT = 10 ** 18


def constructor_text(name: str) -> str:
    """How a constructor is written back: ``nnx.X``, or ``nnx.filterlib.PathIn`` (not in nnx)."""
    return "nnx.filterlib.PathIn" if name == "PathIn" else f"nnx.{name}"


def call(reader: _Reader, node: ast.Call) -> tuple[Any, str]:
    """The filter a constructor call builds, and its canonical text."""
    func = node.func
    base = func
    while isinstance(base, ast.Attribute):
        base = base.value
    if not isinstance(base, ast.Name):
        reader.refuse(node, f"only filter constructors can be called, not {reader.segment(func)}")
    name = func.id if isinstance(func, ast.Name) else func.attr
    if name not in CONSTRUCTORS and not name.startswith("__") and not reader.is_type_name(name):
        close = difflib.get_close_matches(name, list(CONSTRUCTORS), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else (
            " Only filter constructors can be called: " + ", ".join(CONSTRUCTORS) + ".")
        reader.refuse(func, f"Unknown function {reader.segment(func)}.{hint}")
    kind, _, text = reader.resolve(func)
    if kind != "constructor":
        reader.refuse(node, f"{text} is a Variable type, not a function: write {text} without parentheses")
    args = list(node.args)
    for arg in args:
        if isinstance(arg, ast.Starred):
            reader.refuse(arg, f"'*' unpacking is not allowed: {reader.segment(arg)}")
    keywords: dict[str, ast.expr] = {}
    for kw in node.keywords:
        if kw.arg is None:
            reader.refuse(kw, f"'**' unpacking is not allowed: {reader.segment(kw)}")
        if kw.arg in keywords:
            reader.refuse(kw, f"{text} got the argument '{kw.arg}' twice")
        keywords[kw.arg] = kw.value
    bound = _bind(reader, node, name, text, args, keywords)
    return _BUILDERS[name](reader, text, bound)


def _bind(reader: _Reader, node: ast.Call, name: str, text: str, args: list[ast.expr],
          keywords: dict[str, ast.expr]) -> list[ast.expr]:
    """Arguments in flax's parameter order, refusing what flax's signature would refuse."""
    params = _PARAMETERS[name]
    if params is None:
        if keywords:
            first = next(kw for kw in node.keywords if kw.arg in keywords)
            reader.refuse(first, f"{text} takes no keyword arguments: {reader.segment(first)}")
        if name == "Not" and len(args) != 1:
            reader.refuse(node, f"nnx.Not takes exactly one filter, got {len(args)}: {reader.segment(node)}")
        return args
    if len(args) > len(params):
        reader.refuse(node, f"{text} takes {_count(len(params))}, got {len(args)}: {reader.segment(node)}")
    bound = dict(zip(params, args))
    for key, value in keywords.items():
        if key not in params:
            close = difflib.get_close_matches(key, params, n=1)
            kw = next(k for k in node.keywords if k.arg == key)
            reader.refuse(kw, f"{text} has no argument '{key}'." + (f" Did you mean '{close[0]}'?" if close else ""))
        if key in bound:
            reader.refuse(node, f"{text} got the argument '{key}' twice")
        bound[key] = value
    required = params[:1]
    for key in required:
        if key not in bound:
            reader.refuse(node, f"{text} needs its argument '{key}', as in {_EXAMPLES[name]}")
    return [bound.get(key) for key in params]


def _count(n: int) -> str:
    return "no arguments" if n == 0 else "1 argument" if n == 1 else f"at most {n} arguments"


_EXAMPLES = {"OfType": "nnx.OfType(nnx.Param)", "WithTag": "nnx.WithTag('dropout')",
             "PathContains": "nnx.PathContains('kernel')"}


def _filters(reader: _Reader, text: str, nodes: list[ast.expr]) -> tuple[list[Any], str]:
    items = [reader.visit(n) for n in nodes]
    return [obj for obj, _ in items], f"{text}({', '.join(t for _, t in items)})"


def _build_any(reader: _Reader, text: str, nodes: list[ast.expr]) -> tuple[Any, str]:
    objs, out = _filters(reader, text, nodes)
    return filterlib.Any(*objs), out


def _build_all(reader: _Reader, text: str, nodes: list[ast.expr]) -> tuple[Any, str]:
    objs, out = _filters(reader, text, nodes)
    return filterlib.All(*objs), out


def _build_not(reader: _Reader, text: str, nodes: list[ast.expr]) -> tuple[Any, str]:
    objs, out = _filters(reader, text, nodes)
    return filterlib.Not(objs[0]), out


def _build_everything(reader: _Reader, text: str, nodes: list[ast.expr]) -> tuple[Any, str]:
    return filterlib.Everything(), f"{text}()"


def _build_nothing(reader: _Reader, text: str, nodes: list[ast.expr]) -> tuple[Any, str]:
    return filterlib.Nothing(), f"{text}()"


def _build_of_type(reader: _Reader, text: str, nodes: list[ast.expr]) -> tuple[Any, str]:
    (node,) = nodes
    if not isinstance(node, (ast.Name, ast.Attribute)):
        reader.refuse(node, f"{text} takes a Variable type such as nnx.Param, not {reader.segment(node)}")
    kind, cls, type_text = reader.resolve(node)
    if kind != "type":
        reader.refuse(node, f"{text} takes a Variable type such as nnx.Param, not {type_text}")
    return filterlib.OfType(cls), f"{text}({type_text})"


def _build_with_tag(reader: _Reader, text: str, nodes: list[ast.expr]) -> tuple[Any, str]:
    (node,) = nodes
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        reader.refuse(node, f"{text} takes a string (an RNG stream name), not {reader.segment(node)}")
    return filterlib.WithTag(node.value), f"{text}({node.value!r})"


def _build_path_contains(reader: _Reader, text: str, nodes: list[ast.expr]) -> tuple[Any, str]:
    key_node, exact_node = nodes
    key = _key(reader, key_node, f"{text} takes a path key (a string or an integer)")
    exact = True
    if exact_node is not None:
        if not (isinstance(exact_node, ast.Constant) and isinstance(exact_node.value, bool)):
            reader.refuse(exact_node, f"{text}: exact must be True or False, not {reader.segment(exact_node)}")
        exact = exact_node.value
    out = f"{text}({key!r}" + ("" if exact else ", exact=False") + ")"
    return filterlib.PathContains(key, exact=exact), out


def _build_path_in(reader: _Reader, text: str, nodes: list[ast.expr]) -> tuple[Any, str]:
    paths = []
    for node in nodes:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            keys = tuple(k for k in node.value.split("/") if k)
            reader.refuse(node, f"{text} takes tuples of keys, not a string: write {text}({keys!r})")
        if isinstance(node, ast.List):
            reader.refuse(node, f"{text} takes tuples of keys, not lists (flax hashes each path): "
                                f"write ('a', 'b') rather than ['a', 'b'] in {reader.segment(node)}")
        if not isinstance(node, ast.Tuple):
            reader.refuse(node, f"{text} takes tuples of keys such as ('linear', 'kernel'), "
                                f"not {reader.segment(node)}")
        paths.append(tuple(_key(reader, elt, f"a path in {text} holds strings and integers") for elt in node.elts))
    return filterlib.PathIn(*paths), f"{text}({', '.join(map(repr, paths))})"


def _key(reader: _Reader, node: ast.expr, message: str) -> str | int:
    """A path key: a string, or an integer (``-1`` too, which flax accepts but never matches)."""
    sign, inner = 1, node
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, inner = -1, node.operand
    if isinstance(inner, ast.Constant) and type(inner.value) is int:
        if abs(inner.value) >= _INT_LIMIT:
            reader.refuse(node, f"integer {reader.segment(node)} too large (at most 18 digits)")
        return sign * inner.value
    if sign == 1 and isinstance(inner, ast.Constant) and isinstance(inner.value, str):
        return inner.value
    reader.refuse(node, f"{message}, not {reader.segment(node)}")
    raise AssertionError("unreachable")


_BUILDERS = {"Any": _build_any, "All": _build_all, "Not": _build_not, "Everything": _build_everything,
             "Nothing": _build_nothing, "OfType": _build_of_type, "WithTag": _build_with_tag,
             "PathContains": _build_path_contains, "PathIn": _build_path_in}
