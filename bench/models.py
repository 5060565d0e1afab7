"""Synthetic models for the benchmark: NNX block stacks, their Linen twins, a Llama-like model.

A *block* is two ``Linear(16, 16)`` and a ``LayerNorm(16)``: six variables, the structure of the
checkpoint issue's measurements, so figures here compare with the ones quoted there. The Linen
twin has the same names (``blocks_3/linear1/kernel`` against ``blocks/3/linear1/kernel``), so a diff
of the two exercises alignment on every variable.

Child processes load models by source spec, exactly as a user would name a factory file:
``bench/models.py:blocks_nnx_1000`` (1,000 NNX blocks), ``bench/models.py:blocks_linen_1000``
(the Linen twin with example inputs), ``bench/models.py:llama_nnx`` / ``llama_linen``. Those
names are answered by the module's ``__getattr__``, so any size is a valid spec without a list of
factories to keep in step with the sizes the benchmark uses.

>>> len(nnx.to_flat_state(nnx.state(blocks_nnx(2))))
12
>>> blocks_for(1000)
167
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

from bench.sizes import VARIABLES_PER_BLOCK, blocks_for

__all__ = ["FEATURES", "LLAMA_7B", "VARIABLES_PER_BLOCK", "blocks_for", "blocks_linen", "blocks_nnx", "factory",
           "llama_linen", "llama_nnx"]

FEATURES = 16
_FACTORY = re.compile(r"^blocks_(?P<form>nnx|linen)_(?P<n>\d+)$")


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
    """Llama-2-7B's shapes: 32 layers, d=4096, MLP 11008, vocabulary 32000 (about 6.7e9 parameters)."""

    layers: int = 32
    dim: int = 4096
    hidden: int = 11008
    vocab: int = 32000

    @property
    def variables(self) -> int:
        """Two norms and seven projections per layer, plus embedding, final norm and head."""
        return self.layers * 9 + 3


LLAMA_7B = LlamaConfig()


