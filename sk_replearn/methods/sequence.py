"""GPTTransformer and BERTTransformer: predictive learning of token sequences."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._docstrings import fill_doc
from .._util import is_int
from ..base import fit_context, store_params
from ..objectives.sequence import BERTObjective, GPTObjective
from ..tokens import check_sequences
from ._sequence_base import _SequenceTransformer
from ._sequence_queries import (
    check_generate,
    fill_mask_candidates,
    generated_texts,
    next_token_candidates,
)

__all__ = ["BERTTransformer", "GPTTransformer"]

#: Seed of the masks drawn by :meth:`BERTTransformer.score`.
_SCORE_SEED = 0

#: What the sequence estimators say differently of the shared parameters.
SEQUENCE_DOCS = {
    "batch_size": "Sequences per optimisation step.",
    "loss_curve_": "Training loss (mean cross-entropy per predicted token, in "
    "nats) at each epoch.",
    "net_": """\
The trained skorch net; ``net_.module_`` is the objective, whose
``encoder`` is a :class:`~sk_replearn.nn.sequence.TokenEncoder`.""",
}


@fill_doc(SEQUENCE_DOCS)
class GPTTransformer(_SequenceTransformer):
    """Next-token prediction representation (GPT) of strings or token sequences.

    Each sequence is cut into tokens (characters by default), framed as
    ``[CLS] t_1 ... t_n [SEP]``, and a causal transformer (each token sees
    only the ones before it) is trained to predict every next token, the
    output layer tied to the token embedding [1]_. To predict well it must
    learn the statistics of the sequences: words and phrases in prose,
    motifs in proteins, ring and branch syntax in SMILES. A sequence longer
    than ``max_length`` tokens is cut, with a warning, to its first
    ``max_length + 1``, the last in the place of ``[SEP]``: the text goes on,
    so the model learns no end at the cut.

    :meth:`transform` pools the hidden states of each sequence (the mean
    over its tokens, or its last token, ``[SEP]``, which has read all of
    it). :meth:`score` is the mean log-likelihood per token (minus the
    cross-entropy; higher is better) and :meth:`generate` samples new
    sequences.

    Parameters
    ----------
    {params tokenizer..dropout}
    pooling : {"mean", "last"}, default="mean"
        Representation given by :meth:`transform`: the mean of the hidden
        states over the sequence's tokens, or the hidden state of its last
        token.
    conv_kernel_size : int or None, default=5
        Width of a causal convolution over each token and the
        ``conv_kernel_size - 1`` before it, added before every transformer
        block (:class:`~sk_replearn.nn.sequence.ConvMixer`); None for
        none. On 3,900 peptides a width of 5 lifted the linear probe from
        0.868 to 0.892.
    {params max_epochs..accelerator}

    Attributes
    ----------
    vocabulary_ : dict of str to int
        Every token and its id, the special tokens ``[PAD]``, ``[UNK]``,
        ``[CLS]``, ``[SEP]``, ``[MASK]`` first.
    vocab_size_ : int
        Number of ids.
    n_components_ : int
        Width of the representation, ``embed_dim``.
    {attributes net_ training}

    See Also
    --------
    BERTTransformer : Masked-token prediction, reading both directions.

    References
    ----------
    .. [1] A. Radford, K. Narasimhan, T. Salimans and I. Sutskever.
       "Improving Language Understanding by Generative Pre-Training." 2018.

    Examples
    --------
    >>> from sk_replearn import GPTTransformer
    >>> X = ["GATTACA", "CATTAG", "TAGACAT", "ACATTAG"] * 10
    >>> gpt = GPTTransformer(embed_dim=16, depth=1, num_heads=2, max_epochs=2,
    ...                      random_state=0).fit(X)
    >>> gpt.transform(["GATTACA", "CAT"]).shape
    (2, 16)
    >>> sorted(gpt.vocabulary_)[:6]
    ['A', 'C', 'G', 'T', '[CLS]', '[MASK]']
    >>> gpt.score(X) < 0
    True
    >>> len(gpt.generate(n_samples=3, max_new_tokens=5, random_state=0))
    3
    """

    _parameter_constraints: dict = {
        **_SequenceTransformer._parameter_constraints,
        "pooling": [StrOptions({"mean", "last"})],
    }
    #: A text cut at max_length goes on: its next token, not [SEP], follows.
    _cut_continues = True

    def __init__(
        self,
        tokenizer="char",
        *,
        vocab_size: int | None = None,
        token_pattern: str = r"(?u)\w+|[^\w\s]",
        max_length: int = 256,
        embed_dim: int = 128,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
        pooling: str = "mean",
        conv_kernel_size: int | None = 5,
        max_epochs: int = 15,
        batch_size: int = 64,
        lr: float = 1e-3,
        optimizer="adamw",
        weight_decay: float = 0.01,
        lr_schedule: str | None = "cosine",
        warmup_epochs: int = 1,
        callbacks: list | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        device="auto",
        precision: str = "32",
        compile: bool = False,
        verbose: int = 0,
        random_state=None,
        warm_start: bool = False,
        checkpoint_dir=None,
        transform_layer: int = -1,
        accelerator=None,
    ) -> None:
        store_params(self, locals())

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None) -> GPTTransformer:
        """Learn the vocabulary and train the language model on X.

        Parameters
        ----------
        X : iterable of str, or integer sequences
            Training sequences: strings, or integer token ids (a list of
            int sequences, or a 2-D int array padded with -1).
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : GPTTransformer
            The fitted estimator.
        """
        return self._fit_sequences(X)

    def score(self, X, y=None) -> float:
        """Mean log-likelihood per token of X (higher is better).

        Parameters
        ----------
        X : iterable of str, or integer sequences
            Sequences of the kind ``fit`` got.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Minus the mean negative log-likelihood (in nats) of the tokens
            ``t_1 ... t_n [SEP]`` of every sequence, each predicted from
            the ones before it, averaged over all tokens of X.

        Notes
        -----
        Scores compare fits with the same ``tokenizer`` and ``vocab_size``
        only: a coarser tokenizer leaves fewer, harder tokens to predict,
        and a small vocabulary maps much of the text to ``[UNK]``, an easy
        token. Choose those by a downstream score (a pipeline ending in the
        task's model), not by this one.
        """
        sums = self._apply(X, lambda m, ids: m.token_nll(ids), 2).astype(np.float64)
        return -float(sums[:, 0].sum() / max(sums[:, 1].sum(), 1.0))

    def generate(
        self,
        prompts=None,
        *,
        n_samples: int = 1,
        max_new_tokens: int = 100,
        temperature: float = 1.0,
        top_k: int | None = None,
        random_state=None,
    ) -> list[str]:
        """Sample new sequences from the language model.

        Each sequence is drawn token by token from the model's predicted
        distribution (divided by ``temperature``, cut to the ``top_k``
        most likely tokens), until ``[SEP]`` or ``max_new_tokens``.

        Parameters
        ----------
        prompts : iterable of str or None, default=None
            Beginnings to continue; None starts from nothing.
        n_samples : int, default=1
            Sequences drawn per prompt.
        max_new_tokens : int, default=100
            Most tokens added to each prompt.
        temperature : float, default=1.0
            Above 0; lower values give more likely, less varied text.
        top_k : int or None, default=None
            Sample only among the ``top_k`` most likely tokens.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws.

        Returns
        -------
        texts : list of str
            ``n_samples`` texts per prompt, prompt-major, each beginning
            with its prompt: with ``tokenizer="char"`` as given, unseen
            characters included (the model read them as ``[UNK]``); else as
            the vocabulary reads it, with ``tokenizer="word"`` its known
            words joined by single spaces (words unseen in ``fit`` are left
            out, as ``[UNK]`` is); for integer input, the ids,
            space-separated. A text drawn from nothing begins with a word,
            never with a piece that continues one (WordPiece's ``"##ing"``).
            Temperatures so low
            that the division overflows (1e-45) pick the likeliest token.
        """
        check_is_fitted(self, "net_")
        check_generate(n_samples, max_new_tokens, temperature, top_k)
        codec = self._codec()
        if prompts is None:
            prompts = [""] if codec.kind != "ids" else [np.zeros(0, np.int64)]
        elif is_int(prompts):
            raise TypeError(
                f"GPTTransformer.generate's first argument, prompts, is the "
                f"beginnings to continue (a list of str), not a count; got "
                f"{prompts!r}. For {prompts} sequences drawn from nothing, call "
                f"generate(n_samples={prompts})."
            )
        else:
            kind, prompts = check_sequences(
                prompts, "GPTTransformer.generate", "prompts"
            )
            self._same_kind(kind, "GPTTransformer", "prompts")
        return generated_texts(
            self, prompts, n_samples, max_new_tokens, temperature, top_k, random_state
        )

    def predict_next(self, prompts, *, top_k: int = 5) -> list[list[tuple[str, float]]]:
        """The most likely next tokens of each prompt, with their probabilities.

        What the language model predicts after a prefix: "The students
        opened their" is followed by "books" or "laptops" with the
        probabilities the model gives them.

        Parameters
        ----------
        prompts : iterable of str, or integer sequences
            Beginnings of sequences, of the kind ``fit`` got (an empty
            string asks for the first token). A prompt longer than
            ``max_length + 1`` tokens is read by its last ones, as
            :meth:`generate` reads it.
        top_k : int, default=5
            How many tokens to list per prompt.

        Returns
        -------
        candidates : list of list of (str, float)
            For each prompt, its ``top_k`` most likely next tokens, most
            likely first, each named as in ``vocabulary_`` with its
            probability under the model (the softmax over the whole
            vocabulary). The end of the sequence is ``"[SEP]"``, a token
            unseen in ``fit`` is ``"[UNK]"``; for integer input the ids
            are named as strings (``"7"``).

        See Also
        --------
        generate : Sample whole continuations.

        Examples
        --------
        >>> from sk_replearn import GPTTransformer
        >>> X = ["ABCABCABC", "ABCABC", "ABCABCABCABC"] * 10
        >>> gpt = GPTTransformer(embed_dim=16, depth=1, num_heads=2,
        ...                      max_epochs=20, random_state=0).fit(X)
        >>> [token for token, p in gpt.predict_next(["ABCA"], top_k=1)[0]]
        ['B']
        """
        check_is_fitted(self, "net_")
        return next_token_candidates(self, prompts, top_k)

    def _build_objective(self) -> GPTObjective:
        return GPTObjective(
            self.vocab_size_, self.max_length + 2, **self._encoder_kwargs()
        )


@fill_doc(SEQUENCE_DOCS)
class BERTTransformer(_SequenceTransformer):
    """Masked-token prediction representation (BERT) of strings or token sequences.

    Each sequence is cut into tokens (characters by default), framed as
    ``[CLS] t_1 ... t_n [SEP]``; in training ``mask_ratio`` of the tokens
    of each sequence are chosen, and of those 80% are replaced by
    ``[MASK]``, 10% by a random token and 10% left as they are. A
    bidirectional transformer reads the corrupted sequence and predicts the
    chosen tokens, the output layer tied to the token embedding [1]_.
    Filling in a token from both sides of its context makes the hidden
    states carry what the whole sequence says about each position.

    :meth:`transform` pools the hidden states (their mean over the
    sequence's tokens, or the ``[CLS]`` state); :meth:`score` is the
    accuracy of the masked-token predictions.

    Parameters
    ----------
    {params tokenizer..tokenizer}
    mask_ratio : float, default=0.15
        Fraction of each sequence's tokens chosen for prediction, in
        (0, 1); at least one per non-empty sequence.
    {params vocab_size..dropout}
    pooling : {"mean", "cls"}, default="mean"
        Representation given by :meth:`transform`: the mean of the hidden
        states over the sequence's tokens, or the state of ``[CLS]``.
        Without fine-tuning the mean probes better (``[CLS]`` is trained
        by no objective here; BERT trained it by next-sentence
        prediction).
    conv_kernel_size : int or None, default=5
        Width of a convolution over neighbouring tokens added before every
        transformer block (:class:`~sk_replearn.nn.sequence.ConvMixer`, as
        ConvBERT mixes local spans [2]_); None for none. On 3,900
        peptides a width of 5 lifted the linear probe from 0.867 to 0.892
        (3: 0.876, 9: 0.875) and the masked-token accuracy from 0.21 to
        0.27, for 15% more training time.
    {params max_epochs..accelerator}

    Attributes
    ----------
    vocabulary_ : dict of str to int
        Every token and its id, the special tokens ``[PAD]``, ``[UNK]``,
        ``[CLS]``, ``[SEP]``, ``[MASK]`` first.
    vocab_size_ : int
        Number of ids.
    n_components_ : int
        Width of the representation, ``embed_dim``.
    {attributes net_ training}

    See Also
    --------
    GPTTransformer : Next-token prediction; also generates sequences.
    MAETransformer : Masked prediction of image, signal and table tokens.

    References
    ----------
    .. [1] J. Devlin, M.-W. Chang, K. Lee and K. Toutanova. "BERT:
       Pre-training of Deep Bidirectional Transformers for Language
       Understanding." NAACL 2019.
    .. [2] Z. Jiang, W. Yu, D. Zhou, Y. Chen, J. Feng and S. Yan.
       "ConvBERT: Improving BERT with Span-based Dynamic Convolution."
       NeurIPS 2020.

    Examples
    --------
    >>> from sk_replearn import BERTTransformer
    >>> X = ["GATTACA", "CATTAG", "TAGACAT", "ACATTAG"] * 10
    >>> bert = BERTTransformer(embed_dim=16, depth=1, num_heads=2, max_epochs=2,
    ...                        random_state=0).fit(X)
    >>> bert.transform(X[:3]).shape
    (3, 16)
    >>> 0 <= bert.score(X) <= 1
    True
    """

    _parameter_constraints: dict = {
        **_SequenceTransformer._parameter_constraints,
        "mask_ratio": [Interval(Real, 0, 1, closed="neither")],
        "pooling": [StrOptions({"mean", "cls"})],
    }

    def __init__(
        self,
        tokenizer="char",
        *,
        mask_ratio: float = 0.15,
        vocab_size: int | None = None,
        token_pattern: str = r"(?u)\w+|[^\w\s]",
        max_length: int = 256,
        embed_dim: int = 128,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
        pooling: str = "mean",
        conv_kernel_size: int | None = 5,
        max_epochs: int = 15,
        batch_size: int = 64,
        lr: float = 1e-3,
        optimizer="adamw",
        weight_decay: float = 0.01,
        lr_schedule: str | None = "cosine",
        warmup_epochs: int = 1,
        callbacks: list | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        device="auto",
        precision: str = "32",
        compile: bool = False,
        verbose: int = 0,
        random_state=None,
        warm_start: bool = False,
        checkpoint_dir=None,
        transform_layer: int = -1,
        accelerator=None,
    ) -> None:
        store_params(self, locals())

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None) -> BERTTransformer:
        """Learn the vocabulary and train the masked-token model on X.

        Parameters
        ----------
        X : iterable of str, or integer sequences
            Training sequences: strings, or integer token ids (a list of
            int sequences, or a 2-D int array padded with -1).
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : BERTTransformer
            The fitted estimator.
        """
        return self._fit_sequences(X)

    def score(self, X, y=None) -> float:
        """Accuracy of the masked-token predictions on X (higher is better).

        ``mask_ratio`` of each sequence's tokens are replaced by ``[MASK]``
        and predicted from the rest. Which are masked is drawn from a fixed
        seed and the sequence's own tokens, so a sequence is masked alike
        whatever the other rows of X and their order: a model's score on
        the same sequences is always the same.

        Parameters
        ----------
        X : iterable of str, or integer sequences
            Sequences of the kind ``fit`` got.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Fraction of the masked tokens predicted right, over all of X.

        Raises
        ------
        ValueError
            If X holds no token to mask.

        Notes
        -----
        Scores compare fits with the same ``tokenizer``, ``vocab_size`` and
        ``mask_ratio`` only: ``mask_ratio`` sets the task that is scored (a
        few hidden tokens are easier to predict than many), and a small
        vocabulary maps much of the text to ``[UNK]``, an easy token.
        Choose those by a downstream score (a pipeline ending in the task's
        model), not by this one.
        """
        sums = self._apply(
            X, lambda m, ids: m.masked_accuracy(ids, _SCORE_SEED), 2
        ).astype(np.float64)
        if sums[:, 1].sum() == 0:
            raise ValueError(
                "BERTTransformer.score: X holds no token to predict (every "
                "sequence is empty, or holds only tokens unseen in fit); "
                "score sequences with at least one known token."
            )
        return float(sums[:, 0].sum() / sums[:, 1].sum())

    def fill_mask(
        self, X, *, mask_token="[MASK]", top_k: int = 5
    ) -> list[list[list[tuple[str, float]]]]:
        """The most likely tokens at each masked position, with their probabilities.

        BERT's own task on new text: each ``mask_token`` in a sequence
        hides one token, and the model predicts it from both sides of its
        context ("The students opened their [MASK] to page ten").

        Parameters
        ----------
        X : iterable of str, or integer sequences
            Sequences of the kind ``fit`` got, each holding at least one
            ``mask_token`` within its first ``max_length`` tokens.
        mask_token : str or int, default="[MASK]"
            What marks a hidden token: a text in strings (one token
            whatever the tokenizer; with a subword tokenizer the space
            before it goes with it, as it would with the word it hides),
            or, for integer input, an int (every position holding it is
            hidden, e.g. one above the largest id seen in ``fit``).
        top_k : int, default=5
            How many tokens to list per mask.

        Returns
        -------
        candidates : list of list of list of (str, float)
            For each sequence, for each of its masks from left to right,
            the ``top_k`` most likely tokens, most likely first, each named
            as in ``vocabulary_`` with its probability under the model
            (the softmax over the whole vocabulary). The masks of one
            sequence are predicted together, as in training, each without
            the others' tokens.

        Raises
        ------
        ValueError
            If a sequence holds no mask, or one beyond ``max_length``.

        Examples
        --------
        >>> from sk_replearn import BERTTransformer
        >>> X = ["ABCABCABC", "ABCABC", "ABCABCABCABC"] * 10
        >>> bert = BERTTransformer(embed_dim=16, depth=1, num_heads=2,
        ...                        max_epochs=30, random_state=0).fit(X)
        >>> [c[0][0] for c in bert.fill_mask(["ABCA[MASK]CAB"])[0]]
        ['B']
        """
        check_is_fitted(self, "net_")
        return fill_mask_candidates(self, X, mask_token, top_k)

    def _build_objective(self) -> BERTObjective:
        return BERTObjective(
            self.vocab_size_,
            self.max_length + 2,
            mask_ratio=self.mask_ratio,
            **self._encoder_kwargs(),
        )
