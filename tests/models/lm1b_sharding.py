"""An lm1b-style port: Linen keeps logical axis names, the NNX port mesh axes after its axis rules.

flax's own ``examples/lm1b`` annotates with ``nn.with_logical_partitioning`` (``('vocab', 'embed')``);
``examples/lm1b_nnx`` wrote the mesh axes the rules give directly into ``nnx.with_partitioning``.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

VOCAB, EMBED, MLP = 32, 8, 16
# The rules the port applied: logical name → mesh axis.
RULES = [["vocab", None], ["embed", "model"], ["mlp", "data"]]
# A wrong guess: mlp on the model axis (which embed already takes where both appear).
WRONG_RULES = [["vocab", None], ["embed", "model"], ["mlp", "model"]]


class Lm(nn.Module):
    @nn.compact
    def __call__(self, tokens):
        init = nn.with_logical_partitioning(nn.initializers.normal(1.0), ("vocab", "embed"))
        x = nn.Embed(VOCAB, EMBED, name="embed", embedding_init=init)(tokens)
        x = nn.LayerNorm(name="ln", scale_init=nn.with_logical_partitioning(nn.initializers.ones, ("embed",)),
                         use_bias=False)(x)
        h = nn.Dense(MLP, name="wi",
                     kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), ("embed", "mlp")),
                     bias_init=nn.with_logical_partitioning(nn.initializers.zeros_init(), ("mlp",)))(x)
        return nn.Dense(EMBED, name="wo", use_bias=False,
                        kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), ("mlp", "embed")))(
            nn.relu(h))


def linen():
    return Lm(), (jnp.arange(6).reshape(2, 3) % VOCAB,), {}


class LmPort(nnx.Module):
    def __init__(self, rngs):
        p = nnx.with_partitioning
        self.embed = nnx.Embed(VOCAB, EMBED, rngs=rngs, embedding_init=p(nnx.initializers.normal(1.0), (None, "model")))
        self.ln = nnx.LayerNorm(EMBED, use_bias=False, rngs=rngs, scale_init=p(nnx.initializers.ones, ("model",)))
        self.wi = nnx.Linear(EMBED, MLP, rngs=rngs, kernel_init=p(nnx.initializers.lecun_normal(), ("model", "data")),
                             bias_init=p(nnx.initializers.zeros_init(), ("data",)))
        self.wo = nnx.Linear(MLP, EMBED, use_bias=False, rngs=rngs,
                             kernel_init=p(nnx.initializers.lecun_normal(), ("data", "model")))

    def __call__(self, tokens):
        return self.wo(nnx.relu(self.wi(self.ln(self.embed(tokens)))))


def nnx_port():
    mesh = jax.make_mesh((1, 1), ("data", "model"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
    with jax.set_mesh(mesh):
        return LmPort(nnx.Rngs(0))
