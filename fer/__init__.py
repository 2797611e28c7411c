"""fer: facial expression recognition with offline and GAN data augmentation.

One module per concern; the DVC stage scripts in `stages/` call these.
"""
