"""figures.md: every PNG a run made, in reading order, with relative links, titles and what each shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lrp2_interp.cli.main import REPO_DATA, main
from lrp2_interp.gallery import GALLERY, gallery_figures, write_gallery

PNG = b"\x89PNG\r\n\x1a\n"


def _links(text: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)


def _touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(PNG)


def test_the_gallery_lists_exactly_the_pngs_present_in_reading_order(tmp_path):
    _touch(
        tmp_path,
        "similarity.png",
        "heatmap_overlap_gain.png",
        "heatmap_shared_neurons_lrp2.png",
        "heatmap_shared_neurons_baseline.png",
        "zz_unknown.png",
        "neurons/ru/similarity.png",
        "neurons/fr/heatmap_relation_overlap.png",
        "neurons/fr/heatmap_attribution_one_fact.png",
        "lrp2/sweep_ru_gain.png",
        "lrp2/sweep_fr_gain.png",
    )
    (tmp_path / ".similarity.png.abc.tmp.png").write_bytes(PNG)  # a write under way: not a figure
    (tmp_path / "similarity.csv").write_text("x\n1\n")
    (tmp_path / "summary.md").write_text("# summary\n")
    path = write_gallery(tmp_path)
    assert path == tmp_path / GALLERY
    text = path.read_text(encoding="utf-8")
    assert _links(text) == [
        # the folder's own figures by kind (neurons shared without, then with LRP2, the change, similarity,
        # then figures of no known kind), then each subfolder's by name
        "heatmap_shared_neurons_baseline.png",
        "heatmap_shared_neurons_lrp2.png",
        "heatmap_overlap_gain.png",
        "similarity.png",
        "zz_unknown.png",
        "lrp2/sweep_fr_gain.png",
        "lrp2/sweep_ru_gain.png",
        "neurons/fr/heatmap_attribution_one_fact.png",
        "neurons/fr/heatmap_relation_overlap.png",
        "neurons/ru/similarity.png",
    ]
    assert all((tmp_path / link).is_file() for link in _links(text))  # relative to the folder of figures.md
    sections = text.split("\n## ")[1:]
    assert len(sections) == 10  # one section per figure
    assert sections[0].startswith("Knowledge neurons shared with English, without LRP2\n")
    assert sections[5].startswith("LRP2 gain over the baseline for every (m, n), fr (lrp2)\n")
    assert "fr's language component" in sections[5]  # the kind's sentence, filled in
    assert sections[4].startswith("zz_unknown.png\n") and "A figure this run made." in sections[4]


def test_the_gallery_is_the_same_bytes_when_written_again_and_adds_given_sentences(tmp_path):
    _touch(tmp_path, "similarity.png", "neurons/fr/causal.png")
    first = write_gallery(tmp_path).read_bytes()
    assert write_gallery(tmp_path).read_bytes() == first  # a resumed run writes the same file
    with_numbers = write_gallery(tmp_path, {"neurons/fr/causal.png": "Suppression: -12 %."}).read_text()
    assert "random neurons of the same number. Suppression: -12 %." in with_numbers
    assert [f.path.as_posix() for f in gallery_figures(tmp_path)] == ["similarity.png", "neurons/fr/causal.png"]


def test_a_folder_without_figures_gets_no_gallery(tmp_path):
    (tmp_path / "summary.csv").write_text("x\n1\n")
    assert write_gallery(tmp_path) is None
    assert not (tmp_path / GALLERY).exists()


def test_a_cli_run_on_a_tiny_model_writes_its_gallery_and_a_resumed_run_the_same_bytes(repo_model_dir, tmp_path):
    out = tmp_path / "attr"
    argv = [
        "attribute",
        "--model",
        str(repo_model_dir("bert")),
        "--prompt",
        "Paris is the capital of [MASK] .",
        "--target",
        "France",
        "--steps",
        "2",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    text = (out / GALLERY).read_text(encoding="utf-8")
    assert _links(text) == ["attribution.png"] == [p.name for p in out.glob("*.png")]
    assert "## Attribution of one fact" in text
    assert main(argv) == 0  # the same run again: resumed, the same gallery
    assert (out / GALLERY).read_text(encoding="utf-8") == text


#: figure-writing commands besides ``attribute``: their arguments besides --model/--facts/--out
COMMANDS = {
    "sweep": ["--language", "fr", "--layers", "0", "1"],
    "similarity": ["--languages", "fr", "--lrp2", "fr=0,1"],
    "lens": ["--languages", "fr"],
    "lape": ["--languages", "en", "fr", "--kn-facts", "0"],
    "compare": [
        "--languages",
        "fr",
        "--methods",
        "mean_steering",
        "--n-boot",
        "20",
        "--n-controls",
        "1",
        "--alphas",
        "1",
    ],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_figure_writing_command_lists_exactly_its_pngs(command, repo_model_dir, tmp_path):
    out = tmp_path / command
    facts = ["--facts", str(REPO_DATA), "--relations", "P36", "--max-facts", "4"]
    model = ["--model", str(repo_model_dir("bert"))]
    assert main([command, *model, *facts, *COMMANDS[command], "--out", str(out)]) == 0
    pngs = [p.relative_to(out).as_posix() for p in out.rglob("*.png")]
    links = _links((out / GALLERY).read_text(encoding="utf-8"))
    assert pngs and sorted(links) == sorted(pngs)
    assert all(not Path(link).is_absolute() for link in links)
