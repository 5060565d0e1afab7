"""NNX filter expressions typed as text, parsed (never run) into the filter objects flax uses.

People learn filters by trying them, so the text reads like the Python they would write
(``nnx.All(nnx.Param, nnx.PathContains('bn1'))``), and the result is exactly the object they would
pass to flax, so every selection is flax's own. ``|``, ``&`` and ``~`` are shorthands of this tool
for ``nnx.Any``, ``nnx.All`` and ``nnx.Not``: flax has no such operators, so everything shown back
is written with the constructors. The text goes through ``ast.parse`` and a whitelist of nodes;
anything else is refused with a message that quotes the offending part and gives its column.

>>> f = parse_filter("Param & ~PathContains('bn1')")
>>> f.text
"nnx.All(nnx.Param, nnx.Not(nnx.PathContains('bn1')))"
>>> f.filter == nnx.All(nnx.Param, nnx.Not(nnx.PathContains("bn1")))
True
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import keyword
import re
from collections.abc import Collection, Mapping
from typing import Any

from flax import nnx
from flax.nnx import filterlib

from inspector.errors import FilterSyntaxError
from inspector.filter_calls import CONSTRUCTORS, call, constructor_text
from inspector.filter_text import (
    LINE_BREAK,
    MAX_CHARS,
    MAX_DEPTH,
    MAX_DIGITS,
    check_bounds,
    clip,
    refuse,
    top_level_semicolons,
)
from inspector.kinds import kind_of_collection
from inspector.process_state import ignoring_warnings

__all__ = ["MAX_CHARS", "MAX_DEPTH", "MAX_DIGITS", "FilterSyntaxError", "ParsedFilter", "collection_class_name",
           "nnx_variable_types", "parse_filter", "parse_filters"]

_MAX_AST_DEPTH = 4 * MAX_DEPTH  # ``~``/``|`` chains nest without brackets; keep recursion bounded
LINEN_COLLECTIONS = ("params", "batch_stats", "cache", "intermediates", "perturbations")
_NNX = (("nnx",), ("flax", "nnx"))
_FILTERLIB = (("filterlib",), ("nnx", "filterlib"), ("flax", "nnx", "filterlib"))
_REFUSED = {
    ast.Lambda: "a lambda", ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension", ast.GeneratorExp: "a comprehension", ast.Subscript: "indexing",
    ast.NamedExpr: "an assignment", ast.Compare: "a comparison", ast.Dict: "a dict", ast.Set: "a set",
    ast.JoinedStr: "an f-string", ast.Starred: "'*' unpacking", ast.IfExp: "a conditional expression",
    ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "a slice",
}


@dataclasses.dataclass(frozen=True)
class ParsedFilter:
    """A filter as flax takes it (``filter``), as a user would paste it (``text``), with hints."""

    filter: Any
    text: str
    notes: tuple[str, ...] = ()


@functools.cache
def nnx_variable_types() -> dict[str, type[nnx.Variable]]:
    """Every ``nnx.Variable`` subclass that ``flax.nnx`` exports, by its exported name.

    >>> nnx_variable_types()["Param"] is nnx.Param
    True
    """
    found = {}
    for name in dir(nnx):  # dir() skips the deprecated aliases served by nnx.__getattr__
        value = getattr(nnx, name)
        if isinstance(value, type) and issubclass(value, nnx.Variable):
            found[name] = value
    return found


def parse_filter(text: str, variable_types: Mapping[str, type] = {}, *,  # noqa: B006 (read-only)
                 collections: Collection[str] = ()) -> ParsedFilter:
    """One filter expression; ``variable_types`` adds names (``Counter``) a model defines.

    ``collections`` are the Linen collection names of the source, so that a tag spelled like one
    gets a note.

    >>> parse_filter("'params'").notes[0][:60]
    "'params' is a tag in NNX: it selects RNG state of the stream"
    """
    masked = check_bounds(text)
    semicolons = top_level_semicolons(masked)
    if semicolons:
        refuse(text, semicolons[0], "';' separates the filters of split; give one filter here")
    return _Reader(text, 0, len(text), variable_types, collections).parse()


def parse_filters(text: str, variable_types: Mapping[str, type] = {}, *,  # noqa: B006 (read-only)
                  collections: Collection[str] = ()) -> list[ParsedFilter]:
    """Filters separated by top-level ``;`` (not those inside strings), in order, for split.

    >>> [f.text for f in parse_filters("Param; 'a;b'; ...")]
    ['nnx.Param', "'a;b'", '...']
    """
    masked = check_bounds(text)
    bounds = [-1, *top_level_semicolons(masked), len(text)]
    pieces = [(start + 1, end) for start, end in zip(bounds, bounds[1:])]
    if len(pieces) > 1 and not text[pieces[-1][0]:].strip():
        pieces.pop()  # a trailing ';' is harmless, as in Python
    readers = []
    for start, end in pieces:
        if not text[start:end].strip():
            refuse(text, start, "empty filter: put a filter between each pair of ';'")
        readers.append(_Reader(text, start, end, variable_types, collections))
    parsed = [reader.parse() for reader in readers]
    for i, (reader, item) in enumerate(zip(readers, parsed)):
        if _is_everything_literal(item.filter) and not all(_is_everything_literal(f.filter) for f in parsed[i + 1:]):
            refuse(text, reader.start, f"{item.text} matches everything, so it can only be the last filter "
                                       "(nnx.split raises otherwise)")
    return parsed


def _is_everything_literal(filter_: Any) -> bool:
    """flax's own test (``filter in (..., True)``): only these must come last."""
    return filter_ is Ellipsis or filter_ is True


