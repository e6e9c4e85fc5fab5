"""definitionemb's front door: the `defemb` command line and the whole-pipeline runner."""

__all__: list[str] = []
