"""Where a plan's laws come from: the paper's tables, a study's fitted laws, or a JSON file.

:func:`load_laws` returns a :class:`LawSet`: one :class:`~mmlaws.laws.MixtureLaw` (the
uni-modal law of every modality and the interaction of every pair it knows), the replicate laws
behind intervals when the source carries bootstrap replicates, what the laws predict
(``quantity``), and the warnings their fits recorded.

Sources:

- ``"table1"``: Table 1's seven uni-modal laws (no interaction terms are published);
  ``"table3-cm3"`` / ``"table3-causal"``: Table 3's Speech and Text laws under one objective.
  They predict perplexity (:mod:`mmlaws.laws.published`). The study's dataset names map to
  Table 1's modalities (``images`` → ``image``, ``image_text`` → ``image-text``,
  ``speech_text`` → ``speech-text``).
- a study folder (holding ``study.json``) or a ``study.json``: its ``laws`` entries
  (:func:`mmlaws.laws.fit_table`): uni-modal entries (E, A, B, alpha, beta), Eq. 4 entries named
  ``"i|j"`` (C, A, B, alpha, beta), the n-modal entry's interactions, and mixture-law entries
  (``{"law": {"form": "mixture", ...}}``, :func:`mmlaws.laws.mixture_entry`), which take
  precedence for their pairs.
- any other JSON file in the same form: ``{"quantity": "nats", "laws": {<entries>}}``, or one
  mixture law's ``as_dict()``.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Mapping

from mmlaws.errors import ConfigError, DataError
from mmlaws.laws.forms import Interaction, UnimodalLaw, check_quantity
from mmlaws.laws.mixture import MixtureLaw, PairMixing
from mmlaws.laws.published import PUBLISHED_QUANTITY, TABLE1, TABLE3

PUBLISHED = ("table1", "table3-cm3", "table3-causal")
# The study's dataset names (mmlaws.study.design.BUILDERS) that Table 1 spells differently.
TABLE1_NAMES = {"images": "image", "image_text": "image-text", "speech_text": "speech-text"}
_UNI = ("E", "A", "B", "alpha", "beta")
_PAIR = ("C", "A", "B", "alpha", "beta")


@dataclasses.dataclass(frozen=True)
class LawSet:
    """The laws a plan uses, where they come from, and what they carry."""

    law: MixtureLaw
    source: str
    samples: tuple[MixtureLaw, ...] = ()  # bootstrap replicate laws (empty: no intervals)
    pair_origin: Mapping[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    warnings: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def quantity(self) -> str:
        return self.law.quantity

    def name_of(self, modality: str) -> str:
        """The law's name for a modality (Table 1 spells some datasets differently)."""
        return self.aliases.get(modality, modality)


def load_laws(source: str | pathlib.Path = "table1") -> LawSet:
    """The :class:`LawSet` of ``source`` (module docstring); :class:`ConfigError` or
    :class:`DataError` naming the source when it cannot be read."""
    if isinstance(source, str) and source in PUBLISHED:
        return _published(source)
    path = pathlib.Path(source)
    if path.is_dir():
        path = path / "study.json"
    if not path.is_file():
        raise ConfigError(f"laws={str(source)!r}: not one of {PUBLISHED}, a study folder with "
                          "study.json, or a JSON file")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not readable JSON ({err})") from None
    try:
        return from_json(data, str(path))
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{path}: not a law file ({type(err).__name__}: {err})") from None


def _published(name: str) -> LawSet:
    if name == "table1":
        laws, source = dict(TABLE1), "Aghajanyan et al. 2023, Table 1"
    else:
        objective = name.split("-")[1]
        laws = {k.split(" ")[0]: v for k, v in TABLE3.items() if f"({objective})" in k}
        source = f"Aghajanyan et al. 2023, Table 3, {objective.upper()} objective"
    law = MixtureLaw(laws=laws, pairs={}, quantity=PUBLISHED_QUANTITY)
    return LawSet(law=law, source=source, aliases=dict(TABLE1_NAMES))


