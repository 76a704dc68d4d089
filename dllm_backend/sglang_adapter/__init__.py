"""SGLang adapter: registers the dLLM families, their block/mask parameters and every core
decoding policy with SGLang 0.5.23 (entry point: `plugin.register`)."""
