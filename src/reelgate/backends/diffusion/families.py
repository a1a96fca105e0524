"""What reelgate knows about each diffusers video family: pipeline classes, native shapes, and sound.

    family   pipelines (text / image to video)               native size  fps  frames  sides  frames rule  sound
    wan      WanPipeline / WanImageToVideoPipeline           832x480      16   81      16     4k+1         none
    ltx      LTXPipeline / LTXImageToVideoPipeline           768x512      24   121     32     8k+1         none
    ltx2     LTX2Pipeline / LTX2ImageToVideoPipeline         768x512      24   121     32     8k+1         its own

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


FAMILIES = {
    family.name: family
    for family in (
        Family("wan", "WanPipeline", "WanImageToVideoPipeline", False, (832, 480), 16, 81, 16, 4),
        Family(
            "ltx", "LTXPipeline", "LTXImageToVideoPipeline", True, (768, 512), 24, 121, 32, 8, takes_frame_rate=True
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
        ),
    )
}
