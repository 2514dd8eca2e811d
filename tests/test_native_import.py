"""A missing extension must fail with a message that says how to build it."""

import subprocess
import sys


def test_missing_extension_explains_how_to_build():
    # sys.modules[name] = None makes `import name` fail as if the module were not built.
    code = "import sys; sys.modules['fastdns._core'] = None; import fastdns._native"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert proc.returncode != 0
    assert "pip install" in proc.stderr
    assert "fastdns._core" in proc.stderr


def test_extension_is_the_built_one():
    from fastdns._native import _core

    assert _core.__file__.endswith((".so", ".pyd"))
