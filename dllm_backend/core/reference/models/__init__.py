"""Reference networks, one module per architecture (state_dict keys == real checkpoint names)."""
