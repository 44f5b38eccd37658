"""The offline model organism: corpus rules, determinism, a micro training run, the default."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.facts import load_facts
from lrp2_interp.organism.organism_config import OrganismConfig, config_hash, with_overrides
from lrp2_interp.organism.train import load_organism, organism_facts, read_organism_info, train_organism
from lrp2_interp.organism.training_corpus import BridgeConfig, build_corpus, leaked_lines, split_facts

COUNTRIES = [  # (en subject, fr subject, zh subject, en capital, fr capital, zh capital)
    ("France", "France", "法国", "Paris", "Paris", "巴黎"),
    ("Japan", "Japon", "日本", "Tokyo", "Tokyo", "东京"),
    ("Germany", "Allemagne", "德国", "Berlin", "Berlin", "柏林"),
    ("Italy", "Italie", "意大利", "Rome", "Rome", "罗马"),
    ("Spain", "Espagne", "西班牙", "Madrid", "Madrid", "马德里"),
    ("Russia", "Russie", "俄罗斯", "Moscow", "Moscou", "莫斯科"),
    ("Egypt", "Egypte", "埃及", "Cairo", "Le Caire", "开罗"),
    ("Greece", "Grece", "希腊", "Athens", "Athenes", "雅典"),
    ("Peru", "Perou", "秘鲁", "Lima", "Lima", "利马"),
    ("Kenya", "Kenya", "肯尼亚", "Nairobi", "Nairobi", "内罗毕"),
]
LANGUAGES = {
    "France": ("French", "francais", "法语"),
    "Japan": ("Japanese", "japonais", "日语"),
    "Germany": ("German", "allemand", "德语"),
    "Italy": ("Italian", "italien", "意大利语"),
    "Spain": ("Spanish", "espagnol", "西班牙语"),
    "Russia": ("Russian", "russe", "俄语"),
    "Egypt": ("Arabic", "arabe", "阿拉伯语"),
    "Greece": ("Greek", "grec", "希腊语"),
    "Peru": ("Spanish", "espagnol", "西班牙语"),
    "Kenya": ("Swahili", "swahili", "斯瓦希里语"),
}
TEMPLATES = {
    "en": {"P36": "The capital of [X] is [Y] .", "P37": "The official language of [X] is [Y] ."},
    "fr": {"P36": "La capitale de [X] est [Y] .", "P37": "La langue officielle de [X] est le [Y] ."},
    "zh": {"P36": "[X]的首都是[Y]。", "P37": "[X]的官方语言是[Y]。"},
}


def _write_facts(root: Path) -> Path:
    col = {"en": 0, "fr": 1, "zh": 2}
    for lang, tpls in TEMPLATES.items():
        d = root / lang
        d.mkdir(parents=True)
        (d / "templates.jsonl").write_text(
            "".join(json.dumps({"relation": r, "template": t}, ensure_ascii=False) + "\n" for r, t in tpls.items()),
            encoding="utf-8",
        )
        p36 = [{"lineid": i, "sub_label": c[col[lang]], "obj_label": c[3 + col[lang]]} for i, c in enumerate(COUNTRIES)]
        p37 = [
            {"lineid": 100 + i, "sub_label": c[col[lang]], "obj_label": LANGUAGES[c[0]][col[lang]]}
            for i, c in enumerate(COUNTRIES)
        ]
        for rel, rows in (("P36", p36), ("P37", p37)):
            (d / f"{rel}.jsonl").write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
            )
    return root


@pytest.fixture(scope="module")
def facts_root(tmp_path_factory) -> Path:
    return _write_facts(tmp_path_factory.mktemp("organism_facts"))


@pytest.fixture(scope="module")
def facts(facts_root):
    return load_facts(facts_root)


def _micro(facts_root: Path, **kw) -> OrganismConfig:
    base = OrganismConfig(
        facts_root=str(facts_root),
        languages=("en", "fr", "zh"),
        n_layers=2,
        d_model=32,
        n_heads=2,
        d_mlp=64,
        max_positions=64,
        vocab_size=300,
        epochs=2,
        batch_size=16,
        seen_fraction=0.5,
        seed=0,
    )
    return replace(base, **kw)


# ---------------------------------------------------------------- corpus rules
def test_split_is_deterministic_and_shared_across_languages(facts):
    a = split_facts(facts, ["en", "fr", "zh"], 0.5, seed=3)
    b = split_facts(facts, ["en", "fr", "zh"], 0.5, seed=3)
    c = split_facts(facts, ["en", "fr", "zh"], 0.5, seed=4)
    assert a == b
    assert a != c
    assert "en" not in a
    assert a["fr"].held_out == a["zh"].held_out  # the same facts are held out everywhere
    for split in a.values():
        assert not set(split.seen) & set(split.held_out)
        assert len(split.seen) == 10 and len(split.held_out) == 10  # half of each relation
        assert set(split.seen) | set(split.held_out) == facts.lineids("en")


@pytest.mark.parametrize("fraction,n_seen", [(0.0, 0), (0.3, 6), (1.0, 20)])
def test_seen_fraction_per_relation(facts, fraction, n_seen):
    split = split_facts(facts, ["en", "fr"], fraction, seed=0)["fr"]
    assert len(split.seen) == n_seen
    with pytest.raises(InputError, match="seen_fraction"):
        split_facts(facts, ["en", "fr"], 1.5, seed=0)


def test_english_sees_every_fact_and_others_only_seen_ones(facts):
    corpus = build_corpus(facts, ["en", "fr", "zh"], 0.5, seed=0)
    en_lines = [ln for ln in corpus.lines if ln.kind == "fact" and ln.languages == ("en",)]
    assert {ln.lineid for ln in en_lines} == facts.lineids("en")
    assert "The capital of Japan is Tokyo ." in corpus.texts
    for lang in ("fr", "zh"):
        ids = {ln.lineid for ln in corpus.lines if ln.kind == "fact" and ln.languages == (lang,)}
        assert ids == set(corpus.splits[lang].seen)


@pytest.mark.parametrize(
    "bridge",
    [
        BridgeConfig(),
        BridgeConfig(parallel=True, dictionary_repeats=2),
        BridgeConfig(dictionary=False, code_switch=False),
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_held_out_facts_never_appear_in_their_language(facts, bridge, seed):
    corpus = build_corpus(facts, ["en", "fr", "zh"], 0.5, seed=seed, bridge=bridge)
    assert leaked_lines(corpus, facts) == []
    en = {(f.relation, f.lineid): f for f in facts.iter_facts("en")}
    for lang in ("fr", "zh"):
        held = set(corpus.splits[lang].held_out)
        for fact in facts.iter_facts(lang):
            if fact.lineid not in held:
                continue
            twin = en[(fact.relation, fact.lineid)]
            for ln in corpus.lines:
                if lang not in ln.languages:
                    continue
                assert ln.lineid != fact.lineid
                if ln.kind == "dictionary":  # a name pair: one entity, no fact
                    assert ln.lineid is None and ln.text.count(" = ") == 1
                    continue
                # the subject (either name) never co-occurs with the object (either name) in a line of ``lang``
                rest = ln.text
                for obj in (fact.obj_label, twin.obj_label):
                    rest = rest.replace(obj, "\0")
                has_obj = "\0" in rest
                has_sub = fact.sub_label in rest or twin.sub_label in rest
                assert not (has_sub and has_obj), ln.text


def test_leak_detector_catches_a_leak(facts):
    corpus = build_corpus(facts, ["en", "fr", "zh"], 0.5, seed=0)
    held = corpus.splits["fr"].held_out[0]
    fact = next(f for f in facts.iter_facts("fr") if f.lineid == held)
    bad = type(corpus.lines[0])(f"The capital of {fact.sub_label} is {fact.obj_label} .", "code_switch", ("en", "fr"))
    leaky = replace(corpus, lines=corpus.lines + (bad,))
    assert leaked_lines(leaky, facts)


def test_bridging_lines_follow_the_config(facts):
    counts = build_corpus(facts, ["en", "fr", "zh"], 0.5, 0, BridgeConfig(parallel=True)).counts()
    assert counts["fact"] == 20 + 10 + 10
    assert counts["code_switch"] == 2 * (10 + 10)
    assert counts["parallel"] == 10 + 10
    assert counts["dictionary"] > 0
    corpus = build_corpus(facts, ["en", "fr", "zh"], 0.5, 0, BridgeConfig(dictionary=False, code_switch=False))
    assert corpus.counts() == {"fact": 40}
    dictionary = build_corpus(facts, ["en", "fr"], 0.5, 0).texts
    assert "Japon = Japan" in dictionary and "Japan = Japon" in dictionary
    assert "France = France" not in dictionary  # identical names need no bridge


def test_corpus_is_deterministic(facts):
    a = build_corpus(facts, ["en", "fr", "zh"], 0.5, seed=7, bridge=BridgeConfig(parallel=True))
    b = build_corpus(facts, ["en", "fr", "zh"], 0.5, seed=7, bridge=BridgeConfig(parallel=True))
    assert a.digest() == b.digest() and a.splits == b.splits


def test_corpus_needs_english(facts):
    with pytest.raises(InputError, match="English"):
        build_corpus(facts, ["fr", "zh"], 0.5, seed=0)


# ---------------------------------------------------------------- training
@pytest.mark.parametrize("kind", ["causal", "masked"])
def test_micro_organism_trains_caches_and_loads(facts_root, tmp_path, kind):
    torch.set_num_threads(2)
    cfg = _micro(facts_root, kind=kind)
    path = train_organism(cfg, tmp_path, progress=False)
    assert path.name == config_hash(cfg) and path.parent == tmp_path
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left behind
    info = read_organism_info(path)
    assert info.config == cfg
    hf = json.loads((path / "config.json").read_text())  # dropout is the organism's (0.0), not the family default
    drop = (
        ("hidden_dropout_prob", "attention_probs_dropout_prob") if kind == "masked" else ("resid_pdrop", "attn_pdrop")
    )
    assert [hf[k] for k in drop] == [cfg.dropout] * len(drop) and cfg.dropout == 0.0
    assert info.final_loss == info.final_loss and info.n_steps == 2 * -(-info.n_lines // 16)
    assert set(info.splits) == {"fr", "zh"}
    stamp = (path / "organism.json").stat().st_mtime_ns
    assert train_organism(cfg, tmp_path, progress=False) == path  # reused, not retrained
    assert (path / "organism.json").stat().st_mtime_ns == stamp
    lm, info2 = load_organism(cfg, tmp_path, progress=False)
    assert lm.kind == kind and lm.n_layers == 2 and lm.d_model == 32
    assert info2.splits == info.splits
    split = organism_facts(info2)
    assert split["fr"].held_out.lineids("fr") == set(info.splits["fr"].held_out)
    assert split["fr"].held_out.lineids("en") == set(info.splits["fr"].held_out)
    assert split["zh"].seen.lineids("zh") == set(info.splits["zh"].seen)
    from lrp2_interp.probing.probe import ProbeConfig, probe

    result = probe(lm, split["fr"].held_out, "fr", ProbeConfig())
    assert len(result.table) == len(info.splits["fr"].held_out)


def test_training_is_deterministic_with_a_seed(facts_root, tmp_path):
    torch.set_num_threads(1)
    cfg = _micro(facts_root, epochs=1)
    a = train_organism(cfg, tmp_path / "a", progress=False)
    b = train_organism(cfg, tmp_path / "b", progress=False)
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert read_organism_info(a).final_loss == read_organism_info(b).final_loss


def test_config_hash_tracks_config_and_data(facts_root, tmp_path):
    cfg = _micro(facts_root)
    assert config_hash(cfg) == config_hash(_micro(facts_root))
    assert config_hash(cfg) != config_hash(with_overrides(cfg, seed=1))
    assert config_hash(cfg) != config_hash(with_overrides(cfg, bridge_parallel=True))
    other = _write_facts(tmp_path / "facts")
    (other / "en" / "P36.jsonl").write_text(
        (other / "en" / "P36.jsonl").read_text(encoding="utf-8").replace("Paris", "Lutetia"), encoding="utf-8"
    )
    assert config_hash(cfg) != config_hash(replace(cfg, facts_root=str(other)))


def test_cache_key_is_stable(facts):
    """A trained organism is found again only if the key of the same config and data never changes: these keys
    were computed before the organism was split into config.py / train.py (commit 08db9a6)."""
    pinned = "/pinned/facts"  # the key includes the facts folder; the data digest comes from ``facts``
    assert config_hash(_micro(Path(pinned)), facts) == "52968a7aca0b5c02"
    assert config_hash(OrganismConfig(facts_root=pinned), facts) == "1a77ef5b06019dc5"
    assert config_hash(OrganismConfig(facts_root=pinned, kind="masked"), facts) == "5121de1a9e492274"


def test_config_round_trips_through_json(facts_root):
    cfg = with_overrides(_micro(facts_root, relations=("P36",)), bridge_parallel=True)
    assert OrganismConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
