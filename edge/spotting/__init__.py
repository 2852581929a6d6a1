"""Training-free apex spotting: regional motion signal, event intervals and the standard spotting metric.

params.py (SpotParams, every knob with its default), signal.py (regional motion between two aligned crops,
head motion removed, blinks detected), intervals.py (adaptive threshold and interval location),
metrics.py (IoU >= 0.5 matching, pooled P/R/F1). The streaming stage is edge/stages/apex_spotting.py.
"""
