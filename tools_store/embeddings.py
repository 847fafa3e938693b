"""The embedding model: local MiniLM by default, OpenAI's when configured.

``SEA_EMBEDDINGS`` picks it: ``local`` (default) or ``openai:MODEL``. Each model has an id the
index records, so a change of model is noticed and the library re-embedded.

The local model runs from the ONNX export that setup makes of the shipped weights
(``tools_store.onnx_export``), under ONNX Runtime: no torch at run time. The export gives the
same vectors as sentence-transformers did, so the id, the index and the thresholds stay.
Without an export, loading fails with a message saying to re-run the setup: the request path
never falls back to exporting (or importing torch) by itself.
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
        from .onnx_embeddings import OnnxEmbeddings

        return OnnxEmbeddings()
    from langchain_openai import OpenAIEmbeddings

    return OpenAIEmbeddings(model=model_id.split(":", 1)[1])


def vector_size(model_id: str) -> int:
    """Return the dimension of the model's vectors."""
    return len(load_embeddings(model_id).embed_query("size"))
