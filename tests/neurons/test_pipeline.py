"""The knowledge-neuron pipeline keeps every row on its own fact and never mixes runs (issue 11)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from lrp2_interp.attribution.attribute import AttributionConfig
from lrp2_interp.errors import InputError
from lrp2_interp.facts import load_facts
from lrp2_interp.lrp2.vectors import compute_language_vectors
from lrp2_interp.neurons.pipeline import KnowledgeConfig, attribute_facts, attribution_queries, run_knowledge_analysis
from lrp2_interp.prompts import prompt_corpus
from lrp2_interp.store import ShardStore

pytestmark = pytest.mark.usefixtures("single_thread")


def _reversed_copy(src: Path, dst: Path, language: str) -> Path:
    """The fixture facts with every fact file of ``language`` in reverse line order."""
    shutil.copytree(src, dst)
    for path in (dst / language).glob("P*.jsonl"):
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        path.write_text("\n".join(reversed(lines)) + "\n", encoding="utf-8")
    return dst


@pytest.fixture(scope="module")
def setting(bert_lm, fixture_facts_root):
    facts = load_facts(fixture_facts_root, ["en", "fr"], ["P36"]).parallel()
    vectors = compute_language_vectors(bert_lm, {lg: prompt_corpus(facts, lg, bert_lm) for lg in ("en", "fr")})
    return facts, vectors


def _config(**kw) -> KnowledgeConfig:
    base = dict(
        languages=("fr",),
        lrp2={"fr": (0, 2)},
        attribution=AttributionConfig(n_steps=4),
        n_perm=20,
        n_boot=20,
        chunk=3,
        causal=None,
    )
    return KnowledgeConfig(**{**base, **kw})


def test_rows_follow_the_fact_keys_not_each_files_order(bert_lm, setting, fixture_facts_root, tmp_path):
    """With fr's file reversed, row i of fr must still be the fact keys[i] (was: another fact's scores)."""
    facts, vectors = setting
    rev = load_facts(_reversed_copy(fixture_facts_root, tmp_path / "rev", "fr"), ["en", "fr"], ["P36"]).parallel()
    assert [f.lineid for f in rev.iter_facts("fr")] != [f.lineid for f in rev.iter_facts("en")]
    a_scores, a_keys, _ = attribute_facts(bert_lm, facts, vectors, _config(), ShardStore(tmp_path / "a"))
    b_scores, b_keys, _ = attribute_facts(bert_lm, rev, vectors, _config(), ShardStore(tmp_path / "b"))
    assert a_keys == b_keys
    for cond in ("baseline", "lrp2"):
        torch.testing.assert_close(b_scores[("fr", cond)], a_scores[("fr", cond)])
    # and each labelled row is the attribution of that very fact's prompt
    by_key = {(f.relation, f.lineid): f for f in rev.iter_facts("fr")}
    queries = attribution_queries(bert_lm, rev, "fr", b_keys)
    for (prompt, _), key in zip(queries, b_keys):
        assert by_key[key].sub_label in prompt


def test_unsorted_layers_label_the_right_layer(bert_lm, setting, tmp_path):
    """layers=(2, 0): scores are stored in sorted order, so their labels must be sorted too."""
    facts, vectors = setting
    cfg = _config(attribution=AttributionConfig(n_steps=4, layers=(2, 0)))
    res = run_knowledge_analysis(bert_lm, facts, vectors, cfg, tmp_path / "kn")
    ref = run_knowledge_analysis(
        bert_lm,
        facts,
        vectors,
        _config(attribution=AttributionConfig(n_steps=4, layers=(0, 2))),
        tmp_path / "kn_sorted",
    )
    assert res.fact_sets.keys() == ref.fact_sets.keys()
    for key, ns in res.fact_sets.items():
        assert ns.sites == ref.fact_sets[key].sites, key


def test_neurons_rerun_with_another_pair_is_refused(bert_lm, setting, tmp_path):
    """Shard keys name only language/condition/chunk: another --lrp2 pair must not reuse them."""
    facts, vectors = setting
    out = tmp_path / "kn"
    run_knowledge_analysis(bert_lm, facts, vectors, _config(), out)
    before = sorted(p.name for p in (out / "shards").iterdir())
    with pytest.raises(InputError, match=r"another run.*lrp2"):
        run_knowledge_analysis(bert_lm, facts, vectors, _config(lrp2={"fr": (1, 2)}), out)
    assert sorted(p.name for p in (out / "shards").iterdir()) == before  # nothing recomputed or mixed
    run_knowledge_analysis(bert_lm, facts, vectors, _config(), out)  # the same settings resume
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["lrp2"] == {"fr": [0, 2]} and manifest["facts"]["relations"] == ["P36"]


def test_lrp2_pair_for_a_language_not_in_the_run_is_refused(bert_lm, setting, tmp_path):
    facts, vectors = setting
    with pytest.raises(InputError, match="zz"):
        run_knowledge_analysis(bert_lm, facts, vectors, _config(lrp2={"fr": (0, 2), "zz": (0, 2)}), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_unknown_only_object_is_refused(bert_lm, fixture_facts_root, tmp_path):
    """An object the tokenizer maps to [UNK] only was attributed silently."""
    root = tmp_path / "facts"
    shutil.copytree(fixture_facts_root, root)
    path = root / "fr" / "P36.jsonl"
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    rows[0]["obj_label"] = "\u0a2a\u0a70\u0a1c\u0a3e\u0a2c"  # Gurmukhi: not in the tiny tokenizer's vocabulary
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    facts = load_facts(root, ["en", "fr"], ["P36"]).parallel()
    with pytest.raises(InputError, match="unknown token") as err:
        attribution_queries(bert_lm, facts, "fr")
    assert err.value.file.endswith("fr/P36.jsonl") and err.value.field == "obj_label"


def test_typed_results_carry_their_inputs_and_hold_what_the_files_hold(bert_lm, setting, tmp_path):
    import pandas as pd

    from lrp2_interp.neurons.causal import CausalConfig

    facts, vectors = setting
    out = tmp_path / "kn"
    res = run_knowledge_analysis(bert_lm, facts, vectors, _config(causal=CausalConfig(n_random=1)), out)
    assert res.by_layer.n_layers == bert_lm.n_layers and res.overlap_fact.n_layers is None
    assert res.overlap_fact.source == res.control.source == "en" and res.overlap_fact.languages == ("fr",)
    assert (res.control.n_perm, res.control.d_mlp, res.overlap_summary.n_boot) == (20, bert_lm.d_mlp, 20)
    assert res.similarity.languages == ("fr",) and (res.similarity.lrp2["fr"].m, res.similarity.lrp2["fr"].n) == (0, 2)
    assert [c.language for c in res.causal] == ["fr"] and res.causal[0].lrp2 is not None
    pairs = [
        ("overlap_fact.csv", res.overlap_fact.table),
        ("overlap_summary.csv", res.overlap_summary.table),
        ("permutation_control.csv", res.control.table),
        ("permutation_summary.csv", res.control.summary()),
        ("similarity.csv", res.similarity.table),
        ("causal.csv", res.causal[0].table),
        ("causal_summary.csv", res.causal[0].summary()),
    ]
    for name, table in pairs:
        disk = pd.read_csv(out / name)
        assert list(disk.columns) == list(table.columns), name
        numeric = table.select_dtypes("number").columns
        pd.testing.assert_frame_equal(
            disk[numeric].astype(float), table[numeric].astype(float), check_exact=False, rtol=1e-12, obj=name
        )
    by_layer = pd.read_csv(out / "overlap_by_layer.csv")
    assert list(by_layer.columns) == [*res.by_layer.table.columns, "paper_layer"]
    assert (by_layer["n_shared"] == res.by_layer.table["n_shared"]).all()


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_analysis_computes_without_writing_and_its_save_writes_the_runners_files(
    bert_lm, setting, tmp_path, monkeypatch
):
    """knowledge_analysis writes nothing (its units in memory); KnowledgeResult.save writes the tables and
    figures run_knowledge_analysis leaves, with the same bytes for every table."""
    from lrp2_interp.neurons.pipeline import knowledge_analysis

    facts, vectors = setting
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    res = knowledge_analysis(bert_lm, facts, vectors, _config(), progress=False)
    assert res is not None and not any(tmp_path.rglob("*.*")), "the analysis wrote a file"
    saved = _files(res.save(tmp_path / "saved"))
    run_knowledge_analysis(bert_lm, facts, vectors, _config(), tmp_path / "run", progress=False)
    ran = _files(tmp_path / "run")
    tables = {k for k in ran if k.endswith((".csv", ".md"))}
    assert {k for k in ran if not k.startswith(("shards", "manifest"))} == set(saved)
    assert tables and all(saved[k] == ran[k] for k in tables)
    torch.testing.assert_close(res.scores[("fr", "lrp2")], ran_scores(tmp_path / "run", bert_lm, facts, vectors))


def ran_scores(out: Path, lm, facts, vectors) -> torch.Tensor:
    """The resumed analysis's scores of (fr, lrp2) read back through the folder's stored units."""
    res = run_knowledge_analysis(lm, facts, vectors, _config(), out, progress=False)
    assert res is not None
    return res.scores[("fr", "lrp2")]
