"""rasa_sdk actions: the business rules the dialog files call. The action server imports this package."""
from ivr.actions import (address, authentication, billing, conversation, moves, questions,  # noqa: F401 - importing
                         tasks)  # registers the actions
