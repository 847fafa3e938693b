"""The local MiniLM model at run time: its ONNX export under ONNX Runtime, without torch.

Setup exports the shipped weights once (``tools_store.onnx_export``) into the environment,
with a manifest that records the export's checksums, the source weights' hash and a few
reference sentences with the vectors sentence-transformers gave them. Loading checks both
and refuses an export that does not give the same vectors, so the index (which records the
same model id as before) keeps meaning the same thing. Besides langchain-core's interface
this module needs numpy, onnxruntime and tokenizers only: no torch, transformers or
sentence-transformers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

MANIFEST = "manifest.json"
STAMPS = "verified.json"  # the files' stat when their checksums last matched
MODEL_FILE = "model.onnx"
WEIGHTS_FILE = "model.onnx.data"  # external data: ONNX Runtime maps it instead of copying it
TOKENIZER_FILE = "tokenizer.json"
FORMAT = 1
_KEYS = {"format", "sha256", "max_seq_length", "pad_id", "pad_token", "dimension", "reference"}
MIN_COSINE = 0.9999
BATCH = 32
REEXPORT = "re-run the setup (`python -m tools_store.onnx_export`, part of .ci/setup)"


class ExportError(RuntimeError):
    """The ONNX export of the local embedding model is missing, damaged or gives other vectors."""


def export_dir() -> Path:
    """Return where setup puts the export: in the environment, beside the installed weights."""
    return Path(sys.prefix) / "share" / "self-engineering-agent" / "all-MiniLM-L6-v2-onnx"


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of the file at ``path``, read in chunks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def read_manifest(directory: Path) -> dict:
    """Return the export's manifest; ExportError if there is none or it is unreadable."""
    path = directory / MANIFEST
    if not path.exists():
        raise ExportError(f"no ONNX export of the local embedding model at {directory}: {REEXPORT}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ExportError(f"unreadable manifest {path} ({exc}): {REEXPORT}") from exc
    if not (isinstance(manifest, dict) and manifest.get("format") == FORMAT
            and _KEYS <= manifest.keys()):
        raise ExportError(f"{path} is not a format-{FORMAT} manifest: {REEXPORT}")
    return manifest


class OnnxEmbeddings(Embeddings):
    """MiniLM through ONNX Runtime and the fast tokenizer: mean pooling and L2 norm in-graph."""

    def __init__(self, directory: Path | None = None):
        """Load the export under ``directory`` (default: setup's), verifying files and vectors."""
        import onnxruntime
        from tokenizers import Tokenizer

        self.directory = directory or export_dir()
        self.manifest = manifest = read_manifest(self.directory)
        self._verify_files()
        self._tokenizer = Tokenizer.from_file(str(self.directory / TOKENIZER_FILE))
        self._tokenizer.enable_truncation(manifest["max_seq_length"])
        self._tokenizer.enable_padding(pad_id=manifest["pad_id"], pad_token=manifest["pad_token"])
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # Two threads that sleep instead of spinning while they wait for work. Measured per
        # query (median): idle 2.5-3.3 ms against 4.7 ms for one thread; beside one busy core
        # 3.5-3.7 against 4.0-4.8 ms; beside two 3.8-5.3 against 3.9-9 ms. Spinning threads
        # (ONNX Runtime's default) were the slowest on a busy machine (7-10 ms).
        options.intra_op_num_threads = 2
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = onnxruntime.InferenceSession(
                str(self.directory / MODEL_FILE), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own, unexported error types
            raise ExportError(f"ONNX Runtime cannot load {self.directory / MODEL_FILE} "
                              f"({exc}): {REEXPORT}") from exc
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.check()

    def _verify_files(self) -> None:
        """Check the files against the manifest's checksums, unless untouched since they matched.

        Hashing the 90 MB of weights cost a third of a fresh process's model load. "Untouched"
        is the same inode, size, modification and change time: any write changes them, and
        the change time cannot be set back. The reference vectors are checked at every load.
        """
        names = (MODEL_FILE, WEIGHTS_FILE, TOKENIZER_FILE)
        try:
            stamps = {name: self._stat(name) for name in names}
        except OSError as exc:
            raise ExportError(f"cannot read the export under {self.directory} ({exc}): "
                              f"{REEXPORT}") from exc
        try:
            if json.loads((self.directory / STAMPS).read_text()) == stamps:
                return
        except (OSError, ValueError):
            pass
        for name in names:
            self._verify_file(name, self.manifest["sha256"].get(name))
        partial = self.directory / f"{STAMPS}.{os.getpid()}"
        try:  # best effort: an environment this process cannot write is hashed each time
            partial.write_text(json.dumps(stamps))
            partial.replace(self.directory / STAMPS)
        except OSError:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)

    def _stat(self, name: str) -> list[int]:
        stat = (self.directory / name).stat()
        return [stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]

    def _verify_file(self, name: str, expected: str | None) -> None:
        path = self.directory / name
        try:
            actual = file_sha256(path)
        except OSError as exc:
            raise ExportError(f"cannot read {path} ({exc}): {REEXPORT}") from exc
        if actual != expected:
            raise ExportError(f"{path} does not match the checksum in its manifest (damaged or "
                              f"replaced): {REEXPORT}")

    def check(self) -> float:
        """Return the lowest cosine to the reference vectors; ExportError below MIN_COSINE."""
        reference = self.manifest["reference"]
        expected = np.asarray(reference["vectors"], dtype=np.float32)
        got = self._encode(reference["sentences"])
        if got.shape != expected.shape:
            raise ExportError(f"the export under {self.directory} gives vectors of shape "
                              f"{got.shape}, its manifest {expected.shape}: {REEXPORT}")
        norms = np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1)
        cosine = float(np.min((got * expected).sum(axis=1) / np.maximum(norms, 1e-12)))
        if not cosine >= MIN_COSINE:
            raise ExportError(
                f"the export under {self.directory} does not give the reference vectors of "
                f"sentence-transformers (lowest cosine {cosine:.6f} < {MIN_COSINE}); refusing it "
                f"so the library's vectors keep their meaning: {REEXPORT}")
        return cosine

    def _encode(self, texts: list[str]) -> np.ndarray:
        # The old path (langchain-huggingface) replaced newlines before encoding; so does this.
        texts = [t.replace("\n", " ") for t in texts]
        out = np.zeros((len(texts), self.manifest["dimension"]), dtype=np.float32)
        # Batches of similar lengths pad little; pooling ignores the padding either way.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH):
            chunk = order[start:start + BATCH]
            encoded = self._tokenizer.encode_batch([texts[i] for i in chunk])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            feeds = {"input_ids": ids,
                     "attention_mask": np.array([e.attention_mask for e in encoded],
                                                dtype=np.int64),
                     "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64)}
            out[chunk] = self._session.run(None, {k: v for k, v in feeds.items()
                                                  if k in self._inputs})[0]
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Return one normalized vector per text."""
        return self._encode(list(texts)).tolist() if texts else []

    def embed_query(self, text: str) -> list[float]:
        """Return the normalized vector of ``text``."""
        return self._encode([text])[0].tolist()
