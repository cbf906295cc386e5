"""What the sequence estimators say when their input cannot teach or be read.

A tokenizer that reads nothing, text the fitted vocabulary does not know, a
refused warm start, a ``max_length`` past memory, a fine-tuner's cut
sequences, and errors in ``prompts`` and ``pretrain_X``: each gets a message
that names the parameter at fault and the fix, before any training time is
spent, and never a degenerate model whose every row is the same.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from _instances import make

from sk_replearn import FineTuner, FineTunerRegressor, GPTTransformer

NAMES = ["BERTTransformer", "GPTTransformer"]


@pytest.fixture(scope="module")
def dna():
    rng = np.random.default_rng(0)
    return ["".join(rng.choice(list("ACGT"), size=16)) for _ in range(40)]


def _word_level(vocab: dict[str, int]):
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    return tok


@pytest.mark.parametrize("name", NAMES)
def test_a_tokenizer_that_reads_no_token_is_refused_in_fit(name, dna):
    # An untrained tokenizers.Tokenizer read every string as no token: BERT
    # trained at a loss of 0 and transform gave every sample the same row.
    tokenizers = pytest.importorskip("tokenizers")
    untrained = tokenizers.Tokenizer(tokenizers.models.BPE())
    with pytest.raises(ValueError, match="reads no token in any string of X"):
        make(name, tokenizer=untrained).fit(dna)
    with pytest.raises(ValueError, match="reads no token"):  # WordPiece: no word
        make(name, tokenizer="wordpiece").fit(["   ", "\t\n", " "])


@pytest.mark.parametrize("name", NAMES)
def test_a_tokenizer_that_knows_none_of_x_is_refused_in_fit(name):
    tok = _word_level({"[UNK]": 0, "cat": 1})
    with pytest.raises(ValueError, match=r"every token .* \(4\) is unknown"):
        make(name, tokenizer=tok).fit(["dog bird", "fish ant"])
    # One known token is enough to learn from.
    est = make(name, tokenizer=tok).fit(["dog cat", "cat ant"])
    assert est.transform(["cat"]).shape == (1, 8)


def test_a_failing_hugging_face_tokenizer_names_the_tokenizer(dna):
    # An untrained WordLevel model has no [UNK]: tokenizers raised a bare
    # Exception ("Missing [UNK] token") from inside encode_batch.
    tok = _word_level({})
    with pytest.raises(ValueError, match="tokenizer could not encode X.*train it"):
        make("BERTTransformer", tokenizer=tok).fit(dna)


@pytest.mark.parametrize("name", NAMES)
def test_text_the_vocabulary_cannot_read_warns_in_transform(name, dna):
    est = make(name).fit(dna)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # text like the training data: silent
        est.transform(dna[:5])
        est.transform(["ACGTNN"])  # a third unknown: within the bound
    lower = [s.lower() for s in dna[:5]]
    with pytest.warns(UserWarning, match=r"100% of the tokens of X .* 'acgt'"):
        Z = est.transform(lower)
    assert np.ptp(Z, axis=0).max() < 1e-5  # why it warns: every row the same
    with pytest.warns(UserWarning, match="unknown to the vocabulary"):
        est.set_params(warm_start=True, max_epochs=1).fit(lower)


def test_the_warning_allows_for_a_small_vocabulary(dna):
    # vocab_size=2 leaves about half the training tokens unknown: new text
    # with as many is no news, all unknown is.
    est = make("GPTTransformer", vocab_size=2).fit(dna)
    assert 0.3 < est._unknown_fraction < 0.7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.transform(dna[:5])
    with pytest.warns(UserWarning, match="unknown to the vocabulary"):
        est.transform(["NNNN"])


@pytest.mark.parametrize("name", NAMES)
def test_a_refused_warm_start_warns_nothing_first(name, dna):
    # X was encoded with the new max_length before the warm start was
    # refused: a warning said to raise max_length, then the error to set it
    # back.
    est = make(name, warm_start=True).fit(dna)
    est.set_params(max_length=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="it was fitted with max_length"):
            est.fit(dna)


@pytest.mark.parametrize("name", NAMES)
def test_a_max_length_past_memory_is_named_with_the_longest_sequence(name, dna):
    # The position table has max_length + 2 rows: torch's allocator refused
    # 10**12 of them with a RuntimeError that did not say which parameter.
    with pytest.raises(
        ValueError, match=r"positions, max_length=10+ .* longest sequence of X has 16"
    ):
        make(name, max_length=10**12).fit(dna)
    # Another table too large: the message gives every size, blaming none.
    with pytest.raises(ValueError, match=r"could not allocate.*embed_dim=1048576"):
        make(name, embed_dim=2**20, max_length=16).fit(dna)


def test_a_fine_tuner_cut_names_the_representations_max_length(dna):
    rep = make("BERTTransformer", max_length=8)
    with pytest.warns(UserWarning, match="Raise max_length"):
        rep.fit(dna)  # the representation's own fit: its own parameter
    clf = FineTuner(rep, max_epochs=1, random_state=0, device="cpu")
    with pytest.warns(
        UserWarning,
        match=r"a BERTTransformer fitted with max_length=8 .* pre-train the "
        "representation with a larger max_length",
    ) as caught:
        clf.fit(dna, np.arange(40) % 2)
    assert not any("Raise max_length" in str(w.message) for w in caught)


def test_prompts_and_pretrain_x_are_named_in_their_errors(dna):
    gpt = make("GPTTransformer").fit(dna)
    with pytest.raises(ValueError, match=r"prompts\[1\] is a missing value"):
        gpt.generate(["AC", None])
    with pytest.raises(TypeError, match=r"prompts\[0\] is bytes"):
        gpt.generate([b"AC"])
    # A count where the prompts go: sklearn-minded users write generate(3).
    with pytest.raises(TypeError, match=r"not a count; got 3.*generate\(n_samples=3\)"):
        gpt.generate(3)
    y = np.arange(40) % 2
    clf = FineTuner(make("GPTTransformer"), max_epochs=1, device="cpu")
    with pytest.raises(ValueError, match=r"pretrain_X\[2\] is a missing value"):
        clf.fit(dna, y, pretrain_X=["AC", "GT", None])


@pytest.mark.parametrize("estimator", [FineTuner, FineTunerRegressor])
def test_pretrain_x_of_another_kind_is_refused_before_pre_training(estimator, dna):
    # Integer ids to pre-train on for string X: the representation was
    # pre-trained first, and only the fine-tuning then refused X, naming
    # neither pretrain_X nor the kinds.
    rep = make("GPTTransformer")
    with (
        pytest.MonkeyPatch.context() as patch,
        pytest.raises(TypeError, match="pretrain_X holds integer token ids but X"),
    ):
        patch.setattr(GPTTransformer, "fit", _no_pretraining)
        estimator(rep, max_epochs=1, device="cpu").fit(
            dna, np.arange(40) % 2, pretrain_X=[[1, 2, 3], [4, 5]]
        )
    with pytest.raises(TypeError, match="pretrain_X holds strings but X holds int"):
        estimator(make("GPTTransformer"), max_epochs=1, device="cpu").fit(
            [[1, 2, 3], [4, 5]] * 10, np.arange(20) % 2, pretrain_X=dna
        )


def _no_pretraining(self, X, y=None):
    raise AssertionError("the representation was pre-trained before the check")


def test_a_one_pass_pretrain_x_is_read_once_and_used(dna):
    clf = FineTuner(make("GPTTransformer"), max_epochs=1, random_state=0, device="cpu")
    clf.fit(dna, np.arange(40) % 2, pretrain_X=(s for s in dna + dna))
    reference = FineTuner(
        make("GPTTransformer"), max_epochs=1, random_state=0, device="cpu"
    ).fit(dna, np.arange(40) % 2, pretrain_X=dna + dna)
    np.testing.assert_array_equal(clf.transform(dna), reference.transform(dna))


@pytest.mark.parametrize(
    "X", [["AC", "GT"], ("AC", "GT"), np.array(["AC", "GT"], dtype=object)]
)
def test_strings_for_an_array_representation_point_to_a_sequence_model(X):
    # The default AutoencoderTransformer met numpy's "could not convert
    # string to float" inside check_array, with no hint.
    with pytest.raises(TypeError, match=r"\(the default\).*BERTTransformer"):
        FineTuner(max_epochs=1).fit(X, [0, 1])
    with pytest.raises(TypeError, match=r"\(PCATransformer\) reads arrays"):
        from sk_replearn import PCATransformer

        FineTunerRegressor(PCATransformer(1), max_epochs=1).fit(X, [0.0, 1.0])


@pytest.mark.parametrize(
    "X",
    [
        [[1.0, 2.0]],
        [[1, 2.5]],
        [np.array([1.5, 2.0])],
        [torch.tensor([1.0, 2.0])],
    ],
)
def test_float_token_ids_are_named_as_such(X):
    with pytest.raises(TypeError, match=r"X\[0\] is a sequence of non-integer"):
        make("GPTTransformer").fit(X)


def test_token_ids_as_1d_tensors_read_as_lists():
    # A list of 1-D integer tensors was refused ("X[0] is a Tensor"), where
    # a 2-D tensor and a list of 1-D arrays were read.
    lists = [[5, 6, 7], [8, 9], [5, 9, 9, 6]] * 4
    tensors = [torch.tensor(s) for s in lists]
    gpt = make("GPTTransformer").fit(tensors)
    np.testing.assert_array_equal(
        gpt.transform(tensors), make("GPTTransformer").fit(lists).transform(lists)
    )


@pytest.mark.parametrize("name", NAMES)
def test_unordered_input_is_refused(name, dna):
    # A set was read in its iteration order, so that transform's rows matched
    # no order the user knew; a dict was read as its keys.
    with pytest.raises(TypeError, match=r"got a set, whose order is arbitrary"):
        make(name).fit(set(dna))
    est = make(name).fit(dna)
    with pytest.raises(TypeError, match=r"got a frozenset.*sorted\(X\)"):
        est.transform(frozenset(dna))
    with pytest.raises(TypeError, match=r"iterates over its keys.*X.values"):
        est.transform(dict(enumerate(dna)))
