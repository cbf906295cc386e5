"""Parameter and attribute documentation, written once for every estimator.

A parameter that several estimators share (the engine's ``max_epochs``,
``lr``, ``device``, ...; the two-view methods' ``views``; the fine-tuners'
``strategy``) is documented here once. An estimator's docstring names them
with a marker on a line of its own, which :func:`fill_doc` replaces:

* ``{params first..last}``: every parameter of the class's ``__init__``
  from ``first`` to ``last``, in signature order, with the class's own
  defaults;
* ``{attributes name_ other_ ...}``: the named fitted attributes, or
  groups of them (:data:`ATTRIBUTE_GROUPS`: ``training`` and ``input``).

An entry's text may hold format fields (``{hidden_default}``) that the
decorator's keyword arguments fill, and a class may replace the description
of an entry with ``docs={"lr": "..."}``. ``tests/test_docstrings.py``
checks that every public estimator documents exactly its signature, in
order.
"""

from __future__ import annotations

import inspect
import re
import textwrap

__all__ = ["ATTRIBUTES", "ATTRIBUTE_GROUPS", "PARAMETERS", "fill_doc"]

#: ``name -> (type, description)`` of every shared parameter.
PARAMETERS: dict[str, tuple[str, str]] = {
    # -- the encoder and the two-view methods' heads ----------------------
    "n_components": (
        "int or None",
        """\
Width of the representation, the number of columns of ``transform``'s
output. An int ends the encoder with a linear layer to ``n_components``
features (:class:`~sk_replearn.nn.Bottleneck`), trained with it, under
the projection head. None keeps the encoder's own width, given by
``n_components_`` after ``fit``: 256 for the default CNN on 8×8 images,
128 for the default ResNet on signals and for the default MLP on tables.""",
    ),
    "encoder": (
        '{"auto", "mlp", "cnn", "resnet", "vit"}, nn.Module class, nn.Module '
        "or callable",
        """\
The encoder network, whose output is the representation. "auto" picks
an MLP for tabular data, a CNN for images and a small ResNet for 1-D
signals (see ``input_shape``), which on MNIST-1D learns far better
features than the plain CNN. On small images (sides of at most 16, such
as 8x8 digits) the CNN's first block keeps the full resolution
(:func:`~sk_replearn.nn.auto_encoder_kwargs`). An encoder that a decoder
mirrors (the autoencoder's) stays the strided CNN on signals and
images. A class is called as ``encoder(input_shape=...,
**encoder_kwargs)``. A module instance (e.g. a torchvision ResNet with
``fc = nn.Identity()``) is copied at each fit,
never trained in place; any other callable is a factory called with no
arguments. A module of the user's is run on one zero batch before
training, which finds its width (or checks its ``out_features``); it
must map ``(B, *input_shape)`` to ``(B, width)``.""",
    ),
    "encoder_kwargs": (
        "dict or None",
        """\
Keyword arguments of the encoder, e.g. ``{{"hidden_sizes": (128,)}}`` for
"mlp" or ``{{"channels": (16, 32)}}`` for "cnn"; None uses its defaults.""",
    ),
    "decoder": (
        '{"auto", "mlp", "cnn", "vit"}, nn.Module class, nn.Module or callable',
        'The decoder; "auto" mirrors the encoder. A module instance is copied '
        "at each fit; any other callable is a factory of no arguments.",
    ),
    "decoder_kwargs": ("dict or None", "Keyword arguments of the decoder."),
    "views": (
        '"auto", views object or None',
        """\
The random augmentation that makes the two views of a sample, applied
to the standardised batch. "auto" picks
:class:`~sk_replearn.views.ImageViews`,
:class:`~sk_replearn.views.SequenceViews` or
:class:`~sk_replearn.views.TabularViews` by ``input_shape``, with their
defaults, and for single-channel images the small warps of handwriting
instead of crops (see :func:`~sk_replearn.views.make_views`); pass one
of these to set its parameters (they can be grid-searched as
``views__<param>``), or any callable mapping a batch to a batch of the
same shape. None uses the sample itself (no
augmentation: nothing to learn, for tests only).""",
    ),
    "projection_dim": (
        "int",
        "Output width of the projection head, where the loss is computed.",
    ),
    "hidden_dim": (
        "int or None",
        """\
Hidden width of the projection head; None uses {hidden_default}.""",
    ),
    "n_local_views": (
        '"auto" or int',
        """\
Multi-crop (Caron et al. 2020): small crops seen besides the two global
views, made by the views' ``local`` method
(:class:`~sk_replearn.views.ImageViews` and
:class:`~sk_replearn.views.SequenceViews`: ``local_crop_scale``,
``local_size``). They go to the network that predicts, the global views
also to the one that gives targets, so the representation learns to
match a part to the whole. "auto" is 2 for images with the package's
convolutional encoders ("auto", "cnn", "resnet", which pool globally and
so take the smaller crops) and views that make local crops; 0 otherwise:
tables have nothing to crop, "mlp", "vit" and other encoders take one
input size, and on 1-D signals (``(C, L)``) no local views and more
epochs probed higher in less time (MNIST-1D; the user guide's
contrastive page).""",
    ),
    # -- the sequence models (GPT, BERT) ----------------------------------
    "tokenizer": (
        '{"char", "word", "bpe", "wordpiece"} or tokenizers.Tokenizer',
        """\
How strings are cut into tokens. "char": every character is a token
(right for DNA, proteins and SMILES; needs no library). "word": the
matches of ``token_pattern``. "bpe" (byte-level byte-pair encoding,
which never meets an unknown token) and "wordpiece": a subword
vocabulary of ``vocab_size`` tokens learned in ``fit`` with Hugging
Face ``tokenizers`` (``pip install tokenizers``). A ready
``tokenizers.Tokenizer`` is used as it is, but for its padding and
truncation, which the estimator's copy turns off: it pads its batches
itself and cuts at ``max_length``, with a warning. Ignored for integer input,
whose tokens are its ids. Tokens unseen in ``fit`` become ``[UNK]``.""",
    ),
    "vocab_size": (
        "int or None",
        """\
Most tokens in the vocabulary: the most frequent ones for "char" and
"word" (None keeps all), the size the subword vocabulary of "bpe" and
"wordpiece" is learned up to (None means 1000), which is never less
than the alphabet: byte-level BPE holds the 256 bytes, WordPiece every
character of X, alone and as a continuation (``##a``). The 5 special
tokens (``[PAD]``, ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]``) come on
top: ``vocab_size_`` counts them. Ignored for integer input, whose
vocabulary is every id from 0 to the largest (at most 2**24 ids).""",
    ),
    "token_pattern": (
        "str",
        """\
Regular expression of a token for ``tokenizer="word"``: by default runs
of letters and digits, and single punctuation marks. With one capturing
group the group is the token, as in scikit-learn's ``CountVectorizer``;
more than one is a ValueError at ``fit``.""",
    ),
    "max_length": (
        "int",
        """\
Most tokens kept per sequence, at least 2 (``[CLS]`` and ``[SEP]`` come
on top); longer sequences are cut, with a warning saying how many. Sets
the size of the learned position table.""",
    ),
    "embed_dim": (
        "int",
        """\
Token width of the transformer, the dimension of the representation; a
multiple of ``num_heads``.""",
    ),
    "depth": ("int", "Transformer blocks."),
    "num_heads": ("int", "Attention heads per block."),
    "mlp_ratio": (
        "float",
        "Hidden width of every block's MLP relative to its token width.",
    ),
    "dropout": ("float", "Dropout of the embeddings and inside the blocks, in [0, 1)."),
    # -- the engine: how every neural estimator trains --------------------
    "input_shape": (
        "tuple of int or None",
        """\
Shape of one sample when X is 2-D, e.g. ``(1, 8, 8)`` for 8×8 images or
``(1, 40)`` for signals; None means tabular unless X itself is N-D
``(n, C, H, W)`` or ``(n, C, L)``.""",
    ),
    "max_epochs": ("int", "Passes over the training data."),
    "batch_size": ("int", "Samples per optimisation step."),
    "num_workers": (
        "int",
        """\
Worker processes that read the samples of a torch ``Dataset`` passed as X,
in ``fit`` and ``transform`` (a :class:`~torch.utils.data.DataLoader`'s
``num_workers``); 0 reads them in the calling process. Worth it when
reading a sample costs (decoding an image file) and cores are free: the
workers share the CPU with training (``benchmarks/bench_workers.py``: on 2
cores, 2 workers decoding PNG files cut an autoencoder's fit to 0.81 of
its time with torch on one thread, and raised it to 1.22 on two). Arrays
and memmaps are sliced in the calling process whatever its value. The
samples come in the same order, so a Dataset that returns the same sample
at each read gives the same model as with 0. Each worker's torch generator
is seeded from the fit's; a Dataset drawing from numpy's or Python's
global generator draws alike in every worker unless it seeds them itself
(``torch.utils.data.get_worker_info().seed``).""",
    ),
    "lr": (
        "float",
        """\
Learning rate (with the default cosine schedule, the peak one, reached
after ``warmup_epochs``). ``lr=0`` with ``max_epochs=1`` trains nothing:
the network keeps its random initial weights while its input scaling and
batch-norm statistics follow the data, the untrained-encoder baseline a
learned representation should beat.""",
    ),
    "optimizer": (
        '{"adamw", "adam", "sgd"} or torch optimizer class',
        """\
The optimiser. ``"adamw"`` and ``"adam"`` take torch's fused step (one
kernel for all weights) on CUDA, and on the CPU from torch 2.4.""",
    ),
    "weight_decay": ("float", 'Decoupled weight decay (L2 penalty for "adam"/"sgd").'),
    "lr_schedule": (
        '{"cosine"} or None',
        """\
Cosine decay of the learning rate to zero over training, after
``warmup_epochs`` of linear warm-up; None keeps ``lr`` constant (after
the warm-up, if ``warmup_epochs`` asks for one).""",
    ),
    "warmup_epochs": (
        "int",
        """\
Epochs of linear learning-rate warm-up, at most half of the fit's
epochs (a longer warm-up would never reach ``lr`` nor decay).""",
    ),
    "callbacks": (
        "list of skorch callbacks or None",
        """\
Extra callbacks (instances or ``(name, callback)`` tuples), appended to
the defaults. A name must differ from those of the fit's own callbacks
(skorch's ``epoch_timer``, ``train_loss``, ``valid_loss``, ``print_log``;
``finite_loss``, and as the settings ask ``lr_schedule``,
``early_stopping``, ``progress_bar``, ``checkpoint``). A learning-rate
scheduler (skorch's ``LRScheduler``) needs ``lr_schedule=None`` and
``warmup_epochs=0``, which would overwrite its rate at every batch; a
callback that monitors a validation score (``EarlyStopping``,
``Checkpoint``) needs ``early_stopping=True``, which holds out the
validation split.""",
    ),
    "early_stopping": (
        "bool",
        """\
Hold out ``validation_fraction`` of the data and stop when its loss has
not improved for ``n_iter_no_change`` epochs; the best weights are
restored. The held-out loss draws the same random views or masks at
every epoch, so that epochs differ by their weights alone.""",
    ),
    "validation_fraction": (
        "float",
        "Share of the data held out when ``early_stopping=True`` "
        "(by :class:`~sk_replearn.FineTuner`, that share of each class).",
    ),
    "n_iter_no_change": ("int", "Patience of early stopping, in epochs."),
    "device": (
        "str or torch.device",
        """\
"auto" trains on CUDA when present, else on the CPU; or "cpu", "cuda",
"cuda:1", "mps". ``transform`` computes where the fitted network is: a
new ``device`` set after ``fit`` takes effect at the next ``fit``, and
``load(path, device=...)`` moves a fitted estimator.""",
    ),
    "precision": (
        '{"32", "bf16", "16"}',
        """\
Float precision of the forward pass: "bf16" autocasts to bfloat16 (CPU,
or a GPU with bfloat16 products: NVIDIA's since Ampere), "16" uses float16
with a gradient scaler (CUDA only). The losses compute in float32.""",
    ),
    "compile": (
        "bool",
        """\
Compile the module with :func:`torch.compile`: for large models on a
GPU. On a CPU the small default networks gain nothing (12 epochs of an
MAE on MNIST-1D took 161 s compiled, 58 s not). Its random draws
(views, masks, dropout) come from torch's generator, as an eager fit's
do, so a compiled fit follows an eager one with the same
``random_state`` up to float rounding (5e-6 in the features after an
epoch of SimCLR on the digits), though not to the bit: two seeded
compiled fits in one process differed by about 4e-6 (fresh processes
agreed).""",
    ),
    "verbose": (
        "int",
        "0 is silent; 1 prints one line per epoch, and a progress bar when "
        "the output is a terminal or a notebook.",
    ),
    "random_state": (
        "int, RandomState instance or None",
        """\
Seeds weight initialisation, shuffling and every random draw of training
(views, corruption, masks); an int makes CPU training bit-for-bit
repeatable at a fixed number of torch threads.""",
    ),
    "warm_start": (
        "bool",
        """\
When True, a second ``fit`` continues training the same network; its
schedules start again (the learning rate's warm-up and decay over this
fit's ``max_epochs``, and a momentum schedule, if any). The training
settings set
since apply to it (``max_epochs``, ``lr``, ``weight_decay``,
``batch_size``, the schedule, early stopping, callbacks, ``random_state``);
a change of any other parameter (the method's own, such as a
temperature or the views, a width, ``device``, ``precision``) is refused
with a ValueError, since the fitted model would not follow it.""",
    ),
    "checkpoint_dir": (
        "str, path-like or None",
        """\
Directory where the training state (weights, optimiser, history, the
bookkeeping of the callbacks, the user's included) is saved after every
epoch. A ``fit`` that finds there an unfinished run that began where it
begins (a fit from scratch; a warm start of the same fitted model from
the same epoch) resumes it after its last finished epoch, so a killed
run loses at most one epoch and ends as an uninterrupted fit would. A
finished run, or one that began elsewhere (the second round of warm
starts of a script that runs again from the start), is overwritten. One
fit at a time per directory: an unfinished checkpoint of other
parameters or other data (another fold of a parallel cross-validation)
is refused, not resumed. Data is recognised by its shape and at most
1,024 evenly spaced rows (16 samples of a torch Dataset; of one that
draws its samples at random, its length and sample shape only), so a
change elsewhere in it goes unseen: use one directory per data set. The
directory is made, and checked to take files, when training begins.
None saves nothing.""",
    ),
    "transform_layer": (
        "int",
        """\
The encoder block whose output ``transform`` returns: an index into the
blocks that the fine-tuners' ``freeze_layers`` counts (one per MLP layer,
CNN stage or ResNet block, after the stem; a ViT's or a token model's
embedding, then one per transformer block; a linear ``n_components``
layer last), negative from the end; -1 is the encoder's output. A
ConvNet's inner feature map is averaged over space (global average
pooling) and a transformer's tokens are pooled as the encoder pools its
output (``pooling``, where the estimator has one; MAE's ``"blocks"``
concatenates the blocks up to this one); the number of columns
(``get_feature_names_out``, ``set_output``) follows the block. Inner
layers often probe better than the last one, which the training
objective shapes most. It only says what ``transform`` reads: setting it
on a fitted estimator (``set_params``) needs no refit and leaves the
weights untouched. A fine-tuner given the estimator as its
``representation`` fine-tunes the blocks up to this one. A value outside
the blocks raises a ValueError that says how many there are.""",
    ),
    "accelerator": (
        "accelerate.Accelerator or None",
        """\
Train through Hugging Face Accelerate (several GPUs or machines, started
with ``accelerate launch``; see the user guide). None trains in this
process on ``device``. Data-parallel: ``batch_size`` is per process,
``precision`` must stay "32" (set ``mixed_precision`` on the
accelerator) and ``device`` is the accelerator's. An estimator fitted
with an accelerator cannot be pickled: ``save`` then ``load`` gives it
back without one. See
:mod:`sk_replearn.distributed`.""",
    ),
    # -- the fine-tuners --------------------------------------------------
    "representation": (
        "estimator or None",
        """\
The representation to transfer: a neural sk_replearn estimator
(``SimCLRTransformer``, ``MAETransformer``, ``AutoencoderTransformer``,
...) or a :class:`~sk_replearn.PCATransformer` (its ``W`` initialises a
linear layer). What is fine-tuned is what its ``transform`` reads
(but for an ``MAETransformer`` with ``pooling="auto"``, which
``strategy="full"`` fine-tunes through its last block's patch mean, see
its ``pooling``): a
representation with an inner ``transform_layer`` is cut after that block
and the blocks above are dropped (network surgery; ``n_blocks_`` counts
the blocks kept), so the head starts from the layer a probe chose. If
it is fitted, its encoder is copied and the estimator itself is never
refitted: :func:`sklearn.base.clone` gives the clone a
fitted copy, so a grid search over the fine-tuner's own parameters
reuses the pre-training. Setting one of its parameters that changes what
it learns (``representation__n_components=8``, as a grid over it does)
replaces it by an unfitted clone with that value (see :meth:`set_params`).
If it is unfitted, ``fit`` first pre-trains a clone of it without
labels, on ``pretrain_X`` when given, else on X. None means
``AutoencoderTransformer()``. A grid over ``representation`` itself gets
unfitted clones of its values, as scikit-learn clones a grid's values:
to compare fitted representations, search over fine-tuners, each holding
one (a pipeline step ``{{"ft": [FineTuner(a), FineTuner(b)]}}``).""",
    ),
    "strategy": (
        '{"full", "frozen"}',
        """\
``"full"`` fine-tunes every weight, the encoder at the lower rate
``lr * encoder_lr_scale``; ``"frozen"`` trains the head alone on the
fixed features (a linear probe with ``head="linear"``, whose
``head_norm="auto"`` is then an affine map).""",
    ),
    "head": (
        '{"linear", "mlp"}, callable or torch.nn.Module',
        """\
The new task-specific head (network surgery): a linear layer, or one
hidden layer of 256 ReLU units, each after the input normalisation
``head_norm`` chooses. A callable (e.g. an ``nn.Module`` class) is
called as ``head(n_features, n_outputs)`` and must return an
``nn.Module``; an ``nn.Module`` instance is copied at each fit (the one
passed is never trained) and must map ``(batch, n_features)`` to
``(batch, n_outputs)``. Either is used as it is: no normalisation is
put in front of it.""",
    ),
    "head_norm": (
        '{"auto", "layer", "scale"} or None',
        """\
How ``"linear"`` and ``"mlp"`` heads normalise the features they
receive. Both centre each feature on a running mean, with the gradient
of centring on the batch mean (which keeps a Vision Transformer's
features from drifting together), and divide no feature by its own
spread, which a batch normalisation does and which, fed a few labels,
inflates the features that hardly vary. ``"layer"``
(:class:`~sk_replearn.nn.CentredLayerNorm`) then normalises each sample
over its features: the best measured for fine-tuning a network, but the
head sees only each sample's direction, not its length (of one feature
it sees nothing, of two a sign). ``"scale"``
(:class:`~sk_replearn.nn.CentredScale`) divides every value by one
running scale: the head sees every linear function of the features, and
``head="linear"`` is a linear probe. None feeds the features as they
come. ``"auto"`` is ``"scale"`` where the encoder does not train
(``strategy="frozen"``, ``freeze_layers`` covering every block, or
``encoder_lr_scale=0``) or gives fewer than 3 features, else
``"layer"`` (the user guide on transfer learning gives the
measurements). Only for the built-in heads: a callable or module
``head`` is used as it is (``"auto"`` or None).""",
    ),
    "freeze_layers": (
        "int",
        """\
With ``strategy="full"``, freeze the first k encoder blocks (see
``n_blocks_``): they keep their pre-trained weights and batch-norm
statistics.""",
    ),
    "reinit_layers": (
        'int or "all"',
        """\
Partial transfer: re-initialise the top k encoder blocks before
training, drawn as the encoder's construction draws them; they learn at
the head's rate ``lr``. ``"all"`` trains the
same architecture from scratch (the no-transfer baseline).""",
    ),
    "encoder_lr_scale": (
        "float",
        "Learning rate of the pre-trained encoder relative to the head's.",
    ),
    "layer_decay": (
        "float in (0, 1]",
        """\
Layer-wise learning-rate decay, as in MAE fine-tuning: the pre-trained
block i places below the top pre-trained one (the re-initialised blocks
of ``reinit_layers`` learn at ``lr`` and do not count) trains at ``lr *
encoder_lr_scale * layer_decay**i``. 1 means no decay.""",
    ),
}