class BlockNNX(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.linear1 = nnx.Linear(FEATURES, FEATURES, rngs=rngs)
        self.linear2 = nnx.Linear(FEATURES, FEATURES, rngs=rngs)
        self.norm = nnx.LayerNorm(FEATURES, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.norm(self.linear2(self.linear1(x)))


class BlocksNNX(nnx.Module):
    def __init__(self, n: int, rngs: nnx.Rngs):
        self.blocks = nnx.List([BlockNNX(rngs) for _ in range(n)])

    def __call__(self, x: jax.Array) -> jax.Array:
        for block in self.blocks:
            x = block(x)
        return x


class BlockLinen(nn.Module):
    def setup(self) -> None:
        self.linear1 = nn.Dense(FEATURES)
        self.linear2 = nn.Dense(FEATURES)
        self.norm = nn.LayerNorm()

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.norm(self.linear2(self.linear1(x)))


class BlocksLinen(nn.Module):
    n: int

    def setup(self) -> None:
        self.blocks = [BlockLinen() for _ in range(self.n)]

    def __call__(self, x: jax.Array) -> jax.Array:
        for block in self.blocks:
            x = block(x)
        return x


def blocks_nnx(n: int) -> BlocksNNX:
    """``n`` NNX blocks, built concretely (call it inside ``nnx.eval_shape`` for shapes only)."""
    return BlocksNNX(n, nnx.Rngs(0))


def blocks_linen(n: int) -> tuple[BlocksLinen, tuple[jax.Array]]:
    """The Linen twin and the input ``init`` needs."""
    return BlocksLinen(n), (jnp.ones((1, FEATURES)),)


class LlamaLayerNNX(nnx.Module):
    def __init__(self, c: LlamaConfig, rngs: nnx.Rngs):
        linear = lambda i, o: nnx.Linear(i, o, use_bias=False, rngs=rngs)  # noqa: E731
        self.attention_norm = nnx.RMSNorm(c.dim, rngs=rngs)
        self.wq, self.wk, self.wv, self.wo = (linear(c.dim, c.dim) for _ in range(4))
        self.ffn_norm = nnx.RMSNorm(c.dim, rngs=rngs)
        self.w1, self.w3 = linear(c.dim, c.hidden), linear(c.dim, c.hidden)
        self.w2 = linear(c.hidden, c.dim)


class LlamaNNX(nnx.Module):
    """Llama's variables (no forward pass: an abstract build only constructs the model)."""

    def __init__(self, c: LlamaConfig, rngs: nnx.Rngs):
        self.embed = nnx.Embed(c.vocab, c.dim, rngs=rngs)
        self.layers = nnx.List([LlamaLayerNNX(c, rngs) for _ in range(c.layers)])
        self.norm = nnx.RMSNorm(c.dim, rngs=rngs)
        self.lm_head = nnx.Linear(c.dim, c.vocab, use_bias=False, rngs=rngs)


class LlamaLayerLinen(nn.Module):
    c: LlamaConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = self.c
        h = nn.RMSNorm(name="attention_norm")(x)
        q, k, v = (nn.Dense(c.dim, use_bias=False, name=n)(h) for n in ("wq", "wk", "wv"))
        weights = jax.nn.softmax(q @ k.swapaxes(-1, -2) / math.sqrt(c.dim))
        x = x + nn.Dense(c.dim, use_bias=False, name="wo")(weights @ v)
        h = nn.RMSNorm(name="ffn_norm")(x)
        gated = jax.nn.silu(nn.Dense(c.hidden, use_bias=False, name="w1")(h)) * \
            nn.Dense(c.hidden, use_bias=False, name="w3")(h)
        return x + nn.Dense(c.dim, use_bias=False, name="w2")(gated)


class LlamaLinen(nn.Module):
    c: LlamaConfig

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        x = nn.Embed(self.c.vocab, self.c.dim, name="embed")(tokens)
        for i in range(self.c.layers):
            x = LlamaLayerLinen(self.c, name=f"layers_{i}")(x)
        return nn.Dense(self.c.vocab, use_bias=False, name="lm_head")(nn.RMSNorm(name="norm")(x))


def llama_nnx(config: LlamaConfig = LLAMA_7B) -> LlamaNNX:
    """The 7B Llama-like NNX model (build it abstractly: concretely it needs 27 GB)."""
    return LlamaNNX(config, nnx.Rngs(0))


def llama_linen(config: LlamaConfig = LLAMA_7B) -> tuple[LlamaLinen, tuple[jax.Array]]:
    """The Linen twin of ``llama_nnx`` and a token batch for ``init``."""
    return LlamaLinen(config), (jnp.ones((1, 8), jnp.int32),)


class DenseStack(nnx.Module):
    """``ARRAYS`` ``Linear(dim, dim)`` layers: the NNX twin of a Linen checkpoint of ``Dense_i`` (the convert bench)."""

    def __init__(self, dim: int, layers: int, rngs: nnx.Rngs):
        self.layers = nnx.List([nnx.Linear(dim, dim, rngs=rngs) for _ in range(layers)])

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers:
            x = layer(x)
        return x


_DENSE = re.compile(r"^dense_nnx_(?P<dim>\d+)$")
DENSE_LAYERS = 16


def factory(name: str) -> Callable[[], Any]:
    """The zero-argument factory a spec names: ``blocks_nnx_N``, ``blocks_linen_N``, ``llama_*``.

    Linen factories return ``(module, args)``, the form the loaders initialize.

    >>> factory("blocks_linen_3")()[0].n
    3
    """
    if name == "llama_nnx":
        return llama_nnx
    if name == "llama_linen":
        return llama_linen
    dense = _DENSE.match(name)
    if dense is not None:
        return lambda: DenseStack(int(dense["dim"]), DENSE_LAYERS, nnx.Rngs(0))
    match = _FACTORY.match(name)
    if match is None:
        raise AttributeError(f"bench.models has no factory {name!r} (blocks_nnx_N, blocks_linen_N, "
                             "llama_nnx, llama_linen, dense_nnx_DIM)")
    n = int(match["n"])
    if match["form"] == "nnx":
        return lambda: blocks_nnx(n)
    return lambda: blocks_linen(n)


def __getattr__(name: str) -> Callable[[], Any]:
    """``bench/models.py:blocks_nnx_1000`` as a spec: module attributes made on demand (PEP 562)."""
    if name.startswith("__"):
        raise AttributeError(name)
    return factory(name)
