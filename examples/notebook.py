# %% [markdown]
# # Flax State Inspector in a notebook
# Every call takes what the notebook already holds (an `nnx.Module`, a Linen variables dict,
# `(module, args, kwargs)`) or a source spec, and returns a result that displays itself.

# %%
import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

import inspector


class LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(32, name="hidden")(x))
        return nn.Dense(10, name="out")(x)


class NnxMLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.fc1 = nnx.Linear(16, 32, rngs=rngs)
        self.fc2 = nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x):
        return self.fc2(nnx.relu(self.fc1(x)))


x = jnp.ones((4, 16))
variables = LinenMLP().init(jax.random.key(0), x)
model = NnxMLP(nnx.Rngs(0))

# %% The variables of the NNX model (a table with totals per kind in Jupyter)
shown = inspector.show(model)
shown.to_pandas()

# %% The Linen variables against the NNX model: every pair, renamed or not
result = inspector.diff(variables, model)
assert result.ok, result.to_text()
result  # noqa: B018 - in Jupyter, the last expression displays: totals by status, a module tree

# %% Which variables a filter selects, and how a split groups the model
params = inspector.filter(model, "nnx.Param")
groups = inspector.split(model, "nnx.Param; ...")
print(groups.split.line)

# %% Prove the port: Linen weights converted into a copy of `model`, both run on `x`
port = inspector.port((LinenMLP(), (x,), {}), (model, (x,), {}))
assert port.ok, port.to_text()
print(port.to_markdown())
