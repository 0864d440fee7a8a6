"""Data sets: where they live, strict readers, a registry, and a checksummed downloader.

One module per job (re-exported here):

    locations   data directory lookup (--data-dir, $ANALOGTRAIN_DATA, user cache);
                KnownFile, DataFolder (a data set's folder and files)
    idx         the strict IDX reader (uint8, plain or .gz)
    mnist       MNIST: published pins (files and decompressed content), shape/label/count checks
    corpus      War and Peace: reader, CharCorpus split, truncated-BPTT batches
    digits      scikit-learn's 8x8 digits CSV
    prepared    DataRequest -> Data (the arrays a model trains on)
    registry    DATASETS (one DatasetSpec per data set), dataset_spec, load, find_dataset
    download    KNOWN_FILES, fetch (checksummed, resumable), dataset_status

Library code: it never prints, and every failure is an :mod:`analogtrain.errors`
exception with a one-line message that names the file and what was expected. Files are
parsed by hand (IDX, CSV, bytes); nothing is unpickled.
"""

from analogtrain.datasets.corpus import (WARPEACE_FILE, CharCorpus, char_sequences, load_corpus,
                                         make_corpus)
from analogtrain.datasets.digits import DIGITS_FILE, load_digits
from analogtrain.datasets.download import (KNOWN_FILES, FetchResult, dataset_status, fetch, known_files,
                                           sha256_file)
from analogtrain.datasets.idx import read_idx
from analogtrain.datasets.locations import (NO_VERIFY_HINT, DataFolder, KnownFile, describe_data_dir,
                                            resolve_data_dir, user_cache_dir)
from analogtrain.datasets.mnist import MNIST, MNIST_STEMS, load_mnist
from analogtrain.datasets.prepared import Data, DataRequest
from analogtrain.datasets.registry import DATASETS, LAYOUT, DatasetSpec, dataset_spec, find_dataset, load

__all__ = [
    "CharCorpus", "DATASETS", "DIGITS_FILE", "Data", "DataFolder", "DataRequest", "DatasetSpec", "FetchResult",
    "KNOWN_FILES", "KnownFile", "LAYOUT", "MNIST", "MNIST_STEMS", "NO_VERIFY_HINT",
    "WARPEACE_FILE", "char_sequences", "dataset_spec", "dataset_status", "describe_data_dir", "fetch",
    "find_dataset", "known_files", "load", "load_corpus", "load_digits", "load_mnist", "make_corpus", "read_idx",
    "resolve_data_dir", "sha256_file", "user_cache_dir",
]
