"""The local embeddings: the ONNX export setup made, against sentence-transformers, for real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tools_store.embeddings import LOCAL_ID
from tools_store.onnx_embeddings import (
    MANIFEST,
    MIN_COSINE,
    MODEL_FILE,
    WEIGHTS_FILE,
    ExportError,
    OnnxEmbeddings,
    export_dir,
    file_sha256,
    read_manifest,
)

# Not the manifest's reference sentences: short and long (past the 256-token window), empty,
# newlines and tabs, non-ASCII, code, numbers; more than one batch, in no order of length.
SENTENCES = [
    "convert 100 degrees Fahrenheit to Celsius",
    "",
    "How many kilometres are 26.2 miles?",
    "def count_vowels(text: str) -> int:\n    return sum(c in 'aeiou' for c in text)",
    "word " * 400,
    "  leading and trailing spaces  ",
    "tabs\tand\nnew\nlines",
    "Übersetze «naïve» nach Englisch — 東京タワー, emoji 🙂👍",
    "SHOUTING IN CAPITALS, WITH PUNCTUATION!!!",
    "x",
] + [f"tool {i}: {'decode' if i % 2 else 'encode'} base64 of item {i * 7919}" for i in range(30)]


def cosines(a, b) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def onnx_embeddings():
    return OnnxEmbeddings()


def test_onnx_vectors_equal_sentence_transformers(onnx_embeddings):
    from tools_store.onnx_export import sentence_transformers_embeddings

    reference = sentence_transformers_embeddings()
    expected = reference.embed_documents(SENTENCES)
    assert cosines(onnx_embeddings.embed_documents(SENTENCES), expected).min() >= MIN_COSINE
    queries = [onnx_embeddings.embed_query(s) for s in SENTENCES[:10]]
    assert cosines(queries, [reference.embed_query(s) for s in SENTENCES[:10]]).min() >= MIN_COSINE
    assert len(queries[0]) == 384


def test_the_request_path_loads_and_embeds_without_torch():
    code = (
        "import json, sys\n"
        "from tools_store.embeddings import load_embeddings\n"
        f"embeddings = load_embeddings({LOCAL_ID!r})\n"
        "vector = embeddings.embed_query('convert 100 degrees Fahrenheit to Celsius')\n"
        "heavy = ('torch', 'transformers', 'sentence_transformers', 'langchain_huggingface')\n"
        "print(json.dumps({'class': type(embeddings).__name__, 'size': len(vector),\n"
        "                  'loaded': [m for m in sys.modules if m.split('.')[0] in heavy]}))\n")
    env = {k: v for k, v in os.environ.items() if k != "SEA_EMBEDDINGS"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result == {"class": "OnnxEmbeddings", "size": 384, "loaded": []}


@pytest.fixture
def export_copy(tmp_path):
    target = tmp_path / "export"
    shutil.copytree(export_dir(), target)
    return target


def _edit_manifest(directory, change) -> None:
    manifest = json.loads((directory / MANIFEST).read_text())
    change(manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest))


def test_an_untouched_copy_loads(export_copy):
    assert OnnxEmbeddings(export_copy).check() >= MIN_COSINE


def test_reference_vectors_that_differ_are_refused(export_copy):
    def swap_two(manifest):
        vectors = manifest["reference"]["vectors"]
        vectors[0], vectors[1] = vectors[1], vectors[0]

    _edit_manifest(export_copy, swap_two)
    with pytest.raises(ExportError, match=r"does not give the reference vectors.*re-run the setup"):
        OnnxEmbeddings(export_copy)


def test_a_corrupted_weights_file_is_refused(export_copy):
    # Rows of rare tokens in the word embeddings: no reference sentence would notice them.
    with open(export_copy / WEIGHTS_FILE, "r+b") as handle:
        handle.seek(40_000_000)
        handle.write(b"\0" * 4096)
    with pytest.raises(ExportError, match=r"does not match the checksum.*re-run the setup"):
        OnnxEmbeddings(export_copy)


def test_files_hashed_once_are_not_hashed_again_until_written(export_copy, monkeypatch):
    import tools_store.onnx_embeddings as module

    OnnxEmbeddings(export_copy)  # hashes the files and stamps them
    hashed = []
    monkeypatch.setattr(module, "file_sha256", lambda path: hashed.append(path) or "")
    OnnxEmbeddings(export_copy)
    assert hashed == []
    monkeypatch.undo()
    # A write with the modification time set back: the change time still shows it.
    weights = export_copy / WEIGHTS_FILE
    before = weights.stat()
    with open(weights, "r+b") as handle:
        handle.seek(40_000_000)
        handle.write(b"\0" * 4096)
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(ExportError, match=r"does not match the checksum"):
        OnnxEmbeddings(export_copy)


def test_changed_weights_with_a_matching_checksum_fail_the_vector_check(export_copy):
    # Damage layer weights near the file's end (the word embeddings are at its start) and
    # record their new checksum: only the vectors show it.
    with open(export_copy / WEIGHTS_FILE, "r+b") as handle:
        handle.seek(-8_000_000, os.SEEK_END)
        handle.write(np.full(1_000_000, 0.5, dtype=np.float32).tobytes())
    digest = file_sha256(export_copy / WEIGHTS_FILE)
    _edit_manifest(export_copy, lambda m: m["sha256"].update({WEIGHTS_FILE: digest}))
    with pytest.raises(ExportError, match=r"does not give the reference vectors"):
        OnnxEmbeddings(export_copy)


def _operators(directory) -> list[str]:
    import onnx

    graph = onnx.load(str(directory / MODEL_FILE), load_external_data=False).graph
    return [node.op_type for node in graph.node]


def test_the_export_runs_fused_attention():
    """Each layer's attention is one fused operator: about a fifth less time per query."""
    from tools_store.onnx_export import RECIPE

    operators = _operators(export_dir())
    assert operators.count("Attention") == 6  # MiniLM-L6's six layers
    assert "Softmax" not in operators  # no unfused attention left beside them
    assert read_manifest(export_dir())["exported_with"]["recipe"] == RECIPE


