"""LRP2, learned alignment (INCLINE) and language-neuron steering (LAPE) on the same facts and split.

For one language l (facts parallel to English, split by line id into dev and test
exactly as :mod:`lrp2_interp.lrp2.sweep` does):

* every condition below is one resumable :class:`~lrp2_interp.store.ShardStore`
  unit holding the per-fact probing rows;
* ``lrp2``: every (m, n) pair of ``lrp2_layers``; language vectors from the probe
  prompts (the package default);
* ``alignment``: ``x + sigma (x W + b)`` with maps fitted on the prompts of the dev
  facts (``fit_on="dev"``, default; ``"all"`` uses every fact; or any ``fit_facts``
  without test facts) for each sigma of the grid; ``sigma = 0`` (no change, the
  baseline's rows) is a grid point, so the dev choice may switch the method off;
* ``lape``: the language's LAPE neurons (found on the dev facts' sentences of
  every language) damped by each strength, optionally moving English's neurons
  towards their English mean (``"to_source"``);
* each method's setting is chosen on dev facts and scored on test facts against the
  baseline with bootstrap CIs and the exact McNemar test; its random control at the
  chosen setting (random directions of the same norms / random maps of the same
  norms / random neurons with the same per-layer counts) is scored the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet
from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks
from lrp2_interp.lrp2.vectors import LanguageVectors, compute_language_vectors
from lrp2_interp.methods.alignment import (
    AlignmentConfig,
    Rule,
    Site,
    alignment_hooks,
    fit_alignment,
)
from lrp2_interp.methods.lape import (
    LapeConfig,
    SteerMode,
    activation_stats,
    random_mask_like,
    select_language_neurons,
    steer_hooks,
)
from lrp2_interp.methods.lape_effects import fact_corpus
from lrp2_interp.metrics import accuracy_ci, gain_ci, paired_test
from lrp2_interp.models.loading import FwdHooks, LanguageModel
from lrp2_interp.probing.api import ProbeConfig, probe
from lrp2_interp.prompts import prompt_corpus, translation_prompts
from lrp2_interp.store import ShardStore

METHODS = ("lrp2", "alignment", "lape")


@dataclass(frozen=True)
class CompareConfig:
    language: str
    source: str = "en"
    methods: tuple[str, ...] = METHODS
    lrp2_layers: tuple[int, ...] | None = None  # candidate layers for m < n; None = all
    sigmas: tuple[float, ...] = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0)  # 0 (= baseline) can be chosen
    site: Site = "mlp_out"  # alignment site: "mlp_out" (INCLINE) or "resid"
    affine: bool = False
    ridge: float = 0.0
    rule: Rule = "add"  # "add": x + sigma x W (the paper); "interpolate": x + sigma (x W - x)
    fit_on: str = "dev"  # "dev": maps and LAPE neurons from dev facts only; "all": every fact
    lape: LapeConfig = field(default_factory=LapeConfig)
    strengths: tuple[float, ...] = (0.5, 1.0)
    steer_modes: tuple[SteerMode, ...] = ("deactivate", "to_source")
    dev_fraction: float = 0.5
    seed: int = 0
    n_boot: int = 1000
    probe: ProbeConfig = field(default_factory=lambda: ProbeConfig())

    def validate(self) -> None:
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise InputError(f"unknown method(s) {bad} (choose from {', '.join(METHODS)})", field="methods")
        if self.fit_on not in ("dev", "all"):
            raise InputError(f"fit_on must be 'dev' or 'all', got {self.fit_on!r}", field="fit_on")
        if any(not -1.0 <= s <= 1.0 for s in self.sigmas):
            raise InputError(f"sigmas must lie in [-1, 1], got {self.sigmas}", field="sigmas")


@dataclass(frozen=True)
class Comparison:
    config: CompareConfig
    model_name: str
    facts_table: pd.DataFrame  # one row per (condition, fact): method, param, control, relation, lineid, correct
    dev_ids: frozenset[int]
    summary: pd.DataFrame  # one row per method: chosen setting, test Acc/gain with CIs, McNemar p, control

    def grid(self, method: str) -> pd.DataFrame:
        """Dev and test accuracy (%) of every setting of ``method`` (controls excluded)."""
        t = self.facts_table[(self.facts_table["method"] == method) & ~self.facts_table["control"]]
        t = t.assign(split=t["lineid"].isin(self.dev_ids).map({True: "dev", False: "test"}))
        return (
            t.groupby(["param", "split"], as_index=False)["correct"]
            .mean()
            .assign(acc=lambda d: 100 * d["correct"])
            .drop(columns="correct")
        )

    def chosen(self, method: str) -> str:
        """The setting of ``method`` chosen on dev facts (e.g. ``"m0_n2"``, ``"sigma=+0.50"``)."""
        rows = self.summary[self.summary["key"] == method]
        if rows.empty:
            raise InputError(f"method '{method}' was not run (ran: {', '.join(self.config.methods)})", field="method")
        return str(rows["chosen_on_dev"].iloc[0])

    def lrp2_config(self) -> LRP2Config:
        """The LRP2 pair chosen on dev facts as an :class:`LRP2Config`."""
        m, n = (int(x[1:]) for x in self.chosen("lrp2").split("_"))
        return LRP2Config(m, n, source=self.config.source)


def _frame(table: pd.DataFrame, method: str, param: str, control: bool) -> pd.DataFrame:
    out = table[["relation", "lineid", "correct", "rank"]].copy()
    out.insert(0, "control", control)
    out.insert(0, "param", param)
    out.insert(0, "method", method)
    return out


def _best(table: pd.DataFrame, dev_ids: frozenset[int], method: str) -> str:
    t = table[(table["method"] == method) & ~table["control"] & table["lineid"].isin(dev_ids)]
    acc = t.groupby("param", sort=True)["correct"].mean()
    return str(acc.idxmax())  # ties: the first setting in sorted order


def run_comparison(
    lm: LanguageModel,
    facts: FactSet,
    config: CompareConfig,
    out_dir: str | Path,
    *,
    vectors: LanguageVectors | None = None,
    fit_facts: FactSet | None = None,
    progress: bool = True,
) -> Comparison:
    """Probe the baseline and every method's grid, choose on dev, score on test (resumable in ``out_dir``).

    ``fit_facts``: the facts whose prompts fit the alignment maps and whose sentences
    (every language in it) find the LAPE neurons; default: the dev facts
    (``fit_on="dev"``) or every fact (``"all"``).  With ``fit_on="dev"`` it must not
    contain a test fact of the language.
    """
    config.validate()
    lang, src = config.language, config.source
    if lang not in facts.languages or src not in facts.languages:
        raise InputError(f"need '{lang}' and '{src}' in the fact set ({', '.join(facts.languages)})", field="language")
    facts = facts.parallel([src, lang])
    dev, _ = facts.split(config.dev_fraction, seed=config.seed)
    dev_ids = frozenset(dev.lineids(lang))
    if fit_facts is None:
        fit_facts = dev if config.fit_on == "dev" else facts
    elif config.fit_on == "dev" and fit_facts.lineids(lang) - dev_ids & facts.lineids(lang):
        raise InputError(
            "fit_facts share test facts with the comparison (fit_on='dev' keeps them apart)", field="fit_facts"
        )
    store = ShardStore(Path(out_dir))
    bar = tqdm(desc=f"compare {lang}", disable=not progress)

    def run(units: list[tuple[str, Callable[[], pd.DataFrame]]]) -> pd.DataFrame:
        keys = store.run(units, progress=lambda k, done: bar.update())
        return store.merge(keys)

    def probing(method: str, param: str, hooks: Callable[[], FwdHooks], control: bool = False):
        key = re.sub(r"[^A-Za-z0-9_.=-]", "_", f"{lang}-{method}-{param}{'-control' if control else ''}")

        def compute() -> pd.DataFrame:
            fwd = hooks()
            if not fwd and parts:  # no intervention (e.g. sigma = 0): the baseline's rows
                return parts[0][["relation", "lineid", "correct", "rank"]].pipe(_frame, method, param, control)
            return _frame(probe(lm, facts, lang, config.probe, fwd_hooks=fwd).table, method, param, control)

        return key, compute

    parts: list[pd.DataFrame] = []
    parts.append(run([probing("baseline", "-", list)]))
    rows = []
    base = parts[0].set_index(["relation", "lineid"])["correct"].sort_index()
    if "lrp2" in config.methods:
        if vectors is None:
            vectors = compute_language_vectors(
                lm, {g: prompt_corpus(facts, g, lm) for g in (src, lang)}, progress=False
            )
        layers = sorted(config.lrp2_layers) if config.lrp2_layers is not None else list(range(lm.n_layers))
        pairs = [(m, n) for m in layers for n in layers if m < n]
        if not pairs:
            raise InputError("LRP2 needs at least two candidate layers", field="lrp2_layers")
        grid = run(
            [
                probing("lrp2", f"m{m}_n{n}", partial(lrp2_hooks, lm, vectors, lang, LRP2Config(m, n, source=src)))
                for m, n in pairs
            ]
        )
        pick = _best(grid, dev_ids, "lrp2")
        m, n = (int(x[1:]) for x in pick.split("_"))
        ctl = run(
            [
                probing(
                    "lrp2",
                    pick,
                    lambda: lrp2_hooks(
                        lm, vectors, lang, LRP2Config(m, n, source=src, control="random", seed=config.seed)
                    ),
                    control=True,
                )
            ]
        )
        parts += [grid, ctl]
        rows.append(("LRP2 (Xu et al. 2023)", "lrp2", pick, grid, ctl))
    if "alignment" in config.methods:
        x, y = translation_prompts(lm, fit_facts, lang, src)
        maps = fit_alignment(
            lm, x, y, AlignmentConfig(lang, source=src, site=config.site, affine=config.affine, ridge=config.ridge)
        )
        tag = "" if config.rule == "add" else f"{config.rule}_"
        grid = run(
            [
                probing("alignment", f"{tag}sigma={s:+.2f}", partial(alignment_hooks, lm, maps, s, rule=config.rule))
                for s in config.sigmas
            ]
        )
        pick = _best(grid, dev_ids, "alignment")
        sigma = float(pick.split("=")[1])
        rand_maps = maps.random_like(config.seed)
        ctl = run(
            [probing("alignment", pick, lambda: alignment_hooks(lm, rand_maps, sigma, rule=config.rule), control=True)]
        )
        parts += [grid, ctl]
        rows.append(("learned alignment (INCLINE, Wang et al. 2025)", "alignment", pick, grid, ctl))
    if "lape" in config.methods:
        corpora = {g: fact_corpus(fit_facts, g) for g in fit_facts.languages if fit_facts.n_facts(g)}
        neurons = select_language_neurons(activation_stats(lm, corpora), config.lape)
        grid = run(
            [
                probing(
                    "lape",
                    f"{mode}@{s:.2f}",
                    partial(steer_hooks, lm, neurons, lang, source=src, strength=s, mode=mode),
                )
                for mode in config.steer_modes
                for s in config.strengths
            ]
        )
        pick = _best(grid, dev_ids, "lape")
        mode_name, chosen_s = pick.split("@")
        chosen_mode = next(mode for mode in config.steer_modes if mode == mode_name)
        rand_neurons = replace(
            neurons, masks={g: random_mask_like(mk, config.seed + i) for i, (g, mk) in enumerate(neurons.masks.items())}
        )
        ctl = run(
            [
                probing(
                    "lape",
                    pick,
                    lambda: steer_hooks(lm, rand_neurons, lang, source=src, strength=float(chosen_s), mode=chosen_mode),
                    control=True,
                )
            ]
        )
        parts += [grid, ctl]
        rows.append(("language-neuron steering (LAPE, Tang et al. 2024)", "lape", pick, grid, ctl))
    bar.close()
    table = pd.concat(parts, ignore_index=True)
    summary = _summary(base, rows, dev_ids, config)
    return Comparison(config, lm.name, table, dev_ids, summary)


def _correct(t: pd.DataFrame, param: str) -> pd.Series:
    return t[t["param"] == param].set_index(["relation", "lineid"])["correct"].sort_index().astype(bool)


def _summary(base: pd.Series, rows, dev_ids: frozenset[int], config: CompareConfig) -> pd.DataFrame:
    kw = {"n_boot": config.n_boot, "seed": config.seed}
    test = ~base.index.get_level_values("lineid").isin(dev_ids)
    b = base.astype(bool).to_numpy()
    out = [
        {
            "method": "baseline",
            "key": "baseline",
            "chosen_on_dev": "-",
            "n_test": int(test.sum()),
            "dev_acc": 100 * float(b[~test].mean()),
            "test_acc": accuracy_ci(b[test], **kw),
        }
    ]
    for label, key, pick, grid, ctl in rows:
        c = _correct(grid, pick).reindex(base.index).to_numpy()
        k = _correct(ctl, pick).reindex(base.index).to_numpy()
        out.append(
            {
                "method": label,
                "key": key,
                "chosen_on_dev": pick,
                "n_test": int(test.sum()),
                "dev_acc": 100 * float(c[~test].mean()),
                "test_acc": accuracy_ci(c[test], **kw),
                "test_gain": gain_ci(c[test], b[test], **kw),
                "p_mcnemar": paired_test(c[test], b[test])["p_value"],
                "control_test_gain": gain_ci(k[test], b[test], **kw),
            }
        )
    return pd.DataFrame(out)


def summary_markdown(comparison: Comparison) -> str:
    """The comparison table as Markdown (CIs as ``value [low, high]``)."""
    s = comparison.summary.drop(columns="key").astype(object)
    s = s.where(s.notna(), "")
    cols = list(s.columns)
    lines = [
        f"# Methods compared: {comparison.model_name}, {comparison.config.language}",
        "",
        (
            "Acc = P@1 (%) on test facts; each setting chosen on dev facts; gain = test Acc - baseline (points), "
            "95% bootstrap CIs over facts; p = exact McNemar vs baseline; control = the same method with random "
            "directions / maps / neurons of the same size at the chosen setting."
        ),
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for _, r in s.iterrows():
        lines.append("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in r.values) + " |")
    return "\n".join(lines) + "\n"


def plot_grids(comparison: Comparison, out_dir: str | Path) -> list[Path]:
    """One plot per method: the LRP2 (m, n) dev-gain heatmap, accuracy vs sigma, accuracy per steering setting."""
    from lrp2_interp.plots import heatmap, line_plot

    out, paths = Path(out_dir), []
    lang = comparison.config.language
    base = comparison.grid("baseline").set_index("split")["acc"]
    for method in comparison.config.methods:
        g = comparison.grid(method)
        if g.empty:
            continue
        if method == "lrp2":
            d = g[g["split"] == "dev"].copy()
            d["m"] = d["param"].str.extract(r"m(\d+)_")[0].astype(int)
            d["n"] = d["param"].str.extract(r"_n(\d+)")[0].astype(int)
            d["gain"] = d["acc"] - base.get("dev", float("nan"))
            paths.append(
                heatmap(
                    d.pivot(index="m", columns="n", values="gain"),
                    out / f"lrp2_dev_gain_{lang}.png",
                    title=f"LRP2 dev gain (points), {lang}: rows m, cols n",
                    center=0.0,
                )
            )
        elif method == "alignment":
            g = pd.concat([g, comparison.grid("baseline").assign(param="sigma=+0.00")])
            g["sigma"] = g["param"].str.split("=").str[1].astype(float)
            paths.append(
                line_plot(
                    g.sort_values("sigma"),
                    "sigma",
                    "acc",
                    "split",
                    out / f"alignment_sigma_{lang}.png",
                    title=f"learned alignment: Acc vs sigma, {lang}",
                    ylabel="Acc (%)",
                )
            )
        else:
            g[["mode", "strength"]] = g["param"].str.split("@", expand=True)
            g["strength"] = g["strength"].astype(float)
            g["mode_split"] = g["mode"] + " / " + g["split"]
            paths.append(
                line_plot(
                    g.sort_values("strength"),
                    "strength",
                    "acc",
                    "mode_split",
                    out / f"lape_strength_{lang}.png",
                    title=f"language-neuron steering: Acc vs strength, {lang}",
                    ylabel="Acc (%)",
                )
            )
    return paths
