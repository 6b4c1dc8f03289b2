"""The docs' generated parts: the OSC address table, the key table, the config reference and
the package extras, made when the site is built from the code (and files) that own each list,
so a page cannot drift from it.

MkDocs calls `on_page_markdown` (mkdocs.yml: `hooks:`); a page asks for a part with a line
`<!-- generated: NAME -->`. The code owns the lists (addresses, their types and ranges; keys;
config sections, keys, defaults and allowed values; config.toml's one-line comments;
pyproject.toml's extras and their comments); this file
owns only the words of the OSC table's effect column, and the build fails when an address has
no words here or words here name an address the code no longer has. `tests/test_docs.py`
imports this file too.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import tomllib
import typing
from pathlib import Path
from types import UnionType

from livedream import config as config_schema
from livedream.control.inbox import COMMANDS as CONTROL_COMMANDS
from livedream.control.osc import PREFIX, osc_addresses
from livedream.control.sync import SYNC_PREFIX
from livedream.objective import LAYERS
from livedream.params import CHOICE_PARAMS, OBJECTIVE_FIELDS, PARAM_RANGES
from livedream.pipeline.display import key_help_rows

ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE = ROOT / "config.toml"
PYPROJECT = ROOT / "pyproject.toml"
PLACEHOLDER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)
LAYER, CHANNEL = "<layer>", "<channel>"
log = logging.getLogger("mkdocs.hooks.reference")  # under MkDocs' logger, so --strict counts its warnings


class DocsError(Exception):
    """The docs and the code disagree; the message names what to change, and where."""


# --- the OSC table ----------------------------------------------------------------------------

# The effect column, by address below /livedream (a layer written <layer>). The value column
# comes from the code unless a text is given here (for a value OSC types cannot say).
OSC_WORDS: dict[str, tuple[str | None, str]] = {
    "strength": (None, "step size of one ascent step"),
    "gradient_norm": (None, "how a step normalises its gradient ([the look](live.md#the-look))"),
    "steps": (None, "ascent steps per octave per frame"),
    "octaves": (None, "octaves per frame"),
    "octave_scale": (None, "size ratio between octaves"),
    "half_life": (None, "seconds the carried dream takes to fade to half (0 = none)"),
    "depth": (None, "grey levels the carried dream's local strength is held under (0 = no ceiling)"),
    "zoom_per_s": (None, "feedback zoom per second (0.2 = 20 % in)"),
    "rotate_per_s": (None, "feedback rotation, degrees per second"),
    "shift_x_per_s": (None, "feedback shift, dream pixels per second"),
    "shift_y_per_s": (None, "〃"),
    "dream_height": (None, "size the dream is computed at"),
    "dream_width": (None, "〃"),
    f"objective/{LAYER}": (None, "the weight of a layer in the objective (`mixed0` … `mixed10`)"),
    f"objective/{LAYER}/{CHANNEL}": (None, "the weight of one channel (`/livedream/objective/mixed4/97`)"),
    f"visitor_objective/{LAYER}": (None, "the visitors' objective, as `/livedream/objective/…`"),
    f"visitor_objective/{LAYER}/{CHANNEL}": (None, "one channel of the visitors' objective"),
    "guide": ('image path, `""` clears',
              "dream toward this image's features (an image file; anything else is refused)"),
    "guide_mode": (None, "how the guide steers ([guide images](photos-videos.md#guide-images))"),
    "where": (None, "who dreams ([the visitor and the room](visitors.md))"),
    "preset": ("name or 1..n", "crossfade to a preset"),
    "screenshot": ("–", "save a screenshot"),
    "record": ("1 / 0", "start / stop recording"),
    "record_start": ("–", "start recording"),
    "record_stop": ("–", "stop recording"),
    "pause": ("–", "freeze / resume"),
    "mask_view": ("–", "the visitor mask over the picture on/off, in the operator's window only (never the outputs)"),
    "learn": ("parameter or preset name", "MIDI learn: the next CC (or pad, for a preset) binds to it"),
}
# What a sync leader sends its followers ([sync]); the followers' OSC server answers them.
SYNC_WORDS: dict[str, tuple[str, str]] = {
    "preset": ("name, fade seconds", "from a sync leader: crossfade to this preset over this time"),
    "beat": ("program step, seconds into it", "from a sync leader: \"still here\", and where its program is"),
}


def osc_rows() -> list[tuple[str, str, str]]:
    """(address, value, effect) per address the OSC server answers, a layer's addresses as one
    `<layer>` row (and its `<layer>/<channel>` twin), then the sync leader's two."""
    rows: list[tuple[str, str, str]] = []
    named: set[str] = set()
    for address in osc_addresses():
        name = _pattern(address.path[len(PREFIX) + 1:])
        names = [name, f"{name}/{CHANNEL}"] if name.endswith(LAYER) else [name]
        for each in names:
            if each in named:
                continue
            named.add(each)
            if each not in OSC_WORDS:
                raise DocsError(f"OSC {PREFIX}/{each} has no words in docs/hooks/reference.py OSC_WORDS; add them")
            value, effect = OSC_WORDS[each]
            rows.append((f"{PREFIX}/{each}", value or _osc_value(address.osc_type, address.low, address.high, each),
                         effect))
    stale = set(OSC_WORDS) - named - set(CONTROL_COMMANDS)  # a control command may not (yet) be an address
    if stale:
        raise DocsError(f"docs/hooks/reference.py OSC_WORDS names {sorted(stale)}, which OSC no longer answers")
    rows += [(f"{SYNC_PREFIX}/{kind}", value, effect) for kind, (value, effect) in SYNC_WORDS.items()]
    return rows


