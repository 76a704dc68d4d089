"""The core and the reference oracle import and run where vllm and sglang cannot be imported."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys
    class _Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("vllm", "sglang"):
                raise ImportError(f"{name} is blocked in this test")
            return None
    sys.meta_path.insert(0, _Block())
    """
)


@pytest.mark.slow
def test_core_runs_without_engines(tmp_path: Path) -> None:
    code = BLOCKER + textwrap.dedent(
        f"""
        import importlib, pkgutil
        import dllm_backend.core as core
        for m in pkgutil.walk_packages(core.__path__, "dllm_backend.core."):
            importlib.import_module(m.name)
        from dllm_backend.core.tiny import make_tiny
        from dllm_backend.core.reference.loading import load_reference
        from dllm_backend.core.reference.generators import GenerationRequest, generate
        from dllm_backend.core.policies.base import DecodeConfig
        make_tiny("SDARForCausalLM", {str(tmp_path)!r}, seed=0)
        loaded = load_reference({str(tmp_path)!r})
        res = generate(loaded, GenerationRequest((1, 2, 3, 4, 5), 8, DecodeConfig("low_confidence")))
        assert len(res.token_ids) >= 1 and res.nfe >= 1, res
        try:
            import vllm  # noqa: F401
        except ImportError:
            print("BLOCKED-OK")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "BLOCKED-OK" in out.stdout
    assert not any(m in out.stderr for m in ("vllm", "sglang")), out.stderr
