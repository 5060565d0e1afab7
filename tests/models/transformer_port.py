"""A decoder-only transformer in Linen and its hand port to NNX, with a few planted mistakes.

Written the way such ports look in the wild: the Linen model is setup-style at the top (a list of
blocks, so Flax names them ``layers_0 .. layers_N``) and compact inside each block; the NNX model
keeps its blocks in an ``nnx.List`` (``layers/0 .. layers/N``), renames the norms and gives every
block a Dropout that holds RNG state. With the default 180 layers each side has about 2,000
modules (``large_linen`` / ``large_nnx``); ``small_*`` has 6 layers and the same kinds of mistakes.

Planted in the NNX port, at layers picked from the depth (see ``planted``):
- ``mlp/wo`` stored PyTorch-style as (out, in): a shape mismatch;
- ``attn/out`` without a bias: the Linen bias has nowhere to go;
- ``norm2`` in bfloat16: a dtype mismatch;
- an extra ``adapter`` Linear in the last block, which Linen does not have.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

WIDTH, HIDDEN, VOCAB, TOKENS = 16, 32, 64, 4
LARGE, SMALL = 180, 6


def planted(layers: int) -> dict[str, int]:
    """Which block carries which mistake, spread over the depth."""
    return {"transposed_wo": layers // 6, "no_out_bias": layers // 3, "bf16_norm": (2 * layers) // 3,
            "adapter": layers - 1}


class SelfAttention(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        q = nn.Dense(self.width, name="query")(x)
        k = nn.Dense(self.width, name="key")(x)
        v = nn.Dense(self.width, name="value")(x)
        weights = jax.nn.softmax(q @ jnp.swapaxes(k, -1, -2) / jnp.sqrt(self.width), axis=-1)
        return nn.Dense(self.width, name="out")(weights @ v)


class MlpBlock(nn.Module):
    hidden: int

    @nn.compact
    def __call__(self, x):
        h = nn.gelu(nn.Dense(self.hidden, name="wi")(x))
        return nn.Dense(x.shape[-1], name="wo")(h)


class DecoderLayer(nn.Module):
    width: int
    hidden: int

    @nn.compact
    def __call__(self, x, deterministic: bool = True):
        h = nn.LayerNorm(name="pre_attention_norm")(x)
        x = x + nn.Dropout(0.1, deterministic=deterministic)(SelfAttention(self.width, name="attention")(h))
        h = nn.LayerNorm(name="pre_mlp_norm")(x)
        return x + nn.Dropout(0.1, deterministic=deterministic)(MlpBlock(self.hidden, name="mlp")(h))


class Decoder(nn.Module):
    num_layers: int

    def setup(self):
        self.embed = nn.Embed(VOCAB, WIDTH)
        self.layers = [DecoderLayer(WIDTH, HIDDEN) for _ in range(self.num_layers)]
        self.final_norm = nn.LayerNorm()
        self.head = nn.Dense(VOCAB)

    def __call__(self, tokens, deterministic: bool = True):
        x = self.embed(tokens)
        for layer in self.layers:
            x = layer(x, deterministic)
        return self.head(self.final_norm(x))


class Attention(nnx.Module):
    def __init__(self, width: int, *, out_bias: bool, rngs: nnx.Rngs):
        self.query = nnx.Linear(width, width, rngs=rngs)
        self.key = nnx.Linear(width, width, rngs=rngs)
        self.value = nnx.Linear(width, width, rngs=rngs)
        self.out = nnx.Linear(width, width, use_bias=out_bias, rngs=rngs)
        self.width = width

    def __call__(self, x):
        q, k, v = self.query(x), self.key(x), self.value(x)
        weights = jax.nn.softmax(q @ jnp.swapaxes(k, -1, -2) / jnp.sqrt(self.width), axis=-1)
        return self.out(weights @ v)


class TorchLinear(nnx.Module):
    """A Linear that keeps its weight as (out, in), the way a PyTorch checkpoint has it."""

    def __init__(self, din: int, dout: int, *, rngs: nnx.Rngs):
        self.kernel = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (dout, din)))
        self.bias = nnx.Param(jnp.zeros((dout,)))

    def __call__(self, x):
        return x @ self.kernel[...].T + self.bias[...]


class Mlp(nnx.Module):
    def __init__(self, width: int, hidden: int, *, torch_wo: bool, rngs: nnx.Rngs):
        self.wi = nnx.Linear(width, hidden, rngs=rngs)
        self.wo = TorchLinear(hidden, width, rngs=rngs) if torch_wo else nnx.Linear(hidden, width, rngs=rngs)

    def __call__(self, x):
        return self.wo(nnx.gelu(self.wi(x)))


class Block(nnx.Module):
    def __init__(self, width: int, hidden: int, *, rngs: nnx.Rngs, torch_wo: bool = False,
                 out_bias: bool = True, norm_dtype=jnp.float32, adapter: bool = False):
        self.norm1 = nnx.LayerNorm(width, rngs=rngs)
        self.attn = Attention(width, out_bias=out_bias, rngs=rngs)
        self.norm2 = nnx.LayerNorm(width, param_dtype=norm_dtype, rngs=rngs)
        self.mlp = Mlp(width, hidden, torch_wo=torch_wo, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)
        self.adapter = nnx.Linear(width, width, rngs=rngs) if adapter else None

    def __call__(self, x):
        x = x + self.dropout(self.attn(self.norm1(x)))
        x = x + self.dropout(self.mlp(self.norm2(x)))
        return x if self.adapter is None else x + self.adapter(x)


class Transformer(nnx.Module):
    def __init__(self, num_layers: int, *, rngs: nnx.Rngs):
        marks = planted(num_layers)
        self.embedder = nnx.Embed(VOCAB, WIDTH, rngs=rngs)
        self.layers = nnx.List([
            Block(WIDTH, HIDDEN, rngs=rngs, torch_wo=i == marks["transposed_wo"],
                  out_bias=i != marks["no_out_bias"],
                  norm_dtype=jnp.bfloat16 if i == marks["bf16_norm"] else jnp.float32,
                  adapter=i == marks["adapter"])
            for i in range(num_layers)])
        self.final_norm = nnx.LayerNorm(WIDTH, rngs=rngs)
        self.lm_head = nnx.Linear(WIDTH, VOCAB, rngs=rngs)

    def __call__(self, tokens):
        x = self.embedder(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.final_norm(x))


def _tokens():
    return jnp.zeros((1, TOKENS), jnp.int32)


def large_linen():
    return Decoder(LARGE), (_tokens(),), {}


def large_nnx():
    return Transformer(LARGE, rngs=nnx.Rngs(0)), (_tokens(),), {}


def small_linen():
    return Decoder(SMALL), (_tokens(),), {}


def small_nnx():
    return Transformer(SMALL, rngs=nnx.Rngs(0)), (_tokens(),), {}