def _pattern(name: str) -> str:
    """`objective/mixed4` → `objective/<layer>`; other names as they are."""
    for prefix in OBJECTIVE_FIELDS:
        if name.startswith(prefix) and name[len(prefix):] in LAYERS:
            return prefix + LAYER
    return name


def _osc_value(osc_type: str, low: float | None, high: float | None, name: str) -> str:
    if name in CHOICE_PARAMS:
        return " / ".join(f"`{choice}`" for choice in CHOICE_PARAMS[name])
    kind = {"f": "float", "i": "int", "s": "text", "N": "–"}[osc_type]
    return kind if low is None else f"{kind} {_number(low)}..{_number(high)}"


def _number(value: float | None) -> str:
    shown = str(int(value)) if float(value).is_integer() else str(value)
    return shown.replace("-", "−")


def osc_table() -> str:
    return _table(("address", "value", "effect"), [(f"`{path}`", value, effect) for path, value, effect in osc_rows()])


# --- the key table ------------------------------------------------------------------------------


def key_table() -> str:
    return _table(("key", "action"), key_help_rows())


# --- the config reference -------------------------------------------------------------------------


class DocumentedKey(typing.NamedTuple):
    """One `key = value  # comment` line of config.toml (continuation comments joined)."""

    value: str
    comment: str


def documented_keys(text: str) -> tuple[dict[str, dict[str, DocumentedKey]], dict[str, list[str]]]:
    """config.toml's keys by [section] (sub-tables such as [presets.calm] as their own), and each
    section's free comment lines (those that describe no key)."""
    keys: dict[str, dict[str, DocumentedKey]] = {}
    notes: dict[str, list[str]] = {}
    section, above, last = "", [], None
    for line in text.splitlines():
        header = re.match(r"^\[([\w.-]+)\]\s*(?:#\s*(.*))?$", line)
        entry = re.match(r"^(\w+)\s*=\s*(.*)$", line)
        if header:
            section, above, last = header.group(1), [], None
            keys[section], notes[section] = {}, [header.group(2)] if header.group(2) else []
        elif entry and section:
            value, comment = _split_comment(entry.group(2))
            if not comment and above:  # a key without its own comment takes the block above it
                comment, above = " ".join(above), []
            notes[section] += above
            above, last = [], entry.group(1)
            keys[section][last] = DocumentedKey(value, comment)
        elif re.match(r"^\s+#", line) and last:  # an indented comment continues the key's
            before = keys[section][last]
            keys[section][last] = DocumentedKey(before.value, f"{before.comment} {line.strip()[1:].strip()}")
        elif line.startswith("#") and section and not line.startswith("# ---"):
            above.append(line[1:].strip())
        else:
            notes.setdefault(section, []).extend(above)
            above, last = [], None
    return keys, notes


def _split_comment(rest: str) -> tuple[str, str]:
    """`"a # b"  # why` → (`"a # b"`, `why`): a # inside a string is no comment."""
    quote = None
    for index, char in enumerate(rest):
        if char in "\"'" and quote in (None, char):
            quote = None if quote else char
        elif char == "#" and quote is None:
            return rest[:index].strip(), rest[index + 1:].strip()
    return rest.strip(), ""


