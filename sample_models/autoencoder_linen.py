"""Multiple methods, Linen form: AutoEncoder(256, 784) with encode, decode and __call__."""

import flax.linen as nn
import jax.numpy as jnp

from inspector.example import Inputs, LinenExample


class AutoEncoder(nn.Module):
    embed_dim: int
    output_dim: int

    def setup(self):
        self.encoder = nn.Dense(self.embed_dim)
        self.decoder = nn.Dense(self.output_dim)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, x):
        return self.decoder(x)

    def __call__(self, x):
        x = self.encode(x)
        x = self.decode(x)
        return x


def example() -> LinenExample:
    x = jnp.ones((1, 784))
    return LinenExample(AutoEncoder(256, 784), init=Inputs(kwargs={"x": x}),
                        infer=Inputs(kwargs={"x": x}))
