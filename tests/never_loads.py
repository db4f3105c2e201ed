"""A real Rasa component that trains and saves but refuses to load: a model that trains yet cannot serve.

Named in a copy of dialogs/config.yml (tests/test_model_file.py) to show `ivr train` never swaps
such a model in for the last good one."""
from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=True)
class NeverLoads(GraphComponent):
    def __init__(self, model_storage: ModelStorage, resource: Resource):
        self._storage, self._resource = model_storage, resource

    @classmethod
    def create(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "NeverLoads":
        return cls(model_storage, resource)

    @classmethod
    def load(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "NeverLoads":
        raise ValueError("this component never loads")

    def train(self, training_data: TrainingData) -> Resource:
        with self._storage.write_to(self._resource) as folder:
            (folder / "trained").write_text("yes")
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        return messages
