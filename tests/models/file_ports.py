"""Ports whose Linen weights come from a file (test fixtures), written the way people write them.

A weight file or checkpoint has no forward pass and often no creation order, so these are the
cases where position alone could pair same-shape layers — and where the names, the file's own
order, or the content of an ``nnx.List`` must do it instead.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

D = 32
X = jax.random.normal(jax.random.key(4), (2, D))


# -- three same-shape layers with unrelated names --------------------------------------------------
class LinenStack(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.tanh(nn.Dense(D, name="embed")(x))
        x = nn.tanh(nn.Dense(D, name="proj")(x))
        return nn.Dense(D, name="head")(x)


class NNXStack(nnx.Module):
    def __init__(self, *, rngs):
        self.w_in = nnx.Linear(D, D, rngs=rngs)
        self.w_mid = nnx.Linear(D, D, rngs=rngs)
        self.w_last = nnx.Linear(D, D, rngs=rngs)

    def __call__(self, x):
        x = nnx.tanh(self.w_in(x))
        x = nnx.tanh(self.w_mid(x))
        return self.w_last(x)


def linen_stack():
    return LinenStack(), (X,), {}


def nnx_stack():
    return NNXStack(rngs=nnx.Rngs(0)), (X,), {}


# -- attention: Linen DenseGeneral heads (query/key/value/out) vs flat q_proj/k_proj/v_proj/o_proj --
H, HD = 4, 8


class LinenAttention(nn.Module):
    def setup(self):
        self.query = nn.DenseGeneral((H, HD))
        self.key = nn.DenseGeneral((H, HD))
        self.value = nn.DenseGeneral((H, HD))
        self.out = nn.DenseGeneral(D, axis=(-2, -1))
        self.ln = nn.LayerNorm()

    def __call__(self, x):
        q, k, v = self.query(x), self.key(x), self.value(x)
        w = jax.nn.softmax(jnp.einsum("bhd,Bhd->hbB", q, k) / HD ** 0.5)
        return self.ln(x + self.out(jnp.einsum("hbB,Bhd->bhd", w, v)))


class NNXAttention(nnx.Module):
    def __init__(self, *, rngs):
        self.q_proj = nnx.Linear(D, H * HD, rngs=rngs)
        self.k_proj = nnx.Linear(D, H * HD, rngs=rngs)
        self.v_proj = nnx.Linear(D, H * HD, rngs=rngs)
        self.o_proj = nnx.Linear(H * HD, D, rngs=rngs)
        self.norm = nnx.LayerNorm(D, rngs=rngs)

    def __call__(self, x):
        b = x.shape[0]
        q, k, v = (p(x).reshape(b, H, HD) for p in (self.q_proj, self.k_proj, self.v_proj))
        w = jax.nn.softmax(jnp.einsum("bhd,Bhd->hbB", q, k) / HD ** 0.5)
        return self.norm(x + self.o_proj(jnp.einsum("hbB,Bhd->bhd", w, v).reshape(b, H * HD)))


def linen_attention():
    return LinenAttention(), (X,), {}


def nnx_attention():
    return NNXAttention(rngs=nnx.Rngs(0)), (X,), {}


# -- PyTorch-style layers in an nnx.List: ``weight`` stored (out, in), applied as x @ W.T ----------
class TorchLinear(nnx.Module):
    def __init__(self, fan_in, fan_out, *, rngs):
        self.weight = nnx.Param(jax.random.normal(rngs.params(), (fan_out, fan_in)) / fan_in ** 0.5)
        self.bias = nnx.Param(jnp.zeros((fan_out,)))

    def __call__(self, x):
        return x @ self.weight[...].T + self.bias[...]


class LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        for width in (24, 24, 8):
            x = nn.relu(nn.Dense(width)(x)) if width != 8 else nn.Dense(width)(x)
        return x


class TorchMLP(nnx.Module):
    def __init__(self, *, rngs):
        self.layers = nnx.List([TorchLinear(D, 24, rngs=rngs), TorchLinear(24, 24, rngs=rngs),
                                TorchLinear(24, 8, rngs=rngs)])

    def __call__(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = nnx.relu(x)
        return x


def linen_mlp():
    return LinenMLP(), (X,), {}


def torch_mlp():
    return TorchMLP(rngs=nnx.Rngs(0)), (X,), {}


# -- layer-like names whose sorted order is not the order of use --------------------------------
class LinenNumbered(nn.Module):
    def setup(self):
        self.dense1 = nn.Dense(D)
        self.dense2 = nn.Dense(D)
        self.dense3 = nn.Dense(D)

    def __call__(self, x):  # dense3 runs before dense2
        return self.dense2(nn.relu(self.dense3(nn.relu(self.dense1(x)))))


class NNXLettered(nnx.Module):
    def __init__(self, *, rngs):
        self.fc_a = nnx.Linear(D, D, rngs=rngs)
        self.fc_b = nnx.Linear(D, D, rngs=rngs)
        self.fc_c = nnx.Linear(D, D, rngs=rngs)

    def __call__(self, x):
        return self.fc_c(nnx.relu(self.fc_b(nnx.relu(self.fc_a(x)))))


def linen_numbered():
    return LinenNumbered(), (X,), {}


def nnx_lettered():
    return NNXLettered(rngs=nnx.Rngs(0)), (X,), {}
