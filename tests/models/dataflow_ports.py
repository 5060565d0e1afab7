"""Ports whose names and declaration order mislead, and whose forward pass does not (test fixtures).

Every layer here has the same shape as its siblings, so only the order in which the forward pass
uses them (or the axes it contracts) can pair them right. Written the way people write ports:
NNX attributes declared in whatever order came to mind, Linen in setup and compact style.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

D = 16
X = jax.random.normal(jax.random.key(42), (3, D))


# -- 1. declared backwards: head, hidden, encoder; applied encoder → hidden → head ---------------
class CompactMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.gelu(nn.Dense(D)(x))
        x = nn.gelu(nn.Dense(D)(x))
        return nn.Dense(D)(x)


class BackwardsMLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.head = nnx.Linear(D, D, rngs=rngs)
        self.hidden = nnx.Linear(D, D, rngs=rngs)
        self.encoder = nnx.Linear(D, D, rngs=rngs)

    def __call__(self, x):
        return self.head(nnx.gelu(self.hidden(nnx.gelu(self.encoder(x)))))


def compact_mlp():
    return CompactMLP(), (X,), {}


def backwards_mlp():
    return BackwardsMLP(nnx.Rngs(1))


# -- 2. Linen setup order ≠ call order, NNX declared in a third order ---------------------------
class SetupMLP(nn.Module):
    def setup(self):
        self.head = nn.Dense(D)
        self.hidden = nn.Dense(D)
        self.encoder = nn.Dense(D)

    def __call__(self, x):
        return self.head(jnp.tanh(self.hidden(jnp.tanh(self.encoder(x)))))


class ThirdOrderMLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.mid_proj = nnx.Linear(D, D, rngs=rngs)
        self.out_proj = nnx.Linear(D, D, rngs=rngs)
        self.in_proj = nnx.Linear(D, D, rngs=rngs)

    def __call__(self, x):
        return self.out_proj(jnp.tanh(self.mid_proj(jnp.tanh(self.in_proj(x)))))


def setup_mlp():
    return SetupMLP(), (X,), {}


def third_order_mlp():
    return ThirdOrderMLP(nnx.Rngs(2))


# -- 3. three same-shape layers in one nested expression -----------------------------------------
class Nested(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(D)(nn.tanh(nn.Dense(D)(nn.tanh(nn.Dense(D)(x)))))


class NestedPort(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        # declared outside-in, as the expression reads
        self.outer = nnx.Linear(D, D, rngs=rngs)
        self.middle = nnx.Linear(D, D, rngs=rngs)
        self.inner = nnx.Linear(D, D, rngs=rngs)

    def __call__(self, x):
        return self.outer(nnx.tanh(self.middle(nnx.tanh(self.inner(x)))))


def nested():
    return Nested(), (X,), {}


def nested_port():
    return NestedPort(nnx.Rngs(3))


# -- 4. two residual branches whose names suggest the opposite order -----------------------------
class Residual(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = x + nn.Dense(D)(nn.LayerNorm()(x))
        return x + nn.Dense(D)(nn.relu(x))


class ResidualPort(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.norm = nnx.LayerNorm(D, rngs=rngs)
        self.branch1 = nnx.Linear(D, D, rngs=rngs)
        self.branch2 = nnx.Linear(D, D, rngs=rngs)

    def __call__(self, x):
        x = x + self.branch2(self.norm(x))  # the "second" branch runs first
        return x + self.branch1(nnx.relu(x))


def residual():
    return Residual(), (X,), {}


def residual_port():
    return ResidualPort(nnx.Rngs(4))


# -- 5. q/k/v of one shape, non-descriptive names, einsum kernels --------------------------------
class Attention(nn.Module):
    @nn.compact
    def __call__(self, x):
        q = nn.Dense(D, use_bias=False, name="query")(x)
        k = nn.Dense(D, use_bias=False, name="key")(x)
        v = nn.Dense(D, use_bias=False, name="value")(x)
        weights = jax.nn.softmax(q @ k.T / jnp.sqrt(D), axis=-1)
        return weights @ v


class Proj(nnx.Module):
    """A projection the way a hand-written port does it: one Param, an einsum."""

    def __init__(self, rngs: nnx.Rngs):
        self.kernel = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (D, D)))

    def __call__(self, x):
        return jnp.einsum("td,de->te", x, self.kernel[...])


class AttentionPort(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.w1 = Proj(rngs)
        self.w2 = Proj(rngs)
        self.w3 = Proj(rngs)

    def __call__(self, x):
        q, k, v = self.w3(x), self.w1(x), self.w2(x)
        weights = jax.nn.softmax(q @ k.T / jnp.sqrt(D), axis=-1)
        return weights @ v


def attention():
    return Attention(), (X,), {}


def attention_port():
    return AttentionPort(nnx.Rngs(5))


# -- 6. a square kernel used transposed (PyTorch-style (out, in) weight) -------------------------
class TwoDense(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(D)(nn.relu(nn.Dense(D)(x)))


class TorchLinear(nnx.Module):
    """``y = x W^T + b`` with ``W`` stored (out, in), as in PyTorch."""

    def __init__(self, n: int, rngs: nnx.Rngs):
        self.weight = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (n, n)))
        self.bias = nnx.Param(jnp.zeros((n,)))

    def __call__(self, x):
        return x @ self.weight[...].T + self.bias[...]


class TorchStyle(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.fc2 = TorchLinear(D, rngs)
        self.fc1 = TorchLinear(D, rngs)

    def __call__(self, x):
        return self.fc2(nnx.relu(self.fc1(x)))


def two_dense():
    return TwoDense(), (X,), {}


def torch_style():
    return TorchStyle(nnx.Rngs(6))


# -- a model the trace cannot follow: Python control flow on a value -----------------------------
class DataDependent(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.a = nnx.Linear(D, D, rngs=rngs)
        self.b = nnx.Linear(D, D, rngs=rngs)

    def __call__(self, x):
        if float(x.sum()) > 0:  # needs real data
            return self.a(x)
        return self.b(x)


def data_dependent():
    return DataDependent(nnx.Rngs(7)), (X,), {}
