"""DVC stage scripts (`python -m stages.<name>`): each parses params, calls fer/, writes
its outputs. Importing the package quiets TensorFlow's start-up noise (fer.quiet)."""
from fer import quiet

quiet.install()
