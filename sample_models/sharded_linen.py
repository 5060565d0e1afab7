"""Sharding, Linen form: a small transformer block annotated for a 2×4 (data, model) mesh.

Every parameter carries logical axis names (``nn.with_logical_partitioning``); ``MESH`` says which
mesh the block is written for and how its logical names map onto it: ``embed`` over ``data``
(parameters split FSDP-style), ``heads`` and ``mlp`` over ``model`` (tensor parallel). On 8 devices
(``--devices 8`` on a laptop) the loader builds it on that mesh; on fewer, it shows the layout the
variables would have there.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from inspector.example import Inputs, LinenExample
from inspector.sharding import MeshPlan

EMBED, HEADS, HEAD_DIM, MLP = 64, 4, 16, 256
RULES = (("batch", "data"), ("embed", "data"), ("heads", "model"), ("kv", None), ("mlp", "model"))
MESH = MeshPlan(axes=(("data", 2), ("model", 4)), rules=RULES)


def annotated(init, *names):
    return nn.with_logical_partitioning(init, names)


def layer_norm(name: str) -> nn.LayerNorm:
    return nn.LayerNorm(name=name, scale_init=annotated(nn.initializers.ones_init(), "embed"),
                        bias_init=annotated(nn.initializers.zeros_init(), "embed"))


class Heads(nn.Module):
    """``embed → (heads, kv)``: what ``nn.DenseGeneral`` computes, with a kernel annotated per axis.

    ``nn.MultiHeadDotProductAttention`` is not used: its ``DenseGeneral`` initializes a flat
    ``(embed, heads·kv)`` kernel and reshapes it, and under a mesh flax 0.12.8 applies the three
    logical names to the flat rank-2 kernel and fails.
    """

    @nn.compact
    def __call__(self, x):
        init = nn.initializers.lecun_normal(in_axis=0, out_axis=(1, 2))
        kernel = self.param("kernel", annotated(init, "embed", "heads", "kv"), (EMBED, HEADS, HEAD_DIM))
        bias = self.param("bias", annotated(nn.initializers.zeros_init(), "heads", "kv"), (HEADS, HEAD_DIM))
        return jnp.einsum("...e,ehd->...hd", x, kernel) + bias


class Merge(nn.Module):
    """``(heads, kv) → embed``, the attention's output projection."""

    @nn.compact
    def __call__(self, x):
        init = nn.initializers.lecun_normal(in_axis=(0, 1), out_axis=2)
        kernel = self.param("kernel", annotated(init, "heads", "kv", "embed"), (HEADS, HEAD_DIM, EMBED))
        bias = self.param("bias", annotated(nn.initializers.zeros_init(), "embed"), (EMBED,))
        return jnp.einsum("...hd,hde->...e", x, kernel) + bias


class Attention(nn.Module):
    @nn.compact
    def __call__(self, x):
        q, k, v = (Heads(name=name)(x) for name in ("query", "key", "value"))
        return Merge(name="out")(nn.dot_product_attention(q, k, v))


class Block(nn.Module):
    @nn.compact
    def __call__(self, x):
        lecun, zeros = nn.initializers.lecun_normal(), nn.initializers.zeros_init()
        x = x + Attention(name="attn")(layer_norm("ln1")(x))
        h = nn.Dense(MLP, name="mlp_in", kernel_init=annotated(lecun, "embed", "mlp"),
                     bias_init=annotated(zeros, "mlp"))(layer_norm("ln2")(x))
        h = nn.Dense(EMBED, name="mlp_out", kernel_init=annotated(lecun, "mlp", "embed"),
                     bias_init=annotated(zeros, "embed"))(jax.nn.gelu(h))
        return x + h


def example() -> LinenExample:
    x = jnp.ones((2, 8, EMBED))
    return LinenExample(Block(), init=Inputs((x,)), infer=Inputs((x,)), mesh=MESH)
