"""Rendering task state for people: the provider's chat markdown, in Chinese or English."""
