"""Ports that keep every weight but store it in another layout, written the way third parties write them.

- heads: Linen ``DenseGeneral`` q/k/v kernels ``(D, H, hd)`` and out ``(H, hd, D)`` vs flat ``nnx.Linear``;
- fused: separate Linen ``query``/``key``/``value`` vs one ``nnx.Linear(D, 3D)`` named ``qkv``;
- gemma: Linen ``mlp`` holding ``gating_einsum`` ``(2, D, F)`` (or ``(2, F, D)``, transposed) and ``linear``
  directly, vs NNX ``mlp/gate_proj``, ``up_proj``, ``down_proj`` (flax's ``examples/gemma`` converter);
- torch: an NNX layer storing ``weight`` ``(out, in)`` applied as ``x @ W.T``; square: the same, 16×16.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

D, H, HD, F = 16, 2, 8, 24
X = jnp.linspace(-1, 1, 3 * D).reshape(1, 3, D)


def _attend(q, k, v):
    w = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k) / HD ** 0.5, axis=-1)
    return jnp.einsum("bhqk,bkhd->bqhd", w, v)


# -- heads ------------------------------------------------------------------------------------------
class HeadsAttention(nn.Module):
    @nn.compact
    def __call__(self, x):
        q = nn.DenseGeneral((H, HD), name="query")(x)
        k = nn.DenseGeneral((H, HD), name="key")(x)
        v = nn.DenseGeneral((H, HD), name="value")(x)
        return nn.DenseGeneral(D, axis=(-2, -1), name="out")(_attend(q, k, v))


class HeadsModel(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(4, name="head")(HeadsAttention(name="attn")(x))


def linen_heads():
    return HeadsModel(), (X,), {}


class FlatAttention(nnx.Module):
    def __init__(self, rngs):
        self.q_proj = nnx.Linear(D, H * HD, rngs=rngs)
        self.k_proj = nnx.Linear(D, H * HD, rngs=rngs)
        self.v_proj = nnx.Linear(D, H * HD, rngs=rngs)
        self.o_proj = nnx.Linear(H * HD, D, rngs=rngs)

    def __call__(self, x):
        b, t, _ = x.shape
        q, k, v = (p(x).reshape(b, t, H, HD) for p in (self.q_proj, self.k_proj, self.v_proj))
        return self.o_proj(_attend(q, k, v).reshape(b, t, H * HD))


class FlatModel(nnx.Module):
    def __init__(self, rngs):
        self.attn = FlatAttention(rngs)
        self.head = nnx.Linear(D, 4, rngs=rngs)

    def __call__(self, x):
        return self.head(self.attn(x))


def nnx_heads():
    return FlatModel(nnx.Rngs(0))


# -- fused qkv --------------------------------------------------------------------------------------
class SeparateAttention(nn.Module):
    @nn.compact
    def __call__(self, x):
        b, t, _ = x.shape
        q, k, v = (nn.Dense(D, name=n)(x).reshape(b, t, H, HD) for n in ("query", "key", "value"))
        return nn.Dense(D, name="out")(_attend(q, k, v).reshape(b, t, D))


class SeparateModel(nn.Module):
    @nn.compact
    def __call__(self, x):
        return SeparateAttention(name="attn")(x)


def linen_fused():
    return SeparateModel(), (X,), {}


class FusedAttention(nnx.Module):
    def __init__(self, rngs):
        self.qkv = nnx.Linear(D, 3 * D, rngs=rngs)
        self.out = nnx.Linear(D, D, rngs=rngs)

    def __call__(self, x):
        b, t, _ = x.shape
        q, k, v = (p.reshape(b, t, H, HD) for p in jnp.split(self.qkv(x), 3, axis=-1))
        return self.out(_attend(q, k, v).reshape(b, t, D))


class FusedModel(nnx.Module):
    def __init__(self, rngs):
        self.attn = FusedAttention(rngs)

    def __call__(self, x):
        return self.attn(x)


def nnx_fused():
    return FusedModel(nnx.Rngs(0))


# -- Gemma-style gated MLP ------------------------------------------------------------------------
class GemmaMlp(nn.Module):
    transpose_gating_einsum: bool = False

    @nn.compact
    def __call__(self, x):
        shape = (2, F, D) if self.transpose_gating_einsum else (2, D, F)
        w = self.param("gating_einsum", nn.initializers.normal(0.5), shape)
        if self.transpose_gating_einsum:
            gate, up = jnp.einsum("...d,fd->...f", x, w[0]), jnp.einsum("...d,fd->...f", x, w[1])
        else:
            gate, up = x @ w[0], x @ w[1]
        linear = self.param("linear", nn.initializers.normal(0.5), (F, D))
        return (nn.gelu(gate) * up) @ linear


class GemmaBlock(nn.Module):
    transpose_gating_einsum: bool = False

    @nn.compact
    def __call__(self, x):
        x = nn.RMSNorm(name="pre_ffw_norm")(x)
        return GemmaMlp(self.transpose_gating_einsum, name="mlp")(x)


def linen_gemma():
    return GemmaBlock(), (X,), {}


def linen_gemma_transposed():
    return GemmaBlock(transpose_gating_einsum=True), (X,), {}


class NnxMlp(nnx.Module):
    def __init__(self, rngs):
        self.gate_proj = nnx.Linear(D, F, use_bias=False, rngs=rngs)
        self.up_proj = nnx.Linear(D, F, use_bias=False, rngs=rngs)
        self.down_proj = nnx.Linear(F, D, use_bias=False, rngs=rngs)

    def __call__(self, x):
        return self.down_proj(nnx.gelu(self.gate_proj(x)) * self.up_proj(x))


class NnxGemmaBlock(nnx.Module):
    def __init__(self, rngs):
        self.pre_ffw_norm = nnx.RMSNorm(D, rngs=rngs)
        self.mlp = NnxMlp(rngs)

    def __call__(self, x):
        return self.mlp(self.pre_ffw_norm(x))


def nnx_gemma():
    return NnxGemmaBlock(nnx.Rngs(0))


# -- PyTorch-style layers ------------------------------------------------------------------------
class TorchLinear(nnx.Module):
    """A port from PyTorch: ``weight`` is ``(out, in)`` and the layer computes ``x @ W.T + b``."""

    def __init__(self, din, dout, rngs):
        self.weight = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (dout, din)))
        self.bias = nnx.Param(jnp.zeros((dout,)))

    def __call__(self, x):
        return x @ self.weight[...].T + self.bias[...]


class Mlp(nn.Module):
    hidden: int = 32

    @nn.compact
    def __call__(self, x):
        return nn.Dense(4, name="fc2")(nn.relu(nn.Dense(self.hidden, name="fc1")(x)))


class TorchMlp(nnx.Module):
    def __init__(self, rngs, hidden=32):
        self.fc1 = TorchLinear(D, hidden, rngs)
        self.fc2 = TorchLinear(hidden, 4, rngs)

    def __call__(self, x):
        return self.fc2(nnx.relu(self.fc1(x)))


def linen_torch():
    return Mlp(), (X,), {}


def nnx_torch():
    return TorchMlp(nnx.Rngs(0))


def linen_square():
    return Mlp(hidden=D), (X,), {}


def nnx_square():
    return TorchMlp(nnx.Rngs(0), hidden=D)


# -- the other way: a fused Linen qkv split into separate NNX projections ---------------------------
class FusedLinen(nn.Module):
    @nn.compact
    def __call__(self, x):
        b, t, _ = x.shape
        q, k, v = (p.reshape(b, t, H, HD) for p in jnp.split(nn.Dense(3 * D, name="qkv")(x), 3, axis=-1))
        return nn.Dense(D, name="out")(_attend(q, k, v).reshape(b, t, D))


def linen_qkv():
    return FusedLinen(), (X,), {}


class SplitPort(nnx.Module):
    def __init__(self, rngs):
        self.query = nnx.Linear(D, D, rngs=rngs)
        self.key = nnx.Linear(D, D, rngs=rngs)
        self.value = nnx.Linear(D, D, rngs=rngs)
        self.out = nnx.Linear(D, D, rngs=rngs)

    def __call__(self, x):
        b, t, _ = x.shape
        q, k, v = (p(x).reshape(b, t, H, HD) for p in (self.query, self.key, self.value))
        return self.out(_attend(q, k, v).reshape(b, t, D))


def nnx_split():
    return SplitPort(nnx.Rngs(0))