#: ``name -> (type, description)`` of every shared fitted attribute.
ATTRIBUTES: dict[str, tuple[str, str]] = {
    "net_": (
        "sk_replearn.training.RepresentationNet",
        """\
The trained skorch net; ``net_.module_`` is the objective, holding the
encoder ``backbone`` and the heads.""",
    ),
    "n_components_": (
        "int",
        """\
Width of the representation, the number of columns of ``transform`` at
``transform_layer=-1``.""",
    ),
    "history_": ("skorch.History", "Per-epoch (and per-batch) training record."),
    "loss_curve_": ("list of float", "Training loss at each epoch."),
    "n_epochs_": (
        "int",
        "Epochs run (fewer than ``max_epochs`` after early stopping).",
    ),
    "max_epochs_": (
        "int",
        """Epochs the fit was given: ``max_epochs``, with "auto" resolved.""",
    ),
    "collapse_std_": (
        "float",
        """\
Mean over dimensions of the std of the L2-normalised representation of
(up to 2048 rows of) the training data: about ``1 / sqrt(D)`` when
spread out, 0 when collapsed; see :class:`CollapseWarning`.""",
    ),
    "input_shape_": ("tuple of int", "Shape of one sample."),
    "representation_": (
        "estimator",
        """\
The fitted representation the encoder was copied from: a copy of the
given one when it was fitted, else the clone ``fit`` pre-trained.""",
    ),
    "n_blocks_": (
        "int",
        """\
Number of encoder blocks that ``freeze_layers`` and ``reinit_layers``
count (e.g. one per MLP layer, ResNet block or transformer block).""",
    ),
    "n_features_in_": ("int", "Number of features seen during fit."),
    "feature_names_in_": (
        "ndarray of shape (n_features_in_,)",
        """\
Names of the features seen during fit, for DataFrames with string column
names.""",
    ),
}

