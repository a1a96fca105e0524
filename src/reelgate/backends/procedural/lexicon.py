"""Words a prompt may use (Chinese and English) and what they mean to the renderer: colours and things.

A word brings colours into the palette and may bring a scenery, a moving subject, weather or a time
of day. Longer words are matched first, so `西瓜` (watermelon) wins over `瓜`, and `sunset` over `sun`.
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Meaning:
    colors: tuple[RGB, ...] = ()
    scenery: str | None = None  #: "city" | "mountains" | "forest" | "waves" | "hills" | "desert"
    subject: str | None = (
        None  #: "melon" | "sun" | "moon" | "ball" | "bird" | "car" | "fish" | "bubble" | "cat" | "dog"
    )
    weather: str | None = None  #: "rain" | "snow" | "petals" | "sparkles" | "leaves"
    time: str | None = None  #: "day" | "dusk" | "night"

    @property
    def night(self) -> bool:
        return self.time == "night"

    @property
    def only_colors(self) -> bool:
        """A word that names colours and nothing else (`紫`, `purple`, `中国`): a remix recolours with it."""
        return bool(self.colors) and not (self.scenery or self.subject or self.weather or self.time)


RED, ORANGE, YELLOW, GREEN = (214, 40, 40), (247, 127, 0), (252, 191, 73), (56, 176, 0)
CYAN, BLUE, PURPLE, PINK = (0, 180, 216), (29, 78, 216), (123, 44, 191), (255, 143, 171)
WHITE, BLACK, GRAY, GOLD = (240, 240, 235), (20, 20, 28), (128, 128, 136), (212, 175, 55)
SILVER, BROWN, NAVY, SAND = (192, 192, 200), (121, 85, 61), (12, 22, 60), (230, 204, 150)

_COLOR_WORDS: dict[RGB, tuple[str, ...]] = {
    RED: ("红", "赤", "red", "crimson", "scarlet"),
    ORANGE: ("橙", "橘", "orange"),
    YELLOW: ("黄", "yellow"),
    GREEN: ("绿", "green"),
    CYAN: ("青", "cyan", "teal", "turquoise"),
    BLUE: ("蓝", "blue"),
    PURPLE: ("紫", "purple", "violet"),
    PINK: ("粉", "pink"),
    WHITE: ("白", "white"),
    BLACK: ("黑", "black"),
    GRAY: ("灰", "gray", "grey"),
    GOLD: ("金", "gold", "golden"),
    SILVER: ("银", "silver"),
    BROWN: ("棕", "褐", "咖啡", "brown", "coffee"),
}

_THINGS: dict[tuple[str, ...], Meaning] = {
    ("西瓜", "watermelon"): Meaning((GREEN, RED), subject="melon"),
    ("日落", "夕阳", "黄昏", "傍晚", "sunset", "dusk", "evening", "twilight"): Meaning(
        (ORANGE, PINK, PURPLE), subject="sun", time="dusk"
    ),
    ("日出", "朝阳", "sunrise", "dawn"): Meaning((GOLD, PINK, CYAN), subject="sun"),
    ("白天", "白昼", "早晨", "清晨", "上午", "中午", "day", "daytime", "daylight", "morning", "noon"): Meaning(
        time="day"
    ),
    ("太阳", "阳光", "sun", "sunny", "sunshine"): Meaning((YELLOW, CYAN), subject="sun"),
    ("月亮", "月光", "moon", "moonlight"): Meaning((SILVER, NAVY), subject="moon", time="night"),
    ("夜", "晚上", "night", "nighttime", "midnight"): Meaning((NAVY, PURPLE), weather="sparkles", time="night"),
    ("星", "star", "stars"): Meaning((NAVY, GOLD), weather="sparkles", time="night"),
    ("霓虹", "neon"): Meaning(((255, 0, 170), CYAN), scenery="city", time="night"),
    ("街", "城市", "都市", "street", "city", "town", "downtown"): Meaning((GRAY, ORANGE), scenery="city"),
    ("中国", "china", "chinese"): Meaning((RED, GOLD)),
    ("山", "mountain", "mountains", "hill"): Meaning((BLUE, SILVER), scenery="mountains"),
    ("森林", "树", "forest", "tree", "trees", "woods"): Meaning(((34, 110, 50), BROWN), scenery="forest"),
    ("草", "草原", "grass", "meadow", "field"): Meaning((GREEN, YELLOW), scenery="hills"),
    ("海", "洋", "浪", "sea", "ocean", "wave", "waves", "beach"): Meaning((BLUE, CYAN), scenery="waves"),
    ("湖", "河", "lake", "river"): Meaning((CYAN, GREEN), scenery="waves"),
    ("沙漠", "desert", "sand"): Meaning((SAND, ORANGE), scenery="desert"),
    ("雪", "snow", "snowing", "snowy", "winter"): Meaning((WHITE, SILVER), weather="snow"),
    ("雨", "rain", "raining", "rainy", "storm"): Meaning((GRAY, BLUE), weather="rain"),
    ("樱花", "cherry blossom", "sakura"): Meaning((PINK, WHITE), weather="petals"),
    ("花", "flower", "flowers", "blossom"): Meaning((PINK, PURPLE), weather="petals"),
    ("秋", "落叶", "autumn", "fall leaves"): Meaning((ORANGE, BROWN), weather="leaves"),
    ("火", "fire", "flame"): Meaning((RED, ORANGE), weather="sparkles"),
    ("鸟", "bird", "birds"): Meaning((CYAN,), subject="bird"),
    ("鱼", "fish"): Meaning((ORANGE, BLUE), subject="fish"),
    ("车", "汽车", "car", "cars", "taxi"): Meaning((YELLOW, GRAY), subject="car"),
    ("猫", "cat", "cats", "kitten", "kitty"): Meaning((ORANGE, WHITE), subject="cat"),
    ("狗", "犬", "dog", "dogs", "puppy", "puppies"): Meaning((BROWN, WHITE), subject="dog"),
    ("球", "ball"): Meaning((ORANGE,), subject="ball"),
    ("气泡", "泡泡", "bubble", "bubbles"): Meaning((CYAN, WHITE), subject="bubble"),
}


def _build() -> list[tuple[str, Meaning]]:
    table = [(word, Meaning((color,))) for color, words in _COLOR_WORDS.items() for word in words]
    table += [(word, meaning) for words, meaning in _THINGS.items() for word in words]
    return sorted(table, key=lambda item: -len(item[0]))


WORDS = _build()


def meanings(text: str) -> list[Meaning]:
    """The meanings of the words in `text`, in the order they appear (each span of text used once).

    >>> [m.subject for m in meanings("吃西瓜") if m.subject]
    ['melon']
    """
    lowered = text.lower()
    taken = [False] * len(lowered)
    found: list[tuple[int, Meaning]] = []
    for word, meaning in WORDS:
        start = lowered.find(word)
        while start != -1:
            end = start + len(word)
            if not any(taken[start:end]) and _whole_word(lowered, start, end):
                taken[start:end] = [True] * len(word)
                found.append((start, meaning))
            start = lowered.find(word, end)
    return [meaning for _, meaning in sorted(found, key=lambda item: item[0])]


def _whole_word(text: str, start: int, end: int) -> bool:
    """English words must stand alone (`red` is not in `bored`); Chinese characters have no spaces."""
    if not text[start].isascii():
        return True
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    return not (before.isascii() and before.isalpha()) and not (after.isascii() and after.isalpha())
