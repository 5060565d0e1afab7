"""Weight files written by their real writers, from models written the way people write them.

- ``Encoder``: a small setup-style Linen encoder (embedding, an einsum-style ``DenseGeneral``
  attention projection, LayerNorm, a compact MLP with BatchNorm and Dropout), saved with
  ``flax.serialization.to_bytes`` as Hugging Face does (the params tree without a ``params`` level);
- a PyTorch-style ``state_dict`` (``encoder.layer.0.attention.query.weight`` of layout ``(out, in)``,
  BatchNorm buffers with an int64 ``num_batches_tracked``), saved with ``safetensors``;
- Hugging Face folders, single and sharded with an index, as ``save_pretrained`` lays them out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.serialization import to_bytes
from flax.traverse_util import flatten_dict, unflatten_dict


class Attention(nn.Module):
    heads: int = 2
    head_dim: int = 4

    def setup(self):
        self.query = nn.DenseGeneral((self.heads, self.head_dim), name="query")
        self.out = nn.DenseGeneral(8, axis=(-2, -1), name="out")

    def __call__(self, x):
        return self.out(self.query(x))


class Block(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x + Attention(name="attention")(nn.LayerNorm(name="ln")(x))
        h = nn.Dense(16)(x)
        h = nn.BatchNorm(use_running_average=not train)(h)
        h = nn.Dropout(0.1, deterministic=not train)(nn.gelu(h))
        return x + nn.Dense(8)(h)


class Encoder(nn.Module):
    vocab: int = 50
    layers: int = 2

    def setup(self):
        self.embed = nn.Embed(self.vocab, 8)
        self.layer = [Block(name=str(i)) for i in range(self.layers)]

    def __call__(self, ids, train: bool = False):
        x = self.embed(ids)
        for block in self.layer:
            x = block(x, train)
        return x


def encoder_variables(seed: int = 0) -> dict[str, Any]:
    """``Encoder().init``: ``params`` and ``batch_stats``, as a plain dict of numpy-convertible arrays."""
    return jax.device_get(Encoder().init(jax.random.key(seed), jnp.ones((1, 5), jnp.int32)))


def make_encoder():
    """A factory for the CLI: the Linen encoder with example inputs."""
    return Encoder(), (jnp.ones((1, 5), jnp.int32),), {}


def torch_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
    """What ``model.state_dict()`` of a small PyTorch encoder holds, as numpy arrays."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {"embeddings.word_embeddings.weight": rng.standard_normal((50, 8), np.float32)}
    for i in range(2):
        p = f"encoder.layer.{i}."
        out |= {p + "attention.query.weight": rng.standard_normal((8, 8), np.float32),
                p + "attention.query.bias": rng.standard_normal(8, np.float32),
                p + "intermediate.dense.weight": rng.standard_normal((16, 8), np.float32),
                p + "intermediate.dense.bias": np.zeros(16, np.float32),
                p + "bn.weight": np.ones(16, np.float32), p + "bn.bias": np.zeros(16, np.float32),
                p + "bn.running_mean": rng.standard_normal(16, np.float32),
                p + "bn.running_var": np.ones(16, np.float32),
                p + "bn.num_batches_tracked": np.array(1234, np.int64)}
    return out


def write_msgpack(path: Path, tree: Any) -> Path:
    path.write_bytes(to_bytes(tree))
    return path


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], fmt: str = "pt") -> Path:
    from safetensors.numpy import save_file

    save_file(tensors, str(path), metadata={"format": fmt})
    return path


CONFIG = {"model_type": "bert", "architectures": ["FlaxBertModel"], "hidden_size": 8, "num_hidden_layers": 2,
          "vocab_size": 50, "transformers_version": "4.57.1"}


def hf_flax_folder(folder: Path, params: dict[str, Any], shards: int = 1) -> Path:
    """``save_pretrained`` of a Flax model: ``config.json`` and ``flax_model.msgpack``, or shards + index."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(CONFIG))
    if shards == 1:
        write_msgpack(folder / "flax_model.msgpack", params)
        return folder
    flat = flatten_dict(params)
    names = sorted(flat)
    weight_map, total = {}, 0
    for i in range(shards):
        shard = f"flax_model-{i + 1:05d}-of-{shards:05d}.msgpack"
        part = {k: flat[k] for k in names[i::shards]}
        write_msgpack(folder / shard, unflatten_dict(part))
        for key, value in part.items():
            weight_map["/".join(key)] = shard
            total += np.asarray(value).nbytes
    (folder / "flax_model.msgpack.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    return folder


def hf_safetensors_folder(folder: Path, tensors: dict[str, np.ndarray], shards: int = 1) -> Path:
    """``save_pretrained`` of a PyTorch model: ``model.safetensors``, or shards + index."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(CONFIG))
    if shards == 1:
        write_safetensors(folder / "model.safetensors", tensors)
        return folder
    names = sorted(tensors)
    weight_map, total = {}, 0
    for i in range(shards):
        shard = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: tensors[k] for k in names[i::shards]}
        write_safetensors(folder / shard, part)
        weight_map |= dict.fromkeys(part, shard)
        total += sum(v.nbytes for v in part.values())
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    return folder
