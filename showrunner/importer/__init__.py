"""Import of Scope's timeline and workflow files as show files."""

from showrunner.importer.convert import ImportResult, import_data, import_file

__all__ = ["ImportResult", "import_data", "import_file"]
