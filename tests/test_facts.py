"""mLAMA-layout fact sets: loading, parallel facts, splits, candidates, every bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lrp2_interp.errors import InputError
from lrp2_interp.fact_files import Fact, validate_template
from lrp2_interp.facts import available_languages, load_facts

P36_EN = {
    101: "Paris",
    102: "Berlin",
    103: "Madrid",
    104: "Rome",
    105: "Tokyo",
    106: "Buenos Aires",
    107: "New Delhi",
    108: "Cairo",
}


# ------------------------------------------------------------------ loading the fixture
def test_fixture_loads_with_expected_shape(fixture_facts, fixture_facts_root):
    fs = fixture_facts
    assert fs.root == fixture_facts_root
    assert fs.languages == ("en", "fr", "ru")  # sorted, from the folders with a templates.jsonl
    assert fs.relations == ("P30", "P36", "P37")
    assert {f.lineid: f.obj_label for f in fs.facts_of("en", "P36")} == P36_EN
    assert [len(fs.facts_of(lang, "P36")) for lang in fs.languages] == [8, 7, 7]
    assert fs.n_facts("en") == 8 + 7 + 6 and fs.n_facts("fr") == 7 + 7 + 6 and fs.n_facts("ru") == 7 + 7 + 6
    assert fs.template("fr", "P36").template == "La capitale de [X] est [Y] ."
    assert fs.template("ru", "P37").label == "официальный язык"
    assert available_languages(fixture_facts_root) == ["en", "fr", "ru"]


def test_fact_fields_and_aliases(fixture_facts):
    by_id = {f.lineid: f for f in fixture_facts.facts_of("en", "P36")}
    india = by_id[107]
    assert (india.language, india.relation, india.sub_label, india.sub_uri, india.obj_uri) == (
        "en",
        "P36",
        "India",
        "Q668",
        "Q987",
    )
    assert india.obj_aliases == ("Delhi",)
    assert india.is_correct("New Delhi") and india.is_correct("Delhi") and not india.is_correct("Mumbai")
    assert by_id[102].obj_aliases == ()  # empty list
    assert by_id[103].obj_aliases == ()  # absent
    # a blank line inside en/P37.jsonl is skipped
    assert [f.lineid for f in fixture_facts.facts_of("en", "P37")] == list(range(201, 208))


def test_subset_of_languages_and_relations(fixture_facts_root):
    fs = load_facts(fixture_facts_root, ["ru", "en"], ["P37"])
    assert fs.languages == ("ru", "en") and fs.relations == ("P37",)
    assert fs.facts_of("en", "P36") == ()
    assert fs.n_facts("ru") == 7


def test_max_facts_per_relation_is_parallel_and_seeded(fixture_facts_root, fixture_facts):
    a = load_facts(fixture_facts_root, max_facts_per_relation=2, seed=3)
    b = load_facts(fixture_facts_root, max_facts_per_relation=2, seed=3)
    for rel in a.relations:
        ids = {lang: {f.lineid for f in a.facts_of(lang, rel)} for lang in a.languages}
        assert len(ids["en"]) == 2 and all(v <= ids["en"] | {108} for v in ids.values())
        assert ids == {lang: {f.lineid for f in b.facts_of(lang, rel)} for lang in b.languages}
        # candidate pools still use every fact
        assert a.candidates("en", rel) == fixture_facts.candidates("en", rel)
    draws = {
        frozenset(load_facts(fixture_facts_root, max_facts_per_relation=2, seed=s).lineids("en")) for s in range(6)
    }
    assert len(draws) > 1, "the seed must matter"


# ------------------------------------------------------------------ parallel / split / restrict
def test_parallel(fixture_facts):
    par = fixture_facts.parallel()
    assert {f.lineid for f in par.facts_of("en", "P36")} == set(range(101, 107))
    for lang in par.languages:
        assert par.lineids(lang) == par.lineids("en")
    assert par.n_facts("en") == 6 + 7 + 6
    en_fr = fixture_facts.parallel(["en", "fr"])
    assert {f.lineid for f in en_fr.facts_of("en", "P36")} == set(range(101, 108))
    assert {f.lineid for f in en_fr.facts_of("ru", "P36")} == set(range(101, 107))  # ru lacks 107
    en_ru = fixture_facts.parallel(["en", "ru"])
    assert {f.lineid for f in en_ru.facts_of("en", "P36")} == set(range(101, 107)) | {108}


def test_check_languages_names_the_missing_ones_the_folder_and_the_field(fixture_facts):
    fixture_facts.check_languages(["en", "fr"])  # present: no error
    with pytest.raises(InputError, match=r"language 'zz' is not in the fact set \(en, fr, ru\)") as one:
        fixture_facts.check_languages(["en", "zz"])
    assert one.value.file == str(fixture_facts.root) and one.value.field == "language"
    with pytest.raises(InputError, match="languages zz, yy are not in the fact set") as two:
        fixture_facts.check_languages(["zz", "yy"], field="languages")
    assert two.value.field == "languages"
    with pytest.raises(InputError, match="language 'zz'"):
        fixture_facts.parallel(["en", "zz"])


def test_split_partitions_line_ids(fixture_facts):
    all_ids = set().union(*(fixture_facts.lineids(lang) for lang in fixture_facts.languages))
    first, rest = fixture_facts.split(0.25, seed=1)
    a = set().union(*(first.lineids(lang) for lang in first.languages))
    b = set().union(*(rest.lineids(lang) for lang in rest.languages))
    assert a | b == all_ids and not a & b
    assert len(a) == round(0.25 * len(all_ids))
    for lang in fixture_facts.languages:  # a fact is on the same side in every language
        assert first.lineids(lang) == fixture_facts.lineids(lang) & a
    again, _ = fixture_facts.split(0.25, seed=1)
    assert all(again.lineids(lang) == first.lineids(lang) for lang in fixture_facts.languages)
    others = {frozenset(fixture_facts.split(0.25, seed=s)[0].lineids("en")) for s in range(5)}
    assert len(others) > 1
    assert first.candidates("en", "P36") == fixture_facts.candidates("en", "P36")


def test_restrict_relations(fixture_facts):
    only = fixture_facts.restrict_relations(["P36", "P99"])
    assert only.relations == ("P36",)
    assert only.n_facts("en") == 8


# ------------------------------------------------------------------ candidates
def test_candidates_are_deduplicated_sorted_object_labels(fixture_facts):
    assert fixture_facts.candidates("en", "P30") == ("Africa", "Asia", "Europe", "Oceania", "South America")
    assert fixture_facts.candidates("fr", "P30") == ("Afrique", "Amérique du Sud", "Asie", "Europe", "Océanie")
    assert fixture_facts.candidates("en", "P36") == tuple(sorted(P36_EN.values()))
    assert "Cairo" not in fixture_facts.candidates("fr", "P36")  # fr has no lineid 108
    assert len(fixture_facts.candidates("ru", "P36")) == 7


def test_validate_template():
    assert validate_template("[X] is in [Y] .") == "[X] is in [Y] ."
    for bad in ("[X] is in [X] [Y] .", "[X] is in .", "is in [Y] .", "[Y] [Y] [X]"):
        with pytest.raises(InputError) as err:
            validate_template(bad, file="t.jsonl", line=7)
        assert (err.value.file, err.value.line, err.value.field) == ("t.jsonl", 7, "template")


# ------------------------------------------------------------------ bad input
@pytest.fixture()
def facts_copy(tmp_path, fixture_facts_root) -> Path:
    root = tmp_path / "facts"
    shutil.copytree(fixture_facts_root, root)
    return root


def _rewrite_line(path: Path, lineno: int, text: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _edit_field(path: Path, lineno: int, **changes) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    obj = json.loads(lines[lineno - 1])
    for k, v in changes.items():
        if v is _DROP:
            obj.pop(k)
        else:
            obj[k] = v
    _rewrite_line(path, lineno, json.dumps(obj, ensure_ascii=False))


_DROP = object()


def _expect(root: Path, where: str | None, line: int | None, field: str | None, *, words=(), **load_kw):
    """load_facts fails with an InputError naming exactly this file, line and field (also in the message)."""
    with pytest.raises(InputError) as err:
        load_facts(root, **load_kw)
    e = err.value
    msg = str(e)
    expected_file = root / where if where else root
    assert e.file == str(expected_file)
    assert e.line == line and e.field == field
    assert str(expected_file) in msg
    if line is not None:
        assert f"{expected_file}:{line}" in msg
    if field is not None:
        assert f"field '{field}'" in msg
    for w in words:
        assert w in msg
    return e


def test_malformed_jsonl_names_the_line(facts_copy):
    _rewrite_line(facts_copy / "fr" / "P36.jsonl", 3, '{"lineid": 103, "sub_label": "Espagne", "obj_label": ')
    _expect(facts_copy, "fr/P36.jsonl", 3, None, words=("malformed JSON",))


def test_malformed_line_counts_blank_lines(facts_copy):
    # en/P37.jsonl has a blank line 4: line numbers are physical lines
    _rewrite_line(facts_copy / "en" / "P37.jsonl", 6, "{not json}")
    _expect(facts_copy, "en/P37.jsonl", 6, None, words=("malformed JSON",))


def test_non_object_json_line(facts_copy):
    _rewrite_line(facts_copy / "ru" / "P30.jsonl", 2, "[1, 2, 3]")
    _expect(facts_copy, "ru/P30.jsonl", 2, None, words=("JSON object",))


def test_malformed_templates_file(facts_copy):
    _rewrite_line(facts_copy / "fr" / "templates.jsonl", 2, '{"relation": "P36", "template": "La capitale')
    _expect(facts_copy, "fr/templates.jsonl", 2, None)


@pytest.mark.parametrize(
    "template, slot",
    [("La capitale de France est [Y] .", "[X]"), ("La capitale de [X] est Paris .", "[Y]"), ("[X] [X] [Y]", "[X]")],
)
def test_template_without_a_slot(facts_copy, template, slot):
    _edit_field(facts_copy / "fr" / "templates.jsonl", 2, template=template)
    _expect(facts_copy, "fr/templates.jsonl", 2, "template", words=(slot,))


def test_relation_file_without_template(facts_copy):
    (facts_copy / "ru" / "P99.jsonl").write_text(
        '{"lineid": 1, "sub_label": "a", "obj_label": "b"}\n', encoding="utf-8"
    )
    _expect(facts_copy, "ru/P99.jsonl", None, "relation", words=("template",))
    # not an error when the relation is not selected
    assert load_facts(facts_copy, relations=["P36"]).relations == ("P36",)


def test_template_line_without_relation_or_template_field(facts_copy):
    _edit_field(facts_copy / "en" / "templates.jsonl", 3, relation=_DROP)
    _expect(facts_copy, "en/templates.jsonl", 3, "relation", words=("missing field",))


def test_template_line_without_template_field(facts_copy):
    _edit_field(facts_copy / "en" / "templates.jsonl", 1, template=_DROP)
    _expect(facts_copy, "en/templates.jsonl", 1, "template", words=("missing field",))


def test_unknown_language(facts_copy):
    e = _expect(facts_copy, None, None, "language", words=("'xx'", "en, fr, ru"), languages=["en", "xx"])
    assert "unknown language" in e.message


def test_unknown_language_names_the_field(facts_copy):
    with pytest.raises(InputError) as err:
        load_facts(facts_copy, ["zz"])
    assert err.value.field in ("language", "languages")


def test_unknown_relation(facts_copy):
    _expect(facts_copy, None, None, "relation", words=("'P999'", "unknown relation"), relations=["P36", "P999"])


def test_missing_root(tmp_path):
    with pytest.raises(InputError) as err:
        load_facts(tmp_path / "nowhere")
    assert err.value.file == str(tmp_path / "nowhere") and "does not exist" in str(err.value)


def test_empty_fact_set_from_empty_files(facts_copy):
    for p in facts_copy.glob("*/P*.jsonl"):
        p.write_text("\n", encoding="utf-8")
    _expect(facts_copy, None, None, None, words=("empty fact set",))


def test_empty_fact_set_from_zero_sample(facts_copy):
    _expect(facts_copy, None, None, "max_facts", words=("positive",), max_facts_per_relation=0)


@pytest.mark.parametrize("field", ["lineid", "sub_label", "obj_label"])
def test_missing_field(facts_copy, field):
    _edit_field(facts_copy / "en" / "P30.jsonl", 4, **{field: _DROP})
    _expect(facts_copy, "en/P30.jsonl", 4, field, words=("missing field",))


@pytest.mark.parametrize(
    "field, value",
    [
        ("sub_label", ""),
        ("sub_label", "   "),
        ("obj_label", None),
        ("obj_label", 42),
        ("lineid", "abc"),
        ("lineid", 3.5),
        ("lineid", True),
        ("lineid", None),
    ],
)
def test_bad_field_value(facts_copy, field, value):
    _edit_field(facts_copy / "fr" / "P37.jsonl", 5, **{field: value})
    _expect(facts_copy, "fr/P37.jsonl", 5, field)


def test_lineid_as_numeric_string_is_accepted(facts_copy):
    _edit_field(facts_copy / "fr" / "P37.jsonl", 1, lineid="201")
    assert 201 in load_facts(facts_copy).lineids("fr")


@pytest.mark.parametrize("value", ["--5", "²"])
def test_lineid_that_only_looks_numeric(facts_copy, value):
    _edit_field(facts_copy / "fr" / "P37.jsonl", 5, lineid=value)
    _expect(facts_copy, "fr/P37.jsonl", 5, "lineid")


def test_duplicate_lineid(facts_copy):
    _edit_field(facts_copy / "ru" / "P37.jsonl", 6, lineid=202)
    _expect(facts_copy, "ru/P37.jsonl", 6, "lineid", words=("duplicate lineid 202",))


@pytest.mark.parametrize("aliases", ["Paris", {"a": "b"}, 7])
def test_obj_aliases_not_a_list(facts_copy, aliases):
    _edit_field(facts_copy / "en" / "P36.jsonl", 2, obj_aliases=aliases)
    _expect(facts_copy, "en/P36.jsonl", 2, "obj_aliases", words=("list",))


def test_obj_aliases_with_non_string_items(facts_copy):
    _edit_field(facts_copy / "en" / "P36.jsonl", 2, obj_aliases=[None])
    _expect(facts_copy, "en/P36.jsonl", 2, "obj_aliases")


def test_fact_is_correct_uses_aliases_only():
    f = Fact(1, "P36", "en", "Japan", "Tokyo", obj_aliases=("Tokio",))
    assert f.is_correct("Tokyo") and f.is_correct("Tokio") and not f.is_correct("tokyo")


# ------------------------------------------------------------------ shared data
@pytest.mark.shared_data
def test_shared_data_parallel(shared_facts):
    fs = load_facts(shared_facts, ["en", "fr", "ru", "zh"])
    assert len(fs.relations) > 10
    for lang in fs.languages:
        assert fs.n_facts(lang) > 1000
    par = fs.parallel()
    common = par.lineids("en")
    assert len(common) > 0
    assert all(par.lineids(lang) == common for lang in fs.languages)
    # parallel facts share Wikidata ids across languages
    en = {(f.relation, f.lineid): f for f in par.iter_facts("en")}
    zh = {(f.relation, f.lineid): f for f in par.iter_facts("zh")}
    same_uri = sum(en[k].obj_uri == zh[k].obj_uri for k in en if en[k].obj_uri)
    assert same_uri > 0.9 * len(en)
    print(f"\nshared data: {len(fs.relations)} relations, {len(common)} facts parallel in en/fr/ru/zh")


# ------------------------------------------------------------------ issue 11: adversarial input
@pytest.mark.parametrize("k", [-2, -1, 0])
def test_non_positive_max_facts_is_refused(facts_copy, k):
    """--max-facts -2 used to slice ids[:-2] and silently drop facts."""
    _expect(facts_copy, None, None, "max_facts", words=("positive", str(k)), max_facts_per_relation=k)


def test_repeated_language_is_refused(facts_copy):
    """--languages fr fr used to count every fact twice."""
    _expect(facts_copy, None, None, "language", words=("more than once",), languages=["en", "fr", "fr"])


def test_non_utf8_fact_file_names_file_and_line(facts_copy):
    path = next(facts_copy.glob("fr/P*.jsonl"))
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"', b'\xff"', 1)
    path.write_bytes(b"".join(lines))
    _expect(facts_copy, path.relative_to(facts_copy), 2, None, words=("not UTF-8",))


def test_non_utf8_template_file_names_file_and_line(facts_copy):
    path = facts_copy / "fr" / "templates.jsonl"
    path.write_bytes(path.read_bytes().replace(b"[X]", "[X] \u00e9".encode("latin-1"), 1))
    _expect(facts_copy, "fr/templates.jsonl", 1, None, words=("not UTF-8",))


def test_enormous_line_is_refused_while_reading(facts_copy):
    path = next(facts_copy.glob("en/P*.jsonl"))
    path.write_text('{"lineid": 1, "sub_label": "' + "a" * 2_000_000 + '", "obj_label": "b"}\n', encoding="utf-8")
    _expect(facts_copy, path.relative_to(facts_copy), 1, None, words=("longer than",))


def test_overlong_label_is_refused(facts_copy):
    path = next(facts_copy.glob("en/P*.jsonl"))
    path.write_text(json.dumps({"lineid": 1, "sub_label": "a" * 5000, "obj_label": "b"}) + "\n", encoding="utf-8")
    _expect(facts_copy, path.relative_to(facts_copy), 1, "sub_label", words=("5,000 characters",))


@pytest.mark.parametrize("marker", ["[Y]", "[X]", "[MASK]"])
def test_label_with_a_slot_marker_blames_the_fact_file(facts_copy, marker):
    """A sub_label holding [Y] or [MASK] was blamed on the template; it is the fact file's line."""
    path = next(facts_copy.glob("en/P*.jsonl"))
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    rows[0]["sub_label"] = f"Foo {marker} Bar"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    _expect(facts_copy, path.relative_to(facts_copy), 1, "sub_label", words=("reserved marker", marker))


