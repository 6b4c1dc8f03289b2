"""Did moving a README into the docs lose anything? Compares an old README.md (from git) with
today's README and docs pages as the site shows them (generated tables in place):

- every picture it showed is shown by a page, and its file is there;
- every table row is a row of some page's table (a row of a table that is now generated from
  the code counts when the generated table has a row for the same first cell);
- every line of every code block is a line of some code block;
- every number (figure, date, size, version) appears;
- every sentence appears word for word (links, bold and line breaks aside); the ones that do
  not are listed, so each rewording can be read and judged.

    python docs/tools/nothing_lost.py              # the README of `main`
    python docs/tools/nothing_lost.py --old REV    # or of any commit

Exit 0 when no picture, row, code line or number is missing (sentences are listed, not counted).
Run from the repository root with the package importable (the generated tables need it).
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PICTURE = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")
LINK = re.compile(r"(?<!!)\[([^\]]+)\]\([^)]+\)")
NUMBER = re.compile(r"(?<![\w.])[−-]?\d[\d,]*(?:\.\d+)?(?:e[−-]?\d+)?")
FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`(*\"])")


def load_reference():
    spec = importlib.util.spec_from_file_location("docs_reference", DOCS / "hooks" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def new_pages() -> dict[str, str]:
    expand = load_reference().expand
    pages = {str(path.relative_to(ROOT)): expand(path.read_text(encoding="utf-8")) for path in sorted(DOCS.glob("*.md"))}
    return {"README.md": (ROOT / "README.md").read_text(encoding="utf-8"), **pages}


def plain(text: str) -> str:
    """Text as read: links as their words, no bold or emphasis marks, one space between words."""
    text = PICTURE.sub("", text)
    text = LINK.sub(r"\1", text)
    text = text.replace("**", "")
    return " ".join(text.split()).strip()


def without_code(text: str) -> str:
    return FENCE.sub("", text)


def table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in without_code(text).splitlines():
        line = line.strip()
        if line.startswith("|") and not re.fullmatch(r"\|[\s:|-]+\|", line):
            rows.append([plain(cell) for cell in re.split(r"(?<!\\)\|", line.strip("|"))])
    return rows


def code_lines(text: str) -> list[str]:
    return [" ".join(line.split()) for block in FENCE.findall(text) for line in block.splitlines() if line.strip()]


def prose(text: str) -> list[str]:
    """The sentences of the text outside code blocks, tables and pictures."""
    paragraphs, current = [], []
    for line in without_code(text).splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("|", "![", "#", "<!--")):
            paragraphs.append(" ".join(current))
            current = []
            if stripped.startswith("#"):
                paragraphs.append(stripped.lstrip("#").strip())
            continue
        if re.match(r"^(?:[-*]|\d+\.)\s+", stripped):  # a list item starts a paragraph of its own
            paragraphs.append(" ".join(current))
            current = []
        current.append(re.sub(r"^(?:[-*]|\d+\.)\s+", "", stripped))
    paragraphs.append(" ".join(current))
    return [sentence for paragraph in paragraphs for sentence in SENTENCE_END.split(plain(paragraph)) if sentence]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default="main", help="the commit whose README.md was moved (default: main)")
    args = parser.parse_args()
    old = subprocess.run(["git", "show", f"{args.old}:README.md"], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    pages = new_pages()
    corpus = "\n\n".join(pages.values())
    flat = plain(" ".join(without_code(page) for page in pages.values())).lower()
    flat_all = plain(corpus).lower()
    lost: dict[str, list[str]] = collections.defaultdict(list)

    shown = {Path(target).name for target in PICTURE.findall(corpus)}
    pictures = PICTURE.findall(old)
    for target in pictures:
        name = Path(target).name
        if name not in shown or not (DOCS / "images" / name).is_file():
            lost["pictures"].append(target)

    new_rows = {tuple(row) for row in table_rows(corpus)}
    first_cells = {row[0] for row in new_rows}
    old_rows = table_rows(old)
    kept_as_generated = []
    for row in old_rows:
        if tuple(row) in new_rows:
            continue
        if row[0] in first_cells or re.sub(r"/mixed\d+|/<layer>", "/<layer>", row[0]) in first_cells:
            kept_as_generated.append(" | ".join(row))
        else:
            lost["table rows"].append(" | ".join(row))

    new_code = set(code_lines(corpus))
    new_code_words = {word for line in new_code for word in line.split()}
    old_code = code_lines(old)
    rearranged = [line for line in old_code if line not in new_code and set(line.split()) <= new_code_words]
    lost["code lines"] = [line for line in old_code if line not in new_code and line not in rearranged]

    old_numbers = collections.Counter(NUMBER.findall(old))
    new_numbers = collections.Counter(NUMBER.findall(corpus))
    lost["numbers"] = [number for number in old_numbers if number not in new_numbers]

    sentences = prose(old)
    reworded = [sentence for sentence in sentences
                if not any(sentence.rstrip(".:;").lower() in text for text in (flat, flat_all))]

    print(f"old README ({args.old}): {len(old.splitlines())} lines; new: README {len(pages['README.md'].splitlines())} "
          f"lines + {len(pages) - 1} pages")
    print(f"pictures:   {len(pictures) - len(lost['pictures'])} of {len(pictures)} shown")
    print(f"table rows: {len(old_rows) - len(lost['table rows'])} of {len(old_rows)} kept "
          f"({len(kept_as_generated)} of them as rows of a generated table)")
    print(f"code lines: {len(old_code) - len(lost['code lines'])} of {len(old_code)} kept "
          f"({len(rearranged)} of them rearranged: all their words are in the new code blocks)")
    print(f"numbers:    {len(old_numbers) - len(lost['numbers'])} of {len(old_numbers)} distinct numbers present")
    print(f"sentences:  {len(sentences) - len(reworded)} of {len(sentences)} word for word")
    for kind, items in lost.items():
        for item in items:
            print(f"LOST {kind}: {item}")
    for line in rearranged:
        print(f"rearranged code: {line}")
    for row in kept_as_generated:
        print(f"generated now: {row}")
    for sentence in reworded:
        print(f"reworded: {sentence}")
    return 1 if any(lost.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
