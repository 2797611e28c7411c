"""DVC stage scripts (`python -m stages.<name>`): each parses params, calls fer/, writes
its outputs. Importing the package quiets TensorFlow's start-up noise (fer.core.quiet) and
checks the execution settings (fer.core.settings) before any work, handing TensorFlow the
ones it reads from the environment."""
import os

from fer.core import quiet
from fer.core import settings

quiet.install()
os.environ.update(settings.tensorflow_env(settings.load()))
