"""Every fenced code block of README.md and docs/*.md, run against a live `reelgate serve`.

bash blocks run in bash (`-e -o pipefail`), python blocks with this interpreter, toml blocks are loaded
into `Settings` (and the catalog), json blocks parsed; ```text blocks are not run. The server listens on a
free loopback port with a fresh per-user data folder and tiny model sizes; in each block `127.0.0.1:8000`
becomes its address (REELGATE_SERVER too), `sk-...` a key with credits and `.venv/bin/` this
interpreter's folder. A block that must not run here (it installs, or starts a server of its own)
follows a `<!-- doctest: skip (reason) -->` line. Blocks of one page share a working folder, in order.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Server, server_env

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)
SKIP = re.compile(r"<!--\s*doctest:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->\s*$")
RUN = {
    "bash": "bash",
    "sh": "bash",
    "shell": "bash",
    "python": "python",
    "py": "python",
    "toml": "toml",
    "json": "json",
}
ADMIN_TOKEN = "doctest-admin-token-0123456789"
#: Every model small and quick: the blocks are about the commands, not the pictures.
TINY = """
[models."sora-2-hd-15s-chat"]
portrait = "144x256"
landscape = "256x144"
fps = 8
[models."sora-2-hd-10s-chat"]
portrait = "144x256"
landscape = "256x144"
fps = 8
[models."sora-2"]
portrait = "144x256"
landscape = "256x144"
fps = 8
[models."sora-2-pro"]
portrait = "144x256"
landscape = "256x144"
extra_sizes = []
fps = 8
"""


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    body: str
    skip: str | None

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks_of(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        skip = SKIP.search(text[: match.start()].rstrip() + "\n")
        line = text.count("\n", 0, match.start()) + 1
        lang = match["info"].strip().split(" ")[0].lower()
        found.append(Block(page, line, lang, match["body"], skip["reason"].strip() if skip else None))
    return found


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


FOUND = [block for page in pages() for block in blocks_of(page)]
#: The blocks to run (or to fail for want of a tag): all but ```text.
BLOCKS = [block for block in FOUND if block.lang != "text"]


@dataclass
class Docs:
    server: Server
    key: str
    env: dict[str, str]
    folders: Path

    def folder(self, page: Path) -> Path:
        path = self.folders / page.stem
        path.mkdir(exist_ok=True)
        return path

    def substitute(self, body: str) -> str:
        body = body.replace("http://127.0.0.1:8000", self.server.url).replace("127.0.0.1:8000", self.server.url[7:])
        return body.replace("sk-...", self.key).replace(".venv/bin/", str(Path(sys.executable).parent) + "/")


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docs]:
    home = tmp_path_factory.mktemp("docs")
    (home / "reelgate.toml").write_text(TINY, encoding="utf-8")
    env = server_env(home, admin_token=ADMIN_TOKEN)
    env.update(
        REELGATE_CONFIG=str(home / "reelgate.toml"),
        XDG_DATA_HOME=str(home / "user-data"),  # the per-user default data folder lives here
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    # The default data folder, so that the pages' commands without --data-dir find the server's database.
    server = Server(home / "user-data" / "reelgate", env)
    server.data_dir.mkdir(parents=True)
    server.start()
    try:
        # What a reader's shell points at by default: `reelgate generate` without --server.
        yield Docs(server, server.create_key("1000"), {**env, "REELGATE_SERVER": server.url}, home)
    finally:
        server.stop()


def test_blocks_are_found() -> None:
    names = {block.page.name for block in BLOCKS}
    assert "README.md" in names and len(BLOCKS) > 10


def test_blocks_are_read_as_a_reader_sees_them(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "intro\n\n<!-- doctest: skip (installs things) -->\n```bash\npip install x\n```\n\n"
        "````text\n```json\n{}\n```\n````\n\n```python\nprint(1)\n```\n\n```\nuntagged\n```\n",
        encoding="utf-8",
    )
    found = [(block.line, block.lang, block.body, block.skip) for block in blocks_of(page)]
    assert found == [
        (4, "bash", "pip install x\n", "installs things"),
        (8, "text", "```json\n{}\n```\n", None),
        (14, "python", "print(1)\n", None),
        (18, "", "untagged\n", None),
    ]


@pytest.mark.parametrize(("lang", "body"), [("bash", "false\necho never"), ("python", "raise SystemExit(3)")])
def test_a_broken_example_fails(tmp_path: Path, lang: str, body: str) -> None:
    docs = Docs(server=None, key="sk-x", env=dict(os.environ), folders=tmp_path)  # type: ignore[arg-type]
    block = Block(ROOT / "README.md", 1, lang, body, None)
    with pytest.raises(AssertionError, match=r"README.md:1 \((bash|python)\) exited [13]"):
        run(block, RUN[lang], body, docs)


@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_block(block: Block, docs: Docs) -> None:
    assert block.lang in RUN, f"{block.name}: tag the block ```text (not run) or one of {sorted(RUN)}"
    if block.skip:
        pytest.skip(block.skip)
    kind = RUN[block.lang]
    body = docs.substitute(block.body)
    if kind == "json":
        json.loads(body)
    elif kind == "toml":
        load_settings(block, body, docs.folder(block.page))
    else:
        run(block, kind, body, docs)


def load_settings(block: Block, body: str, folder: Path) -> None:
    from reelgate.catalog import Catalog
    from reelgate.settings import Settings

    config = folder / f"block-{block.line}.toml"
    config.write_text(body, encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REELGATE_CONFIG", str(config))
        Catalog.build(Settings().models)


def run(block: Block, kind: str, body: str, docs: Docs) -> None:
    folder = docs.folder(block.page)
    command: list[Any]
    if kind == "bash":
        command = ["bash", "-e", "-o", "pipefail", "-c", body]
    else:
        script = folder / f"block-{block.line}.py"
        script.write_text(body, encoding="utf-8")
        command = [sys.executable, str(script)]
    result = subprocess.run(command, cwd=folder, env=docs.env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, (
        f"{block.name} ({kind}) exited {result.returncode}\n--- stdout\n{result.stdout[-3000:]}"
        f"\n--- stderr\n{result.stderr[-3000:]}"
    )
