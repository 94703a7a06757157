"""The tiny offline world: its facts, corpus, tokenizer and the small model pretrained on them.

Everything the tests and the demo need without a model hub. :mod:`.facts` is the world as data
(categories, prompts, the corpus's biases); :mod:`.corpus`, :mod:`.tokenizer` and :mod:`.model`
build, pretrain and cache the ~1M-parameter model, whose default build ships in ``shipped/tiny``.
Nothing here imports torch until a model is built. This room imports nothing of the package's
other rooms.
"""

from .corpus import (
    CHAT_TEMPLATE,
    FORMAT_VERSION,
    IM_END,
    IM_START,
    PAD_TOKEN,
    TinyConfig,
    build_corpus,
    render_turn,
)
from .model import (
    CACHE_ENV,
    INFO_FILE,
    SHIPPED_DIR,
    build_tiny_model,
    cache_root,
    config_key,
    file_lock,
    shipped_tiny_model,
    tiny_model_path,
)
from .tokenizer import build_tokenizer

__all__ = [
    "CACHE_ENV",
    "CHAT_TEMPLATE",
    "FORMAT_VERSION",
    "IM_END",
    "IM_START",
    "INFO_FILE",
    "PAD_TOKEN",
    "SHIPPED_DIR",
    "TinyConfig",
    "build_corpus",
    "build_tiny_model",
    "build_tokenizer",
    "cache_root",
    "config_key",
    "file_lock",
    "render_turn",
    "shipped_tiny_model",
    "tiny_model_path",
]
