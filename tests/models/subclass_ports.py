"""Ports whose NNX Variables subclass nnx.Param, as EasyDeL (ArrayParam) and flax's LoRA do."""

import flax.linen as nn
import jax.numpy as jnp
from flax import nnx


class ArrayParam(nnx.Param):
    """EasyDeL-style: a Param that carries its own bookkeeping."""


class Counter(nnx.Variable):
    pass


class Block(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.gelu(nn.Dense(32, name="c_fc")(nn.LayerNorm(name="ln_1")(x)))
        count = self.variable("counter", "count", lambda: jnp.zeros((), jnp.int32))
        count.value += 1
        return x + nn.Dense(16, name="c_proj")(h)


def linen():
    return Block(), (jnp.linspace(-1, 1, 32).reshape(2, 16),), {}


class Linear(nnx.Module):
    def __init__(self, din, dout, rngs):
        self.kernel = ArrayParam(nnx.initializers.lecun_normal()(rngs.params(), (din, dout)))
        self.bias = ArrayParam(jnp.zeros((dout,)))

    def __call__(self, x):
        return x @ self.kernel[...] + self.bias[...]


class Port(nnx.Module):
    def __init__(self, rngs):
        self.ln_1 = nnx.LayerNorm(16, rngs=rngs)
        self.c_fc = Linear(16, 32, rngs)
        self.c_proj = Linear(32, 16, rngs)
        self.count = Counter(jnp.zeros((), jnp.int32))

    def __call__(self, x):
        self.count[...] += 1
        return x + self.c_proj(nnx.gelu(self.c_fc(self.ln_1(x))))


def nnx_port():
    return Port(nnx.Rngs(0))


class LoraPort(nnx.Module):
    def __init__(self, rngs):
        self.ln_1 = nnx.LayerNorm(16, rngs=rngs)
        self.c_fc = nnx.Linear(16, 32, rngs=rngs)
        self.c_proj = nnx.Linear(32, 16, rngs=rngs)
        self.c_fc.kernel = nnx.LoRAParam(self.c_fc.kernel[...])
        self.count = Counter(jnp.zeros((), jnp.int32))

    def __call__(self, x):
        self.count[...] += 1
        return x + self.c_proj(nnx.gelu(self.c_fc(self.ln_1(x))))


def lora_port():
    return LoraPort(nnx.Rngs(0))


class WrongKind(nnx.Module):
    """A port that keeps a weight as a BatchStat: a real type mismatch, still reported."""

    def __init__(self, rngs):
        self.ln_1 = nnx.LayerNorm(16, rngs=rngs)
        self.c_fc = nnx.Linear(16, 32, rngs=rngs)
        self.c_proj = nnx.Linear(32, 16, rngs=rngs)
        self.c_proj.bias = nnx.BatchStat(self.c_proj.bias[...])
        self.count = Counter(jnp.zeros((), jnp.int32))

    def __call__(self, x):
        self.count[...] += 1
        return x + self.c_proj(nnx.gelu(self.c_fc(self.ln_1(x))))


def wrong_kind():
    return WrongKind(nnx.Rngs(0))
