"""`/`: the playground, a page that makes videos through the real Videos API; `/static/...`: its files.

The page is one template with its words filled in on the server (Chinese or English, by the same rule
as the chat stream), plus a script and a style sheet from this origin: no inline code, so it runs under
a strict Content-Security-Policy. The API key stays in the browser and goes only to this origin.
The strictest policy it works under (the browser test serves it with this one):

    default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self';
    connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'

(img-src and media-src also need the `REELGATE_PUBLIC_URL` origin when links point elsewhere.)
"""

from __future__ import annotations

import html
import json
from functools import cache
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from reelgate.api.chat import preferred_language
from reelgate.api.deps import runtime
from reelgate.errors import NotFound

router = APIRouter(include_in_schema=False)

#: The files the page loads, and their types.
STATIC = {"playground.js": "text/javascript; charset=utf-8", "playground.css": "text/css; charset=utf-8"}

TEXT: dict[str, dict[str, object]] = {
    "en": {
        "title": "playground",
        "intro": "Make a video with this server's models: paste an API key, describe the video, watch it render.",
        "key_label": "API key",
        "key_save": "Use key",
        "key_forget": "Forget",
        "key_note": "Kept in this browser (localStorage) and sent only to this server. "
        "The operator makes keys with `reelgate keys create --balance 10`.",
        "prompt_label": "Prompt",
        "prompt_placeholder": "A sunset over the sea, waves rolling in",
        "model_label": "Model",
        "orientation_label": "Orientation",
        "portrait": "Portrait",
        "landscape": "Landscape",
        "size_label": "Size",
        "seconds_label": "Length",
        "image_label": "Reference image (optional)",
        "create": "Generate",
        "download": "Download MP4",
        "share": "Share page",
        "delete": "Delete",
        "remix": "Remix",
        "remix_placeholder": "Change it: e.g. make it night",
        "recent": "Your recent videos",
        "refresh": "Refresh",
        "list_empty": "No videos yet.",
        "unreachable": "Cannot reach the server.",
        "http_error": "The server answered",
        "expired": "This video's files were deleted after the retention period.",
        "confirm_delete": "Delete this video and its files?",
        "status": {"queued": "queued", "in_progress": "generating", "completed": "completed", "failed": "failed"},
    },
    "zh": {
        "title": "试用台",
        "intro": "用本服务器的模型生成视频:填入 API 密钥,描述画面,看着它生成。",
        "key_label": "API 密钥",
        "key_save": "使用密钥",
        "key_forget": "清除",
        "key_note": "只保存在本浏览器(localStorage),只发送给本服务器。"
        "管理员用 `reelgate keys create --balance 10` 创建密钥。",
        "prompt_label": "提示词",
        "prompt_placeholder": "海边日落,海浪拍岸",
        "model_label": "模型",
        "orientation_label": "方向",
        "portrait": "竖屏",
        "landscape": "横屏",
        "size_label": "尺寸",
        "seconds_label": "时长",
        "image_label": "参考图(可选)",
        "create": "生成",
        "download": "下载 MP4",
        "share": "分享页面",
        "delete": "删除",
        "remix": "改编",
        "remix_placeholder": "修改说明:例如 改成夜景",
        "recent": "最近的视频",
        "refresh": "刷新",
        "list_empty": "还没有视频。",
        "unreachable": "无法连接服务器。",
        "http_error": "服务器返回",
        "expired": "该视频的文件已按保留期限删除。",
        "confirm_delete": "删除这个视频及其文件?",
        "status": {"queued": "排队中", "in_progress": "生成中", "completed": "生成完成", "failed": "生成失败"},
    },
}


@router.get("/", response_class=HTMLResponse)
async def playground(request: Request) -> HTMLResponse:
    lang = _language(request)
    return HTMLResponse(render(lang), headers={"Content-Language": lang, "Vary": "Accept-Language"})


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    if name not in STATIC:
        raise NotFound(f"No static file named '{name}'.")
    return Response(_read(f"static/{name}"), media_type=STATIC[name], headers={"Cache-Control": "no-cache"})


def _language(request: Request) -> str:
    """English when the server says so or the browser puts English first, as the chat stream decides."""
    if runtime(request).settings.locale == "en":
        return "en"
    return "en" if preferred_language(request.headers.get("accept-language", "")) == "en" else "zh"


@cache
def render(lang: str) -> str:
    """The page in `lang`: every `{{name}}` of the template replaced by its escaped text."""
    words = TEXT[lang]
    page = _read("templates/playground.html")
    # The text block is JSON inside <script type="application/json">: escape `<` so nothing closes the tag.
    page = page.replace("{{text_json}}", json.dumps(words, ensure_ascii=False).replace("<", "\\u003c"))
    page = page.replace("{{lang}}", "zh-CN" if lang == "zh" else "en")
    for name, value in words.items():
        if isinstance(value, str):
            page = page.replace("{{" + name + "}}", html.escape(value))
    return page


@cache
def _read(path: str) -> str:
    return files("reelgate.api").joinpath(path).read_text(encoding="utf-8")
