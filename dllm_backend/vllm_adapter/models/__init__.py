"""vLLM model classes of the dLLM architectures, built from vLLM's own layers (one module each)."""
