"""MLflow "models from code" entry: logged as the model's code, executed when the model loads."""

import mlflow

from florisense_model.model.pyfunc import FlorisenseModel

mlflow.models.set_model(FlorisenseModel())
