"""Parallel-corpus loader: every layout, the source side of pair layouts, provenance records."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lrp2_interp.corpus import LAYOUTS, load_corpus
from lrp2_interp.errors import InputError

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "corpus" / "templates"


def _write(root: Path, rel: str, lines: list[str]) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(s + "\n" for s in lines), encoding="utf-8")
    return path


def test_flat_layout_limit_and_records(tmp_path):
    _write(tmp_path, "en.txt", ["one", "", "  two  ", "three"])
    path = _write(tmp_path, "fr.txt", ["un", "deux"])
    c = load_corpus(tmp_path, ["en", "fr"], limit=2, name="mini")
    assert c.layout == "flat" and c.languages == ("en", "fr")
    assert c.sentences["en"] == ("one", "two") and c.sentences["fr"] == ("un", "deux")
    rec = c.records()["fr"]
    assert rec == {
        "corpus": "mini",
        "layout": "flat",
        "split": "train",
        "file": "fr.txt",
        "file_bytes": path.stat().st_size,
        "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "n_lines": 2,
        "n_used": 2,
    }
    assert c.records()["en"]["n_lines"] == 3 and c.describe()["en"] == "mini: en.txt (2 of 3 lines)"


def test_pair_layout_of_the_shipped_sample_reads_english_from_the_first_pair():
    c = load_corpus(SAMPLE, ["en", "zh", "fr"])
    assert c.layout == "pair" and c.split == "train"
    assert c.files["zh"].name == "train.en-zh.zh" and c.files["en"].name == "train.en-zh.en"
    assert len(c.sentences["en"]) == len(c.sentences["zh"]) == len(c.sentences["fr"])  # aligned sides
    assert c.sentences["fr"][0] == "Pérou a pour capitale Lima ."
    dev = load_corpus(SAMPLE, ["en", "fr"], split="dev", source_pair="fr")
    assert dev.files["en"].name == "dev.en-fr.en" and len(dev.sentences["fr"]) < len(c.sentences["fr"])


def test_opus100_flores_and_custom_patterns(tmp_path):
    opus = tmp_path / "opus"
    _write(opus, "de-en/opus.de-en-train.de", ["Hallo"])  # alphabetical pair: de-en
    _write(opus, "de-en/opus.de-en-train.en", ["Hello"])
    c = load_corpus(opus, ["en", "de"])
    assert c.layout == "opus100" and c.sentences == {"en": ("Hello",), "de": ("Hallo",)}
    flores = tmp_path / "flores"
    _write(flores, "dev/eng_Latn.dev", ["Hello"])
    _write(flores, "dev/fra_Latn.dev", ["Bonjour"])
    c = load_corpus(flores, ["en", "fr"], split="dev", codes={"en": "eng_Latn", "fr": "fra_Latn"})
    assert c.layout == "flores" and c.sentences["fr"] == ("Bonjour",)
    custom = tmp_path / "custom"
    _write(custom, "news/fr.sents", ["Salut"])
    assert load_corpus(custom, ["fr"], layout="news/{lang}.sents").sentences["fr"] == ("Salut",)
    assert set(LAYOUTS) == {"flat", "pair", "opus100", "flores"}


def test_bad_corpus_input(tmp_path):
    _write(tmp_path, "en.txt", ["one"])
    with pytest.raises(InputError, match="no corpus files") as err:
        load_corpus(tmp_path, ["en", "fr"])
    assert err.value.file == str(tmp_path)
    with pytest.raises(InputError, match="not found"):
        load_corpus(tmp_path / "nope", ["en"])
    with pytest.raises(InputError, match="unknown layout"):
        load_corpus(tmp_path, ["en"], layout="weird")
    with pytest.raises(InputError, match="bad layout pattern"):
        load_corpus(tmp_path, ["en"], layout="{lang}.{oops}")
    (tmp_path / "fr.txt").write_bytes(b"ok\n\xff\n")
    with pytest.raises(InputError, match="UTF-8") as err:
        load_corpus(tmp_path, ["fr"])
    assert err.value.line == 2
    (tmp_path / "nl.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(InputError, match="empty"):
        load_corpus(tmp_path, ["nl"])


def test_vectors_record_the_corpus(bert_lm, tmp_path):
    from lrp2_interp.lrp2.vectors import LanguageVectors, compute_language_vectors, sentences_sha256

    c = load_corpus(SAMPLE, ["en", "fr"], split="dev", limit=5)
    vec = compute_language_vectors(bert_lm, c.sentences, corpus=c.describe(), corpus_meta=c.records(), progress=False)
    back = LanguageVectors.load(vec.save(tmp_path / "v"))
    meta = dict(back.corpus_meta["fr"])
    assert meta["corpus"] == "templates" and meta["file"] == "dev.en-fr.fr" and meta["n_used"] == 5
    assert meta["file_sha256"] == hashlib.sha256((SAMPLE / "dev.en-fr.fr").read_bytes()).hexdigest()
    assert meta["sha256"] == sentences_sha256(c.sentences["fr"]) and meta["n_sentences"] == 5
    assert back.corpus["fr"].startswith("templates: dev.en-fr.fr (5 of ")
