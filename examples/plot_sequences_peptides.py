"""
BERT and GPT on peptides: a map of the representation, and new peptides
========================================================================

Peptides are strings of amino acids, one letter each. Some kill bacteria
(antimicrobial peptides, AMPs): short, positively charged, with hydrophobic
and charged residues alternating along a helix. Two self-supervised
objectives learn from such strings without labels:

* :class:`~sk_replearn.BERTTransformer` hides 15% of the letters of each
  sequence and predicts them from both sides (Devlin et al. 2019);
* :class:`~sk_replearn.GPTTransformer` predicts every letter from the ones
  before it (Radford et al. 2018), and can then write new sequences.

This example fits BERT on peptides without their labels and draws a t-SNE
map of its representation of held-out peptides, coloured by the activity it
never saw; then fits GPT on antimicrobial peptides only and compares the
amino-acid composition of the peptides it writes with real ones. The data,
5,200 peptides half of which are antimicrobial, ship inside the ``modlamp``
wheel (:func:`sk_replearn.datasets.load_peptides`).
"""

# %%
# Masked-token prediction on peptides
# -----------------------------------
# The default tokenizer makes every character a token, right for amino
# acids. Short training (8 epochs of each model) keeps this example to about
# two and a half minutes on two CPU cores, longer on one; the benchmarks
# page reports the defaults.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_replearn import BERTTransformer, GPTTransformer
from sk_replearn.datasets import load_peptides

X, y = load_peptides(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
bert = BERTTransformer(depth=2, max_epochs=8, random_state=0).fit(X_train)
Z_train, Z_test = bert.transform(X_train), bert.transform(X_test)
print(
    f"vocabulary: {len(bert.vocabulary_)} tokens, masked-token accuracy "
    f"{bert.score(X_test):.2f}"
)

# %%
# A linear probe: how much of the activity the representation makes linear,
# beside character 1-3-gram counts, the baseline to beat on short sequences.
probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
probe.fit(Z_train, y_train)
tfidf = make_pipeline(
    TfidfVectorizer(analyzer="char", ngram_range=(1, 3)),
    LogisticRegression(C=10.0, max_iter=5000),
).fit(X_train, y_train)
print(
    f"BERT probe {probe.score(Z_test, y_test):.3f}, "
    f"TF-IDF 1-3-grams {tfidf.score(X_test, y_test):.3f}"
)

# %%
# The map: t-SNE of the held-out peptides' representations, coloured by the
# label BERT never saw.
embedded = TSNE(init="pca", random_state=0).fit_transform(Z_test[:800])
fig, ax = plt.subplots(figsize=(5.5, 5))
for label, color, name in [
    (0, "tab:gray", "not antimicrobial"),
    (1, "tab:red", "antimicrobial"),
]:
    keep = y_test[:800] == label
    ax.scatter(*embedded[keep].T, s=6, c=color, label=name, alpha=0.7)
ax.set_title("BERT representation of held-out peptides (t-SNE)")
ax.set_xticks([])
ax.set_yticks([])
ax.legend(loc="best", markerscale=3)
plt.show()

# %%
# Writing peptides with GPT
# -------------------------
# A language model of antimicrobial peptides alone: every letter predicted
# from the ones before it. :meth:`~sk_replearn.GPTTransformer.generate`
# samples new sequences letter by letter until the model ends them.
amps = [s for s, label in zip(X_train, y_train) if label == 1]
gpt = GPTTransformer(depth=2, max_epochs=8, random_state=0).fit(amps)
written = gpt.generate(
    n_samples=200, temperature=0.8, max_new_tokens=60, random_state=0
)
for peptide in written[:8]:
    print(peptide)

# %%
# Do they look like antimicrobial peptides? Their amino-acid composition,
# beside that of real antimicrobial and non-antimicrobial peptides: in this
# data the antimicrobial ones hold more glycine (G), cysteine (C) and lysine
# (K), and less arginine (R), methionine (M) and valine (V). Sampling at
# a temperature below 1 sharpens the model's preferences, so the written
# peptides exaggerate the most frequent letters (G, K, L).
letters = sorted(set("".join(X)))


def composition(peptides):
    joined = "".join(peptides)
    return np.array([joined.count(a) for a in letters]) / max(len(joined), 1)


others = [s for s, label in zip(X_train, y_train) if label == 0]
width = 0.28
positions = np.arange(len(letters))
fig, ax = plt.subplots(figsize=(9, 3.5))
for k, (peptides, name, color) in enumerate(
    [
        (amps, "real antimicrobial", "tab:red"),
        (written, "written by GPT", "tab:orange"),
        (others, "real, not antimicrobial", "tab:gray"),
    ]
):
    ax.bar(
        positions + (k - 1) * width,
        composition(peptides),
        width,
        label=name,
        color=color,
    )
ax.set_xticks(positions)
ax.set_xticklabels(letters)
ax.set_ylabel("frequency")
ax.legend()
ax.set_title("Amino-acid composition")
plt.show()

# %%
# GPT's held-out log-likelihood per letter is higher on antimicrobial
# peptides, the kind it learned, than on the others: a language model is
# also a score of how typical a sequence is.
test_amps = [s for s, label in zip(X_test, y_test) if label == 1]
test_others = [s for s, label in zip(X_test, y_test) if label == 0]
print(
    f"log-likelihood per letter: antimicrobial {gpt.score(test_amps):.3f}, "
    f"others {gpt.score(test_others):.3f}"
)
