"""Simulation: procedural catalogue, synthetic scenes and card nuisances."""
