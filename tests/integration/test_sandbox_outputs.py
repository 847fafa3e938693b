"""A call's declared output files and the modules shipped beside an implementation.

Both cross the line between the implementation's worker process and the rest: the modules
are written into the worker's own folder, and the output files are read back from the
worker's working directory once the run is over, then checked again on the host.
"""

from __future__ import annotations

import hashlib

WRITER = '''def write(name, text, count=1):
    """Write ``text`` ``count`` times into ``name``; return the length written."""
    with open(name, "w") as fh:
        fh.write(text * count)
    return len(text) * count


def link(name, target):
    """Make ``name`` a symbolic link to ``target``."""
    import os
    os.symlink(target, name)
    return name
'''


def test_a_declared_file_comes_back_sized_and_hashed(any_sandbox):
    call = any_sandbox.call(WRITER, "write", {"name": "out.csv", "text": "a,b\n1,2\n"},
                            outputs=["out.csv", "never.csv"])
    assert call.ok, call.describe_error()
    written, missing = call.files
    assert (written.name, written.content, written.size) == ("out.csv", b"a,b\n1,2\n", 8)
    assert written.sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert (missing.name, missing.content, missing.error) == ("never.csv", None,
                                                              "the tool did not write it")


def test_an_input_file_reads_as_an_output_and_nothing_undeclared_comes_back(any_sandbox):
    call = any_sandbox.call(WRITER, "write", {"name": "other.txt", "text": "x"},
                            files={"in.csv": b"kept\n"}, outputs=["in.csv"])
    assert call.ok and [(f.name, f.content) for f in call.files] == [("in.csv", b"kept\n")]


def test_links_and_oversized_files_are_refused(any_sandbox):
    linked = any_sandbox.call(WRITER, "link", {"name": "secret", "target": "/etc/passwd"},
                              outputs=["secret"])
    assert linked.ok and linked.files[0].content is None
    assert linked.files[0].error.startswith("it could not be read")
    limit = any_sandbox.limits.output_files_bytes
    big = any_sandbox.call(WRITER, "write", {"name": "big", "text": "x", "count": limit + 1},
                           outputs=["big"])
    assert big.ok and big.files[0].error == "it is larger than the output file limit"


def test_bad_output_names_are_refused_before_anything_runs(any_sandbox):
    for name in ("../escape", ".hidden", "tool.py"):
        call = any_sandbox.call(WRITER, "write", {"name": "a", "text": "x"}, outputs=[name])
        assert call.status == "error" and call.error_type == "InputFiles", name


def test_modules_ship_beside_the_implementation_and_the_tests_see_only_the_tool(any_sandbox):
    modules = {"helper_math.py": "def triple(x):\n    return 3 * x\n"}
    code = "import helper_math\n\n\ndef nine(x):\n    return helper_math.triple(3 * x)\n"
    assert any_sandbox.call(code, "nine", {"x": 2}, modules=modules).result == 18
    tests = ("from tool import nine\n\n\ndef test_nine():\n    assert nine(1) == 9\n\n\n"
             "def test_the_module_is_not_the_tests():\n    import importlib.util\n"
             "    assert importlib.util.find_spec('helper_math') is None\n")
    report = any_sandbox.verify(code, tests, modules=modules)
    assert report.status == "passed", report.summary()
    refused = any_sandbox.call(code, "nine", {"x": 2}, modules={"../x.py": ""})
    assert refused.status == "error" and refused.error_type == "InputFiles"
