"""The published configs of real checkpoints, written out as folders the memory planner reads.

Nothing is downloaded: each `config.json` below copies the values of the Hugging Face repo it names
(the `transformer/`, `text_encoder/`, `image_encoder/` and `vae/` folders of the diffusers-format
repos). A config that lists only `_class_name` is one whose published file holds the diffusers class's
own defaults, which diffusers took from that checkpoint. The folders have no weights: the planner
builds every component on the meta device and counts its parameters.
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