class _Reader:
    """Translates one piece of the text (``text[start:end]``) node by node."""

    def __init__(self, text: str, start: int, end: int, variable_types: Mapping[str, type],
                 collections: Collection[str]):
        piece = text[start:end]
        stripped = piece.lstrip()
        self.text, self.start = text, start + len(piece) - len(stripped)
        self.piece = stripped.rstrip()
        self.types = {k: v for k, v in variable_types.items()
                      if isinstance(v, type) and issubclass(v, nnx.Variable)}
        self.collections = frozenset(collections) | frozenset(LINEN_COLLECTIONS)
        self.notes: list[str] = []
        self.operators = False

    def parse(self) -> ParsedFilter:
        tree = self._ast()
        obj, text = self.visit(tree.body)
        if self.operators:
            self.note("'|', '&' and '~' are shorthands of this tool: flax filters have no such operators "
                      f"(nnx.Param | nnx.BatchStat is a Python union type that flax cannot use); write {text}")
        return ParsedFilter(filter=obj, text=text, notes=tuple(self.notes))

    def _ast(self) -> ast.Expression:
        try:
            # e.g. invalid escapes in a tag: not the user's problem here (warnings the parser raises
            # come from module '<unknown>'; other threads' warnings stay as they are)
            with ignoring_warnings(Warning, module="<unknown>"):
                tree = ast.parse(self.piece, mode="eval")
        except SyntaxError as err:
            stripped = self.piece.rstrip()
            if stripped and stripped[-1] in "&|~,." and (err.offset or 0) <= 1:  # Python points at column 0
                refuse(self.text, self.start + len(stripped) - 1,
                       f"not a filter expression: invalid syntax, nothing after {stripped[-1]!r}")
            offset = self._offset_of_syntax_error(err)
            near = self.text[offset:offset + 20].split("\n")[0]
            refuse(self.text, offset, f"not a filter expression: {err.msg}" + (f" at {clip(near)}" if near else ""))
        except UnicodeEncodeError as err:
            bad = self.piece[err.start:err.end]
            refuse(self.text, self.start + err.start, f"character {bad!r} cannot be read (a lone surrogate)")
        except (ValueError, MemoryError, RecursionError, OverflowError) as err:
            refuse(self.text, self.start, f"not a filter expression: {type(err).__name__} from the parser")
        stack = [(tree, 0)]
        while stack:
            node, depth = stack.pop()
            if depth > _MAX_AST_DEPTH:
                self.refuse(node, f"expression nested too deeply (more than {_MAX_AST_DEPTH} levels)")
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node) if hasattr(child, "lineno"))
        return tree

    def _offset_of_syntax_error(self, err: SyntaxError) -> int:
        lines = LINE_BREAK.split(self.piece)
        line = min(max((err.lineno or 1) - 1, 0), len(lines) - 1)
        before = sum(len(x) for x in re.findall(r"[^\r\n]*(?:\r\n|\r|\n)", self.piece)[:line])
        column = min(max((err.offset or 1) - 1, 0), len(lines[line]))
        return self.start + before + column

    def offset(self, node: ast.AST) -> int:
        if not hasattr(node, "lineno"):  # contexts and operators carry no position
            return self.start
        lines = re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", self.piece)
        line = node.lineno - 1
        before = sum(len(x) for x in lines[:line])
        column = len(lines[line].encode()[:node.col_offset].decode("utf-8", "replace")) if line < len(lines) else 0
        return self.start + before + column

    def is_type_name(self, name: str) -> bool:
        return name in self.types or name in nnx_variable_types()

    def refuse(self, node: ast.AST, message: str) -> None:
        refuse(self.text, self.offset(node), message)

    def segment(self, node: ast.AST) -> str:
        return clip(ast.get_source_segment(self.piece, node) or type(node).__name__)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # -- nodes ------------------------------------------------------------------------------

    def visit(self, node: ast.AST) -> tuple[Any, str]:
        """The flax filter and its canonical text for one node."""
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, (ast.Name, ast.Attribute)):
            return self.name(node)
        if isinstance(node, (ast.Tuple, ast.List)):
            items = [self.visit(elt) for elt in node.elts]
            texts = [t for _, t in items]
            text = "(" + ", ".join(texts) + ("," if len(texts) == 1 else "") + ")"
            return tuple(obj for obj, _ in items), text
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitOr, ast.BitAnd)):
            return self.operator(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
            self.operators = True
            obj, text = self.visit(node.operand)
            return nnx.Not(obj), f"nnx.Not({text})"
        if isinstance(node, ast.Call):
            return call(self, node)
        self.refuse(node, self.not_allowed(node))
        raise AssertionError("unreachable")

    def not_allowed(self, node: ast.AST) -> str:
        if isinstance(node, ast.BoolOp):
            op, use = ("and", "&") if isinstance(node.op, ast.And) else ("or", "|")
            return f"'{op}' is not a filter operator: use '{use}' in {self.segment(node)}"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return f"'not' is not a filter operator: use '~' in {self.segment(node)}"
        if isinstance(node, (ast.BinOp, ast.UnaryOp)):
            symbol = _OPERATOR_SYMBOLS.get(type(node.op), type(node.op).__name__)
            return f"operator '{symbol}' is not allowed in {self.segment(node)}; use |, & or ~"
        what = _REFUSED.get(type(node), f"a {type(node).__name__} expression")
        return f"{what} is not allowed in a filter: {self.segment(node)}"

    def constant(self, node: ast.Constant) -> tuple[Any, str]:
        value = node.value
        if value is Ellipsis:
            return ..., "..."
        if value is None or isinstance(value, bool):
            return value, repr(value)
        if isinstance(value, str):
            self.tag_notes(value)
            return value, repr(value)
        if isinstance(value, int) and abs(value) >= 10 ** MAX_DIGITS:
            self.refuse(node, f"integer {self.segment(node)} too large (at most {MAX_DIGITS} digits)")
        if isinstance(value, int):
            self.refuse(node, f"a number is not a filter: {self.segment(node)}; "
                              f"nnx.PathContains({value}) selects paths with the key {value}")
        self.refuse(node, f"{type(value).__name__} {self.segment(node)} is not a filter")
        raise AssertionError("unreachable")

    def tag_notes(self, tag: str) -> None:
        if tag in self.collections:
            kind = kind_of_collection(tag)
            names = (collection_class_name(tag), tag)
            instead = kind if kind != tag else next((n for n in names if n in self.types), None)
            what = "parameters" if tag == "params" else f"the variables of the Linen collection '{tag}'"
            self.note(f"'{tag}' is a tag in NNX: it selects RNG state of the stream '{tag}', not {what}"
                      + (f"; did you mean {instead}?" if instead else ""))
        elif tag in self.types or tag in nnx_variable_types():
            self.note(f"'{tag}' in quotes is a tag (an RNG stream name), not the type: write {tag} "
                      "without quotes")

    def name(self, node: ast.AST) -> tuple[Any, str]:
        """A dotted name: a Variable type, a constructor (refused uncalled), or ``Ellipsis``."""
        kind, value, text = self.resolve(node)
        if kind == "constructor":
            self.refuse(node, f"{text} is a class: call it, as in {text}()"
                        if value in (filterlib.Everything, filterlib.Nothing)
                        else f"{text} is a filter constructor: call it, as in {text}(...)")
        return value, text

    def resolve(self, node: ast.AST) -> tuple[str, Any, str]:
        """``("type" | "constructor" | "ellipsis", object, canonical text)``, or a refusal."""
        parts: list[str] = []
        base = node
        while isinstance(base, ast.Attribute):
            parts.insert(0, base.attr)
            base = base.value
        if not isinstance(base, ast.Name):
            self.refuse(node, f"attribute access is not allowed: {self.segment(node)}")
        parts.insert(0, base.id)
        *qualifier, name = parts
        dotted = ".".join(parts)
        if any(p.startswith("__") for p in parts):
            self.refuse(node, f"dunder names are not allowed: {clip(dotted)}")
        nnx_types = nnx_variable_types()
        if not qualifier:
            if name == "Ellipsis":
                return "ellipsis", ..., "..."
            if name in self.types:
                cls = self.types[name]
                return "type", cls, f"nnx.{name}" if nnx_types.get(name) is cls else name
            if name in nnx_types:
                return "type", nnx_types[name], f"nnx.{name}"
            if name in CONSTRUCTORS:
                return "constructor", CONSTRUCTORS[name], constructor_text(name)
            choices = [*self.types, *nnx_types, *CONSTRUCTORS, "Ellipsis"]
        elif tuple(qualifier) in _NNX:
            if name in nnx_types:
                return "type", nnx_types[name], f"nnx.{name}"
            if name in CONSTRUCTORS:
                if name == "PathIn":
                    self.note("flax.nnx has no PathIn: it lives in flax.nnx.filterlib (nnx.filterlib.PathIn)")
                return "constructor", CONSTRUCTORS[name], constructor_text(name)
            if name in self.types:
                self.refuse(node, f"{clip(dotted)}: {name} is not in flax.nnx, it is defined in the model's "
                                  f"code: write {name}")
            choices = [*nnx_types, *CONSTRUCTORS]
        elif tuple(qualifier) in _FILTERLIB:
            if name in CONSTRUCTORS:
                return "constructor", CONSTRUCTORS[name], constructor_text(name)
            choices = list(CONSTRUCTORS)
        else:
            self.refuse(node, f"attribute access is not allowed: {clip(dotted)}; names are NAME or nnx.NAME")
        prefix = ".".join(qualifier) + "." if qualifier else ""
        close = difflib.get_close_matches(name, choices, n=1)
        hint = self.collection_hint(name) or (f" Did you mean '{prefix}{close[0]}'?" if close else
                                              " Names are Variable types (nnx.Param, or the model's own) "
                                              "and filter constructors (nnx.All, ...).")
        self.refuse(node, f"Unknown name {clip(dotted)}.{hint}")
        raise AssertionError("unreachable")

    def collection_hint(self, name: str) -> str:
        if name not in self.collections:
            return ""
        kind = kind_of_collection(name)
        kind = kind if kind != name else collection_class_name(name)
        return f" Did you mean '{kind}'? ('{name}' is a Linen collection; in NNX its variables are {kind})"

    def operator(self, node: ast.BinOp) -> tuple[Any, str]:
        """A chain of one operator (``a | b | c``) as one ``nnx.Any``/``nnx.All``, left to right."""
        self.operators = True
        op = type(node.op)
        operands, stack = [], [node]
        while stack:
            item = stack.pop()
            if isinstance(item, ast.BinOp) and isinstance(item.op, op):
                stack.extend([item.right, item.left])
            else:
                operands.append(self.visit(item))
        cls, name = (nnx.Any, "nnx.Any") if op is ast.BitOr else (nnx.All, "nnx.All")
        return cls(*(o for o, _ in operands)), f"{name}({', '.join(t for _, t in operands)})"


_OPERATOR_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
                     ast.Mod: "%", ast.Pow: "**", ast.LShift: "<<", ast.RShift: ">>", ast.BitXor: "^",
                     ast.MatMult: "@", ast.USub: "-", ast.UAdd: "+"}


def collection_class_name(collection: str) -> str:
    """How a port usually names the NNX class of a Linen collection.

    >>> collection_class_name("counter"), collection_class_name("batch_stats")
    ('Counter', 'BatchStats')
    """
    text = "".join(part[:1].upper() + part[1:] for part in collection.split("_"))
    return text if text.isidentifier() and not keyword.iskeyword(text) else collection
