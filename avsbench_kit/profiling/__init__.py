"""Measuring models: parameters (declared, live, trainable); timing and FLOPs follow."""
