"""Shared operator bases and extra links, one module per external system (workflows' operators
derive from them)."""