def config_reference() -> str:
    keys, notes = documented_keys(CONFIG_FILE.read_text(encoding="utf-8"))
    parts = []
    for section in dataclasses.fields(config_schema.Config):
        section_type = section.default_factory  # type: ignore[misc]
        documented = keys.get(section.name)
        if documented is None:
            raise DocsError(f"config.toml has no [{section.name}] section")
        rows = []
        for key in dataclasses.fields(section_type):
            if key.name not in documented:
                raise DocsError(f"config.toml does not show [{section.name}] {key.name}")
            shown = documented[key.name]
            rows.append((f"`{key.name}`", f"`{shown.value}`", _allowed(section, key, shown.value), _prose(shown.comment)))
        intro = " ".join(_sentence(text) for text in [_first_paragraph(section_type.__doc__ or ""), *notes[section.name]])
        lines = [f"### `[{section.name}]`", "", intro, "",
                 _table(("key", "default", "allowed", "what it does"), rows)]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _sentence(text: str) -> str:
    """A comment as a sentence of prose: capital first, a full stop last, no tag-like <name>."""
    text = text[:1].upper() + text[1:]
    return _prose(text if text.endswith(".") else f"{text}.")


def _prose(text: str) -> str:
    return text.replace("<", "&lt;")


def _first_paragraph(doc: str) -> str:
    """A section dataclass's docstring without its `[name]: ` label, first paragraph only."""
    first = " ".join(doc.strip().split("\n\n")[0].split())
    return re.sub(r"^\[[\w.]+\]:\s*", "", first)


def _allowed(section: dataclasses.Field, key: dataclasses.Field, value: str) -> str:
    """What a key takes, from the schema: its choices, its range, else its type."""
    # config.py's field metadata: choice() and bounded() fields, and a section's ranges (Params).
    choices = key.metadata.get(config_schema._CHOICES) or CHOICE_PARAMS.get(key.name if section.name == "dream" else "")
    if choices:
        return " | ".join(f"`{choice}`" for choice in choices)
    allowed = key.metadata.get(config_schema._RANGE) or section.metadata.get(config_schema._RANGES, {}).get(key.name)
    if section.name == "dream" and allowed is None:
        allowed = PARAM_RANGES.get(key.name)
    hint = typing.get_type_hints(section.default_factory).get(key.name)  # type: ignore[arg-type]
    kinds = typing.get_args(hint) if isinstance(hint, UnionType) else (hint,)
    structured = "list" if value.startswith("[") else "table"  # a tuple field: a TOML list or table
    kind = " or ".join({bool: "true / false", int: "integer", float: "number", str: "text"}.get(k, structured)
                       for k in kinds)
    return f"{kind} {_number(allowed.low)}..{_number(allowed.high)}" if allowed else kind


# --- the package extras -----------------------------------------------------------------------------


def extras_table() -> str:
    """pyproject.toml's extras: what each is for (its comment there) and what it installs."""
    text = PYPROJECT.read_text(encoding="utf-8")
    extras = tomllib.loads(text)["project"]["optional-dependencies"]
    comments = documented_keys(text)[0]["project.optional-dependencies"]
    rows = [(f"`{name}`", _prose(comments[name].comment) if name in comments else "",
             ", ".join(f"`{package}`" for package in packages)) for name, packages in extras.items()]
    return _table(("extra", "what for", "installs"), rows)


# --- the hook --------------------------------------------------------------------------------------

PARTS = {"osc-addresses": osc_table, "keys": key_table, "config-reference": config_reference,
         "extras": extras_table}


def expand(markdown: str) -> str:
    """`markdown` with each `<!-- generated: NAME -->` line replaced by that part."""
    def part(match: re.Match[str]) -> str:
        if match.group(1) not in PARTS:
            raise DocsError(f"no generated part {match.group(1)!r}; known: {', '.join(PARTS)}")
        return PARTS[match.group(1)]()
    return PLACEHOLDER.sub(part, markdown)


def on_page_markdown(markdown: str, page, **_: object) -> str:
    """MkDocs' hook: a disagreement is one warning naming the page, which fails a --strict build."""
    try:
        return expand(markdown)
    except DocsError as error:
        log.warning("%s: %s", page.file.src_uri, error)
        return markdown


def _table(header: tuple[str, ...], rows: typing.Iterable[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)
