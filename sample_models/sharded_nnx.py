"""Sharding, NNX form: the same transformer block, annotated with ``nnx.with_partitioning``.

The logical names, the mesh and the rules are the Linen form's: a port keeps them. Linen's
``nn.with_logical_partitioning`` becomes ``nnx.with_partitioning`` (the names land in the
Variable's ``out_sharding``). NNX shards while it builds, so without a mesh it needs
``nnx.use_eager_sharding(False)``: ``make_block`` builds on the mesh when 8 devices exist, and
with the annotations only otherwise.
"""

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import AxisType

from inspector.example import Inputs, NnxExample
from sample_models.sharded_linen import EMBED, HEAD_DIM, HEADS, MESH, MLP


def annotated(init, *names):
    return nnx.with_partitioning(init, names)


def layer_norm(rngs: nnx.Rngs) -> nnx.LayerNorm:
    return nnx.LayerNorm(EMBED, scale_init=annotated(nnx.initializers.ones_init(), "embed"),
                         bias_init=annotated(nnx.initializers.zeros_init(), "embed"), rngs=rngs)


class Block(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        lecun, zeros = nnx.initializers.lecun_normal(), nnx.initializers.zeros_init()
        self.ln1 = layer_norm(rngs)
        self.attn = nnx.MultiHeadAttention(
            HEADS, EMBED, qkv_features=HEADS * HEAD_DIM, decode=False, keep_rngs=False,
            kernel_init=annotated(lecun, "embed", "heads", "kv"), bias_init=annotated(zeros, "heads", "kv"),
            out_kernel_init=annotated(lecun, "heads", "kv", "embed"), out_bias_init=annotated(zeros, "embed"),
            rngs=rngs)
        self.ln2 = layer_norm(rngs)
        self.mlp_in = nnx.Linear(EMBED, MLP, kernel_init=annotated(lecun, "embed", "mlp"),
                                 bias_init=annotated(zeros, "mlp"), rngs=rngs)
        self.mlp_out = nnx.Linear(MLP, EMBED, kernel_init=annotated(lecun, "mlp", "embed"),
                                  bias_init=annotated(zeros, "embed"), rngs=rngs)

    def __call__(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp_out(jax.nn.gelu(self.mlp_in(self.ln2(x))))


def make_block() -> Block:
    """The block on the mesh it is written for when there are enough devices, else with its
    annotations only: while NNX shards eagerly it refuses annotations without a mesh.

    A caller that already chose (a mesh and rules set, as the loader does, or eager sharding off)
    is followed as it is; ``jax.set_mesh`` cannot be entered inside ``nnx.eval_shape`` anyway.
    """
    if not jax.sharding.get_abstract_mesh().empty or not nnx.using_eager_sharding():
        return Block(nnx.Rngs(0))
    if jax.device_count() < MESH.size:
        with nnx.use_eager_sharding(False):
            return Block(nnx.Rngs(0))
    mesh = jax.make_mesh(MESH.shape, MESH.axis_names, axis_types=(AxisType.Auto,) * len(MESH.axes),
                         devices=jax.devices()[:MESH.size])
    with jax.set_mesh(mesh), nnx.logical_axis_rules(MESH.rules):
        return Block(nnx.Rngs(0))


def example() -> NnxExample:
    return NnxExample(build=make_block, infer=Inputs((jnp.ones((2, 8, EMBED)),)), mesh=MESH)
