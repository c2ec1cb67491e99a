"""Resolve a natural-language pick instruction to one object of a scene.

The first object phrase names the target: adjectives (colour, size) and a shape noun, optionally
followed by a spatial modifier that picks among equal-looking objects ("on the left", "closest to
the robot", "next to the duck"). Left and right are the robot's: +y of the base frame is its left.
"put the red cube next to the blue cylinder" therefore names the red cube, and when it is the only
red cube the relation is not needed to decide. The result is None when the phrase matches no
object or more than one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

COLOUR_WORDS: Dict[str, str] = {
    "red": "red", "green": "green", "blue": "blue", "yellow": "yellow", "orange": "orange",
    "purple": "purple", "violet": "purple",
}
SIZE_WORDS: Dict[str, str] = {"small": "small", "little": "small", "tiny": "small",
                              "large": "large", "big": "large"}
SHAPE_WORDS: Dict[str, str] = {
    "cube": "cube", "cubes": "cube", "block": "cube", "blocks": "cube",
    "cylinder": "cylinder", "cylinders": "cylinder", "can": "cylinder",
    "box": "box", "boxes": "box", "cuboid": "box", "brick": "box",
    "duck": "duck", "duckie": "duck", "mug": "mug", "cup": "mug", "lego": "lego",
    "toy": "toy",
}
# Words that end an object phrase without naming a shape ("the red one").
_PRONOUNS = {"one", "object", "thing", "item", "piece"}
# Words that start a second phrase (relations to other objects, a destination).
_SEPARATORS = {"on", "onto", "next", "near", "beside", "besides", "behind", "left", "right",
               "into", "in", "to", "from", "and", "then", "with", "of", "under", "above",
               "below", "between", "towards", "toward", "by", "at", "closest", "nearest",
               "farthest", "furthest", "leftmost", "rightmost"}
_RELATIONS = {"next", "near", "beside", "besides", "by"}

_TOKEN = re.compile(r"[a-z]+")


def tokenize(text: str) -> List[str]:
    return _TOKEN.findall(text.lower())


@dataclass
class Phrase:
    colour: Optional[str] = None
    size: Optional[str] = None
    shape: Optional[str] = None
    spatial: Optional[str] = None  # "left", "right", "near" (to the robot), "far"
    relative_to: Optional["Phrase"] = None  # "next to <phrase>"
    ambiguous: bool = False  # e.g. two colours: "the red or blue cube"


def _parse_np(tokens: List[str]) -> Tuple[Phrase, int]:
    """Parse the first object phrase; returns it and the index after its head word."""
    phrase = Phrase()
    for i, word in enumerate(tokens):
        if word == "can" and tokens[i + 1:i + 2] == ["you"]:
            continue  # "can you pick up ...": the verb, not the shape
        if word in COLOUR_WORDS:
            if phrase.colour is not None and COLOUR_WORDS[word] != phrase.colour:
                phrase.ambiguous = True
            phrase.colour = COLOUR_WORDS[word]
        elif word in SIZE_WORDS:
            phrase.size = SIZE_WORDS[word]
        elif word in SHAPE_WORDS:
            phrase.shape = SHAPE_WORDS[word]
            return phrase, i + 1
        elif (word in _PRONOUNS or word in _SEPARATORS) and (phrase.colour or phrase.size):
            return phrase, i + (word in _PRONOUNS)
    return phrase, len(tokens)


def _parse_modifier(phrase: Phrase, rest: List[str]) -> None:
    words = set(rest[:6])
    if words & {"left", "leftmost"}:
        phrase.spatial = "left"
    elif words & {"right", "rightmost"}:
        phrase.spatial = "right"
    elif words & {"closest", "nearest"} and "robot" in words:
        phrase.spatial = "near"
    elif words & {"farthest", "furthest"}:
        phrase.spatial = "far"
    elif rest and rest[0] in _RELATIONS:
        ref, _ = _parse_np(rest[1:])
        if ref.shape or ref.colour:
            phrase.relative_to = ref


def parse_phrase(text: str) -> Phrase:
    tokens = tokenize(text)
    phrase, end = _parse_np(tokens)
    if phrase.shape or phrase.colour or phrase.size:
        _parse_modifier(phrase, tokens[end:])
    return phrase


def parse_target(text: str) -> Tuple[Optional[str], Optional[str]]:
    """(colour, shape) of the first object phrase in ``text``; either may be None."""
    phrase = parse_phrase(text)
    if phrase.ambiguous:
        return None, None
    return phrase.colour, phrase.shape


def _objects(scene_description) -> Iterable[dict]:
    if isinstance(scene_description, dict):
        return scene_description.get("objects", [])
    return scene_description


def _attributes(obj: dict) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    parts = obj.get("name", "").split()
    colour = obj.get("colour", obj.get("color", parts[0] if parts else None))
    shape = obj.get("shape", parts[-1] if parts else None)
    return colour, shape, obj.get("size_word")


def _matches(phrase: Phrase, objects: List[dict]) -> List[dict]:
    out = []
    for obj in objects:
        colour, shape, size = _attributes(obj)
        if ((phrase.colour is None or colour == phrase.colour)
                and (phrase.shape is None or shape == phrase.shape)
                and (phrase.size is None or size == phrase.size)):
            out.append(obj)
    return out


def _select(phrase: Phrase, objects: List[dict]) -> Optional[dict]:
    if phrase.ambiguous or not (phrase.colour or phrase.shape or phrase.size):
        return None
    candidates = _matches(phrase, objects)
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    if any("position" not in o for o in candidates):
        return None
    if phrase.spatial is not None:
        axis, sign = {"left": (1, 1), "right": (1, -1), "near": (0, -1), "far": (0, 1)}[phrase.spatial]
        return max(candidates, key=lambda o: sign * o["position"][axis])
    if phrase.relative_to is not None:
        ref = _select(phrase.relative_to, [o for o in objects if o not in candidates])
        if ref is None:
            return None
        rx, ry = ref["position"][:2]
        return min(candidates, key=lambda o: (o["position"][0] - rx) ** 2 + (o["position"][1] - ry) ** 2)
    return None


def resolve_instruction(text: str, scene_description) -> Optional[str]:
    """Name of the single object the instruction refers to, or None.

    ``scene_description`` is the dict returned by ``FrankaTabletopScene.scene_description()``
    (or just its ``objects`` list); each object needs ``name`` and ``colour``/``shape`` (taken from
    the name "<colour> <shape>" when absent), ``size_word`` for size words and ``position`` for
    spatial modifiers.
    """
    if not text:
        return None
    chosen = _select(parse_phrase(text), list(_objects(scene_description)))
    return None if chosen is None else chosen.get("name")
