"""The memory planner: will the model fit on this GPU, and how (offload, VAE tiling), before loading it.

At worker start, before a weight is read, each component of the checkpoint folders is built from its
`config.json` on the meta device (no memory, no weights) and its parameters counted at the dtype it
will run in. To the weights it adds the largest served run's transformer activations and VAE decode,
and a fixed reserve for the CUDA context and allocator, then takes the first placement that fits:

    1. everything on the GPU                    (offload none)
    2. the same, decoding in tiles              (offload none, VAE tiling)
    3. one component on the GPU at a time       (offload model, then with tiling)
    4. one layer at a time                      (offload sequential, tiling)

or refuses to start with a message that names the figures. An option set in the catalog (`offload`,
`vae_tiling`) narrows the choice to what it allows. The activation and decode figures are estimates
(documented in `docs/gpu.md`), deliberately on the high side: a refusal at start is cheap, an
out-of-memory error in the tenth request is not.
"""

from __future__ import annotations

import importlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reelgate.backends.diffusion.config import DiffusionConfig

GIB = 2**30
#: CUDA context, cuBLAS/cuDNN workspaces and allocator slack, on top of every plan.
RESERVE = int(1.5 * GIB)
#: Of the device's memory, the share a plan may fill (fragmentation, other processes' contexts).
USABLE = 0.95
#: Components shared with the text model when a separate image-to-video checkpoint is loaded.
SHARED = ("text_encoder", "tokenizer", "vae")


@dataclass(frozen=True)
class Shape:
    """One pipeline run: generation size and frame count."""

    width: int
    height: int
    frames: int


@dataclass(frozen=True)
class Footprint:
    weights: tuple[tuple[str, int], ...]  #: bytes per component, shared ones counted once
    activations: int  #: one transformer pass at the largest served run
    decode: int  #: the VAE decode of the largest served run, untiled
    decode_tiled: int

    def resident(self, offload: str) -> int:
        sizes = [size for _, size in self.weights]
        if offload == "none":
            return sum(sizes)
        if offload == "model":
            return max(sizes)
        return max(sizes) // 40  # sequential: one block of the largest model at a time

    def need(self, offload: str, vae_tiling: bool) -> int:
        # The decode runs after the last step, when the transformer's activations are freed.
        working = max(self.activations, self.decode_tiled if vae_tiling else self.decode)
        return self.resident(offload) + working + RESERVE


@dataclass(frozen=True)
class Placement:
    offload: str  #: none | model | sequential
    vae_tiling: bool
    need: int = 0  #: bytes the plan needs at its peak
    capacity: int = 0  #: bytes the device has

    def describe(self) -> str:
        tiling = ", VAE tiling" if self.vae_tiling else ""
        figures = f": needs {_gib(self.need)} of {_gib(self.capacity)}" if self.capacity else ""
        return f"offload {self.offload}{tiling}{figures}"


#: Everything where it was loaded, as on the CPU.
ON_THE_SPOT = Placement("none", False)


class DoesNotFit(Exception):
    """No placement the options allow fits on the device; the message names the figures."""


#: Placements in order of preference: fastest first.
CANDIDATES = (("none", False), ("none", True), ("model", False), ("model", True), ("sequential", True))


def choose(
    footprint: Footprint, capacity: int, *, offload: str | None = None, vae_tiling: bool | None = None
) -> Placement:
    """The fastest placement that fits `capacity` bytes, among those the options allow.

    >>> small = Footprint((("transformer", 3 * GIB), ("text_encoder", 2 * GIB)), GIB, 2 * GIB, GIB)
    >>> choose(small, 24 * GIB).describe()
    'offload none: needs 8.5 GiB of 24.0 GiB'
    """
    usable = int(capacity * USABLE)
    allowed = [
        (mode, tiling) for mode, tiling in CANDIDATES if offload in (None, mode) and vae_tiling in (None, tiling)
    ] or [(offload or "none", bool(vae_tiling))]
    for mode, tiling in allowed:
        need = footprint.need(mode, tiling)
        if need <= usable:
            return Placement(mode, tiling, need, capacity)
    mode, tiling = allowed[-1]
    raise DoesNotFit(_refusal(footprint, mode, tiling, capacity))


def _refusal(footprint: Footprint, offload: str, vae_tiling: bool, capacity: int) -> str:
    weights = ", ".join(f"{name} {_gib(size)}" for name, size in footprint.weights)
    decode = footprint.decode_tiled if vae_tiling else footprint.decode
    return (
        f"the model does not fit on this GPU: even with offload {offload}"
        f"{' and VAE tiling' if vae_tiling else ''} it needs {_gib(footprint.need(offload, vae_tiling))} "
        f"(weights: {weights}; activations {_gib(footprint.activations)}, decode {_gib(decode)}, "
        f"reserve {_gib(RESERVE)}) but the device has {_gib(capacity)} ({USABLE:.0%} usable); "
        "serve smaller sizes or fewer frames per run, or use a smaller checkpoint"
    )


def _gib(size: int) -> str:
    return f"{size / GIB:.1f} GiB"


