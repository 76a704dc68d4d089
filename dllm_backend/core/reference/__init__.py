"""The reference oracle: pure-PyTorch networks and generation loops per dLLM family."""