#: Names a ``{attributes ...}`` marker may use for several attributes.
ATTRIBUTE_GROUPS: dict[str, list[str]] = {
    "training": ["history_", "loss_curve_", "n_epochs_"],
    "input": ["input_shape_", "n_features_in_", "feature_names_in_"],
}

_PARAMS = re.compile(r"^(?P<indent>\s*)\{params (?P<first>\w+)\.\.(?P<last>\w+)\}$")
_ATTRS = re.compile(r"^(?P<indent>\s*)\{attributes (?P<names>[\w ]+)\}$")


def _show(value) -> str:
    """A default as numpydoc writes it: strings in double quotes."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _entry(name: str, kind: str, text: str, indent: str, default=None) -> str:
    head = f"{name} : {kind}" + ("" if default is None else f", default={default}")
    return textwrap.indent(head + "\n" + textwrap.indent(text, "    "), indent)


def fill_doc(docs: dict[str, str] | None = None, **fields: str):
    """Class decorator: expand the ``{params ...}`` and ``{attributes ...}`` markers.

    Parameters
    ----------
    docs : dict or None, default=None
        Descriptions that replace the shared ones for this class, by name:
        a text, or a ``(type, text)`` pair that replaces the type too (and
        describes a parameter of this class's own, which has no shared one).
    **fields : str
        Values of the format fields in the shared descriptions.

    Returns
    -------
    callable
        The decorator, which sets the class's ``__doc__`` and returns it.

    Raises
    ------
    KeyError
        If a marker names a parameter or attribute with neither a shared
        entry nor a ``(type, text)`` in ``docs``, or a range whose ends are
        not parameters of the class.

    Examples
    --------
    >>> from sk_replearn._docstrings import fill_doc
    >>> @fill_doc()
    ... class Probe:
    ...     '''A probe.
    ...
    ...     Parameters
    ...     ----------
    ...     {params max_epochs..lr}
    ...     '''
    ...     def __init__(self, *, max_epochs=5, lr=0.1):
    ...         pass
    >>> print(Probe.__doc__.splitlines()[4])
        max_epochs : int, default=5
    """
    docs = docs or {}

    def describe(table: dict, name: str) -> tuple[str, str]:
        own = docs.get(name)
        if isinstance(own, tuple):
            return own
        kind, text = table[name]
        return kind, text.format(**fields) if own is None else own

    def decorate(cls):
        signature = inspect.signature(cls.__init__).parameters
        names = [n for n in signature if n != "self"]
        lines = []
        for line in cls.__doc__.splitlines():
            if match := _PARAMS.match(line):
                first, last = names.index(match["first"]), names.index(match["last"])
                for name in names[first : last + 1]:
                    kind, text = describe(PARAMETERS, name)
                    default = _show(signature[name].default)
                    lines.append(_entry(name, kind, text, match["indent"], default))
            elif match := _ATTRS.match(line):
                for group in match["names"].split():
                    for name in ATTRIBUTE_GROUPS.get(group, [group]):
                        kind, text = describe(ATTRIBUTES, name)
                        lines.append(_entry(name, kind, text, match["indent"]))
            else:
                lines.append(line)
        cls.__doc__ = "\n".join(lines)
        return cls

    return decorate
