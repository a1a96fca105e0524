"""OpenAI wire shapes. Fixed by OpenAI and the provider; domain records live elsewhere."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from pydantic.json_schema import SkipJsonSchema

from reelgate.prompt import MAX_PROMPT_CHARS

#: The model `POST /v1/videos` uses when the request names none, as OpenAI's API does.
DEFAULT_VIDEO_MODEL = "sora-2"


#: A chat message as OpenAI's API takes it: text, or content parts (text and image_url).
_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string"},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}, {"type": "null"}]},
    },
}


class StreamOptions(BaseModel):
    include_usage: StrictBool = False


class ChatCompletionRequest(BaseModel):
    """What reelgate reads of a chat request; sampling parameters and the like are accepted and ignored."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"model": "sora-2-hd-15s-chat", "messages": [{"role": "user", "content": "A cat on a windowsill"}]}
            ]
        },
    )

    model: str = Field(min_length=1)
    #: Checked by `prompt.parse_messages`: the last user message's text is the prompt.
    messages: list[Any] = Field(json_schema_extra={"minItems": 1, "items": _MESSAGE})
    stream: StrictBool | None = False
    stream_options: StreamOptions | None = None

    @property
    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    logprobs: None = None
    finish_reason: Literal["stop"] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[ChunkChoice]
    usage: Usage | None = None


