"""What a fitted language model predicts: next tokens and whole texts (GPT),
masked tokens (BERT).

The work behind :meth:`GPTTransformer.predict_next`,
:meth:`GPTTransformer.generate` and :meth:`BERTTransformer.fill_mask`:
reading the prompts or the masked texts, running the trained objective in
batches (token by token, for the texts generated), and naming the most
likely tokens with their probabilities.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch

from .._seeding import seed_from_random_state
from .._util import is_int
from ..tokens import (
    CLS,
    MASK,
    N_SPECIAL,
    PAD,
    SEP,
    SPECIAL_TOKENS,
    check_sequences,
    pad_sequences,
    warn_unknown,
)

#: Sequences per forward pass of the queries (their memory stays flat in X).
_QUERY_BATCH = 64

Candidates = list[tuple[str, float]]


def check_top_k(top_k, owner: str) -> None:
    """``top_k`` is an int >= 1."""
    if not is_int(top_k) or top_k < 1:
        raise ValueError(
            f"{owner}: top_k={top_k!r} must be an int >= 1 (how many of the "
            "most likely tokens to list)."
        )


def _token_names(codec) -> list[str]:
    """The name of every id, as ``vocabulary_`` spells it."""
    return list(SPECIAL_TOKENS) + list(codec.tokens)


def never_predicted(codec) -> list[int]:
    """Ids of the vocabulary that no sequence holds: a Hugging Face
    tokenizer's own unknown token, which :meth:`Codec.encode` reads as
    ``[UNK]``."""
    unk = codec.state.get("unk") if codec.kind == "hf" else None
    return [] if unk is None else [unk + N_SPECIAL]


def _ranked(probs: torch.Tensor, allowed: torch.Tensor, names, top_k: int):
    """The ``top_k`` allowed ids of each row of ``probs``, most likely first.

    ``allowed`` is one mask ``(V,)`` for every row.
    """
    scores = probs.masked_fill(~allowed, -1.0)  # (B, V)
    k = min(top_k, int(allowed.sum()))
    values, ids = scores.topk(k, dim=1)
    return [
        [(names[i], float(p)) for i, p in zip(row_ids, row_p)]
        for row_ids, row_p in zip(ids.tolist(), values.tolist())
    ]


def next_token_candidates(est, prompts, top_k: int) -> list[Candidates]:
    """The ``top_k`` likeliest next tokens of each prompt and their probabilities.

    Each prompt is read as ``[CLS] t_1 ... t_n``, its last ``max_length + 1``
    tokens if longer (the window :meth:`GPTTransformer.generate` reads); the
    candidates are the tokens the model was trained to predict: every text
    token, ``[UNK]`` and ``[SEP]`` (the end of the sequence).
    """
    owner = "GPTTransformer.predict_next"
    check_top_k(top_k, owner)
    if is_int(prompts):
        raise TypeError(
            f"{owner}'s first argument, prompts, is the beginnings whose next "
            f"token is asked (a list of str); got {prompts!r}."
        )
    kind, prompts = check_sequences(prompts, owner, "prompts")
    codec = est._same_kind(kind, type(est).__name__, "prompts")
    encoded = codec.encode(prompts, name="prompts")
    warn_unknown(encoded, getattr(est, "_unknown_fraction", 0.0), owner, "prompts")
    module = est._module()
    device = next(module.parameters()).device
    window = module.encoder.pos_embed.shape[1] - 1
    allowed = torch.ones(module.vocab_size, dtype=torch.bool)
    allowed[[PAD, CLS, MASK, *never_predicted(codec)]] = False  # never targets
    names = _token_names(codec)
    out: list[Candidates] = []
    for start in range(0, len(encoded), _QUERY_BATCH):
        rows = [[CLS, *ids][-window:] for ids in encoded[start : start + _QUERY_BATCH]]
        lengths = torch.tensor([len(r) for r in rows])
        ids = torch.full((len(rows), int(lengths.max())), PAD, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        with torch.inference_mode():
            # Causal: a prompt's last state does not read the padding after it.
            hidden = module.encoder.forward_tokens(ids.to(device))
            rows_at = torch.arange(len(rows), device=device)
            last = hidden[rows_at, (lengths - 1).to(device)]  # one device
            probs = module.logits(last).float().softmax(dim=1).cpu()
        out.extend(_ranked(probs, allowed, names, top_k))
    return out


def _mask_token_ids(codec, sequences, mask_token, owner: str) -> list[list[int]]:
    """Ids of each sequence with ``[MASK]`` where it holds ``mask_token``."""
    if codec.kind == "ids":
        if not is_int(mask_token):
            raise TypeError(
                f"{owner}: the model was fitted on integer token ids, so the "
                "hidden positions are marked by an integer: pass mask_token=<int>, "
                f"an id that marks them in X (e.g. {codec.state['n_ids']}, one "
                f"above the largest id seen in fit); got mask_token={mask_token!r}."
            )
        out = []
        for s in sequences:
            hidden = s == mask_token
            ids = np.where(hidden, 0, s)
            row = codec.encode([ids], name="X")[0]
            out.append([MASK if h else i for i, h in zip(row, hidden.tolist())])
        return out
    if not isinstance(mask_token, str) or not mask_token:
        raise TypeError(
            f"{owner}: mask_token={mask_token!r} must be a non-empty str, the "
            "text that marks each hidden token in X (default '[MASK]')."
        )
    out = []
    for s in sequences:
        pieces = s.split(mask_token)
        if codec.kind == "hf":
            # A subword vocabulary carries a word's space with the word
            # (byte-level BPE's "Ġbooks"): the space before a mask is its.
            pieces = [p.rstrip() for p in pieces[:-1]] + pieces[-1:]
        parts = codec.encode(pieces, name="X")
        row = list(parts[0])
        for part in parts[1:]:
            row += [MASK, *part]
        out.append(row)
    return out


def fill_mask_candidates(est, X, mask_token, top_k: int) -> list[list[Candidates]]:
    """For each sequence of X, the ``top_k`` likeliest tokens at each of its masks."""
    owner = "BERTTransformer.fill_mask"
    check_top_k(top_k, owner)
    kind, sequences = check_sequences(X, owner)
    codec = est._same_kind(kind, type(est).__name__, "X")
    encoded = _mask_token_ids(codec, sequences, mask_token, owner)
    module = est._module()
    device = next(module.parameters()).device
    longest = module.encoder.pos_embed.shape[1] - 2
    for i, row in enumerate(encoded):
        if MASK not in row:
            raise ValueError(
                f"{owner}: X[{i}] holds no {mask_token!r}; mark each token to "
                f"predict with mask_token={mask_token!r} (e.g. 'The students "
                "opened their [MASK].' with tokenizer='word')."
            )
        if MASK in row[longest:]:
            raise ValueError(
                f"{owner}: X[{i}] has a mask beyond its first max_length="
                f"{longest} tokens, which the model cannot read; shorten the "
                "sequence around its masks."
            )
    shown = [[t for t in row if t != MASK] for row in encoded]
    warn_unknown(shown, getattr(est, "_unknown_fraction", 0.0), owner)
    # [CLS] ids [SEP], padded; one warning names the sequences it cuts.
    padded, lengths = pad_sequences(
        encoded,
        longest,
        owner,
        "The model reads their first max_length tokens, which hold every mask.",
    )
    allowed = torch.zeros(module.vocab_size, dtype=torch.bool)
    allowed[N_SPECIAL:] = True  # BERT predicts text tokens only
    allowed[never_predicted(codec)] = False
    names = _token_names(codec)
    out: list[list[Candidates]] = []
    for start in range(0, len(encoded), _QUERY_BATCH):
        stop = start + _QUERY_BATCH
        width = int(lengths[start:stop].max())
        ids = padded[start:stop, :width].long().to(device)
        chosen = ids == MASK
        with torch.inference_mode():
            probs = module.predict_masked(ids, chosen).float().softmax(dim=1).cpu()
        ranked = iter(_ranked(probs, allowed, names, top_k))
        # predict_masked orders the masks row by row, left to right.
        for n in chosen.sum(dim=1).tolist():
            out.append([next(ranked) for _ in range(n)])
    return out


def _tempered(logits: torch.Tensor, temperature: float, banned: torch.Tensor):
    """``logits / temperature``, banned ids at -inf, finite for any temperature.

    A temperature so low that the division overflows float32 (1e-45) is
    greedy decoding: the logits are shifted by their maximum first, so that
    the best id keeps 0 and the others fall to -inf instead of inf - inf.
    """
    out = (logits / temperature).masked_fill(banned, -torch.inf)
    if torch.isfinite(out.amax(dim=1)).all():
        return out
    allowed = logits.masked_fill(banned, -torch.inf)
    return ((allowed - allowed.amax(dim=1, keepdim=True)) / temperature).nan_to_num(
        nan=-torch.inf
    )


def check_generate(n_samples, max_new_tokens, temperature, top_k) -> None:
    """Refuse, by name, arguments of ``generate`` it cannot sample with."""
    for name, value in (("n_samples", n_samples), ("max_new_tokens", max_new_tokens)):
        if not is_int(value) or value < 1:
            raise ValueError(f"{name}={value!r} must be an int >= 1.")
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, Real)
        or not (temperature > 0)
    ):
        raise ValueError(
            f"temperature={temperature!r} must be a float > 0 (1 samples the "
            "model's distribution; lower is more conservative)."
        )
    if top_k is not None and (not is_int(top_k) or top_k < 1):
        raise ValueError(f"top_k={top_k!r} must be an int >= 1 or None.")


def generated_texts(
    est, prompts, n_samples, max_new_tokens, temperature, top_k, random_state
) -> list[str]:
    """The texts :meth:`GPTTransformer.generate` samples from fitted ``est``.

    ``prompts`` are checked sequences of the kind ``est`` was fitted on,
    the other arguments checked by :func:`check_generate`; the draws come
    from a generator seeded by ``random_state``, on the CPU whatever the
    model's device.
    """
    codec = est._codec()
    module = est._module()
    device = next(module.parameters()).device
    positions = module.encoder.pos_embed.shape[1]
    generator = torch.Generator().manual_seed(seed_from_random_state(random_state))
    banned = torch.ones(module.vocab_size, dtype=torch.bool)
    banned[N_SPECIAL:] = False
    banned[SEP] = False  # the model may end the sequence
    banned[never_predicted(codec)] = True  # a subword vocabulary's own [UNK]
    # Nor may a text begin with a piece that continues a word ("##ing").
    banned_first = banned.clone()
    banned_first[codec.continuations()] = True
    texts = []
    for prompt, ids in zip(prompts, codec.encode(prompts, name="prompts")):
        context = torch.tensor([CLS, *ids], dtype=torch.long)[-(positions - 1) :]
        seqs = context.repeat(n_samples, 1).to(device)  # (n, L)
        new = torch.full((n_samples, 0), PAD, dtype=torch.long, device=device)
        done = torch.zeros(n_samples, dtype=torch.bool, device=device)
        with torch.inference_mode():
            for step in range(max_new_tokens):
                # Only the unfinished samples go through the model: a
                # finished one grows by [PAD]s, and a window of nothing
                # but [PAD] has no token to attend to (NaN logits). The
                # finished rows' draws are discarded below.
                logits = torch.zeros(n_samples, module.vocab_size)
                active = ~done.cpu()
                logits[active] = (
                    module.next_logits(seqs[active.to(device), -positions:])
                    .float()
                    .cpu()
                )
                # An empty prompt, or one of unknown tokens only, which
                # the decoder leaves out: the text begins with the draw.
                first = step == 0 and not any(i >= N_SPECIAL for i in ids)
                logits = _tempered(
                    logits, temperature, banned_first if first else banned
                )
                if top_k is not None and top_k < logits.shape[1]:
                    kth = logits.topk(top_k, dim=1).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, -torch.inf)
                nxt = torch.multinomial(logits.softmax(dim=1), 1, generator=generator)
                nxt = nxt.to(device).masked_fill(done[:, None], PAD)  # (n, 1)
                seqs, new = torch.cat([seqs, nxt], 1), torch.cat([new, nxt], 1)
                done |= nxt[:, 0] == SEP
                if bool(done.all()):
                    break
        for row in new.cpu().tolist():
            row = row[: row.index(SEP)] if SEP in row else row
            if codec.kind == "char":
                texts.append(prompt + codec.decode(row))
            else:
                texts.append(codec.decode(list(ids) + row))
    return texts
