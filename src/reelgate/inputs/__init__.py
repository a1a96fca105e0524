"""Client-supplied inputs: a reference image as a data URI, an http(s) URL or uploaded bytes.

    resolve_reference(value) ─┬─ data URI ──> decode_data_uri ─┐
                              └─ URL ───────> fetch_image ─────┴─> bytes ──> load_image ──> fit_cover ──> save_reference

`images` turns bytes into pixels; `fetch` gets bytes from a URL without reaching our own network.
`videos` checks an uploaded source video (an edit's, an extension's, a character's) and cuts key frames.
Nothing here knows about HTTP servers: the API layer calls these and renders their `InvalidRequest`s.
"""

from reelgate.inputs.fetch import FetchPolicy, fetch_image, resolve_reference
from reelgate.inputs.images import decode_data_uri, fit_cover, load_image, save_reference, sniff

__all__ = [
    "FetchPolicy",
    "decode_data_uri",
    "fetch_image",
    "fit_cover",
    "load_image",
    "resolve_reference",
    "save_reference",
    "sniff",
]
