"""Loading a model once per worker: weights, dtype, device, LoRAs and the speed switches.

Runs in the backend's GPU thread at start-up, never inside a request. Everything torch or diffusers
raises here becomes a `LoadError` whose message is what `/readyz` shows.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reelgate.backends.diffusion.config import DiffusionConfig
from reelgate.backends.diffusion.weights import WeightsNotFound, resolve

log = logging.getLogger(__name__)


class LoadError(Exception):
    """The model could not be loaded; the message says why and names what is missing."""


@dataclass
class Loaded:
    pipeline: Any  #: text to video
    image_pipeline: Any | None  #: first image and text to video; None when the model has none
    audio_pipeline: Any | None  #: text to audio, for `sound = "stable-audio"`
    device: str
    side_multiple: int  #: width and height must be multiples of this
    frame_step: int  #: frame counts must be `frame_step * k + 1`


def load(config: DiffusionConfig) -> Loaded:
    try:
        return _load(config)
    except WeightsNotFound as exc:
        raise LoadError(str(exc)) from exc
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
        raise LoadError(f"{type(exc).__name__}: {exc}") from exc


def _load(config: DiffusionConfig) -> Loaded:
    import diffusers
    import torch

    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, config.dtype or ("float32" if device == "cpu" else "bfloat16"))
    weights = resolve(config.weights)
    log.info("loading %s pipeline from %s (%s on %s)", config.family.name, weights, dtype, device)
    text_class = getattr(diffusers, config.family.text_pipeline)
    pipe = text_class.from_pretrained(weights, dtype=dtype, local_files_only=True)
    _apply_loras(pipe, config)
    image_pipe = _image_pipeline(pipe, config, dtype)
    for each in _distinct(pipe, image_pipe):
        _speed_up(each, config, device)
    for each in (pipe, image_pipe):
        if each is not None:
            _place(each, config, device)
            each.set_progress_bar_config(disable=True)
    audio_pipe = _audio_pipeline(config, dtype, device)
    side, step = _shape_rules(pipe, config)
    return Loaded(pipe, image_pipe, audio_pipe, device, side, step)


def _image_pipeline(pipe: Any, config: DiffusionConfig, dtype: Any) -> Any | None:
    import diffusers

    image_class = getattr(diffusers, config.family.image_pipeline)
    if config.image_weights in (None, "same") and (config.family.image_shares_weights or config.image_weights):
        return image_class.from_pipe(pipe)
    if config.image_weights is None:
        return None
    folder = resolve(config.image_weights, "image_weights")
    image_pipe = image_class.from_pretrained(folder, dtype=dtype, local_files_only=True)
    _apply_loras(image_pipe, config)
    return image_pipe


def _distinct(pipe: Any, image_pipe: Any | None) -> list[Any]:
    """The pipelines whose transformers need speeding up: `from_pipe` shares the text model's."""
    if image_pipe is None or image_pipe.transformer is pipe.transformer:
        return [pipe]
    return [pipe, image_pipe]


def _apply_loras(pipe: Any, config: DiffusionConfig) -> None:
    """Load the step-distilled (or any) LoRAs, fuse them into the weights and drop the adapters."""
    if not config.loras:
        return
    names = []
    for index, lora in enumerate(config.loras):
        path = Path(lora.path).expanduser()
        if not path.is_file():
            raise WeightsNotFound(f"LoRA file {str(path)!r} does not exist")
        name = f"reelgate_{index}"
        pipe.load_lora_weights(str(path), adapter_name=name)
        names.append(name)
        if getattr(pipe, "transformer_2", None) is not None:  # Wan 2.2 A14B: both experts take it
            pipe.load_lora_weights(str(path), adapter_name=f"{name}_2", load_into_transformer_2=True)
            names.append(f"{name}_2")
    scales = [lora.scale for lora in config.loras for _ in range(len(names) // len(config.loras))]
    pipe.set_adapters(names, adapter_weights=scales)
    pipe.fuse_lora(adapter_names=names)
    pipe.unload_lora_weights()


def _transformers(pipe: Any) -> list[Any]:
    return [t for t in (getattr(pipe, "transformer", None), getattr(pipe, "transformer_2", None)) if t is not None]


def _speed_up(pipe: Any, config: DiffusionConfig, device: str) -> None:
    for transformer in _transformers(pipe):
        if config.attention:
            transformer.set_attention_backend(config.attention)
        if config.cache is not None:
            transformer.enable_cache(_cache_config(pipe, config))
        if config.compile if config.compile is not None else device.startswith("cuda"):
            transformer.compile_repeated_blocks(fullgraph=True)
    if config.vae_tiling:
        pipe.vae.enable_tiling()


def _cache_config(pipe: Any, config: DiffusionConfig) -> Any:
    """diffusers' cache hook config from `{"kind": ..., **its parameters}`."""
    import diffusers

    assert config.cache is not None
    params = {key: value for key, value in config.cache.items() if key != "kind"}
    kind = config.cache["kind"]
    if kind == "first-block":
        return diffusers.FirstBlockCacheConfig(**params)
    if kind == "taylorseer":
        return diffusers.TaylorSeerCacheConfig(**params)
    if kind == "mag":
        return diffusers.MagCacheConfig(**{"num_inference_steps": config.steps, **params})
    return diffusers.FasterCacheConfig(current_timestep_callback=lambda: pipe.current_timestep, **params)


def _place(pipe: Any, config: DiffusionConfig, device: str) -> None:
    if config.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif config.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)


def _audio_pipeline(config: DiffusionConfig, dtype: Any, device: str) -> Any | None:
    if config.sound != "stable-audio":
        return None
    import diffusers

    assert config.sound_weights is not None
    folder = resolve(config.sound_weights, "sound_weights")
    audio = diffusers.StableAudioPipeline.from_pretrained(folder, dtype=dtype, local_files_only=True)
    audio.set_progress_bar_config(disable=True)
    return audio.to(device)


def _shape_rules(pipe: Any, config: DiffusionConfig) -> tuple[int, int]:
    """Side multiple and frame step meeting both the family's rule and the loaded model's VAE and patches."""
    if config.family.name == "wan":
        side = pipe.vae_scale_factor_spatial * pipe.transformer.config.patch_size[1]
        step = pipe.vae_scale_factor_temporal
    else:
        side = pipe.vae_spatial_compression_ratio * pipe.transformer_spatial_patch_size
        step = pipe.vae_temporal_compression_ratio * pipe.transformer_temporal_patch_size
    return math.lcm(side, config.family.side_multiple), math.lcm(step, config.family.frame_step)
