"""The registered model's own code: the ONLY code shipped inside a registered version
(`code_paths`). It imports nothing else from the package and no training or plotting library, so
an edit here, and only here, changes what a registered model does."""
