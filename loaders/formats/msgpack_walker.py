"""Walk a msgpack stream in a file, seeking past payloads instead of reading them.

``msgpack.Unpacker`` cannot list a 1 GiB ``flax_model.msgpack`` without reading it: ``skip()``
still reads every skipped byte into its buffer, and raises ``BufferFull`` past 100 MiB. A weight
file's structure is tiny next to its payloads, so this walker reads only the type byte and the
length of each object (the msgpack spec, https://github.com/msgpack/msgpack/blob/master/spec.md)
and seeks past ``bin``, long ``str`` and ``ext`` payloads. What an ``ext`` holds is the caller's
business (``msgpack_file`` knows flax's arrays); a payload is handed over as a ``Reader`` bounded
to it.

Every length is checked against the bytes left before it is used, a container may not announce
more entries than there are bytes left, nesting is capped, and nothing is allocated from a length
in the file: garbage gives one ``WeightFileError`` naming the byte offset, never a hang.

>>> import io, msgpack
>>> data = msgpack.packb({"a": {"b": 1, "c": b"xyz"}})
>>> walk_bytes(data)
{'a': {'b': 1, 'c': Blob(kind='bin', offset=11, length=3)}}
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from inspector.errors import WeightFileError

MAX_DEPTH = 64
MAX_KEY = 1 << 16  # bytes of one map key
MAX_TEXT = 1 << 12  # str values up to this are read; longer ones are skipped as blobs

Ext = Callable[[int, "Reader", tuple], Any]


@dataclasses.dataclass(frozen=True)
class Blob:
    """A payload the walker skipped: a ``bin`` value, a long ``str``, or an ``ext`` of an unknown type."""

    kind: str
    offset: int
    length: int


@dataclasses.dataclass(frozen=True)
class Token:
    """One msgpack object header: ``kind`` (map, array, str, bin, ext, int, float, bool, nil), its
    argument (entry count, payload length, ``(code, length)`` for ext, or the value), and the
    offset of its type byte."""

    kind: str
    arg: Any
    at: int


class Reader:
    """Reads a byte range ``[pos, end)`` of a file and refuses to step past its end."""

    def __init__(self, f: BinaryIO, file: Path, pos: int, end: int, inside: str = "the file",
                 names: dict[int, str] | None = None) -> None:
        self.f, self.file, self.pos, self.end, self.inside = f, file, pos, end, inside
        self.names = names or {}

    @property
    def left(self) -> int:
        return self.end - self.pos

    def need(self, n: int, what: str, at: int | None = None) -> None:
        if n > self.left:
            raise self.error(self.pos if at is None else at,
                             f"{self.inside} ends inside {what} ({n} bytes announced, {self.left} left): "
                             "it is truncated or damaged")

    def take(self, n: int, what: str) -> bytes:
        self.need(n, what)
        self.f.seek(self.pos)
        data = self.f.read(n)
        if len(data) != n:  # the file shrank under us
            raise self.error(self.pos, f"the file ends inside {what}: it is truncated")
        self.pos += n
        return data

    def skip(self, n: int, what: str) -> int:
        """Step over ``n`` bytes; returns where they start."""
        self.need(n, what)
        start = self.pos
        self.pos += n
        return start

    def sub(self, n: int, inside: str) -> Reader:
        """A reader bounded to the next ``n`` bytes (an ext payload)."""
        self.need(n, inside)
        return Reader(self.f, self.file, self.pos, self.pos + n, inside, self.names)

    def error(self, at: int, message: str, path: tuple = ()) -> WeightFileError:
        where = f" (in {'/'.join(map(str, path))!r})" if path else ""
        return WeightFileError(f"weight file {str(self.file)!r}: at byte {at}{where}: {message}")


def walk_file(file: Path, ext: Ext | None = None, ext_names: dict[int, str] | None = None) -> Any:
    """The whole file as one msgpack value: dicts, lists, scalars, ``Blob`` and what ``ext`` returns.

    The value must end exactly at the end of the file. ``ext_names`` name ext types in messages
    (``{1: "an array"}``: "the file ends inside an array").
    """
    try:
        f = open(file, "rb")  # noqa: SIM115 - closed below; errors must name the file
    except OSError as err:
        raise WeightFileError(f"weight file {str(file)!r} cannot be read: {err.strerror}") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise WeightFileError(f"weight file {str(file)!r} is empty (0 bytes): it was not written completely")
        return _walk(Reader(f, file, 0, size, names=ext_names), ext)


def walk_bytes(data: bytes, ext: Ext | None = None, name: str = "<bytes>") -> Any:
    """``walk_file`` over bytes in memory (tests and small payloads)."""
    return _walk(Reader(io.BytesIO(data), Path(name), 0, len(data)), ext)


def _walk(reader: Reader, ext: Ext | None) -> Any:
    value = read_value(reader, ext)
    if reader.left:
        raise reader.error(reader.pos, f"{reader.left} more bytes follow the end of the msgpack data: the file "
                                       "is damaged or is not one msgpack value")
    return value


def read_value(r: Reader, ext: Ext | None = None, path: tuple = (), depth: int = 0) -> Any:
    """The next msgpack value; containers are read whole, payloads seeked past."""
    token = next_token(r, path)
    kind, arg = token.kind, token.arg
    if kind in ("map", "array") and depth >= MAX_DEPTH:
        raise r.error(token.at, f"containers nest deeper than {MAX_DEPTH} levels: not a weight file", path)
    if kind == "map":
        r.need(2 * arg, f"a map of {arg} entries", token.at)  # each entry takes at least 2 bytes
        out: dict[Any, Any] = {}
        for _ in range(arg):
            at = r.pos
            key = read_key(r, path)
            if key in out:
                raise r.error(at, f"the key {key!r} appears twice in one map", path)
            out[key] = read_value(r, ext, path + (key,), depth + 1)
        return out
    if kind == "array":
        r.need(arg, f"an array of {arg} entries", token.at)
        return [read_value(r, ext, path + (i,), depth + 1) for i in range(arg)]
    if kind == "str":
        if arg > MAX_TEXT:
            return Blob("str", r.skip(arg, "a string"), arg)
        return r.take(arg, "a string").decode("utf-8", errors="replace")
    if kind == "bin":
        return Blob("bin", r.skip(arg, "a byte string"), arg)
    if kind == "ext":
        code, length = arg
        payload = r.sub(length, r.names.get(code, f"an ext payload (type {code})"))
        value = ext(code, payload, path) if ext is not None else Blob(f"ext {code}", payload.pos, length)
        r.pos = payload.end
        return value
    return arg


def read_key(r: Reader, path: tuple) -> str | int:
    """A map key: text (str, or bin as older writers used) or an integer."""
    token = next_token(r, path)
    if token.kind in ("str", "bin"):
        if token.arg > MAX_KEY:
            raise r.error(token.at, f"a map key of {token.arg} bytes: not a name", path)
        raw = r.take(token.arg, "a map key")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise r.error(token.at, f"a map key is not UTF-8 text ({raw[:20]!r})", path) from None
    if token.kind == "int":
        return token.arg
    raise r.error(token.at, f"a map key is {_a(token.kind)}, not a name", path)


_FIXED = {  # type byte: (kind, struct format of the length or value)
    0xC4: ("bin", ">B"), 0xC5: ("bin", ">H"), 0xC6: ("bin", ">I"),
    0xCA: ("float", ">f"), 0xCB: ("float", ">d"),
    0xCC: ("int", ">B"), 0xCD: ("int", ">H"), 0xCE: ("int", ">I"), 0xCF: ("int", ">Q"),
    0xD0: ("int", ">b"), 0xD1: ("int", ">h"), 0xD2: ("int", ">i"), 0xD3: ("int", ">q"),
    0xD9: ("str", ">B"), 0xDA: ("str", ">H"), 0xDB: ("str", ">I"),
    0xDC: ("array", ">H"), 0xDD: ("array", ">I"), 0xDE: ("map", ">H"), 0xDF: ("map", ">I"),
}
_EXT_LENGTH = {0xC7: ">B", 0xC8: ">H", 0xC9: ">I"}
_FIXEXT = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}


def next_token(r: Reader, path: tuple = ()) -> Token:
    """Read one object header (type byte and length), not its payload."""
    at = r.pos
    if r.left <= 0:
        raise r.error(at, f"{r.inside} ends where a value should start: it is truncated", path)
    b = r.take(1, "a value")[0]
    if b <= 0x7F:
        return Token("int", b, at)
    if b >= 0xE0:
        return Token("int", b - 0x100, at)
    if 0x80 <= b <= 0x8F:
        return Token("map", b & 0x0F, at)
    if 0x90 <= b <= 0x9F:
        return Token("array", b & 0x0F, at)
    if 0xA0 <= b <= 0xBF:
        return Token("str", b & 0x1F, at)
    if b == 0xC0:
        return Token("nil", None, at)
    if b in (0xC2, 0xC3):
        return Token("bool", b == 0xC3, at)
    if b in _FIXED:
        kind, fmt = _FIXED[b]
        (value,) = struct.unpack(fmt, r.take(struct.calcsize(fmt), f"the header of {_a(kind)}"))
        return Token(kind, value, at)
    if b in _EXT_LENGTH:
        fmt = _EXT_LENGTH[b]
        head = r.take(struct.calcsize(fmt) + 1, "an ext header")
        (length,), code = struct.unpack(fmt, head[:-1]), struct.unpack(">b", head[-1:])[0]
        return Token("ext", (code, length), at)
    if b in _FIXEXT:
        code = struct.unpack(">b", r.take(1, "an ext header"))[0]
        return Token("ext", (code, _FIXEXT[b]), at)
    raise r.error(at, f"byte 0x{b:02x} is not a msgpack type (0xc1 is never used): the file is damaged", path)


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"