def test_parallel_without_shared_lineids_says_what_is_missing(facts_copy):
    """Lineids shared by no language were reported later as "no sentences for 'en'"."""
    for path in facts_copy.glob("fr/P*.jsonl"):
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        path.write_text(
            "".join(json.dumps({**r, "lineid": int(r["lineid"]) + 10_000}) + "\n" for r in rows), encoding="utf-8"
        )
    fs = load_facts(facts_copy, ["en", "fr"])
    with pytest.raises(InputError, match="no fact \\(same lineid\\) is shared by all of en, fr") as err:
        fs.parallel()
    assert err.value.field == "lineid" and "en: " in str(err.value)


def test_shipped_facts_resolved_in_one_place():
    from lrp2_interp.cli.main import REPO_DATA, default_facts
    from lrp2_interp.facts import shipped_facts_root
    from lrp2_interp.organism.organism_config import default_facts_root

    root = shipped_facts_root()
    assert (root / "en" / "templates.jsonl").is_file()
    assert REPO_DATA == root == default_facts_root() == Path(default_facts())


def test_facts_digest_changes_with_the_selection(fixture_facts_root):
    from lrp2_interp.facts import facts_digest

    a = facts_digest(load_facts(fixture_facts_root, ["en", "fr"]))
    assert a == facts_digest(load_facts(fixture_facts_root, ["en", "fr"]))
    assert a != facts_digest(load_facts(fixture_facts_root, ["en", "fr"], max_facts_per_relation=1))
    assert a != facts_digest(load_facts(fixture_facts_root, ["en"]))
