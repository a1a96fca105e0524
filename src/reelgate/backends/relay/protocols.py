"""Each upstream kind's protocol, and what one call of a route's upstream model makes.

Start-up (`plans.py`: a chain its model cannot meet), admission (`backend.py`: an ask the model cannot
meet, an extension it cannot make) and the calls themselves all read the same table.
"""

from __future__ import annotations

from collections.abc import Mapping

from reelgate.backends.base import Orientation
from reelgate.backends.relay.ark import Ark
from reelgate.backends.relay.chat_relay import ChatRelay
from reelgate.backends.relay.config import Kind
from reelgate.backends.relay.dashscope import DashScope
from reelgate.backends.relay.fal import Fal
from reelgate.backends.relay.kling import Kling
from reelgate.backends.relay.makes import Makes
from reelgate.backends.relay.minimax import MiniMax
from reelgate.backends.relay.openai_videos import OpenAIVideos
from reelgate.backends.relay.protocol import RelayProtocol
from reelgate.backends.relay.replicate import Replicate
from reelgate.backends.relay.routing import Route
from reelgate.backends.relay.task_api import TaskApi
from reelgate.backends.relay.veo import Veo

PROTOCOLS: Mapping[Kind, RelayProtocol] = {
    "openai-videos": OpenAIVideos(),
    "chat-relay": ChatRelay(),
    "veo": Veo(),
    "kling": Kling(),
    "dashscope": DashScope(),
    "ark": Ark(),
    "minimax": MiniMax(),
    "replicate": Replicate(),
    "fal": Fal(),
}


def makes_of(route: Route, orientation: Orientation) -> Makes:
    """What one call of `route`'s upstream model for videos of `orientation` makes (an OpenAI-style
    upstream checks asks itself: it is taken to make anything)."""
    protocol = PROTOCOLS[route.upstream.kind]
    if not isinstance(protocol, TaskApi):
        return Makes()
    return protocol.makes(route.model_for(orientation), route.parameters)


def models_of(route: Route) -> dict[Orientation, str]:
    """`route`'s upstream model name for each orientation (one name may serve both)."""
    return {orientation: route.model_for(orientation) for orientation in Orientation}
