"""JSON Schemas of every govex document (FORMATS.md), generated from the models."""
