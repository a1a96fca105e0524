"""The published configs of real checkpoints, written out as folders the memory planner reads.

Nothing is downloaded: each `config.json` below copies the values of the Hugging Face repo it names
(the `transformer/`, `text_encoder/`, `image_encoder/` and `vae/` folders of the diffusers-format
repos). A config that lists only `_class_name` is one whose published file holds the diffusers class's
own defaults, which diffusers took from that checkpoint. The folders have no weights: the planner
builds every component on the meta device and counts its parameters.

`save_random` builds the few checkpoints with a `SCHEDULERS` entry for real, with random weights, and
saves them as the diffusers pipeline would (the bench's `--random`: speed and memory without weights).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Wan-AI/Wan2.1-T2V-14B-Diffusers transformer/config.json (also diffusers' scripts/convert_wan_to_diffusers.py,
# "Wan-T2V-14B"); Wan-AI/Wan2.2-T2V-A14B-Diffusers has it twice, as transformer/ and transformer_2/.
WAN_T2V_14B = {
    "_class_name": "WanTransformer3DModel",
    "added_kv_proj_dim": None,
    "attention_head_dim": 128,
    "cross_attn_norm": True,
    "eps": 1e-06,
    "ffn_dim": 13824,
    "freq_dim": 256,
    "image_dim": None,
    "in_channels": 16,
    "num_attention_heads": 40,
    "num_layers": 40,
    "out_channels": 16,
    "patch_size": [1, 2, 2],
    "qk_norm": "rms_norm_across_heads",
    "rope_max_seq_len": 1024,
    "text_dim": 4096,
}
# Wan-AI/Wan2.1-T2V-1.3B-Diffusers transformer/config.json (convert_wan_to_diffusers.py, "Wan-T2V-1.3B"):
# width 1536 = 12 heads x 128; its text encoder and VAE are the 14B's.
WAN_T2V_1_3B = {**WAN_T2V_14B, "ffn_dim": 8960, "num_attention_heads": 12, "num_layers": 30}
# Wan-AI/Wan2.1-I2V-14B-720P-Diffusers transformer/config.json (convert_wan_to_diffusers.py, "Wan-I2V-14B-720p"):
# the CLIP image tokens get their own key/value projections.
WAN_I2V_14B = {**WAN_T2V_14B, "in_channels": 36, "image_dim": 1280, "added_kv_proj_dim": 5120}
# Wan-AI/Wan2.2-I2V-A14B-Diffusers transformer/ and transformer_2/: image latents as input channels, no CLIP.
WAN22_I2V_A14B = {**WAN_T2V_14B, "in_channels": 36}
# google/umt5-xxl config.json, the text encoder of every Wan 2.1 / 2.2 14B repo (text_encoder/).
UMT5_XXL = {
    "architectures": ["UMT5EncoderModel"],
    "model_type": "umt5",
    "d_ff": 10240,
    "d_kv": 64,
    "d_model": 4096,
    "dense_act_fn": "gelu_new",
    "feed_forward_proj": "gated-gelu",
    "is_gated_act": True,
    "layer_norm_epsilon": 1e-06,
    "num_decoder_layers": 24,
    "num_heads": 64,
    "num_layers": 24,
    "relative_attention_max_distance": 128,
    "relative_attention_num_buckets": 32,
    "scalable_attention": True,
    "tie_word_embeddings": False,
    "vocab_size": 256384,
}
# laion/CLIP-ViT-H-14-laion2B-s32B-b79K vision_config, Wan 2.1 I2V's image_encoder/.
CLIP_VIT_H_14 = {
    "architectures": ["CLIPVisionModel"],
    "model_type": "clip_vision_model",
    "hidden_act": "gelu",
    "hidden_size": 1280,
    "image_size": 224,
    "intermediate_size": 5120,
    "layer_norm_eps": 1e-05,
    "num_attention_heads": 16,
    "num_hidden_layers": 32,
    "patch_size": 14,
    "projection_dim": 1024,
}
# Wan-AI/Wan2.1-T2V-14B-Diffusers vae/config.json: AutoencoderKLWan's defaults (base_dim 96, z_dim 16,
# dim_mult [1, 2, 4, 4], num_res_blocks 2).
WAN_VAE = {"_class_name": "AutoencoderKLWan"}
# Lightricks/LTX-Video 0.9.5 (2B) in diffusers' scripts/convert_ltx_to_diffusers.py: the transformer is the
# class's defaults (28 layers, 32 heads x 64), the VAE its "0.9.5" config (timestep-conditioned decoder).
# 0.9.5 is the first the ltx family's defaults fit (LTXConditionPipeline, a scheduler without dynamic shift).
LTX_VIDEO_2B = {"_class_name": "LTXVideoTransformer3DModel"}
LTX_VIDEO_095_VAE = {
    "_class_name": "AutoencoderKLLTXVideo",
    "block_out_channels": [128, 256, 512, 1024, 2048],
    "down_block_types": ["LTXVideo095DownBlock3D"] * 4,
    "decoder_block_out_channels": [256, 512, 1024],
    "layers_per_block": [4, 6, 6, 2, 2],
    "decoder_layers_per_block": [5, 5, 5, 5],
    "spatio_temporal_scaling": [True, True, True, True],
    "decoder_spatio_temporal_scaling": [True, True, True],
    "decoder_inject_noise": [False, False, False, False],
    "downsample_type": ["spatial", "temporal", "spatiotemporal", "spatiotemporal"],
    "upsample_residual": [True, True, True],
    "upsample_factor": [2, 2, 2],
    "timestep_conditioning": True,
    "spatial_compression_ratio": 32,
    "temporal_compression_ratio": 8,
}
# google/t5-v1_1-xxl config.json, LTX-Video's text encoder (text_encoder/).
T5_V1_1_XXL = {
    "architectures": ["T5EncoderModel"],
    "model_type": "t5",
    "d_ff": 10240,
    "d_kv": 64,
    "d_model": 4096,
    "feed_forward_proj": "gated-gelu",
    "layer_norm_epsilon": 1e-06,
    "num_decoder_layers": 24,
    "num_heads": 64,
    "num_layers": 24,
    "relative_attention_max_distance": 128,
    "relative_attention_num_buckets": 32,
    "tie_word_embeddings": False,
    "vocab_size": 32128,
}
# Lightricks/LTX-2 transformer/config.json: 48 dual-stream blocks, video 32 x 128, audio 32 x 64 (19B).
LTX2_TRANSFORMER = {
    "_class_name": "LTX2VideoTransformer3DModel",
    "in_channels": 128,
    "out_channels": 128,
    "num_attention_heads": 32,
    "attention_head_dim": 128,
    "cross_attention_dim": 4096,
    "audio_in_channels": 128,
    "audio_out_channels": 128,
    "audio_num_attention_heads": 32,
    "audio_attention_head_dim": 64,
    "audio_cross_attention_dim": 2048,
    "num_layers": 48,
    "caption_channels": 3840,
}
# Lightricks/LTX-2 text_encoder/config.json: google/gemma-3-12b-it.
GEMMA3_12B = {
    "architectures": ["Gemma3ForConditionalGeneration"],
    "model_type": "gemma3",
    "mm_tokens_per_image": 256,
    "boi_token_index": 255999,
    "eoi_token_index": 256000,
    "image_token_index": 262144,
    "text_config": {
        "model_type": "gemma3_text",
        "head_dim": 256,
        "hidden_size": 3840,
        "intermediate_size": 15360,
        "num_attention_heads": 16,
        "num_hidden_layers": 48,
        "num_key_value_heads": 8,
        "query_pre_attn_scalar": 256,
        "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
        "sliding_window": 1024,
        "vocab_size": 262208,
    },
    "vision_config": {
        "model_type": "siglip_vision_model",
        "hidden_size": 1152,
        "image_size": 896,
        "intermediate_size": 4304,
        "num_attention_heads": 16,
        "num_hidden_layers": 27,
        "patch_size": 14,
        "vision_use_head": False,
    },
}

_WAN_TEXT = {
    "text_encoder": (("transformers", "UMT5EncoderModel"), UMT5_XXL),
    "tokenizer": (("transformers", "T5TokenizerFast"), None),
    "scheduler": (("diffusers", "UniPCMultistepScheduler"), None),
    "vae": (("diffusers", "AutoencoderKLWan"), WAN_VAE),
}
_WAN = ("diffusers", "WanTransformer3DModel")
#: name -> pipeline class and its components: (library, class) and config (None: not a model).
CHECKPOINTS: dict[str, tuple[str, dict[str, tuple[tuple[str, str], dict[str, Any] | None]]]] = {
    "Wan2.1-T2V-1.3B": ("WanPipeline", {**_WAN_TEXT, "transformer": (_WAN, WAN_T2V_1_3B)}),
    "Wan2.1-T2V-14B": ("WanPipeline", {**_WAN_TEXT, "transformer": (_WAN, WAN_T2V_14B)}),
    "Wan2.1-I2V-14B-720P": (
        "WanImageToVideoPipeline",
        {
            **_WAN_TEXT,
            "transformer": (_WAN, WAN_I2V_14B),
            "image_encoder": (("transformers", "CLIPVisionModel"), CLIP_VIT_H_14),
            "image_processor": (("transformers", "CLIPImageProcessor"), None),
        },
    ),
    "Wan2.2-T2V-A14B": (
        "WanPipeline",
        {**_WAN_TEXT, "transformer": (_WAN, WAN_T2V_14B), "transformer_2": (_WAN, WAN_T2V_14B)},
    ),
    "Wan2.2-I2V-A14B": (
        "WanImageToVideoPipeline",
        {**_WAN_TEXT, "transformer": (_WAN, WAN22_I2V_A14B), "transformer_2": (_WAN, WAN22_I2V_A14B)},
    ),
    "LTX-Video-0.9.5": (
        "LTXPipeline",
        {
            "transformer": (("diffusers", "LTXVideoTransformer3DModel"), LTX_VIDEO_2B),
            "text_encoder": (("transformers", "T5EncoderModel"), T5_V1_1_XXL),
            "tokenizer": (("transformers", "T5TokenizerFast"), None),
            "vae": (("diffusers", "AutoencoderKLLTXVideo"), LTX_VIDEO_095_VAE),
            "scheduler": (("diffusers", "FlowMatchEulerDiscreteScheduler"), None),
        },
    ),
    "LTX-2": (
        "LTX2Pipeline",
        {
            "transformer": (("diffusers", "LTX2VideoTransformer3DModel"), LTX2_TRANSFORMER),
            "text_encoder": (("transformers", "Gemma3ForConditionalGeneration"), GEMMA3_12B),
            "tokenizer": (("transformers", "GemmaTokenizerFast"), None),
            "connectors": (("ltx2", "LTX2TextConnectors"), {"_class_name": "LTX2TextConnectors"}),
            "vae": (("diffusers", "AutoencoderKLLTX2Video"), {"_class_name": "AutoencoderKLLTX2Video"}),
            "audio_vae": (("diffusers", "AutoencoderKLLTX2Audio"), {"_class_name": "AutoencoderKLLTX2Audio"}),
            "vocoder": (("ltx2", "LTX2Vocoder"), {"_class_name": "LTX2Vocoder"}),
            "scheduler": (("diffusers", "FlowMatchEulerDiscreteScheduler"), None),
        },
    ),
}


def save(name: str, root: Path) -> Path:
    """The checkpoint's folder (model_index.json and each model's config.json), without weights."""
    pipeline, components = CHECKPOINTS[name]
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {"_class_name": pipeline}
    for component, (spec, config) in components.items():
        index[component] = list(spec)
        if config is not None:
            (folder / component).mkdir(exist_ok=True)
            (folder / component / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder


#: The published schedulers of the checkpoints `save_random` builds: Wan's UniPC on flow sigmas (diffusers'
#: scripts/convert_wan_to_diffusers.py, flow_shift 3.0 for text-to-video), LTX-Video 0.9.5's flow matching
#: without dynamic shifting (convert_ltx_to_diffusers.py).
SCHEDULERS: dict[str, dict[str, Any]] = {
    "Wan2.1-T2V-1.3B": {
        "prediction_type": "flow_prediction",
        "use_flow_sigmas": True,
        "num_train_timesteps": 1000,
        "flow_shift": 3.0,
    },
    "LTX-Video-0.9.5": {"use_dynamic_shifting": False},
}
#: The longest prompt the published tokenizers take (UMT5's and T5's `model_max_length`).
TOKENS = 512

_SMALL_T5 = {
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 37,
    "num_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 8,
    "vocab_size": 384,
}
#: The same architectures a few dozen numbers wide (tests/gpu/tiny.py's widths), for `save_random(shrink=True)`:
#: the bench's `--random` path on the CPU in seconds.
SHRUNK: dict[str, dict[str, dict[str, Any]]] = {
    "Wan2.1-T2V-1.3B": {
        "transformer": {
            "num_attention_heads": 2,
            "attention_head_dim": 12,
            "ffn_dim": 32,
            "num_layers": 2,
            "text_dim": 32,
            "rope_max_seq_len": 32,
        },
        "text_encoder": _SMALL_T5,
        "vae": {"base_dim": 3, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1},
    },
    "LTX-Video-0.9.5": {
        "transformer": {
            "in_channels": 8,
            "out_channels": 8,
            "num_attention_heads": 4,
            "attention_head_dim": 8,
            "cross_attention_dim": 32,
            "num_layers": 1,
            "caption_channels": 32,
        },
        "text_encoder": _SMALL_T5,
        "vae": {
            "latent_channels": 8,
            "block_out_channels": [4, 8, 16, 32, 64],
            "decoder_block_out_channels": [8, 16, 32],
            "layers_per_block": [1, 1, 1, 1, 1],
            "decoder_layers_per_block": [1, 1, 1, 1],
        },
    },
}


def save_random(name: str, folder: Path, *, device: str, shrink: bool = False) -> dict[str, int]:
    """Checkpoint `name` (one with a `SCHEDULERS` entry) with random weights, saved as diffusers saves a
    pipeline; returns each model's parameter count.

    Every model is initialised on `device` in bfloat16: on a GPU, billions of parameters take seconds
    (minutes on the CPU). The tokenizer is tests/gpu/tiny.py's byte-level BPE, since the published
    SentencePiece models cannot be downloaded: its few hundred ids are valid in any vocabulary, and every
    prompt is padded to the pipeline's length, so the text encoder does the published amount of work.
    """
    import diffusers
    import torch

    from tests.gpu import tiny

    pipeline, components = CHECKPOINTS[name]
    smaller = SHRUNK[name] if shrink else {}
    torch.manual_seed(0)
    parts: dict[str, Any] = {
        component: _random_model(*spec, {**config, **smaller.get(component, {})}, device)
        for component, (spec, config) in components.items()
        if config is not None
    }
    counts = {component: sum(p.numel() for p in model.parameters()) for component, model in parts.items()}
    parts["tokenizer"] = tiny.tokenizer()
    parts["tokenizer"].model_max_length = TOKENS
    scheduler = getattr(diffusers, components["scheduler"][0][1])
    parts["scheduler"] = scheduler.from_config(SCHEDULERS[name])
    getattr(diffusers, pipeline)(**parts).save_pretrained(folder)
    return counts


def _random_model(library: str, class_name: str, config: dict[str, Any], device: str) -> Any:
    """The model made where it is saved from, in bfloat16 from the start (no float32 copy to cast)."""
    import importlib

    import torch

    model: Any = getattr(importlib.import_module(library), class_name)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            if library == "transformers":
                from transformers import AutoConfig

                return model._from_config(AutoConfig.for_model(**config))
            return model.from_config(config)
    finally:
        torch.set_default_dtype(default)
