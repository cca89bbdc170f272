"""FloriSense: tell dandelions (pissenlit) from grass (herbe) in photos, the MLflow way."""
