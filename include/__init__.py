"""Non-Python assets (SQL, prompts, templates, config) and the local sandbox. Importable as ``include``."""
