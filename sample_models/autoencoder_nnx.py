"""Multiple methods, NNX form: AutoEncoder(784, 256, 784) with encode, decode and __call__."""

import jax.numpy as jnp
from flax import nnx

from inspector.example import Inputs, NnxExample


class AutoEncoder(nnx.Module):
    def __init__(self, in_dim: int, embed_dim: int, output_dim: int, rngs):
        self.encoder = nnx.Linear(in_dim, embed_dim, rngs=rngs)
        self.decoder = nnx.Linear(embed_dim, output_dim, rngs=rngs)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, x):
        return self.decoder(x)

    def __call__(self, x):
        x = self.encode(x)
        x = self.decode(x)
        return x


def example() -> NnxExample:
    return NnxExample(build=lambda: AutoEncoder(784, 256, 784, rngs=nnx.Rngs(0)),
                      infer=Inputs((jnp.ones((1, 784)),)))