def footprint(
    config: DiffusionConfig, weights: Path, image_weights: Path | None, shapes: tuple[Shape, ...], dtype: Any
) -> Footprint:
    """What the text model (and a separate image-to-video checkpoint) take, from their configs alone."""
    models = empty_components(weights)
    sizes = {name: _bytes(module, name, config, dtype) for name, module in models.items()}
    if image_weights is not None:
        image_models = empty_components(image_weights, skip=SHARED)
        sizes.update({f"i2v_{name}": _bytes(module, name, config, dtype) for name, module in image_models.items()})
    widest = max(shapes, key=lambda shape: shape.width * shape.height * shape.frames, default=None)
    if widest is None:
        return Footprint(tuple(sizes.items()), 0, 0, 0)
    transformer, vae = dict(models["transformer"].config), dict(models["vae"].config)
    vae_bytes = 4 if "vae" in config.family.float32_parts else _itemsize(dtype)
    return Footprint(
        tuple(sizes.items()),
        activations(transformer, config, widest, _itemsize(dtype)),
        decode(vae, config, widest, vae_bytes, tiled=False),
        decode(vae, config, widest, vae_bytes, tiled=True),
    )


def _bytes(module: Any, name: str, config: DiffusionConfig, dtype: Any) -> int:
    """Floating-point parameters and buffers at the dtype the component runs in."""
    itemsize = 4 if name in config.family.float32_parts else _itemsize(dtype)
    tensors = [*module.parameters(), *module.buffers()]
    return sum(tensor.numel() for tensor in tensors if tensor.is_floating_point()) * itemsize


def empty_components(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Each model of a pipeline folder, built from its config on the meta device (no memory, no weights)."""
    index = json.loads((folder / "model_index.json").read_text())
    models = {}
    for name, spec in index.items():
        if name.startswith("_") or name in skip or not isinstance(spec, list) or spec[0] is None:
            continue
        module = _empty_module(folder / name, *spec)
        if module is not None:
            models[name] = module
    return models


def _empty_module(folder: Path, library: str, class_name: str) -> Any | None:
    """The component built from its config with no memory behind it; None for tokenizers and schedulers."""
    import torch
    from accelerate import init_empty_weights

    owner = library if library in ("diffusers", "transformers") else f"diffusers.pipelines.{library}"
    cls: Any = getattr(importlib.import_module(owner), class_name)
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        return None
    model: Any = cls  # a diffusers ModelMixin or a transformers PreTrainedModel
    with init_empty_weights(include_buffers=True):
        if library == "transformers":
            from transformers import AutoConfig

            return model._from_config(AutoConfig.from_pretrained(folder))
        return model.from_config(model.load_config(folder))


def _itemsize(dtype: Any) -> int:
    return int(dtype.itemsize)


def activations(transformer: dict[str, Any], config: DiffusionConfig, shape: Shape, itemsize: int) -> int:
    """One transformer pass's peak: per token, q/k/v/out and the residual stream (6 x width) plus the
    feed-forward's inner width, at the compute dtype; attention itself is a fused kernel (linear)."""
    width = transformer.get("num_attention_heads", 0) * transformer.get("attention_head_dim", 0)
    inner = transformer.get("ffn_dim") or 4 * width
    return _tokens(config, shape) * (6 * width + inner) * itemsize


def _tokens(config: DiffusionConfig, shape: Shape) -> int:
    spatial = config.family.side_multiple  # VAE stride x patch: Wan 8 x 2, LTX 32 x 1
    latent_frames = (shape.frames - 1) // config.family.frame_step + 1
    return latent_frames * math.ceil(shape.height / spatial) * math.ceil(shape.width / spatial)


#: Tile side the VAEs decode with when tiling is on (diffusers' defaults: Wan 256, LTX 512).
TILE = {"wan": 256, "ltx": 512, "ltx2": 512}
#: Live feature maps at once in a decoder block (input, two convolutions, the skip), a high estimate.
DECODE_COPIES = 4


def decode(vae: dict[str, Any], config: DiffusionConfig, shape: Shape, itemsize: int, *, tiled: bool) -> int:
    """The VAE decoder's peak: its widest full-resolution feature maps over the frames it decodes at once.

    Wan's decoder goes 4 output frames at a time at `base_dim` x 2 channels; LTX's decodes the whole run,
    with pixels patched (`patch_size`), at its first block's channels.
    """
    frames = config.family.decode_frames or shape.frames
    patch = vae.get("patch_size", 1) if isinstance(vae.get("patch_size", 1), int) else 1
    if config.family.name == "wan":
        channels = 2 * vae.get("base_dim", 96)
    else:
        channels = (vae.get("decoder_block_out_channels") or vae.get("block_out_channels") or [128])[0]
    height, width = shape.height, shape.width
    if tiled:
        tile = TILE[config.family.name]
        height, width = min(height, tile), min(width, tile)
    return frames * math.ceil(height / patch) * math.ceil(width / patch) * channels * itemsize * DECODE_COPIES
