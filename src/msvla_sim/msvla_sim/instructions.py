"""Resolve a natural-language pick instruction to one object of a scene.

Only colour and shape words matter: "pick up the red cube", "grasp the blue
cylinder" and "Pick the green block" name the red cube, the blue cylinder and
the green cube. The *first* object phrase of the instruction is the target, so
"put the red cube next to the blue cylinder" resolves to the red cube. The
result is ``None`` when the phrase matches no object or more than one.
"""

from __future__ import annotations

import re
from typing import Dict, Iterable, List, Optional, Tuple

# Word (lower case) -> canonical colour.
COLOUR_WORDS: Dict[str, str] = {
    "red": "red",
    "green": "green",
    "blue": "blue",
    "yellow": "yellow",
    "orange": "orange",
    "purple": "purple",
    "violet": "purple",
}

# Word (lower case) -> canonical shape. "block" is a synonym of cube.
SHAPE_WORDS: Dict[str, str] = {
    "cube": "cube",
    "cubes": "cube",
    "block": "cube",
    "blocks": "cube",
    "cylinder": "cylinder",
    "cylinders": "cylinder",
    "can": "cylinder",
    "box": "box",
    "boxes": "box",
    "cuboid": "box",
    "brick": "box",
}

# Words that end an object phrase without naming a shape ("the red one").
_PRONOUNS = {"one", "object", "thing", "item", "piece"}
# Words that start a second phrase (relations to other objects).
_SEPARATORS = {"on", "onto", "next", "near", "beside", "besides", "behind", "left", "right",
               "into", "in", "to", "from", "and", "then", "with", "of", "under", "above",
               "below", "between", "towards", "toward", "by", "at"}

_TOKEN = re.compile(r"[a-z]+")


def tokenize(text: str) -> List[str]:
    return _TOKEN.findall(text.lower())


def parse_target(text: str) -> Tuple[Optional[str], Optional[str]]:
    """(colour, shape) of the first object phrase in ``text``; either may be None."""
    colour: Optional[str] = None
    shape: Optional[str] = None
    for word in tokenize(text):
        if word in COLOUR_WORDS:
            if colour is not None and COLOUR_WORDS[word] != colour:
                # A second colour before any shape word: "the red or blue cube".
                return None, None
            colour = COLOUR_WORDS[word]
        elif word in SHAPE_WORDS:
            shape = SHAPE_WORDS[word]
            break
        elif word in _PRONOUNS and colour is not None:
            break
        elif word in _SEPARATORS and colour is not None:
            break
    return colour, shape


def _objects(scene_description) -> Iterable[dict]:
    if isinstance(scene_description, dict):
        return scene_description.get("objects", [])
    return scene_description


def resolve_instruction(text: str, scene_description) -> Optional[str]:
    """Name of the single object the instruction refers to, or None.

    ``scene_description`` is the dict returned by
    ``FrankaTabletopScene.scene_description()`` (or just its ``objects`` list);
    each object needs ``name`` and ``colour``/``shape`` (the latter two are
    taken from the name "<colour> <shape>" when absent).
    """
    if not text:
        return None
    colour, shape = parse_target(text)
    if colour is None and shape is None:
        return None
    matches = []
    for obj in _objects(scene_description):
        name = obj.get("name", "")
        parts = name.split()
        obj_colour = obj.get("colour", obj.get("color", parts[0] if parts else None))
        obj_shape = obj.get("shape", parts[-1] if parts else None)
        if colour is not None and obj_colour != colour:
            continue
        if shape is not None and obj_shape != shape:
            continue
        matches.append(name)
    return matches[0] if len(matches) == 1 else None
