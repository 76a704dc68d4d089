"""Engine-agnostic core: family specs, decoding policies, reference oracle.

NOTE: nothing under this package may import vllm or sglang; a test proves it.
"""
