"""An offline-first speech IVR: caller speech in, Rasa dialog, bot speech out."""
__version__ = "0.1.0"
