"""What reelgate knows about each diffusers video family: pipeline classes, native shapes, defaults.

    family   pipelines (text / image to video)               native size  fps  frames  sides  frames rule  sound
    wan      WanPipeline / WanImageToVideoPipeline           832x480      16   81      16     4k+1         none
    ltx      LTXPipeline / LTXConditionPipeline              768x512      24   121     32     8k+1         none
    ltx2     LTX2Pipeline / LTX2ImageToVideoPipeline         768x512      24   121     32     8k+1         its own

Per-family defaults (each from the model card or the diffusers docs of the family; an option wins):

    family   guidance  call defaults                                  float32 parts       caches that work
    wan      5.0       -                                              vae, image_encoder  first-block, taylorseer, mag
    ltx      3.0       decode_timestep 0.05, decode_noise_scale 0.025 -                   first-block, taylorseer, mag
    ltx2     3.0       (audio_)stg_scale 0.0, (audio_)modality_scale 1 -                   taylorseer

Edits (`POST /v1/videos/edits`) need a video-to-video pipeline on the text model's weights: Wan 2.1 has
one (`WanVideoToVideoPipeline`; not Wan 2.2's two experts); the LTX families have none here.

The shape rules here are the real checkpoints'; the loaded pipeline's own VAE and patch sizes win
when they say otherwise (a tiny test model has smaller ones).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str
    text_pipeline: str  #: diffusers class that makes a video from text
    image_pipeline: str  #: diffusers class that makes a video from a first image and text
    #: True when the image pipeline runs on the text pipeline's weights (`from_pipe`); False when it
    #: needs its own checkpoint (`image_weights`), as Wan 2.1's I2V models do.
    image_shares_weights: bool
    native_landscape: tuple[int, int]
    fps: int
    shot_frames: int  #: frames of one run at the model's usual length (about 5 s)
    side_multiple: int  #: width and height must be multiples of this
    frame_step: int  #: frame counts are `frame_step * k + 1`
    makes_audio: bool = False
    #: The pipeline's `__call__` takes `frame_rate` (LTX conditions on it).
    takes_frame_rate: bool = False
    guidance: float = 5.0  #: the model card's guidance scale (distilled checkpoints want 1.0)
    #: Keyword arguments every call gets unless `call_options` says otherwise.
    call_defaults: tuple[tuple[str, object], ...] = ()
    #: Components kept in float32 whatever the dtype (Wan's docs: its VAE and CLIP lose detail in bf16).
    float32_parts: tuple[str, ...] = ()
    #: diffusers cache hooks that run on this family's transformer (see `caching.py`).
    caches: tuple[str, ...] = ("first-block", "taylorseer", "mag")
    #: Output frames the VAE decodes at once: Wan's decoder is causal and goes 4 frames at a time,
    #: LTX's decodes the whole run (0).
    decode_frames: int = 0
    #: diffusers class that remakes a video as a prompt says (edits), on the text model's weights; None if none.
    video_pipeline: str | None = None


FAMILIES = {
    family.name: family
    for family in (
        Family(
            "wan",
            "WanPipeline",
            "WanImageToVideoPipeline",
            False,
            (832, 480),
            16,
            81,
            16,
            4,
            float32_parts=("vae", "image_encoder"),
            decode_frames=4,
            video_pipeline="WanVideoToVideoPipeline",
        ),
        Family(
            "ltx",
            "LTXPipeline",
            # LTX-Video 0.9.5 and later condition on images through this one (`image_pipeline` for older ones).
            "LTXConditionPipeline",
            True,
            (768, 512),
            24,
            121,
            32,
            8,
            takes_frame_rate=True,
            guidance=3.0,
            # 0.9.1+ VAEs decode with a timestep (ignored by 0.9.0's, which has no timestep conditioning).
            call_defaults=(("decode_timestep", 0.05), ("decode_noise_scale", 0.025)),
        ),
        Family(
            "ltx2",
            "LTX2Pipeline",
            "LTX2ImageToVideoPipeline",
            True,
            (768, 512),
            24,
            121,
            32,
            8,
            makes_audio=True,
            takes_frame_rate=True,
            guidance=3.0,
            # LTX-2's card guides with CFG only: STG and modality isolation (LTX-2.3's card: 1.0 and 3.0)
            # each add a transformer pass per step.
            call_defaults=(
                ("stg_scale", 0.0),
                ("audio_stg_scale", 0.0),
                ("modality_scale", 1.0),
                ("audio_modality_scale", 1.0),
            ),
            # Its transformer blocks are not in diffusers' block registry that first-block and mag need.
            caches=("taylorseer",),
        ),
    )
}
