"""LRP2 from a fact set in two calls: language vectors of the probe prompts, LRP2 as a context manager.

The examples of this module run on a tiny random model built from the shipped facts
(the same recipe works with ``lx.load_model("gemma-3-270m")``):

>>> import tempfile
>>> import lrp2_interp as lx
>>> facts = lx.load_facts(languages=["en", "fr"], max_facts_per_relation=3)  # the shipped facts
>>> folder = lx.build_random_model(lx.RandomModelConfig(family="gpt2"), lx.fact_sentences(facts), tempfile.mkdtemp())
>>> lm = lx.load_model(folder)
>>> vec = lx.language_vectors(lm, facts)
>>> lm.n_layers, vec.languages
(2, ('en', 'fr'))

The other front-door examples (``lx.probe``, ``lx.attribute_fact``, ``lx.similarity_table``, ...)
use these ``lx``, ``facts``, ``lm`` and ``vec``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from lrp2_interp.facts import FactSet
from lrp2_interp.lrp2.projection import LRP2Config, lrp2
from lrp2_interp.lrp2.vectors import LanguageVectors, TokenChoice, compute_language_vectors
from lrp2_interp.models.loading import LanguageModel
from lrp2_interp.prompts import prompt_corpus


def language_vectors(
    lm: LanguageModel,
    facts: FactSet,
    languages: Sequence[str] | None = None,
    *,
    batch_size: int = 32,
    tokens: TokenChoice = "real",
    progress: bool = False,
) -> LanguageVectors:
    """Language vectors of ``lm`` computed from the probe prompts of a fact set, one per language.

    The corpus of each language is :func:`lrp2_interp.prompts.prompt_corpus` (the
    queries the model is probed with), as the demo and the ``run`` command use.

    Args:
        lm: the model (:func:`lrp2_interp.load_model`).
        facts: the fact set whose prompts are averaged (:func:`lrp2_interp.load_facts`).
        languages: the languages to compute (default: every language of ``facts``);
            include the pivot language (``"en"``) to apply LRP2.
        batch_size: prompts per forward pass.
        tokens: ``"real"`` averages over real tokens only, ``"all"`` over special tokens too (the paper).
        progress: show a progress bar per language.

    Returns:
        :class:`~lrp2_interp.lrp2.vectors.LanguageVectors`: ``vec["fr"]`` is ``[n_layers, d_model]``.

    >>> fr = lx.language_vectors(lm, facts, ["en", "fr"])
    >>> fr.languages, tuple(fr["fr"].shape) == (lm.n_layers, lm.d_model)
    (('en', 'fr'), True)
    """
    langs = tuple(languages) if languages is not None else tuple(facts.languages)
    facts.check_languages(langs)
    return compute_language_vectors(
        lm,
        {lang: prompt_corpus(facts, lang, lm) for lang in langs},
        corpus=dict.fromkeys(langs, "probe prompts"),
        batch_size=batch_size,
        tokens=tokens,
        progress=progress,
    )


@contextmanager
def apply_lrp2(
    lm: LanguageModel, vectors: LanguageVectors, language: str, config: LRP2Config
) -> Iterator[LanguageModel]:
    """Context manager: every forward pass of ``lm`` inside the ``with`` block runs with LRP2 for ``language``.

    The same shifts as :func:`lrp2_interp.lrp2_hooks` (pass those as ``fwd_hooks=`` to
    combine LRP2 with other hooks, or to shift positions counted from each row's end,
    which this context manager refuses).

    Args:
        lm: the model.
        vectors: language vectors of ``language`` and ``config.source`` (:func:`language_vectors`).
        language: the language of the queries run inside the block.
        config: the layers: LIRP at block ``m``, LSRP at block ``n`` (``LRP2Config(m, n)``).

    Yields:
        ``lm`` itself, with the hooks attached until the block ends.

    >>> with lx.apply_lrp2(lm, vec, "fr", lx.LRP2Config(m=0, n=1)):
    ...     after = lx.probe(lm, facts, "fr", progress=False)
    >>> after.language, len(after.table) == facts.n_facts("fr")
    ('fr', True)
    """
    with lrp2(lm, vectors, language, config) as model:
        yield model
