"""Datasets: IDX files, MNIST and friends, downloads and caching (NumPy only).

``read_idx`` / ``write_idx`` handle the IDX file format; ``load_mnist`` is the
book's loader (``dataset.mnist.load_mnist``) backed by the embedded MNIST files
and a verified on-disk cache; ``load_dataset`` loads Fashion-MNIST and KMNIST
too, downloading them on first use.
"""

from nnscratch.datasets.idx import decode_idx, encode_idx, read_idx, write_idx

__all__ = ["read_idx", "write_idx", "decode_idx", "encode_idx"]
from nnscratch.datasets.mnist import (
    DATASETS,
    DatasetInfo,
    SourceFile,
    dataset_info,
    default_data_dir,
    download_dataset,
    load_dataset,
    load_mnist,
)
from nnscratch.datasets.download import download_file

__all__ += ["load_mnist", "load_dataset", "download_dataset", "download_file", "dataset_info",
            "default_data_dir", "DatasetInfo", "SourceFile", "DATASETS"]
from nnscratch.datasets.display import (
    format_digit_halfblocks,
    format_digit_numbers,
    format_digit_shades,
    render_digit,
    show_digit,
)

__all__ += ["render_digit", "show_digit", "format_digit_numbers", "format_digit_shades",
            "format_digit_halfblocks"]