class Message(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    index: int = 0
    message: Message
    logprobs: None = None
    finish_reason: Literal["stop"] = "stop"


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[Choice]
    usage: Usage


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "reelgate"
    #: reelgate's extras, for clients that offer choices: the Videos API's `seconds` values and `size`
    #: values, the default portrait size first and the default landscape size second.
    seconds: list[str] = Field(default_factory=list)
    sizes: list[str] = Field(default_factory=list)
    #: Credits per video, plus credits per second by resolution tier of its sizes (`{"720p": "0.1"}`).
    price: str = "0"
    price_per_second: dict[str, str] = Field(default_factory=dict)


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


class VideoError(BaseModel):
    code: str
    message: str


class VideoObject(BaseModel):
    """OpenAI's Video object, plus the provider's extras (orientation, sid, links) and `files_expired`."""

    id: str
    object: Literal["video"] = "video"
    model: str
    status: str
    progress: int
    created_at: int
    completed_at: int | None
    expires_at: int | None = None
    seconds: str
    size: str
    prompt: str
    remixed_from_video_id: str | None = None
    #: The video this one continues (`POST /v1/videos/extensions`); its first seconds are that video's.
    extended_from_video_id: str | None = None
    #: The video this one edits (`POST /v1/videos/edits`); OpenAI's Video object has no field for it.
    edited_from_video_id: str | None = None
    error: VideoError | None = None
    orientation: str
    sid: str | None = None
    video_url: str | None = None
    thumbnail_url: str | None = None
    #: True once retention deleted the files: the links then answer 410 Gone.
    files_expired: bool = False


class Readiness(BaseModel):
    """`GET /readyz` when ready: each check (database, workers, ...) `ok`; otherwise a 503 error."""

    status: Literal["ok"] = "ok"
    checks: dict[str, Literal["ok"]]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """OpenAI's error envelope: the body of every error answer (see `reelgate.errors`)."""

    error: ErrorBody


class ImageReference(BaseModel):
    #: An https URL the server may fetch, or a data URI (`data:image/png;base64,...`).
    image_url: str = Field(min_length=1)


class CharacterRef(BaseModel):
    id: str = Field(min_length=1, description="A character of this API key (`char_...`).")


_PROMPT = Field(
    min_length=1,
    max_length=MAX_PROMPT_CHARS,
    pattern=r"\S",
    description="What the video shows; leading and trailing spaces are ignored.",
)
_SECONDS = Field(None, description="Duration in seconds, one of the model's values (e.g. '4'); the model's default.")
_SIZE = Field(None, description="'WIDTHxHEIGHT', one of the model's sizes (e.g. '720x1280'); portrait by default.")
_MODEL = Field(DEFAULT_VIDEO_MODEL, min_length=1, description="A model of `GET /v1/models`.")


class VideoCreate(BaseModel):
    """`POST /v1/videos` with a JSON body. `seconds` and `size` are checked against the model's choices."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"prompt": "A paper boat drifting down a rainy street", "model": "sora-2"}]},
    )

    prompt: str = _PROMPT
    model: str = _MODEL
    seconds: str | None = _SECONDS
    size: str | None = _SIZE
    #: The first frame: an image URL or data URI, or `{"image_url": ...}` as the SDK sends it.
    input_reference: str | ImageReference | None = None
    #: Characters (`POST /v1/videos/characters`) the video shows; name them in the prompt too.
    characters: list[CharacterRef] | None = Field(None, max_length=4)


class VideoCreateForm(BaseModel):
    """`POST /v1/videos` as multipart/form-data, as the `openai` package sends it (the image as a file)."""

    model_config = ConfigDict(extra="forbid")

    # A form field is present or absent, never null.
    prompt: str = _PROMPT
    model: str = _MODEL
    seconds: str | SkipJsonSchema[None] = _SECONDS
    size: str | SkipJsonSchema[None] = _SIZE
    input_reference: bytes | SkipJsonSchema[None] = Field(
        None, description="The first frame: a JPEG, PNG, WebP or GIF file."
    )
    input_reference_url: str | SkipJsonSchema[None] = Field(
        None, alias="input_reference[image_url]", min_length=1, description="Or the first frame's URL or data URI."
    )
    character_id: str | SkipJsonSchema[None] = Field(
        None, alias="characters[][id]", min_length=1, description="A character the video shows (repeated for more)."
    )


class VideoRemix(BaseModel):
    """`POST /v1/videos/{video_id}/remix`: a new video from a completed one, changed as the prompt says."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"prompt": "The same, at night"}]})

    prompt: str = _PROMPT


#: How many seconds an extension may add (`POST /v1/videos/extensions`).
EXTENSION_SECONDS = ("4", "8", "12", "16", "20")


class VideoReference(BaseModel):
    id: str = Field(min_length=1, description="A completed video of this API key.")


class VideoExtend(BaseModel):
    """`POST /v1/videos/extensions`: a completed video continued by `seconds` as the prompt says."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"prompt": "The ball rolls into a river", "seconds": "8", "video": {"id": "task_..."}}]
        }
    )

    prompt: str = _PROMPT
    seconds: Literal["4", "8", "12", "16", "20"]
    video: VideoReference


_UPLOADED_VIDEO = "Or an MP4 or MOV file (by default up to 200 MB, 20 s and 4096 pixels a side)."
_SOURCE_MODEL = "For an uploaded file, the model that makes the video (`sora-2` by default); a video id brings its own."


class VideoExtendForm(BaseModel):
    """`POST /v1/videos/extensions` as multipart/form-data, as the `openai` package sends it: `video[id]`,
    or the video to continue as a file."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = _PROMPT
    seconds: Literal["4", "8", "12", "16", "20"]
    video_id: str | SkipJsonSchema[None] = Field(
        None, alias="video[id]", min_length=1, description="A completed video of this API key."
    )
    video: bytes | SkipJsonSchema[None] = Field(None, description=_UPLOADED_VIDEO)
    model: str | SkipJsonSchema[None] = Field(None, min_length=1, description=_SOURCE_MODEL)


class VideoEdit(BaseModel):
    """`POST /v1/videos/edits`: a completed video changed as the prompt says, keeping its timing and framing."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"prompt": "The same street at night", "video": {"id": "task_..."}}]}
    )

    prompt: str = _PROMPT
    video: VideoReference


class VideoEditForm(BaseModel):
    """`POST /v1/videos/edits` as multipart/form-data, as the `openai` package sends it: `video[id]`, or the
    video to edit as a file."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = _PROMPT
    video_id: str | SkipJsonSchema[None] = Field(
        None, alias="video[id]", min_length=1, description="A completed video of this API key."
    )
    video: bytes | SkipJsonSchema[None] = Field(None, description=_UPLOADED_VIDEO)
    model: str | SkipJsonSchema[None] = Field(None, min_length=1, description=_SOURCE_MODEL)


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True


class CharacterObject(BaseModel):
    """`POST /v1/videos/characters` and `GET /v1/videos/characters/{id}`: OpenAI's character (no `object`)."""

    id: str
    created_at: int
    name: str


class CharacterCreateForm(BaseModel):
    """`POST /v1/videos/characters` (multipart/form-data, as `client.videos.create_character` sends it)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80, pattern=r"\S", description="The character's display name.")
    video: bytes = Field(description="A short MP4 or MOV clip showing the character.")
