"""The gallery of a results folder: ``figures.md``, one section per figure the run made, in reading order.

:func:`write_gallery` lists every PNG under the folder (its subfolders too, e.g. the demo's
``neurons/{lang}/``), each with a plain-language title, its image link (a path relative to the
folder) and one sentence on what it shows.  The sentence is the figure kind's own
(:data:`KINDS`, matched on the file name); a caller may add a sentence of numbers per figure.
Figures are ordered by folder (the folder's own first, then its subfolders by name) and,
within a folder, by kind in :data:`KINDS`' order (the LRP2 search first, the neuron analysis
after it), then by name.  The text depends on the file names only, so a resumed run writes the
same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from lrp2_interp.files import write_text

GALLERY = "figures.md"

#: figure kinds in reading order: (file-name pattern, title, what the figure shows); ``{lang}``,
#: ``{method}`` in a title or sentence are the pattern's groups
KINDS: tuple[tuple[str, str, str], ...] = (
    (
        r"sweep_(?P<lang>.+)_gain",
        "LRP2 gain over the baseline for every (m, n), {lang}",
        "Each cell is the accuracy gain (percentage points) of LRP2 over the baseline when {lang}'s language "
        "component is removed at block m (LIRP) and English's is added at block n (LSRP); the brightest cells "
        "are the layer pairs where the shift helps most.",
    ),
    (
        r"(?P<method>.+)_dev_search_(?P<lang>.+)",
        "{method}: the search for its setting on dev facts, {lang}",
        "Dev accuracy of every setting the search tried, one line per successive-halving rung; the setting it "
        "chose (named in the title) is the one scored on the test facts.",
    ),
    (
        r"lens_(?P<lang>.+)",
        "Logit lens, {lang} prompts",
        "Mean probability of the answer's first token in English and in {lang}, read out at every layer "
        "(with and without LRP2 where it was given): where the model's answer appears, and in which language.",
    ),
    (
        r"neurons_per_layer",
        "Language-specific neurons per layer (LAPE)",
        "How many neurons LAPE finds specific to each language at each layer.",
    ),
    (
        r"deactivation",
        "Switching off each language's LAPE neurons",
        "Increase of the language-modelling loss (nats per token) in each language (columns) when each "
        "language's neurons (rows) are switched off; a strong diagonal means the neurons are language-specific.",
    ),
    (
        r"(heatmap_)?attribution(_one_fact)?",
        "Attribution of one fact",
        "Integrated-gradients score of the top neurons of each layer for the right answer; the high cells are "
        "the candidate knowledge neurons.",
    ),
    (
        r"heatmap_shared_neurons_baseline",
        "Knowledge neurons shared with English, without LRP2",
        "Per layer and language, how many of a fact's knowledge neurons English also uses for the same fact "
        "(mean over facts).",
    ),
    (
        r"heatmap_shared_neurons_lrp2",
        "Knowledge neurons shared with English, with LRP2",
        "The same count with LRP2 applied to the language's queries; compare it with the figure without LRP2.",
    ),
    (
        r"heatmap_overlap_gain",
        "Change in shared neurons with LRP2",
        "Per layer and language, shared neurons with LRP2 minus without; positive cells are layers where LRP2 "
        "brings the language's knowledge neurons closer to English's.",
    ),
    (
        r"heatmap_relation_overlap",
        "Overlap with English: same relation vs other relations vs chance",
        "Per layer, the share of a relation's knowledge neurons that English also uses for the same relation, "
        "for the other relations, and for random sets of the same sizes (the paper's Table 2, layer by layer).",
    ),
    (
        r"overlap",
        "Knowledge neurons shared with English",
        "Neurons shared with English per language, without and with LRP2 (mean over facts or relations).",
    ),
    (
        r"control",
        "Shared neurons vs chance",
        "Observed overlap with English next to random neuron sets of the same sizes (the permutation control), "
        "and the share of facts above chance.",
    ),
    (
        r"similarity",
        "Similarity to English per layer",
        "How close each language's query representations are to English's at each layer: raw cosine, cosine "
        "after removing the mean over languages, and linear CKA, with and without LRP2.",
    ),
    (
        r"causal",
        "Suppressing and enhancing English's knowledge neurons",
        "Relative change of the right answer's probability when the knowledge neurons are suppressed or "
        "enhanced, next to random neurons of the same number.",
    ),
)
#: a figure of no known kind: its title is its file name
OTHER = ("{name}", "A figure this run made.")


@dataclass(frozen=True)
class Figure:
    """One figure of a gallery: its path relative to the folder, title and sentence."""

    path: PurePosixPath
    title: str
    text: str


def describe(path: PurePosixPath) -> tuple[int, str, str]:
    """The kind's rank in :data:`KINDS` (``len(KINDS)`` when unknown), title and sentence of a figure."""
    for rank, (pattern, title, text) in enumerate(KINDS):
        match = re.fullmatch(pattern, path.stem)
        if match:
            groups = {k: v for k, v in match.groupdict().items() if v is not None}
            return rank, title.format(**groups), text.format(**groups)
    return len(KINDS), OTHER[0].format(name=path.name), OTHER[1]


def gallery_figures(folder: str | Path, descriptions: Mapping[str, str] | None = None) -> list[Figure]:
    """Every PNG under ``folder`` (hidden files and folders left out), in reading order.

    ``descriptions``: a sentence to add to a figure's own, by its path relative to ``folder``
    (``"neurons/fr/similarity.png"``).
    """
    root = Path(folder)
    entries = []
    for file in root.rglob("*.png"):
        rel = PurePosixPath(file.relative_to(root).as_posix())
        if any(part.startswith(".") for part in rel.parts) or not file.is_file():
            continue
        rank, title, text = describe(rel)
        extra = (descriptions or {}).get(str(rel))
        if len(rel.parts) > 1:
            title = f"{title} ({rel.parent})"
        entries.append(((rel.parent.parts, rank, rel.name), Figure(rel, title, f"{text} {extra}" if extra else text)))
    return [figure for _, figure in sorted(entries, key=lambda e: e[0])]


def gallery_markdown(figures: list[Figure], heading: str = "Figures of this run") -> str:
    """The text of ``figures.md``: a heading, then one section per figure (title, image, sentence)."""
    lines = [f"# {heading}", "", "Each figure with what it shows; the image paths are relative to this file.", ""]
    for figure in figures:
        link = quote(str(figure.path))
        lines += [f"## {figure.title}", "", f"![{figure.title}]({link})", "", figure.text, ""]
    return "\n".join(lines)


def write_gallery(folder: str | Path, descriptions: Mapping[str, str] | None = None) -> Path | None:
    """Write ``folder/figures.md`` (atomically) listing the figures under ``folder``; None when there are none.

    Call it once a run has written its figures (``run.json`` still comes last).
    """
    figures = gallery_figures(folder, descriptions)
    if not figures:
        return None
    return write_text(Path(folder) / GALLERY, gallery_markdown(figures))
