"""Tiny, randomly initialised Wan, LTX-Video and LTX-2 pipelines, built in code and saved to a folder.

Nothing is downloaded: the tokenizer is trained here with the `tokenizers` library on a few
sentences, and every model gets a config a few dozen numbers wide. The folders they are saved to
look like the real checkpoints (`model_index.json` plus one folder per component), so the backend
loads them through its real loading path.
"""

from __future__ import annotations

from pathlib import Path

import torch

#: Widths shared by the text encoders and the transformers' caption inputs.
TEXT_WIDTH = 32
VOCAB = 384


def tokenizer() -> object:
    """A byte-level BPE tokenizer (any text, Chinese included, becomes known tokens)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<pad>", "</s>", "<unk>", "<bos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(["a cat walks on the street", "中国街头吃西瓜", "rain falls at night"], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        bos_token="<bos>",
        model_max_length=64,
    )


def t5_encoder(umt5: bool) -> torch.nn.Module:
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    options = {
        "vocab_size": VOCAB,
        "d_model": TEXT_WIDTH,
        "d_kv": 8,
        "d_ff": 37,
        "num_layers": 2,
        "num_heads": 4,
        "relative_attention_num_buckets": 8,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "decoder_start_token_id": 0,
    }
    if umt5:
        return UMT5EncoderModel(UMT5Config(**options))
    return T5EncoderModel(T5Config(**options))


def save_wan(path: Path, *, image_to_video: bool = False, experts: int = 1) -> Path:
    """A Wan 2.1-shaped text-to-video pipeline, or a Wan 2.2-style image-to-video one (no image encoder);
    with `experts=2`, Wan 2.2 A14B's pair (high-noise `transformer`, low-noise `transformer_2`)."""
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanPipeline,
        WanTransformer3DModel,
    )

    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    transformers = [
        WanTransformer3DModel(
            patch_size=(1, 2, 2),
            num_attention_heads=2,
            attention_head_dim=12,
            in_channels=36 if image_to_video else 16,
            out_channels=16,
            text_dim=TEXT_WIDTH,
            freq_dim=256,
            ffn_dim=32,
            num_layers=2,
            rope_max_seq_len=32,
        )
        for _ in range(experts)
    ]
    parts: dict[str, object] = {
        "tokenizer": tokenizer(),
        "text_encoder": t5_encoder(umt5=True),
        "vae": vae,
        "scheduler": FlowMatchEulerDiscreteScheduler(shift=7.0),
        "transformer": transformers[0],
    }
    if experts == 2:
        parts.update(transformer_2=transformers[1], boundary_ratio=0.875)
    pipe = WanImageToVideoPipeline(**parts) if image_to_video else WanPipeline(**parts)
    pipe.save_pretrained(path)
    return path


def save_ltx(path: Path) -> Path:
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=TEXT_WIDTH,
    )
    vae = AutoencoderKLLTXVideo(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        spatio_temporal_scaling=(True, True, True, False),
        decoder_block_out_channels=(8, 8, 8, 8),
        decoder_spatio_temporal_scaling=(True, True, True, False),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    pipe = LTXPipeline(
        tokenizer=tokenizer(),
        text_encoder=t5_encoder(umt5=False),
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        transformer=transformer,
    )
    pipe.save_pretrained(path)
    return path


def gemma3() -> torch.nn.Module:
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    config = Gemma3Config(
        text_config={
            "vocab_size": VOCAB,
            "hidden_size": TEXT_WIDTH,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 16,
            "max_position_embeddings": 128,
            "sliding_window": 16,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "bos_token_id": 3,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 28,
            "patch_size": 14,
        },
        mm_tokens_per_image=4,
        image_token_index=VOCAB - 1,
        boi_token_index=VOCAB - 2,
        eoi_token_index=VOCAB - 3,
    )
    return Gemma3ForConditionalGeneration(config)


def save_ltx2(path: Path) -> Path:
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2Pipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    torch.manual_seed(0)
    text_encoder = gemma3()
    layers = text_encoder.config.text_config.num_hidden_layers
    transformer = LTX2VideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=4,
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=2,
        caption_channels=TEXT_WIDTH,
        rope_double_precision=False,
        rope_type="split",
    )
    connectors = LTX2TextConnectors(
        caption_channels=TEXT_WIDTH,
        text_proj_in_factor=layers + 1,
        video_connector_num_attention_heads=4,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=4,
        audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32,
        rope_double_precision=False,
        rope_type="split",
    )
    vae = AutoencoderKLLTX2Video(
        latent_channels=4,
        block_out_channels=(8,),
        decoder_block_out_channels=(8,),
        layers_per_block=(1,),
        decoder_layers_per_block=(1, 1),
        spatio_temporal_scaling=(True,),
        decoder_spatio_temporal_scaling=(True,),
        decoder_inject_noise=(False, False),
        downsample_type=("spatial",),
        upsample_residual=(False,),
        upsample_factor=(1,),
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4,
        output_channels=2,
        ch_mult=(1,),
        num_res_blocks=1,
        resolution=32,
        latent_channels=2,
        sample_rate=16000,
        mel_hop_length=160,
        mel_bins=8,
    )
    vocoder = LTX2Vocoder(
        in_channels=2 * 8,
        hidden_channels=32,
        out_channels=2,
        upsample_kernel_sizes=[4, 4],
        upsample_factors=[2, 2],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        output_sampling_rate=16000,
    )
    pipe = LTX2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        audio_vae=audio_vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer(),
        connectors=connectors,
        transformer=transformer,
        vocoder=vocoder,
    )
    pipe.save_pretrained(path)
    return path
