"""DVC stage scripts (`python -m stages.<name>`): each parses params, calls fer/, writes
its outputs. Importing the package quiets TensorFlow's start-up noise (fer.quiet) and
checks the execution settings (fer.settings) before any work."""
from fer import quiet, settings

quiet.install()
settings.load()
