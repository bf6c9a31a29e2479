"""Data sets for the lecture's examples: real digits from files, and digits that need no download.

* ``read_idx``: the IDX format MNIST and Fashion-MNIST are stored in (gzipped or not).
* ``load_mnist`` / ``load_fashion_mnist``: the four standard files in a folder, torchvision's
  ``MNIST/raw`` layout, or Keras' ``mnist.npz``. Fashion-MNIST is found where Debian's package
  ``dataset-fashion-mnist`` installs it.
* ``find_dataset``: the best data present (``NPAE_DATA``, an explicit path, Fashion-MNIST,
  else the built-in digits), as used by ``npae demo`` and ``--data``.
* ``fresh_machine``: ``NPAE_FRESH_MACHINE=1`` makes the above act as on a machine with only
  Python on it (``NPAE_DATA`` and Fashion-MNIST treated as absent), as the tests' fresh pass does.
* ``synthetic_digits``: 28x28 digits rendered from the fonts matplotlib ships, warped like
  handwriting, so the demo, the tests and the notebooks run on a fresh install.
* ``normalize`` / ``denormalize``: the lecture's normalisation (mean 0.5, std 0.5 -> [-1, 1]).
* Path-only loaders for data a user brings: UCI optdigits, AT&T/ORL faces, Olivetti faces.

npae never downloads anything: every loader reads a path, and the error says where it looked.

The package, one job a module:

``idx``
    the IDX reader, MNIST and Fashion-MNIST, ``find_dataset``, ``DatasetChoice`` and
    ``fresh_machine``; also
    ``FASHION_MNIST_DIR``, the folder ``load_fashion_mnist`` and ``find_dataset`` read (to
    point them elsewhere, set ``npae.data.idx.FASHION_MNIST_DIR``).
``synthetic``
    ``synthetic_digits`` and the renderer behind it.
``other``
    ``load_optdigits``, ``read_pgm``, ``load_att_faces``, ``load_olivetti_mat``.
``transforms``
    ``normalize`` and ``denormalize``.
"""
from ..train import iterate_minibatches as batches
from .idx import (FASHION_MNIST_DIR, DatasetChoice, find_dataset, fresh_machine,
                  load_fashion_mnist, load_mnist, read_idx)
from .other import load_att_faces, load_olivetti_mat, load_optdigits, read_pgm
from .synthetic import synthetic_digits
from .transforms import denormalize, normalize

__all__ = [
    "read_idx", "load_mnist", "load_fashion_mnist", "find_dataset", "DatasetChoice",
    "synthetic_digits", "normalize", "denormalize", "load_optdigits", "load_att_faces",
    "load_olivetti_mat", "read_pgm", "batches", "FASHION_MNIST_DIR", "fresh_machine",
]