def from_json(data: Mapping, where: str) -> LawSet:
    """A :class:`LawSet` from a study.json, a ``{"quantity", "laws"}`` file or a mixture law."""
    if data.get("form") == "mixture":
        return LawSet(law=MixtureLaw.from_dict(data), source=where)
    entries = data["laws"]
    default_q = check_quantity(data.get("quantity", "nats"))
    uni, mix_uni, pairs, origin, warns, samples = {}, {}, {}, {}, {}, {}
    for name, e in entries.items():
        if e.get("warnings"):
            warns[name] = tuple(e["warnings"])
        q = e.get("quantity", default_q)
        if isinstance(e.get("law"), Mapping) and e["law"].get("form") == "mixture":
            mix = MixtureLaw.from_dict(e["law"])
            mix_uni.update(mix.laws)  # its pairs were fitted with these uni-modal laws
            for p, m in mix.pairs.items():
                pairs[p], origin[p] = m, f"mixture law ({name})"
        elif all(k in e for k in _UNI) and "C" not in e and "|" not in name:
            uni[name] = UnimodalLaw(**{k: float(e[k]) for k in _UNI}, source=where, quantity=q)
            if "samples" in e:
                samples[name] = e["samples"]
        elif "|" in name and all(k in e for k in _PAIR):
            p = tuple(name.split("|"))
            if p not in pairs:
                term = Interaction(**{k: float(e[k]) for k in _PAIR})
                pairs[p] = PairMixing.from_interaction(p, term)
                origin[p] = "Eq. 4 (fitted at 50/50)"
                if "samples" in e:
                    samples[name] = e["samples"]
        elif name == "nmodal" and "interactions" in e:
            for key, t in e["interactions"].items():
                p = tuple(key.split("|"))
                if p not in pairs:
                    term = Interaction(**{k: float(t[k]) for k in _PAIR})
                    pairs[p], origin[p] = PairMixing.from_interaction(p, term), "n-modal law"
    for k in mix_uni:
        samples.pop(k, None)
    uni.update(mix_uni)
    if not uni:
        raise ValueError("no uni-modal law entries (E, A, B, alpha, beta)")
    quantities = {law.quantity for law in uni.values()}
    if len(quantities) > 1:
        raise ValueError(f"entries predict different quantities {sorted(quantities)}")
    quantity = quantities.pop()
    uni = {k: dataclasses.replace(v, quantity=quantity) for k, v in uni.items()}
    pairs = {p: m for p, m in pairs.items() if all(k in uni for k in p)}
    law = MixtureLaw(laws=uni, pairs=pairs, quantity=quantity)
    return LawSet(law=law, source=where, samples=_replicates(law, samples, origin),
                  pair_origin=origin, warnings=warns)


def _replicates(law: MixtureLaw, samples: Mapping, origin) -> tuple[MixtureLaw, ...]:
    """Replicate laws from the entries' bootstrap samples: replicate r takes the r-th sample of
    every entry that has samples (entries were bootstrapped separately, so this pairs independent
    replicates) and the point estimate of the others; replicates with a missing value are
    dropped."""
    if not samples:
        return ()
    size = min(len(next(iter(s.values()))) for s in samples.values())
    out = []
    for r in range(size):
        uni, pairs, ok = dict(law.laws), dict(law.pairs), True
        for name, s in samples.items():
            vals = {k: s[k][r] for k in s}
            if any(v is None for v in vals.values()):
                ok = False
                break
            if "|" in name:
                p = tuple(name.split("|"))
                if p in pairs and origin.get(p, "").startswith("Eq. 4"):
                    pairs[p] = PairMixing.from_interaction(p, Interaction(
                        **{k: float(vals[k]) for k in _PAIR}))
            elif name in uni:
                uni[name] = dataclasses.replace(uni[name], **{k: float(vals[k]) for k in _UNI})
        if ok:
            out.append(MixtureLaw(laws=uni, pairs=pairs, quantity=law.quantity))
    return tuple(out)
