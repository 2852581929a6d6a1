"""The learned apex spotter (SOFTNet family): window features, the score network, training and export.

features.py (tracked videos -> window features and pseudo-labels, with the edge's own code), model.py (the
shallow three-stream network), train.py (leave-one-video-out / leave-one-subject-out training, peak
selection on the training videos, export). The runtime half is edge/spotting/learned.py.
"""
