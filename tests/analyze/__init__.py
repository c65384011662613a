"""Tests of the AI analyst: providers, fact sheet, validation, dispatch."""