def test_an_export_by_an_older_recipe_is_redone(export_copy):
    from tools_store.onnx_export import is_current, source_record

    source = source_record()
    assert is_current(export_copy, source)
    _edit_manifest(export_copy, lambda m: m["exported_with"].update(recipe=1))
    assert not is_current(export_copy, source)


def test_an_optimizer_that_fails_leaves_an_unfused_export_that_loads(tmp_path, monkeypatch,
                                                                     caplog):
    from onnxruntime.transformers import optimizer

    from tools_store.onnx_export import export

    def broken(*args, **kwargs):
        raise RuntimeError("no fusion today")

    monkeypatch.setattr(optimizer, "optimize_model", broken)
    directory = export(tmp_path / "export")
    assert "could not fuse the graph (RuntimeError: no fusion today)" in caplog.text
    operators = _operators(directory)
    assert "Attention" not in operators and "Softmax" in operators
    assert read_manifest(directory)["exported_with"]["fusions"] == {}
    assert OnnxEmbeddings(directory).check() >= MIN_COSINE


def test_a_missing_export_says_to_rerun_the_setup(tmp_path):
    with pytest.raises(ExportError, match=r"no ONNX export.*re-run the setup"):
        OnnxEmbeddings(tmp_path / "nothing-here")


def test_a_whole_turn_never_imports_torch(docker_sandbox, tmp_path):
    """A reuse turn through the Agent, start to answer, in a fresh process."""
    code = (
        "import sys, uuid\n"
        "from graph.runner import Agent\n"
        "from nodes.kit import services\n"
        "schema = 'notorch_' + uuid.uuid4().hex[:8]\n"
        "agent = Agent(sandbox_pool=0, library_schema=schema)\n"
        "try:\n"
        "    first = agent.ask('convert 100 degrees Fahrenheit to Celsius')\n"
        "    second = agent.ask(\"it's 98.6 F, what is that in celsius?\")\n"
        "    assert first['result'] == 37.78 and second['decision'] == 'reuse', second\n"
        "finally:\n"
        "    services.library(schema).drop()\n"
        "    agent.close()\n"
        "heavy = {'torch', 'transformers', 'sentence_transformers', 'langchain_huggingface'}\n"
        "print(sorted(heavy & set(sys.modules)))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("SEA_MODEL", "OPENAI_API_KEY")}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "[]"
