"""Facial expression recognition experiments (the paper's protocol and beyond), by concern:

  fer.core      configuration (schema, params), execution settings, atomic files, tracking
  fer.data      import, crop, augment, merge, the demo's drawn faces, splits
  fer.gan       one DCGAN per emotion, its training and KID
  fer.train     backbones, the frozen-activation cache, two-step training, grid cells, executors
  fer.evaluate  metrics, intervals, claims, tables, the report page, reference models
  fer.edge      TF.js export and in-browser measurement
"""
