"""ALFIA: early warning of in-hospital death of ICU patients from first-24-hour data read as clinical text."""

__version__ = "0.1.0"
