"""A two-headed Linen classifier with Dropout and BatchNorm, and NNX ports of it: one correct, three
that are exact in inference but train differently (test fixtures, written the way people write ports)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

X = jax.random.normal(jax.random.key(42), (8, 12))


class Net(nn.Module):
    """Setup-style Linen; the train flag is a call argument."""

    def setup(self):
        self.fc1 = nn.Dense(32)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Dense(4)
        self.fc2 = nn.Dense(16)
        self.bn = nn.BatchNorm(momentum=0.9)
        self.aux = nn.Dense(3)
        self.temperature = self.param("temperature", nn.initializers.ones, (4,))

    def __call__(self, x, train: bool = False):
        h = nn.relu(self.fc1(x))
        h = self.drop(h, deterministic=not train)
        logits = jnp.einsum("bc,c->bc", self.head(h), self.temperature)
        z = self.bn(self.fc2(h), use_running_average=not train)
        return logits, self.aux(nn.relu(z))


class Port(nnx.Module):
    def __init__(self, rngs: nnx.Rngs, momentum: float = 0.9):
        self.fc1 = nnx.Linear(12, 32, rngs=rngs)
        self.drop = nnx.Dropout(0.3, rngs=rngs)
        self.head = nnx.Linear(32, 4, rngs=rngs)
        self.fc2 = nnx.Linear(32, 16, rngs=rngs)
        self.bn = nnx.BatchNorm(16, momentum=momentum, rngs=rngs)
        self.aux = nnx.Linear(16, 3, rngs=rngs)
        self.temperature = nnx.Param(jnp.ones((4,)))

    def trunk(self, x):
        return self.drop(nnx.relu(self.fc1(x)))

    def __call__(self, x):
        h = self.trunk(x)
        logits = jnp.einsum("bc,c->bc", self.head(h), self.temperature[...])
        z = self.bn(self.fc2(h))
        return logits, self.aux(nnx.relu(z))


class PyTorchMomentumPort(Port):
    """BatchNorm momentum copied from PyTorch (0.1 weights the new batch there; 0.9 keeps the old here)."""

    def __init__(self, rngs: nnx.Rngs):
        super().__init__(rngs, momentum=0.1)


class FrozenTrunkPort(Port):
    """A stop_gradient left in from a fine-tuning experiment: the first layer never learns."""

    def trunk(self, x):
        return self.drop(jax.lax.stop_gradient(nnx.relu(self.fc1(x))))


class LinenFlagPort(Port):
    """Keeps Linen's ``train`` argument: ``model.train()`` never reaches it, so BatchNorm stays in
    inference mode while training."""

    def __call__(self, x, train: bool = False):
        h = self.trunk(x)
        logits = jnp.einsum("bc,c->bc", self.head(h), self.temperature[...])
        z = self.bn(self.fc2(h), use_running_average=not train)
        return logits, self.aux(nnx.relu(z))


def linen():
    return Net(), (X,), {"train": False}


def good():
    return Port(nnx.Rngs(0))


def momentum():
    return PyTorchMomentumPort(nnx.Rngs(0))


def frozen():
    return FrozenTrunkPort(nnx.Rngs(0))


def linen_flag():
    return LinenFlagPort(nnx.Rngs(0))


# -- train flags by other names ---------------------------------------------------------------------

class Classifier(nn.Module):
    """Compact Linen whose flag is an attribute, as in ``Classifier(deterministic=False)``."""

    deterministic: bool = True

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(16)(x)
        x = nn.Dropout(0.5, deterministic=self.deterministic)(x)
        return nn.Dense(2)(nn.gelu(x))


class ClassifierPort(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.Dense_0 = nnx.Linear(12, 16, rngs=rngs)
        self.Dropout_0 = nnx.Dropout(0.5, rngs=rngs)
        self.Dense_1 = nnx.Linear(16, 2, rngs=rngs)

    def __call__(self, x):
        return self.Dense_1(nnx.gelu(self.Dropout_0(self.Dense_0(x))))


class ResNetStem(nn.Module):
    """A flag named as in some codebases: ``is_training``."""

    @nn.compact
    def __call__(self, x, is_training: bool):
        x = nn.Dense(8, use_bias=False)(x)
        x = nn.BatchNorm(use_running_average=not is_training)(x)
        return nn.relu(x)


class ResNetStemPort(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.Dense_0 = nnx.Linear(12, 8, use_bias=False, rngs=rngs)
        self.BatchNorm_0 = nnx.BatchNorm(8, rngs=rngs)

    def __call__(self, x):
        return nnx.relu(self.BatchNorm_0(self.Dense_0(x)))


class NoisyMLP(nn.Module):
    """Dropout written by hand with ``jax.random``: the check cannot switch it off."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Dense(16)(x))
        if train:
            keep = jax.random.bernoulli(self.make_rng("dropout"), 0.5, x.shape)
            x = jnp.where(keep, x / 0.5, 0.0)
        return nn.Dense(2)(x)


class NoisyMLPPort(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.Dense_0 = nnx.Linear(12, 16, rngs=rngs)
        self.Dense_1 = nnx.Linear(16, 2, rngs=rngs)

    def __call__(self, x):
        return self.Dense_1(nnx.relu(self.Dense_0(x)))


def classifier():
    return Classifier(), (X,), {}


def classifier_port():
    return ClassifierPort(nnx.Rngs(0))


def stem():
    return ResNetStem(), (X,), {"is_training": False}


def stem_port():
    return ResNetStemPort(nnx.Rngs(0))


def noisy():
    return NoisyMLP(), (X,), {}


def noisy_port():
    return NoisyMLPPort(nnx.Rngs(0))
