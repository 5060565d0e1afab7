"""Linen / NNX pairs built from flax's own layers, beyond the guide's examples (test fixtures).

Each pair is two factories, ``<name>_linen`` and ``<name>_nnx``, usable as source specs
(``tests/models/flax_layers.py:cnn_linen``).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx


class LinenCNN(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Conv(8, (3, 3))(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = nn.relu(x)
        x = nn.Conv(16, (3, 3), strides=2)(x)
        x = x.reshape((x.shape[0], -1))
        return nn.Dense(10)(x)


class NnxCNN(nnx.Module):
    def __init__(self, rngs):
        self.conv1 = nnx.Conv(3, 8, (3, 3), rngs=rngs)
        self.bn = nnx.BatchNorm(8, rngs=rngs)
        self.conv2 = nnx.Conv(8, 16, (3, 3), strides=2, rngs=rngs)
        self.head = nnx.Linear(16 * 4 * 4, 10, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.bn(self.conv1(x)))
        x = self.conv2(x)
        return self.head(x.reshape((x.shape[0], -1)))


def cnn_linen():
    return LinenCNN(), (jnp.ones((2, 8, 8, 3)),), {"train": True}


def cnn_nnx():
    return NnxCNN(nnx.Rngs(0)), (jnp.ones((2, 8, 8, 3)),), {}


class LinenTransformerBlock(nn.Module):
    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(100, 16)(tokens)
        h = nn.LayerNorm()(x)
        x = x + nn.MultiHeadDotProductAttention(num_heads=4, qkv_features=16)(h)
        h = nn.LayerNorm()(x)
        h = nn.Dense(64)(h)
        return x + nn.Dense(16)(nn.gelu(h))


class NnxTransformerBlock(nnx.Module):
    def __init__(self, rngs):
        self.embed = nnx.Embed(100, 16, rngs=rngs)
        self.ln1 = nnx.LayerNorm(16, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(num_heads=4, in_features=16, qkv_features=16, decode=False, rngs=rngs)
        self.ln2 = nnx.LayerNorm(16, rngs=rngs)
        self.up = nnx.Linear(16, 64, rngs=rngs)
        self.down = nnx.Linear(64, 16, rngs=rngs)

    def __call__(self, tokens):
        x = self.embed(tokens)
        x = x + self.attn(self.ln1(x))
        return x + self.down(nnx.gelu(self.up(self.ln2(x))))


def transformer_linen():
    return LinenTransformerBlock(), (jnp.ones((1, 5), jnp.int32),), {}


def transformer_nnx():
    return NnxTransformerBlock(nnx.Rngs(0)), (jnp.ones((1, 5), jnp.int32),), {}


class LinenLSTM(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.RNN(nn.LSTMCell(8))(x)


def lstm_linen():
    return LinenLSTM(), (jnp.ones((2, 5, 4)),), {}


def lstm_nnx():
    class NnxLSTM(nnx.Module):
        def __init__(self, rngs):
            self.rnn = nnx.RNN(nnx.LSTMCell(4, 8, rngs=rngs), rngs=rngs)

        def __call__(self, x):
            return self.rnn(x)

    return NnxLSTM(nnx.Rngs(0)), (jnp.ones((2, 5, 4)),), {}


def lstm_cell_linen():
    cell = nn.LSTMCell(8)
    carry = cell.initialize_carry(jax.random.key(1), (2, 4))
    return cell, (carry, jnp.ones((2, 4))), {}


def lstm_cell_nnx():
    return nnx.LSTMCell(4, 8, rngs=nnx.Rngs(0)), (), {}


class LinenSetupList(nn.Module):
    def setup(self):
        self.layers = [nn.Dense(8) for _ in range(3)]
        self.norm = nn.LayerNorm()

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class NnxList(nnx.Module):
    def __init__(self, rngs):
        self.layers = nnx.List([nnx.Linear(4 if i == 0 else 8, 8, rngs=rngs) for i in range(3)])
        self.norm = nnx.LayerNorm(8, rngs=rngs)

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


def setup_list_linen():
    return LinenSetupList(), (jnp.ones((1, 4)),), {}


def setup_list_nnx():
    return NnxList(nnx.Rngs(0)), (jnp.ones((1, 4)),), {}


class LinenLoop(nn.Module):
    @nn.compact
    def __call__(self, x):
        for _ in range(3):
            x = nn.Dense(8)(x)
        return x


def loop_linen():
    return LinenLoop(), (jnp.ones((1, 8)),), {}


def loop_nnx():
    class Stack(nnx.Module):
        def __init__(self, rngs):
            self.blocks = nnx.List([nnx.Linear(8, 8, rngs=rngs) for _ in range(3)])

        def __call__(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    return Stack(nnx.Rngs(0)), (jnp.ones((1, 8)),), {}


PAIRS = ["cnn", "transformer", "lstm", "lstm_cell", "setup_list", "loop"]
