"""Instructions that name one object of a scene unambiguously, in varied phrasings.

The description uses as few words as the scene allows: the shape alone when it is unique, colour
and shape when those are, then a size word, then a spatial modifier among equal-looking objects
(left/right as seen by the robot, closest to/farthest from it). Phrasings come in two disjoint
sets: "train" for recorded demonstrations and "heldout" for evaluation, so a model is also tested
on sentences it never saw. msvla_sim.instructions resolves every generated instruction back to
its target (a test checks this on many random scenes).
"""
from __future__ import annotations

import numpy as np

from .catalogue import SPLITS

# Spatial modifiers need this margin (metres) to the runner-up, so that "left" is visibly left.
SPATIAL_MARGIN_M = 0.04

SHAPE_SYNONYMS = {"cube": ("cube", "block"), "cylinder": ("cylinder", "can"), "box": ("box", "brick"),
                  "duck": ("duck",), "mug": ("mug", "cup"), "lego": ("lego",), "toy": ("toy",)}
SIZE_SYNONYMS = {"small": ("small", "little"), "large": ("large", "big")}
SPATIAL_PHRASES = {"left": ("on the left", "on your left"), "right": ("on the right", "on your right"),
                   "near": ("closest to the robot", "nearest the robot"),
                   "far": ("farthest from the robot", "furthest from the robot")}

TEMPLATES = {
    "train": (
        "pick up the {np}",
        "grasp the {np}",
        "pick the {np}",
        "pick up the {np} please",
        "grab the {np}",
        "lift the {np}",
        "take the {np}",
        "can you pick up the {np}",
    ),
    "heldout": (
        "please fetch the {np}",
        "hand me the {np}",
        "could you get the {np} for me",
        "I need the {np}, pick it up",
        "go and collect the {np}",
    ),
}


def _spatial_options(target: dict, group: list[dict]) -> list[str]:
    """Spatial modifiers that single out `target` within `group` by the margin."""
    if len(group) < 2:
        return []
    options = []
    for name, axis, sign in (("left", 1, 1), ("right", 1, -1), ("near", 0, -1), ("far", 0, 1)):
        ranked = sorted(group, key=lambda o: -sign * o["position"][axis])
        if ranked[0] is target and sign * (ranked[0]["position"][axis] - ranked[1]["position"][axis]) \
                >= SPATIAL_MARGIN_M:
            options.append(name)
    return options


def _word(rng: np.random.Generator, choices: tuple[str, ...]) -> str:
    # The canonical word is used most often; synonyms keep the language embedding robust.
    return choices[0] if rng.random() < 0.6 else choices[int(rng.integers(len(choices)))]


def noun_phrase(target: dict, objects: list[dict], rng: np.random.Generator,
                require_colour: bool = False) -> str | None:
    """The shortest unambiguous description of `target` among `objects` (None if there is none);
    `require_colour` always names the colour."""
    colour, shape, size = target["colour"], target["shape"], target.get("size_word")
    same_shape = [o for o in objects if o["shape"] == shape]
    same_look = [o for o in same_shape if o["colour"] == colour]
    same_size = [o for o in same_look if o.get("size_word") == size]
    noun = _word(rng, SHAPE_SYNONYMS[shape])
    size_word = _word(rng, SIZE_SYNONYMS[size]) if size else None
    options: list[list[str]] = []
    if len(same_shape) == 1 and not require_colour:
        options.append([noun])
    if len(same_look) == 1:
        options.append([colour, noun])
        if size_word:
            options.append([size_word, colour, noun])
    elif size_word and len(same_size) == 1:
        options.append([size_word, colour, noun])
    else:
        group = same_size if size_word else same_look
        prefix = [size_word, colour, noun] if size_word and len(same_size) < len(same_look) else [colour, noun]
        for spatial in _spatial_options(target, group):
            phrases = SPATIAL_PHRASES[spatial]
            options.append(prefix + [phrases[int(rng.integers(len(phrases)))]])
    if not options:
        return None
    return " ".join(options[int(rng.integers(len(options)))])


def instruction_for(target: dict, objects: list[dict], rng: np.random.Generator,
                    phrasing: str = "train", require_colour: bool = False) -> str | None:
    """A pick instruction naming `target` (an entry of a scene description's objects)."""
    if phrasing not in SPLITS:
        raise ValueError(f"phrasing must be one of {SPLITS}, got {phrasing!r}")
    phrase = noun_phrase(target, objects, rng, require_colour)
    if phrase is None:
        return None
    templates = TEMPLATES[phrasing]
    return templates[int(rng.integers(len(templates)))].format(np=phrase)


def choose_target(description: dict, rng: np.random.Generator, phrasing: str = "train") -> tuple[dict, str]:
    """A random object of the scene that can be named, and its instruction. Raises ValueError when
    no object of the scene can be named unambiguously."""
    objects = description["objects"]
    for i in rng.permutation(len(objects)):
        text = instruction_for(objects[int(i)], objects, rng, phrasing)
        if text is not None:
            return objects[int(i)], text
    raise ValueError(f"no object of scene {description.get('seed')} can be named unambiguously")
