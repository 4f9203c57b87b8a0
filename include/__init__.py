"""Non-Python assets (templates, config), dev scripts and the local sandbox. Importable as ``include``."""
