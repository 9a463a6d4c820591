"""Prompt optimisation from traffic: demonstration selection (candidates.py decides, optimiser.py runs it)."""
