"""Nothing hand-copied: every number the README's results section and docs/results.md quote from a sweep
appears in the files the report generated for that sweep (docs/results/<sweep>/: results.csv,
selected_runs.csv, claims.csv, claims_per_seed.csv), to the digits it is quoted with.

A `## ` section quotes the sweeps whose folder it names (`results/<sweep>/`); a section naming none (the
launcher timings, a gamma search of separate runs) is not checked. Checked: every number in a table cell
(the header row and the first column, which hold names, aside), every `a ± b` and every factor `3.6x` in
the prose."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
GENERATED = ("results.csv", "selected_runs.csv", "claims.csv", "claims_per_seed.csv")
NUMBER = r"\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def sections(text: str) -> list[str]:
    """The text cut at every level-2 heading (`## `); sub-headings stay inside their section."""
    return re.split(r"(?m)^(?=## )", text)


def quoted(section: str) -> list[str]:
    """The numbers a section quotes: table cells (not the header row, not the first column), and in the
    prose every `a ± b` and every factor `Nx`."""
    out, header_next = [], True
    for line in section.splitlines():
        if not line.startswith("|"):
            header_next = True
            out += [n for pair in re.findall(rf"({NUMBER}) ± ({NUMBER})", line) for n in pair]
            out += re.findall(rf"\b({NUMBER})x\b", line)
            continue
        if header_next or set(line) <= set("|-: "):
            header_next = False
            continue
        for cell in line.strip().strip("|").split("|")[1:]:
            out += re.findall(NUMBER, cell)
    return out


def generated(sweep: str) -> np.ndarray:
    """Every number of the sweep's generated files (results.csv holds accuracies and AUROCs in %, as quoted),
    and the inverse of every factor of the claims files (a factor below 1 is quoted as its inverse: "1.2x
    lower")."""
    values = []
    for name in GENERATED:
        if (RESULTS / sweep / name).exists():
            df = pd.read_csv(RESULTS / sweep / name)
            v = df.select_dtypes("number").to_numpy(dtype=float).ravel()
            v = np.abs(v[np.isfinite(v)])
            values.append(v)
            if name.startswith("claims"):
                values.append(1 / v[v > 0])
    return np.concatenate(values) if values else np.array([])


def appears(token: str, values: np.ndarray) -> bool:
    """Whether a value rounds to `token` at the digits it shows (`2.4e-3`: to 0.1e-3; `13.3`: to 0.1)."""
    mantissa, _, exponent = token.partition("e")
    decimals = len(mantissa.partition(".")[2])
    unit = 10.0 ** (-decimals + (int(exponent) if exponent else 0))
    return bool((np.abs(values - float(token)) <= unit / 2 * (1 + 1e-9) + 1e-12).any())


def checked_sections() -> list[tuple[str, str, list[str]]]:
    """(document, section heading, sweeps named) of every section that quotes a sweep."""
    out = []
    readme = (ROOT / "README.md").read_text()
    docs = {"README.md": [s for s in sections(readme) if s.startswith("## Results on MNIST-1D")]}
    docs["docs/results.md"] = sections((ROOT / "docs" / "results.md").read_text())
    sweeps = {p.name for p in RESULTS.iterdir() if p.is_dir()}
    for doc, parts in docs.items():
        for part in parts:
            named = sorted(set(re.findall(r"results/(\w+)/", part)) & sweeps)
            if named:
                out.append((doc, part.splitlines()[0], named))
    return out


def test_the_readme_and_results_page_quote_every_committed_sweep():
    named = {s for _, _, sw in checked_sections() for s in sw}
    assert named == {p.name for p in RESULTS.iterdir() if p.is_dir()}
    # the check reads the tables: the README's table and the per-seed and claims tables of the results page
    counts = {}
    for doc, heading, _ in checked_sections():
        section = next(s for s in sections((ROOT / doc).read_text()) if s.splitlines()[0] == heading)
        counts[doc] = counts.get(doc, 0) + len(quoted(section))
    assert counts["README.md"] > 40 and counts["docs/results.md"] > 500, counts


@pytest.mark.parametrize("doc, heading, sweeps", checked_sections(), ids=lambda v: v if isinstance(v, str) else None)
def test_every_number_quoted_from_a_sweep_appears_in_its_generated_files(doc, heading, sweeps):
    text = (ROOT / doc).read_text()
    section = next(s for s in sections(text) if s.splitlines()[0] == heading)
    values = np.concatenate([generated(s) for s in sweeps])
    tokens = quoted(section)
    missing = [t for t in tokens if not appears(t, values)]
    assert not missing, f"{doc}, {heading}: not in the generated files of {sweeps}: {missing}"


def test_the_check_tells_a_quoted_number_from_one_that_is_not_there():
    values = np.array([0.0024174964937585283, 13.333333333333334, 0.9796296296296295 * 100])
    assert appears("2.4e-3", values) and appears("13.3", values) and appears("97.96", values)
    assert not appears("2.5e-3", values) and not appears("13.4", values) and not appears("97.9", values)
    table = "## x\n\n| head | acc | rho |\n|---|---|---|\n| BinEnc 4 | 98.17 ± 0.29 (n=3) | 3.6x |\n"
    table += "NC1 13.8x lower, 1 ± 2\n"
    assert quoted(table) == ["98.17", "0.29", "3", "3.6", "1", "2", "13.8"]
